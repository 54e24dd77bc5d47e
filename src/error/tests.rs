use std::error::Error as _;

use super::*;

#[test]
fn a_failed_task_prints_its_message_once_through_the_chain() {
    let te = TaskError::from(std::io::Error::other("disk on fire"));
    let failure = TaskFailure::Failed {
        task: "t".into(),
        step: "s".into(),
        attempt: 1,
        cause: te.into_cause(),
    };
    assert_eq!(failure.to_string(), "task `t` in step `s` failed on attempt 1");
    assert_eq!(failure.source().unwrap().to_string(), "disk on fire");
    let run = RunError::step_failed("s".into(), "all_must_succeed".into(), 0, 1, vec![failure]);
    let mut chain = vec![run.to_string()];
    let mut source = run.source();
    while let Some(e) = source {
        chain.push(e.to_string());
        source = e.source();
    }
    assert_eq!(
        chain,
        [
            "step `s` failed under all_must_succeed: 0 of 1 tasks succeeded; failed: `t`",
            "task `t` in step `s` failed on attempt 1",
            "disk on fire",
        ]
    );
}

#[test]
fn unknown_executor_names_the_task() {
    let err = BuildError::UnknownExecutor {
        name: "gpu".into(),
        task: Some("hash".into()),
        step: Some("s1".into()),
    };
    assert_eq!(
        err.to_string(),
        "no executor named `gpu` is registered (asked for by task `hash` in step `s1`)"
    );
}

#[test]
fn strings_and_boxed_errors_convert_into_task_errors() {
    fn text() -> Result<(), TaskError> {
        Err("plain text")?
    }
    fn boxed() -> Result<(), TaskError> {
        let e: Box<dyn std::error::Error + Send + Sync> = "boxed".into();
        Err(e)?
    }
    assert_eq!(text().unwrap_err().to_string(), "plain text");
    assert_eq!(boxed().unwrap_err().to_string(), "boxed");
}

#[test]
fn records_round_trip() {
    let failure = TaskFailure::TimedOut {
        task: "t".into(),
        step: "s".into(),
        scope: DeadlineScope::Run,
        limit: std::time::Duration::from_millis(5),
    };
    let record = failure.record();
    assert_eq!(record.kind, "task_timed_out");
    let back = record.clone().into_failure().unwrap();
    assert_eq!(back.record(), record);
    assert!(ErrorRecord::new("timeout", "late").into_failure().is_none());
}
