//! Cancelling a run from another thread, and deadlines per step and per run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conveyor::error::DeadlineScope;
use conveyor::{
    CancelToken, ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, RunError, RunOptions, Step,
    Task, TaskFailure,
};
use crossbeam_channel::{Receiver, bounded};

/// A task that spins until the run is cancelled, reporting that it started.
fn cooperative(name: String, started: crossbeam_channel::Sender<()>) -> Task<u64> {
    Task::from_fn(name, move |c| {
        let _ = started.try_send(());
        let until = Instant::now() + common::BOUND;
        while !c.is_cancelled() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(0)
    })
}

#[test]
fn cancel_during_a_long_step_returns_promptly_and_skips_unstarted_tasks() {
    common::within(common::BOUND, || {
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::pool(2))
            .build()
            .unwrap();
        let (started_tx, started_rx) = bounded(1000);
        let ran_later = Arc::new(AtomicUsize::new(0));
        let later = Arc::clone(&ran_later);
        let tasks: Vec<_> = (0..200)
            .map(|i| cooperative(format!("t{i}"), started_tx.clone()))
            .collect();
        let p = Pipeline::builder("long")
            .step(Step::new("long", tasks))
            .step([Task::from_fn("after", move |_| {
                later.fetch_add(1, Ordering::SeqCst);
                Ok(1)
            })])
            .build()
            .unwrap();
        let token = CancelToken::new();
        let remote = token.clone();
        std::thread::spawn(move || {
            started_rx.recv_timeout(common::BOUND).expect("a task started");
            remote.cancel();
        });
        let begun = Instant::now();
        let run = executor
            .execute_with(&p, 0, &RunOptions::new().cancel_token(token))
            .unwrap();
        assert!(begun.elapsed() < common::BOUND);
        assert_eq!(run.status(), ExecutionStatus::Cancelled);
        assert_eq!(
            ran_later.load(Ordering::SeqCst),
            0,
            "no step starts after a cancel"
        );
        let long = run.context("long").unwrap();
        assert_eq!(long.state().status(), ExecutionStatus::Cancelled);
        let state = long.state();
        assert_eq!(
            state.results().len() + state.errors().len(),
            200,
            "every task accounted for"
        );
        let cancelled = state
            .errors()
            .iter()
            .filter(|e| matches!(e, TaskFailure::Cancelled { attempts: 0, .. }))
            .count();
        assert!(cancelled > 0, "tasks not yet started count as cancelled");
        assert!(matches!(run.output(), Err(RunError::Cancelled { .. })));
        assert!(executor.states().is_empty());
    });
}

#[test]
fn a_token_cancelled_before_the_run_runs_nothing() {
    let executor = PipelineExecutor::builder().build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let p = Pipeline::builder("p")
        .step([Task::from_fn("t", move |_| {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(1u8)
        })])
        .build()
        .unwrap();
    let token = CancelToken::new();
    token.cancel();
    let run = executor
        .execute_with(&p, 0, &RunOptions::new().cancel_token(token))
        .unwrap();
    assert_eq!(run.status(), ExecutionStatus::Cancelled);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// The failure of a run that hit a deadline: the run itself comes back,
/// aborted, with every step that finished.
fn timed_out(run: Result<conveyor::Run<u64>, RunError>) -> RunError {
    let run = run.expect("a deadline returns the run, not an error");
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    let failure = run.failure().cloned().expect("a timed-out run says why");
    assert!(matches!(failure, RunError::Timeout { .. }), "{failure}");
    failure
}

/// A task that blocks until `release` has a message or is dropped: a task
/// that "never finishes" for as long as the test wants.
fn stuck(name: &str, release: &Receiver<()>) -> Task<u64> {
    let release = release.clone();
    Task::from_fn(name, move |_| {
        let _ = release.recv_timeout(common::BOUND);
        Ok(7)
    })
}

#[test]
fn a_step_deadline_returns_while_a_task_is_stuck_and_the_executor_stays_usable() {
    common::within(common::BOUND, || {
        let (release_tx, release_rx) = bounded::<()>(0);
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::pool(2))
            .build()
            .unwrap();
        let p = Pipeline::builder("p")
            .step(
                Step::new(
                    "slow",
                    [stuck("stuck", &release_rx), Task::from_fn("quick", |_| Ok(1))],
                )
                .timeout(Duration::from_millis(100)),
            )
            .build()
            .unwrap();
        let begun = Instant::now();
        let err = timed_out(executor.execute(&p, 0));
        assert!(begun.elapsed() < common::BOUND);
        match &err {
            RunError::Timeout {
                step,
                scope,
                limit,
                failures,
            } => {
                assert_eq!(
                    (&**step, *scope, *limit),
                    ("slow", DeadlineScope::Step, Duration::from_millis(100))
                );
                assert!(
                    matches!(&failures[..], [TaskFailure::TimedOut { task, scope: DeadlineScope::Step, .. }] if &**task == "stuck"),
                    "{failures:?}"
                );
            }
            other => panic!("{other}"),
        }
        assert!(executor.states().is_empty());
        // One pool thread is still held by the stuck task; the other serves.
        let p2 = Pipeline::builder("p2")
            .step([Task::from_fn("ok", |_| Ok(5))])
            .build()
            .unwrap();
        assert!(executor.execute(&p2, 0).unwrap().is_success());
        drop(release_tx);
    });
}

