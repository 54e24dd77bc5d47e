//! Branches, switch targets, sinks and stopping a run from a task.

use std::sync::{Arc, Mutex};

use conveyor::error::CancelledBy;
use conveyor::{
    BuildError, ExecutionStatus, ExecutorConfig, Flow, Pipeline, PipelineExecutor, RunError, Step, Task,
    TaskError,
};

type Log = Arc<Mutex<Vec<String>>>;

/// A one-task step that records its name when it runs and succeeds or fails
/// as told.
fn step(log: &Log, name: &str, ok: bool) -> Step<i64> {
    let log = Arc::clone(log);
    let task_name = format!("{name}.task");
    let step_name = name.to_owned();
    Step::new(
        name,
        [Task::from_fn(task_name, move |c| {
            log.lock().unwrap().push(step_name.clone());
            if ok {
                Ok(*c.input())
            } else {
                Err(TaskError::msg("told to fail"))
            }
        })],
    )
}

fn switch_step(log: &Log, name: &str) -> Step<i64> {
    let log = Arc::clone(log);
    let step_name = name.to_owned();
    Step::new(
        name,
        [Task::flow_fn(format!("{name}.task"), move |c| {
            log.lock().unwrap().push(step_name.clone());
            let v = *c.input();
            Ok(if (2..=9).contains(&v) || v > 9 {
                Flow::Switch(v as u8, v)
            } else {
                Flow::Continue(v)
            })
        })],
    )
}

fn executor() -> PipelineExecutor<i64> {
    PipelineExecutor::builder()
        .default_executor(ExecutorConfig::pool(2))
        .build()
        .unwrap()
}

fn ran(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn success_and_failure_branches_each_run_then_the_root_sink() {
    let log = Log::default();
    for (ok, expected) in [(true, ["root", "yes", "sink"]), (false, ["root", "no", "sink"])] {
        let p = Pipeline::builder("branch")
            .step(
                step(&log, "root", ok)
                    .on_success("yes")
                    .on_failure("no")
                    .sink("sink"),
            )
            .step(step(&log, "no", true))
            .step(step(&log, "yes", true))
            .step(step(&log, "sink", true))
            .build()
            .unwrap();
        let run = executor().execute(&p, 1).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Finished, "root ok = {ok}");
        assert_eq!(ran(&log), expected);
        let root = run.context("root").unwrap();
        let expected_root = if ok {
            ExecutionStatus::Finished
        } else {
            ExecutionStatus::Aborted
        };
        assert_eq!(root.state().status(), expected_root);
    }
}

/// A failed step without a failure branch aborts the run: its success
/// branch and the steps after its sink are skipped, but its sink still runs,
/// like a `finally` block, and the run reports the step's failure.
#[test]
fn a_failure_without_a_failure_branch_runs_its_sink_then_aborts() {
    let log = Log::default();
    let p = Pipeline::builder("abort")
        .step(step(&log, "a", false).on_success("b").sink("c"))
        .step(step(&log, "b", true))
        .step(step(&log, "c", true))
        .step(step(&log, "d", true))
        .build()
        .unwrap();
    let run = executor().execute(&p, 1).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    assert_eq!(ran(&log), ["a", "c"]);
    assert_eq!(
        run.context("c").unwrap().state().status(),
        ExecutionStatus::Finished
    );
    assert!(matches!(run.output(), Err(RunError::StepFailed { step, .. }) if &*step == "a"));

    // Without a sink, nothing after the failed step runs.
    let p = Pipeline::builder("abort")
        .step(step(&log, "a", false))
        .step(step(&log, "b", true))
        .build()
        .unwrap();
    let run = executor().execute(&p, 1).unwrap();
    assert_eq!(run.status(), ExecutionStatus::Aborted);
    assert_eq!(ran(&log), ["a"]);
}

#[test]
fn every_switch_target_can_be_taken() {
    let log = Log::default();
    let mut builder = Pipeline::builder("switch");
    let mut root = switch_step(&log, "root").sink("end");
    for n in 2..=9u8 {
        root = root.on_switch(n, format!("to{n}"));
    }
    builder = builder.step(root);
    for n in 2..=9u8 {
        builder = builder.step(step(&log, &format!("to{n}"), true));
    }
    let p = builder.step(step(&log, "end", true)).build().unwrap();
    let executor = executor();
    for n in 2..=9i64 {
        let run = executor.execute(&p, n).unwrap();
        assert!(run.is_success());
        assert_eq!(ran(&log), ["root".to_owned(), format!("to{n}"), "end".to_owned()]);
    }
    // No switch picked: straight to the next free step, the sink.
    executor.execute(&p, 1).unwrap();
    assert_eq!(ran(&log), ["root", "end"]);
}

