use super::*;
use crate::error::TaskError;
use crate::facade::executor::PipelineExecutor;
use crate::model::step::Step;
use crate::model::strategy::EvaluationStrategy;
use crate::records::metrics::TaskMetrics;
use proptest::prelude::*;
use std::time::{Duration, SystemTime};

fn statuses() -> impl Strategy<Value = ExecutionStatus> {
    prop_oneof![
        Just(ExecutionStatus::Pending),
        Just(ExecutionStatus::Executing),
        Just(ExecutionStatus::Finished),
        Just(ExecutionStatus::Cancelled),
        Just(ExecutionStatus::Aborted),
    ]
}

pub(crate) fn records() -> impl Strategy<Value = ErrorRecord> {
    (
        prop_oneof![
            Just("task_failed".to_owned()),
            Just("task_panicked".to_owned()),
            Just("task_lost".to_owned()),
            "[a-z_]{1,12}",
        ],
        proptest::option::of(".{0,8}"),
        proptest::option::of(".{0,8}"),
        proptest::option::of(any::<u32>()),
        ".{0,16}",
    )
        .prop_map(|(kind, task, step, attempt, message)| ErrorRecord {
            kind,
            task,
            step,
            attempt,
            message,
        })
}

/// Results with unique names, as a step produces them.
fn results() -> impl Strategy<Value = Vec<(String, f64)>> {
    proptest::collection::btree_map(
        ".{0,6}",
        any::<f64>().prop_filter("JSON has no NaN or inf", |f| f.is_finite()),
        0..6,
    )
    .prop_map(|m| m.into_iter().collect::<Vec<_>>())
    .prop_shuffle()
}

fn result_set(entries: &[(String, f64)]) -> ResultSet<f64> {
    ResultSet::from_entries(entries.iter().map(|(k, v)| (k.as_str().into(), *v)).collect())
}

fn state_json(state: &ExecutionState<f64>) -> String {
    serde_json::to_string(state).unwrap()
}

proptest! {
    #[test]
    fn error_records_survive_the_trip_through_an_error(record in records()) {
        let json = serde_json::to_string(&record).unwrap();
        let back: ErrorRecord = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &record);
        let named = record.task.is_some() && record.step.is_some();
        match back.into_failure() {
            Some(failure) => prop_assert_eq!(failure.record(), record),
            None => prop_assert!(!named),
        }
    }

    #[test]
    fn result_sets_keep_values_and_order(entries in results()) {
        let set = result_set(&entries);
        let json = serde_json::to_string(&set).unwrap();
        let back: ResultSet<f64> = serde_json::from_str(&json).unwrap();
        // Bitwise: a resumed run must see exactly the floats it saved.
        prop_assert_eq!(
            back.iter().map(|(k, v)| (k.to_owned(), v.to_bits())).collect::<Vec<_>>(),
            entries.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect::<Vec<_>>()
        );
    }

    #[test]
    fn states_round_trip(status in statuses(), errors in proptest::collection::vec(records(), 0..4), entries in results()) {
        let state = ExecutionState::new()
            .with_status(status)
            .with_errors(errors.iter().cloned().filter_map(ErrorRecord::into_failure))
            .with_results(result_set(&entries));
        let json = state_json(&state);
        let back: ExecutionState<f64> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back.status(), status);
        let kept: Vec<ErrorRecord> = errors.into_iter().filter(|r| r.task.is_some() && r.step.is_some()).collect();
        prop_assert_eq!(back.errors().iter().map(TaskFailure::record).collect::<Vec<_>>(), kept);
        prop_assert_eq!(state_json(&back), json);
    }

    #[test]
    fn metrics_round_trip(
        started in any::<u64>(), nanos in 0..1_000_000_000u32, secs in 0..4_000_000_000u64,
        attempts in any::<u32>(), thread in any::<u64>(), succeeded in any::<bool>(),
    ) {
        let d = |n: u64| Duration::new(n, nanos);
        let m = ExecutionMetrics {
            run_started_at: Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)),
            started: d(started / 2),
            finished: d(started / 3),
            tasks: vec![TaskMetrics {
                task: "t".into(),
                queued: d(1),
                started: d(2),
                finished: d(started),
                attempts,
                thread,
                succeeded,
                restored: false,
            }],
        };
        let back: ExecutionMetrics = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn evaluations_round_trip(outcomes in proptest::collection::vec(any::<bool>(), 0..20), which in 0..6usize) {
        let strategies = [
            EvaluationStrategy::AllMustSucceed,
            EvaluationStrategy::AnyMustSucceed,
            EvaluationStrategy::majority(),
            EvaluationStrategy::AtLeast(3),
            EvaluationStrategy::AtLeastPercent(33.3),
            EvaluationStrategy::NoFailures,
        ];
        let r = strategies[which].evaluate(&crate::model::strategy::Tally::new(&outcomes));
        let back: EvaluationResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn statuses_round_trip(status in statuses()) {
        let back: ExecutionStatus = serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
        prop_assert_eq!(back, status);
    }
}

