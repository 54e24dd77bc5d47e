//! Errors of running: a run that could not be carried out, or whose
//! outcome was a failure.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::build::BuildError;
use super::checkpoint::CheckpointError;
use super::task::TaskFailure;
use crate::ids::ContextId;
use crate::status::ExecutionStatus;

/// A run could not be carried out, or its outcome was a failure.
///
/// [`execute`](crate::PipelineExecutor::execute) returns it when the run
/// could not start or go on (an executor that cannot be built, a
/// checkpoint that cannot be read or saved, a deadline).
/// [`Run::output`](crate::Run::output) returns it when the run ended
/// without success: a step failed, the run was cancelled, or a task picked
/// a switch target its step does not have.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The pipeline or executor cannot run as built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A checkpoint could not be read, written or used.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A step's strategy judged it a failure and no failure branch caught
    /// it. `source()` is the first failing task's failure.
    #[error(
        "step `{step}` failed under {strategy}: {succeeded} of {total} tasks succeeded; failed: {}",
        names(.failures)
    )]
    StepFailed {
        /// The step's name.
        step: Arc<str>,
        /// The strategy that judged it.
        strategy: Arc<str>,
        /// Tasks that succeeded.
        succeeded: usize,
        /// Tasks in the step.
        total: usize,
        /// The failures of the step's tasks, in declaration order.
        failures: Vec<TaskFailure>,
        /// The first failure, the one `source()` gives.
        #[source]
        first: Option<Box<TaskFailure>>,
    },
    /// A deadline passed. `failures` holds the step's failures, one per
    /// task that failed or did not finish in time.
    #[error(
        "step `{step}` passed the {scope} deadline of {limit:?}; {} tasks did not finish",
        .failures.iter().filter(|e| matches!(e, TaskFailure::TimedOut { .. })).count()
    )]
    Timeout {
        /// The step that was running.
        step: Arc<str>,
        /// Whose deadline.
        scope: DeadlineScope,
        /// The deadline's length.
        limit: Duration,
        /// The step's failures.
        failures: Vec<TaskFailure>,
    },
    /// The run was cancelled, by a [`CancelToken`](crate::CancelToken) or by
    /// a task's request.
    #[error("run cancelled during step `{step}` by {by}")]
    Cancelled {
        /// The step that was running, or about to run.
        step: Arc<str>,
        /// Who asked.
        by: CancelledBy,
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
    /// A step name that the pipeline does not have.
    #[error("pipeline `{pipeline}` has no step `{step}`")]
    UnknownStep {
        /// The pipeline's name.
        pipeline: Arc<str>,
        /// The missing step.
        step: String,
    },
    /// A context id that the run's chain or the executor's live states do
    /// not hold. The engine prevents this; it exists so that a bug shows up
    /// as an error, not a panic.
    #[error("context {context} is not known to this run")]
    UnknownContext {
        /// The id.
        context: ContextId,
    },
    /// A context was linked into a chain that already holds its id.
    #[error("context {context} is already linked in this chain")]
    DuplicateContext {
        /// The id.
        context: ContextId,
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
    /// A step's custom evaluation rule panicked; the panic was caught and
    /// the step judged a failure.
    #[error("the evaluation rule `{rule}` of step `{step}` panicked: {message}")]
    RulePanicked {
        /// The step.
        step: Arc<str>,
        /// The rule's name.
        rule: Arc<str>,
        /// The panic's message.
        message: String,
    },
    /// A benchmark's baseline panicked; the panic was caught.
    #[error("the baseline of benchmark `{benchmark}` panicked: {message}")]
    BaselinePanicked {
        /// The benchmark.
        benchmark: String,
        /// The panic's message.
        message: String,
    },
}

impl RunError {
    /// A [`StepFailed`](Self::StepFailed) error over `failures`.
    pub(crate) fn step_failed(
        step: Arc<str>,
        strategy: Arc<str>,
        succeeded: usize,
        total: usize,
        failures: Vec<TaskFailure>,
    ) -> Self {
        let first = failures.first().cloned().map(Box::new);
        Self::StepFailed {
            step,
            strategy,
            succeeded,
            total,
            failures,
            first,
        }
    }

    /// A stable snake_case name for the variant (`"step_failed"`,
    /// `"timeout"`, …), for reports and scripts; build and checkpoint errors
    /// give their own kinds.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Build(e) => e.kind(),
            Self::Checkpoint(e) => e.kind(),
            Self::StepFailed { .. } => "step_failed",
            Self::Timeout { .. } => "timeout",
            Self::Cancelled { .. } => "cancelled",
            Self::UnknownSwitch { .. } => "unknown_switch",
            Self::UnknownStep { .. } => "unknown_step",
            Self::UnknownContext { .. } => "unknown_context",
            Self::DuplicateContext { .. } => "duplicate_context",
            Self::IllegalTransition { .. } => "illegal_transition",
            Self::RulePanicked { .. } => "rule_panicked",
            Self::BaselinePanicked { .. } => "baseline_panicked",
        }
    }

    /// The step this error is about, when it is about one.
    #[must_use]
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::Build(e) => e.step(),
            Self::StepFailed { step, .. }
            | Self::Timeout { step, .. }
            | Self::Cancelled { step, .. }
            | Self::UnknownSwitch { step, .. }
            | Self::RulePanicked { step, .. } => Some(step),
            Self::UnknownStep { step, .. } => Some(step),
            _ => None,
        }
    }

    /// The task failures this error carries: a failed or timed-out step's.
    #[must_use]
    pub fn failures(&self) -> &[TaskFailure] {
        match self {
            Self::StepFailed { failures, .. } | Self::Timeout { failures, .. } => failures,
            _ => &[],
        }
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadlineScope {
    /// The step's own, [`Step::timeout`](crate::Step::timeout).
    Step,
    /// The run's, [`RunOptions::timeout`](crate::RunOptions::timeout).
    Run,
}

impl fmt::Display for DeadlineScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Step => "step",
            Self::Run => "run",
        })
    }
}

/// Who cancelled a run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelledBy {
    /// A [`CancelToken`](crate::CancelToken).
    Token,
    /// A task that returned [`TaskError::stop`](crate::TaskError::stop).
    Task(Arc<str>),
}

impl fmt::Display for CancelledBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token => f.write_str("a cancel token"),
            Self::Task(task) => write!(f, "task `{task}`"),
        }
    }
}

fn names(failures: &[TaskFailure]) -> String {
    if failures.is_empty() {
        return "none".to_owned();
    }
    failures
        .iter()
        .map(|f| format!("`{}`", f.task()))
        .collect::<Vec<_>>()
        .join(", ")
}
