//! Comparing executor strategies on the user's own pipeline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::comparison::{Comparison, Row, Sample};
use crate::engine::unwind;
use crate::error::{BuildError, RunError};
use crate::facade::executor::PipelineExecutor;
use crate::model::config::ExecutorConfig;
use crate::model::pipeline::Pipeline;

/// One measured or warm-up run of a benchmark, as its observers see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct BenchmarkEvent<'a> {
    /// The benchmark's name.
    pub benchmark: &'a str,
    /// The strategy (or the baseline) that just ran.
    pub contender: &'a str,
    /// Whether the run was a warm-up, not counted in the results.
    pub warmup: bool,
    /// Runs done so far, warm-ups included, this one included.
    pub done: usize,
    /// Runs the benchmark will make in all, warm-ups included.
    pub total: usize,
    /// Wall time of this run.
    pub wall: Duration,
}

/// Hooks called as a [`StrategyBenchmark`] goes, for progress bars and logs.
/// Every hook has a no-op default. A panicking hook is caught and logged,
/// and the benchmark goes on.
pub trait BenchmarkObserver: Send + Sync {
    /// The benchmark is about to make `total` runs, warm-ups included.
    fn benchmark_started(&self, _benchmark: &str, _total: usize) {}
    /// One run ended.
    fn run_finished(&self, _event: &BenchmarkEvent<'_>) {}
    /// Every run ended; `comparison` is what [`StrategyBenchmark::run`]
    /// returns.
    fn benchmark_finished(&self, _comparison: &Comparison) {}
}

impl<O: BenchmarkObserver + ?Sized> BenchmarkObserver for Box<O> {
    fn benchmark_started(&self, benchmark: &str, total: usize) {
        (**self).benchmark_started(benchmark, total);
    }
    fn run_finished(&self, event: &BenchmarkEvent<'_>) {
        (**self).run_finished(event);
    }
    fn benchmark_finished(&self, comparison: &Comparison) {
        (**self).benchmark_finished(comparison);
    }
}

impl<O: BenchmarkObserver + ?Sized> BenchmarkObserver for Arc<O> {
    fn benchmark_started(&self, benchmark: &str, total: usize) {
        (**self).benchmark_started(benchmark, total);
    }
    fn run_finished(&self, event: &BenchmarkEvent<'_>) {
        (**self).run_finished(event);
    }
    fn benchmark_finished(&self, comparison: &Comparison) {
        (**self).benchmark_finished(comparison);
    }
}

type BaselineFn<'a> = Box<dyn FnMut() + 'a>;

/// What one contender runs: the pipeline with every task moved to one
/// config, or the pipeline as its author configured it.
#[derive(Debug, Clone, PartialEq)]
enum Contender {
    Forced(ExecutorConfig),
    AsConfigured,
}

/// The name of the contender that runs the pipeline unchanged.
const AS_CONFIGURED: &str = "as configured";

struct Baseline<'a> {
    name: String,
    threads: usize,
    f: BaselineFn<'a>,
}

/// Runs one pipeline under several executor strategies and compares them.
///
/// Each strategy is applied with [`Pipeline::with_executor`];
/// [`as_configured`](Self::as_configured) adds the pipeline unchanged as a
/// contender. The runs are interleaved, round by round, with the order
/// rotated each round, so that drift of the machine (frequency scaling,
/// other processes) hits every strategy alike. Baselines, such as the same
/// work written with plain rayon, are measured in the same rounds; each
/// baseline declares how many threads it uses, and each strategy's
/// overheads are computed against the baseline with as many threads as the
/// strategy has (a serial strategy against a serial baseline), never
/// across.
///
/// The setters consume and return the benchmark, and [`run`](Self::run)
/// checks the setup and does the work, so a comparison is one expression.
///
/// ```
/// use conveyor::{ExecutorConfig, Pipeline, Task};
/// use conveyor::bench::StrategyBenchmark;
/// let pipeline: Pipeline<u64> = Pipeline::builder("squares")
///     .step((0..8).map(|i| Task::from_fn(format!("t{i}"), move |c| Ok(c.input() * i)))
///         .collect::<Vec<_>>())
///     .build()?;
/// let comparison = StrategyBenchmark::new("squares", &pipeline, 3)
///     .strategies([ExecutorConfig::Inline, ExecutorConfig::pool(2)])
///     .as_configured()
///     .baseline_on("loop", 1, || { std::hint::black_box((0..8_u64).map(|i| 3 * i).sum::<u64>()); })
///     .warmups(1)
///     .runs(3)
///     .run()?;
/// assert_eq!(comparison.results.len(), 4);
/// let inline = comparison.result("inline").unwrap();
/// assert_eq!(inline.compared_with.as_deref(), Some("loop")); // one thread each
/// assert_eq!(inline.samples.len(), 3);
/// println!("{comparison}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StrategyBenchmark<'a, T> {
    name: String,
    pipeline: Pipeline<T>,
    input: T,
    executor: Option<&'a PipelineExecutor<T>>,
    strategies: Vec<Contender>,
    baselines: Vec<Baseline<'a>>,
    observers: Vec<Box<dyn BenchmarkObserver + 'a>>,
    warmups: usize,
    runs: usize,
}

