//! Runs the standard suite of workloads on every executor strategy, against plain rayon.
//!
//! ```text
//! cargo run --release --example strategies            # the full suite, a few minutes
//! cargo run --release --example strategies -- --quick # a smoke test, under a minute
//! cargo run --release --example strategies -- --help
//! ```
//!
//! It prints one table per workload and writes `suite.json`, `suite.csv`,
//! a Chrome trace of the whole suite (`suite.trace.json`), and a few
//! timelines (`*.svg`) with their runs' traces (`*.trace.json`) under
//! `target/conveyor-bench/`, then reads them back and exits non-zero when
//! one is missing or does not parse.

use std::error::Error;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use conveyor::bench::{
    BenchmarkEvent, BenchmarkObserver, ChromeTrace, Comparison, StrategyBenchmark, Timeline,
};
use conveyor::{CustomExecutor, ExecutorConfig, Job, Pipeline, PipelineExecutor, Task};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;

#[path = "../benches/common/workloads.rs"]
mod workloads;
use workloads::{Calibration, chain_pipeline, fan_out_pipeline, par_iter_step, rayon_step, spin};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Runs the standard suite of workloads on every executor strategy, against
/// plain rayon on the same number of threads, and checks the README's
/// targets.
#[derive(Debug, Parser)]
#[command(name = "strategies")]
struct Args {
    /// A smoke test: fewer rounds and a smaller grain sweep (under a minute);
    /// CI runs this.
    #[arg(long)]
    quick: bool,
    /// Where to write suite.json, suite.csv, the traces and the timelines
    /// [default: $CARGO_TARGET_DIR/conveyor-bench, or target/conveyor-bench].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Threads for every pool [default: available parallelism].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

/// A user's own executor: a fixed set of threads fed through one channel.
struct ChannelPool {
    jobs: crossbeam_channel::Sender<Job>,
}

impl ChannelPool {
    fn new(threads: usize) -> Self {
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("channel-pool-{i}"))
                .spawn(move || rx.iter().for_each(Job::run))
                .expect("start a channel-pool thread");
        }
        Self { jobs }
    }
}

impl CustomExecutor for ChannelPool {
    fn spawn(&self, job: Job) {
        // A send fails only once every worker is gone; the job is then
        // dropped, which reports its task as not run.
        let _ = self.jobs.send(job);
    }
}

/// Shows the benchmark's progress as a bar on stderr (hidden when stderr is
/// not a terminal, as in CI).
struct Progress(ProgressBar);

impl BenchmarkObserver for Progress {
    fn benchmark_started(&self, benchmark: &str, total: usize) {
        self.0.reset();
        self.0.set_length(total as u64);
        self.0.set_message(benchmark.to_owned());
    }
    fn run_finished(&self, _event: &BenchmarkEvent<'_>) {
        self.0.inc(1);
    }
}

struct Suite {
    quick: bool,
    threads: usize,
    executor: PipelineExecutor<u64>,
    rayon: Arc<rayon::ThreadPool>,
    /// A one-thread pool, so serial strategies have a serial baseline.
    rayon1: Arc<rayon::ThreadPool>,
    progress: ProgressBar,
    comparisons: Vec<Comparison>,
    out: PathBuf,
    svgs: Vec<(PathBuf, usize)>,
    traces: Vec<(PathBuf, usize)>,
}

impl Suite {
    fn strategies(&self) -> Vec<ExecutorConfig> {
        vec![
            ExecutorConfig::Inline,
            ExecutorConfig::pool(self.threads),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
            ExecutorConfig::custom("channel-pool"),
        ]
    }

    fn rounds(&self) -> (usize, usize) {
        if self.quick { (1, 3) } else { (3, 15) }
    }

    /// Benchmarks `pipeline` on `strategies` with `baseline` in the same
    /// rounds, prints the table and keeps the comparison. The baseline runs
    /// on a rayon pool of the suite's size (`rayon`) and on a one-thread
    /// pool (`rayon(1)`), so that every strategy has a baseline with as many
    /// threads as it has.
    fn bench(
        &mut self,
        name: &str,
        pipeline: &Pipeline<u64>,
        strategies: Vec<ExecutorConfig>,
        baseline: impl Fn(&rayon::ThreadPool),
    ) -> Result<Comparison> {
        let (warmups, runs) = self.rounds();
        self.bench_with(name, pipeline, strategies, baseline, true, (warmups, runs), |b| b)
    }

