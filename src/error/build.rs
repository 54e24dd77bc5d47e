//! Errors of building: a pipeline, an executor, a policy was refused.

use std::fmt;
use std::sync::Arc;

use super::task::Cause;

/// Building a pipeline, an executor, a retry policy, a strategy or a
/// benchmark was refused. Nothing ran.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
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
        /// Which kind of name.
        what: NameKind,
    },
    /// A name holds a control character (NUL, a line break, …), which
    /// thread names, logs and reports cannot carry.
    #[error("{what} name {name:?} holds a control character")]
    InvalidName {
        /// Which kind of name.
        what: NameKind,
        /// The name as given.
        name: String,
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
        strategy: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
        /// The step it was set on, once known.
        step: Option<Arc<str>>,
    },
    /// A pool was asked for with zero threads.
    #[error("{executor} asks for a pool of zero threads")]
    ZeroThreads {
        /// Who asked.
        executor: ExecutorSite,
    },
    /// An executor builder was given shared pools and names of its own.
    #[error(
        "an executor on shared pools cannot register names of its own; register them on the shared pools"
    )]
    SharedPools,
    /// An executor was registered under an empty name.
    #[error("an executor name must not be empty")]
    EmptyExecutorName,
    /// An executor name was registered twice.
    #[error("executor `{name}` is already registered")]
    DuplicateExecutor {
        /// The repeated name.
        name: Arc<str>,
    },
    /// A task or config names an executor that is not registered.
    #[error("no executor named `{name}` is registered{}", for_task(.task, .step))]
    UnknownExecutor {
        /// The unknown name.
        name: Arc<str>,
        /// The task that asked for it, when a task did.
        task: Option<Arc<str>>,
        /// That task's step.
        step: Option<Arc<str>>,
    },
    /// rayon could not build a pool; the cause is rayon's error.
    #[error("{executor}: could not build a pool of {threads} threads")]
    PoolBuild {
        /// Who asked for the pool.
        executor: ExecutorSite,
        /// The threads asked for.
        threads: usize,
        /// rayon's error.
        #[source]
        cause: Cause,
    },
    /// A strategy benchmark was set up so that it cannot measure anything.
    #[error("benchmark `{benchmark}` cannot run: {reason}")]
    InvalidBenchmark {
        /// The benchmark's name.
        benchmark: String,
        /// What is wrong with it.
        reason: &'static str,
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
        /// The kind of edge.
        edge: EdgeKind,
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
    /// A retry policy setting is out of range.
    #[error("retry {setting} {value} is invalid: expected {expected}")]
    InvalidRetry {
        /// The setting.
        setting: RetrySetting,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
}

impl BuildError {
    /// A stable snake_case name for the variant (`"empty_step"`,
    /// `"unknown_executor"`, …), for reports and scripts.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyPipeline { .. } => "empty_pipeline",
            Self::EmptyStep { .. } => "empty_step",
            Self::EmptyName { .. } => "empty_name",
            Self::InvalidName { .. } => "invalid_name",
            Self::DuplicateTask { .. } => "duplicate_task",
            Self::DuplicateStep { .. } => "duplicate_step",
            Self::InvalidThreshold { .. } => "invalid_threshold",
            Self::ZeroThreads { .. } => "zero_threads",
            Self::SharedPools => "shared_pools",
            Self::EmptyExecutorName => "empty_executor_name",
            Self::DuplicateExecutor { .. } => "duplicate_executor",
            Self::UnknownExecutor { .. } => "unknown_executor",
            Self::PoolBuild { .. } => "pool_build",
            Self::InvalidBenchmark { .. } => "invalid_benchmark",
            Self::InvalidSwitch { .. } => "invalid_switch",
            Self::MissingStep { .. } => "missing_step",
            Self::Cycle { .. } => "cycle",
            Self::UnreachableStep { .. } => "unreachable_step",
            Self::InvalidRetry { .. } => "invalid_retry",
        }
    }

    /// The step this error is about, when it is about one.
    #[must_use]
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::EmptyStep { step, .. }
            | Self::DuplicateStep { step, .. }
            | Self::InvalidSwitch { step, .. }
            | Self::UnreachableStep { step, .. } => Some(step),
            Self::MissingStep { from, .. } => Some(from),
            Self::InvalidThreshold { step, .. } | Self::UnknownExecutor { step, .. } => step.as_deref(),
            Self::ZeroThreads { executor } | Self::PoolBuild { executor, .. } => match executor {
                ExecutorSite::Task { step, .. } => Some(step),
                _ => None,
            },
            _ => None,
        }
    }

    /// The task this error is about, when it is about one.
    #[must_use]
    pub fn task(&self) -> Option<&str> {
        match self {
            Self::DuplicateTask { task, .. } => Some(task),
            Self::UnknownExecutor { task, .. } => task.as_deref(),
            Self::ZeroThreads { executor } | Self::PoolBuild { executor, .. } => match executor {
                ExecutorSite::Task { task, .. } => Some(task),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Which kind of name an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameKind {
    /// A pipeline's name.
    Pipeline,
    /// A step's name.
    Step,
    /// A task's name.
    Task,
    /// An executor's name.
    Executor,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pipeline => "pipeline",
            Self::Step => "step",
            Self::Task => "task",
            Self::Executor => "executor",
        })
    }
}

/// Which edge of a step's flow an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdgeKind {
    /// [`Step::then`](crate::Step::then).
    Then,
    /// [`Step::on_success`](crate::Step::on_success).
    OnSuccess,
    /// [`Step::on_failure`](crate::Step::on_failure).
    OnFailure,
    /// [`Step::on_switch`](crate::Step::on_switch), with its target.
    Switch(u8),
    /// [`Step::sink`](crate::Step::sink).
    Sink,
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Then => f.write_str("then"),
            Self::OnSuccess => f.write_str("on_success"),
            Self::OnFailure => f.write_str("on_failure"),
            Self::Switch(n) => write!(f, "switch {n}"),
            Self::Sink => f.write_str("sink"),
        }
    }
}

/// Which setting of a retry policy an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RetrySetting {
    /// The number of attempts.
    MaxAttempts,
    /// The first backoff, in seconds.
    InitialBackoff,
    /// The factor each backoff grows by.
    BackoffFactor,
    /// The longest backoff, in seconds.
    MaxBackoff,
    /// The jitter fraction.
    Jitter,
}

impl fmt::Display for RetrySetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MaxAttempts => "max_attempts",
            Self::InitialBackoff => "initial backoff",
            Self::BackoffFactor => "backoff factor",
            Self::MaxBackoff => "max backoff",
            Self::Jitter => "jitter",
        })
    }
}

/// Who asked for an executor that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutorSite {
    /// The executor registered under this name.
    Named(Arc<str>),
    /// The executor's default, for tasks that name none.
    Default,
    /// A task that asked for a config directly.
    Task {
        /// The task.
        task: Arc<str>,
        /// Its step.
        step: Arc<str>,
    },
    /// A config given directly, outside any task (a benchmark contender).
    Config,
}

impl fmt::Display for ExecutorSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(name) => write!(f, "executor `{name}`"),
            Self::Default => f.write_str("the default executor"),
            Self::Task { task, step } => write!(f, "task `{task}` in step `{step}`"),
            Self::Config => f.write_str("an executor config"),
        }
    }
}

fn join(steps: &[Arc<str>]) -> String {
    steps
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(" -> ")
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
