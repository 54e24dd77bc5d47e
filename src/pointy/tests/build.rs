//! Unit tests of building from pointy text, task sources, and printing
//! pipelines back.

use std::cell::Cell;
use std::time::Duration;

use super::{any, build};
use crate::pointy::*;
use crate::{EvaluationStrategy, PipelineExecutor, RetryPolicy, Step, Task, TaskError};

#[test]
fn unknown_names_are_reported_at_their_first_occurrence() {
    let tasks = |name: &str| (name != "Zed").then(|| Task::from_fn(name, |c| Ok(*c.input())));
    let err = Pipeline::<u8>::parse("A -> B (0 -> Zed) -> Zed", &tasks).unwrap_err();
    assert_eq!(err.to_string(), "1:14: unknown task `Zed`");
    assert!(matches!(err.kind(), ErrorKind::UnknownTask { name } if name == "Zed"));
    let err = Pipeline::<u8>::parse("2 * Zed", &tasks).unwrap_err();
    assert_eq!(err.to_string(), "1:5: unknown task `Zed`");
}

#[test]
fn the_source_is_asked_once_per_name_and_each_occurrence_is_named_apart() {
    let calls = Cell::new(0);
    let tasks = |name: &str| {
        calls.set(calls.get() + 1);
        Some(Task::from_fn(format!("source-{name}"), |c| Ok(*c.input())))
    };
    let p: Pipeline<u8> = parse("A -> B || A -> A (0 -> B)", &tasks).unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(
        outline(&p),
        "A ; then=B|A#2\nB || A#2 ; then=A#3\nA#3 ; fail=B#2\nB#2\n"
    );
}

#[test]
fn retries_keep_the_sources_settings_and_executors_replace_its_choice() {
    let policy = RetryPolicy::builder()
        .max_attempts(5)
        .backoff(0.5, 3.0, 10.0)
        .build()
        .unwrap();
    let tasks = TaskRegistry::new()
        .with(
            Task::from_fn("A", |c: &crate::TaskContext<'_, u8>| Ok(*c.input()))
                .retry(policy)
                .on("cpu"),
        )
        .with(Task::from_fn("B", |c| Ok(*c.input())));
    let p = Pipeline::parse(
        "A * 2 -> A[retry_attempts=0, executor=\"io\"] -> A -> B[retry_attempts=1]",
        &tasks,
    )
    .unwrap();
    let tasks: Vec<&Task<u8>> = p.steps().iter().map(|s| &s.tasks()[0]).collect();
    let retry = tasks[0].retry_policy().unwrap();
    assert_eq!(
        (retry.max_attempts(), retry.delay(1, None)),
        (2, Duration::from_millis(500))
    );
    assert_eq!(tasks[1].retry_policy().unwrap().max_attempts(), 1);
    assert_eq!(tasks[1].executor_name(), Some("io"));
    assert_eq!(tasks[2].retry_policy().unwrap().max_attempts(), 5);
    assert_eq!(tasks[2].executor_name(), Some("cpu"));
    assert_eq!(tasks[3].retry_policy().unwrap().max_attempts(), 1);
}

#[test]
fn pipes_strategies_and_names() {
    let p = build("A |-> B[result_evaluation_strategy=\"majority_must_succeed\"] || C");
    assert_eq!(outline(&p), "A ; then=B|C\nB || C ; strategy=majority\n");
    assert!(matches!(
        p.steps()[1].evaluation_strategy(),
        EvaluationStrategy::MajorityMustSucceed { tie_breaker: true }
    ));
    assert_eq!(p.name(), DEFAULT_NAME);
    assert_eq!(parse_named("job", "A", &any).unwrap().name(), "job");
    let err = parse_named("", "A", &any).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Build(_)));
    assert!(std::error::Error::source(&err).is_some());
    assert_eq!(err.to_string(), "1:1: the pipeline could not be built");
}

/// The steps a run went through, by name.
fn ran(pipeline: &Pipeline<u8>) -> Vec<String> {
    let executor = PipelineExecutor::builder().build().unwrap();
    let run = executor.execute(pipeline, 0).unwrap();
    run.chain().iter().map(|c| c.step().to_owned()).collect()
}

