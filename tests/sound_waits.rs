//! Waits that never nest and always end: retries that do not pile up on a
//! worker's stack, deadlines and cancels that hold from every kind of
//! caller, and user code that never takes the process down.
//!
//! The bounds below are generous (seconds where the promise is
//! milliseconds) so that a slow shared machine cannot fail them; what they
//! catch is a wait that lasts as long as a stuck task, i.e. 30 s.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conveyor::error::DeadlineScope;
use conveyor::{
    BuildError, CancelToken, CustomExecutor, EvaluationStrategy, ExecutionStatus, ExecutorConfig, Job,
    Pipeline, PipelineExecutor, RetryPolicy, RunError, RunOptions, Step, Task, TaskError, TaskFailure,
};
use crossbeam_channel::{Receiver, bounded};

/// How long a stuck task blocks when nothing releases it.
const STUCK: Duration = Duration::from_secs(30);
/// What "returned promptly" means on a loaded 2-core machine; far below
/// [`STUCK`], far above the promised 50 ms.
const PROMPT: Duration = Duration::from_secs(5);

fn stuck(name: &str, release: &Receiver<()>) -> Task<u64> {
    let release = release.clone();
    Task::from_fn(name, move |_| {
        let _ = release.recv_timeout(STUCK);
        Ok(7)
    })
}

fn fail_once(count: usize) -> Vec<Task<u64>> {
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .backoff(0.005, 1.0, 0.005)
        .build()
        .unwrap();
    (0..count)
        .map(|i| {
            Task::from_fn(format!("t{i}"), |c| {
                if c.attempt() == 1 {
                    Err(TaskError::msg("first attempt fails"))
                } else {
                    Ok(1)
                }
            })
            .retry(policy.clone())
        })
        .collect()
}

#[test]
fn ten_thousand_tasks_that_each_fail_once_finish_on_every_pool_size() {
    common::within(common::BOUND, || {
        for threads in [1, 2, 4] {
            let executor = PipelineExecutor::builder()
                .default_executor(ExecutorConfig::pool(threads))
                .build()
                .unwrap();
            let p = Pipeline::builder("retries")
                .step(Step::new("all", fail_once(10_000)))
                .build()
                .unwrap();
            let run = executor.execute(&p, 0).unwrap();
            assert!(run.is_success(), "pool({threads}): {:?}", run.failure());
            let metrics = &run.context("all").unwrap().metrics().tasks;
            assert_eq!(metrics.len(), 10_000);
            assert!(metrics.iter().all(|m| m.attempts == 2 && m.succeeded));
            assert_eq!(run.output().unwrap().len(), 10_000);
            assert!(executor.states().is_empty());
        }
    });
}

