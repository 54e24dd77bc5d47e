//! Per-run settings: cancellation, a deadline, and which results a run
//! keeps.

use std::time::Duration;

use crate::model::cancel::CancelToken;

/// Settings for one run, given to
/// [`PipelineExecutor::execute_with`](crate::PipelineExecutor::execute_with).
///
/// ```
/// use conveyor::{CancelToken, RunOptions};
/// use std::time::Duration;
/// let token = CancelToken::new();
/// let options = RunOptions::new()
///     .cancel_token(token.clone())
///     .timeout(Duration::from_secs(30));
/// assert_eq!(options.run_timeout(), Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub(crate) cancel: Option<CancelToken>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retain: Retention,
    /// Set by [`task_timing(false)`](RunOptions::task_timing).
    pub(crate) untimed: bool,
}

/// Which results a run keeps in its chain while it goes.
///
/// A step's tasks see only the run's input and the previous step's
/// results, so the results of older steps are only there for the caller to
/// read afterwards. A job whose steps each produce large results can drop
/// them as it goes, and take them as tasks finish instead (see
/// [`PipelineExecutorBuilder::on_result`](crate::PipelineExecutorBuilder::on_result)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retention {
    /// Every context keeps its results until the run is dropped.
    #[default]
    All,
    /// Only what later steps and the output need: once a step finishes,
    /// the results of the step before it are dropped from the chain (its
    /// status, errors, verdict and timing stay). The run's output, the last
    /// step's results, is kept. Memory then peaks at about two steps'
    /// results: the step running and the one it reads.
    Needed,
}

impl RunOptions {
    /// No token, no deadline.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the run when `token` is cancelled.
    ///
    /// Default: none.
    #[must_use]
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// A deadline for the whole run, counted from the start of `execute`.
    /// When it passes, `execute` returns the run at once, `Aborted`, with
    /// [`RunError::Timeout`](crate::RunError::Timeout) as its failure; see
    /// [`Step::timeout`](crate::Step::timeout) for what happens to tasks
    /// still running.
    ///
    /// A limit no `Instant` can hold (`Duration::MAX`) means no deadline.
    ///
    /// Default: none.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Which results the run keeps; see [`Retention`].
    ///
    /// Default: [`Retention::All`].
    #[must_use]
    pub fn retain(mut self, retention: Retention) -> Self {
        self.retain = retention;
        self
    }

    /// Whether each task's start and end are read from the clock.
    ///
    /// With timing off, a task's [`TaskMetrics`](crate::TaskMetrics) place
    /// it at the moment its step queued it, with no length (`started` and
    /// `finished` equal `queued`); attempts, thread and success are still
    /// recorded, and steps and the run are still timed. A task's clock
    /// read (one a task when consecutive tasks on one worker share it, two
    /// otherwise) is a large share of what a task that does almost nothing
    /// costs, so a run of many tiny tasks that never reads their times can
    /// skip them.
    ///
    /// Default: on.
    #[must_use]
    pub fn task_timing(mut self, on: bool) -> Self {
        self.untimed = !on;
        self
    }

    /// The run's deadline, if any.
    #[must_use]
    pub fn run_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_no_token_and_no_deadline() {
        let o = RunOptions::default();
        assert!(o.cancel.is_none());
        assert_eq!(o.run_timeout(), None);
        let o = o
            .timeout(Duration::from_millis(5))
            .cancel_token(CancelToken::new());
        assert!(o.cancel.is_some());
        assert_eq!(o.run_timeout(), Some(Duration::from_millis(5)));
    }
}
