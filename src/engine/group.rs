//! One group of a step on a rayon pool: its tasks handed out to whichever
//! thread asks, and its retries held until they are due.
//!
//! A group is a shared work list, not a tree of jobs. Pool workers (one
//! injected job fanned out over the pool) and, when it belongs to the same
//! pool, the thread waiting for the step all claim tasks from it. Claiming
//! is what lets a waiting worker run its own run's tasks, so that a nested
//! `execute` on a pool of one thread never deadlocks, without ever running a
//! stranger's job or yielding into rayon while it waits.
//!
//! A task that fails and will be retried does not wait on its thread: it
//! goes into the group's delayed list with the time it is due, and the
//! thread moves on to other tasks. The thread waiting for the step watches
//! the earliest due time; when it comes, the due retries move to the ready
//! list and a new round is handed to the pool (or run by the waiting thread
//! itself when it is a worker of that pool). So a backoff never holds a
//! stack frame while other tasks run on top of it, and 10,000 tasks that
//! each back off cost one wait, not 10,000.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;
use parking_lot::Mutex;
use rayon::ThreadPool;
use rayon::prelude::*;

use super::attempt::{Attempts, Progress, Retry, attempt, due_after};
use super::outcome::Outcome;
use super::plan::TaskIndices;
use super::step_run::StepRun;

/// Where a group's work runs.
#[derive(Clone)]
pub(crate) enum Target {
    Pool(Arc<ThreadPool>),
    /// rayon's global pool, or the pool of the worker that dispatched it.
    Global,
}

impl Target {
    /// Whether the current thread is a worker of this target's pool.
    pub(crate) fn is_home(&self) -> bool {
        match self {
            Self::Pool(pool) => pool.current_thread_index().is_some(),
            Self::Global => rayon::current_thread_index().is_some(),
        }
    }

    fn threads(&self) -> usize {
        match self {
            Self::Pool(pool) => pool.current_num_threads(),
            Self::Global => rayon::current_num_threads(),
        }
    }

    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        match self {
            Self::Pool(pool) => pool.spawn(job),
            Self::Global => rayon::spawn(job),
        }
    }
}

/// A retry waiting for its time.
struct Delayed {
    due: Instant,
    index: usize,
    attempts: Attempts,
}

pub(crate) struct GroupRun<T> {
    run: Arc<StepRun<T>>,
    target: Target,
    /// The group's tasks, claimed front to back through `cursor`.
    tasks: TaskIndices,
    cursor: AtomicUsize,
    /// How many tasks one claim takes: a few per thread for no-op tasks,
    /// one for heavy ones, so that threads neither fight over the cursor
    /// nor leave work behind.
    chunk: usize,
    /// Retries that are due, for the next thread that asks.
    ready: Mutex<VecDeque<(usize, Attempts)>>,
    delayed: Mutex<Vec<Delayed>>,
    /// Keeps the step's channel open while retries are pending, so that a
    /// closed channel still means every job has reported or vanished.
    retry_sender: Mutex<Option<Sender<Outcome<T>>>>,
    /// Tells the waiting thread that a retry was delayed, so that it
    /// watches the new due time; one pending wake is enough.
    wake: Sender<()>,
}

