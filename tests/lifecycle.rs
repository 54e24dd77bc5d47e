//! Pins a context's life as others see it: live states, signal order, the run's chain, and execute_step linking.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{BOUND, within};
use conveyor::signal::Signal;
use conveyor::{
    ContextId, ExecutionChain, ExecutionStatus, ExecutorConfig, Pipeline, PipelineExecutor, RunError, Step,
    Task, TaskError, TaskFailure, observer_fn,
};

fn add(name: &str, n: u64) -> Task<u64> {
    Task::from_fn(name, move |c| Ok(*c.input() + n))
}

#[test]
fn live_states_are_readable_from_another_thread_while_a_run_executes() {
    within(BOUND, || {
        let executor = Arc::new(
            PipelineExecutor::builder()
                .executor("p", ExecutorConfig::pool(2))
                .build()
                .unwrap(),
        );
        let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
        let (release_tx, release_rx) = crossbeam_channel::bounded::<()>(1);
        let pipeline = Pipeline::builder("p")
            .step(Step::new("first", [add("a", 1).on("p")]))
            .step(Step::new(
                "blocked",
                [Task::from_fn("wait", move |c| {
                    entered_tx.send(()).map_err(TaskError::msg)?;
                    release_rx
                        .recv_timeout(BOUND)
                        .map_err(|_| TaskError::msg("never released"))?;
                    Ok(*c.previous().first().unwrap())
                })
                .on("p")],
            ))
            .build()
            .unwrap();

        let ex = Arc::clone(&executor);
        let running = std::thread::spawn(move || ex.execute(&pipeline, 10).unwrap());
        entered_rx.recv_timeout(BOUND).expect("the blocking task started");

        // The finished first step stays live until the whole run ends.
        let mut live: Vec<_> = executor
            .states()
            .live()
            .into_iter()
            .map(|id| (id, executor.states().state(id).unwrap().status()))
            .collect();
        live.sort_by_key(|(id, _)| *id);
        assert_eq!(executor.states().len(), 2);
        let statuses: Vec<_> = live.iter().map(|(_, s)| *s).collect();
        assert_eq!(statuses, [ExecutionStatus::Finished, ExecutionStatus::Executing]);

        release_tx.send(()).unwrap();
        let run = running.join().unwrap();
        assert!(run.is_success());
        assert_eq!(run.output().unwrap().first(), Some(&11));
        let ids: Vec<ContextId> = run.chain().iter().map(|c| c.id()).collect();
        assert_eq!(ids, live.iter().map(|(id, _)| *id).collect::<Vec<_>>());
        assert!(executor.states().is_empty());
        assert!(executor.states().state(ids[1]).is_none());
    });
}

/// Records every signal as `kind:subject`.
fn recorder() -> (Arc<Mutex<Vec<String>>>, impl conveyor::Observer + 'static) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let observer = observer_fn(move |s| {
        let line = match s {
            Signal::PipelineStarted(e) => format!("pipeline_started:{}:{:?}", e.pipeline, e.status),
            Signal::PipelineFinished(e) => format!("pipeline_finished:{}:{:?}", e.pipeline, e.status),
            Signal::PipelineStopped(e) => format!("pipeline_stopped:{}", e.pipeline),
            Signal::ContextInitialized(e) => format!("context_initialized:{}:{}", e.step, e.status),
            Signal::ContextStarted(e) => format!("context_started:{}:{}", e.step, e.status),
            Signal::ContextFinished(e) => format!("context_finished:{}:{}", e.step, e.status),
            Signal::ContextAborted(e) => format!("context_aborted:{}:{}", e.step, e.status),
            Signal::ContextCancelled(e) => format!("context_cancelled:{}", e.step),
            Signal::TaskStarted(e) => format!("task_started:{}", e.task),
            Signal::TaskFinished(e) => format!("task_finished:{}:{}", e.task, e.error.is_some()),
            _ => "unknown".to_owned(),
        };
        sink.lock().unwrap().push(line);
    });
    (log, observer)
}

#[test]
fn signals_of_a_two_step_run_come_in_lifecycle_order() {
    within(BOUND, || {
        let (log, observer) = recorder();
        // Inline tasks run one after another, so the whole order is fixed.
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::Inline)
            .observer(observer)
            .build()
            .unwrap();
        let pipeline = Pipeline::builder("two")
            .step(Step::new("s1", [add("a", 1), add("b", 2)]))
            .step(Step::new("s2", [add("c", 3)]))
            .build()
            .unwrap();
        assert!(executor.execute(&pipeline, 0).unwrap().is_success());
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            [
                "pipeline_started:two:None",
                "context_initialized:s1:pending",
                "context_started:s1:executing",
                "task_started:a",
                "task_finished:a:false",
                "task_started:b",
                "task_finished:b:false",
                "context_finished:s1:finished",
                "context_initialized:s2:pending",
                "context_started:s2:executing",
                "task_started:c",
                "task_finished:c:false",
                "context_finished:s2:finished",
                "pipeline_finished:two:Some(Finished)",
            ]
        );
    });
}

