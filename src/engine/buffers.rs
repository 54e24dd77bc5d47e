//! The large per-step vectors, kept between steps.
//!
//! A step of many tasks needs a column as long as the step for its
//! tasks' values while they arrive. Allocated fresh for every step, it is
//! large enough for the allocator to map new pages each time, and a
//! 10,000-task step spent a quarter of its time in page faults, or not,
//! depending on the allocator's state: the same benchmark measured 0.63 ms
//! or 1.25 ms. Kept here, it is mapped once. (The stamps column is handed
//! to the step's context as its metrics, so it cannot be kept.)

use parking_lot::Mutex;

/// The longest vector kept, in tasks: a step of a million tasks should
/// not leave its vectors behind for the rest of the executor's life.
const KEEP: usize = 1 << 16;
/// How many are kept: a step's, and one nested run's.
const SPARE: usize = 2;
/// The shortest vector worth keeping, in tasks: a small one costs the
/// allocator less than the lock that would keep it.
const LARGE: usize = 256;

/// Spare value columns for the steps of one executor.
pub(crate) struct Buffers<T> {
    spare: Mutex<Vec<Vec<Option<T>>>>,
}

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Self {
            spare: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Buffers<T> {
    /// An empty value column for `n` tasks, with room from an earlier step
    /// if one is kept and `n` is large.
    pub(crate) fn values(&self, n: usize) -> Vec<Option<T>> {
        if n < LARGE {
            return Vec::with_capacity(n);
        }
        self.spare.lock().pop().unwrap_or_default()
    }

    /// Whether `v` is long enough to be kept.
    pub(crate) fn worth_keeping(&self, v: &Vec<Option<T>>) -> bool {
        (LARGE..=KEEP).contains(&v.capacity())
    }

    /// Keeps `v` for a later step, if it is neither too short nor too
    /// long.
    pub(crate) fn keep_values(&self, mut v: Vec<Option<T>>) {
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
