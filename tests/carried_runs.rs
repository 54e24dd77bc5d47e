//! A run whose every task is on one pool walks inside that pool: it is
//! entered once, not once per step, whether or not a deadline or a cancel
//! can cut it short. When one does while a task is stuck (even on the
//! thread that walks), the caller outside the pool takes the run over and
//! returns at once, with everything that finished. Runs that mix executors
//! keep their caller outside.
//!
//! Every wait here is bounded: a deadlock fails the test, it never hangs
//! it. Stuck tasks block on a channel that the test closes at its end.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conveyor::error::{CancelledBy, DeadlineScope};
use conveyor::signal::Signal;
use conveyor::{
    CancelToken, ContextId, ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, Run, RunError,
    RunId, RunOptions, Step, Task, TaskFailure, observer_fn,
};
use crossbeam_channel::{Receiver, Sender, bounded};

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
fn runs_that_can_be_cut_short_walk_inside_too() {
    common::within(common::BOUND, || {
        for options in [
            RunOptions::new().timeout(Duration::from_secs(30)),
            RunOptions::new().cancel_token(CancelToken::new()),
            RunOptions::new()
                .timeout(Duration::from_secs(30))
                .cancel_token(CancelToken::new()),
        ] {
            let threads = step_threads(&chain(3), &options);
            assert_eq!(threads.len(), 3);
            assert!(
                threads.iter().all(|t| t.starts_with("conveyor-cpu-")),
                "{threads:?}"
            );
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

/// How long a stuck task blocks when nothing releases it: far longer than
/// any test here may take.
const STUCK: Duration = Duration::from_secs(120);
/// What "returned promptly" means on a loaded 2-core machine: far below
/// [`STUCK`], far above the promised 50 ms.
const PROMPT: Duration = Duration::from_secs(5);

/// A task that blocks until the test closes `release`, after telling
/// `started` that it has begun.
fn stuck(name: &str, release: &Receiver<()>, started: &Sender<()>) -> Task<u64> {
    let (release, started) = (release.clone(), started.clone());
    Task::from_fn(name, move |_| {
        let _ = started.try_send(());
        let _ = release.recv_timeout(STUCK);
        Ok(0)
    })
}

/// `first` (one task), then `second` (a quick task, a stuck one and
/// another quick one), then `third`, which must never run: the run ends in
/// `second`. All on the executor's pool "cpu". `third` bumps `ran`.
fn with_a_stuck_step(release: &Receiver<()>, started: &Sender<()>, ran: &Arc<AtomicUsize>) -> Pipeline<u64> {
    let ran = Arc::clone(ran);
    Pipeline::<u64>::builder("stuck")
        .step(Step::new("first", []).task("a", |c| Ok(c.input() + 1)).on("cpu"))
        .step(
            Step::new(
                "second",
                [
                    Task::from_fn("quick", |c| Ok(c.previous().first().unwrap() * 10)),
                    stuck("stuck", release, started),
                    Task::from_fn("late", |_| Ok(3)),
                ],
            )
            .on("cpu"),
        )
        .step(
            Step::new("third", [])
                .task("never", move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(0)
                })
                .on("cpu"),
        )
        .build()
        .unwrap()
}

fn executor_on(threads: usize) -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .executor("cpu", ExecutorConfig::pool(threads))
        .build()
        .unwrap()
}

/// What a run ended with, apart from ids, times and threads.
fn shape(run: &Run<u64>) -> String {
    let mut report = run.report();
    report.run = RunId::from(0);
    report.started_at_unix_ms = None;
    report.duration_us = 0;
    for step in &mut report.steps {
        step.context = ContextId::from(0);
        (step.started_us, step.finished_us, step.duration_us) = (0, 0, 0);
        for task in &mut step.tasks {
            (
                task.queued_us,
                task.started_us,
                task.finished_us,
                task.duration_us,
                task.thread,
            ) = (0, 0, 0, 0, 0);
        }
    }
    let output: Vec<(String, u64)> = run
        .chain()
        .iter()
        .flat_map(|c| {
            c.state()
                .results()
                .iter()
                .map(|(k, v)| (k.to_owned(), *v))
                .collect::<Vec<_>>()
        })
        .collect();
    format!("{report:?} {output:?}")
}

/// Checks a run that `second` cut short: `second` ended `status`, with
/// `stuck` (and maybe `late`) recorded as `unfinished`, what finished kept
/// its result, and no state of the run is left live in `executor`.
fn check_cut_short(
    run: &Run<u64>,
    executor: &PipelineExecutor<u64>,
    status: ExecutionStatus,
    unfinished: impl Fn(&TaskFailure) -> bool,
) {
    assert_eq!(run.chain().len(), 2, "the run ends in `second`");
    let first = run.context("first").unwrap();
    assert_eq!(first.state().status(), ExecutionStatus::Finished);
    assert_eq!(first.state().results().get("a"), Some(&2));
    let second = run.context("second").unwrap();
    let state = second.state();
    assert_eq!(
        state.results().get("quick"),
        Some(&20),
        "a task that finished keeps its result"
    );
    assert!(state.results().get("stuck").is_none());
    assert_eq!(
        state.results().len() + state.errors().len(),
        3,
        "one outcome per task"
    );
    assert!(state.errors().iter().all(&unfinished), "{:?}", state.errors());
    assert!(
        state.errors().iter().any(|e| e.task() == "stuck"),
        "{:?}",
        state.errors()
    );
    assert_eq!(second.metrics().tasks.len(), 3);
    assert_eq!(state.status(), status);
    assert!(run.context("third").is_none());
    assert!(executor.states().is_empty(), "{:?}", executor.states().live());
}

/// After the test releases the stuck task, the walk left in the pool must
/// stop without running `third` or leaving a state behind. A one-task run
/// on the same pool, which queues behind that walk when the pool has one
/// thread, shows the pool is free again.
fn release_and_check_the_walk_left_behind(
    executor: &PipelineExecutor<u64>,
    release: Sender<()>,
    ran: &AtomicUsize,
) {
    drop(release);
    let after = Pipeline::<u64>::builder("after")
        .step(Step::new("only", []).task("t", |c| Ok(*c.input())).on("cpu"))
        .build()
        .unwrap();
    let run = executor
        .execute_with(&after, 5, &RunOptions::new().timeout(PROMPT))
        .unwrap();
    assert!(run.is_success(), "{:?}", run.failure());
    // Give a walk on a two-thread pool, which need not queue behind the
    // run above, time to come back from its task and stop.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "the walk left behind ran another step"
    );
    assert!(executor.states().is_empty(), "{:?}", executor.states().live());
}

#[test]
fn a_deadline_ends_a_carried_run_while_a_task_is_stuck() {
    common::within(common::BOUND, || {
        for threads in [1, 2] {
            let executor = executor_on(threads);
            let (release, wait) = bounded::<()>(0);
            let (started, begun) = bounded::<()>(1);
            let ran = Arc::new(AtomicUsize::new(0));
            let p = with_a_stuck_step(&wait, &started, &ran);
            let options = RunOptions::new().timeout(Duration::from_millis(300));
            let t0 = Instant::now();
            let run = executor.execute_with(&p, 1, &options).unwrap();
            let took = t0.elapsed();
            assert!(took < PROMPT, "pool({threads}): {took:?}");
            assert!(
                begun.try_recv().is_ok(),
                "pool({threads}): the stuck task started"
            );
            assert_eq!(run.status(), ExecutionStatus::Aborted, "pool({threads})");
            assert!(
                matches!(
                    run.failure(),
                    Some(RunError::Timeout { step, scope: DeadlineScope::Run, failures, .. })
                        if &**step == "second" && failures.iter().any(|f| f.task() == "stuck")
                ),
                "pool({threads}): {:?}",
                run.failure()
            );
            check_cut_short(&run, &executor, ExecutionStatus::Aborted, |e| {
                matches!(e, TaskFailure::TimedOut { .. })
            });
            release_and_check_the_walk_left_behind(&executor, release, &ran);
        }
    });
}

#[test]
fn a_step_deadline_ends_a_carried_run_while_a_task_is_stuck() {
    common::within(common::BOUND, || {
        for threads in [1, 2] {
            let executor = executor_on(threads);
            let (release, wait) = bounded::<()>(0);
            let (started, _begun) = bounded::<()>(1);
            let p = Pipeline::<u64>::builder("step deadline")
                .step(Step::new("first", []).task("a", |c| Ok(c.input() + 1)).on("cpu"))
                .step(
                    Step::new("second", [stuck("stuck", &wait, &started)])
                        .on("cpu")
                        .timeout(Duration::from_millis(200)),
                )
                .build()
                .unwrap();
            let t0 = Instant::now();
            // No cancel token and no run deadline: only the step's own
            // deadline can end this run.
            let run = executor.execute(&p, 1).unwrap();
            assert!(t0.elapsed() < PROMPT, "pool({threads}): {:?}", t0.elapsed());
            assert_eq!(run.status(), ExecutionStatus::Aborted);
            assert!(
                matches!(
                    run.failure(),
                    Some(RunError::Timeout {
                        scope: DeadlineScope::Step,
                        ..
                    })
                ),
                "{:?}",
                run.failure()
            );
            assert_eq!(run.context("first").unwrap().state().results().get("a"), Some(&2));
            assert!(executor.states().is_empty());
            drop(release);
        }
    });
}

#[test]
fn a_cancel_ends_a_carried_run_while_a_task_is_stuck() {
    common::within(common::BOUND, || {
        for threads in [1, 2] {
            let executor = executor_on(threads);
            let (release, wait) = bounded::<()>(0);
            let (started, begun) = bounded::<()>(1);
            let ran = Arc::new(AtomicUsize::new(0));
            let p = with_a_stuck_step(&wait, &started, &ran);
            let token = CancelToken::new();
            let canceller = {
                let token = token.clone();
                std::thread::spawn(move || {
                    // Cancel once the task is stuck, from another thread.
                    let stuck = begun.recv_timeout(PROMPT).is_ok();
                    token.cancel();
                    stuck
                })
            };
            let options = RunOptions::new().cancel_token(token);
            let t0 = Instant::now();
            let run = executor.execute_with(&p, 1, &options).unwrap();
            assert!(t0.elapsed() < PROMPT, "pool({threads}): {:?}", t0.elapsed());
            assert!(canceller.join().unwrap(), "pool({threads}): the task got stuck");
            assert_eq!(run.status(), ExecutionStatus::Cancelled, "pool({threads})");
            assert!(
                matches!(
                    run.failure(),
                    Some(RunError::Cancelled { step, by: CancelledBy::Token }) if &**step == "second"
                ),
                "pool({threads}): {:?}",
                run.failure()
            );
            check_cut_short(&run, &executor, ExecutionStatus::Cancelled, |e| {
                matches!(e, TaskFailure::Cancelled { .. })
            });
            release_and_check_the_walk_left_behind(&executor, release, &ran);
        }
    });
}

#[test]
fn a_nested_watched_run_with_a_stuck_task_lets_both_runs_return() {
    common::within(common::BOUND, || {
        for threads in [1, 2] {
            let executor = Arc::new(executor_on(threads));
            let (release, wait) = bounded::<()>(0);
            let (started, begun) = bounded::<()>(1);
            let (inner_tx, inner_rx) = bounded::<(ExecutionStatus, bool)>(1);
            let inner = Pipeline::<u64>::builder("inner")
                .step(Step::new("inner", [stuck("stuck", &wait, &started)]).on("cpu"))
                .build()
                .unwrap();
            let nested = {
                let executor = Arc::clone(&executor);
                Task::from_fn("nested", move |c| {
                    let options = RunOptions::new().timeout(Duration::from_millis(100));
                    let run = executor.execute_with(&inner, *c.input(), &options).unwrap();
                    let timed_out = matches!(run.failure(), Some(RunError::Timeout { .. }));
                    let _ = inner_tx.send((run.status(), timed_out));
                    Ok(1)
                })
            };
            let outer = Pipeline::<u64>::builder("outer")
                .step(Step::new("first", []).task("a", |c| Ok(c.input() + 1)).on("cpu"))
                .step(Step::new("nests", [nested]).on("cpu"))
                .build()
                .unwrap();
            let options = RunOptions::new().timeout(Duration::from_millis(400));
            let t0 = Instant::now();
            let run = executor.execute_with(&outer, 1, &options).unwrap();
            assert!(t0.elapsed() < PROMPT, "pool({threads}): {:?}", t0.elapsed());
            assert!(
                begun.recv_timeout(PROMPT).is_ok(),
                "pool({threads}): the inner task ran"
            );
            assert_eq!(run.context("first").unwrap().state().results().get("a"), Some(&2));
            // The inner run ends at its own deadline when a second worker
            // ran its stuck task; otherwise the outer deadline ended the
            // outer run while the inner one waits on the stuck task.
            match run.status() {
                ExecutionStatus::Finished => {}
                ExecutionStatus::Aborted => assert!(
                    matches!(run.failure(), Some(RunError::Timeout { step, .. }) if &**step == "nests"),
                    "{:?}",
                    run.failure()
                ),
                other => panic!("pool({threads}): {other:?}"),
            }
            drop(release);
            // The inner run returns: at its deadline, or (when its own
            // thread ran the stuck task, which nothing can interrupt) as
            // soon as the task is released, finished.
            let (inner_status, inner_timed_out) = inner_rx
                .recv_timeout(PROMPT)
                .expect("the inner run returns once its task is released");
            assert!(
                inner_status == ExecutionStatus::Finished
                    || (inner_status == ExecutionStatus::Aborted && inner_timed_out),
                "pool({threads}): {inner_status:?}"
            );
            // The outer walk left behind stops; no state of either run is
            // left.
            let after = chain(2);
            let options = RunOptions::new().timeout(PROMPT);
            assert!(executor.execute_with(&after, 1, &options).unwrap().is_success());
            std::thread::sleep(Duration::from_millis(100));
            assert!(executor.states().is_empty(), "pool({threads})");
        }
    });
}

#[test]
fn a_watched_run_that_finishes_matches_the_same_run_unwatched() {
    common::within(common::BOUND, || {
        let executor = executor_on(2);
        let p = Pipeline::<u64>::builder("wide")
            .step(
                Step::new(
                    "fan",
                    (0..8).map(|i| Task::from_fn(format!("f{i}"), move |c| Ok(c.input() + i))),
                )
                .on("cpu"),
            )
            .step(
                Step::new("sum", [])
                    .task("total", |c| Ok(c.previous().values().sum()))
                    .on("cpu"),
            )
            .step(
                Step::new("check", [])
                    .task("double", |c| Ok(c.previous().get("total").unwrap() * 2))
                    .task("fails", |_| Err(conveyor::TaskError::msg("expected")))
                    .strategy(conveyor::EvaluationStrategy::AnyMustSucceed)
                    .on("cpu")
                    .timeout(Duration::from_secs(3600)),
            )
            .build()
            .unwrap();
        let plain = executor.execute(&p, 10).unwrap();
        assert!(plain.is_success(), "{:?}", plain.failure());
        assert_eq!(plain.output().unwrap().get("double"), Some(&(2 * (80 + 28))));
        for options in [
            RunOptions::new().timeout(Duration::from_secs(3600)),
            RunOptions::new().cancel_token(CancelToken::new()),
        ] {
            let watched = executor.execute_with(&p, 10, &options).unwrap();
            assert_eq!(shape(&watched), shape(&plain));
        }
        assert!(executor.states().is_empty());
    });
}

#[test]
fn a_watched_run_on_a_one_thread_pool_never_leaves_it() {
    common::within(common::BOUND, || {
        let caller = std::thread::current().id();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut b = Pipeline::<u64>::builder("chain");
        for i in 0..6 {
            let seen = Arc::clone(&seen);
            b = b.step(
                Step::new(format!("s{i}"), [])
                    .task(format!("t{i}"), move |c| {
                        seen.lock()
                            .unwrap()
                            .push((std::thread::current().id(), rayon::current_thread_index()));
                        Ok(c.input() + 1)
                    })
                    .on("cpu"),
            );
        }
        let p = b.build().unwrap();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&starts);
        let executor = PipelineExecutor::builder()
            .executor("cpu", ExecutorConfig::pool(1))
            .observer(observer_fn(move |s| {
                if let Signal::ContextStarted(_) = s {
                    record.lock().unwrap().push(std::thread::current().id());
                }
            }))
            .build()
            .unwrap();
        let token = CancelToken::new();
        let options = RunOptions::new()
            .timeout(Duration::from_secs(3600))
            .cancel_token(token);
        let run = executor.execute_with(&p, 0, &options).unwrap();
        assert!(run.is_success(), "{:?}", run.failure());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        let (worker, index) = seen[0];
        assert_ne!(worker, caller, "the caller ran a task");
        assert_eq!(index, Some(0), "tasks run on the pool's worker");
        assert!(seen.iter().all(|&(t, _)| t == worker), "{seen:?}");
        // Every step started on that worker too: the walk entered the
        // pool once and stayed there.
        let starts = starts.lock().unwrap();
        assert_eq!(starts.len(), 6);
        assert!(starts.iter().all(|&t| t == worker), "{starts:?}");
    });
}

