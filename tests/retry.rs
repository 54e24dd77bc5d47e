//! Retries: attempt counts, signals, exhausted errors, panics, backoff.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conveyor::error::RetrySetting;
use conveyor::signal::Signal;
use conveyor::{
    BuildError, ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, RetryPolicy, Run, Task,
    TaskError, TaskFailure, observer_fn,
};

fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .backoff(0.001, 2.0, 0.01)
        .build()
        .unwrap()
}

/// A task that fails `failures` times, then succeeds, counting its runs.
fn flaky(name: &str, failures: u32, runs: &Arc<AtomicU32>) -> Task<u32> {
    let runs = Arc::clone(runs);
    Task::from_fn(name, move |c| {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(n, c.attempt(), "attempt numbers count from 1");
        if n <= failures {
            Err(TaskError::msg(format!("failure {n}")))
        } else {
            Ok(n)
        }
    })
}

#[test]
fn fails_twice_then_succeeds_in_exactly_three_runs_on_every_executor() {
    for config in [
        ExecutorConfig::Inline,
        ExecutorConfig::pool(2),
        ExecutorConfig::Global,
        ExecutorConfig::ThreadPerTask,
    ] {
        let runs = Arc::new(AtomicU32::new(0));
        let retries = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&retries);
        let executor = PipelineExecutor::builder()
            .default_executor(config.clone())
            .observer(observer_fn(move |s| {
                if let Signal::TaskRetrying(e) = s {
                    seen.lock().unwrap().push((e.attempt, e.max_attempts, e.delay));
                }
            }))
            .build()
            .unwrap();
        let p = Pipeline::builder("flaky")
            .step([flaky("f", 2, &runs).retry(quick(5))])
            .build()
            .unwrap();
        let run = executor.execute(&p, 0).unwrap();
        assert!(run.is_success(), "{config}");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "{config}");
        assert_eq!(run.output().unwrap().get("f"), Some(&3));
        let metrics = run.context("f").unwrap().metrics().task("f").unwrap().clone();
        assert_eq!(metrics.attempts, 3, "{config}");
        let retries = retries.lock().unwrap();
        assert_eq!(
            retries.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            [(1, 5), (2, 5)]
        );
        assert_eq!(retries[0].2, Duration::from_millis(1));
        assert_eq!(retries[1].2, Duration::from_millis(2));
    }
}

#[test]
fn running_out_of_attempts_keeps_every_error_and_signals_it() {
    let runs = Arc::new(AtomicU32::new(0));
    let exhausted = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&exhausted);
    let executor = PipelineExecutor::builder()
        .observer(observer_fn(move |s| {
            if let Signal::TaskRetriesExhausted(e) = s {
                assert_eq!(e.attempt, 3);
                seen.fetch_add(1, Ordering::SeqCst);
            }
        }))
        .build()
        .unwrap();
    let p = Pipeline::builder("p")
        .step([flaky("f", 10, &runs).retry(quick(3))])
        .build()
        .unwrap();
    let run = executor.execute(&p, 0).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(exhausted.load(Ordering::SeqCst), 1);
    match run.errors().next().unwrap() {
        e @ TaskFailure::RetriesExhausted {
            attempts,
            earlier,
            last,
            ..
        } => {
            assert_eq!(*attempts, 3);
            let messages: Vec<(u32, String)> = earlier
                .iter()
                .chain([&**last])
                .map(|e| match e {
                    TaskFailure::Failed { attempt, .. } => (*attempt, e.message()),
                    other => panic!("{other}"),
                })
                .collect();
            assert_eq!(
                messages,
                [
                    (1, "failure 1".to_owned()),
                    (2, "failure 2".to_owned()),
                    (3, "failure 3".to_owned())
                ]
            );
            // The last attempt's failure is the source, with its own error
            // beneath it.
            let source = std::error::Error::source(e).unwrap();
            assert_eq!(source.to_string(), "task `f` in step `f` failed on attempt 3");
            assert_eq!(source.source().unwrap().to_string(), "failure 3");
            assert_eq!(e.message(), "failure 3");
        }
        other => panic!("{other}"),
    }
}

/// Runs `task` as the only task of a one-step pipeline on a default
/// executor.
fn run_alone(task: Task<u32>) -> Run<u32> {
    let p = Pipeline::builder("p").step([task]).build().unwrap();
    PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&p, 0)
        .unwrap()
}

#[test]
fn panics_are_retried_only_when_the_policy_says_so() {
    std::panic::set_hook(Box::new(|_| {}));
    for (retry_panics, expected_runs) in [(false, 1), (true, 2)] {
        let runs = Arc::new(AtomicU32::new(0));
        let r = Arc::clone(&runs);
        let task = Task::from_fn("p", move |_| {
            if r.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("first attempt panics");
            }
            Ok(1)
        });
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .backoff(0.0, 1.0, 0.0)
            .retry_panics(retry_panics)
            .build();
        let run = run_alone(task.retry(policy.unwrap()));
        assert_eq!(runs.load(Ordering::SeqCst), expected_runs);
        assert_eq!(run.is_success(), retry_panics);
        if !retry_panics {
            assert!(matches!(run.errors().next(), Some(TaskFailure::Panicked { .. })));
        }
    }
}

