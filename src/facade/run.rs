//! The result of one `execute`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{RunError, TaskFailure};
use crate::ids::RunId;
use crate::records::chain::ExecutionChain;
use crate::records::context::ExecutionContext;
use crate::records::report::{RunParts, RunReport};
use crate::records::results::ResultSet;
use crate::status::ExecutionStatus;

/// One run of a pipeline: its final status, the chain of contexts (one per
/// step that ran, each with its final state and metrics) and the output.
pub struct Run<T> {
    pub(crate) id: RunId,
    pub(crate) pipeline: Arc<str>,
    pub(crate) status: ExecutionStatus,
    pub(crate) chain: ExecutionChain<T>,
    pub(crate) output: ResultSet<T>,
    pub(crate) failure: Option<RunError>,
    pub(crate) duration: Duration,
    /// How many contexts at the head of the chain came from a checkpoint.
    pub(crate) restored: usize,
    /// Where this process's part starts on the run's timeline.
    pub(crate) resumed_at: Duration,
    /// When this call started the run (or its resumed part), by the wall
    /// clock.
    pub(crate) started_at: SystemTime,
}

impl<T> Run<T> {
    /// The run's id, as its events carry it. A run resumed from a
    /// checkpoint has the id of the run that saved it.
    #[must_use]
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The pipeline's name.
    #[must_use]
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// `Finished` when every step that ran succeeded; `Aborted` when a
    /// step's strategy judged it a failure; `Cancelled` when the run was
    /// asked to stop.
    #[must_use]
    pub fn status(&self) -> ExecutionStatus {
        self.status
    }

    /// Whether the run finished.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.status == ExecutionStatus::Finished
    }

    /// The results of the last step, when the run finished.
    ///
    /// # Errors
    /// The reason the run did not finish: for an aborted run,
    /// [`RunError::StepFailed`] with the failing step's task failures (its
    /// `source()` chain reaches the first failing task's own error),
    /// [`RunError::Cancelled`], or [`RunError::UnknownSwitch`].
    pub fn output(&self) -> Result<&ResultSet<T>, RunError> {
        match &self.failure {
            None => Ok(&self.output),
            Some(e) => Err(e.clone()),
        }
    }

    /// Like [`output`](Self::output), by value.
    ///
    /// # Errors
    /// As [`output`](Self::output).
    pub fn into_output(self) -> Result<ResultSet<T>, RunError> {
        match self.failure {
            None => Ok(self.output),
            Some(e) => Err(e),
        }
    }

    /// Why the run did not finish, if it did not.
    #[must_use]
    pub fn failure(&self) -> Option<&RunError> {
        self.failure.as_ref()
    }

    /// The contexts that ran, linked in order.
    #[must_use]
    pub fn chain(&self) -> &ExecutionChain<T> {
        &self.chain
    }

    /// The latest context that ran the step named `step`.
    #[must_use]
    pub fn context(&self, step: &str) -> Option<&ExecutionContext<T>> {
        self.chain.iter_back().find(|c| c.step() == step)
    }

    /// Every task failure of every step, in the order the steps ran.
    pub fn errors(&self) -> impl Iterator<Item = &TaskFailure> + '_ {
        self.chain.iter().flat_map(|c| c.state().errors())
    }

    /// How many contexts at the head of [`chain`](Self::chain) were
    /// restored from a checkpoint instead of run; 0 unless the run resumed
    /// one (see
    /// [`PipelineExecutor::execute_with_checkpoint`](crate::PipelineExecutor::execute_with_checkpoint)).
    #[must_use]
    pub fn restored(&self) -> usize {
        self.restored
    }

    /// The run as a [`RunReport`], ready for [`RunReport::to_json`].
    #[must_use]
    pub fn report(&self) -> RunReport {
        RunReport::of_run(RunParts {
            id: self.id,
            pipeline: &self.pipeline,
            status: self.status,
            chain: &self.chain,
            restored: self.restored,
            failure: self.failure.as_ref(),
            duration: self.duration,
            resumed_at: self.resumed_at,
            started_at: self.started_at,
        })
    }

    /// Wall time of the whole run.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl<T: fmt::Debug> fmt::Debug for Run<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("pipeline", &self.pipeline)
            .field("status", &self.status)
            .field("output", &self.output)
            .field("failure", &self.failure)
            .field("duration", &self.duration)
            .field("chain", &self.chain)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, RunError, Task, TaskError};

    #[test]
    fn an_aborted_run_gives_its_failure_instead_of_an_output() {
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::Inline)
            .build()
            .unwrap();
        let p = Pipeline::builder("p")
            .step([
                Task::from_fn("ok", |_| Ok(1u8)),
                Task::from_fn("bad", |_| Err(TaskError::msg("no"))),
            ])
            .build()
            .unwrap();
        let run = executor.execute(&p, 0).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        assert!(!run.is_success());
        assert_eq!(run.errors().count(), 1);
        assert!(matches!(run.failure(), Some(RunError::StepFailed { .. })));
        assert!(
            matches!(run.into_output(), Err(RunError::StepFailed { failures: errors, .. }) if errors.len() == 1)
        );
    }
}