impl<'a, T: Clone + Send + Sync + 'static> StrategyBenchmark<'a, T> {
    /// A benchmark named `name` of `pipeline`, each run starting from a
    /// clone of `input` (cloned outside the timed part).
    pub fn new(name: impl Into<String>, pipeline: &Pipeline<T>, input: T) -> Self {
        Self {
            name: name.into(),
            pipeline: pipeline.clone(),
            input,
            executor: None,
            strategies: Vec::new(),
            baselines: Vec::new(),
            observers: Vec::new(),
            warmups: 3,
            runs: 10,
        }
    }

    /// Adds one strategy; a strategy given twice is measured once.
    ///
    /// Default: none; at least one is needed.
    #[must_use]
    pub fn strategy(self, config: ExecutorConfig) -> Self {
        self.contender(Contender::Forced(config))
    }

    /// Adds the pipeline as it was configured, each task on the executor
    /// its author chose, as the contender named `as configured`; given
    /// twice, it is measured once. Its executors must be known to the
    /// benchmark's [`executor`](Self::executor).
    ///
    /// Default: not measured.
    #[must_use]
    pub fn as_configured(self) -> Self {
        self.contender(Contender::AsConfigured)
    }

    fn contender(mut self, contender: Contender) -> Self {
        if !self.strategies.contains(&contender) {
            self.strategies.push(contender);
        }
        self
    }

    /// Adds several strategies, in order.
    ///
    /// Default: none; at least one is needed.
    #[must_use]
    pub fn strategies(self, configs: impl IntoIterator<Item = ExecutorConfig>) -> Self {
        configs.into_iter().fold(self, Self::strategy)
    }

    /// Runs on `executor`, whose registry must know every
    /// [`ExecutorConfig::Custom`] strategy. Its observers hear every run.
    ///
    /// Default: a fresh executor without names or observers, dropped (with
    /// its pools) when the benchmark ends.
    #[must_use]
    pub fn executor(mut self, executor: &'a PipelineExecutor<T>) -> Self {
        self.executor = Some(executor);
        self
    }

    /// Measures `f` in the same rounds as the strategies, as the row named
    /// `name`, taken to use every thread of the machine
    /// ([`std::thread::available_parallelism`]), as rayon's global pool
    /// does. `f` should do the pipeline's work without conveyor. Strategies
    /// with as many threads are compared with it; see
    /// [`baseline_on`](Self::baseline_on) for other counts.
    ///
    /// Default: no baseline.
    #[must_use]
    pub fn baseline(self, name: impl Into<String>, f: impl FnMut() + 'a) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        self.baseline_on(name, threads, f)
    }

    /// Measures `f`, which does the pipeline's work on `threads` threads
    /// without conveyor, as the row named `name`: a plain loop with
    /// `threads` = 1, or plain rayon on a pool of `threads`. Each strategy's
    /// overhead columns ([`StrategyResult::overhead_per_task_ns`],
    /// [`StrategyResult::ratio_to_baseline`]) are computed against the first
    /// baseline with the strategy's thread count, so that a serial strategy
    /// is never charged with a parallel baseline's speedup.
    ///
    /// Default: no baseline. A name given twice keeps the first.
    ///
    /// [`StrategyResult::overhead_per_task_ns`]: crate::bench::StrategyResult::overhead_per_task_ns
    /// [`StrategyResult::ratio_to_baseline`]: crate::bench::StrategyResult::ratio_to_baseline
    #[must_use]
    pub fn baseline_on(mut self, name: impl Into<String>, threads: usize, f: impl FnMut() + 'a) -> Self {
        let name = name.into();
        if !self.baselines.iter().any(|b| b.name == name) {
            self.baselines.push(Baseline {
                name,
                threads,
                f: Box::new(f),
            });
        }
        self
    }

    /// Unmeasured runs of every strategy before the measured ones, which
    /// build pools, fill caches and wake threads.
    ///
    /// Default: 3.
    #[must_use]
    pub fn warmups(mut self, warmups: usize) -> Self {
        self.warmups = warmups;
        self
    }

    /// Measured runs of every strategy.
    ///
    /// Default: 10; at least 1 is needed.
    #[must_use]
    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs;
        self
    }

    /// Adds an observer, told about every run; see [`BenchmarkObserver`].
    ///
    /// Default: none.
    #[must_use]
    pub fn observer(mut self, observer: impl BenchmarkObserver + 'a) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Makes every run and compares the strategies.
    ///
    /// # Errors
    /// - [`BuildError::InvalidBenchmark`]: no strategies, or no measured
    ///   runs;
    /// - the errors of [`PipelineExecutor::execute`], such as an unknown
    ///   custom executor or a pool of zero threads;
    /// - [`RunError::StepFailed`] when a run does not finish: a pipeline
    ///   that fails is not worth timing;
    /// - [`RunError::BaselinePanicked`] when the baseline panics.
    pub fn run(mut self) -> Result<Comparison, RunError> {
        let invalid = |reason| BuildError::InvalidBenchmark {
            benchmark: self.name.clone(),
            reason,
        };
        if self.strategies.is_empty() {
            return Err(RunError::Build(invalid("no strategies to compare")));
        }
        if self.runs == 0 {
            return Err(RunError::Build(invalid("zero measured runs")));
        }
        let owned;
        let executor = match self.executor {
            Some(e) => e,
            None => {
                owned = PipelineExecutor::builder().build()?;
                &owned
            }
        };
        let pipelines: Vec<Pipeline<T>> = self
            .strategies
            .iter()
            .map(|c| match c {
                Contender::Forced(config) => self.pipeline.with_executor(config.clone()),
                Contender::AsConfigured => self.pipeline.clone(),
            })
            .collect();
        let mut rows: Vec<Row> = self
            .strategies
            .iter()
            .map(|c| match c {
                Contender::Forced(config) => Row {
                    name: config.to_string(),
                    config: Some(config.clone()),
                    baseline: false,
                    threads: threads_of(executor, config),
                    samples: Vec::with_capacity(self.runs),
                },
                Contender::AsConfigured => Row {
                    name: AS_CONFIGURED.to_owned(),
                    config: None,
                    baseline: false,
                    threads: shared_threads(executor, &self.pipeline),
                    samples: Vec::with_capacity(self.runs),
                },
            })
            .collect();
        let mut baselines = std::mem::take(&mut self.baselines);
        rows.extend(baselines.iter().map(|b| Row {
            name: b.name.clone(),
            config: None,
            baseline: true,
            threads: Some(b.threads),
            samples: Vec::with_capacity(self.runs),
        }));
        let contenders = rows.len();
        let rounds = self.warmups + self.runs;
        let total = rounds * contenders;
        self.notify(|o| o.benchmark_started(&self.name, total));

        let origin = Instant::now();
        let mut done = 0;
        for round in 0..rounds {
            let warmup = round < self.warmups;
            for k in 0..contenders {
                let who = (round + k) % contenders;
                let sample = match pipelines.get(who) {
                    Some(pipeline) => self.time_pipeline(executor, pipeline, origin)?,
                    None => {
                        let baseline = &mut baselines[who - pipelines.len()];
                        time(&mut baseline.f, origin).map_err(|message| RunError::BaselinePanicked {
                            benchmark: self.name.clone(),
                            message,
                        })?
                    }
                };
                done += 1;
                if !warmup {
                    rows[who].samples.push(sample);
                }
                let event = BenchmarkEvent {
                    benchmark: &self.name,
                    contender: &rows[who].name,
                    warmup,
                    done,
                    total,
                    wall: sample.wall,
                };
                self.notify(|o| o.run_finished(&event));
            }
        }
        let comparison = Comparison::from_rows(
            self.name.clone(),
            self.pipeline.task_count(),
            self.warmups,
            self.runs,
            rows,
        );
        self.notify(|o| o.benchmark_finished(&comparison));
        Ok(comparison)
    }

    fn time_pipeline(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
        origin: Instant,
    ) -> Result<Sample, RunError> {
        let input = self.input.clone();
        let cpu = cpu_now();
        let start = Instant::now();
        let run = executor.execute(pipeline, input);
        let wall = start.elapsed();
        let cpu = cpu.zip(cpu_now()).map(|(a, b)| b.saturating_sub(a));
        // The run is dropped outside the timed part: freeing its results is
        // the caller's cost, not the strategy's.
        run?.output()?;
        Ok(Sample::new(start - origin, wall, cpu))
    }

    fn notify(&self, hook: impl Fn(&dyn BenchmarkObserver)) {
        for observer in &self.observers {
            if let Err(message) = unwind::catch(|| hook(&**observer)) {
                log::error!("a benchmark observer panicked and was skipped: {message}");
            }
        }
    }
}

