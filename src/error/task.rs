//! What a task returns, and how the engine records a task that did not
//! succeed.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::run::DeadlineScope;

/// A shared, thread-safe error cause: what `source()` gives.
///
/// It derefs to the error itself, so `source()` of an error holding it
/// returns the original error (a `downcast_ref` finds its type), not a
/// wrapper around it.
#[derive(Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync + 'static>);

impl Cause {
    /// Shares `error` as a cause.
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

impl From<Box<dyn StdError + Send + Sync + 'static>> for Cause {
    fn from(error: Box<dyn StdError + Send + Sync + 'static>) -> Self {
        Self(Arc::from(error))
    }
}

impl std::ops::Deref for Cause {
    type Target = dyn StdError + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// The error a task returns.
///
/// Anything that converts into `Box<dyn Error + Send + Sync>` converts into
/// it, so `?` works inside tasks on any `std::error::Error + Send + Sync +
/// 'static`, on `anyhow::Error`, and on `String` and `&str` messages.
/// [`TaskError::msg`] makes one from anything printable. Like
/// `anyhow::Error`, it does not itself implement `Error`: that would clash
/// with the blanket conversion. The engine records it as
/// [`TaskFailure::Failed`], whose `source()` is the original error.
///
/// ```
/// use conveyor::TaskError;
/// fn parse(s: &str) -> Result<u64, TaskError> {
///     Ok(s.trim().parse::<u64>()?)
/// }
/// assert!(parse("12").is_ok());
/// assert_eq!(parse("x").unwrap_err().to_string(), "invalid digit found in string");
/// ```
#[derive(Clone)]
pub struct TaskError {
    cause: Cause,
    stop: bool,
}

impl TaskError {
    /// An error with just a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            cause: Cause::new(Message(message.to_string())),
            stop: false,
        }
    }

    /// Asks the whole run to stop (the original's `StopProcessingError`):
    /// the task is recorded as [`TaskFailure::Stopped`], it is not retried,
    /// the other tasks of its step finish, no further step runs, and the run
    /// ends `Cancelled`.
    pub fn stop(reason: impl fmt::Display) -> Self {
        Self {
            stop: true,
            ..Self::msg(reason)
        }
    }

    /// Whether this error asks the run to stop.
    #[must_use]
    pub fn is_stop(&self) -> bool {
        self.stop
    }

    /// The underlying error.
    #[must_use]
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.cause
    }

    /// The underlying error, shared.
    #[must_use]
    pub fn into_cause(self) -> Cause {
        self.cause
    }
}

impl<E: Into<Box<dyn StdError + Send + Sync + 'static>>> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self {
            cause: Cause::from(e.into()),
            stop: false,
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.cause, f)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.cause, f)
    }
}

#[derive(Debug)]
pub(crate) struct Message(pub(crate) String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

/// How one task of a step did not succeed, as the engine records it in the
/// step's [`ExecutionState`](crate::ExecutionState).
///
/// Every task yields exactly one outcome: a value, or one of these.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TaskFailure {
    /// The task returned an error; `source()` is that error.
    #[error("task `{task}` in step `{step}` failed on attempt {attempt}")]
    Failed {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The error the task returned.
        #[source]
        cause: Cause,
    },
    /// The task panicked; the panic was caught.
    #[error("task `{task}` in step `{step}` panicked on attempt {attempt}: {message}")]
    Panicked {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// The attempt that panicked, from 1.
        attempt: u32,
        /// The panic's message, or a placeholder for non-string payloads.
        message: String,
    },
    /// User code around the task panicked: a retry predicate, or a custom
    /// executor's `spawn`. The panic was caught.
    #[error("the {place} of task `{task}` in step `{step}` panicked: {message}")]
    HookPanicked {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Which piece of user code panicked.
        place: &'static str,
        /// The panic's message.
        message: String,
    },
    /// An executor lost the task: a custom executor dropped its job, or an
    /// OS thread could not be started.
    #[error("executor {executor} could not run task `{task}` in step `{step}`: {message}")]
    Dispatch {
        /// The executor, as its config prints.
        executor: Arc<str>,
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// What went wrong.
        message: String,
    },
    /// The task's job ended without reporting an outcome. The dispatchers
    /// prevent this; it exists so that a bug shows up as an error, not a
    /// hang.
    #[error("task `{task}` in step `{step}` ended without reporting an outcome")]
    Lost {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
    },
    /// Every attempt of a task failed; `source()` is the last attempt's
    /// failure.
    #[error("task `{task}` in step `{step}` failed all {attempts} attempts")]
    RetriesExhausted {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Attempts made.
        attempts: u32,
        /// The failures of the attempts before the last, first to last.
        earlier: Vec<TaskFailure>,
        /// The last attempt's failure.
        #[source]
        last: Box<TaskFailure>,
    },
    /// The task asked the run to stop by returning [`TaskError::stop`].
    #[error("task `{task}` in step `{step}` stopped the run: {reason}")]
    Stopped {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Its reason.
        reason: String,
    },
    /// The run was cancelled before the task finished.
    #[error("task `{task}` in step `{step}` was cancelled{}", after_attempts(*.attempts))]
    Cancelled {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Attempts made before the cancel (0: it never started).
        attempts: u32,
    },
    /// The task did not finish before its step's or run's deadline.
    #[error("task `{task}` in step `{step}` did not finish within the {scope} deadline of {limit:?}")]
    TimedOut {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Whose deadline.
        scope: DeadlineScope,
        /// The deadline's length.
        limit: Duration,
    },
    /// A failure read back from a report or checkpoint whose variant cannot
    /// be rebuilt exactly (its cause was not saved); see
    /// [`ErrorRecord::into_failure`](crate::error::ErrorRecord::into_failure).
    #[error("task `{task}` in step `{step}` ({kind}): {message}")]
    Recorded {
        /// The original failure's [`kind`](TaskFailure::kind).
        kind: String,
        /// The task.
        task: Arc<str>,
        /// The step.
        step: Arc<str>,
        /// The attempt it was about, if any.
        attempt: Option<u32>,
        /// The original failure's message.
        message: String,
    },
}

