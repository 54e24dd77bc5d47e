//! A run as a report a person or a script can read.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorRecord, RunError, TaskFailure};
use crate::ids::{ContextId, RunId};
use crate::model::strategy::EvaluationResult;
use crate::records::chain::ExecutionChain;
use crate::records::context::ExecutionContext;
use crate::records::metrics::TaskMetrics;
use crate::status::ExecutionStatus;

/// The report format this build writes; it changes only when a field is
/// removed or changes meaning. New fields may appear in any version.
pub const REPORT_FORMAT: u32 = 1;

/// How one run went: per step its status, verdict, errors and timing, per
/// task its attempts and timing. Results are not part of it: they are the
/// caller's data, of the caller's type.
///
/// Times are whole microseconds, offsets from the start of the run, so that
/// every step and task lines up on one timeline and a script needs no
/// duration parser. Errors are [`ErrorRecord`]s.
///
/// ```
/// use conveyor::{Pipeline, PipelineExecutor, Task, TaskError};
/// let pipeline = Pipeline::builder("demo")
///     .step([Task::from_fn("ok", |_| Ok(1_u8)),
///            Task::from_fn("bad", |_| Err(TaskError::msg("no disk")))])
///     .build()?;
/// let run = PipelineExecutor::builder().build()?.execute(&pipeline, 0)?;
/// let report = run.report();
/// assert_eq!(report.steps[0].errors[0].kind, "task_failed");
/// assert_eq!(report.steps[0].errors[0].task.as_deref(), Some("bad"));
/// let json = report.to_json()?;
/// assert!(json.contains("\"status\": \"aborted\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// [`REPORT_FORMAT`] of the build that wrote it.
    pub report: u32,
    /// The run's id; a resumed run keeps the id of the run that saved it.
    pub run: RunId,
    /// The pipeline's name.
    pub pipeline: String,
    /// The run's final status.
    pub status: ExecutionStatus,
    /// Wall-clock start of the run, in milliseconds since the Unix epoch.
    pub started_at_unix_ms: Option<u64>,
    /// Wall time of this run; for a resumed run, of the part that ran in
    /// this process.
    pub duration_us: u64,
    /// How many steps at the head of `steps` were restored from a
    /// checkpoint instead of run.
    pub restored: usize,
    /// Where this process's part of the run starts on the timeline: zero
    /// for a run that was not resumed; for a resumed one, the end of the
    /// latest time its restored part recorded. Restored steps and tasks
    /// come before it and this run's after it, so the two never overlap.
    pub resumed_at_us: u64,
    /// Why the run did not finish, if it did not.
    pub failure: Option<ErrorRecord>,
    /// Counts over the whole run.
    pub totals: Totals,
    /// One entry per context, in the order they ran.
    pub steps: Vec<StepReport>,
}

/// Counts over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Contexts (step runs).
    pub steps: usize,
    /// Tasks over all steps.
    pub tasks: usize,
    /// Task attempts, retries included.
    pub attempts: u64,
    /// Errors over all steps.
    pub errors: usize,
}

/// One step's run in a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepReport {
    /// The step's name.
    pub step: String,
    /// Its context's id.
    pub context: ContextId,
    /// Whether it was restored from a checkpoint instead of run; its times
    /// are then those of the run that saved it.
    pub restored: bool,
    /// Its final status.
    pub status: ExecutionStatus,
    /// When it started, from the start of the run.
    pub started_us: u64,
    /// When it ended, from the start of the run.
    pub finished_us: u64,
    /// How long it took.
    pub duration_us: u64,
    /// The strategy's verdict; absent when the step could not be run.
    pub evaluation: Option<EvaluationResult>,
    /// Its errors, in task declaration order.
    pub errors: Vec<ErrorRecord>,
    /// Its tasks, in declaration order.
    pub tasks: Vec<TaskReport>,
}

