//! Running one context: dispatching its groups and gathering the outcomes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use rayon::prelude::*;

use crate::engine::plan::{Dispatch, ExecutionPlan, PlanGroup, TaskIndices};
use crate::engine::processor::{Outcome, ResultProcessor, StepOutcome};
use crate::engine::registry::Job;
use crate::engine::signal::{RetryEvent, SignalEmitter, TaskEvent};
use crate::engine::trace::{StepSpan, TaskSpan};
use crate::engine::unwind;
use crate::error::{DeadlineScope, TaskFailure};
use crate::ids::ContextId;
use crate::model::cancel::CancelToken;
use crate::model::config::ExecutorConfig;
use crate::model::flow::{Directive, Flow};
use crate::model::strategy::EvaluationStrategy;
use crate::model::task::{Task, TaskContext};
use crate::records::metrics::{RunClock, thread_number};
use crate::records::results::ResultSet;

/// A deadline and what to call it in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) scope: DeadlineScope,
    pub(crate) limit: Duration,
}

/// Why tasks stop being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    Cancelled,
    TimedOut,
}

/// Everything a task's job needs, shared by all jobs of one step run.
///
/// It is `'static` (owned and `Arc`'d) because groups that do not run on the
/// caller's thread are spawned, not scoped: the caller must be free to
/// dispatch every group before it waits on any, and to return at a deadline
/// while a stuck task still runs.
pub(crate) struct StepRun<T> {
    pub(crate) pipeline: Arc<str>,
    pub(crate) step: Arc<str>,
    pub(crate) context: ContextId,
    pub(crate) tasks: Arc<[Task<T>]>,
    pub(crate) input: Arc<T>,
    pub(crate) previous: ResultSet<T>,
    pub(crate) emitter: Arc<SignalEmitter>,
    pub(crate) clock: RunClock,
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) deadline: Option<Deadline>,
    /// The step's span, parent of every task's span wherever it runs.
    pub(crate) span: StepSpan,
}

impl Deadline {
    /// The deadline `limit` from now. A limit so long that no `Instant` can
    /// hold it (`Duration::MAX`) is no deadline at all: it saturates
    /// instead of overflowing.
    pub(crate) fn after(limit: Option<Duration>, scope: DeadlineScope) -> Option<Self> {
        let limit = limit?;
        Instant::now()
            .checked_add(limit)
            .map(|at| Self { at, scope, limit })
    }
}

impl<T> StepRun<T> {
    pub(crate) fn halted(&self) -> Option<Halt> {
        if self.deadline.is_some_and(|d| Instant::now() >= d.at) {
            Some(Halt::TimedOut)
        } else if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            Some(Halt::Cancelled)
        } else {
            None
        }
    }

    /// The outcome of a task that will not be (or was not) run to its end.
    pub(crate) fn halted_outcome(&self, index: usize, halt: Halt, attempts: u32) -> Outcome<T> {
        let (task, step) = (Arc::clone(&self.tasks[index].name), Arc::clone(&self.step));
        let error = match (halt, self.deadline) {
            (Halt::TimedOut, Some(d)) => TaskFailure::TimedOut {
                task,
                step,
                scope: d.scope,
                limit: d.limit,
            },
            _ => TaskFailure::Cancelled { task, step, attempts },
        };
        let now = self.clock.now();
        Outcome {
            index,
            result: Err(Box::new(error)),
            started: now,
            finished: now,
            attempts,
            thread: thread_number(),
            directive: None,
        }
    }
}

/// Runs one context and returns its outcome; it changes no shared state.
///
/// Every group of the plan is dispatched before any is waited on, so groups
/// on different executors run at the same time (the original ran them one
/// after another). One group runs on the caller's thread: an inline group
/// if there is one, else a group on the pool the caller already works in,
/// else the last group, entered with `install`, so the caller's thread does
/// useful waiting instead of a pool round trip. With a deadline, only an
/// inline group runs on the caller: everything else is spawned, so the
/// caller is free to return when the deadline passes.
pub(crate) struct ExecutionCoordinator;

