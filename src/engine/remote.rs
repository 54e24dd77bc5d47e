//! The hook through which a step's tasks run in other processes: how an
//! MPI job (the `mpi` feature) shares each step among its ranks while the
//! walk, the judging and the checkpoint stay in one process.

use std::sync::Arc;

use super::outcome::Outcome;
use super::step_run::{Deadline, StepRun};
use crate::ids::{ContextId, RunId};
use crate::model::cancel::CancelToken;
use crate::model::step::Step;
use crate::records::metrics::RunClock;
use crate::records::results::ResultSet;

/// Runs a step's tasks somewhere else, and hands their outcomes back.
///
/// The walk calls it for every step, before the coordinator judges the
/// step: the coordinator then runs only what `gather` did not hand back,
/// so a task never goes missing, whatever happens elsewhere. It is
/// `Sync` only so that a run's scope can be shared with its pools: a walk
/// with a remote never leaves the caller's thread.
pub(crate) trait Remote<T>: Sync {
    /// Runs the tasks of `step` that `done` does not mark (they were
    /// restored from a checkpoint) and returns their outcomes, in any
    /// order. `run` is the step's run as the walking process built it: its
    /// input, previous results, deadline, cancel, observers and hooks.
    /// Whoever implements this tells the observers (see
    /// [`announce`](super::coordinator::announce)) and calls the hooks of
    /// every outcome it returns.
    fn gather(&self, step: &Step<T>, run: &StepRun<T>, done: &[bool]) -> Vec<Outcome<T>>;
}

/// One process's share of a step: what [`run_share`] needs besides the
/// step, which every process built alike.
///
/// [`run_share`]: crate::PipelineExecutor::run_share
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) struct Share<T> {
    pub(crate) pipeline: Arc<str>,
    /// The walking process's context and run, so that retry delays,
    /// seeded by them, come out as they would there.
    pub(crate) context: ContextId,
    pub(crate) run: RunId,
    pub(crate) total_tasks: usize,
    pub(crate) input: Arc<T>,
    pub(crate) previous: ResultSet<T>,
    pub(crate) clock: RunClock,
    pub(crate) deadline: Option<Deadline>,
    pub(crate) cancel: Option<CancelToken>,
    /// The tasks to run, by index.
    pub(crate) only: Vec<bool>,
}
