//! Failures and run errors as plain, serialisable data.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::run::RunError;
use super::task::{Cause, Message, TaskFailure};

/// A [`TaskFailure`] or [`RunError`] as plain data: what reports and
/// checkpoints hold.
///
/// Errors carry causes that cannot be serialised; the record keeps what a
/// person or a script needs: the variant's stable `kind`, the task, step and
/// attempt it is about, and the message. For task failures the message is
/// the task's own ([`TaskFailure::message`]); for run errors it is the whole
/// error's text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// The kind: `"task_failed"`, `"task_panicked"`, `"step_failed"`, ….
    pub kind: String,
    /// The task it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The step it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The attempt it is about, from 1, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// What went wrong.
    pub message: String,
}

impl ErrorRecord {
    /// A record of `kind` with `message` and nothing else.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            task: None,
            step: None,
            attempt: None,
            message: message.into(),
        }
    }

    /// The task failure back, when the record is about a task. Failures and
    /// panics come back as their own variants (a failure's cause becomes a
    /// plain message); every other kind comes back as
    /// [`TaskFailure::Recorded`]. Either way `TaskFailure::record` gives
    /// this record again. `None` when the record names no task and step.
    #[must_use]
    pub fn into_failure(self) -> Option<TaskFailure> {
        let (Some(task), Some(step)) = (self.task, self.step) else {
            return None;
        };
        Some(match (self.kind.as_str(), self.attempt) {
            ("task_failed", Some(attempt)) => TaskFailure::Failed {
                task: task.into(),
                step: step.into(),
                attempt,
                cause: Cause::new(Message(self.message)),
            },
            ("task_panicked", Some(attempt)) => TaskFailure::Panicked {
                task: task.into(),
                step: step.into(),
                attempt,
                message: self.message,
            },
            (kind, attempt) => TaskFailure::Recorded {
                kind: kind.to_owned(),
                task: task.into(),
                step: step.into(),
                attempt,
                message: self.message,
            },
        })
    }
}

impl TaskFailure {
    /// The failure as plain, serialisable data.
    ///
    /// ```
    /// use conveyor::error::ErrorRecord;
    /// let record: ErrorRecord = serde_json::from_str(
    ///     r#"{"kind":"task_panicked","task":"hash","step":"s1","attempt":2,"message":"boom"}"#,
    /// ).unwrap();
    /// let failure = record.clone().into_failure().unwrap();
    /// assert_eq!(failure.to_string(), "task `hash` in step `s1` panicked on attempt 2: boom");
    /// assert_eq!(failure.record(), record);
    /// ```
    #[must_use]
    pub fn record(&self) -> ErrorRecord {
        ErrorRecord {
            kind: self.kind().to_owned(),
            task: Some(self.task().to_owned()),
            step: Some(self.step().to_owned()),
            attempt: self.attempt(),
            message: self.message(),
        }
    }
}

impl RunError {
    /// The error as plain, serialisable data; its message is the whole
    /// error's text.
    #[must_use]
    pub fn record(&self) -> ErrorRecord {
        ErrorRecord {
            kind: self.kind().to_owned(),
            task: match self {
                RunError::UnknownSwitch { task, .. } => Some(task.to_string()),
                RunError::Build(e) => e.task().map(str::to_owned),
                _ => None,
            },
            step: self.step().map(str::to_owned),
            attempt: None,
            message: self.to_string(),
        }
    }
}

impl From<&TaskFailure> for ErrorRecord {
    fn from(e: &TaskFailure) -> Self {
        e.record()
    }
}

impl From<&RunError> for ErrorRecord {
    fn from(e: &RunError) -> Self {
        e.record()
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(step) = &self.step {
            write!(f, " in step `{step}`")?;
        }
        if let Some(task) = &self.task {
            write!(f, " task `{task}`")?;
        }
        if let Some(attempt) = self.attempt {
            write!(f, " attempt {attempt}")?;
        }
        write!(f, ": {}", self.message)
    }
}
