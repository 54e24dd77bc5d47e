//! Starting a run from a checkpoint, and saving its progress as it goes.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CheckpointError, Serialized};
use crate::model::pipeline::Pipeline;
use crate::records::chain::ExecutionChain;
use crate::records::results::ResultSet;

use super::CHECKPOINT_FORMAT;
use super::fingerprint::Fingerprint;
use super::fingerprint::Fnv;
use super::format::{Checkpoint, MAGIC};
use super::store::CheckpointStore;

/// Where a walk starts: at the first step, or where a checkpoint left off.
pub(crate) struct Start<T> {
    /// The index of the step to run first.
    pub(crate) at: usize,
    /// What that step sees as the previous step's results.
    pub(crate) previous: ResultSet<T>,
    /// Sinks waiting for their branches, by step index.
    pub(crate) sinks: Vec<usize>,
    /// The contexts restored from the checkpoint; new ones link after them.
    pub(crate) chain: ExecutionChain<T>,
    /// Whether the checkpoint records a finished run: nothing is left to
    /// run, and the restored chain is the whole run.
    pub(crate) done: bool,
}

impl<T> Start<T> {
    /// The start of a run of `steps` steps, with room for a context each.
    pub(crate) fn fresh(steps: usize) -> Self {
        Self {
            at: 0,
            previous: ResultSet::empty(),
            sinks: Vec::new(),
            chain: ExecutionChain::with_capacity(steps),
            done: false,
        }
    }
}

/// Saves progress once a step is done: the chain so far, the step to run
/// next (`None` when the run ended) and the pending sinks.
pub(crate) type Save<'a, T> =
    dyn FnMut(&ExecutionChain<T>, Option<usize>, &[usize]) -> Result<(), CheckpointError> + 'a;

fn index<T>(pipeline: &Pipeline<T>, step: &str) -> Option<usize> {
    pipeline.steps().iter().position(|s| s.name() == step)
}

/// The start of a run of `pipeline` on an input with fingerprint `input`:
/// where the checkpoint in `store` left off, or the first step when the
/// store is empty. Nothing is written to the store.
pub(crate) fn start<T: DeserializeOwned>(
    store: &dyn CheckpointStore,
    pipeline: &Pipeline<T>,
    input: Fingerprint,
) -> Result<Start<T>, CheckpointError> {
    let Some(checkpoint) = Checkpoint::<T>::load(store)? else {
        return Ok(Start::fresh(pipeline.steps().len()));
    };
    let path = store.path();
    checkpoint.check_shape(pipeline, Some(input), path)?;
    let chain = checkpoint.restore_chain(pipeline, path)?;
    // `check` made sure every name is one of the pipeline's steps.
    let at = checkpoint
        .next
        .as_deref()
        .and_then(|n| index(pipeline, n))
        .unwrap_or(0);
    let sinks = checkpoint
        .sinks
        .iter()
        .filter_map(|n| index(pipeline, n))
        .collect();
    let previous = chain
        .tail()
        .map(|c| c.state().results().clone())
        .unwrap_or_default();
    Ok(Start {
        at,
        previous,
        sinks,
        chain,
        done: checkpoint.finished,
    })
}

/// A [`Save`] writing to `store`: the whole chain so far, every time, so
/// that the latest checkpoint alone is enough to resume.
///
/// Contexts never change once they are done, so each is serialised and fed
/// to the checksum once, when it first appears; a save then only adds the
/// new contexts and the few fields that follow the chain. The bytes are
/// exactly those of [`Checkpoint::encode`], so serialising and checksumming
/// stay linear in the run, not quadratic; what remains per save is copying
/// the body and the store's write.
pub(crate) fn saver<'a, T: Serialize>(
    pipeline: &'a Pipeline<T>,
    input: Fingerprint,
    store: &'a dyn CheckpointStore,
) -> Result<Box<Save<'a, T>>, CheckpointError> {
    let mut body = format!(
        "{{\"format\":{CHECKPOINT_FORMAT},\"pipeline\":{},\"fingerprint\":{},\"input\":{},\"chain\":[",
        json(&pipeline.name())?,
        json(&Fingerprint::of_pipeline(pipeline))?,
        json(&Some(input))?,
    )
    .into_bytes();
    let mut sum = Fnv::new();
    sum.update(&body);
    let mut written = 0;
    let name = |i: usize| Arc::clone(&pipeline.steps()[i].name);
    Ok(Box::new(
        move |chain: &ExecutionChain<T>, next: Option<usize>, sinks: &[usize]| {
            for context in chain.iter().skip(written) {
                let start = body.len();
                if written > 0 {
                    body.push(b',');
                }
                serde_json::to_writer(&mut body, context).map_err(|e| CheckpointError::Serialize {
                    what: Serialized::Checkpoint,
                    message: e.to_string(),
                })?;
                sum.update(&body[start..]);
                written += 1;
            }
            let completed: Vec<Arc<str>> = chain.iter().map(|c| Arc::clone(&c.step)).collect();
            let sinks: Vec<Arc<str>> = sinks.iter().copied().map(name).collect();
            let tail = format!(
                "],\"finished\":{},\"completed\":{},\"next\":{},\"sinks\":{}}}",
                next.is_none(),
                json(&completed)?,
                json(&next.map(name))?,
                json(&sinks)?,
            );
            let mut total = Fnv(sum.0);
            total.update(tail.as_bytes());
            let len = body.len() + tail.len();
            let header = format!(
                "{MAGIC} v{CHECKPOINT_FORMAT} len={len} fnv1a64={}\n",
                Fingerprint::from(total.0)
            );
            let mut bytes = Vec::with_capacity(header.len() + len);
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&body);
            bytes.extend_from_slice(tail.as_bytes());
            store.save(&bytes)
        },
    ))
}

fn json<V: Serialize + ?Sized>(value: &V) -> Result<String, CheckpointError> {
    serde_json::to_string(value).map_err(|e| CheckpointError::Serialize {
        what: Serialized::Checkpoint,
        message: e.to_string(),
    })
}