#[test]
fn duplicate_result_names_are_refused() {
    let err = serde_json::from_str::<ResultSet<u8>>(r#"{"a": 1, "a": 2}"#).unwrap_err();
    assert!(err.to_string().contains("task `a` appears twice"), "{err}");
}

#[test]
fn every_error_kind_is_snake_case_and_survives_a_record() {
    let failures = [
        TaskFailure::Lost {
            task: "t".into(),
            step: "s".into(),
        },
        TaskFailure::Cancelled {
            task: "t".into(),
            step: "s".into(),
            attempts: 2,
        },
    ];
    for e in failures {
        let record = e.record();
        assert!(
            record.kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{}",
            record.kind
        );
        let back = record.clone().into_failure().unwrap();
        assert_eq!(back.record(), record);
        assert_eq!(back.message(), e.message());
    }
    let errors = [
        crate::RunError::from(crate::BuildError::EmptyPipeline { pipeline: "p".into() }),
        crate::RunError::UnknownStep {
            pipeline: "p".into(),
            step: "s".into(),
        },
        crate::RunError::from(CheckpointError::Version {
            path: None,
            expected: 1,
            found: 2,
        }),
    ];
    for e in errors {
        let record = e.record();
        assert!(
            record.kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{}",
            record.kind
        );
        assert_eq!(record.message, e.to_string());
    }
}

fn pipeline() -> Pipeline<f64> {
    Pipeline::builder("p")
        .step([Task::from_fn("load", |c| Ok(*c.input()))])
        .step([
            Task::from_fn("half", |c| Ok(c.previous().first().copied().unwrap_or(0.0) / 2.0)),
            Task::from_fn("fail", |_| Err(TaskError::msg("no"))),
        ])
        .build()
        .unwrap()
}

#[test]
fn a_real_chain_round_trips_and_restores() {
    let p = pipeline();
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&p, 3.0)
        .unwrap();
    let json = serde_json::to_string(run.chain()).unwrap();
    let snapshots: Vec<ContextSnapshot<f64>> = serde_json::from_str(&json).unwrap();
    assert_eq!(snapshots.len(), 2);
    assert_eq!(&*snapshots[1].tasks[1], "fail");
    let chain = restore(snapshots, &p).unwrap();
    // Everything but the ids, which are fresh.
    let without_ids = |json: &str| {
        let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
        v.as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|c| drop(c.as_object_mut().unwrap().remove("id")));
        v
    };
    assert_eq!(
        without_ids(&serde_json::to_string(&chain).unwrap()),
        without_ids(&json)
    );
    let tail = chain.tail().unwrap();
    assert_eq!(tail.state().results().get("half"), Some(&1.5));
    assert!(matches!(
        tail.state().errors()[0],
        TaskFailure::Failed { attempt: 1, .. }
    ));
    assert_eq!(tail.tasks().len(), 2);
    // Restored contexts get fresh ids, so they never collide with live ones.
    assert!(run.chain().iter().all(|c| c.id() != tail.id()));
}

#[test]
fn restoring_into_another_pipeline_is_refused() {
    let p = pipeline();
    let run = PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&p, 3.0)
        .unwrap();
    let other = Pipeline::builder("p")
        .step([Task::from_fn("load", |c| Ok(*c.input()))])
        .step(Step::new(
            "load|half|fail",
            [Task::from_fn("x", |c| Ok(*c.input()))],
        ))
        .build()
        .unwrap();
    let err = restore(snapshot(run.chain()), &other).unwrap_err();
    assert!(matches!(err, CheckpointError::SnapshotMismatch { .. }), "{err}");
    let renamed = Pipeline::builder("q")
        .step([Task::from_fn("load", |c| Ok(*c.input()))])
        .build()
        .unwrap();
    let err = restore(snapshot(run.chain()), &renamed).unwrap_err();
    assert!(matches!(err, CheckpointError::SnapshotMismatch { .. }), "{err}");
}
