//! What resilience costs: a retried task against one that succeeds at its
//! first attempt, and a panicking task against a succeeding one.
//!
//! Each group runs one-task steps inline, so the figure is the engine's own
//! cost per task without any pool traffic. The retry's backoff is zero, so
//! the difference between `first_attempt` and `one_retry` is the price of
//! a failed attempt plus the retry machinery, not a sleep. Run with
//! `cargo bench --bench resilience`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, RetryPolicy, Task, TaskError};
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

criterion_group!(benches, retries, panics);
criterion_main!(benches);
