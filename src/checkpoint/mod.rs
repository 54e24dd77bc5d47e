//! Saving a run's progress, so that a job that died halfway can resume
//! without redoing the steps it finished.
//!
//! A [`Checkpoint`] is plain data: which steps finished, the chain of
//! contexts so far (with each step's results), and what identifies the run
//! (a format version, a [`Fingerprint`] of the pipeline and one of the
//! input). A [`CheckpointStore`] keeps its bytes; [`FileCheckpointStore`]
//! replaces its file atomically, so a crash in the middle of a save leaves
//! the previous checkpoint as it was.
//!
//! On disk a checkpoint is one header line, then JSON:
//!
//! ```text
//! conveyor-checkpoint v1 len=1234 fnv1a64=0123456789abcdef
//! {"format":1,"pipeline":"batch",…}
//! ```
//!
//! The header's length and checksum make a truncated or damaged file an
//! error instead of a wrong result.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod canonical;
mod snapshot;

pub use snapshot::{ContextSnapshot, restore, snapshot};

use crate::error::{CheckpointError, FingerprintOf, IoOperation, Serialized};
use crate::model::pipeline::Pipeline;
use crate::records::chain::ExecutionChain;
use crate::records::results::ResultSet;

/// The checkpoint format this build writes and reads.
pub const CHECKPOINT_FORMAT: u32 = 1;

const MAGIC: &str = "conveyor-checkpoint";
/// A header is a few dozen bytes; anything longer is not one.
const MAX_HEADER: usize = 128;

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

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(FNV_OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
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

/// Where checkpoints are kept: one slot of bytes, replaced whole by each
/// save.
///
/// Object safe, so an executor can take `&dyn CheckpointStore`. Implement it
/// to keep checkpoints elsewhere (a database row, an object store); a save
/// must replace the old bytes all at once or not at all.
pub trait CheckpointStore: Send + Sync {
    /// The saved bytes, or `None` when nothing is saved.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be read.
    fn load(&self) -> Result<Option<Vec<u8>>, CheckpointError>;

    /// Replaces the saved bytes with `bytes`. When it fails, the bytes saved
    /// before are still there.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be written.
    fn save(&self, bytes: &[u8]) -> Result<(), CheckpointError>;

    /// Removes the saved bytes; clearing an empty store is not an error.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be changed.
    fn clear(&self) -> Result<(), CheckpointError>;

    /// The file behind the store, if there is one, for error messages.
    fn path(&self) -> Option<&Path> {
        None
    }
}

/// Forwards the store through references and smart pointers.
macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        impl<S: CheckpointStore + ?Sized> CheckpointStore for $ptr {
            fn load(&self) -> Result<Option<Vec<u8>>, CheckpointError> {
                (**self).load()
            }
            fn save(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
                (**self).save(bytes)
            }
            fn clear(&self) -> Result<(), CheckpointError> {
                (**self).clear()
            }
            fn path(&self) -> Option<&Path> {
                (**self).path()
            }
        }
    )*};
}

forward_store!(&S, Box<S>, Arc<S>);

/// A checkpoint in one file, replaced atomically.
///
/// A save writes the bytes to `<path>.tmp` in the same folder, flushes and
/// `sync_all`s it, renames it over `<path>`, and then (on Unix) syncs the
/// folder so that the rename itself survives a power cut. A crash at any
/// point leaves either the old checkpoint or the new one, never a mix; a
/// stale `.tmp` from a crash is overwritten by the next save.
///
/// One store is for one run at a time: two runs saving to the same path
/// would race for the temporary file.
///
/// ```
/// use conveyor::checkpoint::{CheckpointStore, FileCheckpointStore};
/// let dir = std::env::temp_dir().join(format!("conveyor-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = FileCheckpointStore::new(dir.join("job.ckpt"));
/// assert_eq!(store.load()?, None);
/// store.save(b"one")?;
/// store.save(b"two")?;
/// assert_eq!(store.load()?.as_deref(), Some(&b"two"[..]));
/// store.clear()?;
/// assert_eq!(store.load()?, None);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileCheckpointStore {
    path: PathBuf,
    temp: PathBuf,
}

