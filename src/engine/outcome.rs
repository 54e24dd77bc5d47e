//! What one task produced: the unit that travels from a task to the
//! step's result processor.

use crate::error::TaskFailure;
use crate::model::flow::Directive;
use crate::records::metrics::Stamp;

/// What one task produced, reported exactly once.
///
/// Small on purpose (56 bytes for a word-sized `T`): it is moved from the
/// attempt to the result processor's columns, or through the step's
/// channel, once per task.
pub(crate) struct Outcome<T> {
    pub(crate) index: usize,
    /// Boxed: errors are rare, and a small outcome keeps the channel's
    /// buffer and every move small.
    pub(crate) result: Result<T, Box<TaskFailure>>,
    /// When and where it ran, and how many attempts it took.
    pub(crate) stamp: Stamp,
    pub(crate) directive: Option<Directive>,
}
