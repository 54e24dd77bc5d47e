//! What checkpointing costs per step: the same pipeline run plainly, with an
//! in-memory store (serialising only) and with a file store (serialising,
//! writing, fsync and rename), each step producing 10,000 floats.

use std::hint::black_box;

use conveyor::checkpoint::{CheckpointStore, FileCheckpointStore, MemoryCheckpointStore};
use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const STEPS: usize = 8;
const VALUES: usize = 10_000;

fn pipeline() -> Pipeline<Vec<f64>> {
    let mut b = Pipeline::builder("bench");
    for s in 0..STEPS {
        b = b.step([Task::from_fn(format!("step{s}"), move |c| {
            let seed = c.previous().first().map_or(1.0, |v: &Vec<f64>| v[0]);
            Ok((0..VALUES).map(|i| (seed + (i + s) as f64).sqrt()).collect())
        })
        .executor(ExecutorConfig::Inline)]);
    }
    b.build().unwrap()
}

fn bench(c: &mut Criterion) {
    let executor = PipelineExecutor::builder().build().unwrap();
    let pipeline = pipeline();
    let input = vec![0.5_f64; 16];
    let dir = tempfile::tempdir().unwrap();
    let file = FileCheckpointStore::new(dir.path().join("bench.ckpt"));

    let mut group = c.benchmark_group(format!("checkpoint/{STEPS}_steps_of_{VALUES}_f64"));
    group.sample_size(20);
    group.bench_function("off", |b| {
        b.iter(|| black_box(executor.execute(&pipeline, input.clone()).unwrap()));
    });
    group.bench_function("memory_store", |b| {
        b.iter_batched(
            MemoryCheckpointStore::new,
            |store| {
                black_box(
                    executor
                        .execute_with_checkpoint(&pipeline, input.clone(), &store)
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("file_store", |b| {
        b.iter_batched(
            || file.clear().unwrap(),
            |()| {
                black_box(
                    executor
                        .execute_with_checkpoint(&pipeline, input.clone(), &file)
                        .unwrap(),
                )
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