impl FileCheckpointStore {
    /// A store keeping its checkpoint at `path`. Nothing is touched until
    /// the first save; the folder must exist by then.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        // Appending to the whole path keeps the temporary file in the same
        // folder, which a rename needs to be atomic.
        let mut temp = path.clone().into_os_string();
        temp.push(".tmp");
        Self {
            path,
            temp: temp.into(),
        }
    }

    /// The checkpoint's path.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.path
    }

    /// The temporary file a save writes before renaming it into place.
    #[must_use]
    pub fn temp_file(&self) -> &Path {
        &self.temp
    }

    fn folder(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn write_temp(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.temp)
            .map_err(|e| io_error(&self.temp, IoOperation::Write, e))?;
        file.write_all(bytes)
            .and_then(|()| file.flush())
            .map_err(|e| io_error(&self.temp, IoOperation::Write, e))?;
        file.sync_all()
            .map_err(|e| io_error(&self.temp, IoOperation::Sync, e))
    }
}

fn io_error(path: &Path, operation: IoOperation, e: io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_owned(),
        operation,
        cause: Arc::new(e),
    }
}

/// Makes a rename or removal in `folder` durable. Only Unix lets a folder be
/// opened and synced; elsewhere the rename is atomic but its durability is
/// up to the file system.
fn sync_folder(folder: &Path) -> Result<(), CheckpointError> {
    #[cfg(unix)]
    {
        File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(folder, IoOperation::Sync, e))?;
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

impl CheckpointStore for FileCheckpointStore {
    fn load(&self) -> Result<Option<Vec<u8>>, CheckpointError> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path, IoOperation::Read, e)),
        }
    }

    fn save(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        if let Err(e) = self.write_temp(bytes) {
            // Best effort: the checkpoint itself is untouched either way.
            let _ = fs::remove_file(&self.temp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&self.temp, &self.path) {
            let _ = fs::remove_file(&self.temp);
            return Err(io_error(&self.path, IoOperation::Rename, e));
        }
        sync_folder(self.folder())
    }

    fn clear(&self) -> Result<(), CheckpointError> {
        match fs::remove_file(&self.path) {
            Ok(()) => sync_folder(self.folder()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&self.path, IoOperation::Remove, e)),
        }
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A checkpoint in memory, for tests and for runs that only need to survive
/// a failed step, not a dead process.
///
/// ```
/// use conveyor::checkpoint::{CheckpointStore, MemoryCheckpointStore};
/// let store = MemoryCheckpointStore::new();
/// store.save(b"x")?;
/// assert_eq!(store.saves(), 1);
/// assert_eq!(store.load()?.as_deref(), Some(&b"x"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryCheckpointStore {
    bytes: Mutex<Option<Vec<u8>>>,
    saves: AtomicUsize,
}

impl MemoryCheckpointStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A store already holding `bytes`, as if they had been saved.
    #[must_use]
    pub fn with_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            bytes: Mutex::new(Some(bytes.into())),
            saves: AtomicUsize::new(0),
        }
    }

    /// How many saves succeeded.
    #[must_use]
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::Relaxed)
    }
}

impl CheckpointStore for MemoryCheckpointStore {
    fn load(&self) -> Result<Option<Vec<u8>>, CheckpointError> {
        Ok(self.bytes.lock().clone())
    }

    fn save(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        *self.bytes.lock() = Some(bytes.to_vec());
        self.saves.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn clear(&self) -> Result<(), CheckpointError> {
        *self.bytes.lock() = None;
        Ok(())
    }
}

/// A run's progress: what it ran, what came out, and what it belongs to.
///
/// Saved after every finished step of a checkpointed run. Read one back with
/// [`Checkpoint::load`] (or [`decode`](Checkpoint::decode)); reading checks
/// the format version, the length and checksum, and the JSON, and never
/// panics on bad bytes.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Checkpoint<T> {
    /// The format version, [`CHECKPOINT_FORMAT`] when written by this build.
    pub format: u32,
    /// The pipeline's name.
    pub pipeline: Arc<str>,
    /// [`Fingerprint::of_pipeline`] of the pipeline that ran.
    pub fingerprint: Fingerprint,
    /// [`Fingerprint::of_value`] of the input the run started with.
    pub input: Option<Fingerprint>,
    /// The contexts so far, head to tail, with their states and results.
    // Before the fields that change with every save: a run's saves then
    // share a prefix, which is what lets each context be serialised and
    // checksummed once instead of once per save.
    pub chain: Vec<ContextSnapshot<T>>,
    /// Whether the run ended: there is nothing left to resume.
    pub finished: bool,
    /// The steps that finished, in the order they ran.
    pub completed: Vec<Arc<str>>,
    /// The step the run would run next; `None` once it ended.
    pub next: Option<Arc<str>>,
    /// Sinks waiting for the branches they follow to end, innermost last.
    #[serde(default)]
    pub sinks: Vec<Arc<str>>,
}