#[test]
fn retries_also_finish_under_a_deadline_and_beside_other_groups() {
    common::within(common::BOUND, || {
        let executor = PipelineExecutor::builder()
            .executor("a", ExecutorConfig::pool(2))
            .executor("b", ExecutorConfig::pool(1))
            .build()
            .unwrap();
        let tasks: Vec<Task<u64>> = fail_once(2_000)
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.on(if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let p = Pipeline::builder("retries")
            .step(Step::new("all", tasks).timeout(Duration::from_secs(50)))
            .build()
            .unwrap();
        let run = executor.execute(&p, 0).unwrap();
        assert!(run.is_success(), "{:?}", run.failure());
        assert_eq!(run.output().unwrap().len(), 2_000);
    });
}

fn deadline_on(executor: &PipelineExecutor<u64>, config: ExecutorConfig) -> Duration {
    let (release, wait) = bounded::<()>(0);
    let p = Pipeline::builder("deadline")
        .step(
            Step::new(
                "s",
                [
                    stuck("stuck", &wait).executor(config.clone()),
                    Task::from_fn("quick", |_| Ok(1)),
                ],
            )
            .timeout(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let begun = Instant::now();
    let run = executor.execute(&p, 0).unwrap();
    let took = begun.elapsed();
    assert_eq!(run.status(), ExecutionStatus::Aborted, "{config}");
    assert!(
        matches!(
            run.failure(),
            Some(RunError::Timeout {
                scope: DeadlineScope::Step,
                ..
            })
        ),
        "{config}: {:?}",
        run.failure()
    );
    assert!(
        run.errors()
            .any(|f| matches!(f, TaskFailure::TimedOut { task, .. } if task.as_ref() == "stuck"))
    );
    assert!(executor.states().is_empty());
    drop(release);
    took
}

struct OneThread(crossbeam_channel::Sender<Job>);

impl OneThread {
    fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        std::thread::spawn(move || {
            for job in rx {
                job.run();
            }
        });
        Self(tx)
    }
}

impl CustomExecutor for OneThread {
    fn spawn(&self, job: Job) {
        let _ = self.0.send(job);
    }
}

#[test]
fn a_deadline_returns_promptly_on_every_strategy_with_a_stuck_task() {
    common::within(common::BOUND, || {
        let executor = PipelineExecutor::builder()
            .custom_executor("one", OneThread::new())
            .build()
            .unwrap();
        for config in [
            ExecutorConfig::pool(1),
            ExecutorConfig::pool(2),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
            ExecutorConfig::custom("one"),
        ] {
            let took = deadline_on(&executor, config.clone());
            assert!(took < PROMPT, "{config}: {took:?}");
        }
    });
}

#[test]
fn a_cancel_returns_promptly_while_a_task_is_stuck() {
    common::within(common::BOUND, || {
        for config in [
            ExecutorConfig::pool(1),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
        ] {
            let (release, wait) = bounded::<()>(0);
            let executor = PipelineExecutor::builder()
                .default_executor(config.clone())
                .build()
                .unwrap();
            let p = Pipeline::builder("cancel")
                .step([stuck("stuck", &wait)])
                .step([Task::from_fn("never", |_| Ok(0))])
                .build()
                .unwrap();
            let token = CancelToken::new();
            let remote = token.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                remote.cancel();
            });
            let begun = Instant::now();
            let run = executor
                .execute_with(&p, 0, &RunOptions::new().cancel_token(token))
                .unwrap();
            assert!(begun.elapsed() < PROMPT, "{config}: {:?}", begun.elapsed());
            assert_eq!(run.status(), ExecutionStatus::Cancelled, "{config}");
            assert!(run.errors().any(|f| matches!(f, TaskFailure::Cancelled { .. })));
            assert_eq!(run.chain().len(), 1, "no step starts after a cancel");
            assert!(executor.states().is_empty());
            drop(release);
        }
    });
}

/// A run that returns at its cancel while tasks are stuck on a pool, a
/// thread of their own and a custom executor: the stuck tasks keep what
/// they read (the run's input) alive, and let it go once they return, so a
/// long job that cancels runs leaks nothing.
#[test]
fn a_cancelled_runs_stuck_tasks_let_go_of_its_input_when_they_return() {
    common::within(common::BOUND, || {
        let (release, wait) = bounded::<()>(0);
        let (started_tx, started) = bounded::<()>(3);
        let stuck_on = |name: &str, config: ExecutorConfig| {
            let (wait, started_tx) = (wait.clone(), started_tx.clone());
            Task::from_fn(name, move |c: &conveyor::TaskContext<'_, Arc<Vec<u8>>>| {
                let _ = started_tx.send(());
                let _ = wait.recv_timeout(STUCK);
                Ok(Arc::new(vec![c.input().len() as u8]))
            })
            .executor(config)
        };
        let executor = PipelineExecutor::builder()
            .custom_executor("threads", OneThread::new())
            .build()
            .unwrap();
        let p = Pipeline::builder("leak")
            .step([
                stuck_on("pool", ExecutorConfig::pool(1)),
                stuck_on("thread", ExecutorConfig::ThreadPerTask),
                stuck_on("custom", ExecutorConfig::custom("threads")),
                Task::from_fn("inline", |_| Ok(Arc::new(Vec::new()))),
            ])
            .build()
            .unwrap();
        let input = Arc::new(vec![0_u8; 1 << 20]);
        let watched = Arc::downgrade(&input);
        let token = CancelToken::new();
        let remote = token.clone();
        std::thread::spawn(move || {
            for _ in 0..3 {
                let _ = started.recv_timeout(PROMPT);
            }
            remote.cancel();
        });
        let begun = Instant::now();
        let run = executor
            .execute_with(&p, input, &RunOptions::new().cancel_token(token))
            .unwrap();
        assert!(begun.elapsed() < PROMPT, "{:?}", begun.elapsed());
        assert_eq!(run.status(), ExecutionStatus::Cancelled);
        drop(run);
        assert!(
            watched.upgrade().is_some(),
            "the stuck tasks still read the input"
        );
        drop(release);
        let deadline = Instant::now() + PROMPT;
        while watched.upgrade().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            watched.upgrade().is_none(),
            "the input outlived every task that read it"
        );
    });
}

