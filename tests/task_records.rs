//! What a run keeps of each task: values by column in declaration order,
//! compact stamps expanded into metrics on demand, and timing that can be
//! turned off.

use conveyor::{
    EvaluationStrategy, ExecutionStatus, ExecutorConfig, Flow, Pipeline, PipelineExecutor, RetryPolicy,
    RunOptions, Step, Task, TaskError, TaskFailure,
};

fn executor() -> PipelineExecutor<u64> {
    PipelineExecutor::builder()
        .executor("pool", ExecutorConfig::pool(2))
        .build()
        .unwrap()
}

/// A step of `n` tasks on the pool; task `i` fails when `fails(i)`.
fn step(n: u64, fails: fn(u64) -> bool) -> Step<u64> {
    Step::new(
        "wide",
        (0..n).map(|i| {
            Task::from_fn(format!("t{i}"), move |c| {
                if fails(i) {
                    Err(TaskError::msg(format!("task {i} fails")))
                } else {
                    Ok(*c.input() + i)
                }
            })
            .on("pool")
        }),
    )
    .strategy(EvaluationStrategy::AnyMustSucceed)
}

#[test]
fn values_keep_declaration_order_and_their_names_around_failures() {
    let n = 3_000;
    let fails = |i: u64| i % 7 == 3;
    let pipeline = Pipeline::builder("p").step(step(n, fails)).build().unwrap();
    let run = executor().execute(&pipeline, 1_000).unwrap();
    assert!(run.is_success(), "{:?}", run.failure());
    let out = run.output().unwrap();
    let expected: Vec<(String, u64)> = (0..n)
        .filter(|&i| !fails(i))
        .map(|i| (format!("t{i}"), 1_000 + i))
        .collect();
    let got: Vec<(String, u64)> = out.iter().map(|(k, v)| (k.to_owned(), *v)).collect();
    assert_eq!(got, expected);
    assert_eq!(out.len(), expected.len());
    assert_eq!(out.get("t4"), Some(&1_004));
    assert_eq!(out.get("t3"), None, "a failed task has no value");
    assert_eq!(out.first(), Some(&1_000));

    let context = run.context("wide").unwrap();
    let errors = context.state().errors();
    let failed: Vec<&str> = errors.iter().map(TaskFailure::task).collect();
    let expected_failed: Vec<String> = (0..n).filter(|&i| fails(i)).map(|i| format!("t{i}")).collect();
    assert_eq!(failed, expected_failed, "errors in declaration order");

    let metrics = context.metrics();
    assert_eq!(metrics.tasks.len(), n as usize);
    for (i, t) in metrics.tasks.iter().enumerate() {
        assert_eq!(&*t.task, format!("t{i}"));
        assert_eq!(t.succeeded, !fails(i as u64), "task {i}");
        assert_eq!(t.attempts, 1);
        assert!(
            t.started <= t.finished && t.queued <= t.started,
            "task {i}: {t:?}"
        );
        assert!(t.thread > 0);
        assert!(!t.restored);
    }
    // Expanded once, read the same every time, and carried by a clone.
    assert_eq!(context.metrics(), metrics);
    assert_eq!(context.clone().metrics(), metrics);
}

#[test]
fn timed_tasks_lie_within_their_step_and_never_overlap_on_one_thread() {
    // Consecutive tasks on one worker share a clock read; each must still
    // get its own span of time, after its queue time and inside its step.
    let spin = std::time::Duration::from_micros(3);
    let pipeline = Pipeline::builder("p")
        .step(Step::new(
            "spin",
            (0..2_000).map(|i| {
                Task::from_fn(format!("t{i}"), move |c: &conveyor::TaskContext<'_, u64>| {
                    let start = std::time::Instant::now();
                    while start.elapsed() < spin {
                        std::hint::spin_loop();
                    }
                    Ok(*c.input() + i)
                })
                .on("pool")
            }),
        ))
        .build()
        .unwrap();
    let run = executor().execute(&pipeline, 0).unwrap();
    let metrics = run.context("spin").unwrap().metrics();
    let mut by_thread: std::collections::BTreeMap<u64, Vec<_>> = std::collections::BTreeMap::new();
    for t in &metrics.tasks {
        assert!(t.started >= t.queued, "{}: started before it was queued", t.task);
        assert!(
            t.finished <= metrics.finished,
            "{}: finished after its step",
            t.task
        );
        // The counter and the monotonic clock may differ by parts per
        // million; a third of the spin is far more than that.
        assert!(
            t.duration() >= spin / 3,
            "{}: {:?} for a {spin:?} spin",
            t.task,
            t.duration()
        );
        by_thread
            .entry(t.thread)
            .or_default()
            .push((t.started, t.finished));
    }
    for spans in by_thread.values_mut() {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "two tasks overlap on one thread: {pair:?}"
            );
        }
    }
}

