//! A checkpoint as data, and its bytes: a checked header line, then JSON.

use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{CheckpointError, FingerprintOf, Serialized};
use crate::model::pipeline::Pipeline;
use crate::records::chain::ExecutionChain;

use super::CHECKPOINT_FORMAT;
use super::fingerprint::Fingerprint;
use super::snapshot::{self, ContextSnapshot};
use super::store::CheckpointStore;

pub(super) const MAGIC: &str = "conveyor-checkpoint";
/// A header is a few dozen bytes; anything longer is not one.
const MAX_HEADER: usize = 128;

/// A run's progress: what it ran, what came out, and what it belongs to.
///
/// Saved after every finished step of a checkpointed run. Read one back with
/// [`Checkpoint::load`] (or [`decode`](Checkpoint::decode)); reading checks
/// the format version, the length and checksum, and the JSON, and never
/// panics on bad bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Checkpoint<T> {
    /// The format version, [`CHECKPOINT_FORMAT`] when written by this build.
    pub format: u32,
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// [`Fingerprint::of_pipeline`] of the pipeline that ran.
    pub fingerprint: Fingerprint,
    /// [`Fingerprint::of_value`] of the input the run started with.
    pub input: Option<Fingerprint>,
    /// The contexts so far, head to tail, with their states and results.
    // Before the fields that change with every save: a run's saves then
    // share a prefix, which is what lets each context be serialised and
    // checksummed once instead of once per save.
    pub chain: Vec<ContextSnapshot<T>>,
    /// Whether the run ended: there is nothing left to resume.
    pub finished: bool,
    /// The steps that finished, in the order they ran.
    pub completed: Vec<Arc<str>>,
    /// The step the run would run next; `None` once it ended.
    pub next: Option<Arc<str>>,
    /// Sinks waiting for the branches they follow to end, innermost last.
    #[serde(default)]
    pub sinks: Vec<Arc<str>>,
}

impl<T> Clone for Checkpoint<T> {
    fn clone(&self) -> Self {
        Self {
            format: self.format,
            pipeline: Arc::clone(&self.pipeline),
            fingerprint: self.fingerprint,
            input: self.input,
            finished: self.finished,
            completed: self.completed.clone(),
            next: self.next.clone(),
            sinks: self.sinks.clone(),
            chain: self.chain.clone(),
        }
    }
}

impl<T> Checkpoint<T> {
    /// The progress of a run of `pipeline` on an input with fingerprint
    /// `input`, whose contexts so far are `chain`: every step in it counts as
    /// completed, and nothing is named to run next.
    #[must_use]
    pub fn new(pipeline: &Pipeline<T>, input: Option<Fingerprint>, chain: &ExecutionChain<T>) -> Self {
        Self {
            format: CHECKPOINT_FORMAT,
            pipeline: Arc::clone(&pipeline.inner.name),
            fingerprint: Fingerprint::of_pipeline(pipeline),
            input,
            finished: false,
            completed: chain.iter().map(|c| Arc::clone(&c.step)).collect(),
            next: None,
            sinks: Vec::new(),
            chain: snapshot::snapshot(chain),
        }
    }

    /// Checks that this checkpoint can resume a run of `pipeline` on an
    /// input with fingerprint `input`. `path` names the file in errors.
    ///
    /// # Errors
    /// [`CheckpointError::Mismatch`] for another pipeline or input,
    /// [`CheckpointError::Finished`] when the run already ended, and
    /// [`CheckpointError::Corrupt`] when the steps it names are not
    /// the pipeline's.
    pub fn check(
        &self,
        pipeline: &Pipeline<T>,
        input: Option<Fingerprint>,
        path: Option<&Path>,
    ) -> Result<(), CheckpointError> {
        self.check_shape(pipeline, input, path)?;
        if self.finished {
            return Err(CheckpointError::Finished {
                path: path.map(Path::to_owned),
                pipeline: Arc::clone(&self.pipeline),
            });
        }
        Ok(())
    }

    /// [`check`](Self::check) without refusing a finished run: what a
    /// resume checks, since a finished run comes back as it was.
    pub(crate) fn check_shape(
        &self,
        pipeline: &Pipeline<T>,
        input: Option<Fingerprint>,
        path: Option<&Path>,
    ) -> Result<(), CheckpointError> {
        let expected = Fingerprint::of_pipeline(pipeline);
        if self.fingerprint != expected {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Pipeline,
                expected: expected.get(),
                found: self.fingerprint.get(),
            });
        }
        if let (Some(expected), Some(found)) = (input, self.input)
            && expected != found
        {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Input,
                expected: expected.get(),
                found: found.get(),
            });
        }
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        for step in self.completed.iter().chain(&self.next).chain(&self.sinks) {
            if pipeline.step(step).is_none() {
                return Err(corrupt(format!(
                    "it names step `{step}`, which the pipeline lacks"
                )));
            }
        }
        if self.next.is_none() && !self.finished {
            return Err(corrupt("it neither finished nor names a next step".into()));
        }
        Ok(())
    }

    /// Rebuilds the chain so far against `pipeline`'s tasks.
    ///
    /// # Errors
    /// [`CheckpointError::Corrupt`] when the chain does not fit the
    /// pipeline.
    pub fn restore_chain(
        &self,
        pipeline: &Pipeline<T>,
        path: Option<&Path>,
    ) -> Result<ExecutionChain<T>, CheckpointError> {
        snapshot::restore(self.chain.iter().cloned(), pipeline).map_err(|e| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })
    }
}

