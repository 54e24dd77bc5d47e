//! Running one context: dispatching its groups and waiting for the
//! outcomes.
//!
//! # How a step waits
//!
//! The thread that waits for a step is the one that walks the run: the
//! caller's own thread, or, for a run whose every task is on one pool, a
//! worker of that pool. Such a run is carried into its pool once, so that
//! every step after the first starts there with no round trip: with one
//! `install` when nothing can cut it short, or as one job when a cancel or
//! a deadline can (see the facade's `carry` module), its caller then
//! blocking outside on the run's end, the cancel and the deadline.
//!
//! Every group of the plan is dispatched before any is waited on, so groups
//! on different executors run at the same time (the original ran them one
//! after another). Then the walking thread waits, and how it waits is the
//! heart of the engine's guarantees:
//!
//! - When nothing can interrupt the wait (no deadline, no cancel token),
//!   the walking thread joins one group in place: an inline group on its
//!   own thread, or a pool group entered with `install` (free when it is
//!   already on that pool) and fanned out with an indexed parallel
//!   iterator. That is the fast path; it costs what raw rayon costs.
//! - Otherwise only an inline group runs on the walking thread, and every
//!   pool group is one job handed to its pool. The walking thread then
//!   blocks in one `select` over the step's outcome channel, the cancel
//!   token's signal and the deadline, so a cancel or a deadline ends the
//!   wait within milliseconds even when a task never returns. It burns no
//!   CPU while it waits: there is no polling. In a carried run the step's
//!   outcomes go into a [`Ledger`] rather than into a processor on the
//!   walking worker's stack: that worker may be stuck in a task, and the
//!   caller outside must then be able to end the step with every outcome
//!   that arrived ([`gather`](ExecutionCoordinator::gather)).
//! - A walking thread that is itself a worker of a group's pool (a carried
//!   run, or a nested `execute`) claims that group's tasks and runs them on
//!   its own thread before it blocks, and runs the group's due retries the
//!   same way. That is why nested runs cannot deadlock, even on a pool of
//!   one thread. It never runs a stranger's job: it does not yield into
//!   rayon while it waits. A group of one such task is not handed to the
//!   pool at all: the walking worker runs it.
//! - A task that will be retried never waits on a pool thread (see
//!   [`group`](super::group)): the walking thread watches when the earliest
//!   retry is due and hands due retries back to the pool.
//!
//! A task that runs on the walking thread (an inline task, or a task of its
//! own pool that the waiting worker runs itself) cannot be interrupted; the
//! deadline and the cancel are checked between such tasks. When that
//! thread is a carried run's worker, the caller outside still returns at
//! the cancel or the deadline: it takes the run over.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender};
use parking_lot::Mutex;
use rayon::prelude::*;

use super::attempt::{
    Attempts, Landed, Progress, Retry, Seat, Watchers, attempt, attempt_into, due_after, run_task,
};
use super::group::{GroupRun, Target};
use super::ledger::{Intake, Ledger};
use super::outcome::Outcome;
use super::plan::{Dispatch, ExecutionPlan, PlanGroup, TaskIndices};
use super::processor::{ResultProcessor, StepOutcome};
use super::registry::{CustomExecutor, Job};
use super::signal::TaskEvent;
use super::step_run::{Halt, Lent, StepRun};
use super::unwind;
use crate::error::TaskFailure;
use crate::model::config::ExecutorConfig;
use crate::model::strategy::EvaluationStrategy;
use crate::records::metrics::{Stamp, thread_number};

pub(crate) use super::step_run::Deadline;

/// Runs one context and returns its outcome; it changes no shared state.
pub(crate) struct ExecutionCoordinator;

