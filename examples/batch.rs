//! A CPU-bound batch job: sensor readings generated in shards on a pool, analysed in parallel, reported inline.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conveyor::bench::ChromeTrace;
use conveyor::checkpoint::{CheckpointStore, FileCheckpointStore};
use conveyor::signal::{CheckpointEvent, ContextEvent, PipelineEvent, TaskEvent};
use conveyor::{
    BuildError, ExecutorConfig, Observer, Pipeline, PipelineExecutor, Run, RunError, Step, Task, TaskContext,
    TaskError,
};
use serde::{Deserialize, Serialize};

/// Readings below or above the histogram's range land in its first or last
/// bin, so the bins always add up to the record count.
const HIST_MIN: f64 = 0.0;
const HIST_MAX: f64 = 40.0;
const HIST_BINS: usize = 20;

/// Every value that flows through the pipeline. One enum, because a run
/// carries a single value type from its input to its last step.
/// Serde lets checkpoints save the results of finished steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Data {
    Job {
        records: usize,
        shards: usize,
        seed: u64,
    },
    Shard(Vec<f64>),
    Stats {
        count: usize,
        mean: f64,
        std_dev: f64,
        min: f64,
        max: f64,
    },
    Quantiles {
        p50: f64,
        p99: f64,
    },
    Histogram(Vec<u64>),
    Checksum(u64),
    Report(String),
}

/// A CPU-bound batch job: sensor readings generated in shards on a pool,
/// analysed in parallel, reported inline.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "batch",
    after_help = "\
Resuming a job that died:
  batch --checkpoint job.ckpt --abort-in analyse   # dies in `analyse`
  batch --checkpoint job.ckpt                      # skips `generate`, finishes
A finished run marks its checkpoint finished: running again prints that run's
results without running anything; add --fresh to start over."
)]
struct Args {
    /// Sensor readings to generate.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    records: usize,
    /// Generate tasks, each making one shard.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = at_least_one)]
    shards: usize,
    /// Threads of the `cpu` pool [default: available parallelism].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    threads: Option<usize>,
    /// PRNG seed; equal seeds give equal checksums.
    #[arg(long, value_name = "N", default_value_t = 42)]
    seed: u64,
    /// Write the run report, as JSON, to PATH.
    #[arg(long, value_name = "PATH", default_value = "batch-report.json")]
    report: PathBuf,
    /// Save the run's progress to PATH after every step; when PATH holds the
    /// progress of an unfinished run with the same flags, resume it: the
    /// steps it finished are not run again.
    #[arg(long, value_name = "PATH")]
    checkpoint: Option<PathBuf>,
    /// With --checkpoint: clear the checkpoint first and run from the
    /// start. Without it, a checkpoint of a finished run gives that run
    /// back, restored, without running anything again.
    #[arg(long, requires = "checkpoint")]
    fresh: bool,
    /// Kill the process as step STEP starts (generate, analyse, report, or
    /// a step of --pipeline's text), to try out resuming.
    #[arg(long, value_name = "STEP")]
    abort_in: Option<String>,
    /// Show a progress bar on stderr: tasks done of the run's total, with
    /// an ETA. On a resume, restored tasks count as done, and the ETA is
    /// timed from the first task this process runs.
    #[arg(long)]
    progress: bool,
    /// Write the run as a Chrome trace (Perfetto, chrome://tracing) to PATH.
    #[arg(long, value_name = "PATH")]
    trace: Option<PathBuf>,
    /// Build the steps from the pointy text in FILE instead
    /// (examples/batch.pty says what the default runs); its tasks are
    /// generate_0 .. generate_N-1 (one per shard), stats, quantiles,
    /// histogram, checksum and report, and its steps are named after their
    /// tasks (`report`, ...).
    #[arg(long, value_name = "FILE")]
    pipeline: Option<PathBuf>,
    /// Run as an MPI job: start it with `mpirun -np N`; rank 0 prints
    /// and writes everything, the other ranks only work. Needs the `mpi`
    /// cargo feature (`cargo build --release --features mpi --example
    /// batch`).
    #[arg(long)]
    mpi: bool,
    /// Write every step's results, serialised (JSON), to PATH: equal
    /// files mean equal results, however the job ran.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// xorshift64*: tiny, fast, and reproducible on every platform.
struct Rng(u64);

impl Rng {
    /// Seeds through splitmix64 so that neighbouring shard numbers give
    /// unrelated streams, and a zero state (which xorshift never leaves) is
    /// impossible.
    fn new(seed: u64, stream: u64) -> Self {
        let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in (0, 1]: never 0, so `ln` below stays finite.
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1_u64 << 53) as f64
    }

