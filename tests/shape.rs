//! The shape of the public API: errors that chain to the task's own error,
//! `?` on any error inside tasks, closures without annotations, sinks that
//! run whatever their branch did, and pools that stay apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conveyor::{
    BuildError, ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, Pools, RunError, Step, Task,
    TaskContext, TaskError,
};

#[derive(Debug, thiserror::Error)]
#[error("quota of {0} exceeded")]
struct Quota(u32);

fn parse_all() -> Pipeline<String> {
    Pipeline::<String>::builder("text")
        .task("count", |c| Ok(c.input().split_whitespace().count().to_string()))
        .step_with(|s| {
            s.task("upper", |c| Ok(c.previous().first().unwrap().to_uppercase()))
                .task("parse", |c| {
                    let n: u64 = c.input().trim().parse()?;
                    Ok(n.to_string())
                })
        })
        .task("report", |c| Ok(format!("{} results", c.previous().len())))
        .build()
        .unwrap()
}

#[test]
fn anyhow_prints_the_step_the_failing_task_and_its_own_message_once() {
    let executor = PipelineExecutor::builder().build().unwrap();
    let run = executor.execute(&parse_all(), "not a number".into()).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    let err = anyhow::Error::from(run.into_output().unwrap_err());
    let text = format!("{err:#}");
    assert_eq!(
        text,
        "step `upper|parse` failed under all_must_succeed: 1 of 2 tasks succeeded; failed: `parse`: \
         task `parse` in step `upper|parse` failed on attempt 1: invalid digit found in string"
    );
    assert_eq!(text.matches("invalid digit").count(), 1);
}

#[test]
fn question_mark_works_on_io_anyhow_and_custom_errors() {
    let p = Pipeline::<u32>::builder("errors")
        .step_with(|s| {
            s.task("io", |_| {
                std::fs::read("/definitely/not/here")?;
                Ok(0)
            })
            .task("anyhow", |_| {
                let e: anyhow::Result<u32> = Err(anyhow::anyhow!("anyhow says no"));
                Ok(e?)
            })
            .task("custom", |c| Err(Quota(*c.input()))?)
            .task("text", |_| Err("plain words")?)
            .strategy(conveyor::EvaluationStrategy::AnyMustSucceed)
        })
        .build()
        .unwrap();
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&p, 7)
        .unwrap();
    let messages: Vec<(String, String)> = run.errors().map(|f| (f.task().to_owned(), f.message())).collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].1.contains("No such file"), "{messages:?}");
    assert_eq!(messages[1].1, "anyhow says no");
    assert_eq!(messages[2].1, "quota of 7 exceeded");
    assert_eq!(messages[3].1, "plain words");
    // The original error stays reachable through `source()`.
    let failure = run.errors().nth(2).unwrap();
    let source = std::error::Error::source(failure).unwrap();
    assert!(source.downcast_ref::<Quota>().is_some());
}

#[test]
fn a_task_error_from_anyhow_keeps_its_message() {
    let e: TaskError = anyhow::anyhow!("deep").context("outer").into();
    assert_eq!(e.to_string(), "outer");
}

fn sink_pipeline(fail_in_branch: bool, counter: Arc<AtomicUsize>) -> Pipeline<u32> {
    Pipeline::<u32>::builder("sinks")
        .step(
            Step::new("decide", [])
                .task("decide", |c| Ok(*c.input()))
                .on_success("branch")
                .sink("cleanup"),
        )
        .step(Step::new("branch", []).task("work", move |c| {
            if fail_in_branch {
                Err(TaskError::msg("branch broke"))
            } else {
                Ok(c.previous().first().unwrap() + 1)
            }
        }))
        .step(Step::new("cleanup", []).task("cleanup", move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(0)
        }))
        .build()
        .unwrap()
}

#[test]
fn a_sink_runs_after_its_branch_succeeds_or_fails() {
    let executor = PipelineExecutor::builder().build().unwrap();
    for fail in [false, true] {
        let ran = Arc::new(AtomicUsize::new(0));
        let run = executor
            .execute(&sink_pipeline(fail, Arc::clone(&ran)), 1)
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "fail={fail}");
        let steps: Vec<&str> = run.chain().iter().map(|c| c.step()).collect();
        assert_eq!(steps, ["decide", "branch", "cleanup"], "fail={fail}");
        if fail {
            assert_eq!(run.status(), ExecutionStatus::Aborted);
            assert!(matches!(run.failure(), Some(RunError::StepFailed { step, .. }) if &**step == "branch"));
        } else {
            assert!(run.is_success());
        }
    }
}

