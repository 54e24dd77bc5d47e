//! Everything a step's tasks share while the step runs, and the deadline
//! and cancel that can halt them.

use super::trace::StepSpan;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::outcome::Outcome;
use super::signal::SignalEmitter;
use crate::error::{DeadlineScope, TaskFailure};
use crate::ids::{ContextId, RunId};
use crate::model::cancel::CancelToken;
use crate::model::task::Task;
use crate::records::metrics::{Countdown, RunClock, Stamp, thread_number};
use crate::records::results::{Names, ResultSet};

/// A deadline and what to call it in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) scope: DeadlineScope,
    pub(crate) limit: Duration,
    /// The same moment on the run clock's counter, which every attempt
    /// checks: a counter read costs a few nanoseconds where
    /// `Instant::now` costs about 25, which a step of many small tasks
    /// under a deadline paid once per task.
    countdown: Countdown,
}

/// Why tasks stop being started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    Cancelled,
    TimedOut,
}

/// Everything a task's job needs, shared by all jobs of one step run.
///
/// It is `'static` (owned, and `Arc`'d when shared) because groups that do
/// not run on the caller's thread are spawned, not scoped: the caller must
/// be free to dispatch every group before it waits on any, and to return at
/// a deadline while a stuck task still runs. The walking thread holds it
/// as a [`Lent`], which makes that `Arc` only for a step that needs one.
///
/// What every step of a run shares sits in one [`RunShared`], reached
/// through `Deref` (`run.input`, `run.clock`): a step takes one reference
/// to it rather than one to each of its parts.
pub(crate) struct StepRun<T> {
    pub(crate) shared: Arc<RunShared<T>>,
    pub(crate) step: Arc<str>,
    pub(crate) context: ContextId,
    pub(crate) tasks: Arc<[Task<T>]>,
    /// The tasks' names, shared with the step: the result set's name
    /// column.
    pub(crate) names: Names,
    pub(crate) previous: ResultSet<T>,
    pub(crate) deadline: Option<Deadline>,
    /// The step's span, parent of every task's span wherever it runs.
    pub(crate) span: StepSpan,
    /// Called with every task that succeeds, on the thread that ran it, as
    /// soon as it is done: how a checkpoint saves each task and how results
    /// stream to the caller.
    pub(crate) hooks: Vec<TaskHook<T>>,
    /// For a step that a deadline or a cancel can cut short: what its
    /// workers tell the thread that settles it. Shared by every copy of
    /// the run.
    pub(crate) cut: Option<CutShort>,
}

/// What the workers of a step that can be cut short share with the thread
/// that settles it: which attempt each task has begun, so that a task cut
/// short mid-attempt or in its backoff is recorded with the attempts it
/// made, and whether the step was settled without some of its tasks, so
/// that a task that returns after that is dropped without being streamed
/// to hooks or reported to observers.
///
/// One allocation, shared by every copy of the step run: the first slot is
/// the settled flag, then one slot per task.
#[derive(Debug, Clone)]
pub(crate) struct CutShort {
    slots: Arc<[AtomicU32]>,
}

impl CutShort {
    /// The record of a step of `tasks` tasks.
    pub(crate) fn new(tasks: usize) -> Self {
        Self {
            slots: (0..=tasks).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

/// What every step of one run shares.
pub(crate) struct RunShared<T> {
    pub(crate) pipeline: Arc<str>,
    pub(crate) input: Arc<T>,
    pub(crate) emitter: Arc<SignalEmitter>,
    pub(crate) clock: RunClock,
    pub(crate) cancel: Option<CancelToken>,
    /// The run, for events.
    pub(crate) run_id: RunId,
    /// Tasks over the whole pipeline, for events.
    pub(crate) total_tasks: usize,
    /// Whether each task's start and end are read from the clock
    /// ([`RunOptions::task_timing`](crate::RunOptions::task_timing)).
    pub(crate) timed: bool,
}

#[cfg(test)]
impl<T> StepRun<T> {
    /// A step run of `tasks` on `input`, alone in its run, for unit tests.
    pub(crate) fn alone(tasks: Vec<Task<T>>, input: T, cancel: Option<CancelToken>) -> Self {
        let cut = cancel.is_some().then(|| CutShort::new(tasks.len()));
        Self {
            shared: Arc::new(RunShared {
                pipeline: "p".into(),
                input: Arc::new(input),
                emitter: Arc::default(),
                clock: RunClock::start(),
                cancel,
                run_id: RunId::from(1),
                total_tasks: 0,
                timed: true,
            }),
            step: "s".into(),
            context: ContextId::from(1),
            names: tasks.iter().map(|t| Arc::clone(&t.name)).collect(),
            tasks: tasks.into(),
            previous: ResultSet::empty(),
            deadline: None,
            span: StepSpan::default(),
            hooks: Vec::new(),
            cut,
        }
    }
}

impl<T> std::ops::Deref for StepRun<T> {
    type Target = RunShared<T>;

    fn deref(&self) -> &RunShared<T> {
        &self.shared
    }
}

impl<T> Clone for StepRun<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            step: Arc::clone(&self.step),
            context: self.context,
            tasks: Arc::clone(&self.tasks),
            names: Arc::clone(&self.names),
            previous: self.previous.clone(),
            deadline: self.deadline,
            span: self.span.clone(),
            hooks: self.hooks.clone(),
            cut: self.cut.clone(),
        }
    }
}

