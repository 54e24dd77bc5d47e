//! What checkpointing costs, at the sizes batch jobs have.
//!
//! - `checkpoint/200mb_over_4_steps`: four steps of eight tasks, each task
//!   hashing its slice of the previous step's bytes into 6.25 MB of new
//!   bytes (200 MB of results in all); run plainly, with a memory store,
//!   with a file store (the default durability: synced once per step) and
//!   with a file store that never syncs (what encoding and writing cost
//!   without waiting for the disk).
//! - `checkpoint/resume_200mb`: from the call to the first task of the
//!   fourth step, against the log the first three steps left.
//! - `checkpoint/8_steps_of_10k_f64`: small results, where the fixed cost
//!   of a save shows.
//!
//! After the criterion groups it prints two figures criterion cannot
//! measure: the checkpoint's size against the results', and, over a run of
//! 1,000 steps of 1 KB, how long the last saves take against the first.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use conveyor::checkpoint::{CheckpointStore, Durability, FileCheckpointStore, MemoryCheckpointStore};
use conveyor::signal::Signal;
use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task, TaskError, observer_fn};
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use parking_lot::Mutex;

const BIG_STEPS: usize = 4;
const BIG_TASKS: usize = 8;
const CHUNK: usize = 200_000_000 / (BIG_STEPS * BIG_TASKS);

/// FNV-1a over a sample of the task's slice of the previous step, then
/// one multiply-xorshift round per output byte: about a nanosecond a byte
/// of real work, like a job that hashes its data.
fn hash_chunk(seed: u64, previous: Option<&[u8]>) -> Vec<u8> {
    let mut h = previous.map_or(seed ^ 0xcbf2_9ce4_8422_2325, |p| {
        p.iter().step_by(64).fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let mut out = Vec::with_capacity(CHUNK);
    for _ in 0..CHUNK {
        h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        out.push((h >> 56) as u8);
    }
    out
}

/// The 200 MB job. While `stall` is set, the fourth step fails at once, so
/// that a run leaves the log of the first three.
fn big(stall: Arc<AtomicBool>) -> Pipeline<Vec<u8>> {
    let mut b = Pipeline::builder("big");
    for s in 0..BIG_STEPS {
        let tasks: Vec<Task<Vec<u8>>> = (0..BIG_TASKS)
            .map(|i| {
                let stall = Arc::clone(&stall);
                Task::from_fn(
                    format!("s{s}t{i}"),
                    move |c: &conveyor::TaskContext<'_, Vec<u8>>| {
                        if s == BIG_STEPS - 1 && stall.load(Ordering::Relaxed) {
                            return Err(TaskError::msg("stalled"));
                        }
                        let previous = c.previous().iter().nth(i).map(|(_, v)| v.as_slice());
                        Ok(hash_chunk((s * BIG_TASKS + i) as u64, previous))
                    },
                )
                .on("cpu")
            })
            .collect();
        b = b.step(tasks);
    }
    b.build().unwrap()
}

const SMALL_STEPS: usize = 8;
const VALUES: usize = 10_000;

fn small() -> Pipeline<Vec<f64>> {
    let mut b = Pipeline::builder("small");
    for s in 0..SMALL_STEPS {
        b = b.step([Task::from_fn(format!("step{s}"), move |c| {
            let seed = c.previous().first().map_or(1.0, |v: &Vec<f64>| v[0]);
            Ok((0..VALUES).map(|i| (seed + (i + s) as f64).sqrt()).collect())
        })
        .executor(ExecutorConfig::Inline)]);
    }
    b.build().unwrap()
}

fn executor<T: Send + Sync + 'static>() -> PipelineExecutor<T> {
    PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .build()
        .unwrap()
}

fn big_runs(c: &mut Criterion) {
    let stall = Arc::new(AtomicBool::new(false));
    let pipeline = big(Arc::clone(&stall));
    let executor = executor();
    let dir = tempfile::tempdir().unwrap();
    let file = FileCheckpointStore::new(dir.path().join("big.ckpt"));
    let input = vec![0_u8; 64];

    let mut group = c.benchmark_group("checkpoint/200mb_over_4_steps");
    group.sample_size(10);
    // Every sample starts with the disk caught up (the untimed setup runs
    // `sync`): one job's run, not the tail of the previous sample's
    // 200 MB still being written back, which would measure the disk's
    // bandwidth instead.
    let settled = |store: &FileCheckpointStore| {
        store.clear().unwrap();
        let _ = std::process::Command::new("sync").status();
    };
    bench_stores(
        &mut group,
        &executor,
        &pipeline,
        &input,
        &file,
        settled,
        BatchSize::PerIteration,
    );
    let unsynced =
        FileCheckpointStore::new(dir.path().join("unsynced.ckpt")).with_durability(Durability::Never);
    group.bench_function("file_store_unsynced", |b| {
        b.iter_batched(
            || settled(&unsynced),
            |()| {
                black_box(
                    executor
                        .execute_with_checkpoint(&pipeline, input.clone(), &unsynced)
                        .unwrap(),
                )
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    // The log a run that died in its fourth step leaves behind.
    stall.store(true, Ordering::Relaxed);
    file.clear().unwrap();
    let _ = executor
        .execute_with_checkpoint(&pipeline, input.clone(), &file)
        .unwrap();
    let log = file.load().unwrap().unwrap();
    let first_task = Arc::new(Mutex::new(None::<Instant>));
    let seen = Arc::clone(&first_task);
    let timed = PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .observer(observer_fn(move |s| {
            if let Signal::TaskStarted(e) = s
                && !e.restored
            {
                seen.lock().get_or_insert_with(Instant::now);
            }
        }))
        .build()
        .unwrap();
    let mut group = c.benchmark_group("checkpoint/resume_200mb");
    group.sample_size(10);
    group.bench_function("to_first_task", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::fs::write(file.file(), &log).unwrap();
                *first_task.lock() = None;
                let began = Instant::now();
                let run = timed
                    .execute_with_checkpoint(&pipeline, input.clone(), &file)
                    .unwrap();
                let at = first_task.lock().expect("the fourth step started");
                total += at - began;
                drop(run);
            }
            total
        });
    });
    group.finish();
    stall.store(false, Ordering::Relaxed);

    file.clear().unwrap();
    let run = executor.execute_with_checkpoint(&pipeline, input, &file).unwrap();
    let results: usize = run
        .chain()
        .iter()
        .map(|c| c.state().results().values().map(Vec::len).sum::<usize>())
        .sum();
    let bytes = std::fs::metadata(file.file()).unwrap().len();
    println!(
        "checkpoint/200mb_over_4_steps: checkpoint {bytes} bytes for {results} bytes of results: {:.4}x",
        bytes as f64 / results as f64
    );
}

