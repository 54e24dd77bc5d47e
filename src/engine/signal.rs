//! Telling observers what happens during a run.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::unwind;
use crate::error::TaskFailure;
use crate::ids::{ContextId, RunId};
use crate::model::strategy::EvaluationResult;
use crate::status::ExecutionStatus;

/// A run as a whole started or ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PipelineEvent<'a> {
    /// The run; a resumed run keeps the id of the run that saved it.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Tasks over every step of the pipeline: the run's total when it takes
    /// every step once, an upper bound when branches skip some.
    pub total_tasks: usize,
    /// The run's final status; `None` at the start.
    pub status: Option<ExecutionStatus>,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// A context (one step's run) changed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ContextEvent<'a> {
    /// The run.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Tasks over every step of the pipeline, as in [`PipelineEvent`].
    pub total_tasks: usize,
    /// Whether the context was restored from a checkpoint instead of run:
    /// it finished in an earlier process, and its events are sent again at
    /// the start of the resumed run.
    pub restored: bool,
    /// The step's name.
    pub step: &'a str,
    /// The context.
    pub context: ContextId,
    /// Number of tasks in the step.
    pub tasks: usize,
    /// The context's status after the change.
    pub status: ExecutionStatus,
    /// The errors of its tasks, once it has ended.
    pub errors: &'a [TaskFailure],
    /// The strategy's verdict, once it has ended.
    pub evaluation: Option<&'a EvaluationResult>,
}

/// A task started or ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaskEvent<'a> {
    /// The run.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Tasks over every step of the pipeline, as in [`PipelineEvent`].
    pub total_tasks: usize,
    /// Whether the task's value was restored from a checkpoint instead of
    /// run again.
    pub restored: bool,
    /// The step's name.
    pub step: &'a str,
    /// The context.
    pub context: ContextId,
    /// The task's name.
    pub task: &'a str,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The thread running it (process-unique small number).
    pub thread: u64,
    /// The error it ended with, at the end of a failed task.
    pub error: Option<&'a TaskFailure>,
    /// How long it ran; zero at its start.
    pub elapsed: Duration,
}

/// A failed attempt that will be retried, or the last attempt of a task
/// that has run out of attempts.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RetryEvent<'a> {
    /// The run.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Tasks over every step of the pipeline, as in [`PipelineEvent`].
    pub total_tasks: usize,
    /// The step's name.
    pub step: &'a str,
    /// The context.
    pub context: ContextId,
    /// The task's name.
    pub task: &'a str,
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// The policy's attempt limit.
    pub max_attempts: u32,
    /// The wait before the next attempt; zero when retries are exhausted.
    pub delay: Duration,
    /// The failed attempt's error.
    pub error: &'a TaskFailure,
}

/// A task's value, handed to the callback given to
/// [`PipelineExecutorBuilder::on_result`](crate::PipelineExecutorBuilder::on_result)
/// as soon as the task succeeds.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaskOutput<'a, T> {
    /// The run.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// The step's name.
    pub step: &'a str,
    /// The context.
    pub context: ContextId,
    /// The task's name.
    pub task: &'a str,
    /// The task's position in its step.
    pub index: usize,
    /// What it returned.
    pub value: &'a T,
}

/// A checkpoint was read, or records were saved to it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CheckpointEvent<'a> {
    /// The run.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Tasks over every step of the pipeline, as in [`PipelineEvent`].
    pub total_tasks: usize,
    /// For a save, the step whose record was saved.
    pub step: Option<&'a str>,
    /// Bytes read, or bytes saved since the previous save event (the
    /// step's task records and its step record).
    pub bytes: u64,
    /// Time spent reading, or writing those bytes.
    pub elapsed: Duration,
    /// For a load, the steps and the tasks it restored (tasks of the
    /// interrupted step included).
    pub restored_steps: usize,
    /// See `restored_steps`.
    pub restored_tasks: usize,
}

