//! The crate's errors, one type per operation, at the bottom of the crate.
//!
//! - [`BuildError`]: building a pipeline, an executor, a retry policy, a
//!   strategy or a benchmark was refused. Nothing ran.
//! - [`TaskError`]: what a task returns. Any error converts into it with `?`.
//! - [`TaskFailure`]: how one task of a step did not succeed, as the engine
//!   records it: it failed, panicked, timed out, was cancelled or lost.
//! - [`RunError`]: a run could not be carried out, or a run's outcome was a
//!   failure ([`Run::output`](crate::Run::output)).
//! - [`CheckpointError`]: a checkpoint could not be read, written or used.
//!
//! Each error's `Display` says what went wrong once; the cause, when there
//! is one, comes from `source()`. So `anyhow`'s `{:#}` of a failed run reads
//! "step `parse` failed …: task `parse` in step `parse` failed on attempt
//! 1: invalid digit found in string", with every message once.
//!
//! Closed sets that an error names (which deadline, who cancelled, which
//! edge, which setting) are enums, not strings.

mod build;
mod checkpoint;
mod record;
mod run;
mod task;

pub use build::{BuildError, EdgeKind, ExecutorSite, NameKind, RetrySetting};
pub use checkpoint::{CheckpointError, FingerprintOf, IoOperation, Serialized};
pub use record::ErrorRecord;
pub use run::{CancelledBy, DeadlineScope, RunError};
pub use task::{Cause, TaskError, TaskFailure};

#[cfg(test)]
mod tests;