#[test]
fn the_time_a_failure_takes_to_land_is_never_charged_to_the_next_task() {
    // A slow retry predicate runs after its failing task's call, on the
    // same worker, before the worker's next task: the next task must read
    // its own start rather than share the failing task's last clock read.
    let executor: PipelineExecutor<u64> = PipelineExecutor::builder()
        .executor("one", ExecutorConfig::pool(1))
        .build()
        .unwrap();
    let pause = std::time::Duration::from_millis(20);
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .retry_if(move |_| {
            std::thread::sleep(pause);
            false
        })
        .build()
        .unwrap();
    let step = Step::new(
        "s",
        (0..64_u64).map(|i| {
            let task = Task::from_fn(format!("t{i}"), move |c: &conveyor::TaskContext<'_, u64>| {
                if i % 16 == 0 {
                    Err(TaskError::msg("no"))
                } else {
                    Ok(*c.input() + i)
                }
            })
            .on("one");
            if i % 16 == 0 {
                task.retry(policy.clone())
            } else {
                task
            }
        }),
    )
    .strategy(EvaluationStrategy::AnyMustSucceed);
    let pipeline = Pipeline::builder("p").step(step).build().unwrap();
    let run = executor.execute(&pipeline, 0).unwrap();
    let metrics = run.context("s").unwrap().metrics();
    assert_eq!(metrics.tasks.len(), 64);
    let charged: Vec<_> = metrics
        .tasks
        .iter()
        .filter(|t| t.task[1..].parse::<u64>().unwrap() % 16 != 0 && t.duration() >= pause / 2)
        .map(|t| (t.task.to_string(), t.duration()))
        .collect();
    assert!(
        charged.is_empty(),
        "no-op tasks charged with a predicate's time: {charged:?}"
    );
}

#[test]
fn with_task_timing_off_tasks_sit_at_their_queue_time_and_the_rest_is_recorded() {
    let n = 500;
    let pipeline = Pipeline::builder("p").step(step(n, |i| i == 7)).build().unwrap();
    let executor = executor();
    let untimed = executor
        .execute_with(&pipeline, 0, &RunOptions::new().task_timing(false))
        .unwrap();
    let timed = executor.execute(&pipeline, 0).unwrap();
    assert_eq!(untimed.output().unwrap(), timed.output().unwrap());
    assert_eq!(untimed.status(), ExecutionStatus::Finished);

    let metrics = untimed.context("wide").unwrap().metrics();
    assert!(metrics.finished >= metrics.started, "the step is still timed");
    for (i, t) in metrics.tasks.iter().enumerate() {
        assert_eq!((t.started, t.finished), (t.queued, t.queued), "task {i}");
        assert!(t.duration().is_zero());
        assert_eq!(t.attempts, 1);
        assert_eq!(t.succeeded, i != 7);
        assert!(t.thread > 0);
    }
    // The report still lists every task.
    let report = untimed.report();
    assert_eq!(report.steps[0].tasks.len(), n as usize);
}

#[test]
fn the_first_switch_in_declaration_order_wins_whatever_finishes_first() {
    // Task 150 switches to 2 at once; task 40 switches to 3 after a
    // moment, so it finishes later on a pool of two threads.
    let tasks = (0..200_u64).map(|i| {
        Task::flow_fn(format!("t{i}"), move |c| {
            Ok(match i {
                40 => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    Flow::Switch(3, *c.input())
                }
                150 => Flow::Switch(2, *c.input()),
                _ => Flow::Continue(*c.input()),
            })
        })
        .on("pool")
    });
    let pipeline = Pipeline::builder("p")
        .step(Step::new("fan", tasks).on_switch(2, "two").on_switch(3, "three"))
        .step(Step::new("two", [Task::from_fn("two.t", |_| Ok(2))]))
        .step(Step::new("three", [Task::from_fn("three.t", |_| Ok(3))]))
        .build()
        .unwrap();
    let run = executor().execute(&pipeline, 0).unwrap();
    assert!(run.is_success(), "{:?}", run.failure());
    assert_eq!(run.output().unwrap().first(), Some(&3));
    assert!(run.context("two").is_none());
}

#[test]
fn steps_of_many_sizes_give_every_value_in_order() {
    // Small and large steps with gaps where tasks failed, run twice each
    // on one executor, with a small step after each that reads them.
    let executor = executor();
    for n in [255_u64, 256, 257, 65_536, 70_000] {
        let pipeline = Pipeline::builder("p")
            .step(step(n, |i| i % 1_000 == 999))
            .step(Step::new(
                "small",
                (0..3).map(|i| {
                    Task::from_fn(format!("small{i}"), |c| Ok(c.previous().len() as u64)).on("pool")
                }),
            ))
            .build()
            .unwrap();
        for round in 0..2 {
            let run = executor.execute(&pipeline, 0).unwrap();
            let wide = run.context("wide").unwrap();
            let values: Vec<u64> = wide.state().results().values().copied().collect();
            let expected: Vec<u64> = (0..n).filter(|i| i % 1_000 != 999).collect();
            assert_eq!(values, expected, "{n} tasks, round {round}");
            assert_eq!(wide.state().errors().len() as u64, n / 1_000, "{n} tasks");
            assert_eq!(wide.metrics().tasks.len() as u64, n);
            assert_eq!(run.output().unwrap().len(), 3);
        }
    }
}

#[test]
fn many_runs_at_once_on_one_executor_keep_their_own_values() {
    let executor = std::sync::Arc::new(executor());
    let pipeline = std::sync::Arc::new(
        Pipeline::builder("p")
            .step(step(2_000, |i| i % 5 == 0))
            .build()
            .unwrap(),
    );
    let (tx, rx) = crossbeam_channel::unbounded();
    for t in 0..8_u64 {
        let (executor, pipeline, tx) = (executor.clone(), pipeline.clone(), tx.clone());
        std::thread::spawn(move || {
            for r in 0..20_u64 {
                let input = t * 1_000_000 + r * 10_000;
                let run = executor.execute(&pipeline, input).unwrap();
                let ok = run.output().unwrap().iter().all(|(name, v)| {
                    name[1..].parse::<u64>().map(|i| *v == input + i && i % 5 != 0) == Ok(true)
                });
                tx.send(ok && run.output().unwrap().len() == 1_600).unwrap();
            }
        });
    }
    drop(tx);
    for _ in 0..160 {
        let ok = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a run got stuck");
        assert!(ok, "a run saw another run's values");
    }
}