#[test]
fn a_take_over_leaves_no_live_state() {
    common::within(common::BOUND, || {
        let executor = Arc::new(executor_on(1));
        let (release, wait) = bounded::<()>(0);
        let (started, begun) = bounded::<()>(1);
        let ran = Arc::new(AtomicUsize::new(0));
        let p = with_a_stuck_step(&wait, &started, &ran);
        let watcher = {
            let executor = Arc::clone(&executor);
            std::thread::spawn(move || {
                // While the task is stuck, its context and the finished
                // one before it are live.
                begun.recv_timeout(PROMPT).ok()?;
                Some(executor.states().len())
            })
        };
        let run = executor
            .execute_with(&p, 1, &RunOptions::new().timeout(Duration::from_millis(500)))
            .unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        let live = watcher.join().unwrap().expect("the task got stuck");
        assert_eq!(live, 2, "first and second are live while second runs");
        assert_eq!(executor.states().len(), 0, "the caller removed the run's states");
        release_and_check_the_walk_left_behind(&executor, release, &ran);
        // Many runs taken over in turn leave nothing behind either.
        for _ in 0..20 {
            let (release, wait) = bounded::<()>(0);
            let p = with_a_stuck_step(&wait, &started, &ran);
            let run = executor
                .execute_with(&p, 1, &RunOptions::new().timeout(Duration::from_millis(20)))
                .unwrap();
            assert_eq!(run.status(), ExecutionStatus::Aborted);
            drop(release);
        }
        release_and_check_the_walk_left_behind(&executor, bounded(0).0, &ran);
    });
}

