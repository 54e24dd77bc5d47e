//! Saving a run's progress, so that a job that died halfway can resume
//! without redoing the steps it finished.
//!
//! A [`Checkpoint`] is plain data: which steps finished, the chain of
//! contexts so far (with each step's results), and what identifies the run
//! (a format version, a [`Fingerprint`] of the pipeline and one of the
//! input). A [`CheckpointStore`] keeps its bytes; [`FileCheckpointStore`]
//! replaces its file atomically, so a crash in the middle of a save leaves
//! the previous checkpoint as it was.
//!
//! On disk a checkpoint is one header line, then JSON:
//!
//! ```text
//! conveyor-checkpoint v1 len=1234 fnv1a64=0123456789abcdef
//! {"format":1,"pipeline":"batch",…}
//! ```
//!
//! The header's length and checksum make a truncated or damaged file an
//! error instead of a wrong result.

mod canonical;
mod fingerprint;
mod format;
mod resume;
mod snapshot;
mod store;

pub use fingerprint::Fingerprint;
pub use format::Checkpoint;
pub(crate) use resume::{Save, Start, saver, start};
pub use snapshot::{ContextSnapshot, restore, snapshot};
pub use store::{CheckpointStore, FileCheckpointStore, MemoryCheckpointStore};

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

#[cfg(test)]
mod tests;
