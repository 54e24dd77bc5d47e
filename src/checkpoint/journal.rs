//! Saving a run's progress as it goes: records are encoded where they are
//! made and appended to the store by one writer thread.
//!
//! Each task that succeeds is encoded on the worker that ran it, in
//! parallel with the other tasks, and handed to the writer over a channel;
//! each finished step adds one small step record. The writer owns every
//! store call, so workers never wait on the disk unless the encoded bytes
//! waiting for it pass [`IN_FLIGHT`]: that bounds the memory a save takes,
//! however large the results, to about one record per worker plus the
//! budget. A save costs what it adds, not what the run has saved so far.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::outcome::Outcome;
use crate::engine::signal::{CheckpointEvent, SignalEmitter};
use crate::engine::step_run::TaskHook;
use crate::error::CheckpointError;
use crate::ids::RunId;
use crate::records::context::ExecutionContext;

use super::format::{StepParts, TaskMeta, check_readable, step_record, task_record};
use super::store::{CheckpointStore, Durability};

/// Encoded bytes that may wait for the writer before workers wait for it.
/// A record larger than this still goes through, alone.
const IN_FLIGHT: u64 = 64 << 20;

/// The bytes waiting for the writer, and a condition to wait for room.
#[derive(Default)]
struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
}

impl Budget {
    /// Waits for room for `n` bytes, then takes it. With nothing in flight
    /// there is always room, so a record larger than the budget cannot
    /// wait forever.
    fn take(&self, n: u64) {
        let mut used = self.used.lock();
        while *used > 0 && used.saturating_add(n) > IN_FLIGHT {
            self.freed.wait(&mut used);
        }
        *used += n;
    }

    fn give(&self, n: u64) {
        *self.used.lock() -= n;
        self.freed.notify_all();
    }
}

/// What a walk saves as it goes; the facade's view of a [`Journal`].
pub(crate) trait Saver<T>: Sync {
    /// The callback that saves each task of `step` that succeeds.
    fn task_hook(&self, step: &Arc<str>) -> TaskHook<T>;

    /// Saves a finished step: `next` is the step the run goes to (`None`
    /// when it ended), `sinks` the sinks still waiting. Task records of the
    /// step were saved before it.
    ///
    /// # Errors
    /// The first error any save of the run met, once it is known.
    fn step(
        &self,
        context: &ExecutionContext<T>,
        next: Option<&str>,
        sinks: &[Arc<str>],
    ) -> Result<(), CheckpointError>;

    /// Waits until everything saved so far is written, synced as the
    /// store's durability asks, and reported to observers: the run calls it
    /// before its last event, so that `checkpoint_saved` never follows
    /// `pipeline_finished`.
    fn flush(&self);
}

/// Who the journal writes for, for its events.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) run: RunId,
    pub(crate) pipeline: Arc<str>,
    pub(crate) total_tasks: usize,
}

enum Entry {
    Task(Vec<u8>),
    /// A step record; the writer answers on `written` once it is appended,
    /// before it syncs.
    Step {
        bytes: Vec<u8>,
        step: Arc<str>,
        written: Sender<()>,
    },
    /// The writer answers once every entry before this one is handled.
    Flush(Sender<()>),
    /// The run is over. The writer stops here, not when every sender is
    /// gone: a task that outlived the run's deadline still holds one, and
    /// the run must not wait for it.
    Close,
}

/// The first error, shared by the workers, the walk and the writer.
#[derive(Default)]
struct Failure(Mutex<Option<CheckpointError>>);

impl Failure {
    fn record(&self, e: CheckpointError) {
        self.0.lock().get_or_insert(e);
    }

    fn check(&self) -> Result<(), CheckpointError> {
        self.0.lock().clone().map_or(Ok(()), Err)
    }
}

/// A run's checkpoint writer: the sending side, and the thread that owns
/// the store.
pub(crate) struct Journal<'scope, T> {
    tx: Sender<Entry>,
    failure: Arc<Failure>,
    budget: Arc<Budget>,
    /// Whether a task record was read back yet; see `check_readable`.
    checked: Arc<AtomicBool>,
    writer: ScopedJoinHandle<'scope, ()>,
    _values: PhantomData<fn(&T)>,
}

impl<'scope, T> Journal<'scope, T> {
    /// Starts the writer on a thread of `scope`, appending to `store`,
    /// whose log already has its header.
    pub(crate) fn spawn<'env>(
        scope: &'scope Scope<'scope, 'env>,
        store: &'scope dyn CheckpointStore,
        emitter: Arc<SignalEmitter>,
        info: RunInfo,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let failure = Arc::new(Failure::default());
        let budget = Arc::new(Budget::default());
        let (shared, room) = (Arc::clone(&failure), Arc::clone(&budget));
        let writer = scope.spawn(move || write(&rx, store, &shared, &room, &emitter, &info));
        Self {
            tx,
            failure,
            budget,
            checked: Arc::new(AtomicBool::new(false)),
            writer,
            _values: PhantomData,
        }
    }

    /// Waits until everything sent is written; the first error of the run,
    /// if any.
    ///
    /// # Errors
    /// The first error any save met.
    pub(crate) fn close(self) -> Result<(), CheckpointError> {
        let _ = self.tx.send(Entry::Close);
        drop(self.tx);
        if self.writer.join().is_err() {
            // The writer runs only store code and observers, both under
            // their own guards; a panic there is a store bug.
            self.failure.record(CheckpointError::Corrupt {
                path: None,
                message: "the checkpoint writer panicked".into(),
            });
        }
        self.failure.check()
    }
}

