//! What resilience costs: a retried task against one that succeeds at its
//! first attempt, and a panicking task against a succeeding one.
//!
//! Each group runs one-task steps inline, so the figure is the engine's own
//! cost per task without any pool traffic. The retry's backoff is zero, so
//! the difference between `first_attempt` and `one_retry` is the price of
//! a failed attempt plus the retry machinery, not a sleep. Run with
//! `cargo bench --bench resilience`.
//!
//! Two groups measure the sound waits: `retry_10k` (10,000 tasks that each
//! fail once, on `pool(2)`) and `deadline_wait` (the CPU a caller spends
//! waiting 2 s for a stuck task under a deadline).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, RetryPolicy, Step, Task, TaskError};
use cpu_time::ProcessTime;
use criterion::{Criterion, criterion_group, criterion_main};

fn executor() -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .default_executor(ExecutorConfig::Inline)
        .build()
        .unwrap()
}

fn one_task(task: Task<u64>) -> Pipeline<u64> {
    Pipeline::builder("bench").step([task]).build().unwrap()
}

fn retries(c: &mut Criterion) {
    let executor = executor();
    let no_wait = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.0, 1.0, 0.0)
        .build()
        .unwrap();
    let first = one_task(Task::from_fn("t", |c| Ok(black_box(*c.input()))).retry(no_wait.clone()));
    // Fails every odd call: with two attempts, every run takes exactly one
    // retry and then succeeds.
    let calls = Arc::new(AtomicU64::new(0));
    let retried = one_task(
        Task::from_fn("t", move |c| {
            if calls.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
                Err(TaskError::msg("transient"))
            } else {
                Ok(black_box(*c.input()))
            }
        })
        .retry(no_wait),
    );
    let mut group = c.benchmark_group("retry");
    group.bench_function("first_attempt", |b| {
        b.iter(|| executor.execute(&first, 1).unwrap())
    });
    group.bench_function("one_retry", |b| {
        b.iter(|| {
            let run = executor.execute(&retried, 1).unwrap();
            assert!(run.is_success());
            run
        })
    });
    group.finish();
}

fn panics(c: &mut Criterion) {
    // The default hook would print every caught panic; silence it so the
    // figure is the engine's cost, not the terminal's.
    std::panic::set_hook(Box::new(|_| {}));
    let executor = executor();
    let ok = one_task(Task::from_fn("t", |c| Ok(black_box(*c.input()))));
    let panicking = one_task(Task::from_fn("t", |c| {
        if black_box(*c.input()) > 0 {
            panic!("boom");
        }
        Ok(0)
    }));
    let mut group = c.benchmark_group("panic");
    group.bench_function("succeeding_task", |b| {
        b.iter(|| executor.execute(&ok, 1).unwrap())
    });
    group.bench_function("panicking_task", |b| {
        b.iter(|| executor.execute(&panicking, 1).unwrap())
    });
    group.finish();
    let _ = std::panic::take_hook();
}

/// 10,000 tasks on `pool(2)` that each fail once with a 5 ms backoff,
/// against the same tasks succeeding at once. Retries wait in the group's
/// delayed list, not on a worker, so the difference is about one backoff
/// plus a second round, not 10,000 backoffs.
fn retry_10k(c: &mut Criterion) {
    let executor = PipelineExecutor::builder()
        .default_executor(ExecutorConfig::pool(2))
        .build()
        .unwrap();
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.005, 1.0, 0.005)
        .build()
        .unwrap();
    let step = |fail: bool| {
        let tasks: Vec<Task<u64>> = (0..10_000)
            .map(|i| {
                Task::from_fn(format!("t{i}"), move |c| {
                    if fail && c.attempt() == 1 {
                        Err(TaskError::msg("transient"))
                    } else {
                        Ok(black_box(*c.input()))
                    }
                })
                .retry(policy.clone())
            })
            .collect();
        Pipeline::builder("retry_10k")
            .step(Step::new("all", tasks))
            .build()
            .unwrap()
    };
    let (clean, flaky) = (step(false), step(true));
    let mut group = c.benchmark_group("retry_10k");
    group.sample_size(10);
    group.bench_function("no_failures", |b| b.iter(|| executor.execute(&clean, 1).unwrap()));
    group.bench_function("each_fails_once_5ms", |b| {
        b.iter(|| {
            let run = executor.execute(&flaky, 1).unwrap();
            assert!(run.is_success());
            run
        })
    });
    group.finish();
}

/// The CPU the calling thread burns while it waits 2 s for a stuck task
/// under a deadline. The figure reported is CPU time per wait (criterion's
/// "time" here is process CPU, measured with `iter_custom`); the stuck
/// task itself sleeps on a channel and costs nothing.
fn deadline_wait_cpu(c: &mut Criterion) {
    let executor = PipelineExecutor::builder()
        .default_executor(ExecutorConfig::pool(1))
        .build()
        .unwrap();
    let mut group = c.benchmark_group("deadline_wait");
    group.sample_size(10);
    group.bench_function("cpu_of_a_2s_wait", |b| {
        b.iter_custom(|iters| {
            let mut cpu = Duration::ZERO;
            for _ in 0..iters {
                let (release, wait) = crossbeam_channel::bounded::<()>(0);
                let stuck = Task::from_fn("stuck", move |_| {
                    let _ = wait.recv_timeout(Duration::from_secs(10));
                    Ok(0)
                });
                let p = Pipeline::builder("wait")
                    .step(Step::new("s", [stuck]).timeout(Duration::from_secs(2)))
                    .build()
                    .unwrap();
                let before = ProcessTime::now();
                let run = executor.execute(&p, 0).unwrap();
                cpu += before.elapsed();
                assert!(!run.is_success());
                drop(release);
            }
            cpu
        })
    });
    group.finish();
}

criterion_group!(benches, retries, panics, retry_10k, deadline_wait_cpu);
criterion_main!(benches);