impl ExecutionCoordinator {
    pub(crate) fn run<T: Send + Sync + 'static>(
        run: StepRun<T>,
        plan: ExecutionPlan,
        strategy: &EvaluationStrategy,
    ) -> StepOutcome<T> {
        let queued = run.clock.now();
        let run = Arc::new(run);
        let mut groups = plan.groups;
        let least = if run.deadline.is_some() { 2 } else { 0 };
        let here = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.dispatch.affinity() >= least)
            .max_by_key(|(i, g)| (g.dispatch.affinity(), *i))
            .map(|(i, _)| i);
        let local = here.map(|i| groups.swap_remove(i));
        let remote = !groups.is_empty()
            || local
                .as_ref()
                .is_none_or(|g| matches!(g.dispatch, Dispatch::ThreadPerTask | Dispatch::Custom(_)));
        let mut processor = ResultProcessor::new(run.tasks.len(), remote);
        for group in groups {
            spawn_group(&run, group, processor.sender());
        }
        if let Some(group) = local {
            run_group_here(&run, group, &mut processor);
        }
        processor.collect(&run, queued, strategy)
    }
}

/// Runs a group with the caller's thread taking part.
fn run_group_here<T: Send + Sync + 'static>(
    run: &Arc<StepRun<T>>,
    group: PlanGroup,
    processor: &mut ResultProcessor<T>,
) {
    match group.dispatch {
        Dispatch::Inline => run_inline(run, &group.tasks, |o| processor.accept(o)),
        Dispatch::Pool(ref pool) => {
            let outcomes = pool.install(|| collect_par(&group.tasks, run));
            outcomes.into_iter().for_each(|o| processor.accept(o));
        }
        Dispatch::Global => collect_par(&group.tasks, run)
            .into_iter()
            .for_each(|o| processor.accept(o)),
        Dispatch::ThreadPerTask | Dispatch::Custom(_) => spawn_group(run, group, processor.sender()),
    }
}

/// Hands a group to its executor without waiting for it.
fn spawn_group<T: Send + Sync + 'static>(run: &Arc<StepRun<T>>, group: PlanGroup, tx: &Sender<Outcome<T>>) {
    let PlanGroup {
        config,
        dispatch,
        tasks,
    } = group;
    match dispatch {
        // Inline work has nowhere to go but the caller's thread.
        Dispatch::Inline => run_inline(run, &tasks, |o| drop(tx.send(o))),
        Dispatch::Pool(pool) => {
            let (run, tx) = (Arc::clone(run), tx.clone());
            // One injection per group; the fan-out happens inside the pool.
            pool.spawn(move || for_each_par(&tasks, |i| drop(tx.send(run_task(&run, i)))));
        }
        Dispatch::Global => {
            let (run, tx) = (Arc::clone(run), tx.clone());
            rayon::spawn(move || for_each_par(&tasks, |i| drop(tx.send(run_task(&run, i)))));
        }
        Dispatch::ThreadPerTask => {
            for i in tasks.to_vec() {
                let (job_run, job_tx) = (Arc::clone(run), tx.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("conveyor-{}", run.tasks[i].name))
                    .spawn(move || drop(job_tx.send(run_task(&job_run, i))));
                if let Err(e) = spawned {
                    let _ = tx.send(not_run(run, i, &config, e.to_string()));
                }
            }
        }
        Dispatch::Custom(executor) => {
            for i in tasks.to_vec() {
                let (job_run, job_tx, job_config) = (Arc::clone(run), tx.clone(), config.clone());
                let job = Job::new(move |ran| {
                    let outcome = if ran {
                        run_task(&job_run, i)
                    } else {
                        not_run(
                            &job_run,
                            i,
                            &job_config,
                            "the custom executor dropped the job".to_owned(),
                        )
                    };
                    let _ = job_tx.send(outcome);
                });
                // A panicking executor drops the job while unwinding, which
                // reports the task as not run.
                if let Err(message) = unwind::catch(|| executor.spawn(job)) {
                    log::error!("custom executor {config} panicked in spawn: {message}");
                }
            }
        }
    }
}

/// Runs a group that the caller joins (it blocks in `install` until the
/// group is done) and returns the outcomes in declaration order.
///
/// This is where conveyor departs from sending every outcome over the
/// step's channel: with every task writing into one channel, the channel's
/// tail was the one cache line all workers fought over, which made a
/// 10,000-task no-op step 2.4x slower on two threads than inline, and
/// slower on two threads than on one. rayon's indexed `collect` gives each
/// task its own slot instead. Channels still carry the outcomes of groups
/// that run while the caller does something else (other groups, a
/// deadline, threads, custom executors).
fn collect_par<T: Send + Sync>(tasks: &TaskIndices, run: &StepRun<T>) -> Vec<Outcome<T>> {
    match tasks {
        TaskIndices::Range(r) => r.clone().into_par_iter().map(|i| run_task(run, i)).collect(),
        TaskIndices::List(v) => v.par_iter().map(|&i| run_task(run, i)).collect(),
    }
}

