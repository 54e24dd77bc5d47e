//! What conveyor's layer costs on top of raw rayon doing the same work.
//!
//! Each group holds a conveyor function and the raw baseline it is compared
//! with, so both medians come from one run on the same machine state; read
//! the result as the ratio `conveyor_* / baseline_*`, not as absolute times.
//! The conveyor functions include everything a caller pays for one
//! `execute`: contexts, state transitions, the step's channel, ordering the
//! outcomes, metrics, and dropping the returned `Run`.
//!
//! - `tasks_10k`: one step of 10,000 no-op tasks on a dedicated pool of N
//!   threads (N = available parallelism), against `rayon::scope` spawning
//!   10,000 jobs on a pool of the same size, each sending one message over a
//!   crossbeam channel that the caller drains. The ratio is the per-task
//!   overhead of the engine; throughput is in tasks per second.
//! - `chain_1000`: 1,000 steps of one no-op task each, so the per-step fixed
//!   cost dominates. `conveyor_inline` runs the tasks on the caller's thread
//!   and is compared with 1,000 direct calls plus a channel send/recv each;
//!   its time per element is the per-step cost (the target is at most 2 µs).
//!   `conveyor_pool` runs each task on the pool and is compared with 1,000
//!   `pool.install` round trips plus a send/recv each; the difference between
//!   the two conveyor functions is what a pool round trip adds per step.
//!   `conveyor_pool_deadline` is the same run with a run deadline: a run
//!   that can be cut short is carried into its pool too, with its steps
//!   parked where the caller can take them over, so the difference from
//!   `conveyor_pool` is what watching a run costs per step.
//! - `tasks_10k/conveyor_pool_untimed`: the same step run with
//!   `RunOptions::task_timing(false)`, which skips each task's clock
//!   reads.
//! - `tasks_10k/conveyor_pool_deadline`: the same step under a run
//!   deadline (an hour), which sends its outcomes over the step's channel
//!   so that a caller taking the run over finds every finished task.
//! - `tasks_10k/baseline_par_iter`: the same 10,000 no-op calls as the
//!   `par_iter` a rayon user would write, each under `catch_unwind` and
//!   collected in order, as conveyor keeps its outcomes.
//! - `tasks_10k/baseline_par_iter_boxed`: the same, over 10,000 distinct
//!   closures behind `Box<dyn Fn>`, as a rayon user holding a list of
//!   tasks would run them. It makes the one dynamic call per task that
//!   conveyor makes too, which `baseline_par_iter` (a loop the compiler
//!   sees through) does not.
//! - `fan_out_100`: one task, 100 tasks reading its result, one task
//!   summing theirs, all on the pool, against the same three phases as one
//!   `install` with a `par_iter` in the middle.
//! - `single_task_step`: one `execute` of a one-step, one-task pipeline on
//!   each strategy (inline, dedicated pool, rayon's global pool), each next
//!   to the raw cost of reaching that executor once. It shows what a tiny
//!   step costs, and how much of it is the round trip rather than the engine.
//!
//! Run with `cargo bench --bench overhead`; add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, RunOptions, Task};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rayon::ThreadPool;
use rayon::prelude::*;

const TASKS: usize = 10_000;
const STEPS: usize = 1_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

fn raw_pool() -> ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads())
        .build()
        .expect("raw rayon pool")
}

fn executor() -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .executor("pool", ExecutorConfig::pool(threads()))
        .build()
        .expect("executor")
}

fn noop(name: String) -> Task<u64> {
    Task::from_fn(name, |c| Ok(*c.input()))
}

/// Runs `pipeline` once outside any measurement, so a broken setup fails
/// loudly instead of timing an aborted run.
fn checked(executor: &PipelineExecutor<u64>, pipeline: Pipeline<u64>, outputs: usize) -> Pipeline<u64> {
    let run = executor.execute(&pipeline, 0).expect("execute");
    assert!(run.is_success(), "{:?}", run.failure());
    assert_eq!(run.output().expect("output").len(), outputs);
    pipeline
}