    /// The one benchmark behind [`bench`](Self::bench): `serial` adds the
    /// one-thread baseline, and `more` adds what else a workload compares.
    #[allow(clippy::too_many_arguments)]
    fn bench_with(
        &mut self,
        name: &str,
        pipeline: &Pipeline<u64>,
        strategies: Vec<ExecutorConfig>,
        baseline: impl Fn(&rayon::ThreadPool),
        serial: bool,
        (warmups, runs): (usize, usize),
        more: impl for<'b> FnOnce(StrategyBenchmark<'b, u64>) -> StrategyBenchmark<'b, u64>,
    ) -> Result<Comparison> {
        let (pool, one) = (Arc::clone(&self.rayon), Arc::clone(&self.rayon1));
        let mut benchmark = StrategyBenchmark::new(name, pipeline, 1)
            .executor(&self.executor)
            .strategies(strategies)
            .baseline_on("rayon", self.threads, || baseline(&pool));
        if serial && self.threads > 1 {
            benchmark = benchmark.baseline_on("rayon(1)", 1, || baseline(&one));
        }
        let comparison = more(benchmark)
            .warmups(warmups)
            .runs(runs)
            .observer(Progress(self.progress.clone()))
            .run()?;
        self.progress.suspend(|| println!("{comparison}"));
        self.comparisons.push(comparison.clone());
        Ok(comparison)
    }

    /// Writes the timeline of one run of `pipeline` on `config`, and the
    /// run's Chrome trace beside it.
    fn timeline(&mut self, name: &str, pipeline: &Pipeline<u64>, config: ExecutorConfig) -> Result<()> {
        let run = self
            .executor
            .execute(&pipeline.with_executor(config.clone()), 1)?;
        let timeline = Timeline::from_run(&run).titled(format!("{name} on {config}"));
        let file: String = format!("timeline-{name}-{config}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.out.join(format!("{file}.svg"));
        fs::write(&path, timeline.to_svg())?;
        self.svgs.push((path, timeline.bars().len()));
        let path = self.out.join(format!("{file}.trace.json"));
        fs::write(&path, ChromeTrace::from_run(&run).to_json())?;
        self.traces.push((path, timeline.bars().len()));
        Ok(())
    }
}

/// One step of `n` tasks, each made by `task(i)`.
fn one_step(name: &str, n: usize, task: impl Fn(usize) -> Task<u64>) -> Result<Pipeline<u64>> {
    Ok(Pipeline::builder(name)
        .step((0..n).map(task).collect::<Vec<_>>())
        .build()?)
}

/// N no-op tasks in one step: the fixed cost (N = 1) and the cost per task.
fn noop(suite: &mut Suite) -> Result<()> {
    for n in [1, 100, 10_000] {
        let pipeline = one_step("noop", n, |i| Task::from_fn(format!("t{i}"), |_| Ok(0)))?;
        let mut strategies = suite.strategies();
        // "Adding threads to tiny work must not slow it down" needs the
        // one-thread pool beside the full one.
        if suite.threads > 1 {
            strategies.insert(1, ExecutorConfig::pool(1));
        }
        // Beside the scope that does what a step does, the `par_iter` a
        // rayon user would write; the strategies' ratios stay against the
        // scope.
        let (pool, threads, rounds) = (Arc::clone(&suite.rayon), suite.threads, suite.rounds());
        suite.bench_with(
            &format!("noop/{n}"),
            &pipeline,
            strategies,
            move |pool| drop(black_box(rayon_step(pool, n, |_| 0))),
            true,
            rounds,
            move |b| {
                b.baseline_on("par_iter", threads, move || {
                    drop(black_box(par_iter_step(&pool, n, |_| 0)))
                })
            },
        )?;
    }
    Ok(())
}

/// 1,000 steps of one task each: the cost of a step.
fn chain(suite: &mut Suite) -> Result<()> {
    let steps = 1_000;
    let pipeline = chain_pipeline(steps)?;
    suite.bench("chain/1000", &pipeline, suite.strategies(), move |pool| {
        let mut x = 1_u64;
        for _ in 0..steps {
            x = rayon_step(pool, 1, |_| x + 1)[0];
        }
        black_box(x);
    })?;
    Ok(())
}