/// An outer task on a one-thread pool runs an inner pipeline on another
/// pool, with a stuck task and a deadline; the inner run must return at its
/// deadline, not when the stuck task does.
fn nested_deadline() {
    let (release, wait) = bounded::<()>(0);
    let executor = Arc::new(
        PipelineExecutor::builder()
            .executor("outer", ExecutorConfig::pool(1))
            .build()
            .unwrap(),
    );
    let inner_config = ExecutorConfig::pool(2);
    let inner = Pipeline::builder("inner")
        .step(
            Step::new("in", [stuck("stuck", &wait).executor(inner_config)])
                .timeout(Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let runner = Arc::clone(&executor);
    let outer = Pipeline::<u64>::builder("outer")
        .step_with(|s| {
            s.task("nest", move |_| {
                let begun = Instant::now();
                let run = runner.execute(&inner, 0)?;
                let took = begun.elapsed();
                match run.failure() {
                    Some(RunError::Timeout { .. }) => Ok(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
                    other => Err(TaskError::msg(format!("inner run did not time out: {other:?}"))),
                }
            })
            .on("outer")
        })
        .build()
        .unwrap();
    let run = executor.execute(&outer, 0).unwrap();
    let took = Duration::from_millis(*run.output().unwrap().get("nest").unwrap());
    drop(release);
    assert!(took < PROMPT, "{took:?}");
}

#[test]
fn a_nested_run_honours_its_deadline_on_another_pool() {
    common::within(common::BOUND, nested_deadline);
}

#[test]
fn a_nested_run_on_its_callers_one_thread_pool_does_not_deadlock() {
    // The inner task runs on the waiting worker itself (the one thread of
    // the pool), so it cannot be interrupted: the run ends when the task
    // returns. What must hold is that it ends, with the deadline reported.
    common::within(common::BOUND, || {
        let (release, wait) = bounded::<()>(0);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(release);
        });
        let executor = Arc::new(
            PipelineExecutor::builder()
                .executor("outer", ExecutorConfig::pool(1))
                .build()
                .unwrap(),
        );
        let inner = Pipeline::builder("inner")
            .step(
                Step::new(
                    "in",
                    [
                        stuck("stuck", &wait).on("outer"),
                        Task::from_fn("after", |_| Ok(1)).on("outer"),
                    ],
                )
                .timeout(Duration::from_millis(100)),
            )
            .build()
            .unwrap();
        let runner = Arc::clone(&executor);
        let outer = Pipeline::<u64>::builder("outer")
            .step_with(|s| {
                s.task("nest", move |_| {
                    let run = runner.execute(&inner, 0)?;
                    Ok(u64::from(matches!(run.failure(), Some(RunError::Timeout { .. }))))
                })
                .on("outer")
            })
            .build()
            .unwrap();
        let run = executor.execute(&outer, 0).unwrap();
        assert_eq!(run.output().unwrap().get("nest"), Some(&1));
    });
}

#[test]
fn nested_execute_on_a_one_thread_custom_executor_works() {
    common::within(common::BOUND, || {
        let executor = Arc::new(
            PipelineExecutor::builder()
                .custom_executor("one", OneThread::new())
                .build()
                .unwrap(),
        );
        let inner = Pipeline::<u64>::builder("inner")
            .step_with(|s| s.task("x", |c| Ok(c.input() + 1)).on("one"))
            .build()
            .unwrap();
        let runner = Arc::clone(&executor);
        let outer = Pipeline::<u64>::builder("outer")
            .step_with(|s| {
                s.task("nest", move |c| {
                    let run = runner.execute(&inner, *c.input())?;
                    Ok(*run.into_output()?.get("x").unwrap())
                })
                .on("one")
            })
            .build()
            .unwrap();
        let run = executor.execute(&outer, 41).unwrap();
        assert_eq!(run.output().unwrap().get("nest"), Some(&42));
    });
}

#[test]
fn a_panicking_retry_predicate_is_a_failure_not_an_abort() {
    common::quiet_planned_panics();
    common::within(common::BOUND, || {
        let policy = RetryPolicy::builder()
            .max_attempts(3)
            .retry_if(|_| panic!("{} in a retry predicate", common::PLANNED))
            .build()
            .unwrap();
        for config in [
            ExecutorConfig::pool(2),
            ExecutorConfig::Inline,
            ExecutorConfig::ThreadPerTask,
        ] {
            let executor = PipelineExecutor::builder()
                .default_executor(config.clone())
                .build()
                .unwrap();
            let tasks: Vec<Task<u64>> = (0..8)
                .map(|i| Task::from_fn(format!("t{i}"), |_| Err(TaskError::msg("no"))).retry(policy.clone()))
                .collect();
            let p = Pipeline::builder("p")
                .step(Step::new("s", tasks))
                .build()
                .unwrap();
            let run = executor.execute(&p, 0).unwrap();
            assert_eq!(run.status(), ExecutionStatus::Aborted, "{config}");
            assert_eq!(run.errors().count(), 8);
            assert!(run.errors().all(|f| matches!(
                f,
                TaskFailure::HookPanicked { place: "retry predicate", message, .. } if message.contains("retry predicate")
            )));
        }
    });
}

#[test]
fn a_panicking_evaluation_rule_fails_its_step_with_a_typed_error() {
    common::quiet_planned_panics();
    let executor = PipelineExecutor::builder().build().unwrap();
    let p = Pipeline::<u64>::builder("p")
        .step_with(|s| {
            s.task("ok", |_| Ok(1))
                .strategy(EvaluationStrategy::custom("explodes", |_| {
                    panic!("{}", common::PLANNED)
                }))
        })
        .build()
        .unwrap();
    let run = executor.execute(&p, 0).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    assert!(
        matches!(run.failure(), Some(RunError::RulePanicked { rule, .. }) if &**rule == "explodes"),
        "{:?}",
        run.failure()
    );
    assert!(executor.states().is_empty());
}

#[test]
fn extreme_durations_saturate_instead_of_panicking() {
    let executor = PipelineExecutor::builder().build().unwrap();
    let p = Pipeline::<u64>::builder("p")
        .step(Step::new("s", [Task::from_fn("t", |_| Ok(1))]).timeout(Duration::MAX))
        .build()
        .unwrap();
    let run = executor
        .execute_with(&p, 0, &RunOptions::new().timeout(Duration::MAX))
        .unwrap();
    assert!(run.is_success());
    for bad in [1e20, f64::MAX, f64::INFINITY, f64::NAN, -1.0] {
        let err = RetryPolicy::builder().backoff(bad, 2.0, 1.0).build().unwrap_err();
        assert!(matches!(err, BuildError::InvalidRetry { .. }), "{bad}: {err}");
        let err = RetryPolicy::builder().backoff(0.1, 2.0, bad).build().unwrap_err();
        assert!(matches!(err, BuildError::InvalidRetry { .. }), "{bad}: {err}");
    }
}

#[test]
fn a_task_name_with_a_nul_is_refused_before_any_thread_is_named_after_it() {
    let err = Pipeline::<u64>::builder("p")
        .step(Task::from_fn("bad\0name", |_| Ok(1)).executor(ExecutorConfig::ThreadPerTask))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidName { .. }), "{err}");
}

