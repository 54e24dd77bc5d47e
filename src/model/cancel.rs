//! Asking a run to stop from another thread.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A flag that another thread sets to cancel runs.
///
/// Cloning shares the flag. Pass it to a run with
/// [`RunOptions::cancel_token`](crate::RunOptions::cancel_token). Once it is
/// cancelled, tasks that have not started are not started (they count as
/// [`TaskFailure::Cancelled`](crate::TaskFailure::Cancelled)),
/// running tasks can see it through
/// [`TaskContext::is_cancelled`](crate::TaskContext::is_cancelled), no
/// further step starts, and the run returns as `Cancelled` as soon as the
/// running tasks have returned. A token stays cancelled; use a new one for
/// the next run.
///
/// ```
/// use conveyor::CancelToken;
/// let token = CancelToken::new();
/// let remote = token.clone();
/// std::thread::spawn(move || remote.cancel()).join().unwrap();
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

impl CancelToken {
    /// A token that is not cancelled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run that holds this token.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::CancelToken;

    #[test]
    fn clones_share_one_flag_and_it_stays_set() {
        let a = CancelToken::new();
        let b = a.clone();
        assert!(!b.is_cancelled());
        a.cancel();
        a.cancel();
        assert!(b.is_cancelled());
        assert!(!CancelToken::new().is_cancelled());
    }
}