    /// Standard normal, by Box–Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The records of shard `shard`: the first `records % shards` shards take
/// one extra record, so every record is made exactly once.
fn shard_len(records: usize, shards: usize, shard: usize) -> usize {
    records / shards + usize::from(shard < records % shards)
}

/// A temperature sensor: a daily cycle around 20 °C, Gaussian noise, and a
/// rare spike, so the tails of the distribution are worth a quantile.
fn generate(ctx: &TaskContext<'_, Data>, shard: usize) -> Result<Data, TaskError> {
    let &Data::Job {
        records,
        shards,
        seed,
    } = ctx.input()
    else {
        return Err(TaskError::msg("the run's input must be a Job"));
    };
    let mut rng = Rng::new(seed, shard as u64);
    let len = shard_len(records, shards, shard);
    let readings = (0..len)
        .map(|i| {
            let hour = (i % 1440) as f64 / 60.0;
            let cycle = 4.0 * (std::f64::consts::TAU * hour / 24.0).sin();
            let spike = if rng.next_u64().is_multiple_of(10_000) {
                15.0
            } else {
                0.0
            };
            20.0 + cycle + 1.5 * rng.normal() + spike
        })
        .collect();
    Ok(Data::Shard(readings))
}

fn shards<'a>(ctx: &TaskContext<'a, Data>) -> Result<Vec<&'a [f64]>, TaskError> {
    ctx.previous()
        .iter()
        .map(|(name, value)| match value {
            Data::Shard(v) => Ok(v.as_slice()),
            other => Err(TaskError::msg(format!("{name} gave {other:?}, not a shard"))),
        })
        .collect()
}