/// A step run as the thread that walks it holds it: borrowed, and put
/// behind an `Arc` only when some group must outlive the borrow (one handed
/// to a pool, a thread or a custom executor, or one with retries due
/// later). A step whose every task runs on the walking thread, or is joined
/// there, allocates nothing for its run.
pub(crate) struct Lent<'a, T> {
    run: &'a StepRun<T>,
    /// The `Arc`'d copy, once made; named apart from the run's own
    /// `shared`, which `Deref` reaches.
    pub(super) copy: OnceLock<Arc<StepRun<T>>>,
}

impl<'a, T> Lent<'a, T> {
    /// `run`, to be shared by a copy when it must be.
    pub(crate) fn new(run: &'a StepRun<T>) -> Self {
        Self {
            run,
            copy: OnceLock::new(),
        }
    }

    /// A run that is already shared: it is shared as it is.
    pub(crate) fn of(run: &'a Arc<StepRun<T>>) -> Self {
        Self {
            run,
            copy: OnceLock::from(Arc::clone(run)),
        }
    }

    /// The run behind an `Arc`, made the first time it is asked for; every
    /// group of the step shares that one.
    pub(crate) fn shared(&self) -> &Arc<StepRun<T>> {
        self.copy.get_or_init(|| Arc::new(self.run.clone()))
    }
}

impl<T> std::ops::Deref for Lent<'_, T> {
    type Target = StepRun<T>;

    fn deref(&self) -> &StepRun<T> {
        self.run
    }
}

/// A callback for each task that succeeds; see [`StepRun::hooks`].
pub(crate) type TaskHook<T> = Arc<dyn Fn(&Outcome<T>) + Send + Sync>;

impl Deadline {
    /// The deadline `limit` from now. A limit so long that no `Instant` can
    /// hold it (`Duration::MAX`) is no deadline at all: it saturates
    /// instead of overflowing.
    pub(crate) fn after(limit: Option<Duration>, scope: DeadlineScope) -> Option<Self> {
        let limit = limit?;
        Self::within(limit, scope, limit)
    }

    /// A deadline `left` from now, named in errors by its scope and its
    /// whole `limit`; `None` when no `Instant` can hold it.
    pub(crate) fn within(left: Duration, scope: DeadlineScope, limit: Duration) -> Option<Self> {
        let countdown = Countdown::start(left);
        Instant::now().checked_add(left).map(|at| Self {
            at,
            scope,
            limit,
            countdown,
        })
    }

    /// Whether the deadline has passed.
    pub(crate) fn passed(&self) -> bool {
        self.countdown.done()
    }
}

impl<T> StepRun<T> {
    /// Blocks until `until`, waking early on a cancel or at the deadline;
    /// `false` when the run was halted meanwhile. It sleeps on a channel
    /// select, never running other work on this thread's stack, so a
    /// backoff cannot nest tasks inside it.
    pub(crate) fn pause(&self, until: Instant) -> bool {
        let limit = self.deadline.map_or(until, |d| d.at.min(until));
        match &self.cancel {
            Some(token) => {
                // The signal never carries a message: the call returns at
                // `limit`, or at once when the token is cancelled.
                let _ = token.signal().recv_deadline(limit);
            }
            None => {
                if let Some(left) = limit.checked_duration_since(Instant::now()) {
                    std::thread::sleep(left);
                }
            }
        }
        self.halted().is_none()
    }

    /// Why the run is halted, if it is, by the clock waits use: whoever
    /// woke at the deadline's `Instant` sees it passed.
    pub(crate) fn halted(&self) -> Option<Halt> {
        self.halted_by(|d| d.passed() || Instant::now() >= d.at)
    }

    /// [`halted`](Self::halted) on the counter alone, for the check before
    /// every attempt. The counter and the monotonic clock may drift apart
    /// by parts per million, so an attempt may see the deadline a little
    /// before or after a waiting thread does; either way the step is
    /// judged timed out, and a waiting thread never spins waiting for the
    /// counter to agree.
    pub(crate) fn halted_quickly(&self) -> Option<Halt> {
        self.halted_by(Deadline::passed)
    }

    fn halted_by(&self, passed: impl Fn(&Deadline) -> bool) -> Option<Halt> {
        if self.deadline.as_ref().is_some_and(passed) {
            Some(Halt::TimedOut)
        } else if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            Some(Halt::Cancelled)
        } else {
            None
        }
    }

    /// Notes that task `index` begins its attempt `number`, in a step that
    /// can be cut short.
    pub(crate) fn begin(&self, index: usize, number: u32) {
        if let Some(cut) = &self.cut {
            cut.slots[index + 1].store(number, Ordering::Relaxed);
        }
    }

    /// The attempts task `index` has begun, as far as a step that can be
    /// cut short knows (0 in one that cannot).
    pub(crate) fn begun(&self, index: usize) -> u32 {
        self.cut
            .as_ref()
            .map_or(0, |cut| cut.slots[index + 1].load(Ordering::Relaxed))
    }

    /// Marks the step settled without some of its tasks: what they return
    /// from now on is dropped.
    pub(crate) fn close(&self) {
        if let Some(cut) = &self.cut {
            cut.slots[0].store(1, Ordering::Release);
        }
    }

    /// Whether the step was settled without waiting for every task.
    pub(crate) fn closed(&self) -> bool {
        self.cut
            .as_ref()
            .is_some_and(|cut| cut.slots[0].load(Ordering::Acquire) == 1)
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
            stamp: Stamp::new(now, now, attempts, thread_number()),
            directive: None,
        }
    }
}
