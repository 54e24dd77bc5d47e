//! What one task produced: the unit that travels from a task to the
//! step's result processor.

use std::time::Duration;

use crate::error::TaskFailure;
use crate::model::flow::Directive;

/// What one task produced, reported exactly once.
pub(crate) struct Outcome<T> {
    pub(crate) index: usize,
    /// Boxed: errors are rare, and a small outcome keeps the channel's
    /// buffer and the slot vector of a 10,000-task step small.
    pub(crate) result: Result<T, Box<TaskFailure>>,
    pub(crate) started: Duration,
    pub(crate) finished: Duration,
    pub(crate) attempts: u32,
    pub(crate) thread: u64,
    pub(crate) directive: Option<Directive>,
}
