//! One attempt at one task: run it under `catch_unwind`, write what it
//! returned where its outcome goes, and decide whether it is retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::outcome::Outcome;
use super::signal::{RetryEvent, TaskEvent};
use super::step_run::{Halt, StepRun};
use super::trace::TaskSpan;
use super::unwind;
use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::model::task::{Missed, Returned, Task, TaskContext};
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

/// Where one attempt written in place ([`attempt_into`]) left a task.
pub(crate) enum Landed {
    Done(Landing),
    Retry(Box<Retry>),
}

/// What a finished task left besides the stamp and the value that
/// [`attempt_into`] wrote: its failure when it has no value, and what it
/// asked the run to do next.
#[derive(Default)]
pub(crate) struct Landing {
    pub(crate) failure: Option<Box<TaskFailure>>,
    pub(crate) directive: Option<Directive>,
}

impl Landing {
    /// Task `index`'s outcome, from what [`attempt_into`] wrote and this.
    pub(crate) fn into_outcome<T>(
        self,
        run: &StepRun<T>,
        index: usize,
        stamp: Stamp,
        value: Option<T>,
    ) -> Outcome<T> {
        let result = match (self.failure, value) {
            (Some(failure), _) => Err(failure),
            (None, Some(value)) => Ok(value),
            // An attempt always leaves a value or a failure; were it ever
            // to leave neither, the task is reported lost, never as a
            // success without a value.
            (None, None) => Err(Box::new(TaskFailure::Lost {
                task: Arc::clone(&run.tasks[index].name),
                step: Arc::clone(&run.step),
            })),
        };
        Outcome {
            index,
            result,
            stamp,
            directive: self.directive,
        }
    }
}

/// Runs one task to its end on the current thread, retries included. Only
/// for threads that belong to the task alone (a thread per task, a custom
/// executor's job): its backoffs block that thread and nothing else.
/// When a retry that waits `delay` from now is due. A backoff too long
/// for an `Instant` (a policy accepts any `Duration`) is due at a time no
/// run reaches, so the task waits for the run's deadline or cancel as any
/// long backoff does, rather than being retried at once or overflowing.
pub(crate) fn due_after(delay: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let now = Instant::now();
    [delay, YEAR.saturating_mul(100), YEAR]
        .into_iter()
        .find_map(|wait| now.checked_add(wait))
        .unwrap_or(now)
}

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
                run.pause(due_after(delay));
                attempts = more;
            }
        }
    }
}

/// Makes one attempt at a task, catching its panic, and decides whether it
/// is done or should be tried again: [`attempt_into`], for callers with no
/// column to write into, which move the outcome on by value.
pub(crate) fn attempt<T>(run: &StepRun<T>, index: usize, attempts: Attempts) -> Progress<T> {
    let (mut stamp, mut value) = (Stamp::default(), None);
    let watchers = Watchers::of(run);
    let mut seat = Seat::new(false);
    match attempt_into(run, &watchers, &mut seat, index, attempts, &mut stamp, &mut value) {
        Landed::Done(landing) => Progress::Done(landing.into_outcome(run, index, stamp, value)),
        Landed::Retry(retry) => Progress::Retry(retry),
    }
}

/// What can watch or cut short a step's attempts, read once per step
/// rather than once per task: each is a chain of loads through the step's
/// shared data, which a loop of no-op tasks paid on every task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watchers {
    /// Observers are registered.
    observed: bool,
    /// Hooks take each task that succeeds.
    hooked: bool,
    /// A subscriber records the step's spans, so each task opens its own.
    traced: bool,
    /// A deadline or a cancel token can halt the step.
    halting: bool,
    /// Tasks are timed.
    timed: bool,
}

impl Watchers {
    pub(crate) fn of<T>(run: &StepRun<T>) -> Self {
        Self {
            observed: !run.emitter.is_empty(),
            hooked: !run.hooks.is_empty(),
            traced: run.span.is_recorded(),
            halting: run.deadline.is_some() || run.cancel.is_some(),
            timed: run.timed,
        }
    }

    /// Whether nothing runs between two attempts that the second must not
    /// be charged for, so that one can start at the clock read that ended
    /// the other (see [`Seat`]).
    pub(crate) fn chain_clock(&self) -> bool {
        self.timed && !self.observed && !self.hooked && !self.traced
    }
}