impl ExecutionCoordinator {
    /// Runs the step's tasks, all but those in `restored`: tasks that
    /// succeeded in an earlier process, whose outcomes count as they are.
    #[cfg(test)]
    pub(crate) fn run<T: Send + Sync + 'static>(
        run: StepRun<T>,
        plan: ExecutionPlan,
        strategy: &EvaluationStrategy,
        restored: Vec<Outcome<T>>,
    ) -> StepOutcome<T> {
        Self::run_gathered(run, plan, strategy, restored, Vec::new())
    }

    /// [`run`](Self::run), where `gathered` are outcomes of tasks that this
    /// run already ran elsewhere (on other processes of an MPI job): they
    /// count as they are, like the restored ones, but are not marked
    /// restored. Whoever gathered them told the observers and the hooks.
    pub(crate) fn run_gathered<T: Send + Sync + 'static>(
        run: StepRun<T>,
        plan: ExecutionPlan,
        strategy: &EvaluationStrategy,
        restored: Vec<Outcome<T>>,
        gathered: Vec<Outcome<T>>,
    ) -> StepOutcome<T> {
        let queued = run.clock.now();
        let mut processor = ResultProcessor::new(run.tasks.len());
        let mut done = Vec::new();
        let mut marked = Vec::new();
        let plan = if restored.is_empty() && gathered.is_empty() {
            plan
        } else {
            done.resize(run.tasks.len(), false);
            marked.resize(run.tasks.len(), false);
            for outcome in restored {
                done[outcome.index] = true;
                marked[outcome.index] = true;
                announce(&run, &outcome, true);
                processor.accept(outcome);
            }
            for outcome in gathered {
                done[outcome.index] = true;
                processor.accept(outcome);
            }
            plan.without(&done)
        };
        let halt = execute(&Lent::new(&run), plan, &mut processor);
        let mut outcome = processor.judge(&run, queued, strategy, halt);
        for (stamp, restored) in outcome.stamps.iter_mut().zip(marked) {
            stamp.mark_restored(restored);
        }
        outcome
    }

    /// Runs the step's tasks into `ledger` rather than into a processor on
    /// this thread's stack, and leaves the judging to whoever closes it:
    /// the step of a run carried into its pool, which the caller outside
    /// may have to take over (see the module docs). Returns why it stopped
    /// early.
    pub(crate) fn gather<T: Send + Sync + 'static>(
        run: &Arc<StepRun<T>>,
        plan: ExecutionPlan,
        ledger: &Ledger<T>,
    ) -> Option<Halt> {
        execute(&Lent::of(run), plan, &mut &*ledger)
    }

    /// Runs only the tasks that `only` marks and hands back their outcomes,
    /// unjudged, in declaration order: one process's share of a step that
    /// several share. A task the wait gave up on (a cancel, the deadline)
    /// comes back cancelled or timed out, as in a judged step.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn run_only<T: Send + Sync + 'static>(
        run: StepRun<T>,
        plan: ExecutionPlan,
        only: &[bool],
    ) -> Vec<Outcome<T>> {
        let mut processor = ResultProcessor::new(run.tasks.len());
        let others: Vec<bool> = only.iter().map(|&o| !o).collect();
        processor.skip(&others);
        let halt = execute(&Lent::new(&run), plan.without(&others), &mut processor);
        processor.into_outcomes(&run, only, halt)
    }
}

/// Dispatches every group of `plan` and waits for their outcomes, handing
/// each to `processor`; see the module docs. Returns why it stopped early.
fn execute<T: Send + Sync + 'static>(
    run: &Lent<'_, T>,
    plan: ExecutionPlan,
    processor: &mut (impl Intake<T> + Send),
) -> Option<Halt> {
    let watched = run.deadline.is_some() || run.cancel.is_some();
    let (local, groups) = plan.split(|groups| {
        groups
            .iter()
            .enumerate()
            .filter(|(_, g)| match g.dispatch {
                Dispatch::Inline => true,
                Dispatch::Pool(_) | Dispatch::Global => !watched,
                Dispatch::ThreadPerTask | Dispatch::Custom(_) => false,
            })
            .max_by_key(|(i, g)| (g.dispatch.affinity(), *i))
            .map(|(i, _)| i)
    });
    let joins_pool = local
        .as_ref()
        .is_some_and(|g| matches!(g.dispatch, Dispatch::Pool(_) | Dispatch::Global));
    let retries = || {
        run.tasks
            .iter()
            .any(|t| t.retry.as_deref().is_some_and(|p| p.max_attempts() > 1))
    };
    // Inline-only steps need no channel: every outcome is handed over
    // on this thread.
    let channel = (!groups.is_empty() || (joins_pool && retries()))
        .then(|| crossbeam_channel::bounded::<Outcome<T>>(run.tasks.len().max(1)));
    if let Some((_, rx)) = &channel {
        processor.listen(rx);
    }
    let mut pooled: Vec<Arc<GroupRun<T>>> = Vec::new();
    // Retries can only be delayed where outcomes travel over a channel,
    // so the wake-up channel exists exactly when that one does.
    let (wake, woken) = channel
        .as_ref()
        .map(|_| crossbeam_channel::bounded::<()>(1))
        .unzip();
    if let (Some((tx, _)), Some(wake)) = (&channel, &wake) {
        for group in groups {
            dispatch(run, group, tx, wake, &mut pooled);
        }
    }
    if let Some(group) = local {
        let senders = channel.as_ref().map(|c| &c.0).zip(wake.as_ref());
        join_here(run, group, processor, senders, &mut pooled);
    }
    // `wake` stays alive until the step is judged: a closed wake-up
    // channel would fire the select at once, again and again.
    let rx = channel.map(|(tx, rx)| {
        drop(tx);
        rx
    });
    let halt = wait(run, rx, woken.as_ref(), processor, &pooled);
    drop(wake);
    halt
}