/// Times a baseline; a panic in it is user code's, caught and returned as
/// its message.
fn time(f: &mut BaselineFn<'_>, origin: Instant) -> Result<Sample, String> {
    let cpu = cpu_now();
    let start = Instant::now();
    unwind::catch(f)?;
    let wall = start.elapsed();
    let cpu = cpu.zip(cpu_now()).map(|(a, b)| b.saturating_sub(a));
    Ok(Sample::new(start - origin, wall, cpu))
}

/// How many threads `executor` runs a group on `config` on; thread-per-task
/// counts as the machine's threads, since that is how many of its tasks
/// run at once.
fn threads_of<T>(executor: &PipelineExecutor<T>, config: &ExecutorConfig) -> Option<usize> {
    match config {
        ExecutorConfig::ThreadPerTask => Some(std::thread::available_parallelism().map_or(1, usize::from)),
        config => executor.pools().threads(config),
    }
}

/// The thread count every group of `pipeline` runs on, if they all share
/// one.
fn shared_threads<T>(executor: &PipelineExecutor<T>, pipeline: &Pipeline<T>) -> Option<usize> {
    let mut counts = Vec::new();
    for step in pipeline.steps() {
        for config in executor.plan(step).ok()? {
            counts.push(threads_of(executor, &config));
        }
    }
    let first = (*counts.first()?)?;
    counts.iter().all(|&c| c == Some(first)).then_some(first)
}