/// One worker's place in a run of consecutive attempts: its thread, and,
/// when the clock is chained, the clock read that ended its last attempt.
///
/// Consecutive tasks on one worker then share a clock read: a task starts
/// when the one before it finished, a few nanoseconds of bookkeeping
/// earlier, when the one before it returned a plain value (anything else
/// runs user code after the read: a retry predicate, a message). That
/// halves the counter reads, the largest cost of a no-op task once its
/// outcome is written in place.
pub(crate) struct Seat {
    thread: u64,
    chained: bool,
    last: Option<u64>,
}

impl Seat {
    /// A seat on the current thread; `chained` as
    /// [`Watchers::chain_clock`] says.
    pub(crate) fn new(chained: bool) -> Self {
        Self {
            thread: thread_number(),
            chained,
            last: None,
        }
    }
}

/// Makes one attempt at a task, catching its panic, writing its stamp into
/// `stamp` and its value into `value` (which must be empty), and decides
/// whether it is done or should be tried again. `watchers` are the step's,
/// and `seat` the worker's that makes the attempt.
///
/// Only the path of a task that returns a plain value with nobody
/// watching is here, inlined into the loop that runs a round: from the
/// task's return to its result column nothing is copied in memory, which
/// a no-op task's cost is mostly made of. Everything else (a failure, a
/// flow request, observers, hooks, a halted run) is handled out of line.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn attempt_into<T>(
    run: &StepRun<T>,
    watchers: &Watchers,
    seat: &mut Seat,
    index: usize,
    mut attempts: Attempts,
    stamp: &mut Stamp,
    value: &mut Option<T>,
) -> Landed {
    if watchers.halting
        && let Some(halt) = run.halted_quickly()
    {
        seat.last = None;
        return halted(run, index, halt, attempts.made, stamp);
    }
    let task = &run.tasks[index];
    let number = attempts.made + 1;
    if watchers.halting {
        run.begin(index, number);
    }
    let thread = seat.thread;
    let observed = watchers.observed;
    if observed {
        started(run, task, number, thread);
    }
    let span = if watchers.traced {
        TaskSpan::enter(
            &run.span,
            (&run.pipeline, &run.step),
            &task.name,
            number,
            &task.executor,
        )
    } else {
        TaskSpan::idle()
    };
    let started = match seat.last.take() {
        Some(last) => last,
        None if watchers.timed => run.clock.now_nanos(),
        None => 0,
    };
    let halt = || run.halted_quickly().is_some();
    let ctx = TaskContext {
        input: &*run.input,
        previous: &run.previous,
        name: &task.name,
        step: &run.step,
        attempt: number,
        halt: &halt,
    };
    let mut missed = None;
    let returned = task.work.call_into(&ctx, value, &mut missed);
    let finished = if watchers.timed { run.clock.now_nanos() } else { 0 };
    attempts.made = number;
    let first_start = *attempts.first_start.get_or_insert(started);
    *stamp = Stamp::from_nanos(first_start, finished, number, thread);
    if returned == Returned::Value && !observed && !watchers.hooked {
        // Only here does nothing but the engine's own bookkeeping run
        // before the worker's next task. After a failure, a flow request
        // or a panic, the retry predicate, the failure's message and the
        // retry list run first: the next task reads its own start, so it
        // is never charged for them.
        if seat.chained {
            seat.last = Some(finished);
        }
        span.finish(None);
        return Landed::Done(Landing::default());
    }
    let made = Made {
        task,
        index,
        attempts,
        returned,
        missed,
        span,
        observed,
        thread,
        length: finished.saturating_sub(started),
    };
    land(run, made, stamp, value)
}

/// The outcome of a task the run was halted before: cancelled or timed
/// out, with `attempts` made.
#[cold]
#[inline(never)]
fn halted<T>(run: &StepRun<T>, index: usize, halt: Halt, attempts: u32, stamp: &mut Stamp) -> Landed {
    let outcome = run.halted_outcome(index, halt, attempts);
    *stamp = outcome.stamp;
    Landed::Done(Landing {
        failure: outcome.result.err(),
        directive: None,
    })
}

