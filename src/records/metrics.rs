//! Timing of contexts and tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The clock of one run: every offset in the run's metrics is measured from
/// the same instant, so tasks of different steps line up on one timeline.
///
/// It reads the CPU's time-stamp counter through `quanta` (9 ns a read on
/// the 2-core test machine, against 23 ns for `std::time::Instant`): a
/// task's timing takes two reads, and a step's several. `quanta` checks at
/// start-up that the counter is invariant and falls back to the OS clock
/// where it is not; its one-time calibration takes about half a
/// millisecond. Deadlines keep `std::time::Instant`, which waits need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    epoch: quanta::Instant,
    wall: SystemTime,
    /// Where this clock's offsets start: zero for a new run; for a resumed
    /// one, after every offset its restored part recorded, so that the
    /// restored steps and the new ones never overlap on one timeline.
    offset: Duration,
}

impl RunClock {
    pub(crate) fn start() -> Self {
        Self::resumed(Duration::ZERO)
    }

    /// A clock whose offsets start at `offset`.
    pub(crate) fn resumed(offset: Duration) -> Self {
        Self {
            epoch: quanta::Instant::now(),
            wall: SystemTime::now(),
            offset,
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.offset.saturating_add(self.epoch.elapsed())
    }

    /// Where this clock's offsets start.
    pub(crate) fn offset(&self) -> Duration {
        self.offset
    }

    /// Time since this clock started, without its offset: how long this
    /// process has spent on the run.
    pub(crate) fn here(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(crate) fn wall_start(&self) -> SystemTime {
        self.wall
    }
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    // `std::thread::ThreadId::as_u64` is unstable; a small dense number is
    // also easier to read on a timeline.
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// A small number naming the current OS thread, stable for its lifetime and
/// unique in the process.
pub(crate) fn thread_number() -> u64 {
    THREAD.with(|n| *n)
}

/// When one task ran, where, and how many attempts it took.
///
/// Offsets are from the start of the run (see [`ExecutionMetrics`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskMetrics {
    /// The task's name.
    pub task: Arc<str>,
    /// When its group was handed to the executor.
    pub queued: Duration,
    /// When its first attempt started.
    pub started: Duration,
    /// When its last attempt ended.
    pub finished: Duration,
    /// Attempts made; 0 when the task never started.
    pub attempts: u32,
    /// The OS thread that ran it, as a process-unique small number.
    pub thread: u64,
    /// Whether it ended with a value.
    pub succeeded: bool,
    /// Whether its value was restored from a checkpoint: it succeeded in an
    /// earlier process, and its times are from that run's part of the
    /// timeline.
    #[serde(default)]
    pub restored: bool,
}

impl TaskMetrics {
    /// How long the task ran, from first start to last end.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.finished.saturating_sub(self.started)
    }

    /// How long it waited between being queued and starting.
    #[must_use]
    pub fn wait(&self) -> Duration {
        self.started.saturating_sub(self.queued)
    }
}

/// Timing of one context and of each of its tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionMetrics {
    /// Wall-clock time at which the run started; offsets count from here.
    pub run_started_at: Option<SystemTime>,
    /// When the context started, as an offset from the run's start.
    pub started: Duration,
    /// When it ended, as an offset from the run's start; zero while running.
    pub finished: Duration,
    /// Per task, in declaration order.
    pub tasks: Vec<TaskMetrics>,
}

impl ExecutionMetrics {
    pub(crate) fn starting(clock: &RunClock) -> Self {
        Self {
            run_started_at: Some(clock.wall_start()),
            started: clock.now(),
            finished: Duration::ZERO,
            tasks: Vec::new(),
        }
    }

    /// How long the context took; zero while it runs.
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.finished.saturating_sub(self.started)
    }

    /// Sum of attempts over all tasks.
    #[must_use]
    pub fn attempts(&self) -> u64 {
        self.tasks.iter().map(|t| u64::from(t.attempts)).sum()
    }

    /// The metrics of the task named `task`.
    #[must_use]
    pub fn task(&self, task: &str) -> Option<&TaskMetrics> {
        self.tasks.iter().find(|t| &*t.task == task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_never_underflow() {
        let m = ExecutionMetrics::default();
        assert_eq!(m.duration(), Duration::ZERO);
        let t = TaskMetrics {
            task: "t".into(),
            queued: Duration::from_millis(5),
            started: Duration::from_millis(3),
            finished: Duration::from_millis(1),
            attempts: 1,
            thread: 1,
            succeeded: true,
            restored: false,
        };
        assert_eq!(t.duration(), Duration::ZERO);
        assert_eq!(t.wait(), Duration::ZERO);
    }

    #[test]
    fn thread_numbers_differ_between_threads() {
        let here = thread_number();
        let there = std::thread::spawn(thread_number).join().unwrap();
        assert_ne!(here, there);
        assert_eq!(here, thread_number());
    }
}
