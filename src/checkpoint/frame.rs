//! How records sit in a checkpoint log: a preamble, then frames that each
//! carry their length and a CRC-32, so that a reader can tell a complete
//! record from one a kill cut short.
//!
//! ```text
//! preamble  "CNVYCKPT" | format version: u32 LE
//! frame     length: u64 LE | crc32: u32 LE | kind: u8 | payload: length bytes
//! ```
//!
//! The CRC covers the length, the kind and the payload. Records are only
//! ever appended, by one writer, so damage from a crash can only be at the
//! end: a frame that runs past the end of the log, or whose checksum fails
//! with nothing after it, is a torn tail and is dropped; a bad frame with
//! more bytes after it is corruption, and an error. So is a frame that runs
//! past the end with a complete frame inside what it claims: its length was
//! damaged, and a kill cannot do that.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crate::error::CheckpointError;

use super::CHECKPOINT_FORMAT;

/// The first bytes of every checkpoint log.
pub(super) const MAGIC: &[u8; 8] = b"CNVYCKPT";
/// The magic and the format version.
pub(super) const PREAMBLE: usize = MAGIC.len() + 4;
/// Length, checksum and kind.
const FRAME_HEAD: usize = 8 + 4 + 1;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// What the log belongs to; always the first record.
    Header = 1,
    /// One finished task of the step being run.
    Task = 2,
    /// A finished step and where the run goes next.
    Step = 3,
}

impl Kind {
    fn of(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Header),
            2 => Some(Self::Task),
            3 => Some(Self::Step),
            _ => None,
        }
    }
}

/// The preamble this build writes.
pub(super) fn preamble() -> [u8; PREAMBLE] {
    let mut out = [0; PREAMBLE];
    out[..MAGIC.len()].copy_from_slice(MAGIC);
    out[MAGIC.len()..].copy_from_slice(&CHECKPOINT_FORMAT.to_le_bytes());
    out
}

/// A buffer for one frame of `kind`: encode the payload after what is
/// there, then [`seal`] it.
pub(super) fn open(kind: Kind) -> Vec<u8> {
    let mut buf = vec![0; FRAME_HEAD];
    buf[FRAME_HEAD - 1] = kind as u8;
    buf
}

/// Fills in the length and checksum of a frame begun with [`open`].
pub(super) fn seal(buf: &mut [u8]) {
    let len = (buf.len() - FRAME_HEAD) as u64;
    buf[..8].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&[&buf[..8], &buf[FRAME_HEAD - 1..]]);
    buf[8..12].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for part in parts {
        h.update(part);
    }
    h.finalize()
}

/// What the next read found.
#[derive(Debug)]
pub(super) enum Read1<'a> {
    /// A complete, checked record.
    Record(Kind, &'a [u8]),
    /// The clean end of the log.
    End,
    /// A record a kill cut short: it and anything after it are dropped,
    /// and [`LogReader::offset`] is where it began.
    Torn,
}

/// Reads a log's records one at a time, holding only the current one.
pub(super) struct LogReader<R> {
    inner: R,
    /// Offset of the next frame: after a torn tail, where the log's good
    /// part ends.
    offset: u64,
    buf: Vec<u8>,
    path: Option<PathBuf>,
}

impl<R: BufRead> LogReader<R> {
    /// Reads and checks the preamble.
    pub(super) fn new(mut inner: R, path: Option<&Path>) -> Result<Self, CheckpointError> {
        let corrupt = |message: String| CheckpointError::Corrupt {
            path: path.map(Path::to_owned),
            message,
        };
        let mut head = [0; PREAMBLE];
        let got =
            read_up_to(&mut inner, &mut head).map_err(|e| corrupt(format!("it cannot be read: {e}")))?;
        if got < MAGIC.len() || head[..MAGIC.len()] != MAGIC[..] {
            // Format 1 was one JSON document behind a text header: name its
            // version, so that an upgrade reads as one.
            if head[..got].starts_with(b"conveyor-che") {
                return Err(CheckpointError::Version {
                    path: path.map(Path::to_owned),
                    expected: CHECKPOINT_FORMAT,
                    found: 1,
                });
            }
            return Err(corrupt("not a conveyor checkpoint".into()));
        }
        if got < PREAMBLE {
            return Err(corrupt("the format version is cut short".into()));
        }
        let mut version = [0; 4];
        version.copy_from_slice(&head[MAGIC.len()..]);
        let found = u32::from_le_bytes(version);
        if found != CHECKPOINT_FORMAT {
            return Err(CheckpointError::Version {
                path: path.map(Path::to_owned),
                expected: CHECKPOINT_FORMAT,
                found,
            });
        }
        Ok(Self {
            inner,
            offset: PREAMBLE as u64,
            buf: Vec::new(),
            path: path.map(Path::to_owned),
        })
    }

