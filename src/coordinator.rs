//! Running one context: dispatching its groups and gathering the outcomes.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use rayon::prelude::*;

use crate::context::ContextId;
use crate::error::PipelineError;
use crate::factory::{Dispatch, ExecutionPlan, PlanGroup, TaskIndices};
use crate::metrics::{RunClock, thread_number};
use crate::processor::{Outcome, ResultProcessor, StepOutcome};
use crate::results::ResultSet;
use crate::signal::{SignalEmitter, TaskEvent};
use crate::strategy::EvaluationStrategy;
use crate::task::{Task, TaskContext};
use crate::unwind;

/// Everything a task's job needs, shared by all jobs of one step run.
///
/// It is `'static` (owned and `Arc`'d) because groups that do not run on the
/// caller's thread are spawned, not scoped: the caller must be free to
/// dispatch every group before it waits on any.
pub(crate) struct StepRun<T> {
    pub(crate) pipeline: Arc<str>,
    pub(crate) step: Arc<str>,
    pub(crate) context: ContextId,
    pub(crate) tasks: Arc<[Task<T>]>,
    pub(crate) input: Arc<T>,
    pub(crate) previous: ResultSet<T>,
    pub(crate) emitter: Arc<SignalEmitter>,
    pub(crate) clock: RunClock,
}

/// Runs one context and returns its outcome; it changes no shared state.
///
/// Every group of the plan is dispatched before any is waited on, so groups
/// on different executors run at the same time (the original ran them one
/// after another). One group runs on the caller's thread: an inline group
/// if there is one, else a group on the pool the caller already works in,
/// else the last group, entered with `install`, so the caller's thread does
/// useful waiting instead of a pool round trip.
pub(crate) struct ExecutionCoordinator;

impl ExecutionCoordinator {
    pub(crate) fn run<T: Send + Sync + 'static>(
        run: StepRun<T>,
        plan: ExecutionPlan,
        strategy: &EvaluationStrategy,
    ) -> StepOutcome<T> {
        let queued = run.clock.now();
        let processor = ResultProcessor::new(run.tasks.len());
        let run = Arc::new(run);
        let mut groups = plan.groups;
        let here = groups
            .iter()
            .enumerate()
            .max_by_key(|(i, g)| (g.dispatch.affinity(), *i))
            .map(|(i, _)| i);
        let local = here.map(|i| groups.swap_remove(i));
        for group in groups {
            spawn_group(&run, group, processor.sender());
        }
        if let Some(group) = local {
            run_group_here(&run, group, processor.sender());
        }
        processor.collect(&run.tasks, &run.step, queued, strategy)
    }
}

/// Runs a group with the caller's thread taking part.
fn run_group_here<T: Send + Sync + 'static>(
    run: &Arc<StepRun<T>>,
    group: PlanGroup,
    tx: &Sender<Outcome<T>>,
) {
    let report = |i: usize| {
        // The receiver outlives every local send; a failed send can only
        // mean the processor is gone, and then nobody wants the outcome.
        let _ = tx.send(run_task(run, i));
    };
    match group.dispatch {
        Dispatch::Inline => for_each_seq(&group.tasks, report),
        Dispatch::Pool(pool) => pool.install(|| for_each_par(&group.tasks, report)),
        Dispatch::Global => for_each_par(&group.tasks, report),
        Dispatch::ThreadPerTask | Dispatch::Custom(_) => spawn_group(run, group, tx),
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
        Dispatch::Inline => run_group_here(
            run,
            PlanGroup {
                config,
                dispatch,
                tasks,
            },
            tx,
        ),
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
                let job = crate::registry::Job::new(move |ran| {
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

fn for_each_seq(tasks: &TaskIndices, f: impl Fn(usize)) {
    match tasks {
        TaskIndices::Range(r) => r.clone().for_each(f),
        TaskIndices::List(v) => v.iter().copied().for_each(f),
    }
}

fn for_each_par(tasks: &TaskIndices, f: impl Fn(usize) + Sync + Send) {
    match tasks {
        TaskIndices::Range(r) => r.clone().into_par_iter().for_each(f),
        TaskIndices::List(v) => v.par_iter().for_each(|&i| f(i)),
    }
}

fn not_run<T>(
    run: &StepRun<T>,
    index: usize,
    executor: &crate::ExecutorConfig,
    message: String,
) -> Outcome<T> {
    let now = run.clock.now();
    Outcome {
        index,
        result: Err(PipelineError::Dispatch {
            executor: executor.clone(),
            task: Arc::clone(&run.tasks[index].name),
            step: Arc::clone(&run.step),
            message,
        }),
        started: now,
        finished: now,
        attempts: 0,
        thread: thread_number(),
    }
}

/// Runs one task on the current thread, catching its panic.
pub(crate) fn run_task<T>(run: &StepRun<T>, index: usize) -> Outcome<T> {
    let task = &run.tasks[index];
    let thread = thread_number();
    let attempt = 1;
    let observed = !run.emitter.is_empty();
    if observed {
        run.emitter
            .emit(|o| o.task_started(&task_event(run, task, attempt, thread, None, Duration::ZERO)));
    }
    let started = run.clock.now();
    let ctx = TaskContext {
        input: &*run.input,
        previous: &run.previous,
        name: &task.name,
        step: &run.step,
        attempt,
    };
    let result = match unwind::catch(|| task.event.run(&ctx)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(PipelineError::TaskFailed {
            task: Arc::clone(&task.name),
            step: Arc::clone(&run.step),
            attempt,
            message: e.to_string(),
            cause: e.into_cause(),
        }),
        Err(message) => Err(PipelineError::TaskPanicked {
            task: Arc::clone(&task.name),
            step: Arc::clone(&run.step),
            attempt,
            message,
        }),
    };
    let finished = run.clock.now();
    if observed {
        let error = result.as_ref().err();
        run.emitter.emit(|o| {
            o.task_finished(&task_event(
                run,
                task,
                attempt,
                thread,
                error,
                finished.saturating_sub(started),
            ));
        });
    }
    Outcome {
        index,
        result,
        started,
        finished,
        attempts: attempt,
        thread,
    }
}

fn task_event<'a, T>(
    run: &'a StepRun<T>,
    task: &'a Task<T>,
    attempt: u32,
    thread: u64,
    error: Option<&'a PipelineError>,
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
