//! One attempt at one task: run it under `catch_unwind`, turn what it
//! returned into an outcome, and decide whether it is retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outcome::Outcome;
use super::signal::{RetryEvent, TaskEvent};
use super::step_run::StepRun;
use super::trace::TaskSpan;
use super::unwind;
use crate::error::TaskFailure;
use crate::model::flow::{Directive, Flow};
use crate::model::task::{Task, TaskContext};
use crate::records::metrics::{Stamp, thread_number};

/// The attempts made so far on one task.
#[derive(Default)]
pub(crate) struct Attempts {
    made: u32,
    /// When the first attempt started: a task's recorded time runs from
    /// there to the end of its last attempt, its own backoffs included.
    /// Backoffs never run other tasks on the task's stack, so nothing else
    /// is counted in it.
    first_start: Option<u64>,
    /// The failures of the attempts so far.
    /// Boxed as they were made, and unboxed only when the retries run
    /// out: most retried tasks succeed, and their failures are dropped.
    /// Unboxing each on the way in cost a copy and a free per retry.
    #[allow(clippy::vec_box)]
    errors: Vec<Box<TaskFailure>>,
}

/// Where one attempt left a task.
pub(crate) enum Progress<T> {
    Done(Outcome<T>),
    /// Failed, and to be tried again; boxed, so that the common `Done` is
    /// all a caller moves.
    Retry(Box<Retry>),
}

/// A task to try again after `delay`.
pub(crate) struct Retry {
    pub(crate) delay: Duration,
    pub(crate) attempts: Attempts,
}

/// Runs one task to its end on the current thread, retries included. Only
/// for threads that belong to the task alone (a thread per task, a custom
/// executor's job): its backoffs block that thread and nothing else.
pub(crate) fn run_task<T>(run: &StepRun<T>, index: usize) -> Outcome<T> {
    let mut attempts = Attempts::default();
    loop {
        match attempt(run, index, attempts) {
            Progress::Done(outcome) => return outcome,
            Progress::Retry(retry) => {
                let Retry {
                    delay,
                    attempts: more,
                } = *retry;
                // A halt during the wait is seen by the next attempt, which
                // then reports the task as cancelled or timed out.
                run.pause(Instant::now() + delay);
                attempts = more;
            }
        }
    }
}

/// Makes one attempt at a task, catching its panic, and decides whether it
/// is done or should be tried again.
#[inline]
pub(crate) fn attempt<T>(run: &StepRun<T>, index: usize, mut attempts: Attempts) -> Progress<T> {
    let task = &run.tasks[index];
    if let Some(halt) = run.halted_quickly() {
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
    let started = run.stamp_now();
    let halt = || run.halted_quickly().is_some();
    let ctx = TaskContext {
        input: &*run.input,
        previous: &run.previous,
        name: &task.name,
        step: &run.step,
        attempt: number,
        halt: &halt,
    };
    // Failures are boxed where they are made: they are rare, and a small
    // result keeps every move on the common path (a value) cheap.
    //
    // The task writes what it returned into `returned` rather than
    // handing it back through `catch_unwind`, which would copy it through
    // a union right after the task stored it: a copy that stalls on the
    // store buffer, and cost a fifth of a no-op task.
    let mut returned = None;
    // `returned` is empty only if the closure unwound, which `catch`
    // reports; an empty one would read as a panic, never as a value.
    let caught = unwind::catch(|| returned = Some(task.work.call(&ctx)))
        .and_then(|()| returned.ok_or_else(String::new));
    let (result, directive, retryable): (Result<T, Box<TaskFailure>>, _, _) = match caught {
        Ok(Ok(Flow::Continue(value))) => (Ok(value), None, false),
        Ok(Ok(Flow::Switch(target, value))) => (Ok(value), Some(Directive::Switch(target)), false),
        Ok(Ok(Flow::Stop(value))) => (Ok(value), Some(Directive::Stop), false),
        Ok(Err(e)) if e.is_stop() => (
            Err(Box::new(TaskFailure::Stopped {
                task: Arc::clone(&task.name),
                step: Arc::clone(&run.step),
                reason: e.to_string(),
            })),
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
                    Err(Box::new(TaskFailure::HookPanicked {
                        task: task_name,
                        step,
                        place: "retry predicate",
                        message,
                    })),
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
                    (Err(Box::new(error)), None, matches!(verdict, Some(Ok(true))))
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
                Err(Box::new(error)),
                None,
                task.retry.as_ref().is_some_and(|p| p.retries_panics()),
            )
        }
    };
    let finished = run.stamp_now();
    span.finish(result.as_ref().err().map(|e| &**e));
    if observed {
        let error = result.as_ref().err().map(|e| &**e);
        run.emitter.emit(|o| {
            o.task_finished(&task_event(
                run,
                task,
                number,
                thread,
                error,
                Duration::from_nanos(finished.saturating_sub(started)),
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
                return Progress::Retry(Box::new(Retry { delay, attempts }));
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
                Err(Box::new(TaskFailure::RetriesExhausted {
                    task: Arc::clone(&task.name),
                    step: Arc::clone(&run.step),
                    attempts: number,
                    earlier: attempts.errors.into_iter().map(|e| *e).collect(),
                    last: error,
                }))
            }
        }
        (result, _) => result,
    };
    let outcome = Outcome {
        index,
        result,
        stamp: Stamp::from_nanos(first_start, finished, number, thread),
        directive,
    };
    if outcome.result.is_ok() {
        for hook in &run.hooks {
            hook(&outcome);
        }
    }
    Progress::Done(outcome)
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
        run: run.run_id,
        pipeline: &run.pipeline,
        total_tasks: run.total_tasks,
        restored: false,
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
        run: run.run_id,
        pipeline: &run.pipeline,
        total_tasks: run.total_tasks,
        step: &run.step,
        context: run.context,
        task: &task.name,
        attempt,
        max_attempts,
        delay,
        error,
    }
}
