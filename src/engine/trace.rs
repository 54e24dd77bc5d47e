//! Spans and events for the `tracing` crate, behind the `tracing` feature.
//!
//! The engine calls this module at the few points where a run, a step or a
//! task attempt starts and ends, and where a retry, a cancel or a deadline
//! happens. Everything `tracing` touches lives here, so the engine's files
//! carry one-line calls and no `cfg`. Without the feature every type is
//! zero-sized and every call is an empty inline function.
//!
//! What a subscriber sees, all under the target `conveyor`:
//!
//! | span or event | level | fields |
//! |---|---|---|
//! | span `run` | `INFO` | `pipeline`, `status` |
//! | span `step`, child of `run` | `DEBUG` | `pipeline`, `step`, `context`, `tasks`, `status` |
//! | span `task`, child of `step`, one per attempt | `TRACE` | `pipeline`, `step`, `task`, `attempt`, `executor`, `thread`, `status` |
//! | event `retrying`, in the attempt's span | `INFO` | `attempt`, `max_attempts`, `delay_us`, `error` |
//! | event `retries exhausted`, in the attempt's span | `WARN` | `attempts`, `error` |
//! | event `step cancelled` / `step deadline passed`, in the step's span | `WARN` | `status` |
//! | event `run cancelled` / `run deadline passed`, in the run's span | `WARN` | `error` |
//!
//! The levels follow [`LogObserver`](crate::LogObserver)'s: runs at `info`,
//! steps at `debug`, tasks at `trace`, so a subscriber at `info` pays
//! nothing per task. A task's span and its retry events exist only when
//! its step's span is enabled: then, without a subscriber, or with one that
//! drops steps, a task costs one branch.
//!
//! A task's span names its step's span as its parent explicitly, since the
//! task usually runs on a pool thread where the step's span is not entered:
//! the step's span travels to the workers inside the step run's shared data.

#[cfg(feature = "tracing")]
pub(crate) use on::{RunHandle, RunSpan, StepSpan, TaskSpan};

#[cfg(not(feature = "tracing"))]
pub(crate) use off::{RunHandle, RunSpan, StepSpan, TaskSpan};

#[cfg(feature = "tracing")]
mod on {
    use std::time::Duration;

    use tracing::field::Empty;
    use tracing::{Level, Span};

    use crate::engine::unwind;
    use crate::error::{RunError, TaskFailure};
    use crate::ids::ContextId;
    use crate::model::task::ExecutorRef;
    use crate::records::metrics::thread_number;
    use crate::status::ExecutionStatus;

    const TARGET: &str = "conveyor";

