//! The one error type of the crate, and the error a task returns.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checkpoint::Fingerprint;
use crate::ids::ContextId;
use crate::model::config::ExecutorConfig;
use crate::model::strategy::EvaluationResult;
use crate::status::ExecutionStatus;

/// A shared, thread-safe error cause.
pub type Cause = Arc<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in conveyor, with the context to find it.
///
/// Build-time variants (empty pipeline, duplicate names, bad thresholds,
/// unknown executors) come back from `build()` or `execute` before anything
/// runs. Run-time variants (task failures, panics, cancels) are recorded in
/// the step's [`ExecutionState`](crate::ExecutionState) and in the
/// [`Run`](crate::Run).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A pipeline was built without steps.
    #[error("pipeline `{pipeline}` has no steps")]
    EmptyPipeline {
        /// The pipeline's name.
        pipeline: Arc<str>,
    },
    /// A step was declared without tasks.
    #[error("step `{step}` of pipeline `{pipeline}` has no tasks")]
    EmptyStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The step's name.
        step: Arc<str>,
    },
    /// A pipeline, step or task name is empty.
    #[error("pipeline `{pipeline}` has an empty {what} name")]
    EmptyName {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// "step" or "task".
        what: &'static str,
    },
    /// Two tasks of one pipeline share a name.
    #[error(
        "task `{task}` appears twice in pipeline `{pipeline}`: in step `{first_step}` and in step `{second_step}`"
    )]
    DuplicateTask {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The repeated task name.
        task: Arc<str>,
        /// The step of the first occurrence.
        first_step: Arc<str>,
        /// The step of the second occurrence.
        second_step: Arc<str>,
    },
    /// Two steps of one pipeline share a name.
    #[error("step `{step}` appears twice in pipeline `{pipeline}`")]
    DuplicateStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The repeated step name.
        step: Arc<str>,
    },
    /// A strategy's threshold is out of range.
    #[error("{strategy} threshold {value} is out of range: expected {expected}{}", in_step(.step))]
    InvalidThreshold {
        /// The strategy's name.
        strategy: String,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
        /// The step it was set on, once known.
        step: Option<Arc<str>>,
    },
    /// A pool was asked for with zero threads.
    #[error("executor `{executor}` asks for a pool of zero threads")]
    ZeroThreads {
        /// The executor's name, or its config when it has none.
        executor: String,
    },
    /// An executor was registered under an empty name.
    #[error("an executor name must not be empty")]
    EmptyExecutorName,
    /// An executor name was registered twice.
    #[error("executor `{name}` is already registered")]
    DuplicateExecutor {
        /// The repeated name.
        name: String,
    },
    /// A task or config names an executor that is not registered.
    #[error("no executor named `{name}` is registered{}", for_task(.task, .step))]
    UnknownExecutor {
        /// The unknown name.
        name: String,
        /// The task that asked for it, when a task did.
        task: Option<Arc<str>>,
        /// That task's step.
        step: Option<Arc<str>>,
    },
    /// rayon could not build a pool.
    #[error("could not build the {config} pool: {message}")]
    PoolBuild {
        /// The config of the pool.
        config: ExecutorConfig,
        /// rayon's message.
        message: String,
    },
    /// A strategy benchmark was set up so that it cannot measure anything.
    #[error("benchmark `{benchmark}` cannot run: {reason}")]
    InvalidBenchmark {
        /// The benchmark's name.
        benchmark: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A task returned an error.
    #[error("task `{task}` in step `{step}` failed on attempt {attempt}: {message}")]
    TaskFailed {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// The error's message.
        message: String,
        /// The error the task returned.
        #[source]
        cause: Cause,
    },
    /// A task panicked; the panic was caught.
    #[error("task `{task}` in step `{step}` panicked on attempt {attempt}: {message}")]
    TaskPanicked {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// The attempt that panicked, from 1.
        attempt: u32,
        /// The panic's message, or a placeholder for non-string payloads.
        message: String,
    },
    /// An executor lost a task: a custom executor dropped its job, or an OS
    /// thread could not be started.
    #[error("executor {executor} could not run task `{task}` in step `{step}`: {message}")]
    Dispatch {
        /// The executor's config.
        executor: ExecutorConfig,
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// What went wrong.
        message: String,
    },
    /// A task's job ended without reporting an outcome. The dispatchers
    /// prevent this; it exists so that a bug shows up as an error, not a hang.
    #[error("task `{task}` in step `{step}` ended without reporting an outcome")]
    TaskLost {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
    },
    /// A step's strategy judged it a failure; the run was aborted.
    #[error("step `{step}` failed under {}: {} of {} tasks succeeded", .evaluation.strategy, .evaluation.succeeded, .evaluation.total)]
    StepFailed {
        /// The step's name.
        step: Arc<str>,
        /// The strategy's verdict.
        evaluation: EvaluationResult,
        /// The errors of the step's tasks.
        errors: Vec<PipelineError>,
    },
    /// A state transition that the lifecycle does not allow.
    #[error("context {context} cannot move from {from} to {to}")]
    IllegalTransition {
        /// The context.
        context: ContextId,
        /// Its current status.
        from: ExecutionStatus,
        /// The refused status.
        to: ExecutionStatus,
    },
    /// A context id that is not known where it was looked up.
    #[error("context {context} is not known to this {place}")]
    UnknownContext {
        /// The id.
        context: ContextId,
        /// "chain" or "state manager".
        place: &'static str,
    },
    /// A context was linked into a chain that already holds its id.
    #[error("context {context} is already linked in this chain")]
    DuplicateContext {
        /// The id.
        context: ContextId,
    },
    /// A switch target outside 2 to 9.
    #[error("step `{step}` declares switch target {target}; targets are 2 to 9")]
    InvalidSwitch {
        /// The step.
        step: Arc<str>,
        /// The bad number.
        target: u8,
    },
    /// An edge leads to a step the pipeline does not have.
    #[error("step `{from}` of pipeline `{pipeline}` has an {edge} edge to `{to}`, which does not exist")]
    MissingStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The step the edge leaves.
        from: Arc<str>,
        /// The kind of edge: `then`, `on_success`, `on_failure`, `switch`, `sink`.
        edge: &'static str,
        /// The missing step.
        to: Arc<str>,
    },
    /// The pipeline's edges form a loop.
    #[error("pipeline `{pipeline}` loops: {}", join(.steps))]
    Cycle {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The steps around the loop, the first repeated at the end.
        steps: Vec<Arc<str>>,
    },
    /// No path from the first step leads to this step.
    #[error("step `{step}` of pipeline `{pipeline}` can never run: no path leads to it")]
    UnreachableStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The unreachable step.
        step: Arc<str>,
    },
    /// A task picked a switch target its step does not define.
    #[error("task `{task}` in step `{step}` switched to target {target}, which the step does not define")]
    UnknownSwitch {
        /// The step.
        step: Arc<str>,
        /// The task that picked it.
        task: Arc<str>,
        /// The number it picked.
        target: u8,
    },
    /// A retry policy setting is out of range.
    #[error("retry {setting} {value} is invalid: expected {expected}")]
    InvalidRetry {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Every attempt of a task failed.
    #[error("task `{task}` in step `{step}` failed all {attempts} attempts; last: {}", last(.errors))]
    RetriesExhausted {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Attempts made.
        attempts: u32,
        /// Every attempt's error, first to last.
        errors: Vec<PipelineError>,
    },
    /// A task asked the run to stop by returning [`TaskError::stop`].
    #[error("task `{task}` in step `{step}` stopped the run: {reason}")]
    Stopped {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Its reason.
        reason: String,
    },
    /// A task was not started because the run was cancelled.
    #[error("task `{task}` in step `{step}` was cancelled{}", after_attempts(*.attempts))]
    TaskCancelled {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// Attempts made before the cancel (0: it never started).
        attempts: u32,
    },
    /// A task did not finish before its step's or run's deadline.
    #[error("task `{task}` in step `{step}` did not finish within the {scope} deadline of {limit:?}")]
    TaskTimedOut {
        /// The task's name.
        task: Arc<str>,
        /// The step's name.
        step: Arc<str>,
        /// `"step"` or `"run"`.
        scope: &'static str,
        /// The deadline's length.
        limit: std::time::Duration,
    },
    /// A deadline passed: what `execute` returns. `errors` holds the step's
    /// errors, one per task that failed or did not finish in time.
    #[error("step `{step}` passed the {scope} deadline of {limit:?}; {} tasks did not finish", .errors.iter().filter(|e| matches!(e, PipelineError::TaskTimedOut { .. })).count())]
    Timeout {
        /// The step that was running.
        step: Arc<str>,
        /// `"step"` or `"run"`.
        scope: &'static str,
        /// The deadline's length.
        limit: std::time::Duration,
        /// The step's errors.
        errors: Vec<PipelineError>,
    },
    /// The run was cancelled, by a [`CancelToken`](crate::CancelToken) or by
    /// a task's request.
    #[error("run cancelled during step `{step}` by {by}")]
    Cancelled {
        /// The step that was running, or about to run.
        step: Arc<str>,
        /// Who asked: `"a cancel token"` or the task's name.
        by: String,
    },
    /// A step name that the pipeline does not have.
    #[error("pipeline `{pipeline}` has no step `{step}`")]
    UnknownStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The missing step.
        step: String,
    },
    /// An error read back from a report or checkpoint whose variant cannot
    /// be rebuilt exactly (its cause was not saved); see
    /// [`ErrorRecord::into_error`].
    #[error("{message}")]
    Recorded {
        /// The original error's [`kind`](PipelineError::kind).
        kind: String,
        /// The task it was about, if any.
        task: Option<Arc<str>>,
        /// The step it was about, if any.
        step: Option<Arc<str>>,
        /// The attempt it was about, if any.
        attempt: Option<u32>,
        /// The original error's message.
        message: String,
    },
    /// A snapshot of a context does not fit the pipeline it is restored
    /// into.
    #[error("snapshot of step `{step}` does not fit pipeline `{pipeline}`: {message}")]
    SnapshotMismatch {
        /// The pipeline restored into.
        pipeline: Arc<str>,
        /// The snapshot's step.
        step: Arc<str>,
        /// What does not fit.
        message: String,
    },
    /// A value could not be serialised.
    #[error("could not serialise the {what}: {message}")]
    Serialize {
        /// What was being serialised: "checkpoint", "report", "input".
        what: &'static str,
        /// serde's message.
        message: String,
    },
    /// A checkpoint store could not read or write.
    #[error("could not {operation} checkpoint `{}`: {message}", .path.display())]
    CheckpointIo {
        /// The file or folder involved.
        path: PathBuf,
        /// What was being done: "read", "write", "sync", "rename", "remove".
        operation: &'static str,
        /// The OS error's message.
        message: String,
        /// The OS error.
        #[source]
        cause: Cause,
    },
    /// A checkpoint is truncated, corrupt or not a checkpoint at all.
    #[error("checkpoint{} is corrupt: {message}", at(.path))]
    CheckpointCorrupt {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// What is wrong, with serde's message when the JSON did not parse.
        message: String,
    },
    /// A checkpoint was written in a format this version does not read.
    #[error("checkpoint{} has format version {found}; this build reads version {expected}", at(.path))]
    CheckpointVersion {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// The version this build reads.
        expected: u32,
        /// The version in the checkpoint.
        found: u32,
    },
    /// A checkpoint belongs to another pipeline or another input.
    #[error("checkpoint{} was saved for another {what}: expected fingerprint {expected}, found {found}", at(.path))]
    CheckpointMismatch {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// "pipeline" or "input".
        what: &'static str,
        /// The fingerprint of the pipeline or input being resumed.
        expected: Fingerprint,
        /// The fingerprint saved in the checkpoint.
        found: Fingerprint,
    },
    /// A checkpoint records a run that already finished: there is nothing
    /// to resume. Clear the store to run again.
    #[error("checkpoint{} records a finished run of pipeline `{pipeline}`; clear it to run again", at(.path))]
    CheckpointFinished {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// The pipeline's name.
        pipeline: Arc<str>,
    },
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" `{}`", p.display()))
        .unwrap_or_default()
}

