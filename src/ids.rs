//! Plain ids, at the bottom of the crate: every layer may name them.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Identifies one [`ExecutionContext`](crate::ExecutionContext), unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContextId(u64);

static NEXT_CONTEXT: AtomicU64 = AtomicU64::new(1);

impl ContextId {
    pub(crate) fn next() -> Self {
        Self(NEXT_CONTEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The number behind the id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for ContextId {
    fn from(n: u64) -> Self {
        Self(n)
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ctx-{}", self.0)
    }
}

/// Identifies one run of a pipeline, and every event it sends.
///
/// A run resumed from a checkpoint keeps the id of the run that saved it,
/// so events from before and after a crash belong to one run. Ids are made
/// from the clock, the process id and a counter, so two processes starting
/// runs at once do not pick the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(u64);

static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

impl RunId {
    pub(crate) fn next() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ (u64::from(std::process::id()) << 40) ^ NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        // A finaliser (splitmix64's) so that ids made close together
        // differ in every digit, not only the last.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self(z ^ (z >> 31))
    }

    /// The number behind the id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for RunId {
    fn from(n: u64) -> Self {
        Self(n)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run-{:016x}", self.0)
    }
}

/// Hashes a [`ContextId`] by one multiplication. Ids are sequential numbers
/// made by this process, not input an attacker picks, so SipHash's
/// protection buys nothing, and it was a tenth of the cost of a one-task
/// step.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing spreads sequential ids over the high bits, which
        // hashbrown uses to pick groups.
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by context id.
pub(crate) type IdMap<V> = HashMap<ContextId, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::ContextId;

    #[test]
    fn ids_are_unique_and_display() {
        let a = ContextId::next();
        let b = ContextId::next();
        assert!(b > a);
        assert_eq!(ContextId::from(7).to_string(), "ctx-7");
    }
}
