//! A run whose every task is on one pool, and that nothing can cut short,
//! walks inside that pool: it is entered once, not once per step. Runs that
//! mix executors, or that a deadline or a cancel can end, keep their caller
//! outside.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::signal::Signal;
use conveyor::{CancelToken, ExecutorConfig, Pipeline, PipelineExecutor, RunOptions, Step, observer_fn};

/// The thread name each step's context started on.
fn step_threads(pipeline: &Pipeline<u64>, options: &RunOptions) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let executor = PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .observer(observer_fn(move |s| {
            if let Signal::ContextStarted(_) = s {
                let name = std::thread::current().name().unwrap_or("").to_owned();
                record.lock().unwrap().push(name);
            }
        }))
        .build()
        .unwrap();
    let run = executor.execute_with(pipeline, 1, options).unwrap();
    assert!(run.is_success(), "{:?}", run.failure());
    assert!(executor.states().is_empty());
    seen.lock().unwrap().clone()
}

fn chain(steps: usize) -> Pipeline<u64> {
    let mut b = Pipeline::<u64>::builder("chain");
    for i in 0..steps {
        b = b.step(
            Step::new(format!("s{i}"), [])
                .task(format!("t{i}"), |c| Ok(c.input() + 1))
                .on("cpu"),
        );
    }
    b.build().unwrap()
}

#[test]
fn a_run_on_one_pool_walks_inside_it() {
    common::within(common::BOUND, || {
        let threads = step_threads(&chain(5), &RunOptions::new());
        assert_eq!(threads.len(), 5);
        assert!(
            threads.iter().all(|t| t.starts_with("conveyor-cpu-")),
            "{threads:?}"
        );
    });
}

#[test]
fn runs_that_can_be_cut_short_keep_their_caller_outside() {
    common::within(common::BOUND, || {
        let caller = std::thread::current().name().unwrap_or("").to_owned();
        for options in [
            RunOptions::new().timeout(Duration::from_secs(30)),
            RunOptions::new().cancel_token(CancelToken::new()),
        ] {
            let threads = step_threads(&chain(3), &options);
            assert!(threads.iter().all(|t| *t == caller), "{threads:?}");
        }
    });
}

#[test]
fn a_run_that_mixes_executors_keeps_its_caller_outside() {
    common::within(common::BOUND, || {
        let caller = std::thread::current().name().unwrap_or("").to_owned();
        let mixed = Pipeline::<u64>::builder("mixed")
            .step_with(|s| s.task("pooled", |c| Ok(c.input() + 1)).on("cpu"))
            .step_with(|s| s.task("here", |c| Ok(c.input() + 2)).on("cpu"))
            .step(Step::new("inline", []).task("inline", |c| Ok(c.input() + 3)))
            .build()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let executor = PipelineExecutor::builder()
            .executor("cpu", ExecutorConfig::pool(2))
            .default_executor(ExecutorConfig::Inline)
            .observer(observer_fn(move |s| {
                if let Signal::ContextStarted(_) = s {
                    record
                        .lock()
                        .unwrap()
                        .push(std::thread::current().name().unwrap_or("").to_owned());
                }
            }))
            .build()
            .unwrap();
        assert!(executor.execute(&mixed, 0).unwrap().is_success());
        assert!(seen.lock().unwrap().iter().all(|t| *t == caller));
    });
}
