//! Pins that no panic from task, observer or custom executor code reaches the caller or hangs a run.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{BOUND, PLANNED, quiet_planned_panics, within};
use conveyor::signal::Signal;
use conveyor::{
    CustomExecutor, EvaluationStrategy, ExecutionStatus, ExecutorConfig, Job, Pipeline, PipelineExecutor,
    RunError, Step, Task, TaskFailure, observer_fn,
};

fn ok(name: &str) -> Task<u64> {
    Task::from_fn(name, |c| Ok(*c.input() + 1))
}

fn executor() -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .executor("p", ExecutorConfig::pool(2))
        .build()
        .unwrap()
}

/// Runs one step of `task` next to a succeeding task and returns the panic
/// the run recorded for it.
fn panic_of(task: Task<u64>) -> TaskFailure {
    quiet_planned_panics();
    within(BOUND, move || {
        let pipeline = Pipeline::builder("p")
            .step(Step::new("crashy", [ok("fine").on("p"), task.on("p")]))
            .build()
            .unwrap();
        let run = executor().execute(&pipeline, 1).unwrap();
        let errors: Vec<TaskFailure> = run.errors().cloned().collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    })
}

fn assert_panicked(err: &TaskFailure, expected_message: &str) {
    match err {
        TaskFailure::Panicked {
            task,
            step,
            attempt,
            message,
        } => {
            assert_eq!((&**task, &**step, *attempt), ("boom", "crashy", 1));
            assert_eq!(message, expected_message);
        }
        other => panic!("expected TaskPanicked, got {other}"),
    }
    let text = err.to_string();
    for part in ["`boom`", "`crashy`", expected_message] {
        assert!(text.contains(part), "{text:?} lacks {part:?}");
    }
    assert_eq!(err.task(), "boom");
    assert_eq!(err.attempt(), Some(1));
    assert_eq!(err.message(), expected_message);
    assert_eq!(err.kind(), "task_panicked");
}

#[test]
fn a_str_panic_names_task_step_and_message() {
    let err = panic_of(Task::from_fn("boom", |_| {
        std::panic::panic_any::<&'static str>("planned panic: static text")
    }));
    assert_panicked(&err, "planned panic: static text");
}

#[test]
fn a_string_panic_names_task_step_and_message() {
    let err = panic_of(Task::from_fn("boom", |c| {
        std::panic::panic_any(format!("{PLANNED}: input was {}", c.input()))
    }));
    assert_panicked(&err, "planned panic: input was 1");
}

#[test]
fn a_non_string_panic_gets_a_placeholder_message() {
    let err = panic_of(Task::from_fn("boom", |_| std::panic::panic_any(42_u32)));
    assert_panicked(&err, "<non-string panic payload>");
}

fn crashing_pipeline(strategy: EvaluationStrategy, ran_after: &Arc<AtomicUsize>) -> Pipeline<u64> {
    let after = Arc::clone(ran_after);
    Pipeline::builder("p")
        .step(
            Step::new(
                "crashy",
                [
                    ok("fine"),
                    Task::from_fn("boom", |_| panic!("{PLANNED} in a step")),
                ],
            )
            .strategy(strategy),
        )
        .step(Step::new(
            "after",
            [Task::from_fn("next", move |c| {
                after.fetch_add(1, Ordering::SeqCst);
                Ok(c.previous().values().sum())
            })],
        ))
        .build()
        .unwrap()
}

#[test]
fn a_panic_aborts_the_run_under_the_default_strategy() {
    quiet_planned_panics();
    within(BOUND, || {
        let ran_after = Arc::new(AtomicUsize::new(0));
        let pipeline = crashing_pipeline(EvaluationStrategy::default(), &ran_after);
        let run = executor().execute(&pipeline, 1).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        assert_eq!(ran_after.load(Ordering::SeqCst), 0, "the step after an abort ran");
        assert_eq!(run.chain().len(), 1);
        assert_eq!(
            run.context("crashy").unwrap().state().status(),
            ExecutionStatus::Aborted
        );
        match run.output() {
            Err(RunError::StepFailed { step, failures, .. }) => {
                assert_eq!(&*step, "crashy");
                assert!(
                    matches!(failures.as_slice(), [TaskFailure::Panicked { task, .. }] if &**task == "boom"),
                    "{failures:?}"
                );
            }
            other => panic!("expected StepFailed, got {other:?}"),
        }
    });
}