/// Welford's algorithm: one pass, and stable where summing squares is not.
fn stats(ctx: &TaskContext<'_, Data>) -> Result<Data, TaskError> {
    let (mut count, mut mean, mut m2) = (0_usize, 0.0_f64, 0.0_f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &x in shards(ctx)?.iter().flat_map(|s| s.iter()) {
        count += 1;
        let delta = x - mean;
        mean += delta / count as f64;
        m2 += delta * (x - mean);
        min = min.min(x);
        max = max.max(x);
    }
    if count == 0 {
        return Err(TaskError::msg("no records to summarise"));
    }
    let std_dev = if count > 1 {
        (m2 / (count - 1) as f64).sqrt()
    } else {
        0.0
    };
    Ok(Data::Stats {
        count,
        mean,
        std_dev,
        min,
        max,
    })
}

/// Exact quantiles by selection on a copy: the heaviest task of its step.
fn quantiles(ctx: &TaskContext<'_, Data>) -> Result<Data, TaskError> {
    let mut all: Vec<f64> = shards(ctx)?.concat();
    if all.is_empty() {
        return Err(TaskError::msg("no records for quantiles"));
    }
    let mut at = |q: f64| {
        let k = ((all.len() - 1) as f64 * q).round() as usize;
        *all.select_nth_unstable_by(k, f64::total_cmp).1
    };
    Ok(Data::Quantiles {
        p50: at(0.5),
        p99: at(0.99),
    })
}

fn histogram(ctx: &TaskContext<'_, Data>) -> Result<Data, TaskError> {
    let mut bins = vec![0_u64; HIST_BINS];
    let width = (HIST_MAX - HIST_MIN) / HIST_BINS as f64;
    for &x in shards(ctx)?.iter().flat_map(|s| s.iter()) {
        let bin = ((x - HIST_MIN) / width)
            .floor()
            .clamp(0.0, (HIST_BINS - 1) as f64) as usize;
        bins[bin] += 1;
    }
    Ok(Data::Histogram(bins))
}

/// FNV-1a over the readings' bits in shard order: equal for equal seeds
/// whatever the thread count, which shows the results come back in
/// declaration order.
fn checksum(ctx: &TaskContext<'_, Data>) -> Result<Data, TaskError> {
    let mut hash = 0xCBF2_9CE4_8422_2325_u64;
    for &x in shards(ctx)?.iter().flat_map(|s| s.iter()) {
        for byte in x.to_bits().to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    Ok(Data::Checksum(hash))
}

fn report(ctx: &TaskContext<'_, Data>) -> Result<Data, TaskError> {
    let previous = ctx.previous();
    let missing = |task: &str| TaskError::msg(format!("no result from {task}"));
    let Some(&Data::Stats {
        count,
        mean,
        std_dev,
        min,
        max,
    }) = previous.get("stats")
    else {
        return Err(missing("stats"));
    };
    let Some(&Data::Quantiles { p50, p99 }) = previous.get("quantiles") else {
        return Err(missing("quantiles"));
    };
    let Some(Data::Histogram(bins)) = previous.get("histogram") else {
        return Err(missing("histogram"));
    };
    let Some(&Data::Checksum(sum)) = previous.get("checksum") else {
        return Err(missing("checksum"));
    };
    let mut out = String::new();
    let _ = writeln!(out, "readings   {count}");
    let _ = writeln!(out, "mean       {mean:.4} °C  (std dev {std_dev:.4})");
    let _ = writeln!(out, "range      {min:.3} .. {max:.3} °C");
    let _ = writeln!(out, "median     {p50:.4} °C   p99 {p99:.4} °C");
    let _ = writeln!(out, "checksum   {sum:016x}");
    let _ = writeln!(out, "histogram  ({HIST_MIN}..{HIST_MAX} °C, {HIST_BINS} bins)");
    let peak = bins.iter().copied().max().unwrap_or(0).max(1);
    let width = (HIST_MAX - HIST_MIN) / HIST_BINS as f64;
    for (i, &n) in bins.iter().enumerate() {
        let from = HIST_MIN + i as f64 * width;
        // Scaled to the tallest bin; `n > 0` keeps a rare bin visible.
        let bar = (n * 50).div_ceil(peak) as usize;
        let _ = writeln!(out, "  {from:>5.1} {n:>9} {}", "#".repeat(bar));
    }
    Ok(Data::Report(out))
}

fn pipeline(shards: usize) -> Result<Pipeline<Data>, BuildError> {
    let generate = (0..shards)
        .map(|shard| Task::from_fn(format!("generate-{shard}"), move |ctx| generate(ctx, shard)).on("cpu"));
    Pipeline::builder("batch")
        .step(Step::new("generate", generate))
        .step(Step::new(
            "analyse",
            [
                Task::from_fn("stats", stats).on("cpu"),
                Task::from_fn("quantiles", quantiles).on("cpu"),
                Task::from_fn("histogram", histogram).on("cpu"),
                Task::from_fn("checksum", checksum).on("cpu"),
            ],
        ))
        // Formatting a few lines is cheaper than a pool round trip.
        .step(Step::new(
            "report",
            [Task::from_fn("report", report).executor(ExecutorConfig::Inline)],
        ))
        .build()
}

/// The task each name of a pointy text stands for: the same work as
/// `pipeline` gives its tasks. The report runs inline; the text chooses the
/// executor of the others.
fn named_task(name: &str) -> Option<Task<Data>> {
    Some(match name {
        "stats" => Task::from_fn(name, stats),
        "quantiles" => Task::from_fn(name, quantiles),
        "histogram" => Task::from_fn(name, histogram),
        "checksum" => Task::from_fn(name, checksum),
        "report" => Task::from_fn(name, report).executor(ExecutorConfig::Inline),
        _ => {
            let shard: usize = name.strip_prefix("generate_")?.parse().ok()?;
            Task::from_fn(name, move |ctx| generate(ctx, shard))
        }
    })
}

/// The pipeline the pointy text in `path` describes, which must generate
/// every one of `shards` shards exactly once.
fn pipeline_from_text(path: &Path, shards: usize) -> Result<Pipeline<Data>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pipeline = conveyor::pointy::parse_named("batch", &text, &named_task)
        .map_err(|e| format!("{}:{e:#}", path.display()))?;
    let mut generated: Vec<&str> = pipeline
        .steps()
        .iter()
        .flat_map(|step| step.tasks())
        .map(Task::name)
        .filter(|name| name.starts_with("generate_"))
        .collect();
    generated.sort_unstable();
    let mut expected: Vec<String> = (0..shards).map(|shard| format!("generate_{shard}")).collect();
    expected.sort_unstable();
    if generated != expected {
        return Err(format!(
            "{}: with --shards {shards}, the text must name generate_0 to generate_{} once each",
            path.display(),
            shards - 1
        ));
    }
    Ok(pipeline)
}

/// Kills the process as a step starts: what a crash or an OOM kill does to a
/// batch job, so that `--checkpoint` has something to resume.
struct AbortIn(String);

impl Observer for AbortIn {
    fn context_started(&self, event: &ContextEvent<'_>) {
        if event.step == self.0 {
            eprintln!("batch: aborting in step `{}` as asked", event.step);
            std::process::abort();
        }
    }
}

/// A progress bar over the run's tasks.
struct Progress {
    bar: indicatif::ProgressBar,
    /// Whether a task of this process finished yet: restored tasks arrive
    /// first, all at once, and must not make the ETA think the job is fast.
    timing: std::sync::atomic::AtomicBool,
}

impl Progress {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {pos}/{len} tasks [{wide_bar}] {elapsed} (ETA {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self {
            bar,
            timing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Observer for Progress {
    fn pipeline_started(&self, event: &PipelineEvent<'_>) {
        self.bar.set_length(event.total_tasks as u64);
    }
    fn checkpoint_loaded(&self, event: &CheckpointEvent<'_>) {
        self.bar.println(format!(
            "resuming {}: {} steps and {} tasks restored from {} bytes in {:.1} ms",
            event.run,
            event.restored_steps,
            event.restored_tasks,
            event.bytes,
            millis(event.elapsed)
        ));
    }
    fn task_finished(&self, event: &TaskEvent<'_>) {
        if event.error.is_some() {
            return;
        }
        if !event.restored && !self.timing.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.bar.reset_eta();
        }
        self.bar.inc(1);
    }
    fn pipeline_finished(&self, _event: &PipelineEvent<'_>) {
        self.bar.finish();
    }
    fn pipeline_stopped(&self, _event: &PipelineEvent<'_>) {
        self.bar.abandon();
    }
}

/// An error and its causes, one after another: `Display` of an error says
/// only what went wrong at its level, and its `source()` says why.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let _ = write!(text, ": {e}");
        cause = e.source();
    }
    text
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Millions of records per second of `wall`.
fn rate(records: usize, wall: Duration) -> f64 {
    records as f64 / wall.as_secs_f64().max(1e-9) / 1e6
}

/// Runs the job in this process.
fn run_here(
    args: &Args,
    executor: &PipelineExecutor<Data>,
    pipeline: &Pipeline<Data>,
    input: Data,
) -> Result<Run<Data>, RunError> {
    match &args.checkpoint {
        Some(path) => {
            let store = FileCheckpointStore::new(path);
            if args.fresh {
                store.clear()?;
            }
            executor.execute_with_checkpoint(pipeline, input, &store)
        }
        None => executor.execute(pipeline, input),
    }
}

/// `--mpi`: the same job on every rank of an MPI job.
#[cfg(feature = "mpi")]
mod distributed {
    use super::{Args, Data, with_causes};
    use conveyor::checkpoint::{CheckpointStore, FileCheckpointStore};
    use conveyor::mpi::Cluster;
    use conveyor::{Pipeline, PipelineExecutor, Run, RunOptions};

    pub(super) fn join() -> Result<Cluster, String> {
        Cluster::init().map_err(|e| e.to_string())
    }

    /// Rank 0 gets the run; the others `None`. Only rank 0 touches the
    /// checkpoint.
    pub(super) fn run(
        cluster: &Cluster,
        args: &Args,
        executor: &PipelineExecutor<Data>,
        pipeline: &Pipeline<Data>,
        input: Data,
    ) -> Result<Option<Run<Data>>, String> {
        let options = RunOptions::new();
        let run = match &args.checkpoint {
            Some(path) => {
                let store = FileCheckpointStore::new(path);
                if args.fresh && cluster.is_root() {
                    store.clear().map_err(|e| with_causes(&e))?;
                }
                cluster.execute_with_checkpoint(executor, pipeline, input, &options, &store)
            }
            None => cluster.execute_with(executor, pipeline, input, &options),
        };
        run.map_err(|e| with_causes(&e))
    }
}

/// `--mpi` in a build without the feature: say how to get it.
#[cfg(not(feature = "mpi"))]
mod distributed {
    use super::{Args, Data};
    use conveyor::{Pipeline, PipelineExecutor, Run};

    /// Stands in for the cluster of an MPI build; never made.
    pub(super) enum Cluster {}

    pub(super) fn join() -> Result<Cluster, String> {
        Err("--mpi needs the `mpi` feature: build with \
             `cargo build --release --features mpi --example batch` \
             (MPI and libclang installed), then run \
             `mpirun -np 3 target/release/examples/batch --mpi`"
            .to_owned())
    }

    pub(super) fn run(
        cluster: &Cluster,
        _: &Args,
        _: &PipelineExecutor<Data>,
        _: &Pipeline<Data>,
        _: Data,
    ) -> Result<Option<Run<Data>>, String> {
        match *cluster {}
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut builder = PipelineExecutor::builder().executor("cpu", ExecutorConfig::pool(threads));
    if let Some(step) = &args.abort_in {
        builder = builder.observer(AbortIn(step.clone()));
    }
    if args.progress {
        builder = builder.observer(Progress::new());
    }
    let pipeline = match &args.pipeline {
        Some(path) => pipeline_from_text(path, args.shards),
        None => pipeline(args.shards).map_err(|e| e.to_string()),
    };
    let pipeline = match pipeline {
        Ok(pipeline) => pipeline,
        Err(e) => {
            eprintln!("batch: {e}");
            return ExitCode::FAILURE;
        }
    };
    let executor = match builder.build() {
        Ok(executor) => executor,
        Err(e) => {
            eprintln!("batch: {}", with_causes(&e));
            return ExitCode::FAILURE;
        }
    };
    let input = Data::Job {
        records: args.records,
        shards: args.shards,
        seed: args.seed,
    };
    // Kept until `main` returns: dropping it ends MPI on this rank.
    let _cluster;
    let run = if args.mpi {
        match distributed::join() {
            Ok(cluster) => {
                let run = distributed::run(&cluster, &args, &executor, &pipeline, input);
                _cluster = cluster;
                run
            }
            Err(e) => Err(e),
        }
    } else {
        run_here(&args, &executor, &pipeline, input)
            .map(Some)
            .map_err(|e| with_causes(&e))
    };
    let run = match run {
        Ok(Some(run)) => run,
        // Another rank of an MPI job: rank 0 reports.
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("batch: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.output {
        let steps: Vec<(&str, Vec<(&str, &Data)>)> = run
            .chain()
            .iter()
            .map(|c| (c.step(), c.state().results().iter().collect()))
            .collect();
        let written = serde_json::to_vec(&steps)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("batch: could not write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }

    println!(
        "batch: {} records in {} shards, {} threads, seed {}",
        args.records, args.shards, threads, args.seed
    );
    println!("status {:?} after {} steps", run.status(), run.chain().len());
    if run.restored() > 0 {
        println!(
            "resumed: {} finished steps restored from the checkpoint, not run again",
            run.restored()
        );
    }
    match run
        .report()
        .to_json()
        .map(|json| std::fs::write(&args.report, json))
    {
        Ok(Ok(())) => println!("report written to {}", args.report.display()),
        Ok(Err(e)) => eprintln!("batch: could not write {}: {e}", args.report.display()),
        Err(e) => eprintln!("batch: {e}"),
    }
    if let Some(path) = &args.trace {
        match std::fs::write(path, ChromeTrace::from_run(&run).to_json()) {
            Ok(()) => println!("trace written to {} (open it in Perfetto)", path.display()),
            Err(e) => eprintln!("batch: could not write {}: {e}", path.display()),
        }
    }
    println!("  step        tasks   wall ms   busy ms   M records/s");
    // Restored steps ran in the process that saved the checkpoint: they
    // are neither listed nor counted in any rate here.
    for context in run.chain().iter().skip(run.restored()) {
        let metrics = context.metrics();
        // Busy time over wall time is how much of the pool the step used.
        let busy: Duration = metrics.tasks.iter().map(|t| t.duration()).sum();
        // A step that generates shards makes every record, and one that
        // analyses reads each one; the report only formats summaries.
        let handles_records = metrics.tasks.iter().any(|t| {
            t.task.starts_with("generate")
                || matches!(&*t.task, "stats" | "quantiles" | "histogram" | "checksum")
        });
        let rate = if handles_records {
            format!("{:>13.2}", rate(args.records, metrics.duration()))
        } else {
            format!("{:>13}", "-")
        };
        // A step named after its tasks (from --pipeline) can be long.
        let name = match context.step().char_indices().nth(24) {
            Some((cut, _)) => format!("{}…", &context.step()[..cut]),
            None => context.step().to_owned(),
        };
        println!(
            "  {:<10} {:>6} {:>9.2} {:>9.2} {rate}",
            name,
            metrics.tasks.len(),
            millis(metrics.duration()),
            millis(busy),
        );
    }
    if run.restored() == 0 {
        println!(
            "total {:.2} ms, {:.2} M records/s end to end",
            millis(run.duration()),
            rate(args.records, run.duration())
        );
    } else {
        // Dividing every record by the time of the steps left after a
        // resume would credit this process with work an earlier one did.
        println!(
            "total {:.2} ms for the {} steps run in this process; no end-to-end rate for a resumed run",
            millis(run.duration()),
            run.chain().len() - run.restored()
        );
    }
    match run.output().map(|out| out.get("report")) {
        Ok(Some(Data::Report(text))) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(other) => {
            eprintln!("batch: the report step gave {other:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("batch: {e}");
            for error in run.errors() {
                eprintln!("  {}", with_causes(error));
            }
            ExitCode::FAILURE
        }
    }
}