    /// Where the good part of the log ends so far.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The last frame of the log, `len` bytes long by its head, read into
    /// `buf` as far as the log goes, is bad: a torn tail, unless a
    /// complete frame sits inside it (see [`complete_frame_in`]).
    fn torn_or_damaged<'a>(&self, len: u64) -> Result<Read1<'a>, CheckpointError> {
        match complete_frame_in(&self.buf) {
            Some(at) => Err(self.corrupt(format!(
                "the record at byte {} says it holds {len} bytes, yet a complete record \
                 starts at byte {} inside them: its length is damaged",
                self.offset,
                self.offset + (FRAME_HEAD + at) as u64
            ))),
            None => Ok(Read1::Torn),
        }
    }

    pub(super) fn corrupt(&self, message: String) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.clone(),
            message,
        }
    }

    /// The next record.
    pub(super) fn next(&mut self) -> Result<Read1<'_>, CheckpointError> {
        let io = |e: std::io::Error| CheckpointError::Corrupt {
            path: self.path.clone(),
            message: format!("it cannot be read: {e}"),
        };
        let mut head = [0; FRAME_HEAD];
        let got = read_up_to(&mut self.inner, &mut head).map_err(io)?;
        if got == 0 {
            return Ok(Read1::End);
        }
        if got < FRAME_HEAD {
            return Ok(Read1::Torn);
        }
        let mut len = [0; 8];
        len.copy_from_slice(&head[..8]);
        let len = u64::from_le_bytes(len);
        let mut crc = [0; 4];
        crc.copy_from_slice(&head[8..12]);
        let crc = u32::from_le_bytes(crc);
        self.buf.clear();
        // `take` grows the buffer as bytes arrive, so a damaged length
        // cannot make the reader allocate what the log does not hold.
        let read = (&mut self.inner)
            .take(len)
            .read_to_end(&mut self.buf)
            .map_err(|e| CheckpointError::Corrupt {
                path: self.path.clone(),
                message: format!("it cannot be read: {e}"),
            })?;
        if (read as u64) < len {
            return self.torn_or_damaged(len);
        }
        if checksum(&[&head[..8], &head[FRAME_HEAD - 1..], &self.buf]) != crc {
            // Only the last frame can have been torn by a kill: bytes after
            // a bad frame mean the log was damaged some other way.
            let more = !self
                .inner
                .fill_buf()
                .map_err(|e| CheckpointError::Corrupt {
                    path: self.path.clone(),
                    message: format!("it cannot be read: {e}"),
                })?
                .is_empty();
            if more {
                return Err(self.corrupt(format!(
                    "the record at byte {} fails its checksum and is not the last",
                    self.offset
                )));
            }
            return self.torn_or_damaged(len);
        }
        let Some(kind) = Kind::of(head[FRAME_HEAD - 1]) else {
            return Err(self.corrupt(format!(
                "the record at byte {} has unknown kind {}",
                self.offset,
                head[FRAME_HEAD - 1]
            )));
        };
        self.offset += (FRAME_HEAD as u64) + len;
        Ok(Read1::Record(kind, &self.buf))
    }
}

/// Where a complete frame with a good checksum starts in `bytes`, the
/// rest of a log after a frame's head, when that frame runs past the end.
///
/// A kill tears only the frame being appended, so after a torn frame's head
/// there is only a prefix of its payload. A complete, checked frame there
/// means the head's length was damaged instead (a flipped high bit makes
/// any frame look torn), and dropping it as a torn tail would silently drop
/// every record after it. A payload that itself holds a whole framed record
/// would be mistaken for such damage: an error, never lost records. The
/// search stops after checksumming a few times the bytes it looks at, so a
/// torn tail of hundreds of MB costs linear time.
fn complete_frame_in(bytes: &[u8]) -> Option<usize> {
    let mut budget = bytes.len().saturating_mul(4).max(1 << 20);
    let last = bytes.len().checked_sub(FRAME_HEAD)?;
    for at in 0..=last {
        let head = &bytes[at..at + FRAME_HEAD];
        if Kind::of(head[FRAME_HEAD - 1]).is_none() {
            continue;
        }
        let mut len = [0; 8];
        len.copy_from_slice(&head[..8]);
        let Some(end) = usize::try_from(u64::from_le_bytes(len))
            .ok()
            .and_then(|len| (at + FRAME_HEAD).checked_add(len))
            .filter(|&end| end <= bytes.len())
        else {
            continue;
        };
        let cost = end - at;
        if cost > budget {
            return None;
        }
        budget -= cost;
        let mut crc = [0; 4];
        crc.copy_from_slice(&head[8..12]);
        if checksum(&[&head[..8], &head[FRAME_HEAD - 1..], &bytes[at + FRAME_HEAD..end]])
            == u32::from_le_bytes(crc)
        {
            return Some(at);
        }
    }
    None
}

/// Reads until `buf` is full or the input ends; how many bytes it read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