/// Tells observers about a task that ran in another process, as a task
/// that started and finished: restored from a checkpoint, or run by
/// another rank of an MPI job.
pub(crate) fn announce<T>(run: &StepRun<T>, outcome: &Outcome<T>, restored: bool) {
    if run.emitter.is_empty() {
        return;
    }
    let event = TaskEvent {
        run: run.run_id,
        pipeline: &run.pipeline,
        total_tasks: run.total_tasks,
        restored,
        step: &run.step,
        context: run.context,
        task: &run.tasks[outcome.index].name,
        attempt: outcome.stamp.attempts,
        thread: outcome.stamp.thread(),
        error: None,
        elapsed: Duration::ZERO,
    };
    run.emitter.emit(|o| o.task_started(&event));
    let event = TaskEvent {
        error: outcome.result.as_ref().err().map(|e| &**e),
        elapsed: outcome.stamp.finished().saturating_sub(outcome.stamp.started()),
        ..event
    };
    run.emitter.emit(|o| o.task_finished(&event));
}

/// Runs a group with the caller's thread taking part, on the fast path.
fn join_here<T: Send + Sync + 'static>(
    run: &Lent<'_, T>,
    group: PlanGroup,
    processor: &mut (impl Intake<T> + Send),
    senders: Option<(&Sender<Outcome<T>>, &Sender<()>)>,
    pooled: &mut Vec<Arc<GroupRun<T>>>,
) {
    let tx = senders.map(|(tx, _)| tx);
    let (target, retries) = match group.dispatch {
        Dispatch::Inline => return run_inline(run, &group.tasks, |o| processor.accept(o)),
        Dispatch::Pool(pool) => {
            let retries = pool.install(|| first_round(&group.tasks, run, processor));
            (Target::Pool(pool), retries)
        }
        Dispatch::Global => (Target::Global, first_round(&group.tasks, run, processor)),
        // Never chosen to run here; handed to its executor instead.
        dispatch @ (Dispatch::ThreadPerTask | Dispatch::Custom(_)) => {
            if let Some(tx) = tx {
                let group = PlanGroup { dispatch, ..group };
                dispatch_to_threads(run, group, tx);
            }
            return;
        }
    };
    if let (false, Some((tx, wake))) = (retries.is_empty(), senders) {
        pooled.push(GroupRun::of_retries(
            Arc::clone(run.shared()),
            target,
            retries,
            tx.clone(),
            wake.clone(),
        ));
    }
}