#[test]
fn a_timed_out_run_keeps_its_finished_steps() {
    common::within(common::BOUND, || {
        let (release, wait) = bounded::<()>(0);
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::pool(2))
            .build()
            .unwrap();
        let p = Pipeline::builder("p")
            .step([Task::from_fn("first", |_| Ok(11))])
            .step([stuck("stuck", &wait)])
            .build()
            .unwrap();
        let run = executor
            .execute_with(&p, 0, &RunOptions::new().timeout(Duration::from_millis(200)))
            .unwrap();
        assert!(matches!(
            run.failure(),
            Some(RunError::Timeout {
                scope: DeadlineScope::Run,
                ..
            })
        ));
        assert_eq!(
            run.context("first").unwrap().state().results().get("first"),
            Some(&11)
        );
        let report = run.report();
        assert_eq!(report.steps.len(), 2);
        assert_eq!(report.failure.as_ref().unwrap().kind, "timeout");
        drop(release);
    });
}

/// A run deadline that passes between two steps, or one of zero, times
/// out the next step with one `TimedOut` per task it never ran, as a
/// deadline inside a step does, and the message counts them.
#[test]
fn a_run_deadline_passed_between_steps_times_out_every_task_of_the_next() {
    common::within(common::BOUND, || {
        let executor = PipelineExecutor::builder().build().unwrap();
        let p = Pipeline::builder("p")
            .step(Step::new(
                "slow",
                [Task::from_fn("a", |_| {
                    std::thread::sleep(Duration::from_millis(60));
                    Ok(1)
                })
                .executor(ExecutorConfig::Inline)],
            ))
            .step(Step::new(
                "next",
                [Task::from_fn("b", |_| Ok(2)), Task::from_fn("c", |_| Ok(3))],
            ))
            .build()
            .unwrap();
        for (limit, step) in [(Duration::from_millis(20), "next"), (Duration::ZERO, "slow")] {
            let run = executor
                .execute_with(&p, 0, &RunOptions::new().timeout(limit))
                .unwrap();
            let failure = run.failure().unwrap();
            let Some(RunError::Timeout {
                step: at,
                scope: DeadlineScope::Run,
                failures,
                ..
            }) = run.failure()
            else {
                panic!("{failure:?}");
            };
            assert_eq!(&**at, step);
            let tasks = p.step(step).unwrap().tasks();
            assert_eq!(failures.len(), tasks.len(), "{failure}");
            for (failure, task) in failures.iter().zip(tasks) {
                assert!(
                    matches!(failure, TaskFailure::TimedOut { scope: DeadlineScope::Run, limit: l, .. } if *l == limit),
                    "{failure:?}"
                );
                assert_eq!(failure.task(), task.name());
                assert_eq!(failure.step(), step);
            }
            assert!(
                failure.to_string().contains(&format!("{} task", tasks.len())),
                "{failure}"
            );
        }
    });
}

