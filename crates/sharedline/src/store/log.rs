//! The SQLite store's write-ahead log: the files where a commit lands.
//!
//! A commit appends one record (the group's [`StoreOp`]s) to the current
//! log file with one `write`; once that returns, the bytes are the kernel's,
//! and a crash of the process (`kill -9`, a panic, an OOM kill) cannot lose
//! them: the same promise as SQLite's WAL with `synchronous=NORMAL`, for a
//! fraction of the work (no B-tree, no page images, no locks). The store
//! folds what the log holds into its tables later and deletes the files
//! that are fully applied.
//!
//! Files are numbered generations, `<db>-log-<N>`; the store starts a new
//! one each time it begins applying the previous one, so a file is deleted
//! whole. A file starts with 16 bytes, [`MAGIC`] and the database's log
//! identity (kept in its `meta` table), so a log left beside a database
//! that was deleted and created again is not replayed into the new one.
//! Each record is framed as
//!
//! ```text
//! u32 LE  length of the payload
//! u32 LE  CRC-32 of the payload
//! bytes   payload: the ops as a JSON array
//! ```
//!
//! A record cut short at the end of a file (a `write` the process died in,
//! which nobody was told had succeeded) ends that file's reading; a record
//! whose CRC does not match, with all its bytes present, is corruption and
//! stops the start, since it may hold acknowledged writes.

use super::StoreError;
use engine::StoreOp;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes before each payload.
const HEADER: usize = 8;
/// The first bytes of every log file (format version 1).
const MAGIC: &[u8; 8] = b"SLLOG\x00\x00\x01";
/// Bytes of the file header: [`MAGIC`], then the identity as u64 LE.
const FILE_HEADER: usize = 16;

/// The log file of generation `gen` beside the database at `db`.
pub(crate) fn file_of(db: &Path, gen: u64) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(format!("-log-{gen}"));
    PathBuf::from(name)
}

/// Generations of the log files beside `db`, in ascending order.
pub(crate) fn generations(db: &Path) -> Result<Vec<u64>, StoreError> {
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(base) = db.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}-log-");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| StoreError(format!("cannot list {}: {e}", dir.display())))?;
    let mut gens = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(gen) = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        gens.push(gen);
    }
    gens.sort_unstable();
    Ok(gens)
}

/// Every complete record of the log file at `path`, in order; `None` if
/// the file belongs to another database (another `identity`).
pub(crate) fn read(path: &Path, identity: u64) -> Result<Option<Vec<Vec<StoreOp>>>, StoreError> {
    let shown = path.display();
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| StoreError(format!("cannot read {shown}: {e}")))?;
    let mut records = Vec::new();
    if bytes.len() < FILE_HEADER {
        // Created, and killed before its header was written: empty.
        return Ok(Some(records));
    }
    if &bytes[..8] != MAGIC {
        return Err(StoreError(format!(
            "{shown} is not a sharedline log file (it should be, by its name)"
        )));
    }
    if u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) != identity {
        return Ok(None);
    }
    let mut at = FILE_HEADER;
    while bytes.len() - at >= HEADER {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let start = at + HEADER;
        if len == 0 || bytes.len() - start < len {
            // A write cut short, or the zeros a file system may leave after
            // an extension that never got its data: nothing after it was
            // ever acknowledged.
            break;
        }
        let payload = &bytes[start..start + len];
        if crc32fast::hash(payload) != crc {
            return Err(StoreError(format!(
                "{shown}: the record at byte {at} is corrupt (CRC mismatch); it may hold acknowledged writes, so the store will not start without it"
            )));
        }
        let ops: Vec<StoreOp> = serde_json::from_slice(payload).map_err(|e| {
            StoreError(format!(
                "{shown}: the record at byte {at} holds unreadable data: {e}"
            ))
        })?;
        records.push(ops);
        at = start + len;
    }
    Ok(Some(records))
}

/// The file commits append to.
pub(crate) struct LogFile {
    file: File,
    path: PathBuf,
    gen: u64,
    /// Bytes of complete records: where the next one starts.
    len: u64,
    /// Reused for each record.
    buf: Vec<u8>,
    /// See [`LogFile::broken`].
    broken: bool,
}

impl LogFile {
    /// Create generation `gen` beside `db`, for the database of `identity`.
    pub(crate) fn create(db: &Path, gen: u64, identity: u64) -> Result<LogFile, StoreError> {
        let path = file_of(db, gen);
        let fail = |e: std::io::Error| StoreError(format!("cannot create {}: {e}", path.display()));
        // Appending: after a failed write is cut off, the next one goes
        // where the file now ends.
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        let mut header = [0u8; FILE_HEADER];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&identity.to_le_bytes());
        file.write_all(&header).map_err(fail)?;
        Ok(LogFile {
            file,
            path,
            gen,
            len: FILE_HEADER as u64,
            buf: Vec::new(),
            broken: false,
        })
    }

    /// A failed write could not be cut off: later records would follow a
    /// torn one and never be read. The store moves to a new file.
    pub(crate) fn broken(&self) -> bool {
        self.broken
    }

    /// This file's generation.
    pub(crate) fn gen(&self) -> u64 {
        self.gen
    }

    /// Whether no record has been appended.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == FILE_HEADER as u64
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Append one record holding `ops`. On error nothing of it stays in the
    /// file (a partial write is cut off), so the caller can retry.
    pub(crate) fn append<'a>(
        &mut self,
        ops: impl Iterator<Item = &'a StoreOp>,
    ) -> Result<(), StoreError> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0; HEADER]);
        let mut json = serde_json::Serializer::new(&mut self.buf);
        serde::Serializer::collect_seq(&mut json, ops)
            .map_err(|e| StoreError(format!("store: cannot encode a log record: {e}")))?;
        let len = u32::try_from(self.buf.len() - HEADER)
            .map_err(|_| StoreError("store: a log record over 4 GiB".into()))?;
        let crc = crc32fast::hash(&self.buf[HEADER..]);
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        if let Err(e) = self.file.write_all(&self.buf) {
            // Cut a partial record off, so that the retry's record follows
            // the last complete one (a torn record mid-file would be read as
            // the end of the file).
            let cut = self.file.set_len(self.len).is_ok();
            self.broken = !cut;
            return Err(StoreError(format!(
                "store: cannot write {}: {e}{}",
                self.path.display(),
                if cut {
                    ""
                } else {
                    " (and cannot cut the partial record off)"
                }
            )));
        }
        self.len += self.buf.len() as u64;
        Ok(())
    }
}