/// Makes one attempt at every task of a group, in parallel on the current
/// pool, handing each outcome to `processor`; returns the tasks to retry,
/// with when each is due.
///
/// The caller joins this group in place with rayon's indexed iterators:
/// a whole step's range writes straight into the processor's columns, and
/// a group of a mixed step collects its outcomes first. With every
/// task writing into one channel instead, the channel's tail was the one
/// cache line all workers fought over, which made a 10,000-task no-op
/// step slower on two threads than on one. Retries are rare, so they go
/// into a locked list per worker.
fn first_round<T: Send + Sync>(
    tasks: &TaskIndices,
    run: &StepRun<T>,
    processor: &mut (impl Intake<T> + Send),
) -> Vec<(usize, Attempts, Instant)> {
    // One list per worker, so that a round where every task fails does
    // not have the workers queue on one lock; made at the first retry, so
    // a round without one allocates nothing for them.
    let lists = rayon::current_num_threads().max(1);
    let retries: OnceLock<Vec<Mutex<Vec<_>>>> = OnceLock::new();
    let defer = |i: usize, retry: Box<Retry>| {
        let Retry { delay, attempts } = *retry;
        let due = due_after(delay);
        let list = rayon::current_thread_index().unwrap_or(0) % lists;
        retries.get_or_init(|| (0..lists).map(|_| Mutex::new(Vec::new())).collect())[list]
            .lock()
            .push((i, attempts, due));
    };
    match tasks {
        TaskIndices::Range(r) => {
            let watchers = Watchers::of(run);
            let chained = watchers.chain_clock();
            processor.fill_par(
                run,
                r.clone(),
                || Seat::new(chained),
                |seat, i, stamp, value| match attempt_into(
                    run,
                    &watchers,
                    seat,
                    i,
                    Attempts::default(),
                    stamp,
                    value,
                ) {
                    Landed::Done(landing) => Some(landing),
                    Landed::Retry(retry) => {
                        defer(i, retry);
                        None
                    }
                },
            );
        }
        TaskIndices::List(v) => {
            let mut out = Vec::new();
            v.par_iter()
                .map(|&i| match attempt(run, i, Attempts::default()) {
                    Progress::Done(outcome) => Some(outcome),
                    Progress::Retry(retry) => {
                        defer(i, retry);
                        None
                    }
                })
                .collect_into_vec(&mut out);
            for outcome in out.into_iter().flatten() {
                processor.accept(outcome);
            }
        }
    }
    retries
        .into_inner()
        .into_iter()
        .flatten()
        .flat_map(Mutex::into_inner)
        .collect()
}

/// Hands a group to its executor without waiting for it.
fn dispatch<T: Send + Sync + 'static>(
    run: &Lent<'_, T>,
    group: PlanGroup,
    tx: &Sender<Outcome<T>>,
    wake: &Sender<()>,
    pooled: &mut Vec<Arc<GroupRun<T>>>,
) {
    let target = match &group.dispatch {
        // Inline work has nowhere to go but the caller's thread.
        Dispatch::Inline => return run_inline(run, &group.tasks, |o| drop(tx.send(o))),
        Dispatch::Pool(pool) => Target::Pool(Arc::clone(pool)),
        Dispatch::Global => Target::Global,
        Dispatch::ThreadPerTask | Dispatch::Custom(_) => return dispatch_to_threads(run, group, tx),
    };
    let lone = group.tasks.len() == 1;
    let g = GroupRun::new(Arc::clone(run.shared()), target, group.tasks, wake.clone());
    // A lone task on the waiting thread's own pool gains nothing from a
    // job: that thread claims it in `wait` at once, and the job would only
    // wake another worker to find nothing left (half the cost of a step of
    // a carried run that a deadline watches).
    if !(lone && g.target().is_home()) {
        g.dispatch(tx.clone());
    }
    pooled.push(g);
}