fn for_each_par(tasks: &TaskIndices, f: impl Fn(usize) + Sync + Send) {
    match tasks {
        TaskIndices::Range(r) => r.clone().into_par_iter().for_each(f),
        TaskIndices::List(v) => v.par_iter().for_each(|&i| f(i)),
    }
}

/// Runs an inline group on the caller's thread. A task waiting for a retry
/// goes back in a queue so the other tasks run during its backoff.
fn run_inline<T>(run: &StepRun<T>, tasks: &TaskIndices, mut report: impl FnMut(Outcome<T>)) {
    let mut waiting: Vec<(Instant, usize, Attempts)> = Vec::new();
    let mut advance = |i: usize, attempts: Attempts, waiting: &mut Vec<_>| match attempt(run, i, attempts) {
        Progress::Done(outcome) => report(outcome),
        Progress::Retry { delay, attempts } => waiting.push((Instant::now() + delay, i, attempts)),
    };
    match tasks {
        TaskIndices::Range(r) => r
            .clone()
            .for_each(|i| advance(i, Attempts::default(), &mut waiting)),
        TaskIndices::List(v) => v
            .iter()
            .for_each(|&i| advance(i, Attempts::default(), &mut waiting)),
    }
    while let Some(next) = (0..waiting.len()).min_by_key(|&k| waiting[k].0) {
        let (ready, i, attempts) = waiting.swap_remove(next);
        backoff(run, ready);
        advance(i, attempts, &mut waiting);
    }
}

fn not_run<T>(run: &StepRun<T>, index: usize, executor: &ExecutorConfig, message: String) -> Outcome<T> {
    let now = run.clock.now();
    Outcome {
        index,
        result: Err(Box::new(TaskFailure::Dispatch {
            executor: executor.to_string().into(),
            task: Arc::clone(&run.tasks[index].name),
            step: Arc::clone(&run.step),
            message,
        })),
        started: now,
        finished: now,
        attempts: 0,
        thread: thread_number(),
        directive: None,
    }
}

/// The attempts made so far on one task.
#[derive(Default)]
struct Attempts {
    made: u32,
    first_start: Option<Duration>,
    errors: Vec<TaskFailure>,
}

enum Progress<T> {
    Done(Outcome<T>),
    Retry { delay: Duration, attempts: Attempts },
}

/// Longest sleep of a backoff before it looks for work or a cancel again.
const BACKOFF_SLICE: Duration = Duration::from_millis(1);

/// Waits until `until` without pinning a pool thread: a rayon worker runs
/// other jobs of its pool meanwhile (other tasks of the step among them),
/// and sleeps only in short slices when there is nothing to run. A cancel or
/// a deadline ends the wait early.
fn backoff<T>(run: &StepRun<T>, until: Instant) {
    loop {
        let now = Instant::now();
        if now >= until || run.halted().is_some() {
            return;
        }
        if rayon::current_thread_index().is_some() && rayon::yield_now() == Some(rayon::Yield::Executed) {
            continue;
        }
        std::thread::sleep((until - now).min(BACKOFF_SLICE));
    }
}

/// Runs one task to its end on the current thread, retries included.
pub(crate) fn run_task<T>(run: &StepRun<T>, index: usize) -> Outcome<T> {
    let mut attempts = Attempts::default();
    loop {
        match attempt(run, index, attempts) {
            Progress::Done(outcome) => return outcome,
            Progress::Retry {
                delay,
                attempts: more,
            } => {
                backoff(run, Instant::now() + delay);
                attempts = more;
            }
        }
    }
}