#[test]
fn signals_of_parallel_tasks_stay_inside_their_context() {
    within(BOUND, || {
        let (log, observer) = recorder();
        let executor = PipelineExecutor::builder()
            .executor("p", ExecutorConfig::pool(2))
            .observer(observer)
            .build()
            .unwrap();
        let names: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
        let pipeline = Pipeline::builder("par")
            .step(Step::new(
                "s1",
                names.iter().map(|n| add(n, 1).on("p")).collect::<Vec<_>>(),
            ))
            .step(Step::new("s2", [add("last", 0).on("p")]))
            .build()
            .unwrap();
        assert!(executor.execute(&pipeline, 0).unwrap().is_success());
        let log = log.lock().unwrap().clone();
        let at = |line: &str| {
            log.iter()
                .position(|l| l == line)
                .unwrap_or_else(|| panic!("{line} missing from {log:#?}"))
        };
        assert_eq!(at("pipeline_started:par:None"), 0);
        assert_eq!(at("pipeline_finished:par:Some(Finished)"), log.len() - 1);
        let (open, close) = (
            at("context_started:s1:executing"),
            at("context_finished:s1:finished"),
        );
        assert!(at("context_initialized:s1:pending") < open);
        for n in &names {
            let (start, end) = (
                at(&format!("task_started:{n}")),
                at(&format!("task_finished:{n}:false")),
            );
            assert!(open < start && start < end && end < close, "{n}: {log:#?}");
        }
        assert!(close < at("context_initialized:s2:pending"));
        assert_eq!(log.len(), 2 + 2 * 3 + 2 * (names.len() + 1));
    });
}

#[test]
fn an_aborted_step_signals_abort_and_ends_the_run() {
    within(BOUND, || {
        let (log, observer) = recorder();
        let executor = PipelineExecutor::builder()
            .default_executor(ExecutorConfig::Inline)
            .observer(observer)
            .build()
            .unwrap();
        let pipeline = Pipeline::builder("bad")
            .step(Step::new(
                "s1",
                [Task::from_fn("no", |_| Err(TaskError::msg("refused")))],
            ))
            .step(Step::new("s2", [add("never", 0)]))
            .build()
            .unwrap();
        let run = executor.execute(&pipeline, 0).unwrap();
        assert_eq!(run.status(), ExecutionStatus::Aborted);
        assert_eq!(
            log.lock().unwrap().as_slice(),
            [
                "pipeline_started:bad:None",
                "context_initialized:s1:pending",
                "context_started:s1:executing",
                "task_started:no",
                "task_finished:no:true",
                "context_aborted:s1:aborted",
                "pipeline_finished:bad:Some(Aborted)",
            ]
        );
    });
}

#[test]
fn a_run_chain_links_its_contexts_both_ways() {
    within(BOUND, || {
        let executor = PipelineExecutor::<u64>::builder().build().unwrap();
        let pipeline = Pipeline::builder("chain")
            .step(Step::new("s1", [add("a", 1)]))
            .step(Step::new("s2", [add("b", 2), add("c", 3)]))
            .step(Step::new("s3", [add("d", 4)]))
            .build()
            .unwrap();
        let run = executor.execute(&pipeline, 0).unwrap();
        let chain = run.chain();
        assert_eq!(chain.len(), 3);
        let forward: Vec<&str> = chain.iter().map(|c| c.step()).collect();
        assert_eq!(forward, ["s1", "s2", "s3"]);
        let backward: Vec<&str> = chain.iter_back().map(|c| c.step()).collect();
        assert_eq!(backward, ["s3", "s2", "s1"]);

        let (head, tail) = (chain.head().unwrap(), chain.tail().unwrap());
        assert_eq!((head.step(), tail.step()), ("s1", "s3"));
        assert!(chain.previous(head.id()).is_none());
        assert!(chain.next(tail.id()).is_none());
        let middle = chain.next(head.id()).unwrap();
        assert_eq!(middle.step(), "s2");
        assert_eq!(chain.previous(middle.id()).unwrap().id(), head.id());
        assert_eq!(chain.next(middle.id()).unwrap().id(), tail.id());
        let from_middle: Vec<&str> = chain.iter_from(middle.id()).map(|c| c.step()).collect();
        assert_eq!(from_middle, ["s2", "s3"]);
        assert_eq!(chain.get(middle.id()).unwrap().pipeline(), "chain");

        let by_c: Vec<ContextId> = chain.filter_by_event("c").map(|c| c.id()).collect();
        assert_eq!(by_c, [middle.id()]);
        assert_eq!(chain.filter_by_event("d").next().unwrap().id(), tail.id());
        assert_eq!(chain.filter_by_event("nope").count(), 0);
        assert_eq!(run.context("s2").unwrap().id(), middle.id());
        for c in chain.iter() {
            assert_eq!(c.state().status(), ExecutionStatus::Finished);
        }
    });
}

