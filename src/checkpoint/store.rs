//! Where checkpoint logs are kept: the store trait, a file and a memory
//! store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::error::{CheckpointError, IoOperation};

/// When appended records are made durable: synced to the disk itself, so
/// that they survive a power cut, not only a killed process.
///
/// Every record reaches the store (for a file, the operating system) as
/// soon as it is made, so a killed process loses none of them, whatever
/// the durability; [`CheckpointStore::sync`] is about the machine going
/// down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every record is synced as it is appended: nothing appended is lost
    /// to a power cut, at the cost of one `fsync` per finished task.
    EveryRecord,
    /// Records are synced in batches, once per finished step, while the
    /// next step runs (and when the log is created): a power cut loses at
    /// most the last step or two.
    #[default]
    EveryStep,
    /// Nothing is synced: records survive a killed process, not a power
    /// cut. For logs on scratch disks and for benchmarks.
    Never,
}

/// Where a checkpoint log is kept: a sequence of bytes that only ever grows
/// at its end, until it is created anew or cleared.
///
/// Object safe, so an executor can take `&dyn CheckpointStore`. Implement it
/// to keep checkpoints elsewhere (a database, an object store). A run calls
/// [`append`](Self::append) and [`sync`](Self::sync) from one thread at a
/// time.
pub trait CheckpointStore: Send + Sync {
    /// A reader over the whole log, or `None` when nothing is saved.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be read.
    fn open(&self) -> Result<Option<Box<dyn BufRead + '_>>, CheckpointError>;

    /// Replaces the log with `bytes`, all at once or not at all: after a
    /// failure the old log is still there.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be written.
    fn create(&self, bytes: &[u8]) -> Result<(), CheckpointError>;

    /// Appends `bytes` to the log. When it returns they must survive the
    /// process being killed (for a file: they were written to the
    /// operating system); surviving the machine is [`sync`](Self::sync)'s
    /// job.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be written.
    fn append(&self, bytes: &[u8]) -> Result<(), CheckpointError>;

    /// Makes everything appended so far durable (for a file, `fsync`).
    /// A run calls it as the store's [`durability`](Self::durability)
    /// says.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be synced.
    fn sync(&self) -> Result<(), CheckpointError>;

    /// Cuts the log to its first `len` bytes: how a record torn by a kill
    /// is dropped before new ones are appended.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be changed.
    fn truncate(&self, len: u64) -> Result<(), CheckpointError>;

    /// Removes the log; clearing an empty store is not an error.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be changed.
    fn clear(&self) -> Result<(), CheckpointError>;

    /// When appended records become durable.
    fn durability(&self) -> Durability {
        Durability::EveryStep
    }

    /// The file behind the store, if there is one, for error messages.
    fn path(&self) -> Option<&Path> {
        None
    }

    /// The whole log as bytes, or `None` when nothing is saved.
    ///
    /// # Errors
    /// [`CheckpointError::Io`] when the store cannot be read.
    fn load(&self) -> Result<Option<Vec<u8>>, CheckpointError> {
        let Some(mut reader) = self.open()? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|e| CheckpointError::Io {
            path: self.path().map_or_else(PathBuf::new, Path::to_owned),
            operation: IoOperation::Read,
            cause: Arc::new(e),
        })?;
        Ok(Some(bytes))
    }
}

/// Forwards the store through references and smart pointers.
macro_rules! forward_store {
    ($($ptr:ty),*) => {$(
        impl<S: CheckpointStore + ?Sized> CheckpointStore for $ptr {
            fn open(&self) -> Result<Option<Box<dyn BufRead + '_>>, CheckpointError> {
                (**self).open()
            }
            fn create(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
                (**self).create(bytes)
            }
            fn append(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
                (**self).append(bytes)
            }
            fn sync(&self) -> Result<(), CheckpointError> {
                (**self).sync()
            }
            fn truncate(&self, len: u64) -> Result<(), CheckpointError> {
                (**self).truncate(len)
            }
            fn clear(&self) -> Result<(), CheckpointError> {
                (**self).clear()
            }
            fn durability(&self) -> Durability {
                (**self).durability()
            }
            fn path(&self) -> Option<&Path> {
                (**self).path()
            }
        }
    )*};
}

forward_store!(&S, Box<S>, Arc<S>);

/// A checkpoint log in one file.
///
/// [`create`](CheckpointStore::create) writes `<path>.tmp` in the same
/// folder, syncs it, renames it over `<path>` and (on Unix) syncs the
/// folder, so a crash leaves the old log or the new one, never a mix.
/// Appends go to the end of the file through one handle kept open;
/// [`sync`](CheckpointStore::sync) syncs its data.
///
/// One store is for one run at a time: two runs appending to the same path
/// would interleave their records.
///
/// ```
/// use conveyor::checkpoint::{CheckpointStore, FileCheckpointStore};
/// let dir = std::env::temp_dir().join(format!("conveyor-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let store = FileCheckpointStore::new(dir.join("job.ckpt"));
/// assert_eq!(store.load()?, None);
/// store.create(b"one")?;
/// store.append(b"two")?;
/// store.sync()?;
/// assert_eq!(store.load()?.as_deref(), Some(&b"onetwo"[..]));
/// store.truncate(3)?;
/// assert_eq!(store.load()?.as_deref(), Some(&b"one"[..]));
/// store.clear()?;
/// assert_eq!(store.load()?, None);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileCheckpointStore {
    path: PathBuf,
    temp: PathBuf,
    durability: Durability,
    /// The handle appends go through, opened at the first append.
    appender: Mutex<Option<File>>,
}

