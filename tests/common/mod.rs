//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// How long a test may wait for anything before it counts as a deadlock.
pub const BOUND: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and panics if it has not returned within
/// `bound`, so a deadlock fails the test instead of hanging CI.
pub fn within<R: Send + 'static>(bound: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound).expect("did not return within the bound")
}
