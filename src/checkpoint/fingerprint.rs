//! Fingerprints: stable 64-bit hashes of a pipeline's shape and of a run's input.

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CheckpointError, Serialized};
use crate::model::pipeline::Pipeline;

use super::canonical;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hash, identifying a pipeline's shape or a run's input.
///
/// It is stable across processes, platforms and Rust versions (unlike
/// `DefaultHasher`), which is what a checkpoint written by one process and
/// read by another needs. It is **not** cryptographic: it catches mistakes
/// (resuming with the wrong pipeline or input), not tampering.
///
/// Written as 16 lowercase hex digits, in JSON as a string, so that scripts
/// whose numbers are doubles read it exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// The fingerprint of `bytes`.
    ///
    /// ```
    /// use conveyor::checkpoint::Fingerprint;
    /// // The FNV-1a 64 test vector for "a".
    /// assert_eq!(Fingerprint::of_bytes(b"a").get(), 0xaf63dc4c8601ec8c);
    /// ```
    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut h = Fnv::new();
        h.update(bytes);
        Self(h.0)
    }

    /// The fingerprint of `value`'s canonical form: serde's data model as
    /// tagged bytes, with every map's entries sorted, so a `HashMap` input
    /// fingerprints alike in every process and on every platform. The value
    /// streams into the hash; only a map's entries are buffered. Sets are
    /// the one exception serde leaves open: a `HashSet` serialises as a
    /// plain sequence in its per-process order, which no encoder can tell
    /// from a `Vec`, so an input that holds a set should hold a `BTreeSet`.
    ///
    /// ```
    /// use std::collections::{BTreeMap, HashMap};
    /// use conveyor::checkpoint::Fingerprint;
    /// let hashed: HashMap<&str, u32> = [("a", 1), ("b", 2), ("c", 3)].into();
    /// let sorted: BTreeMap<&str, u32> = [("c", 3), ("a", 1), ("b", 2)].into();
    /// assert_eq!(Fingerprint::of_value(&hashed)?, Fingerprint::of_value(&sorted)?);
    /// # Ok::<(), conveyor::CheckpointError>(())
    /// ```
    ///
    /// # Errors
    /// [`CheckpointError::Serialize`] when `value` cannot be serialised.
    pub fn of_value<V: Serialize + ?Sized>(value: &V) -> Result<Self, CheckpointError> {
        let mut h = Fnv::new();
        canonical::encode(value, &mut h).map_err(|e| CheckpointError::Serialize {
            what: Serialized::Input,
            message: e.to_string(),
        })?;
        Ok(Self(h.0))
    }

    /// The fingerprint of `pipeline`'s shape: its name, and per step, in
    /// order, its name, its evaluation strategy and its task names. What a
    /// task does and which executor runs it are not part of it, so a resumed
    /// run may use other pool sizes.
    #[must_use]
    pub fn of_pipeline<T>(pipeline: &Pipeline<T>) -> Self {
        Self::of_bytes(pipeline.describe().as_bytes())
    }

    /// The number behind the fingerprint.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Fingerprint {
    fn from(n: u64) -> Self {
        Self(n)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{s}` is not 16 hex digits"));
        }
        u64::from_str_radix(s, 16).map(Self).map_err(|e| e.to_string())
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(super) struct Fnv(pub(super) u64);

impl Fnv {
    pub(super) fn new() -> Self {
        Self(FNV_OFFSET)
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

impl canonical::Sink for Fnv {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
