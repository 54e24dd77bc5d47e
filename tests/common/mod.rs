//! Helpers shared by the integration tests: bounded waits and quiet planned panics.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::sync::Once;
use std::time::Duration;

/// How long any single scenario may take before it counts as a deadlock.
/// Generous, because the test machine is small and shared.
pub const BOUND: Duration = Duration::from_secs(60);

/// Marks panics that a test raises on purpose; the panic hook stays quiet
/// for them and only for them, so a failing assertion is still printed.
pub const PLANNED: &str = "planned panic";

/// Runs `f` on its own thread and fails the test if it has not returned
/// within `bound`, so a deadlock fails the test instead of hanging it.
pub fn within<R: Send + 'static>(bound: Duration, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let body = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound) {
        Ok(r) => r,
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            // The body panicked: surface its own message, not a timeout.
            match body.join() {
                Err(payload) => std::panic::resume_unwind(payload),
                Ok(()) => unreachable!("the body returned without sending"),
            }
        }
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            panic!("no result within {bound:?}: deadlock, or far too slow")
        }
    }
}

/// A custom executor that runs each job on a thread of its own.
pub struct OwnThread;

impl conveyor::CustomExecutor for OwnThread {
    fn spawn(&self, job: conveyor::Job) {
        std::thread::spawn(move || job.run());
    }
}

/// One config of each kind of executor; the custom one is named `own`,
/// so the executor needs `.custom_executor("own", OwnThread)`.
pub fn every_config() -> [conveyor::ExecutorConfig; 5] {
    use conveyor::ExecutorConfig;
    [
        ExecutorConfig::Inline,
        ExecutorConfig::pool(2),
        ExecutorConfig::Global,
        ExecutorConfig::ThreadPerTask,
        ExecutorConfig::custom("own"),
    ]
}

/// Keeps the default panic hook from printing a backtrace line for each of
/// the thousands of panics the tests raise on purpose (those whose message
/// contains [`PLANNED`], and non-string payloads, which only tests raise).
pub fn quiet_planned_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let planned = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
                (Some(s), _) => s.contains(PLANNED),
                (_, Some(s)) => s.contains(PLANNED),
                (None, None) => true,
            };
            if !planned {
                default(info);
            }
        }));
    });
}
