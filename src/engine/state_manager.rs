//! The live states of running contexts, shared between threads.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::RunError;
use crate::ids::{ContextId, IdMap};
use crate::records::state::ExecutionState;
#[cfg(test)]
use crate::status::ExecutionStatus;

/// The current state of each live context, behind one `parking_lot` RwLock.
///
/// States are immutable: an update builds a new state and swaps the `Arc`, so
/// a reader on another thread holds the lock only for a map lookup and an
/// `Arc` clone. No guard is ever held while tasks run. Only legal
/// transitions are accepted (see
/// [`ExecutionStatus::can_transition_to`](crate::ExecutionStatus::can_transition_to)).
///
/// Entries are removed when their run ends, so memory stays bounded however
/// many runs go through one executor; the final states live on in the
/// [`Run`](crate::Run).
///
/// Users see it read-only, through
/// [`PipelineExecutor::states`](crate::PipelineExecutor::states): only the
/// engine moves states, so a task cannot move its own context.
///
/// ```
/// use conveyor::{Pipeline, PipelineExecutor};
/// let executor = PipelineExecutor::<u8>::builder().build()?;
/// let pipeline = Pipeline::<u8>::builder("p").task("t", |c| Ok(*c.input())).build()?;
/// executor.execute(&pipeline, 1)?;
/// // A run's contexts leave the live map when the run ends.
/// assert!(executor.states().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ExecutionStateManager<T> {
    states: RwLock<IdMap<Arc<ExecutionState<T>>>>,
}

impl<T> ExecutionStateManager<T> {
    /// An empty manager.
    #[must_use]
    pub(crate) fn new() -> Self {
        Self {
            states: RwLock::new(IdMap::default()),
        }
    }

    /// Registers `id` as pending and returns its state. An existing entry is
    /// left as it is.
    #[cfg(test)]
    pub(crate) fn insert(&self, id: ContextId) -> Arc<ExecutionState<T>> {
        self.insert_as(id, &Arc::new(ExecutionState::new()))
    }

    /// Registers `id` in `state` and returns it. An existing entry is left
    /// as it is.
    ///
    /// A step's context enters the map already executing: its pending
    /// moment, between two lines of the engine, is told to observers but
    /// never stored, which saves a write lock and a state per step. States
    /// are immutable, so every context of a run starts in one shared
    /// executing state until its own settled state replaces it, and
    /// starting a step allocates nothing. That state is the run's, not the
    /// executor's: runs on other threads never count references on one
    /// shared `Arc`.
    pub(crate) fn insert_as(&self, id: ContextId, state: &Arc<ExecutionState<T>>) -> Arc<ExecutionState<T>> {
        Arc::clone(self.states.write().entry(id).or_insert_with(|| Arc::clone(state)))
    }

    /// The current state of `id`, if it is live.
    #[must_use]
    pub fn state(&self, id: ContextId) -> Option<Arc<ExecutionState<T>>> {
        self.states.read().get(&id).cloned()
    }

    /// Moves `id` to `status`.
    ///
    /// # Errors
    /// [`RunError::UnknownContext`] when `id` is not live, and
    /// [`RunError::IllegalTransition`] when the move is not allowed; the
    /// state is left unchanged in both cases.
    #[cfg(test)]
    pub(crate) fn transition(
        &self,
        id: ContextId,
        status: ExecutionStatus,
    ) -> Result<Arc<ExecutionState<T>>, RunError> {
        self.update(id, |s| s.with_status(status))
    }

    /// Replaces the state of `id` with `f(current)`, checking the status
    /// transition between the two. `f` runs under the write lock, so it must
    /// be quick; it only builds a new state.
    ///
    /// # Errors
    /// [`RunError::UnknownContext`] when `id` is not live, and
    /// [`RunError::IllegalTransition`] when the move is not allowed; the
    /// state is left unchanged in both cases. An update that keeps the status
    /// is allowed unless the status is terminal.
    pub(crate) fn update(
        &self,
        id: ContextId,
        f: impl FnOnce(&ExecutionState<T>) -> ExecutionState<T>,
    ) -> Result<Arc<ExecutionState<T>>, RunError> {
        let mut states = self.states.write();
        let slot = states
            .get_mut(&id)
            .ok_or(RunError::UnknownContext { context: id })?;
        let next = f(slot);
        let (from, to) = (slot.status(), next.status());
        let legal = if from == to {
            !from.is_terminal()
        } else {
            from.can_transition_to(to)
        };
        if !legal {
            return Err(RunError::IllegalTransition {
                context: id,
                from,
                to,
            });
        }
        let next = Arc::new(next);
        *slot = Arc::clone(&next);
        Ok(next)
    }