#[test]
fn execute_step_links_after_the_given_context_and_sees_its_results() {
    within(BOUND, || {
        let executor = PipelineExecutor::<u64>::builder()
            .executor("p", ExecutorConfig::pool(2))
            .build()
            .unwrap();
        let pipeline = Pipeline::builder("manual")
            .step(Step::new("load", [add("loaded", 100).on("p")]))
            .step(Step::new(
                "double",
                [Task::from_fn("doubled", |c| {
                    c.previous()
                        .get("loaded")
                        .map(|v| v * 2)
                        .ok_or_else(|| TaskError::msg("no previous result"))
                })
                .on("p")],
            ))
            .build()
            .unwrap();
        let mut chain = ExecutionChain::new();
        let load = executor
            .execute_step(&pipeline, "load", 1, &mut chain, None)
            .unwrap();
        let double = executor
            .execute_step(&pipeline, "double", 1, &mut chain, Some(load))
            .unwrap();
        assert_eq!(
            chain.get(double).unwrap().state().results().get("doubled"),
            Some(&202)
        );
        assert_eq!(chain.next(load).unwrap().id(), double);

        // Linking after the head again puts the new context between the two.
        let between = executor
            .execute_step(&pipeline, "double", 1, &mut chain, Some(load))
            .unwrap();
        let order: Vec<ContextId> = chain.iter().map(|c| c.id()).collect();
        assert_eq!(order, [load, between, double]);
        assert_eq!(chain.previous(double).unwrap().id(), between);

        // Without a previous context the step sees no results and fails.
        let alone = executor
            .execute_step(&pipeline, "double", 1, &mut chain, None)
            .unwrap();
        assert_eq!(chain.head().unwrap().id(), alone);
        let state = chain.get(alone).unwrap().state();
        assert_eq!(state.status(), ExecutionStatus::Aborted);
        assert!(matches!(state.errors(), [TaskFailure::Failed { task, .. }] if &**task == "doubled"));
        assert!(executor.states().is_empty());
    });
}

#[test]
fn execute_step_refuses_an_unknown_step_or_previous_context() {
    within(BOUND, || {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = Arc::clone(&ran);
        let executor = PipelineExecutor::<u64>::builder().build().unwrap();
        let pipeline = Pipeline::builder("manual")
            .step(Step::new(
                "only",
                [Task::from_fn("count", move |c| {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(*c.input())
                })],
            ))
            .build()
            .unwrap();
        let mut chain = ExecutionChain::new();
        let first = executor
            .execute_step(&pipeline, "only", 1, &mut chain, None)
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);

        match executor.execute_step(&pipeline, "missing", 1, &mut chain, Some(first)) {
            Err(e @ RunError::UnknownStep { .. }) => {
                assert!(e.to_string().contains("`missing`"), "{e}");
                assert!(e.to_string().contains("`manual`"), "{e}");
            }
            other => panic!("expected UnknownStep, got {other:?}"),
        }
        let stranger = ContextId::from(u64::MAX);
        match executor.execute_step(&pipeline, "only", 1, &mut chain, Some(stranger)) {
            Err(e @ RunError::UnknownContext { context, .. }) => {
                assert_eq!(context, stranger);
                assert!(e.to_string().contains(&stranger.to_string()), "{e}");
            }
            other => panic!("expected UnknownContext, got {other:?}"),
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1, "a refused step ran its tasks");
        assert_eq!(chain.len(), 1);
        assert!(executor.states().is_empty());
    });
}

#[test]
fn states_vanish_after_a_run_that_could_not_start() {
    within(BOUND, || {
        let executor = PipelineExecutor::<u64>::builder().build().unwrap();
        let pipeline = Pipeline::builder("p")
            .step(Step::new("s", [add("a", 1).on("nowhere")]))
            .build()
            .unwrap();
        assert!(executor.execute(&pipeline, 0).is_err());
        let mut chain = ExecutionChain::new();
        assert!(
            executor
                .execute_step(&pipeline, "s", 0, &mut chain, None)
                .is_err()
        );
        assert!(chain.is_empty());
        assert!(executor.states().is_empty());
    });
}
