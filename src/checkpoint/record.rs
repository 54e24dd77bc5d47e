//! The records of a checkpoint log as serde sees them, in the binary codec.
//!
//! These are wire types, apart from the public ones on purpose: the codec
//! is not self-describing, so nothing here may skip a field when
//! serialising, and every field is written in declaration order. A change
//! to any of them is a change of [`CHECKPOINT_FORMAT`](super::CHECKPOINT_FORMAT).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ErrorRecord;
use crate::model::flow::Directive;
use crate::model::strategy::EvaluationResult;
use crate::records::metrics::ExecutionMetrics;
use crate::status::ExecutionStatus;

/// What a log belongs to: the first record of every log.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct HeaderRecord {
    pub(super) pipeline: String,
    pub(super) fingerprint: u64,
    pub(super) input: Option<u64>,
    /// The run's id; a resume keeps it.
    pub(super) run: u64,
    /// The step the run started at, where a log without step records
    /// resumes.
    pub(super) first: String,
}

/// One task of the running step that succeeded, with its value.
///
/// `V` is `&T` when writing and `T` when reading.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TaskRecord<V> {
    pub(super) step: String,
    pub(super) task: u32,
    pub(super) attempts: u32,
    pub(super) started: Duration,
    pub(super) finished: Duration,
    pub(super) thread: u64,
    pub(super) directive: WireDirective,
    pub(super) value: V,
}

/// A task's [`Directive`] on the wire.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) enum WireDirective {
    None,
    Switch(u8),
    Stop,
}

impl From<Option<Directive>> for WireDirective {
    fn from(d: Option<Directive>) -> Self {
        match d {
            None => Self::None,
            Some(Directive::Switch(n)) => Self::Switch(n),
            Some(Directive::Stop) => Self::Stop,
        }
    }
}

impl From<WireDirective> for Option<Directive> {
    fn from(d: WireDirective) -> Self {
        match d {
            WireDirective::None => None,
            WireDirective::Switch(n) => Some(Directive::Switch(n)),
            WireDirective::Stop => Some(Directive::Stop),
        }
    }
}

/// A finished step: its context without the values (those are in the task
/// records before it), and where the run goes next.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StepRecord {
    pub(super) context: u64,
    pub(super) step: String,
    pub(super) tasks: Vec<String>,
    pub(super) status: ExecutionStatus,
    pub(super) errors: Vec<WireError>,
    pub(super) metrics: ExecutionMetrics,
    pub(super) evaluation: Option<EvaluationResult>,
    /// The tasks whose values are the step's results, ascending.
    pub(super) results: Vec<u32>,
    /// The step to run next; `None` once the run ended.
    pub(super) next: Option<String>,
    /// Sinks waiting for their branches, innermost last.
    pub(super) sinks: Vec<String>,
}

/// An [`ErrorRecord`] with every field always written.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireError {
    kind: String,
    task: Option<String>,
    step: Option<String>,
    attempt: Option<u32>,
    message: String,
}

impl From<ErrorRecord> for WireError {
    fn from(r: ErrorRecord) -> Self {
        Self {
            kind: r.kind,
            task: r.task,
            step: r.step,
            attempt: r.attempt,
            message: r.message,
        }
    }
}

impl From<WireError> for ErrorRecord {
    fn from(w: WireError) -> Self {
        let mut r = ErrorRecord::new(w.kind, w.message);
        r.task = w.task;
        r.step = w.step;
        r.attempt = w.attempt;
        r
    }
}