    /// Runs one call into the subscriber. A subscriber is user code: a
    /// panic in it is caught and logged, like a panicking observer's, and
    /// the run goes on without that span or event.
    fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
        match unwind::catch(f) {
            Ok(r) => Some(r),
            Err(message) => {
                log::error!("a tracing subscriber panicked and was skipped: {message}");
                None
            }
        }
    }

    /// Drops a span (which may call the subscriber) under [`guarded`].
    fn close<S>(span: S) {
        guarded(move || drop(span));
    }

    /// The span of one run, entered on the caller's thread for as long as
    /// the run walks its steps, so each step's span is its child.
    pub(crate) struct RunSpan(Option<tracing::span::EnteredSpan>);

    impl RunSpan {
        pub(crate) fn enter(pipeline: &str) -> Self {
            Self(guarded(|| {
                tracing::span!(target: TARGET, Level::INFO, "run", pipeline, status = Empty).entered()
            }))
        }

        /// A handle that enters this run's span on another thread, for a
        /// run whose walk is carried into a pool.
        pub(crate) fn handle(&self) -> RunHandle {
            RunHandle(self.0.as_ref().map(|s| Span::clone(s)))
        }

        /// Records the run's final status, and its cancel or deadline as an
        /// event.
        pub(crate) fn finish(&self, status: ExecutionStatus, failure: Option<&RunError>) {
            let Some(span) = &self.0 else { return };
            guarded(|| {
                span.record("status", status.as_str());
                match failure {
                    Some(e @ RunError::Cancelled { .. }) => {
                        tracing::warn!(target: TARGET, error = %e, "run cancelled");
                    }
                    Some(e @ RunError::Timeout { .. }) => {
                        tracing::warn!(target: TARGET, error = %e, "run deadline passed");
                    }
                    _ => {}
                }
            });
        }
    }

    impl Drop for RunSpan {
        fn drop(&mut self) {
            if let Some(span) = self.0.take() {
                close(span);
            }
        }
    }

    /// The run's span, sendable to the thread that walks the run.
    pub(crate) struct RunHandle(Option<Span>);

    impl RunHandle {
        /// Runs `f` with the run's span entered on this thread, so the
        /// steps' spans made inside are its children.
        pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
            match &self.0 {
                Some(span) => span.in_scope(f),
                None => f(),
            }
        }
    }

    /// The span of one step run. Cloned into the data its tasks share, so
    /// that every task's span is the step's child on whichever thread the
    /// task runs.
    #[derive(Clone, Debug)]
    pub(crate) struct StepSpan(Span);

    impl Default for StepSpan {
        /// No span, for step runs made outside `execute` (unit tests).
        fn default() -> Self {
            Self(Span::none())
        }
    }

    impl Drop for StepSpan {
        fn drop(&mut self) {
            if !self.0.is_disabled() {
                close(std::mem::replace(&mut self.0, Span::none()));
            }
        }
    }

    /// The step's span entered on this thread, until dropped.
    #[must_use]
    pub(crate) struct StepEntered<'a>(Option<tracing::span::Entered<'a>>);

    impl Drop for StepEntered<'_> {
        fn drop(&mut self) {
            if let Some(entered) = self.0.take() {
                close(entered);
            }
        }
    }

    impl StepSpan {
        /// A span for the step, child of the span entered on this thread
        /// (the run's).
        pub(crate) fn new(pipeline: &str, step: &str, context: ContextId, tasks: usize) -> Self {
            let span = guarded(|| {
                tracing::span!(
                    target: TARGET,
                    Level::DEBUG,
                    "step",
                    pipeline,
                    step,
                    context = context.get(),
                    tasks,
                    status = Empty
                )
            });
            Self(span.unwrap_or_else(Span::none))
        }

        /// Whether anyone records this step's spans and events: then
        /// every task opens a span of its own.
        pub(crate) fn is_recorded(&self) -> bool {
            !self.0.is_disabled()
        }

        /// Enters the span on this thread until the guard drops.
        pub(crate) fn enter(&self) -> StepEntered<'_> {
            if self.0.is_disabled() {
                return StepEntered(None);
            }
            StepEntered(guarded(|| self.0.enter()))
        }

        /// Records the step's final status; a cancel or a passed deadline is
        /// also an event.
        pub(crate) fn finish(&self, status: ExecutionStatus, timed_out: bool) {
            if self.0.is_disabled() {
                return;
            }
            guarded(|| {
                self.0.record("status", status.as_str());
                if timed_out {
                    tracing::warn!(target: TARGET, parent: &self.0, status = status.as_str(), "step deadline passed");
                } else if status == ExecutionStatus::Cancelled {
                    tracing::warn!(target: TARGET, parent: &self.0, status = status.as_str(), "step cancelled");
                }
            });
        }
    }

    /// The span of one attempt at a task, entered on the thread that runs
    /// it, with the step's span as its parent; nothing when the step's span
    /// is disabled (no subscriber, or one that drops steps), so that a task
    /// pays one branch on the step's span, not the span macro's checks.
    pub(crate) struct TaskSpan(Option<Entered>);

    struct Entered {
        span: tracing::span::EnteredSpan,
        /// Where retry events go: the attempt's span, or the step's when a
        /// subscriber takes steps but not tasks (at `debug`), so the event
        /// still lands in its step rather than at the root.
        events: Option<tracing::Id>,
    }

    impl TaskSpan {
        /// No span: for an attempt in a step nobody traces.
        #[inline(always)]
        pub(crate) fn idle() -> Self {
            Self(None)
        }

        #[inline]
        pub(crate) fn enter(
            step: &StepSpan,
            names: (&str, &str),
            task: &str,
            attempt: u32,
            executor: &ExecutorRef,
        ) -> Self {
            if step.0.is_disabled() {
                Self(None)
            } else {
                Self(guarded(|| Self::open(step, names, task, attempt, executor)))
            }
        }

        // Out of line, so the task loop carries only the branch above.
        #[cold]
        #[inline(never)]
        fn open(
            step: &StepSpan,
            (pipeline, step_name): (&str, &str),
            task: &str,
            attempt: u32,
            executor: &ExecutorRef,
        ) -> Entered {
            let span = tracing::span!(
                target: TARGET,
                parent: &step.0,
                Level::TRACE,
                "task",
                pipeline,
                step = step_name,
                task,
                attempt,
                executor = %Executor(executor),
                thread = thread_number(),
                status = Empty
            );
            let events = span.id().or_else(|| step.0.id());
            Entered {
                span: span.entered(),
                events,
            }
        }

        /// Records how the attempt ended: `succeeded`, or the failure's kind.
        #[inline]
        pub(crate) fn finish(&self, failure: Option<&TaskFailure>) {
            if let Some(entered) = &self.0 {
                guarded(|| {
                    entered
                        .span
                        .record("status", failure.map_or("succeeded", TaskFailure::kind));
                });
            }
        }

        /// The attempt failed and the task will run again after `delay`.
        pub(crate) fn retrying(&self, attempt: u32, max_attempts: u32, delay: Duration, error: &TaskFailure) {
            let Some(entered) = &self.0 else { return };
            let delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
            guarded(|| {
                tracing::info!(
                    target: TARGET,
                    parent: entered.events.clone(),
                    attempt,
                    max_attempts,
                    delay_us,
                    error = %error,
                    "retrying"
                );
            });
        }

        /// The attempt failed and was the task's last allowed one.
        pub(crate) fn retries_exhausted(&self, attempts: u32, error: &TaskFailure) {
            let Some(entered) = &self.0 else { return };
            guarded(|| {
                tracing::warn!(
                    target: TARGET,
                    parent: entered.events.clone(),
                    attempts,
                    error = %error,
                    "retries exhausted"
                );
            });
        }
    }

    impl Drop for TaskSpan {
        #[inline]
        fn drop(&mut self) {
            if let Some(entered) = self.0.take() {
                close(entered);
            }
        }
    }

    /// The executor a task asked for, as its config or registered name.
    struct Executor<'a>(&'a ExecutorRef);

    impl std::fmt::Display for Executor<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self.0 {
                ExecutorRef::Default => f.write_str("default"),
                ExecutorRef::Named(name) => f.write_str(name),
                ExecutorRef::Config(config) => config.fmt(f),
            }
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod off {
    //! The same calls as with the feature, doing nothing: zero-sized types
    //! and empty inline functions that the optimiser removes.

    use std::time::Duration;

    use crate::error::{RunError, TaskFailure};
    use crate::ids::ContextId;
    use crate::model::task::ExecutorRef;
    use crate::status::ExecutionStatus;

    pub(crate) struct RunSpan;

    impl RunSpan {
        #[inline(always)]
        pub(crate) fn enter(_pipeline: &str) -> Self {
            Self
        }

        #[inline(always)]
        pub(crate) fn handle(&self) -> RunHandle {
            RunHandle
        }

        #[inline(always)]
        pub(crate) fn finish(&self, _status: ExecutionStatus, _failure: Option<&RunError>) {}
    }

    pub(crate) struct RunHandle;

    impl RunHandle {
        #[inline(always)]
        pub(crate) fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
            f()
        }
    }

    // A private field rather than a unit struct, so that callers write
    // `StepSpan::default()` the same way with the feature on and off.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct StepSpan(());

    /// Stands in for the guard of an entered span.
    #[must_use]
    pub(crate) struct NotEntered;

    impl StepSpan {
        #[inline(always)]
        pub(crate) fn new(_pipeline: &str, _step: &str, _context: ContextId, _tasks: usize) -> Self {
            Self(())
        }

        #[inline(always)]
        pub(crate) fn is_recorded(&self) -> bool {
            false
        }

        #[inline(always)]
        pub(crate) fn enter(&self) -> NotEntered {
            NotEntered
        }

        #[inline(always)]
        pub(crate) fn finish(&self, _status: ExecutionStatus, _timed_out: bool) {}
    }

    pub(crate) struct TaskSpan;

    impl TaskSpan {
        #[inline(always)]
        pub(crate) fn idle() -> Self {
            Self
        }

        #[inline(always)]
        pub(crate) fn enter(
            _step: &StepSpan,
            _names: (&str, &str),
            _task: &str,
            _attempt: u32,
            _executor: &ExecutorRef,
        ) -> Self {
            Self
        }

        #[inline(always)]
        pub(crate) fn finish(&self, _failure: Option<&TaskFailure>) {}

        #[inline(always)]
        pub(crate) fn retrying(&self, _attempt: u32, _max: u32, _delay: Duration, _error: &TaskFailure) {}

        #[inline(always)]
        pub(crate) fn retries_exhausted(&self, _attempts: u32, _error: &TaskFailure) {}
    }

    // The types stand in for spans at no cost: a step run stays as large
    // as it was without the feature.
    const _: () = assert!(std::mem::size_of::<StepSpan>() == 0 && std::mem::size_of::<TaskSpan>() == 0);
}