#[test]
fn named_pools_stay_apart_and_can_be_shared() {
    let pools = Pools::builder()
        .executor("cpu", ExecutorConfig::pool(2))
        .executor("io", ExecutorConfig::pool(2))
        .executor("cpu-too", ExecutorConfig::named("cpu"))
        .build()
        .unwrap();
    assert_eq!(pools.pool_count(), 2);
    let text = PipelineExecutor::<String>::builder()
        .pools(pools.clone())
        .build()
        .unwrap();
    let numbers = PipelineExecutor::<u64>::builder()
        .pools(pools.clone())
        .build()
        .unwrap();
    let step = Step::<u64>::new("s", [])
        .task("a", |c| Ok(*c.input()))
        .task("b", |c| Ok(*c.input()))
        .task("c", |c| Ok(*c.input()));
    let step = Step::new(
        "s",
        step.tasks()
            .iter()
            .zip(["cpu", "io", "cpu-too"])
            .map(|(t, name)| t.clone().on(name)),
    );
    assert_eq!(
        numbers.plan(&step).unwrap(),
        [ExecutorConfig::named("cpu"), ExecutorConfig::named("io")]
    );
    let p = Pipeline::<String>::builder("t")
        .step_with(|s| s.task("x", |c| Ok(c.input().clone())).on("io"))
        .build()
        .unwrap();
    assert_eq!(
        text.execute(&p, "hi".into())
            .unwrap()
            .output()
            .unwrap()
            .get("x")
            .unwrap(),
        "hi"
    );
    assert!(matches!(
        PipelineExecutor::<u8>::builder()
            .pools(pools)
            .executor("more", ExecutorConfig::Inline)
            .build(),
        Err(BuildError::SharedPools)
    ));
}

#[test]
fn a_users_rayon_pool_can_be_registered() {
    let mine = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap());
    let executor = PipelineExecutor::<usize>::builder()
        .rayon_pool("mine", Arc::clone(&mine))
        .build()
        .unwrap();
    let p = Pipeline::<usize>::builder("where")
        .step_with(|s| {
            s.task("index", |_| Ok(rayon::current_thread_index().unwrap_or(99)))
                .on("mine")
        })
        .build()
        .unwrap();
    let run = executor.execute(&p, 0).unwrap();
    assert_eq!(run.output().unwrap().get("index"), Some(&0));
}

#[test]
fn names_with_control_characters_are_refused() {
    let err = PipelineExecutor::<u8>::builder()
        .executor("bad\0name", ExecutorConfig::Inline)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidName { .. }), "{err}");
    let err = Pipeline::<u8>::builder("p")
        .task("nul\0", |_| Ok(1))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidName { .. }), "{err}");
}

/// A step built one task at a time, as a loop over `Step::task` builds
/// it, is the step an iterator builds: the same tasks, name and results.
/// Each call adds in place, so 20,000 of them take milliseconds, not the
/// seconds a copy of the list per call took.
#[test]
fn a_step_built_one_task_at_a_time_is_the_step_an_iterator_builds() {
    const TASKS: u64 = 20_000;
    let task = |i: u64| Task::from_fn(format!("t{i}"), move |c: &TaskContext<'_, u64>| Ok(c.input() + i));
    let mut by_tasks = Step::of([]);
    let mut named = Step::new("named", []);
    for i in 0..TASKS {
        by_tasks = by_tasks.with(task(i));
        named = named.task(format!("n{i}"), move |c| Ok(c.input() * i));
    }
    let built = Step::of((0..TASKS).map(task));
    assert_eq!(by_tasks.name(), built.name());
    assert_eq!(by_tasks.tasks().len(), TASKS as usize);
    assert_eq!(named.name(), "named");
    let pipeline = Pipeline::builder("grown")
        .step(by_tasks)
        .step(named)
        .build()
        .unwrap();
    assert_eq!(pipeline.steps()[0].name(), built.name());
    assert_eq!(pipeline.task_count(), 2 * TASKS as usize);
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&pipeline, 1)
        .unwrap();
    let first = run.chain().head().unwrap().state().results();
    assert_eq!(first.len(), TASKS as usize);
    assert!(
        first
            .iter()
            .enumerate()
            .all(|(i, (name, v))| name == format!("t{i}") && *v == 1 + i as u64)
    );
    // A step named after its tasks, renamed, keeps the name it was given.
    let renamed = Step::of([task(0)]).with(task(1)).named("two");
    assert_eq!(renamed.name(), "two");
    let step = Pipeline::builder("p").step(renamed).build().unwrap().steps()[0].clone();
    assert_eq!(step.name(), "two");
    assert_eq!(step.tasks().len(), 2);
}
