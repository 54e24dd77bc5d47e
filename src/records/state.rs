//! The immutable state of one execution context.

use std::fmt;
use std::sync::Arc;

use crate::error::TaskFailure;
use crate::records::results::ResultSet;
use crate::status::ExecutionStatus;

/// Status, errors and results of one context. Immutable: every `with_*`
/// returns a new state and leaves `self` as it was, so a state can be shared
/// as an `Arc` with readers on other threads.
///
/// ```
/// use conveyor::{ExecutionState, ExecutionStatus};
/// let pending = ExecutionState::<u32>::new();
/// let running = pending.with_status(ExecutionStatus::Executing);
/// assert_eq!(pending.status(), ExecutionStatus::Pending);
/// assert_eq!(running.status(), ExecutionStatus::Executing);
/// ```
pub struct ExecutionState<T> {
    status: ExecutionStatus,
    // `None` while there are no errors, the common case, so that a state
    // costs no allocation beyond its own `Arc`.
    errors: Option<Arc<[TaskFailure]>>,
    results: ResultSet<T>,
}

impl<T> ExecutionState<T> {
    /// A pending state with no errors and no results.
    #[must_use]
    pub fn new() -> Self {
        Self {
            status: ExecutionStatus::Pending,
            errors: None,
            results: ResultSet::empty(),
        }
    }

    /// A context's final state, built at once rather than through three
    /// copies.
    pub(crate) fn settled(status: ExecutionStatus, errors: Vec<TaskFailure>, results: ResultSet<T>) -> Self {
        Self {
            status,
            errors: (!errors.is_empty()).then(|| errors.into()),
            results,
        }
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> ExecutionStatus {
        self.status
    }

    /// The errors of the context's tasks, in declaration order.
    #[must_use]
    pub fn errors(&self) -> &[TaskFailure] {
        self.errors.as_deref().unwrap_or_default()
    }

    /// The successful results, in declaration order.
    #[must_use]
    pub fn results(&self) -> &ResultSet<T> {
        &self.results
    }

    /// The same state with another status. This does not check the
    /// transition; the [`ExecutionStateManager`](crate::ExecutionStateManager)
    /// does.
    #[must_use]
    pub fn with_status(&self, status: ExecutionStatus) -> Self {
        Self {
            status,
            ..self.clone()
        }
    }

    /// The same state with one more error.
    #[must_use]
    pub fn with_error(&self, error: TaskFailure) -> Self {
        self.with_errors(std::iter::once(error))
    }

    /// The same state with more errors appended.
    #[must_use]
    pub fn with_errors(&self, errors: impl IntoIterator<Item = TaskFailure>) -> Self {
        let mut errors = errors.into_iter().peekable();
        if errors.peek().is_none() {
            return self.clone();
        }
        let mut all = self.errors().to_vec();
        all.extend(errors);
        Self {
            errors: Some(all.into()),
            ..self.clone()
        }
    }

    /// The same state with these results in place of the old ones.
    #[must_use]
    pub fn with_results(&self, results: ResultSet<T>) -> Self {
        Self {
            results,
            ..self.clone()
        }
    }
}

impl<T> Default for ExecutionState<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for ExecutionState<T> {
    fn clone(&self) -> Self {
        Self {
            status: self.status,
            errors: self.errors.clone(),
            results: self.results.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for ExecutionState<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionState")
            .field("status", &self.status)
            .field("errors", &self.errors)
            .field("results", &self.results)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_methods_leave_the_original_alone() {
        let s0 = ExecutionState::<u8>::new();
        let err = TaskFailure::Lost {
            task: "t".into(),
            step: "s".into(),
        };
        let s1 = s0.with_error(err.clone()).with_error(err);
        let s2 = s1.with_results(ResultSet::from_entries(vec![("t".into(), 7)]));
        assert!(s0.errors().is_empty());
        assert_eq!(s1.errors().len(), 2);
        assert!(s1.results().is_empty());
        assert_eq!(s2.results().get("t"), Some(&7));
        assert_eq!(s2.errors().len(), 2);
    }
}