impl TaskFailure {
    /// The task this failure is about.
    #[must_use]
    pub fn task(&self) -> &str {
        match self {
            Self::Failed { task, .. }
            | Self::Panicked { task, .. }
            | Self::HookPanicked { task, .. }
            | Self::Dispatch { task, .. }
            | Self::Lost { task, .. }
            | Self::RetriesExhausted { task, .. }
            | Self::Stopped { task, .. }
            | Self::Cancelled { task, .. }
            | Self::TimedOut { task, .. }
            | Self::Recorded { task, .. } => task,
        }
    }

    /// The step this failure is about.
    #[must_use]
    pub fn step(&self) -> &str {
        match self {
            Self::Failed { step, .. }
            | Self::Panicked { step, .. }
            | Self::HookPanicked { step, .. }
            | Self::Dispatch { step, .. }
            | Self::Lost { step, .. }
            | Self::RetriesExhausted { step, .. }
            | Self::Stopped { step, .. }
            | Self::Cancelled { step, .. }
            | Self::TimedOut { step, .. }
            | Self::Recorded { step, .. } => step,
        }
    }

    /// The attempt this failure is about, from 1, when it is about one; for
    /// [`RetriesExhausted`](Self::RetriesExhausted), the attempts made.
    #[must_use]
    pub fn attempt(&self) -> Option<u32> {
        match self {
            Self::Failed { attempt, .. } | Self::Panicked { attempt, .. } => Some(*attempt),
            Self::RetriesExhausted { attempts, .. } => Some(*attempts),
            Self::Recorded { attempt, .. } => *attempt,
            _ => None,
        }
    }

    /// A stable snake_case name for the variant (`"task_failed"`,
    /// `"task_panicked"`, …), for reports and scripts. For
    /// [`Recorded`](Self::Recorded) failures, the kind of the original.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::Failed { .. } => "task_failed",
            Self::Panicked { .. } => "task_panicked",
            Self::HookPanicked { .. } => "hook_panicked",
            Self::Dispatch { .. } => "dispatch",
            Self::Lost { .. } => "task_lost",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::Stopped { .. } => "stopped",
            Self::Cancelled { .. } => "task_cancelled",
            Self::TimedOut { .. } => "task_timed_out",
            Self::Recorded { kind, .. } => kind,
        }
    }

    /// The message this failure carries of its own: the task's error, the
    /// panic's message, the stop reason; for the others, the whole text.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::Failed { cause, .. } => cause.to_string(),
            Self::Panicked { message, .. }
            | Self::HookPanicked { message, .. }
            | Self::Recorded { message, .. } => message.clone(),
            Self::Stopped { reason, .. } => reason.clone(),
            Self::RetriesExhausted { last, .. } => last.message(),
            other => other.to_string(),
        }
    }

    /// Whether the task ran out of time or was cancelled, as opposed to
    /// failing on its own.
    #[must_use]
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Cancelled { .. } | Self::TimedOut { .. })
    }
}

fn after_attempts(attempts: u32) -> String {
    if attempts == 0 {
        " before it started".to_owned()
    } else {
        format!(" after {attempts} attempts")
    }
}
