//! Timing of contexts and tasks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::records::results::Names;

/// One stamp per task of a step, in declaration order; a one-task step
/// keeps its stamp inline.
pub(crate) type StampColumn = smallvec::SmallVec<[Stamp; 1]>;

/// The clock of one run: every offset in the run's metrics is measured from
/// the same instant, so tasks of different steps line up on one timeline.
///
/// It reads the CPU's time-stamp counter through `quanta` (9 ns a read on
/// the 2-core test machine, against 23 ns for `std::time::Instant`): a
/// task's timing takes one or two reads (consecutive tasks on one worker
/// share one), and a step's several. `quanta` checks at start-up that the
/// counter is invariant and falls back to the OS clock where it is not;
/// its one-time calibration takes about half a millisecond. Deadlines keep
/// `std::time::Instant`, which waits need.
///
/// A task's stamp reads it as whole nanoseconds ([`now_nanos`](Self::now_nanos)):
/// the counter's raw ticks scaled by one multiply and shift, with no
/// `Duration` built and no division.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    /// The counter's raw reading when the run started.
    epoch: u64,
    wall: SystemTime,
    /// Where this clock's offsets start, in nanoseconds: zero for a new
    /// run; for a resumed one, after every offset its restored part
    /// recorded, so that the restored steps and the new ones never overlap
    /// on one timeline.
    offset: u64,
}

/// A span of time measured on the counter from the moment it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Countdown {
    start: u64,
    nanos: u64,
}

impl Countdown {
    /// A countdown of `length` from now.
    pub(crate) fn start(length: Duration) -> Self {
        Self {
            start: counter().raw(),
            nanos: nanos(length),
        }
    }

    /// Whether `length` has passed since the start.
    pub(crate) fn done(&self) -> bool {
        let counter = counter();
        counter.delta_as_nanos(self.start, counter.raw()) >= self.nanos
    }
}

/// The process's counter, calibrated once.
#[inline]
fn counter() -> &'static quanta::Clock {
    static COUNTER: OnceLock<quanta::Clock> = OnceLock::new();
    COUNTER.get_or_init(quanta::Clock::new)
}

impl RunClock {
    pub(crate) fn start() -> Self {
        Self::resumed(Duration::ZERO)
    }

    /// A clock whose offsets start at `offset`.
    pub(crate) fn resumed(offset: Duration) -> Self {
        Self {
            epoch: counter().raw(),
            wall: SystemTime::now(),
            offset: nanos(offset),
        }
    }

    /// Nanoseconds since the run started, offset included.
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        let counter = counter();
        self.offset
            .saturating_add(counter.delta_as_nanos(self.epoch, counter.raw()))
    }

    pub(crate) fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    /// Where this clock's offsets start.
    pub(crate) fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset)
    }

    /// Time since this clock started, without its offset: how long this
    /// process has spent on the run.
    pub(crate) fn here(&self) -> Duration {
        let counter = counter();
        counter.delta(self.epoch, counter.raw())
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

/// One task's timing as the engine records it while a step runs: 24
/// bytes, with no name and nothing to count or free, so that a step of
/// 10,000 tasks writes one small record per task. A context turns its
/// stamps into [`TaskMetrics`] the first time they are read (see
/// [`MetricsRecord`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// Nanoseconds from the run's start to the first attempt's start.
    started: u64,
    /// Nanoseconds from the run's start to the last attempt's end.
    finished: u64,
    pub(crate) attempts: u32,
    /// The thread number in the low 29 bits, and three flags above it.
    thread: u32,
}

impl Stamp {
    const SUCCEEDED: u32 = 1 << 31;
    const RESTORED: u32 = 1 << 30;
    const REPORTED: u32 = 1 << 29;
    const THREAD: u32 = Self::REPORTED - 1;

    /// A stamp for a task that ran from `started` to `finished` on thread
    /// `thread`. Thread numbers are dense and count OS threads; one past
    /// 2^29 would wrap, which a process never reaches.
    pub(crate) fn new(started: Duration, finished: Duration, attempts: u32, thread: u64) -> Self {
        Self::from_nanos(nanos(started), nanos(finished), attempts, thread)
    }

    /// [`new`](Self::new), from nanoseconds since the run's start.
    pub(crate) fn from_nanos(started: u64, finished: u64, attempts: u32, thread: u64) -> Self {
        Self {
            started,
            finished,
            attempts,
            #[allow(clippy::cast_possible_truncation)]
            thread: (thread as u32) & Self::THREAD,
        }
    }

