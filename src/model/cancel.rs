//! Asking a run to stop from another thread.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

/// A flag that another thread sets to cancel runs.
///
/// Cloning shares the flag. Pass it to a run with
/// [`RunOptions::cancel_token`](crate::RunOptions::cancel_token). Once it is
/// cancelled, tasks that have not started are not started (they count as
/// [`TaskFailure::Cancelled`](crate::TaskFailure::Cancelled)),
/// running tasks can see it through
/// [`TaskContext::is_cancelled`](crate::TaskContext::is_cancelled), no
/// further step starts, and `execute` returns as `Cancelled` within
/// milliseconds, even while a task is stuck: a thread that waits for a
/// step's outcomes wakes on the cancel itself, not only when a task
/// returns. A task still running keeps its thread until it returns, and its
/// late outcome is dropped. A token stays cancelled; use a new one for the
/// next run.
///
/// ```
/// use conveyor::CancelToken;
/// let token = CancelToken::new();
/// let remote = token.clone();
/// std::thread::spawn(move || remote.cancel()).join().unwrap();
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

struct Inner {
    flag: AtomicBool,
    /// Dropped by `cancel`: every receiver of `signal` then sees a
    /// disconnect, which is how a waiting thread wakes on a cancel inside a
    /// `select` over outcomes and deadlines, without polling.
    closer: Mutex<Option<Sender<()>>>,
    signal: Receiver<()>,
}

impl Default for CancelToken {
    fn default() -> Self {
        let (closer, signal) = crossbeam_channel::bounded(0);
        Self {
            inner: Arc::new(Inner {
                flag: AtomicBool::new(false),
                closer: Mutex::new(Some(closer)),
                signal,
            }),
        }
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every run that holds this token, and wakes the threads that
    /// wait for their steps.
    pub fn cancel(&self) {
        self.inner.flag.store(true, Ordering::Release);
        drop(self.inner.closer.lock().take());
    }

    /// A channel that never carries a message and disconnects when the
    /// token is cancelled: a `select` arm that fires on the cancel.
    pub(crate) fn signal(&self) -> &Receiver<()> {
        &self.inner.signal
    }

    /// Whether [`cancel`](Self::cancel) has been called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.inner.flag.load(Ordering::Acquire)
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