#[test]
fn whatever_ends_a_run_no_live_state_is_left() {
    common::quiet_planned_panics();
    let executor = PipelineExecutor::builder().build().unwrap();
    let ok = Pipeline::<u64>::builder("ok")
        .task("t", |_| Ok(1))
        .build()
        .unwrap();
    let failing = Pipeline::<u64>::builder("fail")
        .task("t", |_| Err(TaskError::msg("no")))
        .build()
        .unwrap();
    let panicking = Pipeline::<u64>::builder("panic")
        .task("t", |_| panic!("{}", common::PLANNED))
        .build()
        .unwrap();
    let cancelled = CancelToken::new();
    cancelled.cancel();
    for p in [&ok, &failing, &panicking] {
        executor.execute(p, 0).unwrap();
        executor
            .execute_with(p, 0, &RunOptions::new().cancel_token(cancelled.clone()))
            .unwrap();
        executor
            .execute_with(p, 0, &RunOptions::new().timeout(Duration::ZERO))
            .unwrap();
        assert!(executor.states().is_empty(), "{}", p.name());
    }
}

#[test]
fn a_stuck_tasks_late_outcome_is_dropped_and_the_pool_recovers() {
    common::within(common::BOUND, || {
        let (release, wait) = bounded::<()>(0);
        let finished = Arc::new(AtomicUsize::new(0));
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::pool(1))
            .build()
            .unwrap();
        let done = Arc::clone(&finished);
        let wait2 = wait.clone();
        let p = Pipeline::<u64>::builder("p")
            .step(
                Step::new(
                    "s",
                    [Task::from_fn("late", move |_| {
                        let _ = wait2.recv_timeout(STUCK);
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(1)
                    })],
                )
                .timeout(Duration::from_millis(50)),
            )
            .build()
            .unwrap();
        let run = executor.execute(&p, 0).unwrap();
        assert!(matches!(run.failure(), Some(RunError::Timeout { .. })));
        drop(release);
        // Once released, the one worker serves new runs again.
        let next = Pipeline::<u64>::builder("next")
            .task("t", |_| Ok(2))
            .build()
            .unwrap();
        assert!(executor.execute(&next, 0).unwrap().is_success());
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        drop(wait);
    });
}

