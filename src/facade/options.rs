//! Per-run settings: cancellation and a deadline.

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
