//! The large per-step vectors, kept between steps.
//!
//! A step of many tasks needs two vectors as long as the step: where each
//! task's attempt left it, and the result processor's slots. Allocated
//! fresh for every step, they are large enough for the allocator to map
//! new pages each time, and a 10,000-task step spent a quarter of its time
//! in page faults, or not, depending on the allocator's state: the same
//! benchmark measured 0.63 ms or 1.25 ms. Kept here, they are mapped once.

use parking_lot::Mutex;

use super::attempt::Progress;
use super::outcome::Outcome;

/// The longest vector kept, in tasks (about 6 MB of slots): a step of a
/// million tasks should not leave its vectors behind for the rest of the
/// executor's life.
const KEEP: usize = 1 << 16;
/// How many of each kind are kept: enough for a step and one nested run.
const SPARE: usize = 2;
/// The shortest vector worth keeping, in tasks: a small one costs the
/// allocator less than the lock that would keep it.
const LARGE: usize = 256;

/// Where each task's attempt left it, by task index.
type Attempted<T> = Vec<(usize, Progress<T>)>;

/// Spare vectors for the steps of one executor.
pub(crate) struct Buffers<T> {
    slots: Mutex<Vec<Vec<Option<Outcome<T>>>>>,
    progress: Mutex<Vec<Attempted<T>>>,
}

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Buffers<T> {
    /// An empty slot vector for `n` tasks, with room from an earlier step
    /// if one is kept and `n` is large.
    pub(crate) fn slots(&self, n: usize) -> Vec<Option<Outcome<T>>> {
        if n < LARGE {
            return Vec::with_capacity(n);
        }
        self.slots.lock().pop().unwrap_or_default()
    }

    /// Keeps `v` for a later step, if it is not too long.
    pub(crate) fn keep_slots(&self, v: Vec<Option<Outcome<T>>>) {
        keep(&self.slots, v);
    }

    /// An empty progress vector for `n` tasks, with room from an earlier
    /// step if one is kept and `n` is large.
    pub(crate) fn progress(&self, n: usize) -> Attempted<T> {
        if n < LARGE {
            return Vec::with_capacity(n);
        }
        self.progress.lock().pop().unwrap_or_default()
    }

    /// Keeps `v` for a later step, if it is not too long.
    pub(crate) fn keep_progress(&self, v: Attempted<T>) {
        keep(&self.progress, v);
    }
}

fn keep<E>(spare: &Mutex<Vec<Vec<E>>>, mut v: Vec<E>) {
    v.clear();
    if !(LARGE..=KEEP).contains(&v.capacity()) {
        return;
    }
    let mut spare = spare.lock();
    if spare.len() < SPARE {
        spare.push(v);
    }
}