#[test]
fn a_task_attempt_counter_is_never_shared_between_retrying_siblings() {
    // With retries on the worker's own stack, sibling attempts ran inside
    // a task's backoff; here each task sees exactly its own two attempts.
    let calls = Arc::new(AtomicU32::new(0));
    let executor = PipelineExecutor::builder()
        .default_executor(ExecutorConfig::pool(1))
        .build()
        .unwrap();
    let c = Arc::clone(&calls);
    let tasks: Vec<Task<u64>> = fail_once(100)
        .into_iter()
        .map(|t| {
            t.retry(
                RetryPolicy::builder()
                    .max_attempts(2)
                    .backoff(0.001, 1.0, 0.001)
                    .build()
                    .unwrap(),
            )
        })
        .collect();
    let counted = Task::from_fn("count", move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(0)
    });
    let p = Pipeline::builder("p")
        .step(Step::new("s", tasks.into_iter().chain([counted])))
        .build()
        .unwrap();
    let run = executor.execute(&p, 0).unwrap();
    assert!(run.is_success());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_resume_running_beside_other_runs_never_collides_with_their_contexts() {
    use conveyor::checkpoint::MemoryCheckpointStore;
    use std::sync::atomic::AtomicBool;
    common::within(common::BOUND, || {
        let executor = Arc::new(PipelineExecutor::builder().build().unwrap());
        let broken = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&broken);
        let job = Pipeline::<u64>::builder("job")
            .task("load", |c| Ok(c.input() * 10))
            .task("save", move |c| {
                if flag.load(Ordering::SeqCst) {
                    Err(TaskError::msg("disk full"))
                } else {
                    Ok(c.previous().first().unwrap() + 1)
                }
            })
            .build()
            .unwrap();
        let store = MemoryCheckpointStore::new();
        assert!(
            !executor
                .execute_with_checkpoint(&job, 4, &store)
                .unwrap()
                .is_success()
        );
        broken.store(false, Ordering::SeqCst);
        let others: Vec<_> = (0..4)
            .map(|k| {
                let executor = Arc::clone(&executor);
                std::thread::spawn(move || {
                    let p = Pipeline::<u64>::builder("other")
                        .task("a", |c| Ok(c.input() + 1))
                        .task("b", |c| Ok(c.previous().first().unwrap() + 1))
                        .build()
                        .unwrap();
                    (0..200).all(|i| executor.execute(&p, k * 1000 + i).unwrap().is_success())
                })
            })
            .collect();
        let resumed = executor.execute_with_checkpoint(&job, 4, &store).unwrap();
        assert_eq!(resumed.output().unwrap().get("save"), Some(&41));
        assert_eq!(resumed.restored(), 1);
        for other in others {
            assert!(other.join().unwrap());
        }
        assert!(executor.states().is_empty());
    });
}