/// 1 → W → 1: a source, W tasks reading it, a sink summing them.
fn fan_out(suite: &mut Suite) -> Result<()> {
    for width in [4_u64, 100, 10_000] {
        let pipeline = fan_out_pipeline(width)?;
        let name = format!("fan-out/{width}");
        suite.bench(&name, &pipeline, suite.strategies(), move |pool| {
            let source = pool.install(|| black_box(1_u64));
            let sum: u64 = pool.install(|| (0..width).into_par_iter().map(|i| source + i).sum());
            black_box(pool.install(|| sum));
        })?;
        if width == 100 {
            for config in [
                ExecutorConfig::pool(suite.threads),
                ExecutorConfig::custom("channel-pool"),
            ] {
                suite.timeline("fan-out-100", &pipeline, config)?;
            }
        }
    }
    Ok(())
}

/// K tasks of real work each, against rayon's `par_iter` over the same work.
fn cpu_batch(suite: &mut Suite, calibration: &Calibration) -> Result<()> {
    let grains = [Duration::from_micros(100), Duration::from_millis(1)];
    for grain in grains {
        for k in [suite.threads, 4 * suite.threads, 64 * suite.threads] {
            let rounds = calibration.rounds(grain);
            let pipeline = one_step("cpu", k, |i| {
                Task::from_fn(format!("h{i}"), move |c| Ok(spin(rounds, c.input() + i as u64)))
            })?;
            let name = format!("cpu/{}/{k}", label(grain));
            suite.bench(&name, &pipeline, suite.strategies(), move |pool| {
                let out: Vec<u64> = pool.install(|| {
                    (0..k)
                        .into_par_iter()
                        .map(|i| spin(rounds, 1 + i as u64))
                        .collect()
                });
                black_box(out);
            })?;
            if grain == grains[0] && k == 4 * suite.threads {
                suite.timeline(&name, &pipeline, ExecutorConfig::pool(suite.threads))?;
            }
        }
    }
    Ok(())
}

/// Work per task from 100 ns to 100 µs over many tasks: the smallest grain
/// at which each strategy gets 90% of the ideal speedup over one thread.
fn grain_sweep(suite: &mut Suite, calibration: &Calibration) -> Result<serde_json::Value> {
    let tasks = if suite.quick { 1_000 } else { 10_000 };
    let grains_ns: &[u64] = if suite.quick {
        &[100, 1_000, 10_000, 100_000]
    } else {
        &[100, 300, 1_000, 3_000, 10_000, 30_000, 100_000]
    };
    let (warmups, runs) = if suite.quick { (1, 3) } else { (1, 7) };
    let ideal = suite.threads as f64;
    let mut rows = Vec::new();
    let mut smallest: Vec<(String, Option<u64>)> = Vec::new();
    for &ns in grains_ns {
        let rounds = calibration.rounds(Duration::from_nanos(ns));
        // One thread doing the work with nothing around it: the speedup's
        // reference.
        let mut sequential: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                for i in 0..tasks {
                    spin(rounds, i as u64);
                }
                t.elapsed()
            })
            .collect();
        sequential.sort_unstable();
        let sequential = sequential[runs / 2];
        let pipeline = one_step("grain", tasks, |i| {
            Task::from_fn(format!("g{i}"), move |c| Ok(spin(rounds, c.input() + i as u64)))
        })?;
        let name = format!("grain/{}", label(Duration::from_nanos(ns)));
        // The sweep measures speedup over one thread itself, so it skips
        // the one-thread baseline, which would take as long as `sequential`.
        let comparison = suite.bench_with(
            &name,
            &pipeline,
            suite.strategies(),
            move |pool| {
                let out: Vec<u64> = pool.install(|| {
                    (0..tasks)
                        .into_par_iter()
                        .map(|i| spin(rounds, i as u64))
                        .collect()
                });
                black_box(out);
            },
            false,
            (warmups, runs),
            |b| b,
        )?;
        let mut speedups = serde_json::Map::new();
        for r in &comparison.results {
            let speedup = sequential.as_secs_f64() / r.median.as_secs_f64();
            speedups.insert(r.name.clone(), json!(speedup));
            let slot = match smallest.iter().position(|(n, _)| *n == r.name) {
                Some(i) => i,
                None => {
                    smallest.push((r.name.clone(), None));
                    smallest.len() - 1
                }
            };
            if smallest[slot].1.is_none() && speedup >= 0.9 * ideal {
                smallest[slot].1 = Some(ns);
            }
        }
        rows.push(json!({
            "grain_ns": ns,
            "sequential_ns": sequential.as_nanos() as u64,
            "speedup": speedups,
        }));
    }
    suite.progress.suspend(|| {
        println!(
            "grain sweep: {tasks} tasks, smallest grain reaching 90% of the ideal speedup ({:.1}x)",
            0.9 * ideal
        );
        for (name, grain) in &smallest {
            let grain = grain.map_or_else(|| "not reached".to_owned(), |g| label(Duration::from_nanos(g)));
            println!("  {name:<22} {grain}");
        }
        println!();
    });
    let smallest: serde_json::Map<String, serde_json::Value> =
        smallest.into_iter().map(|(n, g)| (n, json!(g))).collect();
    Ok(json!({ "tasks": tasks, "ideal_speedup": ideal, "rows": rows, "smallest_grain_ns": smallest }))
}