#[test]
fn a_switch_the_step_does_not_define_is_an_error_naming_step_and_number() {
    let log = Log::default();
    let p = Pipeline::builder("switch")
        .step(switch_step(&log, "root").on_switch(2, "two"))
        .step(step(&log, "two", true))
        .build()
        .unwrap();
    for n in [7, 42] {
        let run = executor().execute(&p, n).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        match run.output() {
            Err(RunError::UnknownSwitch { step, task, target }) => {
                assert_eq!((&*step, &*task, i64::from(target)), ("root", "root.task", n));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn multi_step_branches_continue_with_then_before_the_sink() {
    let log = Log::default();
    let p = Pipeline::builder("long")
        .step(step(&log, "a", true).on_success("b1").sink("z"))
        .step(step(&log, "b1", true).then("b2"))
        .step(step(&log, "b2", true))
        .step(step(&log, "z", true))
        .build()
        .unwrap();
    executor().execute(&p, 0).unwrap();
    assert_eq!(ran(&log), ["a", "b1", "b2", "z"]);
}

#[test]
fn a_task_can_stop_the_run_by_error_or_by_flow() {
    let log = Log::default();
    let stopper_err = Task::from_fn("halt", |_| Err(TaskError::stop("enough")));
    let stopper_ok = Task::flow_fn("halt", |c| Ok(Flow::Stop(*c.input())));
    for stopper in [stopper_err, stopper_ok] {
        let p = Pipeline::builder("stop")
            .step(step(&log, "first", true))
            .step(Step::new(
                "halting",
                [stopper.clone(), Task::from_fn("sibling", |c| Ok(*c.input()))],
            ))
            .step(step(&log, "never", true))
            .build()
            .unwrap();
        let run = executor().execute(&p, 3).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Cancelled);
        assert_eq!(ran(&log), ["first"]);
        let halting = run.context("halting").unwrap();
        assert_eq!(halting.state().status(), ExecutionStatus::Cancelled);
        // The sibling still finished: stopping ends the run after the step.
        assert_eq!(halting.state().results().get("sibling"), Some(&3));
        assert!(
            matches!(run.output(), Err(RunError::Cancelled { by: CancelledBy::Task(task), .. }) if &*task == "halt")
        );
    }
}

#[test]
fn bad_flows_are_typed_errors_at_build() {
    let log = Log::default();
    let err = Pipeline::builder("p")
        .step(step(&log, "a", true).on_switch(1, "a"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidSwitch { target: 1, .. }));
    let err = Pipeline::builder("p")
        .step(step(&log, "a", true).on_switch(10, "a"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidSwitch { target: 10, .. }));
    let err = Pipeline::builder("p")
        .step(step(&log, "a", true).on_success("ghost"))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, BuildError::MissingStep { to, .. } if &**to == "ghost"),
        "{err}"
    );
    let err = Pipeline::builder("p")
        .step(step(&log, "a", true).on_failure("b"))
        .step(step(&log, "b", true).then("a"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Cycle { .. }), "{err}");
    assert!(
        err.to_string().contains("`a`") && err.to_string().contains("`b`"),
        "{err}"
    );
}

/// Nested branches with sinks: each sink runs once, inner first, and a sink
/// inside an outer branch goes on to the outer sink rather than falling
/// through to the step declared after it, whatever the declaration order.
/// Two branches that share a sink run it once.
#[test]
fn nested_sinks_each_run_once_in_nesting_order() {
    let log: Log = Arc::default();
    let build = |order: &[&str], inner_sink: &str| {
        let mut b = Pipeline::builder("nested")
            .step(step(&log, "A", true).on_success("B").sink("Z"))
            .step(step(&log, "B", true).on_success("C").sink(inner_sink))
            .step(step(&log, "C", true));
        for name in order {
            b = b.step(step(&log, name, true));
        }
        b.build().unwrap()
    };
    for (order, inner, expected) in [
        (&["Y", "Z"][..], "Y", &["A", "B", "C", "Y", "Z"][..]),
        (&["Z", "Y"][..], "Y", &["A", "B", "C", "Y", "Z"][..]),
        (&["Y", "Z", "END"][..], "Y", &["A", "B", "C", "Y", "Z", "END"][..]),
        (&["Z"][..], "Z", &["A", "B", "C", "Z"][..]),
    ] {
        let p = build(order, inner);
        let run = executor().execute(&p, 1).unwrap();
        assert!(run.is_success(), "{order:?}");
        assert_eq!(ran(&log), expected, "declared {order:?}, inner sink {inner}");
        let steps: Vec<&str> = run.chain().iter().map(|c| c.step()).collect();
        assert_eq!(steps, expected);
    }
    // A failure branch inside a branch: its sink, then the outer sink, then
    // the step after the root, each once.
    let p = Pipeline::builder("nested")
        .step(step(&log, "A", true).on_success("B").sink("Z"))
        .step(step(&log, "B", false).on_failure("F").sink("Y"))
        .step(step(&log, "F", true))
        .step(step(&log, "Y", true))
        .step(step(&log, "Z", true))
        .step(step(&log, "END", true))
        .build()
        .unwrap();
    let run = executor().execute(&p, 1).unwrap();
    assert!(run.is_success());
    assert_eq!(ran(&log), ["A", "B", "F", "Y", "Z", "END"]);
    // A branch that is its own step's sink runs once.
    let p = Pipeline::builder("same")
        .step(step(&log, "A", true).on_success("S").sink("S"))
        .step(step(&log, "S", true))
        .build()
        .unwrap();
    assert!(executor().execute(&p, 1).unwrap().is_success());
    assert_eq!(ran(&log), ["A", "S"]);
}
