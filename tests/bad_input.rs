//! Pins that each bad input gets its own typed BuildError naming the culprit, before anything runs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{BOUND, within};
use conveyor::error::ExecutorSite;
use conveyor::{
    BuildError, CustomExecutor, EvaluationStrategy, ExecutorConfig, Job, Pipeline, PipelineExecutor,
    RunError, Step, Task, observer_fn,
};

fn t(name: &str) -> Task<u64> {
    Task::from_fn(name, |c| Ok(*c.input()))
}

fn mentions(err: &dyn std::error::Error, parts: &[&str]) {
    let text = err.to_string();
    for part in parts {
        assert!(text.contains(part), "{text:?} does not name {part:?}");
    }
}

#[test]
fn an_empty_pipeline() {
    let err = Pipeline::<u64>::builder("hollow").build().unwrap_err();
    assert!(matches!(&err, BuildError::EmptyPipeline { pipeline } if &**pipeline == "hollow"));
    mentions(&err, &["`hollow`"]);
}

#[test]
fn an_empty_step() {
    let err = Pipeline::builder("p")
        .step([t("a")])
        .step(Step::new("nothing", Vec::new()))
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::EmptyStep { step, .. } if &**step == "nothing"));
    mentions(&err, &["`nothing`", "`p`"]);
}

#[test]
fn a_task_name_used_in_two_steps() {
    let err = Pipeline::builder("p")
        .step(Step::new("first", [t("a"), t("twice")]))
        .step(Step::new("second", [t("b"), t("twice")]))
        .build()
        .unwrap_err();
    match &err {
        BuildError::DuplicateTask {
            task,
            first_step,
            second_step,
            ..
        } => assert_eq!(
            (&**task, &**first_step, &**second_step),
            ("twice", "first", "second")
        ),
        other => panic!("expected DuplicateTask, got {other}"),
    }
    mentions(&err, &["`twice`", "`first`", "`second`"]);
    assert_eq!(err.task(), Some("twice"));
}

#[test]
fn a_task_name_used_twice_in_one_step() {
    let err = Pipeline::builder("p")
        .step(Step::new("s", [t("x"), t("x")]))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::DuplicateTask { task, .. } if &**task == "x"),
        "{err}"
    );
}

#[test]
fn a_step_name_used_twice() {
    let err = Pipeline::builder("p")
        .step(Step::new("same", [t("a")]))
        .step(Step::new("same", [t("b")]))
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::DuplicateStep { step, .. } if &**step == "same"));
    mentions(&err, &["`same`", "`p`"]);
}

#[test]
fn a_named_pool_of_zero_threads() {
    let err = PipelineExecutor::<u64>::builder()
        .executor("none", ExecutorConfig::pool(0))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::ZeroThreads { executor: ExecutorSite::Named(name) } if &**name == "none")
    );
    mentions(&err, &["`none`"]);
}

#[test]
fn a_default_pool_of_zero_threads() {
    let err = PipelineExecutor::<u64>::builder()
        .default_executor(ExecutorConfig::pool(0))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::ZeroThreads { .. }), "{err}");
}

/// A pipeline whose first step counts its runs and whose second step holds
/// `bad`, plus an observer that counts every signal: a check done up front
/// leaves both counts at zero.
fn refused_before_running(bad: Task<u64>) -> BuildError {
    within(BOUND, move || {
        let ran = Arc::new(AtomicUsize::new(0));
        let signals = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&signals);
        let executor = PipelineExecutor::<u64>::builder()
            .executor("cpu", ExecutorConfig::pool(1))
            .observer(observer_fn(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
            }))
            .build()
            .unwrap();
        let r = Arc::clone(&ran);
        let pipeline = Pipeline::builder("p")
            .step(Step::new(
                "early",
                [Task::from_fn("count", move |c| {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(*c.input())
                })],
            ))
            .step(Step::new("late", [t("fine").on("cpu"), bad]))
            .build()
            .unwrap();
        let err = executor.execute(&pipeline, 1).unwrap_err();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a task ran before {err} was reported"
        );
        assert_eq!(
            signals.load(Ordering::SeqCst),
            0,
            "signals were sent before {err}"
        );
        assert!(executor.states().is_empty());
        match err {
            RunError::Build(err) => err,
            other => panic!("expected a build error, got {other}"),
        }
    })
}