/// Hooks called as a run goes. Every hook has a no-op default, so an
/// observer implements only what it needs.
///
/// Hooks are called from the threads that run the work (task hooks from pool
/// threads), so they should be quick. A panicking hook is caught and logged,
/// and the run goes on.
///
/// Order, as in the original engine: `pipeline_started`; then per step
/// `context_initialized`, `context_started`, per task `task_started` and
/// `task_finished`, then one of `context_finished`, `context_aborted` or
/// `context_cancelled`; finally `pipeline_finished`, or `pipeline_stopped`
/// when the run was cancelled.
///
/// A run resumed from a checkpoint sends, after `pipeline_started`,
/// `checkpoint_loaded`, then the events of every restored step and task in
/// the same order, each marked `restored`; a resumed step's tasks that
/// already succeeded are sent as restored `task_started` and
/// `task_finished` when the step starts. A checkpointed run sends
/// `checkpoint_saved` after each step's record is saved, from the thread
/// that writes the log.
pub trait Observer: Send + Sync {
    /// A run started.
    fn pipeline_started(&self, _event: &PipelineEvent<'_>) {}
    /// A run ended (finished or aborted).
    fn pipeline_finished(&self, _event: &PipelineEvent<'_>) {}
    /// A run was cancelled; `pipeline_finished` is not sent.
    fn pipeline_stopped(&self, _event: &PipelineEvent<'_>) {}
    /// A context was created and linked.
    fn context_initialized(&self, _event: &ContextEvent<'_>) {}
    /// A context began executing.
    fn context_started(&self, _event: &ContextEvent<'_>) {}
    /// A context finished and its strategy judged it a success.
    fn context_finished(&self, _event: &ContextEvent<'_>) {}
    /// A context was aborted.
    fn context_aborted(&self, _event: &ContextEvent<'_>) {}
    /// A context was cancelled.
    fn context_cancelled(&self, _event: &ContextEvent<'_>) {}
    /// A task attempt started.
    fn task_started(&self, _event: &TaskEvent<'_>) {}
    /// A task ended, with a value or an error.
    fn task_finished(&self, _event: &TaskEvent<'_>) {}
    /// A task attempt failed and will be retried after `event.delay`.
    fn task_retrying(&self, _event: &RetryEvent<'_>) {}
    /// A task failed its last allowed attempt.
    fn task_retries_exhausted(&self, _event: &RetryEvent<'_>) {}
    /// A run read its checkpoint and resumes from it.
    fn checkpoint_loaded(&self, _event: &CheckpointEvent<'_>) {}
    /// A step's records reached the checkpoint store.
    fn checkpoint_saved(&self, _event: &CheckpointEvent<'_>) {}
}

/// Forwards every hook through a smart pointer, so boxed and shared
/// observers are observers too.
macro_rules! forward_observer {
    ($($ptr:ident),*) => {$(
        impl<O: Observer + ?Sized> Observer for $ptr<O> {
            fn pipeline_started(&self, e: &PipelineEvent<'_>) {
                (**self).pipeline_started(e);
            }
            fn pipeline_finished(&self, e: &PipelineEvent<'_>) {
                (**self).pipeline_finished(e);
            }
            fn pipeline_stopped(&self, e: &PipelineEvent<'_>) {
                (**self).pipeline_stopped(e);
            }
            fn context_initialized(&self, e: &ContextEvent<'_>) {
                (**self).context_initialized(e);
            }
            fn context_started(&self, e: &ContextEvent<'_>) {
                (**self).context_started(e);
            }
            fn context_finished(&self, e: &ContextEvent<'_>) {
                (**self).context_finished(e);
            }
            fn context_aborted(&self, e: &ContextEvent<'_>) {
                (**self).context_aborted(e);
            }
            fn context_cancelled(&self, e: &ContextEvent<'_>) {
                (**self).context_cancelled(e);
            }
            fn task_started(&self, e: &TaskEvent<'_>) {
                (**self).task_started(e);
            }
            fn task_finished(&self, e: &TaskEvent<'_>) {
                (**self).task_finished(e);
            }
            fn task_retrying(&self, e: &RetryEvent<'_>) {
                (**self).task_retrying(e);
            }
            fn task_retries_exhausted(&self, e: &RetryEvent<'_>) {
                (**self).task_retries_exhausted(e);
            }
            fn checkpoint_loaded(&self, e: &CheckpointEvent<'_>) {
                (**self).checkpoint_loaded(e);
            }
            fn checkpoint_saved(&self, e: &CheckpointEvent<'_>) {
                (**self).checkpoint_saved(e);
            }
        }
    )*};
}

forward_observer!(Box, Arc);

/// One signal, as the closure adapter [`observer_fn`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Signal<'a> {
    /// See [`Observer::pipeline_started`].
    PipelineStarted(&'a PipelineEvent<'a>),
    /// See [`Observer::pipeline_finished`].
    PipelineFinished(&'a PipelineEvent<'a>),
    /// See [`Observer::pipeline_stopped`].
    PipelineStopped(&'a PipelineEvent<'a>),
    /// See [`Observer::context_initialized`].
    ContextInitialized(&'a ContextEvent<'a>),
    /// See [`Observer::context_started`].
    ContextStarted(&'a ContextEvent<'a>),
    /// See [`Observer::context_finished`].
    ContextFinished(&'a ContextEvent<'a>),
    /// See [`Observer::context_aborted`].
    ContextAborted(&'a ContextEvent<'a>),
    /// See [`Observer::context_cancelled`].
    ContextCancelled(&'a ContextEvent<'a>),
    /// See [`Observer::task_started`].
    TaskStarted(&'a TaskEvent<'a>),
    /// See [`Observer::task_finished`].
    TaskFinished(&'a TaskEvent<'a>),
    /// See [`Observer::task_retrying`].
    TaskRetrying(&'a RetryEvent<'a>),
    /// See [`Observer::task_retries_exhausted`].
    TaskRetriesExhausted(&'a RetryEvent<'a>),
    /// See [`Observer::checkpoint_loaded`].
    CheckpointLoaded(&'a CheckpointEvent<'a>),
    /// See [`Observer::checkpoint_saved`].
    CheckpointSaved(&'a CheckpointEvent<'a>),
}

/// An [`Observer`] made from a closure; see [`observer_fn`].
pub struct FnObserver<F>(F);

/// Makes an observer from a closure that receives every [`Signal`].
///
/// ```
/// use conveyor::observer_fn;
/// use conveyor::signal::Signal;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let tasks = AtomicUsize::new(0);
/// let observer = observer_fn(move |s| {
///     if let Signal::TaskFinished(_) = s {
///         tasks.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// # let _ = observer;
/// ```
pub fn observer_fn<F: Fn(Signal<'_>) + Send + Sync>(f: F) -> FnObserver<F> {
    FnObserver(f)
}

impl<F: Fn(Signal<'_>) + Send + Sync> Observer for FnObserver<F> {
    fn task_retrying(&self, e: &RetryEvent<'_>) {
        (self.0)(Signal::TaskRetrying(e));
    }
    fn task_retries_exhausted(&self, e: &RetryEvent<'_>) {
        (self.0)(Signal::TaskRetriesExhausted(e));
    }
    fn pipeline_started(&self, e: &PipelineEvent<'_>) {
        (self.0)(Signal::PipelineStarted(e));
    }
    fn pipeline_finished(&self, e: &PipelineEvent<'_>) {
        (self.0)(Signal::PipelineFinished(e));
    }
    fn pipeline_stopped(&self, e: &PipelineEvent<'_>) {
        (self.0)(Signal::PipelineStopped(e));
    }
    fn context_initialized(&self, e: &ContextEvent<'_>) {
        (self.0)(Signal::ContextInitialized(e));
    }
    fn context_started(&self, e: &ContextEvent<'_>) {
        (self.0)(Signal::ContextStarted(e));
    }
    fn context_finished(&self, e: &ContextEvent<'_>) {
        (self.0)(Signal::ContextFinished(e));
    }
    fn context_aborted(&self, e: &ContextEvent<'_>) {
        (self.0)(Signal::ContextAborted(e));
    }
    fn context_cancelled(&self, e: &ContextEvent<'_>) {
        (self.0)(Signal::ContextCancelled(e));
    }
    fn task_started(&self, e: &TaskEvent<'_>) {
        (self.0)(Signal::TaskStarted(e));
    }
    fn task_finished(&self, e: &TaskEvent<'_>) {
        (self.0)(Signal::TaskFinished(e));
    }
    fn checkpoint_loaded(&self, e: &CheckpointEvent<'_>) {
        (self.0)(Signal::CheckpointLoaded(e));
    }
    fn checkpoint_saved(&self, e: &CheckpointEvent<'_>) {
        (self.0)(Signal::CheckpointSaved(e));
    }
}

impl<F> fmt::Debug for FnObserver<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FnObserver").field(&"<closure>").finish()
    }
}

/// An observer that writes every signal to the `log` crate: runs at `info`,
/// contexts at `debug`, tasks at `trace`, failures at `warn`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogObserver;

impl Observer for LogObserver {
    fn task_retrying(&self, e: &RetryEvent<'_>) {
        log::info!(
            "{} task `{}` attempt {}/{} failed, retrying in {:?}: {}",
            e.context,
            e.task,
            e.attempt,
            e.max_attempts,
            e.delay,
            e.error
        );
    }
    fn task_retries_exhausted(&self, e: &RetryEvent<'_>) {
        log::warn!(
            "{} task `{}` failed all {} attempts",
            e.context,
            e.task,
            e.attempt
        );
    }
    fn pipeline_started(&self, e: &PipelineEvent<'_>) {
        log::info!("pipeline `{}` started", e.pipeline);
    }
    fn pipeline_finished(&self, e: &PipelineEvent<'_>) {
        let status = e.status.unwrap_or(ExecutionStatus::Finished);
        if status.is_failure() {
            log::warn!("pipeline `{}` {status} after {:?}", e.pipeline, e.elapsed);
        } else {
            log::info!("pipeline `{}` {status} in {:?}", e.pipeline, e.elapsed);
        }
    }
    fn pipeline_stopped(&self, e: &PipelineEvent<'_>) {
        log::warn!("pipeline `{}` stopped after {:?}", e.pipeline, e.elapsed);
    }
    fn context_started(&self, e: &ContextEvent<'_>) {
        log::debug!("{} step `{}` started: {} tasks", e.context, e.step, e.tasks);
    }
    fn context_finished(&self, e: &ContextEvent<'_>) {
        log::debug!(
            "{} step `{}` finished with {} errors",
            e.context,
            e.step,
            e.errors.len()
        );
    }
    fn context_aborted(&self, e: &ContextEvent<'_>) {
        log::warn!(
            "{} step `{}` aborted: {} errors",
            e.context,
            e.step,
            e.errors.len()
        );
        for err in e.errors {
            log::warn!("  {err}");
        }
    }
    fn context_cancelled(&self, e: &ContextEvent<'_>) {
        log::warn!("{} step `{}` cancelled", e.context, e.step);
    }
    fn task_started(&self, e: &TaskEvent<'_>) {
        log::trace!("{} task `{}` attempt {} started", e.context, e.task, e.attempt);
    }
    fn task_finished(&self, e: &TaskEvent<'_>) {
        match e.error {
            Some(err) => log::warn!("{} {err}", e.context),
            None => log::trace!("{} task `{}` done in {:?}", e.context, e.task, e.elapsed),
        }
    }
    fn checkpoint_loaded(&self, e: &CheckpointEvent<'_>) {
        log::info!(
            "{} resumed from its checkpoint: {} steps and {} tasks restored, {} bytes read in {:?}",
            e.run,
            e.restored_steps,
            e.restored_tasks,
            e.bytes,
            e.elapsed
        );
    }
    fn checkpoint_saved(&self, e: &CheckpointEvent<'_>) {
        log::debug!(
            "{} step `{}` saved: {} bytes in {:?}",
            e.run,
            e.step.unwrap_or(""),
            e.bytes,
            e.elapsed
        );
    }
}

/// Fans every signal out to the registered observers, catching their panics.
#[derive(Clone, Default)]
pub(crate) struct SignalEmitter {
    observers: Vec<Arc<dyn Observer>>,
}

impl SignalEmitter {
    /// An emitter without observers.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an observer; signals reach observers in the order they were added.
    pub(crate) fn add(&mut self, observer: impl Observer + 'static) {
        self.observers.push(Arc::new(observer));
    }

    /// Whether there are no observers; the engine then skips building events.
    #[must_use]
    pub(crate) fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }

    /// Calls `hook` on every observer. A panic in one observer is caught and
    /// logged at `error`, and the others still get the signal.
    pub(crate) fn emit(&self, hook: impl Fn(&dyn Observer)) {
        for observer in &self.observers {
            if let Err(message) = unwind::catch(|| hook(&**observer)) {
                log::error!("an observer panicked and was skipped: {message}");
            }
        }
    }
}

impl fmt::Debug for SignalEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalEmitter")
            .field("observers", &self.observers.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn event() -> PipelineEvent<'static> {
        PipelineEvent {
            run: RunId::from(1),
            pipeline: "p",
            total_tasks: 0,
            status: None,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn a_panicking_observer_does_not_stop_the_others() {
        let seen = Arc::new(AtomicUsize::new(0));
        let mut emitter = SignalEmitter::new();
        emitter.add(observer_fn(|_| panic!("observer bug")));
        let s = Arc::clone(&seen);
        emitter.add(observer_fn(move |sig| {
            if let Signal::PipelineStarted(e) = sig {
                assert_eq!(e.pipeline, "p");
                s.fetch_add(1, Ordering::Relaxed);
            }
        }));
        emitter.emit(|o| o.pipeline_started(&event()));
        assert_eq!(seen.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn boxed_and_shared_observers_forward() {
        struct Count(AtomicUsize);
        impl Observer for Count {
            fn pipeline_finished(&self, _: &PipelineEvent<'_>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let shared = Arc::new(Count(AtomicUsize::new(0)));
        let mut emitter = SignalEmitter::new();
        emitter.add(Arc::clone(&shared));
        emitter.add(Box::new(LogObserver) as Box<dyn Observer>);
        emitter.emit(|o| o.pipeline_finished(&event()));
        emitter.emit(|o| o.pipeline_started(&event()));
        assert_eq!(shared.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn observer_is_object_safe() {
        fn take(_: &dyn Observer) {}
        take(&LogObserver);
    }
}