#[test]
fn built_pipelines_run_as_the_text_says() {
    // The inner sink `D` runs after `C`'s branch is skipped (7.5).
    assert_eq!(ran(&build("A (1 -> B (0 -> C) -> D) -> E")), ["A", "B", "D", "E"]);
    let fails = |name: &str| {
        Some(match name {
            "Bad" => Task::from_fn(name, |_| Err(TaskError::msg("no"))),
            _ => Task::from_fn(name, |c: &crate::TaskContext<'_, u8>| Ok(*c.input())),
        })
    };
    let p = Pipeline::parse("A || Bad (0 -> Fix -> More, 1 -> Go) -> Sink -> After", &fails).unwrap();
    assert_eq!(ran(&p), ["A|Bad", "Fix", "More", "Sink", "After"]);
}

#[test]
fn builder_pipelines_print_when_pointy_can_say_them() {
    let t = |name: &str| Task::from_fn(name, |c: &crate::TaskContext<'_, u8>| Ok(*c.input()));
    let plain = Pipeline::builder("p")
        .step(t("a"))
        .step([t("b"), t("c")])
        .step(t("d"))
        .build()
        .unwrap();
    assert_eq!(to_text(&plain).unwrap(), "a -> b || c -> d\n");

    let refuse = |p: Pipeline<u8>| to_text(&p).unwrap_err().to_string();
    let named = Pipeline::builder("p")
        .step(Step::new("s", [t("a")]))
        .build()
        .unwrap();
    assert_eq!(refuse(named), "step `s` is not named after its tasks");
    let dashed = Pipeline::builder("p").step(t("load-data")).build().unwrap();
    assert_eq!(
        refuse(dashed),
        "task `load-data` cannot be written: expected the name `load-data` at that place"
    );
    let renumbered = Pipeline::builder("p")
        .step(t("a"))
        .step(t("a#3"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(renumbered),
        "task `a#3` cannot be written: expected the name `a#2` at that place"
    );
    let custom = Pipeline::builder("p")
        .step(Step::of([t("a")]).strategy(EvaluationStrategy::AtLeast(1)))
        .build()
        .unwrap();
    assert_eq!(
        refuse(custom),
        "step `a` has the strategy at_least, which pointy cannot write"
    );
    let timed = Pipeline::builder("p")
        .step(Step::of([t("a")]).timeout(Duration::from_secs(1)))
        .build()
        .unwrap();
    assert_eq!(
        refuse(timed),
        "step `a` has a deadline, which pointy cannot write"
    );
    let sink_only = Pipeline::builder("p")
        .step(Step::of([t("a")]).sink("b"))
        .step(t("b"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(sink_only),
        "step `a` cannot be written: it has a sink but no branches"
    );
    let out_of_order = Pipeline::builder("p")
        .step(Step::of([t("a")]).on_success("b").then("c").sink("c"))
        .step(t("c"))
        .step(t("b"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(out_of_order),
        "step `b` cannot be written: it is reached twice or declared out of the text's order"
    );
    let no_sink = Pipeline::builder("p")
        .step(Step::of([t("a")]).on_failure("b").then("c"))
        .step(t("b"))
        .step(t("c"))
        .build()
        .unwrap();
    assert_eq!(
        refuse(no_sink),
        "step `a` cannot be written: its sink is not the step after its branches"
    );
    let mut deep = Pipeline::builder("p");
    for i in 0..70 {
        deep = deep.step(Step::of([t(&format!("n{i}"))]).on_success(format!("n{}", i + 1)));
    }
    let deep = deep.step(t("n70")).build().unwrap();
    assert_eq!(
        refuse(deep),
        "step `n64` cannot be written: its branches are nested more than 64 deep"
    );
}

#[test]
fn public_types_are_send_sync_and_sources_object_safe() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PointyError>();
    send_sync::<PrintError>();
    send_sync::<TaskRegistry<u64>>();
    fn _source(_: &dyn TaskSource<u64>) {}
    let registry: TaskRegistry<u8> = ["A", "B"].into_iter().map(|n| any(n).unwrap()).collect();
    let dynamic: &dyn TaskSource<u8> = &registry;
    assert_eq!(parse(" A->B ", dynamic).unwrap().steps().len(), 2);
    assert_eq!(format!("{registry:?}"), "TaskRegistry { names: [\"A\", \"B\"] }");
}