impl<T> Saver<T> for Journal<'_, T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn task_hook(&self, step: &Arc<str>) -> TaskHook<T> {
        let (tx, failure, budget, checked, step) = (
            self.tx.clone(),
            Arc::clone(&self.failure),
            Arc::clone(&self.budget),
            Arc::clone(&self.checked),
            Arc::clone(step),
        );
        Arc::new(move |outcome: &Outcome<T>| {
            let Ok(value) = &outcome.result else { return };
            let meta = TaskMeta {
                attempts: outcome.stamp.attempts,
                started: outcome.stamp.started(),
                finished: outcome.stamp.finished(),
                thread: outcome.stamp.thread(),
                directive: outcome.directive,
            };
            let record = task_record(&step, outcome.index, value, meta).and_then(|record| {
                if !checked.swap(true, Ordering::Relaxed) {
                    check_readable::<T>(&record)?;
                }
                Ok(record)
            });
            match record {
                // A send fails only once the run is over (a task that
                // outlived its deadline): nothing waits for its record.
                Ok(record) => {
                    budget.take(record.len() as u64);
                    let len = record.len() as u64;
                    if tx.send(Entry::Task(record)).is_err() {
                        budget.give(len);
                    }
                }
                Err(e) => failure.record(e),
            }
        })
    }

    fn step(
        &self,
        context: &ExecutionContext<T>,
        next: Option<&str>,
        sinks: &[Arc<str>],
    ) -> Result<(), CheckpointError> {
        self.failure.check()?;
        let names: Vec<Arc<str>> = context.tasks().iter().map(|t| Arc::clone(&t.name)).collect();
        let results: Vec<usize> = context
            .state()
            .results()
            .iter()
            .filter_map(|(name, _)| names.iter().position(|t| **t == *name))
            .collect();
        let bytes = step_record(StepParts {
            context: context.id(),
            step: &context.step,
            tasks: &names,
            state: context.state(),
            metrics: context.metrics(),
            evaluation: context.evaluation(),
            results: &results,
            next,
            sinks,
        })?;
        let step = Arc::clone(&context.step);
        // The walk moves on only once the step's records reached the store:
        // a process killed in the next step then never loses this one. The
        // sync, when the durability asks for one, overlaps the next step.
        let (written, done) = crossbeam_channel::bounded(1);
        if self.tx.send(Entry::Step { bytes, step, written }).is_ok() {
            // Disconnected without an answer only if the writer panicked,
            // which `close` reports.
            let _ = done.recv();
        }
        self.failure.check()
    }

    fn flush(&self) {
        let (handled, done) = crossbeam_channel::bounded(1);
        if self.tx.send(Entry::Flush(handled)).is_ok() {
            // Disconnected without an answer only if the writer panicked,
            // which `close` reports.
            let _ = done.recv();
        }
    }
}

/// The writer's loop: append each record, sync as the store's durability
/// says, report each step's save. After the first error it keeps draining,
/// so that no worker blocks on a full channel, and writes nothing more.
fn write(
    rx: &Receiver<Entry>,
    store: &dyn CheckpointStore,
    failure: &Failure,
    budget: &Budget,
    emitter: &SignalEmitter,
    info: &RunInfo,
) {
    let durability = store.durability();
    let (mut bytes, mut busy) = (0_u64, Duration::ZERO);
    for entry in rx {
        // Room is given back as soon as a record is taken off the channel:
        // from here on it is this thread's to write or to drop.
        let (record, step) = match &entry {
            Entry::Task(record) => {
                budget.give(record.len() as u64);
                (record, None)
            }
            Entry::Step { bytes, step, .. } => (bytes, Some(step)),
            Entry::Flush(handled) => {
                let _ = handled.send(());
                continue;
            }
            Entry::Close => break,
        };
        if failure.check().is_err() {
            if let Entry::Step { written, .. } = &entry {
                let _ = written.send(());
            }
            continue;
        }
        let began = Instant::now();
        let appended = store.append(record);
        if let Entry::Step { written, .. } = &entry {
            let _ = written.send(());
        }
        if let Err(e) = appended {
            failure.record(e);
            continue;
        }
        let sync = match durability {
            Durability::EveryRecord => true,
            Durability::EveryStep => step.is_some(),
            Durability::Never => false,
        };
        if sync && let Err(e) = store.sync() {
            failure.record(e);
        }
        busy += began.elapsed();
        bytes += record.len() as u64;
        if let Some(step) = step {
            if !emitter.is_empty() {
                let event = CheckpointEvent {
                    run: info.run,
                    pipeline: &info.pipeline,
                    total_tasks: info.total_tasks,
                    step: Some(step),
                    bytes,
                    elapsed: busy,
                    restored_steps: 0,
                    restored_tasks: 0,
                };
                emitter.emit(|o| o.checkpoint_saved(&event));
            }
            (bytes, busy) = (0, Duration::ZERO);
        }
    }
}
