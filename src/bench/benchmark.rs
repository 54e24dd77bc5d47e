//! Comparing executor strategies on the user's own pipeline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::comparison::{Comparison, Samples};
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

/// Runs one pipeline under several executor strategies and compares them.
///
/// Each strategy is applied with [`Pipeline::with_executor`]. The runs are
/// interleaved, round by round, with the order rotated each round, so that
/// drift of the machine (frequency scaling, other processes) hits every
/// strategy alike. An optional baseline, such as the same work written with
/// plain rayon, is measured in the same rounds, and every figure is also
/// given as a ratio to it.
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
///     .baseline("loop", || { std::hint::black_box((0..8_u64).map(|i| 3 * i).sum::<u64>()); })
///     .warmups(1)
///     .runs(3)
///     .run()?;
/// assert_eq!(comparison.results.len(), 3);
/// println!("{comparison}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StrategyBenchmark<'a, T> {
    name: String,
    pipeline: Pipeline<T>,
    input: T,
    executor: Option<&'a PipelineExecutor<T>>,
    strategies: Vec<ExecutorConfig>,
    baseline: Option<(String, BaselineFn<'a>)>,
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
            baseline: None,
            observers: Vec::new(),
            warmups: 3,
            runs: 10,
        }
    }

    /// Adds one strategy; a strategy given twice is measured once.
    ///
    /// Default: none; at least one is needed.
    #[must_use]
    pub fn strategy(mut self, config: ExecutorConfig) -> Self {
        if !self.strategies.contains(&config) {
            self.strategies.push(config);
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
    /// `name`; every result then also carries its ratio to it. `f` should do
    /// the pipeline's work without conveyor, for example with plain rayon on
    /// a pool of the same size.
    ///
    /// Default: no baseline.
    #[must_use]
    pub fn baseline(mut self, name: impl Into<String>, f: impl FnMut() + 'a) -> Self {
        self.baseline = Some((name.into(), Box::new(f)));
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
            .map(|c| self.pipeline.with_executor(c.clone()))
            .collect();
        let mut names: Vec<String> = self.strategies.iter().map(ToString::to_string).collect();
        let mut baseline = self.baseline.take().map(|(name, f)| {
            names.push(name);
            f
        });
        let contenders = names.len();
        let rounds = self.warmups + self.runs;
        let total = rounds * contenders;
        self.notify(|o| o.benchmark_started(&self.name, total));

        let mut samples: Vec<Samples> = (0..contenders).map(|_| Samples::new(self.runs)).collect();
        let mut done = 0;
        for round in 0..rounds {
            let warmup = round < self.warmups;
            for k in 0..contenders {
                let who = (round + k) % contenders;
                let (wall, cpu) = match pipelines.get(who) {
                    Some(pipeline) => self.time_pipeline(executor, pipeline)?,
                    None => match baseline.as_mut() {
                        Some(f) => time(f).map_err(|message| RunError::BaselinePanicked {
                            benchmark: self.name.clone(),
                            message,
                        })?,
                        None => continue,
                    },
                };
                done += 1;
                if !warmup {
                    samples[who].push(wall, cpu);
                }
                let event = BenchmarkEvent {
                    benchmark: &self.name,
                    contender: &names[who],
                    warmup,
                    done,
                    total,
                    wall,
                };
                self.notify(|o| o.run_finished(&event));
            }
        }
        let has_baseline = baseline.is_some();
        let configs = self.strategies.iter().cloned().map(Some);
        let rows = names
            .into_iter()
            .zip(configs.chain(has_baseline.then_some(None)))
            .zip(samples)
            .map(|((name, config), s)| (name, config, s))
            .collect();
        let comparison = Comparison::from_samples(
            self.name.clone(),
            self.pipeline.task_count(),
            self.warmups,
            self.runs,
            rows,
            has_baseline,
        );
        self.notify(|o| o.benchmark_finished(&comparison));
        Ok(comparison)
    }

    fn time_pipeline(
        &self,
        executor: &PipelineExecutor<T>,
        pipeline: &Pipeline<T>,
    ) -> Result<(Duration, Option<Duration>), RunError> {
        let input = self.input.clone();
        let cpu = cpu_time();
        let start = Instant::now();
        let run = executor.execute(pipeline, input);
        let wall = start.elapsed();
        let cpu = cpu.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
        // The run is dropped outside the timed part: freeing its results is
        // the caller's cost, not the strategy's.
        run?.output()?;
        Ok((wall, cpu))
    }

    fn notify(&self, hook: impl Fn(&dyn BenchmarkObserver)) {
        for observer in &self.observers {
            if let Err(message) = unwind::catch(|| hook(&**observer)) {
                log::error!("a benchmark observer panicked and was skipped: {message}");
            }
        }
    }
}

/// Times the baseline; a panic in it is user code's, caught and returned as
/// its message.
fn time(f: &mut BaselineFn<'_>) -> Result<(Duration, Option<Duration>), String> {
    let cpu = cpu_time();
    let start = Instant::now();
    unwind::catch(f)?;
    let wall = start.elapsed();
    Ok((wall, cpu.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a))))
}

impl<T> fmt::Debug for StrategyBenchmark<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StrategyBenchmark")
            .field("name", &self.name)
            .field("pipeline", &self.pipeline.name())
            .field("strategies", &self.strategies)
            .field("baseline", &self.baseline.as_ref().map(|(n, _)| n))
            .field("observers", &self.observers.len())
            .field("warmups", &self.warmups)
            .field("runs", &self.runs)
            .finish_non_exhaustive()
    }
}

/// The kernel reports `/proc` times in USER_HZ ticks, which is 100 on every
/// architecture Rust supports on Linux; reading `sysconf(_SC_CLK_TCK)` would
/// need libc and `unsafe`.
#[cfg(any(target_os = "linux", test))]
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system) used by this process so far, every thread
/// included, even threads that have exited. Its resolution is one clock tick
/// (10 ms), so a benchmark sums it over many runs before dividing.
#[cfg(target_os = "linux")]
pub(crate) fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&stat)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn cpu_time() -> Option<Duration> {
    None
}

/// utime and stime are fields 14 and 15 of `/proc/self/stat`. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from its closing parenthesis.
#[cfg(any(target_os = "linux", test))]
fn parse_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_nanos(ticks * (1_000_000_000 / TICKS_PER_SECOND)))
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
    fn stat_lines_parse_past_odd_command_names() {
        let line = "42 (a b) c)) S 1 2 3 4 5 6 7 8 9 10 250 130 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3800)));
        assert_eq!(parse_stat("garbage"), None);
        #[cfg(target_os = "linux")]
        assert!(cpu_time().is_some());
    }
}