impl<T: Send + Sync + 'static> GroupRun<T> {
    pub(crate) fn new(
        run: Arc<StepRun<T>>,
        target: Target,
        tasks: TaskIndices,
        wake: Sender<()>,
    ) -> Arc<Self> {
        let threads = target.threads().max(1);
        let chunk = (tasks.len() / (threads * 16)).clamp(1, 64);
        Arc::new(Self {
            run,
            target,
            tasks,
            cursor: AtomicUsize::new(0),
            chunk,
            ready: Mutex::new(VecDeque::new()),
            delayed: Mutex::new(Vec::new()),
            retry_sender: Mutex::new(None),
            wake,
        })
    }

    /// A group with no first round, holding `retries` (task index,
    /// attempts, due time) that another path already made.
    pub(crate) fn of_retries(
        run: Arc<StepRun<T>>,
        target: Target,
        retries: Vec<(usize, Attempts, Instant)>,
        sender: Sender<Outcome<T>>,
        wake: Sender<()>,
    ) -> Arc<Self> {
        let group = Self::new(run, target, TaskIndices::List(Vec::new()), wake);
        *group.delayed.lock() = retries
            .into_iter()
            .map(|(index, attempts, due)| Delayed { due, index, attempts })
            .collect();
        *group.retry_sender.lock() = Some(sender);
        group
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// Hands the group to its pool: one injected job, fanned out over the
    /// pool's threads, each claiming tasks until none is left.
    pub(crate) fn dispatch(self: &Arc<Self>, tx: Sender<Outcome<T>>) {
        let group = Arc::clone(self);
        let threads = self.target.threads().max(1);
        self.target.spawn(move || {
            (0..threads)
                .into_par_iter()
                .for_each(|_| group.work(&mut |o| drop(tx.send(o)), Some(&tx)));
        });
    }

    /// Runs the group's tasks on this thread until none is left to claim,
    /// giving each outcome to `report`. Retries go to the delayed list.
    /// `sender` is the step's channel, which the group keeps open while it
    /// holds retries; the waiting thread, which takes outcomes directly,
    /// passes none.
    pub(crate) fn work(&self, report: &mut dyn FnMut(Outcome<T>), sender: Option<&Sender<Outcome<T>>>) {
        loop {
            if let Some(range) = self.claim() {
                for position in range {
                    self.advance(self.tasks.get(position), Attempts::default(), report, sender);
                }
            } else {
                // Popped on its own line so the lock is released before the
                // attempt: `promote` takes the delayed list, then this one.
                let next = self.ready.lock().pop_front();
                match next {
                    Some((index, attempts)) => self.advance(index, attempts, report, sender),
                    None => return,
                }
            }
        }
    }

    fn claim(&self) -> Option<Range<usize>> {
        let len = self.tasks.len();
        if self.cursor.load(Ordering::Relaxed) >= len {
            return None;
        }
        let start = self.cursor.fetch_add(self.chunk, Ordering::Relaxed);
        (start < len).then(|| start..(start + self.chunk).min(len))
    }

    fn advance(
        &self,
        index: usize,
        attempts: Attempts,
        report: &mut dyn FnMut(Outcome<T>),
        sender: Option<&Sender<Outcome<T>>>,
    ) {
        match attempt(&self.run, index, attempts) {
            Progress::Done(outcome) => report(outcome),
            Progress::Retry(retry) => {
                let Retry { delay, attempts } = *retry;
                let due = due_after(delay);
                if let Some(sender) = sender {
                    self.retry_sender.lock().get_or_insert_with(|| sender.clone());
                }
                self.delayed.lock().push(Delayed { due, index, attempts });
                let _ = self.wake.try_send(());
            }
        }
    }

    /// When the earliest delayed retry is due, if any is waiting.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.delayed.lock().iter().map(|d| d.due).min()
    }

    /// Moves the retries due by `now` to the ready list. Returns how many
    /// moved and, when some moved, a sender for the round that runs them.
    pub(crate) fn promote(&self, now: Instant) -> (usize, Option<Sender<Outcome<T>>>) {
        let mut delayed = self.delayed.lock();
        let mut ready = self.ready.lock();
        let before = ready.len();
        let mut k = 0;
        while k < delayed.len() {
            if delayed[k].due <= now {
                let d = delayed.swap_remove(k);
                ready.push_back((d.index, d.attempts));
            } else {
                k += 1;
            }
        }
        let moved = ready.len() - before;
        // The sender goes with the new round once nothing is delayed any
        // more; while retries wait, the group keeps the channel open.
        let sender = if moved == 0 {
            None
        } else if delayed.is_empty() {
            self.retry_sender.lock().take()
        } else {
            self.retry_sender.lock().clone()
        };
        (moved, sender)
    }
}
