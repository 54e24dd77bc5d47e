//! Saving a run's progress, so that a job that died halfway can resume
//! without redoing the work it finished.
//!
//! A checkpoint is a log of records, appended as the run goes:
//!
//! - a header (the pipeline's name and [`Fingerprint`], the input's, the
//!   run's id), written when the log is created;
//! - a task record for each task that succeeds, with its value, written as
//!   soon as the task is done, from the worker that ran it;
//! - a step record for each step the run moves on from: the step's
//!   context without the values (status, errors, verdict, timing), and the
//!   step to run next.
//!
//! A save therefore costs what it adds, never what the run saved before.
//! Values are encoded with a compact binary codec (postcard; see the
//! notes on the codec below), records are framed with their length and
//! a CRC-32, and a resume reads the log record by record. A record a kill
//! cut short is dropped, and the run resumes from the last complete one:
//! finished steps are restored, and in the step that was running, only
//! the tasks without a record run again. [`Durability`] says when records
//! are synced to disk.
//!
//! ```text
//! "CNVYCKPT" | version u32 LE
//! [len u64 LE | crc32 u32 LE | kind u8 | payload]   header
//! [ … ]                                              task, task, …, step
//! [ … ]                                              task, …
//! ```
//!
//! # The codec
//! postcard is not self-describing: result types must not need
//! `deserialize_any` (`serde_json::Value`, untagged or internally tagged
//! enums, `#[serde(flatten)]`) or skip fields when serialising
//! (`skip_serializing_if`). A run reads its first saved value back, so such
//! a type fails at the first save with
//! [`CheckpointError::Serialize`](crate::CheckpointError::Serialize).
//! Mark byte buffers `#[serde(with = "serde_bytes")]`: they are then
//! written with one copy instead of byte by byte.

mod canonical;
pub(crate) mod codec;
mod fingerprint;
mod format;
mod frame;
mod journal;
mod record;
mod resume;
mod snapshot;
mod store;

pub use fingerprint::Fingerprint;
pub(crate) use format::Keep;
pub use format::{Checkpoint, TaskSnapshot};
pub(crate) use journal::{Journal, RunInfo, Saver};
pub(crate) use resume::{Start, start};
pub use snapshot::{ContextSnapshot, restore, snapshot};
pub use store::{CheckpointStore, Durability, FileCheckpointStore, MemoryCheckpointStore};

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 2;

#[cfg(test)]
mod tests;
