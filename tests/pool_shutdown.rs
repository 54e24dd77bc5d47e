//! Pins that dropping an executor shuts its pools down: the process's thread count returns to where it was.
//!
//! Alone in its binary, because any other test running at the same time
//! would change the count.

mod common;

use std::time::{Duration, Instant};

use common::{BOUND, within};
use conveyor::{ExecutorConfig, Pipeline, PipelineExecutor, Task};

/// The `Threads:` line of `/proc/self/status`.
fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status is readable");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads: line")
}

/// Polls until the count is `expected`, since rayon threads exit
/// asynchronously after their pool is dropped.
fn settles_at(expected: usize, deadline: Duration) -> Result<(), usize> {
    let until = Instant::now() + deadline;
    loop {
        let now = thread_count();
        if now == expected {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(now);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_once(baseline: usize) {
    let executor = PipelineExecutor::builder()
        .executor("four", ExecutorConfig::pool(4))
        .executor("three", ExecutorConfig::pool(3))
        // Rayon's global pool never shuts down; keep it out of the count.
        .default_executor(ExecutorConfig::Inline)
        .build()
        .unwrap();
    let pipeline = Pipeline::builder("p")
        .step(
            (0..16)
                .map(|i| {
                    let t = Task::from_fn(format!("t{i}"), move |c| Ok(*c.input() + i));
                    if i % 2 == 0 { t.on("four") } else { t.on("three") }
                })
                .collect::<Vec<_>>(),
        )
        .step([Task::from_fn("sum", |c| Ok(c.previous().values().sum()))])
        .build()
        .unwrap();
    let run = executor.execute(&pipeline, 0).unwrap();
    assert_eq!(run.output().unwrap().get("sum"), Some(&(0..16).sum()));
    let alive = thread_count();
    assert!(
        alive >= baseline + 7,
        "the pools' 7 threads are not visible: {alive} threads, {baseline} before the build"
    );
    drop(executor);
}

#[test]
fn dropping_the_executor_stops_its_pool_threads() {
    within(BOUND, || {
        let baseline = thread_count();
        for round in 0..2 {
            run_once(baseline);
            if let Err(left) = settles_at(baseline, Duration::from_secs(10)) {
                panic!("round {round}: {left} threads 10 s after the drop, {baseline} before the build");
            }
        }
    });
}