#[test]
fn a_predicate_limits_which_errors_are_retried() {
    let runs = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&runs);
    let task = Task::from_fn("t", move |_| -> Result<u32, TaskError> {
        r.fetch_add(1, Ordering::SeqCst);
        Err(TaskError::msg("permanent"))
    });
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .retry_if(|e| e.to_string() == "transient")
        .build();
    let run = run_alone(task.retry(policy.unwrap()));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(matches!(
        run.errors().next(),
        Some(TaskFailure::Failed { attempt: 1, .. })
    ));
}

/// Runs a step of two tasks on `config`: `retrying`, declared first, fails
/// its first attempt and waits `backoff` seconds; `other` just succeeds.
/// Returns the order in which the attempts ran.
fn retry_beside_other(config: ExecutorConfig, backoff: f64) -> Vec<String> {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (o1, o2) = (Arc::clone(&order), Arc::clone(&order));
    let attempts = Arc::new(AtomicU32::new(0));
    let retrying = Task::from_fn("retrying", move |_| {
        let n = attempts.fetch_add(1, Ordering::SeqCst);
        o1.lock().unwrap().push(format!("retrying#{n}"));
        if n == 0 {
            Err(TaskError::msg("again"))
        } else {
            Ok(0)
        }
    })
    .retry(
        RetryPolicy::builder()
            .max_attempts(2)
            .backoff(backoff, 1.0, backoff)
            .build()
            .unwrap(),
    );
    let other = Task::from_fn("other", move |_| {
        o2.lock().unwrap().push("other".to_owned());
        Ok(1)
    });
    common::within(common::BOUND, move || {
        let executor = PipelineExecutor::builder()
            .default_executor(config)
            .build()
            .unwrap();
        let p = Pipeline::builder("p").step([retrying, other]).build().unwrap();
        assert!(executor.execute(&p, 0).unwrap().is_success());
        order.lock().unwrap().clone()
    })
}

#[test]
fn a_backoff_does_not_pin_the_only_thread_of_a_pool() {
    // One thread, the retrying task started first. If its backoff slept on
    // the thread, its retry would run before `other` got the thread; a
    // backoff that yields runs `other` during the wait.
    assert_eq!(
        retry_beside_other(ExecutorConfig::pool(1), 0.3),
        ["retrying#0", "other", "retrying#1"]
    );
}

#[test]
fn inline_retries_let_the_other_inline_tasks_run_first() {
    assert_eq!(
        retry_beside_other(ExecutorConfig::Inline, 0.05),
        ["retrying#0", "other", "retrying#1"]
    );
}

#[test]
fn bad_retry_settings_are_typed_errors() {
    for (built, expected) in [
        (
            RetryPolicy::builder().max_attempts(0).build(),
            RetrySetting::MaxAttempts,
        ),
        (
            RetryPolicy::builder().backoff(-0.5, 2.0, 1.0).build(),
            RetrySetting::InitialBackoff,
        ),
        (
            RetryPolicy::builder().backoff(f64::NAN, 2.0, 1.0).build(),
            RetrySetting::InitialBackoff,
        ),
        (
            RetryPolicy::builder().backoff(0.1, 2.0, f64::NAN).build(),
            RetrySetting::MaxBackoff,
        ),
    ] {
        assert!(
            matches!(&built, Err(BuildError::InvalidRetry { setting, .. }) if *setting == expected),
            "{expected}: {built:?}"
        );
    }
}

/// A backoff longer than an `Instant` can reach (the policy accepts it: it
/// fits a `Duration`) waits like any long backoff, until the run's
/// deadline, on every executor: no overflow panic on the task's own
/// thread, and no retry at once inline.
#[test]
fn a_backoff_past_what_an_instant_holds_waits_for_the_deadline_on_every_executor() {
    for config in common::every_config() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let (failure, status) = common::within(Duration::from_secs(30), move || {
            let policy = RetryPolicy::builder()
                .max_attempts(2)
                .backoff(1e19, 1.0, 1e19)
                .build()
                .unwrap();
            let task = Task::from_fn("fail", move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(TaskError::msg("no"))
            });
            let p = Pipeline::builder("far")
                .step([task.retry(policy).executor(config)])
                .build()
                .unwrap();
            let executor = PipelineExecutor::builder()
                .custom_executor("own", common::OwnThread)
                .build()
                .unwrap();
            let options = conveyor::RunOptions::new().timeout(Duration::from_millis(200));
            let run = executor.execute_with(&p, 0, &options).unwrap();
            (run.failure().cloned(), run.status())
        });
        assert_eq!(status, ExecutionStatus::Aborted);
        let failure = failure.unwrap();
        assert!(
            matches!(failure, conveyor::RunError::Timeout { .. }),
            "{failure:?}"
        );
        assert!(
            matches!(failure.failures(), [TaskFailure::TimedOut { .. }]),
            "{failure:?}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the retry never came");
    }
}