#[test]
fn a_panic_is_only_an_error_when_any_may_succeed() {
    quiet_planned_panics();
    within(BOUND, || {
        let ran_after = Arc::new(AtomicUsize::new(0));
        let pipeline = crashing_pipeline(EvaluationStrategy::AnyMustSucceed, &ran_after);
        let run = executor().execute(&pipeline, 1).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Finished);
        assert_eq!(ran_after.load(Ordering::SeqCst), 1);
        assert_eq!(run.output().unwrap().get("next"), Some(&2));
        let errors: Vec<_> = run.errors().collect();
        assert!(
            matches!(errors.as_slice(), [TaskFailure::Panicked { task, step, .. }]
                if &**task == "boom" && &**step == "crashy"),
            "{errors:?}"
        );
    });
}

/// Each hook the engine can reach without a cancel, by its `Signal` name.
const HOOKS: [&str; 8] = [
    "PipelineStarted",
    "PipelineFinished",
    "ContextInitialized",
    "ContextStarted",
    "ContextFinished",
    "ContextAborted",
    "TaskStarted",
    "TaskFinished",
];

fn hook_name(signal: &Signal<'_>) -> &'static str {
    match signal {
        Signal::PipelineStarted(_) => "PipelineStarted",
        Signal::PipelineFinished(_) => "PipelineFinished",
        Signal::PipelineStopped(_) => "PipelineStopped",
        Signal::ContextInitialized(_) => "ContextInitialized",
        Signal::ContextStarted(_) => "ContextStarted",
        Signal::ContextFinished(_) => "ContextFinished",
        Signal::ContextAborted(_) => "ContextAborted",
        Signal::ContextCancelled(_) => "ContextCancelled",
        Signal::TaskStarted(_) => "TaskStarted",
        Signal::TaskFinished(_) => "TaskFinished",
        _ => "unknown",
    }
}

#[test]
fn a_panicking_observer_stops_neither_the_run_nor_later_observers() {
    quiet_planned_panics();
    within(BOUND, || {
        for hook in HOOKS {
            let panics = Arc::new(AtomicUsize::new(0));
            let heard = Arc::new(AtomicUsize::new(0));
            let (p, h) = (Arc::clone(&panics), Arc::clone(&heard));
            let executor = PipelineExecutor::builder()
                .executor("p", ExecutorConfig::pool(2))
                .observer(observer_fn(move |s| {
                    if hook_name(&s) == hook {
                        p.fetch_add(1, Ordering::SeqCst);
                        panic!("{PLANNED} in observer hook {hook}");
                    }
                }))
                .observer(observer_fn(move |s| {
                    if hook_name(&s) == hook {
                        h.fetch_add(1, Ordering::SeqCst);
                    }
                }))
                .build()
                .unwrap();

            let good = Pipeline::builder("good")
                .step([ok("a").on("p"), ok("b").on("p")])
                .step([Task::from_fn("sum", |c| Ok(c.previous().values().sum()))])
                .build()
                .unwrap();
            let run = executor.execute(&good, 1).unwrap();
            assert!(run.is_success(), "{hook}: {:?}", run.failure());
            assert_eq!(run.output().unwrap().get("sum"), Some(&4), "{hook}");

            let bad = Pipeline::builder("bad")
                .step([Task::from_fn("no", |_| Err(conveyor::TaskError::msg("no")))])
                .build()
                .unwrap();
            let run = executor.execute(&bad, 1).unwrap();
            assert_eq!(run.status(), ExecutionStatus::Aborted, "{hook}");

            let fired = panics.load(Ordering::SeqCst);
            assert!(fired > 0, "hook {hook} never fired, so it was not tested");
            assert_eq!(
                heard.load(Ordering::SeqCst),
                fired,
                "{hook}: a later observer missed signals"
            );
            assert!(executor.states().is_empty(), "{hook}");
        }
    });
}

/// Drops every job without running it.
struct Dropper;

impl CustomExecutor for Dropper {
    fn spawn(&self, job: Job) {
        drop(job);
    }
}

/// Hands every job to another thread, which drops it later.
struct DropsElsewhere;

impl CustomExecutor for DropsElsewhere {
    fn spawn(&self, job: Job) {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(job);
        });
    }
}

/// Panics instead of taking the job.
struct Panicker;