impl Clone for FileCheckpointStore {
    fn clone(&self) -> Self {
        Self::new(self.path.clone()).with_durability(self.durability)
    }
}

impl FileCheckpointStore {
    /// A store keeping its log at `path`, syncing once per step. Nothing
    /// is touched until the first write; the folder must exist by then.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        // Appending to the whole path keeps the temporary file in the same
        // folder, which a rename needs to be atomic.
        let mut temp = path.clone().into_os_string();
        temp.push(".tmp");
        Self {
            path,
            temp: temp.into(),
            durability: Durability::default(),
            appender: Mutex::new(None),
        }
    }

    /// The same store, syncing as `durability` says.
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The checkpoint's path.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.path
    }

    /// The temporary file [`create`](CheckpointStore::create) writes before
    /// renaming it into place.
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
    fn open(&self) -> Result<Option<Box<dyn BufRead + '_>>, CheckpointError> {
        match File::open(&self.path) {
            // Large reads: records of big results are read straight
            // through, a few syscalls a megabyte.
            Ok(file) => Ok(Some(Box::new(BufReader::with_capacity(1 << 20, file)))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&self.path, IoOperation::Read, e)),
        }
    }

    fn create(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let mut appender = self.appender.lock();
        // The old handle points at the file about to be replaced.
        *appender = None;
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

    fn append(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let mut appender = self.appender.lock();
        let file = match &mut *appender {
            Some(file) => file,
            closed => closed.insert(
                OpenOptions::new()
                    .append(true)
                    .open(&self.path)
                    .map_err(|e| io_error(&self.path, IoOperation::Write, e))?,
            ),
        };
        file.write_all(bytes)
            .map_err(|e| io_error(&self.path, IoOperation::Write, e))
    }

    fn sync(&self) -> Result<(), CheckpointError> {
        if let Some(file) = &*self.appender.lock() {
            // Data only: the file's length is part of it, its times are not.
            file.sync_data()
                .map_err(|e| io_error(&self.path, IoOperation::Sync, e))?;
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<(), CheckpointError> {
        let mut appender = self.appender.lock();
        *appender = None;
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, IoOperation::Write, e))?;
        file.set_len(len)
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(&self.path, IoOperation::Write, e))
    }

    fn clear(&self) -> Result<(), CheckpointError> {
        let mut appender = self.appender.lock();
        *appender = None;
        match fs::remove_file(&self.path) {
            Ok(()) => sync_folder(self.folder()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&self.path, IoOperation::Remove, e)),
        }
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A checkpoint log in memory, for tests and for runs that only need to
/// survive a failed step, not a dead process.
///
/// ```
/// use conveyor::checkpoint::{CheckpointStore, MemoryCheckpointStore};
/// let store = MemoryCheckpointStore::new();
/// store.create(b"x")?;
/// store.append(b"y")?;
/// store.sync()?;
/// assert_eq!(store.saves(), 2);
/// assert_eq!(store.load()?.as_deref(), Some(&b"xy"[..]));
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

    /// How many creates and syncs succeeded: in a run, one for the log's
    /// creation and one per saved step.
    #[must_use]
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::Relaxed)
    }
}

/// A reader over a memory store's bytes, holding its lock.
struct Held<'a> {
    bytes: MutexGuard<'a, Option<Vec<u8>>>,
    at: usize,
}

impl Held<'_> {
    fn rest(&self) -> &[u8] {
        self.bytes.as_deref().map_or(&[], |b| &b[self.at.min(b.len())..])
    }
}

impl io::Read for Held<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.rest().len().min(buf.len());
        buf[..n].copy_from_slice(&self.rest()[..n]);
        self.at += n;
        Ok(n)
    }
}

impl BufRead for Held<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.rest())
    }

    fn consume(&mut self, amt: usize) {
        self.at += amt;
    }
}

impl CheckpointStore for MemoryCheckpointStore {
    fn open(&self) -> Result<Option<Box<dyn BufRead + '_>>, CheckpointError> {
        // The reader holds the lock, so a load reads the bytes in place
        // instead of copying them; nothing appends while a run loads.
        let bytes = self.bytes.lock();
        if bytes.is_none() {
            return Ok(None);
        }
        Ok(Some(Box::new(Held { bytes, at: 0 })))
    }

    fn create(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        *self.bytes.lock() = Some(bytes.to_vec());
        self.saves.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn append(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        self.bytes
            .lock()
            .get_or_insert_with(Vec::new)
            .extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&self) -> Result<(), CheckpointError> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<(), CheckpointError> {
        if let Some(bytes) = self.bytes.lock().as_mut() {
            bytes.truncate(usize::try_from(len).unwrap_or(usize::MAX));
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), CheckpointError> {
        *self.bytes.lock() = None;
        Ok(())
    }
}