/// Makes one attempt at a task, catching its panic, and decides whether it
/// is done or should be tried again.
fn attempt<T>(run: &StepRun<T>, index: usize, mut attempts: Attempts) -> Progress<T> {
    let task = &run.tasks[index];
    if let Some(halt) = run.halted() {
        return Progress::Done(run.halted_outcome(index, halt, attempts.made));
    }
    let number = attempts.made + 1;
    let thread = thread_number();
    let observed = !run.emitter.is_empty();
    if observed {
        run.emitter
            .emit(|o| o.task_started(&task_event(run, task, number, thread, None, Duration::ZERO)));
    }
    let span = TaskSpan::enter(
        &run.span,
        (&run.pipeline, &run.step),
        &task.name,
        number,
        &task.executor,
    );
    let started = run.clock.now();
    let halt = || run.halted().is_some();
    let ctx = TaskContext {
        input: &*run.input,
        previous: &run.previous,
        name: &task.name,
        step: &run.step,
        attempt: number,
        halt: &halt,
    };
    let (result, directive, retryable) = match unwind::catch(|| task.work.call(&ctx)) {
        Ok(Ok(Flow::Continue(value))) => (Ok(value), None, false),
        Ok(Ok(Flow::Switch(target, value))) => (Ok(value), Some(Directive::Switch(target)), false),
        Ok(Ok(Flow::Stop(value))) => (Ok(value), Some(Directive::Stop), false),
        Ok(Err(e)) if e.is_stop() => (
            Err(TaskFailure::Stopped {
                task: Arc::clone(&task.name),
                step: Arc::clone(&run.step),
                reason: e.to_string(),
            }),
            Some(Directive::Stop),
            false,
        ),
        Ok(Err(e)) => {
            // The predicate is user code too: a panic in it is reported
            // as the task's failure, never unwound through a pool thread.
            let verdict = task.retry.as_ref().map(|p| unwind::catch(|| p.retries(&e)));
            let (task_name, step) = (Arc::clone(&task.name), Arc::clone(&run.step));
            match verdict {
                Some(Err(message)) => (
                    Err(TaskFailure::HookPanicked {
                        task: task_name,
                        step,
                        place: "retry predicate",
                        message,
                    }),
                    None,
                    false,
                ),
                verdict => {
                    let error = TaskFailure::Failed {
                        task: task_name,
                        step,
                        attempt: number,
                        cause: e.into_cause(),
                    };
                    (Err(error), None, matches!(verdict, Some(Ok(true))))
                }
            }
        }
        Err(message) => {
            let error = TaskFailure::Panicked {
                task: Arc::clone(&task.name),
                step: Arc::clone(&run.step),
                attempt: number,
                message,
            };
            (
                Err(error),
                None,
                task.retry.as_ref().is_some_and(|p| p.retries_panics()),
            )
        }
    };
    let finished = run.clock.now();
    span.finish(result.as_ref().err());
    if observed {
        let error = result.as_ref().err();
        run.emitter.emit(|o| {
            o.task_finished(&task_event(
                run,
                task,
                number,
                thread,
                error,
                finished.saturating_sub(started),
            ));
        });
    }
    attempts.made = number;
    let first_start = *attempts.first_start.get_or_insert(started);
    let result = match (result, task.retry.as_deref()) {
        (Err(error), Some(policy)) if policy.max_attempts() > 1 => {
            let max_attempts = policy.max_attempts();
            let exhausted = number >= max_attempts;
            if retryable && !exhausted {
                // Seeded by context, task and attempt so that tasks failing
                // together spread out, yet one run's delays are repeatable.
                let seed = (run.context.get() << 32) ^ ((index as u64) << 8) ^ u64::from(number);
                let delay = policy.delay(number, Some(seed));
                span.retrying(number, max_attempts, delay, &error);
                if observed {
                    run.emitter.emit(|o| {
                        o.task_retrying(&retry_event(run, task, number, max_attempts, delay, &error));
                    });
                }
                attempts.errors.push(error);
                return Progress::Retry { delay, attempts };
            }
            if retryable {
                span.retries_exhausted(number, &error);
            }
            if retryable && observed {
                run.emitter.emit(|o| {
                    o.task_retries_exhausted(&retry_event(
                        run,
                        task,
                        number,
                        max_attempts,
                        Duration::ZERO,
                        &error,
                    ));
                });
            }
            if attempts.errors.is_empty() {
                Err(error)
            } else {
                Err(TaskFailure::RetriesExhausted {
                    task: Arc::clone(&task.name),
                    step: Arc::clone(&run.step),
                    attempts: number,
                    earlier: attempts.errors,
                    last: Box::new(error),
                })
            }
        }
        (result, _) => result,
    };
    Progress::Done(Outcome {
        index,
        result: result.map_err(Box::new),
        started: first_start,
        finished,
        attempts: number,
        thread,
        directive,
    })
}

fn task_event<'a, T>(
    run: &'a StepRun<T>,
    task: &'a Task<T>,
    attempt: u32,
    thread: u64,
    error: Option<&'a TaskFailure>,
    elapsed: Duration,
) -> TaskEvent<'a> {
    TaskEvent {
        pipeline: &run.pipeline,
        step: &run.step,
        context: run.context,
        task: &task.name,
        attempt,
        thread,
        error,
        elapsed,
    }
}