impl<T> Clone for Checkpoint<T> {
    fn clone(&self) -> Self {
        Self {
            format: self.format,
            pipeline: Arc::clone(&self.pipeline),
            fingerprint: self.fingerprint,
            input: self.input,
            finished: self.finished,
            completed: self.completed.clone(),
            next: self.next.clone(),
            sinks: self.sinks.clone(),
            chain: self.chain.clone(),
        }
    }
}

impl<T> Checkpoint<T> {
    /// The progress of a run of `pipeline` on an input with fingerprint
    /// `input`, whose contexts so far are `chain`: every step in it counts as
    /// completed, and nothing is named to run next.
    #[must_use]
    pub fn new(pipeline: &Pipeline<T>, input: Option<Fingerprint>, chain: &ExecutionChain<T>) -> Self {
        Self {
            format: CHECKPOINT_FORMAT,
            pipeline: Arc::clone(&pipeline.inner.name),
            fingerprint: Fingerprint::of_pipeline(pipeline),
            input,
            finished: false,
            completed: chain.iter().map(|c| Arc::clone(&c.step)).collect(),
            next: None,
            sinks: Vec::new(),
            chain: snapshot::snapshot(chain),
        }
    }

    /// Checks that this checkpoint can resume a run of `pipeline` on an
    /// input with fingerprint `input`. `path` names the file in errors.
    ///
    /// # Errors
    /// [`CheckpointError::Mismatch`] for another pipeline or input,
    /// [`CheckpointError::Finished`] when the run already ended, and
    /// [`CheckpointError::Corrupt`] when the steps it names are not
    /// the pipeline's.
    pub fn check(
        &self,
        pipeline: &Pipeline<T>,
        input: Option<Fingerprint>,
        path: Option<&Path>,
    ) -> Result<(), CheckpointError> {
        let expected = Fingerprint::of_pipeline(pipeline);
        if self.fingerprint != expected {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Pipeline,
                expected: expected.get(),
                found: self.fingerprint.get(),
            });
        }
        if let (Some(expected), Some(found)) = (input, self.input)
            && expected != found
        {
            return Err(CheckpointError::Mismatch {
                path: path.map(Path::to_owned),
                what: FingerprintOf::Input,
                expected: expected.get(),
                found: found.get(),
            });
        }
        if self.finished {
            return Err(CheckpointError::Finished {
                path: path.map(Path::to_owned),
                pipeline: Arc::clone(&self.pipeline),
            });
        }
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        for step in self.completed.iter().chain(&self.next).chain(&self.sinks) {
            if pipeline.step(step).is_none() {
                return Err(corrupt(format!(
                    "it names step `{step}`, which the pipeline lacks"
                )));
            }
        }
        if self.next.is_none() {
            return Err(corrupt("it neither finished nor names a next step".into()));
        }
        Ok(())
    }

    /// Rebuilds the chain so far against `pipeline`'s tasks.
    ///
    /// # Errors
    /// [`CheckpointError::Corrupt`] when the chain does not fit the
    /// pipeline.
    pub fn restore_chain(
        &self,
        pipeline: &Pipeline<T>,
        path: Option<&Path>,
    ) -> Result<ExecutionChain<T>, CheckpointError> {
        snapshot::restore(self.chain.iter().cloned(), pipeline).map_err(|e| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })
    }
}

impl<T: Serialize> Checkpoint<T> {
    /// The bytes to save: a header line with the format version, the body's
    /// length and its checksum, then the body as JSON.
    ///
    /// # Errors
    /// [`CheckpointError::Serialize`] when a result cannot be serialised.
    pub fn encode(&self) -> Result<Vec<u8>, CheckpointError> {
        let body = serde_json::to_vec(self).map_err(|e| CheckpointError::Serialize {
            what: Serialized::Checkpoint,
            message: e.to_string(),
        })?;
        let header = format!(
            "{MAGIC} v{} len={} fnv1a64={}\n",
            self.format,
            body.len(),
            Fingerprint::of_bytes(&body)
        );
        let mut bytes = Vec::with_capacity(header.len() + body.len());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }
}