    /// Forgets `ids`, returning how many were live.
    pub(crate) fn remove(&self, ids: impl IntoIterator<Item = ContextId>) -> usize {
        let mut states = self.states.write();
        ids.into_iter().filter(|id| states.remove(id).is_some()).count()
    }

    /// Ids of the live contexts, in no particular order.
    #[must_use]
    pub fn live(&self) -> Vec<ContextId> {
        self.states.read().keys().copied().collect()
    }

    /// Number of live contexts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.states.read().len()
    }

    /// Whether no context is live.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.states.read().is_empty()
    }
}

impl<T> fmt::Debug for ExecutionStateManager<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionStateManager")
            .field("live", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::results::ResultSet;
    use ExecutionStatus::*;

    #[test]
    fn illegal_transitions_leave_the_state_alone() {
        let m = ExecutionStateManager::<u8>::new();
        let id = ContextId::from(1);
        m.insert(id);
        assert!(matches!(
            m.transition(id, Finished),
            Err(RunError::IllegalTransition {
                from: Pending,
                to: Finished,
                ..
            })
        ));
        m.transition(id, Executing).unwrap();
        m.transition(id, Finished).unwrap();
        for to in [Pending, Executing, Aborted, Cancelled, Finished] {
            assert!(m.transition(id, to).is_err(), "{to}");
        }
        assert_eq!(m.state(id).unwrap().status(), Finished);
    }

    #[test]
    fn contexts_that_start_in_one_state_settle_apart() {
        let m = ExecutionStateManager::<u8>::new();
        let (a, b) = (ContextId::from(1), ContextId::from(2));
        let executing = Arc::new(ExecutionState::new().with_status(Executing));
        let (sa, sb) = (m.insert_as(a, &executing), m.insert_as(b, &executing));
        assert!(Arc::ptr_eq(&sa, &sb));
        let settled = m
            .update(a, |_| {
                ExecutionState::settled(
                    Finished,
                    Vec::new(),
                    ResultSet::from_entries(vec![("t".into(), 3)]),
                )
            })
            .unwrap();
        assert_eq!(settled.results().get("t"), Some(&3));
        assert_eq!(m.state(b).unwrap().status(), Executing);
        assert!(m.state(b).unwrap().results().is_empty());
        assert_eq!(executing.status(), Executing, "the shared state never changes");
        assert!(
            Arc::ptr_eq(&m.insert_as(b, &Arc::new(ExecutionState::new())), &sb),
            "an entry stays"
        );
    }

    #[test]
    fn unknown_contexts_are_errors() {
        let m = ExecutionStateManager::<u8>::new();
        assert!(matches!(
            m.transition(ContextId::from(9), Executing),
            Err(RunError::UnknownContext { .. })
        ));
    }

    #[test]
    fn readers_see_whole_states_while_a_writer_updates() {
        let m = Arc::new(ExecutionStateManager::<u32>::new());
        let id = ContextId::from(1);
        m.insert(id);
        m.transition(id, Executing).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let reader = {
            let (m, stop) = (Arc::clone(&m), Arc::clone(&stop));
            std::thread::spawn(move || {
                let _ = started_tx.send(());
                let mut seen = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let s = m.state(id).unwrap();
                    // Every state written below carries as many errors as
                    // its one result's value: a torn state would break this.
                    let n = s.results().first().copied().unwrap_or(0) as usize;
                    assert_eq!(s.errors().len(), n);
                    seen += 1;
                }
                seen
            })
        };
        started_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reader thread started");
        for i in 1..=2000u32 {
            m.update(id, |s| {
                s.with_error(crate::error::TaskFailure::Lost {
                    task: "t".into(),
                    step: "s".into(),
                })
                .with_results(crate::records::results::ResultSet::from_entries(vec![(
                    "t".into(),
                    i,
                )]))
            })
            .unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(m.remove([id, ContextId::from(2)]), 1);
        assert!(m.is_empty());
    }
}
