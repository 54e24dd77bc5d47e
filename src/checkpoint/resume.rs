//! Starting a run from a checkpoint log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::CheckpointError;
use crate::ids::RunId;
use crate::model::pipeline::Pipeline;
use crate::records::chain::ExecutionChain;
use crate::records::results::ResultSet;

use super::fingerprint::Fingerprint;
use super::format::{Checkpoint, Keep, TaskSnapshot, header_record};
use super::frame;
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
    /// Tasks of step `at` that already succeeded.
    pub(crate) pending: Vec<TaskSnapshot<T>>,
    /// The run's id: the saved run's when resuming.
    pub(crate) run: RunId,
    /// Where this run's clock starts: after every time the restored part
    /// recorded, so the two never overlap on one timeline.
    pub(crate) offset: Duration,
    /// What was read, when a checkpoint was.
    pub(crate) loaded: Option<Loaded>,
}

/// What reading a checkpoint took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Loaded {
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
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
            pending: Vec::new(),
            run: RunId::next(),
            offset: Duration::ZERO,
            loaded: None,
        }
    }
}

fn index<T>(pipeline: &Pipeline<T>, step: &str) -> Option<usize> {
    pipeline.steps().iter().position(|s| s.name() == step)
}

/// The start of a run of `pipeline` on an input with fingerprint `input`:
/// where the checkpoint in `store` left off, or the first step when the
/// store is empty, in which case a new log is created. A record a kill tore
/// is cut off the log; a log that does not fit is left as it was.
pub(crate) fn start<T: DeserializeOwned>(
    store: &dyn CheckpointStore,
    pipeline: &Pipeline<T>,
    input: Fingerprint,
    keep: Keep,
) -> Result<Start<T>, CheckpointError> {
    let began = Instant::now();
    let Some(reader) = store.open()? else {
        let start = Start::fresh(pipeline.steps().len());
        let mut log = frame::preamble().to_vec();
        log.extend(header_record(
            &pipeline.inner.name,
            Fingerprint::of_pipeline(pipeline),
            Some(input),
            start.run,
            pipeline.steps().first().map_or("", |s| &s.name),
        )?);
        store.create(&log)?;
        return Ok(start);
    };
    let path = store.path();
    let (checkpoint, end) = Checkpoint::<T>::read(reader, path, keep)?;
    checkpoint.check_shape(pipeline, Some(input), path)?;
    let chain = checkpoint.restore_chain(pipeline, path)?;
    if end.torn {
        log::warn!(
            "checkpoint{}: dropped a record cut short at byte {}; resuming from the records before it",
            path.map_or_else(String::new, |p| format!(" `{}`", p.display())),
            end.good
        );
        store.truncate(end.good)?;
    }
    // `check_shape` made sure every name is one of the pipeline's steps.
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
    let next: Option<Arc<str>> = checkpoint.next.clone();
    let pending: Vec<TaskSnapshot<T>> = checkpoint
        .pending
        .into_iter()
        .filter(|t| next.as_deref() == Some(&*t.step))
        .collect();
    let offset = chain
        .iter()
        .map(|c| c.metrics().finished)
        .chain(pending.iter().map(|t| t.finished))
        .max()
        .unwrap_or_default();
    Ok(Start {
        at,
        previous,
        sinks,
        chain,
        done: checkpoint.finished,
        pending,
        run: checkpoint.run,
        offset,
        loaded: Some(Loaded {
            bytes: end.good,
            elapsed: began.elapsed(),
        }),
    })
}