fn join(steps: &[Arc<str>]) -> String {
    steps
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn last(errors: &[PipelineError]) -> String {
    errors.last().map(ToString::to_string).unwrap_or_default()
}

fn after_attempts(attempts: u32) -> String {
    if attempts == 0 {
        " before it started".to_owned()
    } else {
        format!(" after {attempts} attempts")
    }
}

fn in_step(step: &Option<Arc<str>>) -> String {
    step.as_ref()
        .map(|s| format!(" (step `{s}`)"))
        .unwrap_or_default()
}

fn for_task(task: &Option<Arc<str>>, step: &Option<Arc<str>>) -> String {
    match (task, step) {
        (Some(t), Some(s)) => format!(" (asked for by task `{t}` in step `{s}`)"),
        (Some(t), None) => format!(" (asked for by task `{t}`)"),
        _ => String::new(),
    }
}

impl PipelineError {
    /// The task this error is about, when it is about one.
    #[must_use]
    pub fn task(&self) -> Option<&str> {
        match self {
            Self::TaskFailed { task, .. }
            | Self::TaskPanicked { task, .. }
            | Self::Dispatch { task, .. }
            | Self::TaskLost { task, .. }
            | Self::RetriesExhausted { task, .. }
            | Self::Stopped { task, .. }
            | Self::TaskCancelled { task, .. }
            | Self::TaskTimedOut { task, .. }
            | Self::UnknownSwitch { task, .. }
            | Self::DuplicateTask { task, .. } => Some(task),
            Self::UnknownExecutor { task, .. } | Self::Recorded { task, .. } => task.as_deref(),
            _ => None,
        }
    }

    /// A stable snake_case name for the variant (`"task_failed"`,
    /// `"checkpoint_corrupt"`, …), for reports and scripts. For
    /// [`Recorded`](Self::Recorded) errors, the kind of the original.
    #[must_use]
    pub fn kind(&self) -> &str {
        match self {
            Self::EmptyPipeline { .. } => "empty_pipeline",
            Self::EmptyStep { .. } => "empty_step",
            Self::EmptyName { .. } => "empty_name",
            Self::DuplicateTask { .. } => "duplicate_task",
            Self::DuplicateStep { .. } => "duplicate_step",
            Self::InvalidThreshold { .. } => "invalid_threshold",
            Self::ZeroThreads { .. } => "zero_threads",
            Self::EmptyExecutorName => "empty_executor_name",
            Self::DuplicateExecutor { .. } => "duplicate_executor",
            Self::UnknownExecutor { .. } => "unknown_executor",
            Self::PoolBuild { .. } => "pool_build",
            Self::InvalidBenchmark { .. } => "invalid_benchmark",
            Self::TaskFailed { .. } => "task_failed",
            Self::TaskPanicked { .. } => "task_panicked",
            Self::Dispatch { .. } => "dispatch",
            Self::TaskLost { .. } => "task_lost",
            Self::StepFailed { .. } => "step_failed",
            Self::IllegalTransition { .. } => "illegal_transition",
            Self::UnknownContext { .. } => "unknown_context",
            Self::DuplicateContext { .. } => "duplicate_context",
            Self::InvalidSwitch { .. } => "invalid_switch",
            Self::MissingStep { .. } => "missing_step",
            Self::Cycle { .. } => "cycle",
            Self::UnreachableStep { .. } => "unreachable_step",
            Self::UnknownSwitch { .. } => "unknown_switch",
            Self::InvalidRetry { .. } => "invalid_retry",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::Stopped { .. } => "stopped",
            Self::TaskCancelled { .. } => "task_cancelled",
            Self::TaskTimedOut { .. } => "task_timed_out",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled { .. } => "cancelled",
            Self::UnknownStep { .. } => "unknown_step",
            Self::Recorded { kind, .. } => kind,
            Self::SnapshotMismatch { .. } => "snapshot_mismatch",
            Self::Serialize { .. } => "serialize",
            Self::CheckpointIo { .. } => "checkpoint_io",
            Self::CheckpointCorrupt { .. } => "checkpoint_corrupt",
            Self::CheckpointVersion { .. } => "checkpoint_version",
            Self::CheckpointMismatch { .. } => "checkpoint_mismatch",
            Self::CheckpointFinished { .. } => "checkpoint_finished",
        }
    }

    /// The step this error is about, when it is about one.
    #[must_use]
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::EmptyStep { step, .. }
            | Self::DuplicateStep { step, .. }
            | Self::TaskFailed { step, .. }
            | Self::TaskPanicked { step, .. }
            | Self::Dispatch { step, .. }
            | Self::TaskLost { step, .. }
            | Self::StepFailed { step, .. }
            | Self::InvalidSwitch { step, .. }
            | Self::UnreachableStep { step, .. }
            | Self::UnknownSwitch { step, .. }
            | Self::RetriesExhausted { step, .. }
            | Self::Stopped { step, .. }
            | Self::TaskCancelled { step, .. }
            | Self::TaskTimedOut { step, .. }
            | Self::Timeout { step, .. }
            | Self::Cancelled { step, .. }
            | Self::SnapshotMismatch { step, .. } => Some(step),
            Self::MissingStep { from, .. } => Some(from),
            Self::UnknownStep { step, .. } => Some(step),
            Self::InvalidThreshold { step, .. }
            | Self::UnknownExecutor { step, .. }
            | Self::Recorded { step, .. } => step.as_deref(),
            _ => None,
        }
    }

    /// The attempt this error is about, from 1, when it is about one.
    #[must_use]
    pub fn attempt(&self) -> Option<u32> {
        match self {
            Self::TaskFailed { attempt, .. } | Self::TaskPanicked { attempt, .. } => Some(*attempt),
            Self::RetriesExhausted { attempts, .. } => Some(*attempts),
            Self::Recorded { attempt, .. } => *attempt,
            _ => None,
        }
    }

    /// The error as plain, serialisable data.
    ///
    /// ```
    /// use conveyor::PipelineError;
    /// let err = PipelineError::TaskPanicked {
    ///     task: "hash".into(), step: "s1".into(), attempt: 2, message: "boom".into(),
    /// };
    /// let record = err.record();
    /// assert_eq!(record.kind, "task_panicked");
    /// assert_eq!(record.message, "boom");
    /// assert_eq!(record.into_error().to_string(), err.to_string());
    /// ```
    #[must_use]
    pub fn record(&self) -> ErrorRecord {
        let message = match self {
            Self::TaskFailed { message, .. }
            | Self::TaskPanicked { message, .. }
            | Self::Recorded { message, .. } => message.clone(),
            other => other.to_string(),
        };
        ErrorRecord {
            kind: self.kind().to_owned(),
            task: self.task().map(str::to_owned),
            step: self.step().map(str::to_owned),
            attempt: self.attempt(),
            message,
        }
    }

    /// The path of the checkpoint file this error is about, if any.
    #[must_use]
    pub fn checkpoint_path(&self) -> Option<&Path> {
        match self {
            Self::CheckpointIo { path, .. } => Some(path),
            Self::CheckpointCorrupt { path, .. }
            | Self::CheckpointVersion { path, .. }
            | Self::CheckpointMismatch { path, .. }
            | Self::CheckpointFinished { path, .. } => path.as_deref(),
            _ => None,
        }
    }
}