fn tasks_10k(c: &mut Criterion) {
    let pool = raw_pool();
    let executor = executor();
    let pipeline = Pipeline::builder("tasks_10k")
        .step(
            (0..TASKS)
                .map(|i| noop(format!("t{i}")).on("pool"))
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("pipeline");
    let pipeline = checked(&executor, pipeline, TASKS);

    let mut group = c.benchmark_group("tasks_10k");
    group.throughput(Throughput::Elements(TASKS as u64));
    group.bench_function("baseline_rayon_scope", |b| {
        b.iter(|| {
            // Bounded to the task count like conveyor's step channel, so
            // neither side pays for growing a buffer.
            let (tx, rx) = crossbeam_channel::bounded(TASKS);
            pool.install(|| {
                rayon::scope(|s| {
                    for i in 0..TASKS {
                        let tx = tx.clone();
                        s.spawn(move |_| {
                            tx.send(i).unwrap();
                        });
                    }
                });
            });
            let mut sum = 0;
            for _ in 0..TASKS {
                sum += rx.recv().unwrap();
            }
            sum
        });
    });
    group.bench_function("baseline_par_iter", |b| {
        // What a rayon user would write: a parallel map over the inputs,
        // each call guarded against panics as conveyor guards its tasks,
        // collected in order.
        b.iter(|| {
            pool.install(|| {
                (0..TASKS)
                    .into_par_iter()
                    .map(|i| std::panic::catch_unwind(|| black_box(i as u64)).ok())
                    .collect::<Vec<_>>()
            })
        });
    });
    let boxed: Vec<Box<dyn Fn(u64) -> u64 + Send + Sync>> = (0..TASKS as u64)
        .map(|i| Box::new(move |x: u64| x + i) as Box<dyn Fn(u64) -> u64 + Send + Sync>)
        .collect();
    group.bench_function("baseline_par_iter_boxed", |b| {
        b.iter(|| {
            pool.install(|| {
                boxed
                    .par_iter()
                    .map(|task| std::panic::catch_unwind(AssertUnwindSafe(|| task(black_box(0)))).ok())
                    .collect::<Vec<_>>()
            })
        });
    });
    group.bench_function("conveyor_pool", |b| {
        b.iter(|| executor.execute(&pipeline, black_box(0)).unwrap());
    });
    let untimed = RunOptions::new().task_timing(false);
    group.bench_function("conveyor_pool_untimed", |b| {
        b.iter(|| executor.execute_with(&pipeline, black_box(0), &untimed).unwrap());
    });
    let watched = RunOptions::new().timeout(std::time::Duration::from_secs(3600));
    group.bench_function("conveyor_pool_deadline", |b| {
        b.iter(|| executor.execute_with(&pipeline, black_box(0), &watched).unwrap());
    });
    group.finish();
}

/// A fan-out/fan-in run: one task, then 100 tasks that each read its
/// result, then one task that sums theirs, all on the pool; against the
/// `par_iter` a rayon user would write for the same three phases.
fn fan_out(c: &mut Criterion) {
    const WIDTH: usize = 100;
    let pool = raw_pool();
    let executor = executor();
    let pipeline = Pipeline::<u64>::builder("fan_out")
        .step_with(|s| s.task("source", |c| Ok(*c.input() + 1)).on("pool"))
        .step(conveyor::Step::new(
            "wide",
            (0..WIDTH).map(|i| {
                Task::from_fn(format!("w{i}"), move |c| {
                    Ok(c.previous().first().copied().unwrap_or(0) + i as u64)
                })
                .on("pool")
            }),
        ))
        .step_with(|s| s.task("sink", |c| Ok(c.previous().values().sum())).on("pool"))
        .build()
        .expect("pipeline");
    let pipeline = checked(&executor, pipeline, 1);
    let mut group = c.benchmark_group("fan_out_100");
    group.bench_function("baseline_par_iter", |b| {
        b.iter(|| {
            pool.install(|| {
                let source = black_box(0u64) + 1;
                let wide: Vec<u64> = (0..WIDTH as u64).into_par_iter().map(|i| source + i).collect();
                wide.iter().sum::<u64>()
            })
        });
    });
    group.bench_function("conveyor_pool", |b| {
        b.iter(|| executor.execute(&pipeline, black_box(0)).unwrap());
    });
    group.finish();
}

fn chain_1000(c: &mut Criterion) {
    let pool = raw_pool();
    let executor = executor();
    let chain = |on: fn(Task<u64>) -> Task<u64>| {
        let mut builder = Pipeline::builder("chain_1000");
        for i in 0..STEPS {
            builder = builder.step(on(noop(format!("s{i}"))));
        }
        checked(&executor, builder.build().expect("pipeline"), 1)
    };
    let inline = chain(|t| t.executor(ExecutorConfig::Inline));
    let pooled = chain(|t| t.on("pool"));
    let work = |x: u64| x;

    let mut group = c.benchmark_group("chain_1000");
    group.throughput(Throughput::Elements(STEPS as u64));
    group.bench_function("baseline_inline", |b| {
        let (tx, rx) = crossbeam_channel::bounded(1);
        b.iter(|| {
            let mut x = black_box(0_u64);
            for _ in 0..STEPS {
                tx.send(black_box(work)(x)).unwrap();
                x = rx.recv().unwrap();
            }
            x
        });
    });
    group.bench_function("conveyor_inline", |b| {
        b.iter(|| executor.execute(&inline, black_box(0)).unwrap());
    });
    group.bench_function("baseline_pool", |b| {
        let (tx, rx) = crossbeam_channel::bounded(1);
        b.iter(|| {
            let mut x = black_box(0_u64);
            for _ in 0..STEPS {
                pool.install(|| tx.send(black_box(work)(x)).unwrap());
                x = rx.recv().unwrap();
            }
            x
        });
    });
    group.bench_function("conveyor_pool", |b| {
        b.iter(|| executor.execute(&pooled, black_box(0)).unwrap());
    });
    group.bench_function("conveyor_pool_deadline", |b| {
        let options = RunOptions::new().timeout(Duration::from_secs(3600));
        b.iter(|| executor.execute_with(&pooled, black_box(0), &options).unwrap());
    });
    group.finish();
}

fn single_task_step(c: &mut Criterion) {
    let pool = raw_pool();
    let executor = executor();
    let single = |task: Task<u64>| {
        checked(
            &executor,
            Pipeline::builder("single").step(task).build().expect("pipeline"),
            1,
        )
    };
    let inline = single(noop("t".into()).executor(ExecutorConfig::Inline));
    let pooled = single(noop("t".into()).on("pool"));
    let global = single(noop("t".into()).executor(ExecutorConfig::Global));
    let work = |x: u64| x;

    let mut group = c.benchmark_group("single_task_step");
    group.throughput(Throughput::Elements(1));
    group.bench_function("baseline_inline", |b| {
        b.iter(|| black_box(work)(black_box(0_u64)));
    });
    group.bench_function("conveyor_inline", |b| {
        b.iter(|| executor.execute(&inline, black_box(0)).unwrap());
    });
    group.bench_function("baseline_pool", |b| {
        b.iter(|| pool.install(|| black_box(work)(black_box(0_u64))));
    });
    group.bench_function("conveyor_pool", |b| {
        b.iter(|| executor.execute(&pooled, black_box(0)).unwrap());
    });
    group.bench_function("baseline_global", |b| {
        // From a thread outside any pool, `rayon::scope` runs its body on
        // the global pool and waits: one round trip, as `install` is for a
        // dedicated pool.
        b.iter(|| rayon::scope(|_| black_box(work)(black_box(0_u64))));
    });
    group.bench_function("conveyor_global", |b| {
        b.iter(|| executor.execute(&global, black_box(0)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, tasks_10k, fan_out, chain_1000, single_task_step);
criterion_main!(benches);