#[test]
fn a_carried_run_whose_pool_is_busy_still_ends_on_time() {
    common::within(common::BOUND, || {
        let executor = executor_on(1);
        let (release, wait) = bounded::<()>(0);
        let (started, begun) = bounded::<()>(1);
        let ran = Arc::new(AtomicUsize::new(0));
        // The first run leaves a task stuck on the pool's only thread.
        let p = with_a_stuck_step(&wait, &started, &ran);
        let short = RunOptions::new().timeout(Duration::from_millis(100));
        executor.execute_with(&p, 1, &short).unwrap();
        assert!(begun.try_recv().is_ok());
        // The next run's walk cannot even start: it still ends at its
        // deadline, before its first step.
        let t0 = Instant::now();
        let run = executor.execute_with(&chain(3), 1, &short).unwrap();
        assert!(t0.elapsed() < PROMPT, "{:?}", t0.elapsed());
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        assert!(
            matches!(run.failure(), Some(RunError::Timeout { step, .. }) if &**step == "s0"),
            "{:?}",
            run.failure()
        );
        assert_eq!(run.chain().len(), 0);
        // And a cancelled one likewise.
        let token = CancelToken::new();
        let cancel = {
            let token = token.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                token.cancel();
            })
        };
        let run = executor
            .execute_with(&chain(3), 1, &RunOptions::new().cancel_token(token))
            .unwrap();
        cancel.join().unwrap();
        assert_eq!(run.status(), ExecutionStatus::Cancelled);
        assert!(executor.states().is_empty());
        release_and_check_the_walk_left_behind(&executor, release, &ran);
    });
}