impl<T: DeserializeOwned> Checkpoint<T> {
    /// Reads a checkpoint from bytes that [`encode`](Self::encode) wrote.
    /// `path` names the file in errors. Any bytes at all give a checkpoint
    /// or an error, never a panic.
    ///
    /// ```
    /// use conveyor::CheckpointError;
    /// use conveyor::checkpoint::Checkpoint;
    /// let err = Checkpoint::<u64>::decode(b"conveyor-checkpoint v9 len=2 fnv1a64=0\n{}", None)
    ///     .unwrap_err();
    /// assert!(matches!(err, CheckpointError::Version { expected: 1, found: 9, .. }));
    /// let err = Checkpoint::<u64>::decode(b"\x00garbage", None).unwrap_err();
    /// assert!(matches!(err, CheckpointError::Corrupt { .. }));
    /// ```
    ///
    /// # Errors
    /// [`CheckpointError::Version`] for a format this build does not
    /// read, and [`CheckpointError::Corrupt`] for a missing or bad
    /// header, a truncated body, a checksum that does not match, or JSON
    /// that does not parse (with serde's message).
    pub fn decode(bytes: &[u8], path: Option<&Path>) -> Result<Self, CheckpointError> {
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        let end = bytes
            .iter()
            .take(MAX_HEADER)
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no checkpoint header line".into()))?;
        let header =
            std::str::from_utf8(&bytes[..end]).map_err(|_| corrupt("the header is not text".into()))?;
        let body = &bytes[end + 1..];
        let mut fields = header.split(' ');
        if fields.next() != Some(MAGIC) {
            return Err(corrupt("not a conveyor checkpoint".into()));
        }
        // The version comes first: a newer format may change everything
        // after it, and deserves its own error rather than "corrupt".
        let found = fields
            .next()
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| corrupt("the header has no format version".into()))?;
        if found != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Version {
                path: path.map(Path::to_owned),
                expected: CHECKPOINT_FORMAT,
                found,
            });
        }
        let len = fields
            .next()
            .and_then(|v| v.strip_prefix("len="))
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| corrupt("the header has no body length".into()))?;
        let sum = fields
            .next()
            .and_then(|v| v.strip_prefix("fnv1a64="))
            .and_then(|v| v.parse::<Fingerprint>().ok())
            .ok_or_else(|| corrupt("the header has no checksum".into()))?;
        // Only the exact text `encode` writes is accepted, so that any
        // change to a header byte is noticed, like any change to the body.
        if fields.next().is_some() || header != format!("{MAGIC} v{found} len={len} fnv1a64={sum}") {
            return Err(corrupt("the header is not one this build writes".into()));
        }
        if body.len() != len {
            return Err(corrupt(format!(
                "the body is {} bytes, the header says {len}: truncated or appended to",
                body.len()
            )));
        }
        let actual = Fingerprint::of_bytes(body);
        if actual != sum {
            return Err(corrupt(format!(
                "checksum {actual} does not match the header's {sum}"
            )));
        }
        let checkpoint: Self = serde_json::from_slice(body).map_err(|e| corrupt(format!("bad JSON: {e}")))?;
        if checkpoint.format != found {
            return Err(corrupt(format!(
                "the body says format {}, the header {found}",
                checkpoint.format
            )));
        }
        Ok(checkpoint)
    }

    /// Reads the checkpoint in `store`, if there is one. It is not checked
    /// against any pipeline; see [`check`](Self::check).
    ///
    /// # Errors
    /// The store's read error, and those of [`decode`](Self::decode).
    pub fn load(store: &dyn CheckpointStore) -> Result<Option<Self>, CheckpointError> {
        match store.load()? {
            None => Ok(None),
            Some(bytes) => Self::decode(&bytes, store.path()).map(Some),
        }
    }
}

/// Where a walk starts: at the first step, or where a checkpoint left off.
pub(crate) struct Start<T> {
    /// The index of the step to run first.
    pub(crate) at: usize,
    /// What that step sees as the previous step's results.
    pub(crate) previous: ResultSet<T>,
    /// Sinks waiting for their branches, by step index.
    pub(crate) sinks: Vec<usize>,
    /// The contexts restored from the checkpoint; new ones link after them.
    pub(crate) chain: ExecutionChain<T>,
}

impl<T> Start<T> {
    /// The start of a run of `steps` steps, with room for a context each.
    pub(crate) fn fresh(steps: usize) -> Self {
        Self {
            at: 0,
            previous: ResultSet::empty(),
            sinks: Vec::new(),
            chain: ExecutionChain::with_capacity(steps),
        }
    }
}

