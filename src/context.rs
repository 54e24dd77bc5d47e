//! One step's run: its id, tasks, state and metrics.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::metrics::ExecutionMetrics;
use crate::state::ExecutionState;
use crate::strategy::EvaluationResult;
use crate::task::Task;

/// Identifies one [`ExecutionContext`], unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContextId(u64);

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

impl ContextId {
    pub(crate) fn next() -> Self {
        Self(NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Makes sure ids handed out from now on are larger than `id`, so that
    /// contexts restored from another process never collide with new ones.
    pub(crate) fn advance_past(id: Self) {
        NEXT_CONTEXT.fetch_max(id.0.saturating_add(1), Ordering::Relaxed);
    }

    /// The number behind the id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for ContextId {
    fn from(n: u64) -> Self {
        Self(n)
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctx-{}", self.0)
    }
}

/// Hashes a [`ContextId`] by one multiplication. Ids are sequential numbers
/// made by this process, not input an attacker picks, so SipHash's
/// protection buys nothing, and it was a tenth of the cost of a one-task
/// step.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing spreads sequential ids over the high bits, which
        // hashbrown uses to pick groups.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by context id.
pub(crate) type IdMap<V> = HashMap<ContextId, V, BuildHasherDefault<IdHasher>>;

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
    pub(crate) metrics: ExecutionMetrics,
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
        &self.metrics
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
            .field("metrics", &self.metrics)
            .field("evaluation", &self.evaluation)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::ContextId;

    #[test]
    fn ids_are_unique_and_display() {
        let a = ContextId::next();
        let b = ContextId::next();
        assert!(b > a);
        assert_eq!(ContextId::from(7).to_string(), "ctx-7");
    }
}