    pub(crate) fn started(&self) -> Duration {
        Duration::from_nanos(self.started)
    }

    pub(crate) fn finished(&self) -> Duration {
        Duration::from_nanos(self.finished)
    }

    pub(crate) fn thread(&self) -> u64 {
        u64::from(self.thread & Self::THREAD)
    }

    pub(crate) fn succeeded(&self) -> bool {
        self.thread & Self::SUCCEEDED != 0
    }

    pub(crate) fn restored(&self) -> bool {
        self.thread & Self::RESTORED != 0
    }

    pub(crate) fn mark_succeeded(&mut self, succeeded: bool) {
        self.set(Self::SUCCEEDED, succeeded);
    }

    /// Whether a result processor has taken this task's outcome.
    pub(crate) fn reported(&self) -> bool {
        self.thread & Self::REPORTED != 0
    }

    pub(crate) fn mark_reported(&mut self) {
        self.set(Self::REPORTED, true);
    }

    pub(crate) fn mark_restored(&mut self, restored: bool) {
        self.set(Self::RESTORED, restored);
    }

    fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.thread |= flag;
        } else {
            self.thread &= !flag;
        }
    }
}

/// A duration in whole nanoseconds, saturating: `u64` nanoseconds cover
/// 584 years.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The tasks' stamps of one context, with what turns them into
/// [`TaskMetrics`].
#[derive(Debug, Clone)]
pub(crate) struct TaskStamps {
    pub(crate) names: Names,
    /// When the step's tasks were handed to their executors.
    pub(crate) queued: Duration,
    /// Whether the tasks' times were measured; when not, each task sits at
    /// `queued` with no length.
    pub(crate) timed: bool,
    pub(crate) stamps: StampColumn,
}

impl TaskStamps {
    fn expand(&self) -> Vec<TaskMetrics> {
        self.stamps
            .iter()
            .zip(self.names.iter())
            .map(|(s, name)| {
                let (started, finished) = if self.timed {
                    (s.started(), s.finished())
                } else {
                    (self.queued, self.queued)
                };
                TaskMetrics {
                    task: Arc::clone(name),
                    queued: self.queued,
                    started,
                    finished,
                    attempts: s.attempts,
                    thread: s.thread(),
                    succeeded: s.succeeded(),
                    restored: s.restored(),
                }
            })
            .collect()
    }
}

/// A context's metrics as it keeps them: the context's own times, and
/// either its tasks' compact stamps, expanded into [`ExecutionMetrics`] on
/// first read, or (restored from a checkpoint) the full metrics.
///
/// Expanding costs one name reference per task; a run whose caller never
/// reads per-task metrics never pays it.
#[derive(Debug, Clone)]
pub(crate) struct MetricsRecord {
    base: ExecutionMetrics,
    stamps: Option<TaskStamps>,
    /// Boxed: a context is moved as its chain grows, and most are never
    /// expanded.
    expanded: OnceLock<Box<ExecutionMetrics>>,
}

impl MetricsRecord {
    /// The metrics, expanding the stamps the first time.
    pub(crate) fn get(&self) -> &ExecutionMetrics {
        match &self.stamps {
            None => &self.base,
            Some(stamps) => self.expanded.get_or_init(|| {
                Box::new(ExecutionMetrics {
                    tasks: stamps.expand(),
                    ..self.base.clone()
                })
            }),
        }
    }

    /// Records the context's end and its tasks.
    pub(crate) fn finish(&mut self, finished: Duration, stamps: Option<TaskStamps>) {
        self.base.finished = finished;
        self.stamps = stamps;
        self.expanded = OnceLock::new();
    }

    /// One task's attempts, thread and duration, by position, without
    /// expanding the rest.
    pub(crate) fn task_at(&self, index: usize) -> Option<(u32, u64, Duration)> {
        match &self.stamps {
            Some(s) => s.stamps.get(index).map(|t| {
                let length = if s.timed {
                    t.finished().saturating_sub(t.started())
                } else {
                    Duration::ZERO
                };
                (t.attempts, t.thread(), length)
            }),
            None => self
                .base
                .tasks
                .get(index)
                .map(|t| (t.attempts, t.thread, t.duration())),
        }
    }
}

impl From<ExecutionMetrics> for MetricsRecord {
    fn from(base: ExecutionMetrics) -> Self {
        Self {
            base,
            stamps: None,
            expanded: OnceLock::new(),
        }
    }
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
