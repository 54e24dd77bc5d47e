//! The strategy suite's workloads under criterion, each group with its
//! plain-rayon baseline on a pool of the same size, so that a ratio comes
//! out of one run. `examples/strategies.rs` runs the same workloads with
//! every strategy interleaved and writes the report files.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};
use rayon::prelude::*;

#[path = "common/workloads.rs"]
mod workloads;
use workloads::{Calibration, chain_pipeline, fan_out_pipeline, par_iter_step, rayon_step, spin};

/// Spin rounds per `grain`.
fn rounds_for(grain: Duration) -> u64 {
    Calibration::measure().rounds(grain)
}

/// Raw rayon doing a group's work on the given pool.
type Baseline<'a> = dyn Fn(&rayon::ThreadPool) + 'a;

struct Setup {
    threads: usize,
    executor: PipelineExecutor<u64>,
    rayon: Arc<rayon::ThreadPool>,
}

impl Setup {
    fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            threads,
            executor: PipelineExecutor::builder().build().expect("executor"),
            rayon: Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("rayon pool"),
            ),
        }
    }

    /// Thread per task and custom executors are left to the example: their
    /// start-up cost makes criterion's sampling take minutes per group.
    fn strategies(&self) -> [ExecutorConfig; 3] {
        [
            ExecutorConfig::Inline,
            ExecutorConfig::pool(self.threads),
            ExecutorConfig::Global,
        ]
    }

    /// One entry per strategy for `pipeline`, then the baseline.
    fn group(
        &self,
        c: &mut Criterion,
        name: &str,
        pipeline: &Pipeline<u64>,
        baseline: impl Fn(&rayon::ThreadPool),
    ) {
        self.group_with(c, name, pipeline, &[("rayon", &baseline)]);
    }

    /// [`group`](Self::group) with several baselines, each by name.
    fn group_with(
        &self,
        c: &mut Criterion,
        name: &str,
        pipeline: &Pipeline<u64>,
        baselines: &[(&str, &Baseline<'_>)],
    ) {
        let mut group = c.benchmark_group(name);
        tune(&mut group);
        for config in self.strategies() {
            let p = pipeline.with_executor(config.clone());
            group.bench_function(config.to_string(), |b| {
                b.iter(|| self.executor.execute(&p, black_box(1)).expect("run"));
            });
        }
        for (label, baseline) in baselines {
            group.bench_function(*label, |b| b.iter(|| baseline(&self.rayon)));
        }
        group.finish();
    }
}

fn tune(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

fn one_step(n: usize, task: impl Fn(usize) -> Task<u64>) -> Pipeline<u64> {
    Pipeline::builder("step")
        .step((0..n).map(task).collect::<Vec<_>>())
        .build()
        .expect("pipeline")
}

fn noop(c: &mut Criterion) {
    let setup = Setup::new();
    for n in [1, 100, 10_000] {
        let pipeline = one_step(n, |i| Task::from_fn(format!("t{i}"), |_| Ok(0)));
        // The scope that does what a step does, and the `par_iter` a rayon
        // user would write.
        setup.group_with(
            c,
            &format!("noop/{n}"),
            &pipeline,
            &[
                ("rayon", &|pool| drop(black_box(rayon_step(pool, n, |_| 0)))),
                ("par_iter", &|pool| drop(black_box(par_iter_step(pool, n, |_| 0)))),
            ],
        );
    }
}

fn chain(c: &mut Criterion) {
    let setup = Setup::new();
    let pipeline = chain_pipeline(1_000).expect("pipeline");
    setup.group(c, "chain/1000", &pipeline, |pool| {
        let mut x = 1_u64;
        for _ in 0..1_000 {
            x = rayon_step(pool, 1, |_| x + 1)[0];
        }
        black_box(x);
    });
}

fn fan_out(c: &mut Criterion) {
    let setup = Setup::new();
    for width in [4_u64, 100, 10_000] {
        let pipeline = fan_out_pipeline(width).expect("pipeline");
        setup.group(c, &format!("fan-out/{width}"), &pipeline, |pool| {
            let source = pool.install(|| black_box(1_u64));
            let sum: u64 = pool.install(|| (0..width).into_par_iter().map(|i| source + i).sum());
            black_box(pool.install(|| sum));
        });
    }
}

fn cpu_batch(c: &mut Criterion) {
    let setup = Setup::new();
    for (label, grain) in [
        ("100us", Duration::from_micros(100)),
        ("1ms", Duration::from_millis(1)),
    ] {
        let rounds = rounds_for(grain);
        for k in [setup.threads, 4 * setup.threads, 64 * setup.threads] {
            let pipeline = one_step(k, |i| {
                Task::from_fn(format!("h{i}"), move |c| Ok(spin(rounds, c.input() + i as u64)))
            });
            setup.group(c, &format!("cpu/{label}/{k}"), &pipeline, |pool| {
                let out: Vec<u64> = pool.install(|| {
                    (0..k)
                        .into_par_iter()
                        .map(|i| spin(rounds, 1 + i as u64))
                        .collect()
                });
                black_box(out);
            });
        }
    }
}

fn grain_sweep(c: &mut Criterion) {
    let setup = Setup::new();
    let tasks = 10_000;
    for (label, grain) in [
        ("100ns", Duration::from_nanos(100)),
        ("1us", Duration::from_micros(1)),
        ("10us", Duration::from_micros(10)),
        ("100us", Duration::from_micros(100)),
    ] {
        let rounds = rounds_for(grain);
        let pipeline = one_step(tasks, |i| {
            Task::from_fn(format!("g{i}"), move |c| Ok(spin(rounds, c.input() + i as u64)))
        });
        setup.group(c, &format!("grain/{label}"), &pipeline, |pool| {
            let out: Vec<u64> = pool.install(|| {
                (0..tasks)
                    .into_par_iter()
                    .map(|i| spin(rounds, i as u64))
                    .collect()
            });
            black_box(out);
        });
    }
}

criterion_group!(benches, noop, chain, fan_out, cpu_batch, grain_sweep);
criterion_main!(benches);