/// The same run plainly, with a memory store and with `file`, which
/// `ready` prepares, untimed, before each sample.
fn bench_stores<T>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    executor: &PipelineExecutor<T>,
    pipeline: &Pipeline<T>,
    input: &T,
    file: &FileCheckpointStore,
    ready: impl Fn(&FileCheckpointStore),
    batch: BatchSize,
) where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    group.bench_function("off", |b| {
        b.iter(|| black_box(executor.execute(pipeline, input.clone()).unwrap()));
    });
    group.bench_function("memory_store", |b| {
        b.iter_batched(
            MemoryCheckpointStore::new,
            |store| {
                black_box(
                    executor
                        .execute_with_checkpoint(pipeline, input.clone(), &store)
                        .unwrap(),
                )
            },
            batch,
        );
    });
    group.bench_function("file_store", |b| {
        b.iter_batched(
            || ready(file),
            |()| {
                black_box(
                    executor
                        .execute_with_checkpoint(pipeline, input.clone(), file)
                        .unwrap(),
                )
            },
            BatchSize::PerIteration,
        );
    });
}

fn small_runs(c: &mut Criterion) {
    let executor = executor();
    let pipeline = small();
    let input = vec![0.5_f64; 16];
    let dir = tempfile::tempdir().unwrap();
    let file = FileCheckpointStore::new(dir.path().join("small.ckpt"));

    let mut group = c.benchmark_group(format!("checkpoint/{SMALL_STEPS}_steps_of_{VALUES}_f64"));
    group.sample_size(20);
    let cleared = |store: &FileCheckpointStore| store.clear().unwrap();
    bench_stores(
        &mut group,
        &executor,
        &pipeline,
        &input,
        &file,
        cleared,
        BatchSize::SmallInput,
    );
    group.finish();
}

/// 1,000 steps of one task returning 1 KB: the writer's time per save, from
/// the `checkpoint_saved` events, first saves against last.
fn growth(_c: &mut Criterion) {
    const STEPS: usize = 1_000;
    let mut b = Pipeline::builder("long");
    for s in 0..STEPS {
        b = b
            .step([Task::from_fn(format!("s{s}"), move |_| Ok(vec![s as u8; 1024]))
                .executor(ExecutorConfig::Inline)]);
    }
    let pipeline = b.build().unwrap();
    let saves = Arc::new(Mutex::new(Vec::with_capacity(STEPS)));
    let heard = Arc::clone(&saves);
    let executor = PipelineExecutor::builder()
        .observer(observer_fn(move |s| {
            if let Signal::CheckpointSaved(e) = s {
                heard.lock().push(e.elapsed);
            }
        }))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = FileCheckpointStore::new(dir.path().join("long.ckpt"));
    let mut ratios = Vec::new();
    for _ in 0..3 {
        file.clear().unwrap();
        saves.lock().clear();
        let began = Instant::now();
        executor
            .execute_with_checkpoint(&pipeline, vec![0_u8], &file)
            .unwrap();
        let wall = began.elapsed();
        let saves = saves.lock();
        let median = |s: &[Duration]| {
            let mut s = s.to_vec();
            s.sort();
            s[s.len() / 2]
        };
        let (first, last) = (median(&saves[..50]), median(&saves[saves.len() - 50..]));
        ratios.push(last.as_secs_f64() / first.as_secs_f64());
        println!(
            "checkpoint/1000_steps_of_1kb: run {:.1} ms; save median of the first 50 {:.1} µs, of the last 50 {:.1} µs: {:.2}x",
            wall.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e6,
            last.as_secs_f64() * 1e6,
            last.as_secs_f64() / first.as_secs_f64()
        );
    }
}

criterion_group!(benches, big_runs, small_runs, growth);
criterion_main!(benches);