/// A [`PipelineError`] as plain data: what reports and checkpoints hold.
///
/// `PipelineError` carries causes that cannot be serialised; the record
/// keeps what a person or a script needs: the variant's stable `kind`, the
/// task, step and attempt it is about, and the message. For task errors the
/// message is the task's own (its name and step are in their own fields);
/// for the others it is the whole error's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// [`PipelineError::kind`]: `"task_failed"`, `"task_panicked"`, ….
    pub kind: String,
    /// The task it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The step it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The attempt it is about, from 1, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// What went wrong.
    pub message: String,
}

impl ErrorRecord {
    /// A record of `kind` with `message` and nothing else.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            task: None,
            step: None,
            attempt: None,
            message: message.into(),
        }
    }

    /// The error back. Task failures, panics and lost tasks come back as
    /// their own variants (a failure's cause becomes its message); every
    /// other kind comes back as [`PipelineError::Recorded`]. Either way
    /// `error.record()` gives this record again.
    #[must_use]
    pub fn into_error(self) -> PipelineError {
        match (self.kind.as_str(), self.task, self.step, self.attempt) {
            ("task_failed", Some(task), Some(step), Some(attempt)) => PipelineError::TaskFailed {
                task: task.into(),
                step: step.into(),
                attempt,
                cause: Arc::new(Message(self.message.clone())),
                message: self.message,
            },
            ("task_panicked", Some(task), Some(step), Some(attempt)) => PipelineError::TaskPanicked {
                task: task.into(),
                step: step.into(),
                attempt,
                message: self.message,
            },
            (kind, task, step, attempt) => PipelineError::Recorded {
                kind: kind.to_owned(),
                task: task.map(Into::into),
                step: step.map(Into::into),
                attempt,
                message: self.message,
            },
        }
    }
}

