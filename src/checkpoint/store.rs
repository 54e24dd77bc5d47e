//! Where checkpoints are kept: the store trait, a file and a memory store.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::error::{CheckpointError, IoOperation};

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