#[test]
fn a_panicking_benchmark_baseline_is_a_typed_error() {
    common::quiet_planned_panics();
    let p = Pipeline::<u64>::builder("p")
        .task("t", |_| Ok(1))
        .build()
        .unwrap();
    let err = conveyor::bench::StrategyBenchmark::new("bench", &p, 0)
        .strategy(ExecutorConfig::Inline)
        .baseline("raw", || panic!("{} in a baseline", common::PLANNED))
        .warmups(0)
        .runs(2)
        .run()
        .unwrap_err();
    assert!(
        matches!(&err, RunError::BaselinePanicked { message, .. } if message.contains("baseline")),
        "{err}"
    );
}

/// A task that a cancel or a deadline cuts short mid-attempt, or in its
/// backoff, is recorded with the attempts it made, not as never started;
/// and when it returns later, its value is dropped: not streamed to
/// `on_result`, not reported to observers after the run's last event.
#[test]
fn a_task_cut_short_keeps_its_attempts_and_its_late_value_is_dropped() {
    common::within(common::BOUND, || {
        for config in [
            ExecutorConfig::pool(2),
            ExecutorConfig::Global,
            ExecutorConfig::ThreadPerTask,
            ExecutorConfig::custom("own"),
        ] {
            let heard = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let streamed = Arc::new(AtomicUsize::new(0));
            let (h, s) = (Arc::clone(&heard), Arc::clone(&streamed));
            let executor = PipelineExecutor::builder()
                .custom_executor("own", common::OwnThread)
                .observer(conveyor::observer_fn(move |signal| {
                    let name = match signal {
                        conveyor::signal::Signal::PipelineStopped(_) => "pipeline_stopped",
                        conveyor::signal::Signal::TaskFinished(_) => "task_finished",
                        _ => return,
                    };
                    h.lock().unwrap().push(name.to_owned());
                }))
                .on_result(move |_| {
                    s.fetch_add(1, Ordering::SeqCst);
                })
                .build()
                .unwrap();
            let token = CancelToken::new();
            let cancel = token.clone();
            let (returned, back) = bounded::<()>(1);
            let p = Pipeline::builder("p")
                .step([Task::from_fn("stuck", move |_| {
                    cancel.cancel();
                    std::thread::sleep(Duration::from_millis(200));
                    let _ = returned.send(());
                    Ok(1)
                })
                .executor(config.clone())])
                .build()
                .unwrap();
            let run = executor
                .execute_with(&p, 0, &RunOptions::new().cancel_token(token))
                .unwrap();
            let failure = run.errors().next().unwrap().clone();
            assert!(
                matches!(failure, TaskFailure::Cancelled { attempts: 1, .. }),
                "{config}: {failure:?}"
            );
            let metrics = run
                .context("stuck")
                .unwrap()
                .metrics()
                .task("stuck")
                .unwrap()
                .clone();
            assert_eq!(metrics.attempts, 1, "{config}");
            assert_eq!(run.report().totals.attempts, 1, "{config}");
            back.recv_timeout(Duration::from_secs(10)).unwrap();
            // The task has returned; give its worker time to do whatever it
            // would do with the value.
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(
                streamed.load(Ordering::SeqCst),
                0,
                "{config}: a dropped value was streamed"
            );
            let heard = heard.lock().unwrap().clone();
            assert_eq!(heard, ["pipeline_stopped"], "{config}");

            // A task in its backoff when the deadline passes made one attempt.
            let p = Pipeline::builder("p")
                .step(
                    [Task::from_fn("fails", |_| Err::<u64, _>(TaskError::msg("again")))
                        .retry(
                            RetryPolicy::builder()
                                .max_attempts(5)
                                .backoff(5.0, 1.0, 5.0)
                                .build()
                                .unwrap(),
                        )
                        .executor(config.clone())],
                )
                .build()
                .unwrap();
            let run = executor
                .execute_with(&p, 0, &RunOptions::new().timeout(Duration::from_millis(100)))
                .unwrap();
            let report = run.report();
            assert_eq!(report.steps[0].tasks[0].attempts, 1, "{config}");
            assert_eq!(report.totals.attempts, 1, "{config}");
        }
    });
}