/// One task in a [`StepReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskReport {
    /// The task's name.
    pub task: String,
    /// Whether it ended with a value.
    pub succeeded: bool,
    /// Whether it was restored from a checkpoint: it finished in an
    /// earlier process (in a restored step, or in a step that had not
    /// finished there); its times are then from the earlier part of the
    /// timeline.
    pub restored: bool,
    /// Attempts made; 0 when it never started.
    pub attempts: u32,
    /// When its group was handed to the executor.
    pub queued_us: u64,
    /// When its first attempt started.
    pub started_us: u64,
    /// When its last attempt ended.
    pub finished_us: u64,
    /// From first start to last end.
    pub duration_us: u64,
    /// The thread that ran it, as a small number unique in its process.
    pub thread: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl RunReport {
    /// The report as pretty-printed JSON.
    ///
    /// # Errors
    /// serde_json's error; it does not happen with serde_json, whose only
    /// failures are on types a report does not contain.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The step report of the latest context that ran `step`.
    #[must_use]
    pub fn step(&self, step: &str) -> Option<&StepReport> {
        self.steps.iter().rev().find(|s| s.step == step)
    }
}

impl StepReport {
    fn of<T>(c: &ExecutionContext<T>, restored: bool) -> Self {
        let m = c.metrics();
        Self {
            step: c.step().to_owned(),
            context: c.id(),
            restored,
            status: c.state().status(),
            started_us: micros(m.started),
            finished_us: micros(m.finished),
            duration_us: micros(m.duration()),
            evaluation: c.evaluation().cloned(),
            errors: c.state().errors().iter().map(TaskFailure::record).collect(),
            tasks: m
                .tasks
                .iter()
                .map(|t| TaskReport {
                    restored: t.restored || restored,
                    ..TaskReport::of(t)
                })
                .collect(),
        }
    }
}

impl TaskReport {
    fn of(t: &TaskMetrics) -> Self {
        Self {
            task: t.task.to_string(),
            succeeded: t.succeeded,
            restored: t.restored,
            attempts: t.attempts,
            queued_us: micros(t.queued),
            started_us: micros(t.started),
            finished_us: micros(t.finished),
            duration_us: micros(t.duration()),
            thread: t.thread,
        }
    }
}

/// What a report is made of: a run's parts, borrowed.
pub(crate) struct RunParts<'a, T> {
    pub(crate) id: RunId,
    pub(crate) pipeline: &'a str,
    pub(crate) status: ExecutionStatus,
    pub(crate) chain: &'a ExecutionChain<T>,
    pub(crate) restored: usize,
    pub(crate) failure: Option<&'a RunError>,
    pub(crate) duration: Duration,
    pub(crate) resumed_at: Duration,
    /// When this call started the run, by the wall clock.
    pub(crate) started_at: SystemTime,
}

impl RunReport {
    /// The report of a run of `pipeline` whose contexts are `chain`, the
    /// first `restored` of them from an earlier run;
    /// [`Run::report`](crate::Run::report) calls it.
    pub(crate) fn of_run<T>(run: RunParts<'_, T>) -> Self {
        let (chain, restored) = (run.chain, run.restored);
        let steps: Vec<StepReport> = chain
            .iter()
            .enumerate()
            .map(|(i, c)| StepReport::of(c, i < restored))
            .collect();
        let totals = Totals {
            steps: steps.len(),
            tasks: steps.iter().map(|s| s.tasks.len()).sum(),
            attempts: steps
                .iter()
                .flat_map(|s| &s.tasks)
                .map(|t| u64::from(t.attempts))
                .sum(),
            errors: steps.iter().map(|s| s.errors.len()).sum(),
        };
        // This call's start, not that of the run that saved the restored
        // contexts, and known even when no step ran.
        let started_at_unix_ms = run
            .started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        RunReport {
            report: REPORT_FORMAT,
            run: run.id,
            pipeline: run.pipeline.to_owned(),
            status: run.status,
            started_at_unix_ms,
            duration_us: micros(run.duration),
            restored,
            resumed_at_us: micros(run.resumed_at),
            failure: run.failure.map(RunError::record),
            totals,
            steps,
        }
    }
}

#[cfg(test)]
mod tests;
