use super::*;
use crate::Run;
use crate::error::TaskError;
use crate::facade::executor::PipelineExecutor;
use crate::model::pipeline::Pipeline;
use crate::model::strategy::{EvaluationStrategy, Tally};
use crate::model::task::Task;
use proptest::prelude::*;

fn failing_run() -> Run<u32> {
    let pipeline = Pipeline::builder("demo")
        .step([Task::from_fn("load", |c| Ok(*c.input()))])
        .step([
            Task::from_fn("ok", |c| Ok(c.previous().first().copied().unwrap_or(0) + 1)),
            Task::from_fn("bad", |_| Err(TaskError::msg("disk full"))),
        ])
        .build()
        .unwrap();
    PipelineExecutor::builder()
        .build()
        .unwrap()
        .execute(&pipeline, 4)
        .unwrap()
}

#[test]
fn a_report_says_what_happened_where() {
    let report = failing_run().report();
    assert_eq!(report.report, REPORT_FORMAT);
    assert_eq!(report.pipeline, "demo");
    assert_eq!(report.status, ExecutionStatus::Aborted);
    assert_eq!(
        report.totals,
        Totals {
            steps: 2,
            tasks: 3,
            attempts: 3,
            errors: 1
        }
    );
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(failure.kind, "step_failed");
    assert_eq!(failure.step.as_deref(), Some("ok|bad"));
    let step = report.step("ok|bad").unwrap();
    assert_eq!(step.status, ExecutionStatus::Aborted);
    assert_eq!(
        step.errors,
        vec![ErrorRecord {
            kind: "task_failed".into(),
            task: Some("bad".into()),
            step: Some("ok|bad".into()),
            attempt: Some(1),
            message: "disk full".into(),
        }]
    );
    assert_eq!(
        step.tasks
            .iter()
            .map(|t| (&*t.task, t.succeeded))
            .collect::<Vec<_>>(),
        [("ok", true), ("bad", false)]
    );
    assert!(!step.evaluation.as_ref().unwrap().success);
    assert!(report.steps[0].finished_us <= step.started_us);
    assert!(
        step.tasks
            .iter()
            .all(|t| t.started_us <= t.finished_us && t.attempts == 1)
    );
    assert!(report.started_at_unix_ms.unwrap() > 1_600_000_000_000);
}

#[test]
fn a_report_round_trips_through_json() {
    let report = failing_run().report();
    let json = report.to_json().unwrap();
    let back: RunReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["steps"][1]["errors"][0]["task"], "bad");
    assert_eq!(value["steps"][1]["tasks"][1]["attempts"], 1);
    assert_eq!(value["status"], "aborted");
}

proptest! {
    #[test]
    fn step_reports_round_trip(
        outcomes in proptest::collection::vec(any::<bool>(), 0..6),
        times in proptest::collection::vec(any::<u64>(), 7),
        attempts in any::<u32>(),
        message in ".{0,20}",
    ) {
        let step = StepReport {
            step: "s".into(),
            context: ContextId::from(times[0]),
            restored: attempts % 2 == 0,
            status: ExecutionStatus::Finished,
            started_us: times[1],
            finished_us: times[2],
            duration_us: times[3],
            evaluation: Some(EvaluationStrategy::majority().evaluate(&Tally::new(&outcomes))),
            errors: vec![ErrorRecord::new("task_lost", message)],
            tasks: outcomes
                .iter()
                .map(|ok| TaskReport {
                    task: "t".into(),
                    succeeded: *ok,
                    restored: !*ok && attempts % 3 == 0,
                    attempts,
                    queued_us: times[4],
                    started_us: times[5],
                    finished_us: times[6],
                    duration_us: times[6].saturating_sub(times[5]),
                    thread: times[0],
                })
                .collect(),
        };
        let back: StepReport = serde_json::from_str(&serde_json::to_string(&step).unwrap()).unwrap();
        prop_assert_eq!(back, step);
    }
}