impl From<&PipelineError> for ErrorRecord {
    fn from(e: &PipelineError) -> Self {
        e.record()
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(step) = &self.step {
            write!(f, " in step `{step}`")?;
        }
        if let Some(task) = &self.task {
            write!(f, " task `{task}`")?;
        }
        if let Some(attempt) = self.attempt {
            write!(f, " attempt {attempt}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The error a task returns.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it, so `?`
/// works inside tasks; [`TaskError::msg`] makes one from a message. It does
/// not itself implement `Error` (that would clash with the blanket
/// conversion, as with `anyhow::Error`); the engine turns it into
/// [`PipelineError::TaskFailed`], which keeps the original as its source.
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
            cause: Arc::new(Message(message.to_string())),
            stop: false,
        }
    }

    /// Asks the whole run to stop (the original's `StopProcessingError`):
    /// the task is recorded as [`PipelineError::Stopped`], it is not
    /// retried, the other tasks of its step finish, no further step runs,
    /// and the run ends `Cancelled`.
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

    pub(crate) fn into_cause(self) -> Cause {
        self.cause
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self {
            cause: Arc::new(e),
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
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Message {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_error_keeps_its_source() {
        let io = std::io::Error::other("disk on fire");
        let te = TaskError::from(io);
        let err = PipelineError::TaskFailed {
            task: "t".into(),
            step: "s".into(),
            attempt: 1,
            message: te.to_string(),
            cause: te.into_cause(),
        };
        assert_eq!(
            err.to_string(),
            "task `t` in step `s` failed on attempt 1: disk on fire"
        );
        assert_eq!(err.source().unwrap().to_string(), "disk on fire");
        assert_eq!(err.task(), Some("t"));
    }

    #[test]
    fn unknown_executor_names_the_task() {
        let err = PipelineError::UnknownExecutor {
            name: "gpu".into(),
            task: Some("hash".into()),
            step: Some("s1".into()),
        };
        assert_eq!(
            err.to_string(),
            "no executor named `gpu` is registered (asked for by task `hash` in step `s1`)"
        );
    }
}