/// Saves progress once a step is done: the chain so far, the step to run
/// next (`None` when the run ended) and the pending sinks.
pub(crate) type Save<'a, T> =
    dyn FnMut(&ExecutionChain<T>, Option<usize>, &[usize]) -> Result<(), CheckpointError> + 'a;

fn index<T>(pipeline: &Pipeline<T>, step: &str) -> Option<usize> {
    pipeline.steps().iter().position(|s| s.name() == step)
}

/// The start of a run of `pipeline` on an input with fingerprint `input`:
/// where the checkpoint in `store` left off, or the first step when the
/// store is empty. Nothing is written to the store.
pub(crate) fn start<T: DeserializeOwned>(
    store: &dyn CheckpointStore,
    pipeline: &Pipeline<T>,
    input: Fingerprint,
) -> Result<Start<T>, CheckpointError> {
    let Some(checkpoint) = Checkpoint::<T>::load(store)? else {
        return Ok(Start::fresh(pipeline.steps().len()));
    };
    let path = store.path();
    checkpoint.check(pipeline, Some(input), path)?;
    let chain = checkpoint.restore_chain(pipeline, path)?;
    // `check` made sure every name is one of the pipeline's steps.
    let at = checkpoint
        .next
        .as_deref()
        .and_then(|n| index(pipeline, n))
        .unwrap_or(0);
    let sinks = checkpoint
        .sinks
        .iter()
        .filter_map(|n| index(pipeline, n))
        .collect();
    let previous = chain
        .tail()
        .map(|c| c.state().results().clone())
        .unwrap_or_default();
    Ok(Start {
        at,
        previous,
        sinks,
        chain,
    })
}

/// A [`Save`] writing to `store`: the whole chain so far, every time, so
/// that the latest checkpoint alone is enough to resume.
///
/// Contexts never change once they are done, so each is serialised and fed
/// to the checksum once, when it first appears; a save then only adds the
/// new contexts and the few fields that follow the chain. The bytes are
/// exactly those of [`Checkpoint::encode`], so serialising and checksumming
/// stay linear in the run, not quadratic; what remains per save is copying
/// the body and the store's write.
pub(crate) fn saver<'a, T: Serialize>(
    pipeline: &'a Pipeline<T>,
    input: Fingerprint,
    store: &'a dyn CheckpointStore,
) -> Result<Box<Save<'a, T>>, CheckpointError> {
    let mut body = format!(
        "{{\"format\":{CHECKPOINT_FORMAT},\"pipeline\":{},\"fingerprint\":{},\"input\":{},\"chain\":[",
        json(&pipeline.name())?,
        json(&Fingerprint::of_pipeline(pipeline))?,
        json(&Some(input))?,
    )
    .into_bytes();
    let mut sum = Fnv::new();
    sum.update(&body);
    let mut written = 0;
    let name = |i: usize| Arc::clone(&pipeline.steps()[i].name);
    Ok(Box::new(
        move |chain: &ExecutionChain<T>, next: Option<usize>, sinks: &[usize]| {
            for context in chain.iter().skip(written) {
                let start = body.len();
                if written > 0 {
                    body.push(b',');
                }
                serde_json::to_writer(&mut body, context).map_err(|e| CheckpointError::Serialize {
                    what: Serialized::Checkpoint,
                    message: e.to_string(),
                })?;
                sum.update(&body[start..]);
                written += 1;
            }
            let completed: Vec<Arc<str>> = chain.iter().map(|c| Arc::clone(&c.step)).collect();
            let sinks: Vec<Arc<str>> = sinks.iter().copied().map(name).collect();
            let tail = format!(
                "],\"finished\":{},\"completed\":{},\"next\":{},\"sinks\":{}}}",
                next.is_none(),
                json(&completed)?,
                json(&next.map(name))?,
                json(&sinks)?,
            );
            let mut total = Fnv(sum.0);
            total.update(tail.as_bytes());
            let len = body.len() + tail.len();
            let header = format!(
                "{MAGIC} v{CHECKPOINT_FORMAT} len={len} fnv1a64={}\n",
                Fingerprint(total.0)
            );
            let mut bytes = Vec::with_capacity(header.len() + len);
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&body);
            bytes.extend_from_slice(tail.as_bytes());
            store.save(&bytes)
        },
    ))
}

fn json<V: Serialize + ?Sized>(value: &V) -> Result<String, CheckpointError> {
    serde_json::to_string(value).map_err(|e| CheckpointError::Serialize {
        what: Serialized::Checkpoint,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