impl<T: Serialize> Checkpoint<T> {
    /// The bytes to save: a header line with the format version, the body's
    /// length and its checksum, then the body as JSON.
    ///
    /// # Errors
    /// [`CheckpointError::Serialize`] when a result cannot be serialised.
    pub fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let body = serde_json::to_vec(self).map_err(|e| CheckpointError::Serialize {
            what: Serialized::Checkpoint,
            message: e.to_string(),
        })?;
        let header = format!(
            "{MAGIC} v{} len={} fnv1a64={}\n",
            self.format,
            body.len(),
            Fingerprint::of_bytes(&body)
        );
        let mut bytes = Vec::with_capacity(header.len() + body.len());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }
}

impl<T: DeserializeOwned> Checkpoint<T> {
    /// Reads a checkpoint from bytes that [`encode`](Self::encode) wrote.
    /// `path` names the file in errors. Any bytes at all give a checkpoint
    /// or an error, never a panic.
    ///
    /// ```
    /// use conveyor::CheckpointError;
    /// use conveyor::checkpoint::Checkpoint;
    /// let err = Checkpoint::<u64>::decode(b"conveyor-checkpoint v9 len=2 fnv1a64=0\n{}", None)
    ///     .unwrap_err();
    /// assert!(matches!(err, CheckpointError::Version { expected: 1, found: 9, .. }));
    /// let err = Checkpoint::<u64>::decode(b"\x00garbage", None).unwrap_err();
    /// assert!(matches!(err, CheckpointError::Corrupt { .. }));
    /// ```
    ///
    /// # Errors
    /// [`CheckpointError::Version`] for a format this build does not
    /// read, and [`CheckpointError::Corrupt`] for a missing or bad
    /// header, a truncated body, a checksum that does not match, or JSON
    /// that does not parse (with serde's message).
    pub fn decode(bytes: &[u8], path: Option<&Path>) -> Result<Self, CheckpointError> {
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        let end = bytes
            .iter()
            .take(MAX_HEADER)
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no checkpoint header line".into()))?;
        let header =
            std::str::from_utf8(&bytes[..end]).map_err(|_| corrupt("the header is not text".into()))?;
        let body = &bytes[end + 1..];
        let mut fields = header.split(' ');
        if fields.next() != Some(MAGIC) {
            return Err(corrupt("not a conveyor checkpoint".into()));
        }
        // The version comes first: a newer format may change everything
        // after it, and deserves its own error rather than "corrupt".
        let found = fields
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| corrupt("the header has no format version".into()))?;
        if found != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Version {
                path: path.map(Path::to_owned),
                expected: CHECKPOINT_FORMAT,
                found,
            });
        }
        let len = fields
            .next()
            .and_then(|v| v.strip_prefix("len="))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| corrupt("the header has no body length".into()))?;
        let sum = fields
            .next()
            .and_then(|v| v.strip_prefix("fnv1a64="))
            .and_then(|v| v.parse::<Fingerprint>().ok())
            .ok_or_else(|| corrupt("the header has no checksum".into()))?;
        // Only the exact text `encode` writes is accepted, so that any
        // change to a header byte is noticed, like any change to the body.
        if fields.next().is_some() || header != format!("{MAGIC} v{found} len={len} fnv1a64={sum}") {
            return Err(corrupt("the header is not one this build writes".into()));
        }
        if body.len() != len {
            return Err(corrupt(format!(
                "the body is {} bytes, the header says {len}: truncated or appended to",
                body.len()
            )));
        }
        let actual = Fingerprint::of_bytes(body);
        if actual != sum {
            return Err(corrupt(format!(
                "checksum {actual} does not match the header's {sum}"
            )));
        }
        let checkpoint: Self = serde_json::from_slice(body).map_err(|e| corrupt(format!("bad JSON: {e}")))?;
        if checkpoint.format != found {
            return Err(corrupt(format!(
                "the body says format {}, the header {found}",
                checkpoint.format
            )));
        }
        Ok(checkpoint)
    }

    /// Reads the checkpoint in `store`, if there is one. It is not checked
    /// against any pipeline; see [`check`](Self::check).
    ///
    /// # Errors
    /// The store's read error, and those of [`decode`](Self::decode).
    pub fn load(store: &dyn CheckpointStore) -> Result<Option<Self>, CheckpointError> {
        match store.load()? {
            None => Ok(None),
            Some(bytes) => Self::decode(&bytes, store.path()).map(Some),
        }
    }
}