/// Hands each task of a thread-per-task or custom group to its own thread
/// or job. Those threads belong to the task, so its backoffs wait there.
fn dispatch_to_threads<T: Send + Sync + 'static>(
    run: &Lent<'_, T>,
    group: PlanGroup,
    tx: &Sender<Outcome<T>>,
) {
    let PlanGroup {
        config,
        dispatch,
        tasks,
    } = group;
    match dispatch {
        Dispatch::ThreadPerTask => {
            for i in tasks.to_vec() {
                let (job_run, job_tx) = (Arc::clone(run.shared()), tx.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("conveyor-{}", run.tasks[i].name))
                    .spawn(move || drop(job_tx.send(run_task(&job_run, i))));
                if let Err(e) = spawned {
                    let _ = tx.send(not_run(run, i, &config, e.to_string()));
                }
            }
        }
        Dispatch::Custom(executor) => {
            let id = executor_id(&executor);
            // A task already running in a job of this very executor (a
            // nested `execute`) cannot wait for jobs queued behind its own:
            // on a one-thread executor they would never start. Its thread
            // runs them itself instead.
            if CURRENT_CUSTOM.with(|c| c.get()) == Some(id) {
                for i in tasks.to_vec() {
                    let _ = tx.send(run_task(run, i));
                }
                return;
            }
            for i in tasks.to_vec() {
                let (job_run, job_tx, job_config) = (Arc::clone(run.shared()), tx.clone(), config.clone());
                let job = Job::new(move |ran| {
                    let outcome = if ran {
                        let outer = CURRENT_CUSTOM.with(|c| c.replace(Some(id)));
                        let outcome = run_task(&job_run, i);
                        CURRENT_CUSTOM.with(|c| c.set(outer));
                        outcome
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
        Dispatch::Inline | Dispatch::Pool(_) | Dispatch::Global => {
            unreachable!("pool and inline groups are not handed to threads")
        }
    }
}

thread_local! {
    /// The custom executor whose job this thread is running, if any.
    static CURRENT_CUSTOM: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Identifies a custom executor by the address of its shared value.
fn executor_id(executor: &Arc<dyn CustomExecutor>) -> usize {
    Arc::as_ptr(executor).cast::<()>() as usize
}

/// Runs an inline group on the caller's thread. A task waiting for a retry
/// goes back in a queue so the other tasks run during its backoff; the wait
/// for the earliest one wakes on a cancel.
fn run_inline<T>(run: &StepRun<T>, tasks: &TaskIndices, mut report: impl FnMut(Outcome<T>)) {
    let mut waiting: Vec<(Instant, usize, Attempts)> = Vec::new();
    let mut advance = |i: usize, attempts: Attempts, waiting: &mut Vec<_>| match attempt(run, i, attempts) {
        Progress::Done(outcome) => report(outcome),
        Progress::Retry(retry) => {
            let Retry { delay, attempts } = *retry;
            let due = due_after(delay);
            waiting.push((due, i, attempts));
        }
    };
    for position in 0..tasks.len() {
        advance(tasks.get(position), Attempts::default(), &mut waiting);
    }
    while let Some(next) = (0..waiting.len()).min_by_key(|&k| waiting[k].0) {
        let (due, i, attempts) = waiting.swap_remove(next);
        // A halt ends the wait early; the attempt then reports the task
        // as cancelled or timed out without running it.
        run.pause(due);
        advance(i, attempts, &mut waiting);
    }
}

fn not_run<T>(run: &StepRun<T>, index: usize, executor: &ExecutorConfig, message: String) -> Outcome<T> {
    let now = run.clock.now();
    Outcome {
        index,
        result: Err(Box::new(TaskFailure::Dispatch {
            executor: executor.to_string().into(),
            task: std::sync::Arc::clone(&run.tasks[index].name),
            step: std::sync::Arc::clone(&run.step),
            message,
        })),
        stamp: Stamp::new(now, now, 0, thread_number()),
        directive: None,
    }
}

/// Waits until every task has reported, the run is cancelled, or its
/// deadline passes; see the module docs. Returns why it stopped early.
fn wait<T: Send + Sync + 'static>(
    run: &StepRun<T>,
    mut rx: Option<Receiver<Outcome<T>>>,
    woken: Option<&Receiver<()>>,
    processor: &mut impl Intake<T>,
    pooled: &[Arc<GroupRun<T>>],
) -> Option<Halt> {
    if processor.complete() && pooled.is_empty() {
        return None;
    }
    let never = crossbeam_channel::never::<()>();
    let cancel = run.cancel.as_ref().map_or(&never, |t| t.signal());
    loop {
        // Tasks of groups on this thread's own pool: this thread claims and
        // runs them, so that they never wait for it to come back.
        for group in pooled.iter().filter(|g| g.target().is_home()) {
            group.work(&mut |o| processor.accept(o), None);
        }
        if processor.complete() {
            return None;
        }
        if let Some(halt) = run.halted() {
            return Some(halt);
        }
        let due = pooled.iter().filter_map(|g| g.next_due()).min();
        if rx.is_none() && due.is_none() {
            // Nothing can report any more: the rest are lost (a bug, which
            // must show as an error, not a hang).
            return None;
        }
        let until = [run.deadline.map(|d| d.at), due].into_iter().flatten().min();
        let event = {
            let mut select = Select::new();
            let outcomes = rx.as_ref().map(|r| (select.recv(r), r));
            let wake = woken.map(|w| select.recv(w));
            select.recv(cancel);
            let op = match until {
                Some(at) => select.select_deadline(at).ok(),
                None => Some(select.select()),
            };
            match (op, outcomes) {
                (None, _) => Event::Due,
                (Some(op), Some((index, r))) if op.index() == index => Event::Received {
                    open: processor.receive(op, r),
                },
                // A retry was delayed: look at the due times again.
                (Some(op), _) if Some(op.index()) == wake => {
                    if let Some(woken) = woken {
                        let _ = op.recv(woken);
                    }
                    Event::Wake
                }
                (Some(op), _) => {
                    // The signal carries no message: this is the cancel's
                    // disconnect.
                    let _ = op.recv(cancel);
                    return Some(Halt::Cancelled);
                }
            }
        };
        match event {
            Event::Received { open: true } => {}
            // Every sender is gone: only retries still waiting can add
            // outcomes now.
            Event::Received { open: false } => rx = None,
            Event::Wake => {}
            Event::Due => {
                let now = Instant::now();
                for group in pooled {
                    if let (moved, Some(sender)) = group.promote(now)
                        && moved > 0
                    {
                        group.dispatch(sender);
                    }
                }
            }
        }
    }
}

/// What woke the waiting thread.
enum Event {
    /// Outcomes were taken from the channel, or it closed.
    Received { open: bool },
    /// The deadline or the earliest retry's time came.
    Due,
    /// A retry was delayed after the due times were last looked at.
    Wake,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::plan::ExecutorFactory;
    use crate::engine::pools::Pools;
    use crate::error::TaskError;
    use crate::model::cancel::CancelToken;
    use crate::model::config::ExecutorConfig;
    use crate::model::retry::RetryPolicy;
    use crate::model::step::Step;
    use crate::model::task::Task;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn step_run(tasks: Vec<Task<u32>>) -> StepRun<u32> {
        StepRun::alone(tasks, 10, None)
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
        assert_eq!(plan.groups().len(), 3);
        let out = ExecutionCoordinator::run(run, plan, &EvaluationStrategy::AllMustSucceed, Vec::new());
        assert_eq!(out.results.values().copied().collect::<Vec<_>>(), [11, 12, 13]);
        assert!(out.evaluation.success);
        assert_eq!(out.stamps[1].thread(), here);
        assert_ne!(out.stamps[0].thread(), here);
    }

    #[test]
    fn a_step_run_is_shared_only_when_a_group_leaves_the_walking_thread() {
        let inline = step_run(vec![
            Task::from_fn("a", |c| Ok(*c.input())),
            Task::from_fn("b", |c| Ok(*c.input())),
        ]);
        let lent = Lent::new(&inline);
        let mut processor = ResultProcessor::new(2);
        assert_eq!(execute(&lent, plan(&inline), &mut processor), None);
        assert!(processor.complete());
        assert!(lent.copy.get().is_none(), "an inline step copies nothing");

        let mixed = step_run(vec![
            Task::from_fn("pool", |c| Ok(*c.input())).executor(ExecutorConfig::pool(1)),
            Task::from_fn("thread", |c| Ok(*c.input())).executor(ExecutorConfig::ThreadPerTask),
            Task::from_fn("inline", |c| Ok(*c.input())),
        ]);
        let lent = Lent::new(&mixed);
        let mut processor = ResultProcessor::new(3);
        assert_eq!(execute(&lent, plan(&mixed), &mut processor), None);
        assert!(processor.complete());
        // Both groups that left share one copy, and let go of it when done.
        let shared = lent.copy.get().expect("the run was shared");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(shared) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(Arc::strong_count(shared), 1);
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
        run.deadline = Deadline::after(Some(Duration::from_millis(30)), crate::error::DeadlineScope::Step);
        let plan = plan(&run);
        let out = ExecutionCoordinator::run(run, plan, &EvaluationStrategy::AllMustSucceed, Vec::new());
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
        assert_eq!(outcome.stamp.attempts, 2);
        assert_eq!(outcome.result.ok(), Some(2));

        let token = CancelToken::new();
        token.cancel();
        let run = StepRun::alone(vec![Task::from_fn("t", |_| Ok(1))], 10, Some(token));
        let outcome = run_task(&run, 0);
        assert_eq!(outcome.stamp.attempts, 0);
        assert!(matches!(
            outcome.result.as_ref().map_err(|e| &**e),
            Err(TaskFailure::Cancelled { attempts: 0, .. })
        ));
    }
}
