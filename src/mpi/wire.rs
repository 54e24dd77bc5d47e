//! What crosses the wire between ranks, and how: postcard, the codec the
//! checkpoint log uses, so a value type that checkpoints also travels.
//!
//! Tasks are addressed by (step index, task index): every rank built the
//! same pipeline (the handshake compares fingerprints), so names, closures
//! and executors never travel, only inputs, previous results and outcomes.
//! Messages carry `V`, which is `&T` when sending and `T` when receiving,
//! so that nothing is cloned to be sent.

use crate::checkpoint::codec;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::engine::outcome::Outcome;
use crate::error::{Cause, DeadlineScope, TaskFailure};
use crate::model::flow::Directive;
use crate::records::metrics::Stamp;

/// Messages from rank 0 to the others.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ToWorker<V> {
    /// The answer to a worker's hello: whether its pipeline is rank 0's,
    /// and if so the run's input.
    Welcome {
        fingerprint: u64,
        /// The first rank whose pipeline differs, and its fingerprint.
        mismatch: Option<(u64, u64)>,
        input: Option<V>,
    },
    /// A step starts: what its tasks see besides the input. Sent only to a
    /// rank that is given tasks of the step, before its first chunk.
    Step {
        seq: u64,
        step: u32,
        context: u64,
        run: crate::RunId,
        total_tasks: u64,
        deadline: Option<WireDeadline>,
        previous: Vec<(String, V)>,
    },
    /// Tasks of the current step to run, as ranges of task indices.
    Chunk { seq: u64, tasks: Vec<(u32, u32)> },
    /// The run is over: serve no more.
    End,
}

/// Messages from the other ranks to rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ToRoot<V> {
    /// A worker is ready to serve a run of the pipeline with this
    /// fingerprint.
    Hello { fingerprint: u64 },
    /// The outcomes of one chunk, in task order.
    Done { seq: u64, outcomes: Vec<WireOutcome<V>> },
}

/// A deadline as time left, since ranks share no clock.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct WireDeadline {
    pub(super) left: Duration,
    pub(super) run_scope: bool,
    pub(super) limit: Duration,
}

impl WireDeadline {
    pub(super) fn scope(self) -> DeadlineScope {
        if self.run_scope {
            DeadlineScope::Run
        } else {
            DeadlineScope::Step
        }
    }
}

/// One task's [`Outcome`]; names are left out, since the receiver knows
/// the task by its index.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct WireOutcome<V> {
    index: u32,
    result: Result<V, WireFailure>,
    started: Duration,
    finished: Duration,
    attempts: u32,
    thread: u64,
    directive: WireDirective,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum WireDirective {
    None,
    Switch(u8),
    Stop,
}

/// A [`TaskFailure`] without its task and step, which the receiver knows.
/// A failure's cause travels as its message: causes are not serialisable.
#[derive(Debug, Serialize, Deserialize)]
enum WireFailure {
    Failed {
        attempt: u32,
        message: String,
    },
    Panicked {
        attempt: u32,
        message: String,
    },
    HookPanicked {
        place: String,
        message: String,
    },
    Dispatch {
        executor: String,
        message: String,
    },
    Lost,
    RetriesExhausted {
        attempts: u32,
        earlier: Vec<WireFailure>,
        last: Box<WireFailure>,
    },
    Stopped {
        reason: String,
    },
    Cancelled {
        attempts: u32,
    },
    TimedOut {
        run_scope: bool,
        limit: Duration,
    },
    Recorded {
        kind: String,
        attempt: Option<u32>,
        message: String,
    },
}

/// The error a task returned on another rank, as [`TaskFailure::Failed`]'s
/// cause on rank 0: the original error's message and the rank it ran on.
///
/// ```
/// use conveyor::mpi::RemoteError;
/// let e = RemoteError { rank: 2, message: "disk full".into() };
/// assert_eq!(e.to_string(), "disk full (on rank 2)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteError {
    /// The rank the task ran on.
    pub rank: usize,
    /// The original error's message (its `Display`).
    pub message: String,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (on rank {})", self.message, self.rank)
    }
}

impl std::error::Error for RemoteError {}

/// Encodes `value` into a fresh buffer, in the checkpoint's codec.
pub(super) fn encode<M: Serialize + ?Sized>(value: &M) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    codec::encode_into(value, &mut out)?;
    Ok(out)
}

/// Decodes a whole message.
pub(super) fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, String> {
    codec::decode(bytes)
}

impl<'a, T> WireOutcome<&'a T> {
    /// The outcome as it is sent.
    pub(super) fn of(outcome: &'a Outcome<T>) -> Self {
        Self {
            index: u32::try_from(outcome.index).unwrap_or(u32::MAX),
            result: match &outcome.result {
                Ok(value) => Ok(value),
                Err(failure) => Err(WireFailure::of(failure)),
            },
            started: outcome.stamp.started(),
            finished: outcome.stamp.finished(),
            attempts: outcome.stamp.attempts,
            thread: outcome.stamp.thread(),
            directive: match outcome.directive {
                None => WireDirective::None,
                Some(Directive::Switch(n)) => WireDirective::Switch(n),
                Some(Directive::Stop) => WireDirective::Stop,
            },
        }
    }
}

