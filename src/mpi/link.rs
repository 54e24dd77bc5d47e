//! Sending and receiving byte messages between ranks, through rsmpi.
//!
//! Receives poll with a growing sleep instead of blocking in MPI: a
//! blocking receive in Open MPI spins a core at 100%, which on a machine
//! with as many ranks as cores takes the core a rank's pool needs. The
//! price is latency: a message waits up to one sleep (50 µs while a step
//! is busy, up to 2 ms after a second of quiet).

use std::time::{Duration, Instant};

use ::mpi::Rank;
use ::mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use ::mpi::topology::{Communicator, SimpleCommunicator};

/// The tag of messages from rank 0 to the others.
const TO_WORKER: i32 = 0x6376;
/// The tag of messages from the others to rank 0.
const TO_ROOT: i32 = 0x6377;

/// The world communicator, for the thread that makes MPI calls.
pub(super) struct Link {
    world: SimpleCommunicator,
}

impl Link {
    /// The world; MPI must be initialised.
    pub(super) fn world() -> Self {
        Self {
            world: SimpleCommunicator::world(),
        }
    }

    pub(super) fn rank(&self) -> usize {
        usize::try_from(self.world.rank()).unwrap_or(0)
    }

    /// Sends `bytes` from rank 0 to `rank`.
    pub(super) fn to_worker(&self, rank: usize, bytes: &[u8]) {
        self.send(rank, TO_WORKER, bytes);
    }

    /// Sends `bytes` from a worker to rank 0.
    pub(super) fn to_root(&self, bytes: &[u8]) {
        self.send(0, TO_ROOT, bytes);
    }

    fn send(&self, rank: usize, tag: i32, bytes: &[u8]) {
        if i32::try_from(bytes.len()).is_err() {
            self.abort(&format!(
                "a message of {} bytes is past MPI's 2 GiB limit on one message",
                bytes.len()
            ));
        }
        self.world
            .process_at_rank(rank_of(rank))
            .send_with_tag(bytes, tag);
    }

    /// A message for rank 0 from any rank, if one has arrived.
    pub(super) fn poll_root(&self) -> Option<(usize, Vec<u8>)> {
        let (message, status) = self
            .world
            .any_process()
            .immediate_matched_probe_with_tag(TO_ROOT)?;
        let source = usize::try_from(status.source_rank()).unwrap_or(0);
        let (bytes, _) = (message, status).matched_receive_vec::<u8>();
        Some((source, bytes))
    }

    /// A message from rank 0, if one has arrived.
    pub(super) fn poll_worker(&self) -> Option<Vec<u8>> {
        let probe = self
            .world
            .process_at_rank(0)
            .immediate_matched_probe_with_tag(TO_WORKER)?;
        Some(probe.matched_receive_vec::<u8>().0)
    }

    /// Waits for a message from rank 0.
    pub(super) fn receive_worker(&self) -> Vec<u8> {
        let backoff = Backoff::new();
        loop {
            if let Some(bytes) = self.poll_worker() {
                return bytes;
            }
            std::thread::sleep(backoff.pause());
        }
    }

    /// Ends the whole job: what MPI does with any rank that fails. Used
    /// for what no run can recover from (a message that does not decode).
    pub(super) fn abort(&self, message: &str) -> ! {
        eprintln!("conveyor::mpi: rank {}: {message}; aborting the job", self.rank());
        self.world.abort(70)
    }

    /// Ends the whole job with `code`, saying nothing.
    pub(super) fn abort_with(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

fn rank_of(rank: usize) -> Rank {
    Rank::try_from(rank).unwrap_or(Rank::MAX)
}

/// How long to sleep before polling again: short while messages flow,
/// longer once the line has been quiet for a while.
pub(super) struct Backoff {
    quiet_since: Instant,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Self {
            quiet_since: Instant::now(),
        }
    }

    /// Something arrived: poll eagerly again.
    pub(super) fn reset(&mut self) {
        self.quiet_since = Instant::now();
    }

    pub(super) fn pause(&self) -> Duration {
        match self.quiet_since.elapsed().as_millis() {
            0..50 => Duration::from_micros(50),
            50..1000 => Duration::from_micros(500),
            _ => Duration::from_millis(2),
        }
    }
}