impl CustomExecutor for Panicker {
    fn spawn(&self, _job: Job) {
        panic!("{PLANNED} in CustomExecutor::spawn");
    }
}

/// Runs jobs properly, for contrast.
struct Runs;

impl CustomExecutor for Runs {
    fn spawn(&self, job: Job) {
        std::thread::spawn(move || job.run());
    }
}

fn lost_jobs(name: &'static str, executor: impl CustomExecutor + 'static) {
    quiet_planned_panics();
    within(BOUND, move || {
        let executor = PipelineExecutor::builder()
            .custom_executor(name, executor)
            .custom_executor("runs", Runs)
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let counted = |task: &str| {
            let ran = Arc::clone(&ran);
            Task::from_fn(task, move |c| {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(*c.input())
            })
        };
        let pipeline = Pipeline::builder("p")
            .step(
                Step::new(
                    "s",
                    [
                        counted("lost1").on(name),
                        counted("kept").on("runs"),
                        counted("lost2").executor(ExecutorConfig::custom(name)),
                        counted("here").executor(ExecutorConfig::Inline),
                    ],
                )
                .strategy(EvaluationStrategy::AnyMustSucceed),
            )
            .build()
            .unwrap();
        let run = executor.execute(&pipeline, 7).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Finished);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            2,
            "only the tasks on working executors ran"
        );
        let results: Vec<_> = run
            .output()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.to_owned(), *v))
            .collect();
        assert_eq!(results, [("kept".to_owned(), 7), ("here".to_owned(), 7)]);

        let errors: Vec<_> = run.errors().collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        for (err, lost) in errors.iter().zip(["lost1", "lost2"]) {
            match err {
                TaskFailure::Dispatch {
                    executor,
                    task,
                    step,
                    message,
                } => {
                    assert_eq!(**executor, *ExecutorConfig::custom(name).to_string());
                    assert_eq!((&**task, &**step), (lost, "s"));
                    assert!(!message.is_empty());
                }
                other => panic!("expected Dispatch for {lost}, got {other}"),
            }
            assert!(err.to_string().contains(name), "{err}");
        }
        let metrics = &run.context("s").unwrap().metrics().tasks;
        assert_eq!(metrics[0].attempts, 0, "a dropped job never started");
        assert!(executor.states().is_empty());
    });
}

#[test]
fn a_custom_executor_that_drops_jobs_yields_dispatch_errors() {
    lost_jobs("dropper", Dropper);
}

#[test]
fn a_custom_executor_that_drops_jobs_on_another_thread_yields_dispatch_errors() {
    lost_jobs("elsewhere", DropsElsewhere);
}

#[test]
fn a_custom_executor_that_panics_in_spawn_yields_dispatch_errors() {
    lost_jobs("panicker", Panicker);
}

/// A panic payload whose own `Drop` panics, and panics again when that
/// second payload is dropped.
struct Bomb(u8);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 > 0 && !std::thread::panicking() {
            std::panic::panic_any(Bomb(self.0 - 1));
        }
    }
}

/// Dropping a task's or an observer's panic payload can panic too; that
/// panic stays caught on every executor, and the run ends as for any
/// panic.
#[test]
fn a_panic_payload_that_panics_when_dropped_never_reaches_the_caller() {
    quiet_planned_panics();
    within(BOUND, || {
        for config in common::every_config() {
            let executor = PipelineExecutor::builder()
                .custom_executor("own", common::OwnThread)
                .observer(observer_fn(|s| {
                    if matches!(s, Signal::TaskFinished(_)) {
                        std::panic::panic_any(Bomb(2));
                    }
                }))
                .build()
                .unwrap();
            let pipeline = Pipeline::builder("p")
                .step(Step::new(
                    "crashy",
                    [
                        ok("fine").executor(config.clone()),
                        Task::from_fn("boom", |_| std::panic::panic_any(Bomb(2))).executor(config.clone()),
                    ],
                ))
                .build()
                .unwrap();
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| executor.execute(&pipeline, 1)))
                    .unwrap_or_else(|_| panic!("{config}: a payload's drop unwound into the caller"))
                    .unwrap();
            assert_eq!(run.status(), ExecutionStatus::Aborted, "{config}");
            let errors: Vec<TaskFailure> = run.errors().cloned().collect();
            assert_eq!(errors.len(), 1, "{config}: {errors:?}");
            assert_panicked(&errors[0], "<non-string panic payload>");
        }
    });
}