#[test]
fn a_run_deadline_covers_all_steps() {
    common::within(common::BOUND, || {
        let (release_tx, release_rx) = bounded::<()>(0);
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::ThreadPerTask)
            .build()
            .unwrap();
        let p = Pipeline::builder("p")
            .step([Task::from_fn("fast", |_| Ok(1))])
            .step([stuck("stuck", &release_rx)])
            .build()
            .unwrap();
        let options = RunOptions::new().timeout(Duration::from_millis(150));
        let err = timed_out(executor.execute_with(&p, 0, &options));
        assert!(
            matches!(&err, RunError::Timeout { scope: DeadlineScope::Run, step, .. } if &**step == "stuck"),
            "{err}"
        );
        drop(release_tx);
    });
}

#[test]
fn a_deadline_skips_tasks_that_have_not_started() {
    common::within(common::BOUND, || {
        let (release_tx, release_rx) = bounded::<()>(0);
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::pool(1))
            .build()
            .unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![stuck("stuck", &release_rx)];
        for i in 0..50 {
            let s = Arc::clone(&started);
            tasks.push(Task::from_fn(format!("t{i}"), move |_| {
                s.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }));
        }
        let p = Pipeline::builder("p")
            .step(Step::new("s", tasks).timeout(Duration::from_millis(50)))
            .build()
            .unwrap();
        let err = timed_out(executor.execute(&p, 0));
        let RunError::Timeout { failures, .. } = err else {
            panic!("{err}")
        };
        // Every task that did not finish is accounted for as timed out.
        assert_eq!(
            failures
                .iter()
                .filter(|e| matches!(e, TaskFailure::TimedOut { .. }))
                .count()
                + started.load(Ordering::SeqCst),
            51
        );
        drop(release_tx);
        // Once released, the queued tasks see the deadline and do not run.
        std::thread::sleep(Duration::from_millis(50));
        // The one worker was held by the stuck task from the start, so none
        // of the others may have run.
        assert_eq!(
            started.load(Ordering::SeqCst),
            0,
            "tasks ran after their deadline"
        );
    });
}

#[test]
fn panicking_observers_on_the_cancel_hooks_do_not_stop_a_cancelled_run() {
    use conveyor::observer_fn;
    use conveyor::signal::Signal;
    common::quiet_planned_panics();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let executor = PipelineExecutor::builder()
        .observer(observer_fn(|s| {
            if matches!(s, Signal::ContextCancelled(_) | Signal::PipelineStopped(_)) {
                panic!("{}", common::PLANNED);
            }
        }))
        .observer(observer_fn(move |s| {
            let name = match s {
                Signal::ContextCancelled(_) => "context_cancelled",
                Signal::PipelineStopped(_) => "pipeline_stopped",
                Signal::PipelineFinished(_) => "pipeline_finished",
                _ => return,
            };
            log.lock().unwrap().push(name);
        }))
        .build()
        .unwrap();
    let p = Pipeline::builder("p")
        .step([Task::from_fn("halt", |_| Err(conveyor::TaskError::stop("done")))])
        .step([Task::from_fn("never", |_| Ok(0u8))])
        .build()
        .unwrap();
    let run = executor.execute(&p, 0).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Cancelled);
    // As in the original: a cancelled run sends pipeline_stopped, not
    // pipeline_finished, and a panic in the first observer reaches neither.
    assert_eq!(*seen.lock().unwrap(), ["context_cancelled", "pipeline_stopped"]);
}