#[test]
fn a_task_asking_for_a_pool_of_zero_threads() {
    let err = refused_before_running(t("starved").executor(ExecutorConfig::pool(0)));
    assert!(
        matches!(&err, BuildError::ZeroThreads { executor: ExecutorSite::Task { task, step } }
            if &**task == "starved" && &**step == "late"),
        "{err}"
    );
    mentions(&err, &["zero threads", "`starved`", "`late`"]);
}

#[test]
fn a_task_naming_an_unknown_executor() {
    let err = refused_before_running(t("lost").on("gpu"));
    match &err {
        BuildError::UnknownExecutor { name, task, step } => {
            assert_eq!(&**name, "gpu");
            assert_eq!(task.as_deref(), Some("lost"));
            assert_eq!(step.as_deref(), Some("late"));
        }
        other => panic!("expected UnknownExecutor, got {other}"),
    }
    mentions(&err, &["`gpu`", "`lost`", "`late`"]);
}

#[test]
fn a_task_naming_an_unknown_custom_executor() {
    let err = refused_before_running(t("lost").executor(ExecutorConfig::custom("nowhere")));
    assert!(
        matches!(&err, BuildError::UnknownExecutor { name, .. } if &**name == "nowhere"),
        "{err}"
    );
    assert_eq!(err.task(), Some("lost"));
}

struct Now;

impl CustomExecutor for Now {
    fn spawn(&self, job: Job) {
        job.run();
    }
}

#[test]
fn an_executor_name_registered_twice() {
    let err = PipelineExecutor::<u64>::builder()
        .executor("cpu", ExecutorConfig::pool(1))
        .executor("cpu", ExecutorConfig::pool(2))
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::DuplicateExecutor { name } if &**name == "cpu"));
    mentions(&err, &["`cpu`"]);

    let err = PipelineExecutor::<u64>::builder()
        .executor("mine", ExecutorConfig::Inline)
        .custom_executor("mine", Now)
        .build()
        .unwrap_err();
    assert!(matches!(&err, BuildError::DuplicateExecutor { name } if &**name == "mine"));
}

#[test]
fn an_empty_executor_name() {
    let err = PipelineExecutor::<u64>::builder()
        .executor("", ExecutorConfig::Inline)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::EmptyExecutorName), "{err}");
    let err = PipelineExecutor::<u64>::builder()
        .custom_executor("", Now)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::EmptyExecutorName), "{err}");
}

#[test]
fn a_percent_threshold_out_of_range() {
    let err = EvaluationStrategy::at_least_percent(150.0).unwrap_err();
    assert!(
        matches!(&err, BuildError::InvalidThreshold { value, step: None, .. } if value == "150"),
        "{err}"
    );

    for (step, percent) in [
        ("over", 150.0),
        ("under", -0.5),
        ("nan", f64::NAN),
        ("infinite", f64::INFINITY),
    ] {
        let err = Pipeline::builder("p")
            .step(Step::new("fine", [t("a")]).strategy(EvaluationStrategy::AtLeastPercent(50.0)))
            .step(Step::new(step, [t("b")]).strategy(EvaluationStrategy::AtLeastPercent(percent)))
            .build()
            .unwrap_err();
        match &err {
            BuildError::InvalidThreshold {
                strategy,
                value,
                step: Some(named),
                ..
            } => {
                assert_eq!(&**named, step);
                assert_eq!(*strategy, "at_least_percent");
                assert_eq!(value, &percent.to_string());
            }
            other => panic!("{step}: expected InvalidThreshold, got {other}"),
        }
        mentions(&err, &[&format!("`{step}`"), &percent.to_string()]);
    }
}

#[test]
fn percent_thresholds_at_the_bounds_are_accepted() {
    for percent in [0.0, 100.0] {
        assert!(EvaluationStrategy::at_least_percent(percent).is_ok(), "{percent}");
        let built = Pipeline::builder("p")
            .step(Step::new("s", [t("a")]).strategy(EvaluationStrategy::AtLeastPercent(percent)))
            .build();
        assert!(built.is_ok(), "{percent}");
    }
}
