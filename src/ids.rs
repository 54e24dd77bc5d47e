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
///
/// Serialised as its 16 hex digits, a string: JSON numbers past 2^53 lose
/// digits in JavaScript and jq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(u64);

impl Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{:016x}", self.0))
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom("a run id is 16 hex digits"));
        }
        u64::from_str_radix(&text, 16)
            .map(Self)
            .map_err(|_| serde::de::Error::custom("a run id is 16 hex digits"))
    }
}

static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

/// This process's seed for run ids: the clock and the process id, read
/// once, since `getpid` is a system call and a one-task run costs less
/// than a microsecond.
static RUN_SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

impl RunId {
    pub(crate) fn next() -> Self {
        let seed = *RUN_SEED.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 40)
        });
        let n = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        // A finaliser (splitmix64's) so that ids made close together
        // differ in every digit, not only the last.
        let mut z = (seed ^ n.wrapping_mul(0xD6E8_FEB8_6659_FD93)).wrapping_add(0x9E37_79B9_7F4A_7C15);
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
    fn run_ids_differ_and_serialise_as_hex_strings() {
        let (a, b) = (super::RunId::next(), super::RunId::next());
        assert_ne!(a, b);
        let id = super::RunId::from(0xe7a9_0000_0000_0001);
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"e7a9000000000001\"");
        assert_eq!(
            serde_json::from_str::<super::RunId>("\"e7a9000000000001\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<super::RunId>("\"+7a9000000000001\"").is_err());
        assert!(serde_json::from_str::<super::RunId>("\"e7a9\"").is_err());
        assert_eq!(id.to_string(), "run-e7a9000000000001");
    }

    #[test]
    fn ids_are_unique_and_display() {
        let a = ContextId::next();
        let b = ContextId::next();
        assert!(b > a);
        assert_eq!(ContextId::from(7).to_string(), "ctx-7");
    }
}
