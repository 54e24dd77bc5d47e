//! What a distributed step costs: run it under `mpirun -np N`; rank 0 prints the fixed cost per step, the cost per byte, the speedup on CPU-heavy tasks and the balance of an uneven step.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use conveyor::mpi::Cluster;
use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Step, Task, TaskError};

/// Steps in the pipeline that measures the fixed cost: enough that one
/// run's handshake is lost in them.
const STEPS: usize = 200;

/// The run's input: how many rounds of the busy loop make a millisecond
/// on rank 0, so every rank does the same work whatever its speed.
fn rounds_per_ms(input: &Vec<u8>) -> Result<u64, TaskError> {
    let bytes: [u8; 8] = input
        .as_slice()
        .try_into()
        .map_err(|_| TaskError::msg("input is 8 bytes"))?;
    Ok(u64::from_le_bytes(bytes))
}

/// Real CPU work (not a sleep, not a spin on the clock): oversubscribed
/// ranks must share the cores, as they would with a real job.
fn burn(rounds: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

fn calibrate() -> u64 {
    let rounds = 2_000_000;
    let started = Instant::now();
    burn(rounds);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    (rounds as f64 / ms) as u64
}

/// `steps` steps of `tasks` tasks that do nothing.
fn empty(steps: usize, tasks: usize) -> Pipeline<Vec<u8>> {
    let mut builder = Pipeline::builder("empty");
    for s in 0..steps {
        builder = builder.step(Step::new(
            format!("s{s}"),
            (0..tasks).map(move |t| Task::from_fn(format!("s{s}t{t}"), |_| Ok(Vec::new()))),
        ));
    }
    builder.build().unwrap()
}

/// One step of `tasks` tasks, each returning `bytes` bytes.
fn payload(tasks: usize, bytes: usize) -> Pipeline<Vec<u8>> {
    Pipeline::builder("payload")
        .step(Step::new(
            "bytes",
            (0..tasks).map(move |t| Task::from_fn(format!("t{t}"), move |_| Ok(vec![t as u8; bytes]))),
        ))
        .build()
        .unwrap()
}

/// One step of 64 tasks; task `i` burns `ms(i)` milliseconds.
fn heavy(ms: fn(usize) -> u64) -> Pipeline<Vec<u8>> {
    Pipeline::builder("heavy")
        .step(Step::new(
            "burn",
            (0..64).map(move |i| {
                Task::from_fn(format!("t{i}"), move |c| {
                    let rounds = rounds_per_ms(c.input())? * ms(i);
                    Ok(burn(rounds).to_le_bytes().to_vec())
                })
            }),
        ))
        .build()
        .unwrap()
}

fn even(_: usize) -> u64 {
    10
}

/// 8 of 64 tasks cost ten times the others, all at the end of the step:
/// the worst place for a split made up front.
fn uneven(i: usize) -> u64 {
    if i >= 56 { 50 } else { 5 }
}

fn main() -> ExitCode {
    let cluster = match Cluster::init() {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("mpi_cost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ranks = cluster.size();
    // One thread per rank: the comparison is ranks against threads.
    let executor = PipelineExecutor::builder()
        .default_executor(ExecutorConfig::pool(1))
        .build()
        .unwrap();
    let root = cluster.is_root();
    let input = if root { calibrate() } else { 0 }.to_le_bytes().to_vec();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if root {
        println!("mpi_cost: {ranks} ranks x 1 thread, {cores} cores on this machine");
    }

    // (a) The fixed cost of a step: one empty task per rank.
    let pipeline = empty(STEPS, ranks);
    let local = root.then(|| {
        let started = Instant::now();
        executor.execute(&pipeline, input.clone()).unwrap();
        started.elapsed() / STEPS as u32
    });
    let started = Instant::now();
    cluster.execute(&executor, &pipeline, input.clone()).unwrap();
    let distributed = started.elapsed() / STEPS as u32;
    if let Some(local) = local {
        println!(
            "(a) step of {ranks} empty tasks: local {:.1} us, distributed {:.1} us ({:.1} us more per step)",
            micros(local),
            micros(distributed),
            micros(distributed.saturating_sub(local))
        );
    }

    // (b) Bytes: results of 32 tasks of 256 KiB each come back to rank 0.
    let (tasks, bytes) = (32, 256 * 1024);
    let pipeline = payload(tasks, bytes);
    let local = root.then(|| timed(|| drop(executor.execute(&pipeline, input.clone()).unwrap())));
    let distributed = timed(|| drop(cluster.execute(&executor, &pipeline, input.clone()).unwrap()));
    if let Some(local) = local {
        let moved = (tasks * bytes) as f64 * (ranks - 1) as f64 / ranks as f64;
        println!(
            "(b) {tasks} tasks x {} KiB results: local {:.2} ms, distributed {:.2} ms: {:.2} ns per byte moved",
            bytes / 1024,
            millis(local),
            millis(distributed),
            (distributed.saturating_sub(local)).as_secs_f64() * 1e9 / moved.max(1.0)
        );
    }

    // (c) 64 CPU-heavy tasks of about 10 ms: ranks against one process.
    let pipeline = heavy(even);
    let local = root.then(|| timed(|| drop(executor.execute(&pipeline, input.clone()).unwrap())));
    let distributed = timed(|| drop(cluster.execute(&executor, &pipeline, input.clone()).unwrap()));
    if let Some(local) = local {
        println!(
            "(c) 64 tasks of ~10 ms: 1 process x 1 thread {:.0} ms, {ranks} ranks x 1 thread {:.0} ms: speedup {:.2}x",
            millis(local),
            millis(distributed),
            local.as_secs_f64() / distributed.as_secs_f64()
        );
    }

    // (d) 64 tasks, 8 of them ten times heavier, against the ideal.
    let pipeline = heavy(uneven);
    let work = root.then(|| timed(|| drop(executor.execute(&pipeline, input.clone()).unwrap())));
    let distributed = timed(|| drop(cluster.execute(&executor, &pipeline, input.clone()).unwrap()));
    if let Some(work) = work {
        // The ideal splits the work evenly over what can run at once: the
        // ranks, or the cores when there are fewer; the heaviest task
        // cannot be split.
        let heaviest = work.as_secs_f64() * 50.0 / (56.0 * 5.0 + 8.0 * 50.0);
        let ideal = |n: usize| (work.as_secs_f64() / n as f64).max(heaviest);
        let parallel = ranks.min(cores);
        println!(
            "(d) 64 tasks, 8 of them 10x: {:.0} ms of work, {:.0} ms on {ranks} ranks; \
             ideal on {parallel} cores {:.0} ms ({:.2}x of it); ideal on {ranks} cores {:.0} ms ({:.2}x)",
            millis(work),
            millis(distributed),
            ideal(parallel) * 1e3,
            distributed.as_secs_f64() / ideal(parallel),
            ideal(ranks) * 1e3,
            distributed.as_secs_f64() / ideal(ranks)
        );
    }
    ExitCode::SUCCESS
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
