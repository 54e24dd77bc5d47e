//! What one task produced: the unit that travels from a task to the
//! step's result processor.

use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::records::metrics::Stamp;

/// What one task produced, reported exactly once.
///
/// Small on purpose (56 bytes for a word-sized `T`): a step of 10,000
/// tasks holds one per task in its slots, and writes each once.
pub(crate) struct Outcome<T> {
    pub(crate) index: usize,
    /// Boxed: errors are rare, and a small outcome keeps the channel's
    /// buffer and the slot vector of a 10,000-task step small.
    pub(crate) result: Result<T, Box<TaskFailure>>,
    /// When and where it ran, and how many attempts it took.
    pub(crate) stamp: Stamp,
    pub(crate) directive: Option<Directive>,
}