#[cold]
#[inline(never)]
fn started<T>(run: &StepRun<T>, task: &Task<T>, number: u32, thread: u64) {
    run.emitter
        .emit(|o| o.task_started(&task_event(run, task, number, thread, None, Duration::ZERO)));
}

/// One attempt that ran, as [`land`] takes it.
struct Made<'a, T> {
    task: &'a Task<T>,
    index: usize,
    attempts: Attempts,
    returned: Returned,
    missed: Option<Missed>,
    span: TaskSpan,
    observed: bool,
    thread: u64,
    /// This attempt's length in nanoseconds.
    length: u64,
}

/// The rest of [`attempt_into`]: what the task's failure or flow request
/// means, whether it is retried, and who is told.
#[inline(never)]
fn land<T>(run: &StepRun<T>, made: Made<'_, T>, stamp: &Stamp, value: &mut Option<T>) -> Landed {
    let Made {
        task,
        index,
        attempts,
        returned,
        missed,
        span,
        observed,
        thread,
        length,
    } = made;
    let number = attempts.made;
    // A task that returns after its step was settled without it is already
    // recorded as cancelled or timed out: nobody hears of it again.
    let observed = observed && !run.closed();
    let directive = match returned {
        Returned::Switch(target) => Some(Directive::Switch(target)),
        Returned::Stop => Some(Directive::Stop),
        Returned::Value | Returned::Missed => None,
    };
    // Failures are boxed where they are made: they are rare, and a small
    // result keeps every move on the common path cheap.
    let (failure, directive, retryable) = match missed {
        None => (None, directive, false),
        Some(Missed::Failed(e)) if e.is_stop() => (
            Some(Box::new(TaskFailure::Stopped {
                task: Arc::clone(&task.name),
                step: Arc::clone(&run.step),
                reason: e.to_string(),
            })),
            Some(Directive::Stop),
            false,
        ),
        Some(Missed::Failed(e)) => {
            // The predicate is user code too: a panic in it is reported
            // as the task's failure, never unwound through a pool thread.
            let verdict = task.retry.as_ref().map(|p| unwind::catch(|| p.retries(&e)));
            let (task_name, step) = (Arc::clone(&task.name), Arc::clone(&run.step));
            match verdict {
                Some(Err(message)) => (
                    Some(Box::new(TaskFailure::HookPanicked {
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
                    (Some(Box::new(error)), None, matches!(verdict, Some(Ok(true))))
                }
            }
        }
        Some(Missed::Panicked(payload)) => {
            let error = TaskFailure::Panicked {
                task: Arc::clone(&task.name),
                step: Arc::clone(&run.step),
                attempt: number,
                message: unwind::settle(payload),
            };
            (
                Some(Box::new(error)),
                None,
                task.retry.as_ref().is_some_and(|p| p.retries_panics()),
            )
        }
    };
    span.finish(failure.as_deref());
    if observed {
        run.emitter.emit(|o| {
            o.task_finished(&task_event(
                run,
                task,
                number,
                thread,
                failure.as_deref(),
                Duration::from_nanos(length),
            ));
        });
    }
    let failure = match (failure, task.retry.as_deref()) {
        (Some(error), Some(policy)) if policy.max_attempts() > 1 => {
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
                let mut attempts = attempts;
                attempts.errors.push(error);
                return Landed::Retry(Box::new(Retry { delay, attempts }));
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
            Some(if attempts.errors.is_empty() {
                error
            } else {
                Box::new(TaskFailure::RetriesExhausted {
                    task: Arc::clone(&task.name),
                    step: Arc::clone(&run.step),
                    attempts: number,
                    earlier: attempts.errors.into_iter().map(|e| *e).collect(),
                    last: error,
                })
            })
        }
        (failure, _) => failure,
    };
    if failure.is_none()
        && !run.hooks.is_empty()
        && !run.closed()
        && let Some(v) = value.take()
    {
        // A hook takes the whole outcome; the value is lent to it and put
        // back where the attempt wrote it.
        let outcome = Outcome {
            index,
            result: Ok(v),
            stamp: *stamp,
            directive,
        };
        for hook in &run.hooks {
            hook(&outcome);
        }
        *value = outcome.result.ok();
    }
    Landed::Done(Landing { failure, directive })
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
