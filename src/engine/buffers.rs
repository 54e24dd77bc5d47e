//! The large per-step vectors, kept between steps.
//!
//! A step of many tasks needs a vector as long as the step: the result
//! processor's slots (and, for a step that mixes executors, one for its
//! pool group's first round). Allocated
//! fresh for every step, they are large enough for the allocator to map
//! new pages each time, and a 10,000-task step spent a quarter of its time
//! in page faults, or not, depending on the allocator's state: the same
//! benchmark measured 0.63 ms or 1.25 ms. Kept here, they are mapped once.

use parking_lot::Mutex;

use super::outcome::Outcome;

/// The longest vector kept, in tasks (about 4 MB of slots for a
/// word-sized result): a step of a million tasks should not leave its
/// vectors behind for the rest of the executor's life.
const KEEP: usize = 1 << 16;
/// How many are kept: a step's slots and, for a step that mixes
/// executors, its pool group's first round, plus one nested run's.
const SPARE: usize = 3;
/// The shortest vector worth keeping, in tasks: a small one costs the
/// allocator less than the lock that would keep it.
const LARGE: usize = 256;

/// One slot per task for its outcome, by task index or by position in a
/// group.
pub(crate) type Slots<T> = Vec<Option<Outcome<T>>>;

/// Spare slot vectors for the steps of one executor.
pub(crate) struct Buffers<T> {
    spare: Mutex<Vec<Slots<T>>>,
}

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Self {
            spare: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Buffers<T> {
    /// An empty slot vector for `n` tasks, with room from an earlier step
    /// if one is kept and `n` is large.
    pub(crate) fn slots(&self, n: usize) -> Slots<T> {
        if n < LARGE {
            return Vec::with_capacity(n);
        }
        self.spare.lock().pop().unwrap_or_default()
    }

    /// Keeps `v` for a later step, if it is neither too short nor too
    /// long.
    pub(crate) fn keep_slots(&self, mut v: Slots<T>) {
        v.clear();
        if !(LARGE..=KEEP).contains(&v.capacity()) {
            return;
        }
        let mut spare = self.spare.lock();
        if spare.len() < SPARE {
            spare.push(v);
        }
    }
}