/// Where a received outcome's names and times come from.
pub(super) struct Origin<'a, T> {
    pub(super) tasks: &'a [crate::Task<T>],
    pub(super) step: &'a Arc<str>,
    pub(super) rank: usize,
    /// Rank 0's clock reading when the chunk was sent: the worker's times
    /// count from when it got the chunk.
    pub(super) sent: Duration,
}

impl<T> WireOutcome<T> {
    /// The outcome back; `None` for a task index the step does not have.
    pub(super) fn into_outcome(self, origin: &Origin<'_, T>) -> Option<Outcome<T>> {
        let index = usize::try_from(self.index).ok()?;
        let task = &origin.tasks.get(index)?.name;
        Some(Outcome {
            index,
            result: self
                .result
                .map_err(|f| Box::new(f.into_failure(task, origin.step, origin.rank))),
            // Thread numbers are per process: rank r's thread n shows as
            // r * 10000 + n, so no two ranks' threads share a number.
            stamp: Stamp::new(
                origin.sent.saturating_add(self.started),
                origin.sent.saturating_add(self.finished),
                self.attempts,
                (origin.rank as u64)
                    .saturating_mul(10_000)
                    .saturating_add(self.thread),
            ),
            directive: match self.directive {
                WireDirective::None => None,
                WireDirective::Switch(n) => Some(Directive::Switch(n)),
                WireDirective::Stop => Some(Directive::Stop),
            },
        })
    }
}

impl WireFailure {
    fn of(failure: &TaskFailure) -> Self {
        match failure {
            TaskFailure::Failed { attempt, cause, .. } => Self::Failed {
                attempt: *attempt,
                message: cause.to_string(),
            },
            TaskFailure::Panicked { attempt, message, .. } => Self::Panicked {
                attempt: *attempt,
                message: message.clone(),
            },
            TaskFailure::HookPanicked { place, message, .. } => Self::HookPanicked {
                place: (*place).to_owned(),
                message: message.clone(),
            },
            TaskFailure::Dispatch {
                executor, message, ..
            } => Self::Dispatch {
                executor: executor.to_string(),
                message: message.clone(),
            },
            TaskFailure::Lost { .. } => Self::Lost,
            TaskFailure::RetriesExhausted {
                attempts,
                earlier,
                last,
                ..
            } => Self::RetriesExhausted {
                attempts: *attempts,
                earlier: earlier.iter().map(Self::of).collect(),
                last: Box::new(Self::of(last)),
            },
            TaskFailure::Stopped { reason, .. } => Self::Stopped {
                reason: reason.clone(),
            },
            TaskFailure::Cancelled { attempts, .. } => Self::Cancelled { attempts: *attempts },
            TaskFailure::TimedOut { scope, limit, .. } => Self::TimedOut {
                run_scope: *scope == DeadlineScope::Run,
                limit: *limit,
            },
            TaskFailure::Recorded {
                kind,
                attempt,
                message,
                ..
            } => Self::Recorded {
                kind: kind.clone(),
                attempt: *attempt,
                message: message.clone(),
            },
        }
    }

    /// The failure as rank 0 records it: the same variant it would be had
    /// the task run there, naming the rank it ran on (in a failure's
    /// cause, a [`RemoteError`]; in the message of the others that carry
    /// one). A stop's reason is the task's own words and stays as it was.
    fn into_failure(self, task: &Arc<str>, step: &Arc<str>, rank: usize) -> TaskFailure {
        let (task, step) = (Arc::clone(task), Arc::clone(step));
        let on = |message: String| format!("{message} (on rank {rank})");
        match self {
            Self::Failed { attempt, message } => TaskFailure::Failed {
                task,
                step,
                attempt,
                cause: Cause::new(RemoteError { rank, message }),
            },
            Self::Panicked { attempt, message } => TaskFailure::Panicked {
                task,
                step,
                attempt,
                message: on(message),
            },
            Self::HookPanicked { place, message } => TaskFailure::HookPanicked {
                task,
                step,
                place: hook_place(&place),
                message: on(message),
            },
            Self::Dispatch { executor, message } => TaskFailure::Dispatch {
                executor: executor.into(),
                task,
                step,
                message: on(message),
            },
            Self::Lost => TaskFailure::Lost { task, step },
            Self::RetriesExhausted {
                attempts,
                earlier,
                last,
            } => TaskFailure::RetriesExhausted {
                earlier: earlier
                    .into_iter()
                    .map(|f| f.into_failure(&task, &step, rank))
                    .collect(),
                last: Box::new(last.into_failure(&task, &step, rank)),
                task,
                step,
                attempts,
            },
            Self::Stopped { reason } => TaskFailure::Stopped { task, step, reason },
            Self::Cancelled { attempts } => TaskFailure::Cancelled { task, step, attempts },
            Self::TimedOut { run_scope, limit } => TaskFailure::TimedOut {
                task,
                step,
                scope: if run_scope {
                    DeadlineScope::Run
                } else {
                    DeadlineScope::Step
                },
                limit,
            },
            Self::Recorded {
                kind,
                attempt,
                message,
            } => TaskFailure::Recorded {
                kind,
                task,
                step,
                attempt,
                message: on(message),
            },
        }
    }
}

/// The engine's name for a piece of user code around a task; the names
/// are `'static` in [`TaskFailure::HookPanicked`].
fn hook_place(place: &str) -> &'static str {
    match place {
        "retry predicate" => "retry predicate",
        "custom executor" => "custom executor",
        _ => "hook",
    }
}