fn retry_event<'a, T>(
    run: &'a StepRun<T>,
    task: &'a Task<T>,
    attempt: u32,
    max_attempts: u32,
    delay: Duration,
    error: &'a TaskFailure,
) -> RetryEvent<'a> {
    RetryEvent {
        pipeline: &run.pipeline,
        step: &run.step,
        context: run.context,
        task: &task.name,
        attempt,
        max_attempts,
        delay,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::ExecutorFactory;
    use crate::engine::pools::Pools;
    use crate::error::TaskError;
    use crate::model::config::ExecutorConfig;
    use crate::model::retry::RetryPolicy;
    use crate::model::step::Step;
    use crate::model::task::Task;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn step_run(tasks: Vec<Task<u32>>) -> StepRun<u32> {
        StepRun {
            pipeline: "p".into(),
            step: "s".into(),
            context: ContextId::from(1),
            tasks: tasks.into(),
            input: Arc::new(10),
            previous: ResultSet::empty(),
            emitter: Arc::default(),
            clock: RunClock::start(),
            cancel: None,
            deadline: None,
            span: StepSpan::default(),
        }
    }

    fn plan(run: &StepRun<u32>) -> ExecutionPlan {
        let factory = ExecutorFactory::new(Pools::unnamed(), ExecutorConfig::Inline).unwrap();
        factory.plan(&Step::new("s", run.tasks.iter().cloned())).unwrap()
    }

    #[test]
    fn mixed_groups_all_report_in_declaration_order_and_inline_stays_home() {
        let here = thread_number();
        let tasks = vec![
            Task::from_fn("pool", |c| Ok(*c.input() + 1)).executor(ExecutorConfig::pool(1)),
            Task::from_fn("inline", move |c| {
                assert_eq!(thread_number(), here, "inline tasks run on the caller");
                Ok(*c.input() + 2)
            }),
            Task::from_fn("thread", |c| Ok(*c.input() + 3)).executor(ExecutorConfig::ThreadPerTask),
        ];
        let run = step_run(tasks);
        let plan = plan(&run);
        assert_eq!(plan.groups.len(), 3);
        let out = ExecutionCoordinator::run(run, plan, &EvaluationStrategy::AllMustSucceed);
        assert_eq!(out.results.values().copied().collect::<Vec<_>>(), [11, 12, 13]);
        assert!(out.evaluation.success);
        assert_eq!(out.tasks[1].thread, here);
        assert_ne!(out.tasks[0].thread, here);
    }

    #[test]
    fn with_a_deadline_the_caller_does_not_join_a_stuck_pool_group() {
        let (release, wait) = crossbeam_channel::bounded::<()>(0);
        let stuck = Task::from_fn("stuck", move |_| {
            let _ = wait.recv_timeout(Duration::from_secs(30));
            Ok(0)
        })
        .executor(ExecutorConfig::pool(1));
        let mut run = step_run(vec![stuck]);
        run.deadline = Some(Deadline {
            at: Instant::now() + Duration::from_millis(30),
            scope: crate::error::DeadlineScope::Step,
            limit: Duration::from_millis(30),
        });
        let plan = plan(&run);
        let out = ExecutionCoordinator::run(run, plan, &EvaluationStrategy::AllMustSucceed);
        assert!(out.timed_out);
        assert!(matches!(out.errors[..], [TaskFailure::TimedOut { .. }]));
        drop(release);
    }

    #[test]
    fn attempts_are_counted_and_halts_skip_tasks() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Arc::clone(&calls);
        let flaky = Task::from_fn("flaky", move |ctx| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(TaskError::msg("once"))
            } else {
                Ok(ctx.attempt())
            }
        })
        .retry(
            RetryPolicy::builder()
                .max_attempts(3)
                .backoff(0.0, 1.0, 0.0)
                .build()
                .unwrap(),
        );
        let run = step_run(vec![flaky]);
        let outcome = run_task(&run, 0);
        assert_eq!(outcome.attempts, 2);
        assert_eq!(outcome.result.ok(), Some(2));

        let mut run = step_run(vec![Task::from_fn("t", |_| Ok(1))]);
        let token = CancelToken::new();
        token.cancel();
        run.cancel = Some(token);
        let outcome = run_task(&run, 0);
        assert_eq!(outcome.attempts, 0);
        assert!(matches!(
            outcome.result.as_ref().map_err(|e| &**e),
            Err(TaskFailure::Cancelled { attempts: 0, .. })
        ));
    }
}