fn label(d: Duration) -> String {
    match d.as_nanos() {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

/// The README's targets, each as met or missed with the figure behind it.
fn targets(suite: &Suite) -> Vec<serde_json::Value> {
    let find = |bench: &str| suite.comparisons.iter().find(|c| c.benchmark == bench);
    let pool = ExecutorConfig::pool(suite.threads).to_string();
    let mut out = Vec::new();
    let mut target = |name: &str, figure: Option<f64>, limit: f64, at_most: bool, unit: &str| {
        let met = figure.map(|f| if at_most { f <= limit } else { f >= limit });
        out.push(json!({ "target": name, "figure": figure, "limit": limit, "unit": unit, "met": met }));
    };
    let noop = find("noop/10000");
    target(
        "per-task cost vs raw rayon scope+channel (noop/10000, pool)",
        noop.and_then(|c| c.result(&pool))
            .and_then(|r| r.ratio_to_baseline),
        1.5,
        true,
        "x",
    );
    target(
        "per-step cost (chain/1000, inline)",
        find("chain/1000")
            .and_then(|c| c.result("inline"))
            .map(|r| r.per_task.as_secs_f64() * 1e6),
        2.0,
        true,
        "µs",
    );
    // Throughput over the whole CPU-heavy set: the work rayon did per unit
    // of time against the work the pool did. Each batch's own ratio is in
    // its table; two-task batches of 100 µs are dominated by how fast a
    // sleeping worker wakes, and swing from run to run.
    let cpu: Vec<(f64, f64)> = suite
        .comparisons
        .iter()
        .filter(|c| c.benchmark.starts_with("cpu/"))
        .filter_map(|c| {
            let ours = c.result(&pool)?.median.as_secs_f64();
            Some((c.baseline()?.median.as_secs_f64(), ours))
        })
        .collect();
    let cpu_throughput = (!cpu.is_empty()).then(|| {
        let (rayon, ours): (f64, f64) = cpu.iter().fold((0.0, 0.0), |(a, b), (r, o)| (a + r, b + o));
        rayon / ours
    });
    target(
        "CPU-heavy throughput vs rayon par_iter (all batches, pool)",
        cpu_throughput,
        0.97,
        false,
        "x",
    );
    // Tiny work, judged in two parts (see the README for the figures
    // behind them). Many tiny tasks must not get slower with more threads:
    // that is where contention would show. A step of one or a hundred
    // no-op tasks lasts tens of µs, and more threads cost it at most the
    // wake-up of a sleeping worker, which raw rayon pays too and which a
    // step cannot avoid without knowing, before running them, that its
    // tasks are tiny.
    let one_thread = |bench: &str| {
        let c = find(bench)?;
        Some((c.result(&pool)?, c.result("pool(1)")?))
    };
    target(
        "many tiny tasks, all threads vs one thread (noop/10000)",
        one_thread("noop/10000").map(|(all, one)| all.median.as_secs_f64() / one.median.as_secs_f64()),
        1.1,
        true,
        "x",
    );
    // Fastest runs, not medians: a step of tens of µs on a shared machine
    // only ever gets slower from others' work, and with --quick's three
    // runs a median is one sample.
    target(
        "tiny steps: time added by all threads, fastest runs (noop/1, /100)",
        ["noop/1", "noop/100"]
            .into_iter()
            .filter_map(one_thread)
            .map(|(all, one)| (all.min.as_secs_f64() - one.min.as_secs_f64()) * 1e6)
            .reduce(f64::max),
        50.0,
        true,
        "µs",
    );
    out
}

/// Reads back every file the suite wrote; any problem is an error.
fn verify(
    out: &Path,
    comparisons: usize,
    rows: usize,
    svgs: &[(PathBuf, usize)],
    traces: &[(PathBuf, usize)],
) -> Result<()> {
    let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(out.join("suite.json"))?)?;
    let parsed: Vec<Comparison> = serde_json::from_value(json["comparisons"].clone())?;
    if parsed.len() != comparisons {
        return Err(format!("suite.json holds {} comparisons, not {comparisons}", parsed.len()).into());
    }
    let csv = fs::read_to_string(out.join("suite.csv"))?;
    let mut lines = csv.lines();
    if lines.next() != Some(Comparison::CSV_HEADER) {
        return Err("suite.csv does not start with the header".into());
    }
    let columns = Comparison::CSV_HEADER.split(',').count();
    let mut count = 0;
    for line in lines {
        count += 1;
        if line.split(',').count() != columns {
            return Err(format!("suite.csv: bad row `{line}`").into());
        }
    }
    if count != rows {
        return Err(format!("suite.csv holds {count} rows, not {rows}").into());
    }
    for (path, bars) in svgs {
        let svg = fs::read_to_string(path)?;
        let rects = svg.matches(r#"class="task""#).count();
        if !svg.starts_with("<svg") || !svg.trim_end().ends_with("</svg>") || rects != *bars {
            return Err(format!(
                "{}: not a timeline of {bars} tasks ({rects} bars)",
                path.display()
            )
            .into());
        }
    }
    // Each trace parses, and holds one slice per task (or per measured run).
    for (path, slices) in traces {
        let json: serde_json::Value = serde_json::from_str(&fs::read_to_string(path)?)?;
        let events = json["traceEvents"]
            .as_array()
            .ok_or_else(|| format!("{}: no traceEvents array", path.display()))?;
        let found = events
            .iter()
            .filter(|e| e["ph"] == "X" && (e["cat"] == "task" || e["cat"] == "run"))
            .count();
        if found != *slices {
            return Err(format!("{}: {found} slices, not {slices}", path.display()).into());
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let quick = args.quick;
    let started = Instant::now();
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(2, usize::from),
        usize::from,
    );
    let out = args.out.unwrap_or_else(|| {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("conveyor-bench")
    });
    fs::create_dir_all(&out)?;

    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} runs, {elapsed}")?
            .progress_chars("=> "),
    );
    let mut suite = Suite {
        quick,
        threads,
        executor: PipelineExecutor::builder()
            .custom_executor("channel-pool", ChannelPool::new(threads))
            .build()?,
        rayon: Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build()?),
        rayon1: Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build()?),
        progress,
        comparisons: Vec::new(),
        out: out.clone(),
        svgs: Vec::new(),
        traces: Vec::new(),
    };
    let calibration = Calibration::measure();
    println!(
        "conveyor strategy suite{}: {threads} threads, {:.2} ns per spin round; \
         `*` marks the plain-rayon baselines, on the suite's pool size and on one thread\n",
        if quick { " (quick)" } else { "" },
        calibration.ns_per_round
    );

    noop(&mut suite)?;
    chain(&mut suite)?;
    fan_out(&mut suite)?;
    cpu_batch(&mut suite, &calibration)?;
    let sweep = grain_sweep(&mut suite, &calibration)?;
    suite.progress.finish_and_clear();

    let targets = targets(&suite);
    println!("targets:");
    for t in &targets {
        let verdict = match t["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        println!(
            "  {:<72} {:>8.3} {} (limit {}) {verdict}",
            t["target"].as_str().unwrap_or_default(),
            t["figure"].as_f64().unwrap_or(f64::NAN),
            t["unit"].as_str().unwrap_or_default(),
            t["limit"],
        );
    }

    let rows: usize = suite.comparisons.iter().map(|c| c.results.len()).sum();
    let suite_json = json!({
        "threads": threads,
        "quick": quick,
        "comparisons": suite.comparisons,
        "grain_sweep": sweep,
        "targets": targets,
    });
    fs::write(out.join("suite.json"), serde_json::to_string_pretty(&suite_json)?)?;
    let mut csv = format!("{}\n", Comparison::CSV_HEADER);
    for c in &suite.comparisons {
        csv.push_str(&c.csv_rows());
    }
    fs::write(out.join("suite.csv"), csv)?;
    let mut trace = ChromeTrace::new();
    for c in &suite.comparisons {
        trace.add_comparison(c);
    }
    fs::write(out.join("suite.trace.json"), trace.to_json())?;
    let samples: usize = suite
        .comparisons
        .iter()
        .flat_map(|c| &c.results)
        .map(|r| r.samples.len())
        .sum();
    suite.traces.push((out.join("suite.trace.json"), samples));

    verify(&out, suite.comparisons.len(), rows, &suite.svgs, &suite.traces)?;
    println!(
        "\nwrote and checked {}, {} timelines and {} traces in {:.1} s",
        out.join("suite.{json,csv}").display(),
        suite.svgs.len(),
        suite.traces.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
