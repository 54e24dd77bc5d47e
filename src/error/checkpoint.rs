//! Errors of checkpoints: reading, writing and resuming from them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checkpoint could not be read, written or used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A store could not read or write; `source()` is the OS error.
    #[error("could not {operation} checkpoint `{}`", .path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What was being done.
        operation: IoOperation,
        /// The OS error.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// A checkpoint is truncated, corrupt or not a checkpoint at all.
    #[error("checkpoint{} is corrupt: {message}", at(.path))]
    Corrupt {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// What is wrong, with the decoder's message when it did not parse.
        message: String,
    },
    /// A checkpoint was written in a format this version does not read.
    #[error("checkpoint{} has format version {found}; this build reads version {expected}", at(.path))]
    Version {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// The version this build reads.
        expected: u32,
        /// The version in the checkpoint.
        found: u32,
    },
    /// A checkpoint belongs to another pipeline or another input.
    #[error(
        "checkpoint{} was saved for another {what}: expected fingerprint {expected:016x}, found {found:016x}",
        at(.path)
    )]
    Mismatch {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// Whose fingerprint differs.
        what: FingerprintOf,
        /// The fingerprint of the pipeline or input being resumed.
        expected: u64,
        /// The fingerprint saved in the checkpoint.
        found: u64,
    },
    /// A checkpoint records a run that already finished: there is nothing
    /// to resume. Clear the store to run again.
    #[error("checkpoint{} records a finished run of pipeline `{pipeline}`; clear it to run again", at(.path))]
    Finished {
        /// The checkpoint's file, for file-backed stores.
        path: Option<PathBuf>,
        /// The pipeline's name.
        pipeline: Arc<str>,
    },
    /// A value could not be serialised.
    #[error("could not serialise the {what}: {message}")]
    Serialize {
        /// What was being serialised.
        what: Serialized,
        /// serde's message.
        message: String,
    },
    /// A snapshot of a context does not fit the pipeline it is restored
    /// into.
    #[error("snapshot of step `{step}` does not fit pipeline `{pipeline}`: {message}")]
    SnapshotMismatch {
        /// The pipeline restored into.
        pipeline: Arc<str>,
        /// The snapshot's step.
        step: Arc<str>,
        /// What does not fit.
        message: String,
    },
}

impl CheckpointError {
    /// A stable snake_case name for the variant, for reports and scripts.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "checkpoint_io",
            Self::Corrupt { .. } => "checkpoint_corrupt",
            Self::Version { .. } => "checkpoint_version",
            Self::Mismatch { .. } => "checkpoint_mismatch",
            Self::Finished { .. } => "checkpoint_finished",
            Self::Serialize { .. } => "serialize",
            Self::SnapshotMismatch { .. } => "snapshot_mismatch",
        }
    }

    /// The path of the checkpoint file this error is about, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Io { path, .. } => Some(path),
            Self::Corrupt { path, .. }
            | Self::Version { path, .. }
            | Self::Mismatch { path, .. }
            | Self::Finished { path, .. } => path.as_deref(),
            _ => None,
        }
    }
}

/// What a store was doing when the OS refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOperation {
    /// Reading a checkpoint.
    Read,
    /// Writing one.
    Write,
    /// Flushing one to disk.
    Sync,
    /// Moving a finished write into place.
    Rename,
    /// Removing one.
    Remove,
}

impl fmt::Display for IoOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rename => "rename",
            Self::Remove => "remove",
        })
    }
}

/// Whose fingerprint did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FingerprintOf {
    /// The pipeline's shape.
    Pipeline,
    /// The run's input.
    Input,
}

impl fmt::Display for FingerprintOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pipeline => "pipeline",
            Self::Input => "input",
        })
    }
}

/// What could not be serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Serialized {
    /// A checkpoint.
    Checkpoint,
    /// A run report.
    Report,
    /// A run's input, for its fingerprint.
    Input,
    /// A benchmark's comparison.
    Comparison,
}

impl fmt::Display for Serialized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Checkpoint => "checkpoint",
            Self::Report => "report",
            Self::Input => "input",
            Self::Comparison => "comparison",
        })
    }
}

fn at(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" `{}`", p.display()))
        .unwrap_or_default()
}