impl<T> fmt::Debug for StrategyBenchmark<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrategyBenchmark")
            .field("name", &self.name)
            .field("pipeline", &self.pipeline.name())
            .field("strategies", &self.strategies)
            .field(
                "baselines",
                &self
                    .baselines
                    .iter()
                    .map(|b| (&b.name, b.threads))
                    .collect::<Vec<_>>(),
            )
            .field("observers", &self.observers.len())
            .field("warmups", &self.warmups)
            .field("runs", &self.runs)
            .finish_non_exhaustive()
    }
}

/// CPU time (user + system) used by this process so far, every thread
/// included, from the process CPU clock (`clock_gettime` with
/// `CLOCK_PROCESS_CPUTIME_ID` on Unix, `GetProcessTimes` on Windows):
/// nanosecond resolution on Linux, so one run's figure means something.
/// `None` where the clock cannot be read.
pub(crate) fn cpu_now() -> Option<Duration> {
    cpu_time::ProcessTime::try_now().ok().map(|t| t.as_duration())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::{ExecutorRef, Task};
    use std::sync::Mutex;

    fn pipeline() -> Pipeline<u64> {
        Pipeline::builder("p")
            .step([
                Task::from_fn("a", |c| Ok(*c.input())).on("cpu"),
                Task::from_fn("b", |c| Ok(c.input() + 1)),
            ])
            .step([Task::from_fn("c", |c| Ok(c.previous().values().sum())).executor(ExecutorConfig::Global)])
            .build()
            .unwrap()
    }

    #[test]
    fn with_executor_moves_every_task_and_keeps_the_original() {
        let p = pipeline();
        let q = p.with_executor(ExecutorConfig::ThreadPerTask);
        let moved = ExecutorRef::Config(ExecutorConfig::ThreadPerTask);
        assert!(
            q.steps()
                .iter()
                .flat_map(|s| s.tasks())
                .all(|t| t.executor == moved)
        );
        assert_eq!(p.steps()[0].tasks()[0].executor, ExecutorRef::Named("cpu".into()));
        let names = |p: &Pipeline<u64>| p.steps().iter().map(|s| s.name().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&p), names(&q));
        assert_eq!(q.name(), "p");
    }

    #[test]
    fn runs_are_interleaved_and_counted() {
        #[derive(Default)]
        struct Seen(Mutex<Vec<(String, bool, usize, usize)>>);
        impl BenchmarkObserver for Seen {
            fn run_finished(&self, e: &BenchmarkEvent<'_>) {
                let mut v = self.0.lock().unwrap();
                v.push((e.contender.to_owned(), e.warmup, e.done, e.total));
            }
        }
        let seen = Arc::new(Seen::default());
        let comparison = StrategyBenchmark::new("b", &pipeline(), 1)
            .strategies([ExecutorConfig::Inline, ExecutorConfig::pool(1)])
            .baseline("plain", || {})
            .warmups(1)
            .runs(2)
            .observer(Arc::clone(&seen))
            .run()
            .unwrap();
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 9);
        assert_eq!(seen.last().unwrap().2, 9);
        assert!(seen.iter().all(|s| s.3 == 9));
        assert_eq!(seen.iter().filter(|s| s.1).count(), 3);
        let firsts: Vec<&str> = seen.iter().step_by(3).map(|s| s.0.as_str()).collect();
        assert_eq!(
            firsts,
            ["inline", "pool(1)", "plain"],
            "each round starts elsewhere"
        );
        assert_eq!(comparison.results.len(), 3);
        assert!(comparison.results.iter().all(|r| r.runs == 2));
        assert_eq!(comparison.tasks, 3);
    }

    #[test]
    fn a_benchmark_that_cannot_measure_is_refused() {
        let err = StrategyBenchmark::new("b", &pipeline(), 1).run().unwrap_err();
        assert!(
            matches!(err, RunError::Build(BuildError::InvalidBenchmark { .. })),
            "{err}"
        );
        let err = StrategyBenchmark::new("b", &pipeline(), 1)
            .strategy(ExecutorConfig::Inline)
            .runs(0)
            .run()
            .unwrap_err();
        assert_eq!(err.to_string(), "benchmark `b` cannot run: zero measured runs");
        let err = StrategyBenchmark::new("b", &pipeline(), 1)
            .strategy(ExecutorConfig::custom("nowhere"))
            .run()
            .unwrap_err();
        assert!(
            matches!(err, RunError::Build(BuildError::UnknownExecutor { .. })),
            "{err}"
        );
    }

    #[test]
    fn a_failing_pipeline_is_not_timed() {
        let p: Pipeline<u64> = Pipeline::builder("p")
            .step([Task::from_fn("bad", |_| Err(crate::TaskError::msg("no")))])
            .build()
            .unwrap();
        let err = StrategyBenchmark::new("b", &p, 1)
            .strategy(ExecutorConfig::Inline)
            .run()
            .unwrap_err();
        assert!(matches!(err, RunError::StepFailed { .. }), "{err}");
    }

    #[test]
    fn the_cpu_clock_counts_well_below_a_millisecond() {
        let Some(before) = cpu_now() else {
            return; // a platform without a process CPU clock
        };
        // Spin until the clock moves, bounded so the test cannot hang.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = before;
        while after == before && Instant::now() < deadline {
            std::hint::black_box((0..1_000_u64).sum::<u64>());
            after = cpu_now().unwrap();
        }
        let step = after - before;
        assert!(step > Duration::ZERO);
        // /proc/self/stat moved in 10 ms ticks; this clock moves in far
        // smaller steps.
        assert!(step < Duration::from_millis(1), "{step:?}");
    }
}
