//! One step's run: its id, tasks, state and metrics.

use std::fmt;
use std::sync::Arc;

use crate::ids::ContextId;
use crate::model::strategy::EvaluationResult;
use crate::model::task::Task;
use crate::records::metrics::{ExecutionMetrics, MetricsRecord};
use crate::records::state::ExecutionState;

/// One run of one step: which tasks, of which pipeline, and how it went.
///
/// Plain data. The [`ExecutionChain`](crate::ExecutionChain) of a
/// [`Run`](crate::Run) holds one per step that ran, with its final state.
pub struct ExecutionContext<T> {
    pub(crate) id: ContextId,
    pub(crate) pipeline: Arc<str>,
    pub(crate) step: Arc<str>,
    pub(crate) tasks: Arc<[Task<T>]>,
    pub(crate) state: Arc<ExecutionState<T>>,
    pub(crate) metrics: MetricsRecord,
    pub(crate) evaluation: Option<EvaluationResult>,
}

impl<T> ExecutionContext<T> {
    /// The context's id.
    #[must_use]
    pub fn id(&self) -> ContextId {
        self.id
    }

    /// The name of the pipeline it belongs to.
    #[must_use]
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The name of the step it ran.
    #[must_use]
    pub fn step(&self) -> &str {
        &self.step
    }

    /// The tasks it ran, in declaration order.
    #[must_use]
    pub fn tasks(&self) -> &[Task<T>] {
        &self.tasks
    }

    /// Whether one of its tasks is named `task`.
    #[must_use]
    pub fn has_task(&self, task: &str) -> bool {
        self.tasks.iter().any(|t| t.name() == task)
    }

    /// Its state.
    #[must_use]
    pub fn state(&self) -> &Arc<ExecutionState<T>> {
        &self.state
    }

    /// Its timing.
    #[must_use]
    pub fn metrics(&self) -> &ExecutionMetrics {
        self.metrics.get()
    }

    /// The strategy's verdict, once the step has been judged.
    #[must_use]
    pub fn evaluation(&self) -> Option<&EvaluationResult> {
        self.evaluation.as_ref()
    }
}

impl<T> Clone for ExecutionContext<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            pipeline: Arc::clone(&self.pipeline),
            step: Arc::clone(&self.step),
            tasks: Arc::clone(&self.tasks),
            state: Arc::clone(&self.state),
            metrics: self.metrics.clone(),
            evaluation: self.evaluation.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ExecutionContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext")
            .field("id", &self.id)
            .field("pipeline", &self.pipeline)
            .field("step", &self.step)
            .field("tasks", &self.tasks.iter().map(Task::name).collect::<Vec<_>>())
            .field("state", &self.state)
            .field("metrics", self.metrics.get())
            .field("evaluation", &self.evaluation)
            .finish()
    }
}
