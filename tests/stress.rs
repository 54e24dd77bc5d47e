//! Pins results + errors = tasks, declaration order and bounded memory under concurrent load.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{PLANNED, quiet_planned_panics, within};
use conveyor::{
    EvaluationStrategy, ExecutorConfig, Pipeline, PipelineExecutor, Step, Task, TaskError, TaskFailure,
};

const CALLERS: u64 = 8;
const TASKS: usize = 10_000;
const CHECKS: usize = 50;
/// Ten thousand tasks per caller on a debug build on a shared machine.
const STRESS_BOUND: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    Fails,
    Panics,
}

fn fate(i: usize) -> Fate {
    if i % 7 == 3 {
        Fate::Fails
    } else if i % 11 == 5 {
        Fate::Panics
    } else {
        Fate::Ok
    }
}

/// Puts the task with this index on the executor it should ask for.
type Place = fn(Task<u64>, usize) -> Task<u64>;

fn worker(caller: u64, i: usize) -> Task<u64> {
    Task::from_fn(format!("c{caller}-t{i}"), move |c| match fate(i) {
        Fate::Ok => Ok(*c.input() * 1_000_000 + i as u64),
        Fate::Fails => Err(TaskError::msg(format!("task {i} refuses"))),
        Fate::Panics => panic!("{PLANNED}: task {i}"),
    })
}

/// Two steps: ten thousand tasks judged leniently, then a few that each check
/// they saw exactly the successes of the first step.
fn pipeline(caller: u64, place: Place) -> Pipeline<u64> {
    let expected_ok = (0..TASKS).filter(|&i| fate(i) == Fate::Ok).count();
    let big = Step::new(
        "big",
        (0..TASKS)
            .map(|i| place(worker(caller, i), i))
            .collect::<Vec<_>>(),
    )
    .strategy(EvaluationStrategy::AnyMustSucceed);
    let checks = Step::new(
        "check",
        (0..CHECKS)
            .map(|j| {
                place(
                    Task::from_fn(format!("c{caller}-check{j}"), move |c| {
                        let seen = c.previous().len();
                        if seen == expected_ok {
                            Ok(seen as u64)
                        } else {
                            Err(TaskError::msg(format!(
                                "saw {seen} results, expected {expected_ok}"
                            )))
                        }
                    }),
                    j,
                )
            })
            .collect::<Vec<_>>(),
    );
    Pipeline::builder(format!("stress-{caller}"))
        .step(big)
        .step(checks)
        .build()
        .unwrap()
}

fn check_run(caller: u64, executor: &PipelineExecutor<u64>, pipeline: &Pipeline<u64>) {
    let run = executor.execute(pipeline, caller).unwrap();
    assert!(run.is_success(), "caller {caller}: {:?}", run.failure());
    assert_eq!(run.chain().len(), 2);

    let big = run.context("big").unwrap();
    let state = big.state();
    assert_eq!(
        state.results().len() + state.errors().len(),
        TASKS,
        "caller {caller}"
    );
    assert_eq!(big.metrics().tasks.len(), TASKS);

    let expected: Vec<(String, u64)> = (0..TASKS)
        .filter(|&i| fate(i) == Fate::Ok)
        .map(|i| (format!("c{caller}-t{i}"), caller * 1_000_000 + i as u64))
        .collect();
    let got: Vec<(String, u64)> = state
        .results()
        .iter()
        .map(|(name, v)| (name.to_owned(), *v))
        .collect();
    assert!(
        got == expected,
        "caller {caller}: results out of declaration order or wrong"
    );

    let failed: Vec<usize> = (0..TASKS).filter(|&i| fate(i) != Fate::Ok).collect();
    assert_eq!(state.errors().len(), failed.len());
    for (err, &i) in state.errors().iter().zip(&failed) {
        let name = format!("c{caller}-t{i}");
        match (fate(i), err) {
            (Fate::Fails, TaskFailure::Failed { task, step, .. })
            | (Fate::Panics, TaskFailure::Panicked { task, step, .. }) => {
                assert_eq!((&**task, &**step), (name.as_str(), "big"));
            }
            (f, other) => panic!("task {i} ({f:?}) reported {other}"),
        }
    }

    let check = run.context("check").unwrap();
    assert_eq!(check.state().results().len(), CHECKS);
    assert!(check.state().errors().is_empty(), "{:?}", check.state().errors());
}

/// Every caller runs its own pipeline through one shared executor at once.
fn hammer(executor: PipelineExecutor<u64>, place: Place) {
    quiet_planned_panics();
    within(STRESS_BOUND, move || {
        let executor = Arc::new(executor);
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let executor = Arc::clone(&executor);
                let pipeline = pipeline(caller, place);
                std::thread::spawn(move || check_run(caller, &executor, &pipeline))
            })
            .collect();
        for caller in callers {
            if let Err(payload) = caller.join() {
                std::panic::resume_unwind(payload);
            }
        }
        assert!(
            executor.states().is_empty(),
            "{} contexts outlived their runs",
            executor.states().len()
        );
    });
}

fn on_p(task: Task<u64>, _: usize) -> Task<u64> {
    task.on("p")
}

fn pool_of(threads: usize) -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .executor("p", ExecutorConfig::pool(threads))
        .build()
        .unwrap()
}

#[test]
fn eight_callers_on_a_one_thread_pool() {
    hammer(pool_of(1), on_p);
}

#[test]
fn eight_callers_on_a_two_thread_pool() {
    hammer(pool_of(2), on_p);
}

#[test]
fn eight_callers_on_a_four_thread_pool() {
    hammer(pool_of(4), on_p);
}

/// A named pool, inline and the global pool in one step: three groups run at
/// once in every caller, and their outcomes meet on one channel.
#[test]
fn eight_callers_with_three_groups_per_step() {
    fn mixed(task: Task<u64>, i: usize) -> Task<u64> {
        match i % 3 {
            0 => task.on("a"),
            1 => task.executor(ExecutorConfig::Inline),
            _ => task,
        }
    }
    let executor = PipelineExecutor::builder()
        .executor("a", ExecutorConfig::pool(2))
        .build()
        .unwrap();
    let probe = pipeline(0, mixed);
    let groups: Vec<ExecutorConfig> = executor.plan(&probe.steps()[0]).unwrap();
    assert_eq!(
        groups,
        [
            ExecutorConfig::named("a"),
            ExecutorConfig::Inline,
            ExecutorConfig::Global
        ]
    );
    hammer(executor, mixed);
}

/// Many short runs in a row through one executor leave nothing behind.
#[test]
fn live_states_do_not_grow_with_the_number_of_runs() {
    quiet_planned_panics();
    within(common::BOUND, || {
        let executor = pool_of(2);
        let pipeline = Pipeline::builder("small")
            .step(
                Step::new("s", (0..20).map(|i| on_p(worker(0, i), i)).collect::<Vec<_>>())
                    .strategy(EvaluationStrategy::AnyMustSucceed),
            )
            .build()
            .unwrap();
        for round in 0..500 {
            let run = executor.execute(&pipeline, round).unwrap();
            let state = run.chain().head().unwrap().state();
            assert_eq!(state.results().len() + state.errors().len(), 20);
            assert!(executor.states().is_empty(), "round {round}");
        }
    });
}
