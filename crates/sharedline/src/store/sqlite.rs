//! The SQLite store: one database file holding publications and
//! subscriptions as rows, each with its record as JSON, and the log files
//! beside it that hold the latest writes.
//!
//! Durability: a commit is acknowledged once its record has been written
//! to the current log file (the OS holds it), so a killed process (`kill
//! -9`, a panic, an OOM kill) loses nothing that was acknowledged; power
//! loss or a kernel crash is not covered (it would need an fsync per group
//! commit). The database itself runs with a write-ahead log and
//! `synchronous=NORMAL`, which is the same promise for the tables; a thread
//! of the store checkpoints it from its own connection (see
//! `Checkpointer`).
//!
//! The columns beside `data` (package, resource, expires_at) are there for
//! people inspecting the file; loading reads `data` only, so the JSON is the
//! source of truth. Beside the records, `resources` keeps when each line's
//! watched state last changed, and `notify_cseq` each dialog's reserved
//! NOTIFY CSeqs.
//!
//! A commit does not touch those tables: it appends the group's writes to
//! the store's own log (see [`super::log`]), one `write` of one record.
//! Between commits the writer thread folds what the log holds to the last
//! write per record ([`engine::StoreFold`]) and applies that to the tables
//! in short transactions; a log file is deleted once everything in it is in
//! the tables (`meta.log_applied` names the last such file). A record
//! written many times in a second (a publication being modified) reaches
//! its table once, and one made and removed within it (a line-seize) at
//! most as a delete. The tables lag the log by about [`FOLD_WINDOW`];
//! opening the file applies whatever the log files still hold before
//! loading, so a crash anywhere (even between two of those transactions:
//! each write sets a value, so applying one twice is harmless) loses
//! nothing committed.

use super::log::{self, LogFile};
use super::{Backend, StoreError};
use engine::{
    PublicationRecord, Snapshot, StoreBatch, StoreFold, StoreOp, SubscriptionRecord, Time,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::{Duration, Instant};

/// The schema this build writes and understands, kept in `meta`. Version 2
/// keeps recent writes in log files beside the database; a version 1 file
/// is upgraded on open (an older build refuses a version 2 file, whose
/// latest writes it would not know to look for).
const SCHEMA_VERSION: i64 = 2;

/// Committed writes wait at most about this long in the log before the
/// writer applies them to the tables.
const FOLD_WINDOW: Duration = Duration::from_secs(1);
/// ... or less, once this many records have a write pending.
const MAX_PENDING: usize = 4096;
/// Folding runs between commits, when none is waiting. Should commits
/// never stop coming, each one also applies steps while more than this
/// many writes wait for the tables: the fold's memory, the log files and
/// the work of a restart stay bounded even then.
const MAX_BACKLOG: usize = 4 * MAX_PENDING;
/// Writes applied per transaction when folding: each transaction holds the
/// writer (and the commits waiting behind it) for well under a millisecond.
const APPLY_STEP: usize = 64;

/// Another process holding the write lock (an operator's `sqlite3` shell,
/// say) makes a commit wait this long before it fails and is retried.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS publications (
    id         TEXT PRIMARY KEY,
    package    TEXT NOT NULL,
    resource   TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    data       TEXT NOT NULL
);
-- No index on resource: nothing queries by it, and each index is one more
-- B-tree every write changes (they existed in earlier files: dropped).
DROP INDEX IF EXISTS publications_resource;
CREATE TABLE IF NOT EXISTS subscriptions (
    id          TEXT PRIMARY KEY,
    package     TEXT NOT NULL,
    resource    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    data        TEXT NOT NULL,
    notify_cseq INTEGER NOT NULL DEFAULT 0,
    notify_at   INTEGER NOT NULL DEFAULT 0
);
DROP INDEX IF EXISTS subscriptions_resource;
CREATE TABLE IF NOT EXISTS resources (
    resource   TEXT PRIMARY KEY,
    changed_at INTEGER NOT NULL
);
";
/// Log files up to this generation are in the tables.
const SET_LOG_APPLIED: &str = "
INSERT INTO meta (key, value) VALUES ('log_applied', ?1)
ON CONFLICT(key) DO UPDATE SET value = excluded.value";

const PUT_PUBLICATION: &str = "
INSERT INTO publications (id, package, resource, expires_at, data)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT(id) DO UPDATE SET
    package = excluded.package,
    resource = excluded.resource,
    expires_at = excluded.expires_at,
    data = excluded.data";
const DELETE_PUBLICATION: &str = "DELETE FROM publications WHERE id = ?1";
const PUT_SUBSCRIPTION: &str = "
INSERT INTO subscriptions (id, package, resource, expires_at, data, notify_cseq, notify_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT(id) DO UPDATE SET
    package = excluded.package,
    resource = excluded.resource,
    expires_at = excluded.expires_at,
    data = excluded.data,
    notify_cseq = excluded.notify_cseq,
    notify_at = excluded.notify_at";
/// A dialog's CSeq reservation moves every thousand NOTIFYs; one integer
/// column keeps that cheap instead of rewriting the record's JSON. (NOTIFYs
/// themselves write nothing: `notify_at` is the last NOTIFY's time as of the
/// record's last full write, and the `resources` table tells a restart which
/// watchers may have missed one.)
const RESERVE_CSEQ: &str = "UPDATE subscriptions SET notify_cseq = ?2 WHERE id = ?1";
const RESOURCE_CHANGED: &str = "
INSERT INTO resources (resource, changed_at) VALUES (?1, ?2)
ON CONFLICT(resource) DO UPDATE SET changed_at = excluded.changed_at";
/// Rows older than this are of no use to a restart (it looks back minutes);
/// loading drops them so lines that are gone do not pile up.
const RESOURCES_KEPT: Duration = Duration::from_secs(24 * 3600);
const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = ?1";

/// An open database; owned by the writer thread after [`SqliteStore::open`].
pub(crate) struct SqliteStore {
    conn: Connection,
    /// The database file (log files are named after it).
    path: std::path::PathBuf,
    /// Where commits go.
    log: LogFile,
    /// Written into each log file, so that files of another database
    /// (deleted and created again under the same name) are not replayed.
    identity: u64,
    /// Log files up to this generation are applied (and deleted).
    applied_gen: u64,
    /// Committed writes not yet given to an [`Apply`], folded.
    pending: StoreFold,
    /// When the oldest write in `pending` was committed.
    pending_since: Option<Instant>,
    /// Folded writes being applied to the tables, a step at a time.
    applying: Option<Apply>,
    /// A failed step waits until then before it is tried again.
    retry_at: Option<Instant>,
    /// Stops the checkpoint thread when the store goes.
    _checkpoints: Checkpointer,
}

/// Folded writes on their way from the log to the tables.
struct Apply {
    ops: Vec<StoreOp>,
    /// How many of `ops` are in the tables.
    done: usize,
    /// Log files up to this generation are covered by `ops`.
    upto_gen: u64,
}

/// How often the checkpoint thread moves the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints on their own thread and connection. SQLite's automatic
/// checkpoint runs inside the commit that crosses 1000 WAL pages, and with
/// `synchronous=NORMAL` a checkpoint syncs the database file: that commit,
/// and every acknowledgement waiting on it, then waited for the disk (tens
/// of milliseconds on the machine that measured it). A passive checkpoint
/// from another connection runs beside the writer instead.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let shown = path.display().to_string();
        let conn = Connection::open(path)
            .map_err(|e| sql_err(&format!("sqlite:{shown}: checkpoint connection"), e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_err(&format!("sqlite:{shown}: busy_timeout"), e))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                use std::sync::atomic::Ordering;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(CHECKPOINT_EVERY);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    // PASSIVE never waits for the writer; what it cannot
                    // copy now is copied next time.
                    let done: Result<(i64, i64, i64), _> = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        });
                    if let Err(e) = done {
                        tracing::warn!(store = %shown, error = %e, "WAL checkpoint failed; will retry");
                    }
                }
            })
            .map_err(|e| StoreError(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn sql_err(context: &str, e: rusqlite::Error) -> StoreError {
    StoreError(format!("{context}: {e}"))
}

/// SQLite integers are signed; times beyond i64 (only a saturated "never")
/// are stored as the largest value, which still sorts last.
fn time_column(t: Time) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Open or create the database at `path` and load everything in it.
    pub(crate) fn open(path: &Path) -> Result<(SqliteStore, Snapshot), StoreError> {
        let shown = path.display();
        let conn = Connection::open(path)
            .map_err(|e| sql_err(&format!("cannot open sqlite:{shown}"), e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sql_err(&format!("sqlite:{shown}: busy_timeout"), e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot enable WAL"), e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError(format!(
                "sqlite:{shown}: journal_mode is `{mode}`, WAL is needed"
            )));
        }
        // NORMAL is durable against a process crash under WAL; see the module doc.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| sql_err(&format!("sqlite:{shown}: synchronous"), e))?;

        // Checkpoints run on their own thread (see `Checkpointer`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| sql_err(&format!("sqlite:{shown}: wal_autocheckpoint"), e))?;

        let mut conn = conn;
        create_schema(&mut conn, path)?;
        let identity = log_identity(&mut conn, path)?;
        let (applied_gen, newest) = replay_log(&mut conn, path, identity)?;
        // Past any file left over (another database's), never onto one.
        let log = LogFile::create(path, applied_gen.max(newest) + 1, identity)?;
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            log,
            identity,
            applied_gen,
            pending: StoreFold::default(),
            pending_since: None,
            applying: None,
            retry_at: None,
            _checkpoints: Checkpointer::start(path)?,
        };
        let snapshot = store.load(path)?;
        Ok((store, snapshot))
    }

    /// Apply the next step of `applying`, starting one from `pending` if
    /// none is under way (commits then go to a new log file, so the files
    /// it covers can be deleted once it is done). The step's transaction
    /// either applies its writes (and, for the last step, records the
    /// files as applied) or changes nothing.
    fn apply_step(&mut self) -> Result<(), StoreError> {
        if self.applying.is_none() {
            if self.pending.is_empty() {
                return Ok(());
            }
            let upto_gen = self.log.gen();
            self.log = LogFile::create(&self.path, upto_gen + 1, self.identity)?;
            self.applying = Some(Apply {
                ops: std::mem::take(&mut self.pending).into_ops(),
                done: 0,
                upto_gen,
            });
            self.pending_since = None;
        }
        let Some(apply) = &mut self.applying else {
            return Ok(());
        };
        let end = (apply.done + APPLY_STEP).min(apply.ops.len());
        let last = end == apply.ops.len();
        apply_in_one_transaction(
            &mut self.conn,
            &apply.ops[apply.done..end],
            last.then_some(apply.upto_gen),
        )
        .map_err(|e| sql_err("store: applying the log", e))?;
        apply.done = end;
        if last {
            let upto = apply.upto_gen;
            self.applying = None;
            for gen in self.applied_gen + 1..=upto {
                remove_applied(&log::file_of(&self.path, gen));
            }
            self.applied_gen = upto;
        }
        Ok(())
    }

    /// Writes waiting for the tables.
    fn backlog(&self) -> usize {
        self.pending.len() + self.applying.as_ref().map_or(0, |a| a.ops.len() - a.done)
    }

    fn load(&self, path: &Path) -> Result<Snapshot, StoreError> {
        let mut subscriptions: Vec<SubscriptionRecord> = self.load_table(path, "subscriptions")?;
        let shown = path.display();
        let read_err = |e| sql_err(&format!("sqlite:{shown}: cannot read subscriptions"), e);
        let mut cseqs = std::collections::HashMap::new();
        let mut stmt = self
            .conn
            .prepare("SELECT id, notify_cseq FROM subscriptions")
            .map_err(read_err)?;
        let mut rows = stmt.query([]).map_err(read_err)?;
        while let Some(row) = rows.next().map_err(read_err)? {
            let id: String = row.get(0).map_err(read_err)?;
            let cseq: u32 = row.get(1).map_err(read_err)?;
            cseqs.insert(id, cseq);
        }
        // The column moves with each reservation, the JSON only on other
        // changes: the larger is the reservation.
        for s in &mut subscriptions {
            if let Some(&c) = cseqs.get(&s.id) {
                s.cseq_reserved = s.cseq_reserved.max(c);
            }
        }
        Ok(Snapshot {
            publications: self.load_table(path, "publications")?,
            subscriptions,
            resources_changed: self.load_resources(path)?,
        })
    }

    /// When each resource last changed, dropping rows too old to matter.
    fn load_resources(&self, path: &Path) -> Result<Vec<(String, Time)>, StoreError> {
        let shown = path.display();
        let read_err = |e| sql_err(&format!("sqlite:{shown}: cannot read resources"), e);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let horizon = now.saturating_sub(RESOURCES_KEPT).as_millis();
        self.conn
            .execute(
                "DELETE FROM resources WHERE changed_at < ?1",
                params![i64::try_from(horizon).unwrap_or(0)],
            )
            .map_err(read_err)?;
        let mut stmt = self
            .conn
            .prepare("SELECT resource, changed_at FROM resources")
            .map_err(read_err)?;
        let rows = stmt
            .query_map([], |row| {
                let at: i64 = row.get(1)?;
                Ok((row.get(0)?, Time(u64::try_from(at).unwrap_or(0))))
            })
            .map_err(read_err)?;
        rows.collect::<Result<_, _>>().map_err(read_err)
    }

    /// Every record of `table` (a fixed name from this file). A row whose JSON
    /// does not parse stops the load: starting without it would silently
    /// drop state that clients were told is stored.
    fn load_table<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        table: &str,
    ) -> Result<Vec<T>, StoreError> {
        let shown = path.display();
        let read_err = |e| sql_err(&format!("sqlite:{shown}: cannot read {table}"), e);
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT id, data FROM {table}"))
            .map_err(read_err)?;
        let mut rows = stmt.query([]).map_err(read_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(read_err)? {
            let id: String = row.get(0).map_err(read_err)?;
            let data: String = row.get(1).map_err(read_err)?;
            let record = serde_json::from_str(&data).map_err(|e| {
                StoreError(format!(
                    "sqlite:{shown}: {table} row `{id}` holds unreadable data: {e}"
                ))
            })?;
            out.push(record);
        }
        Ok(out)
    }
}

fn put_publication(
    tx: &rusqlite::Transaction<'_>,
    p: &PublicationRecord,
) -> Result<(), rusqlite::Error> {
    let data = serde_json::to_string(p)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(PUT_PUBLICATION)?.execute(params![
        p.id,
        p.package,
        p.resource,
        time_column(p.expires_at),
        data
    ])?;
    Ok(())
}

fn put_subscription(
    tx: &rusqlite::Transaction<'_>,
    s: &SubscriptionRecord,
) -> Result<(), rusqlite::Error> {
    let data = serde_json::to_string(s)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(PUT_SUBSCRIPTION)?.execute(params![
        s.id,
        s.package,
        s.resource,
        time_column(s.expires_at),
        data,
        s.cseq_reserved,
        time_column(s.last_notify_at)
    ])?;
    Ok(())
}

fn create_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let shown = path.display();
    let tx = conn
        .transaction()
        .map_err(|e| sql_err(&format!("sqlite:{shown}: begin"), e))?;
    tx.execute_batch(SCHEMA)
        .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot create schema"), e))?;
    let found = read_meta(&tx, "schema_version")
        .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot read schema version"), e))?;
    match found {
        Some(v) if v == "1" => {
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
                params![SCHEMA_VERSION.to_string()],
            )
            .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot upgrade schema"), e))?;
        }
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION.to_string()],
            )
            .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot write schema version"), e))?;
        }
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        Some(v) => {
            return Err(StoreError(format!(
                "sqlite:{shown}: schema version `{v}` is not supported (this build knows {SCHEMA_VERSION})"
            )));
        }
    }
    tx.commit()
        .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot commit schema"), e))
}

/// One value of the `meta` table.
fn read_meta(conn: &Connection, key: &str) -> Result<Option<String>, rusqlite::Error> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
        row.get(0)
    })
    .optional()
}

/// The identity written into this database's log files, made at the first
/// open.
fn log_identity(conn: &mut Connection, path: &Path) -> Result<u64, StoreError> {
    let shown = path.display();
    let found = read_meta(conn, "log_identity")
        .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot read the log identity"), e))?;
    if let Some(id) = found.and_then(|v| v.parse().ok()) {
        return Ok(id);
    }
    use std::hash::{BuildHasher, Hasher};
    // Random keys: two databases get different identities.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let id = h.finish();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('log_identity', ?1)",
        params![id.to_string()],
    )
    .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot write the log identity"), e))?;
    Ok(id)
}

/// Apply whatever the log files beside `path` still hold (after a crash,
/// or a stop that could not finish) to the tables and delete them. Returns
/// the last generation applied and the newest generation found beside the
/// database (another database's files included).
fn replay_log(conn: &mut Connection, path: &Path, identity: u64) -> Result<(u64, u64), StoreError> {
    let shown = path.display();
    let applied: u64 = read_meta(conn, "log_applied")
        .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot read meta"), e))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut fold = StoreFold::default();
    let mut replayed = Vec::new();
    let gens = log::generations(path)?;
    let newest = gens.last().copied().unwrap_or(0);
    for gen in gens {
        let file = log::file_of(path, gen);
        if gen <= applied {
            // Applied, but the stop came before the file was deleted.
            remove_applied(&file);
            continue;
        }
        match log::read(&file, identity)? {
            Some(records) => {
                records.into_iter().flatten().for_each(|op| fold.push(op));
                replayed.push((gen, file));
            }
            None => tracing::warn!(
                file = %file.display(),
                "log file of another database with this name; not replayed"
            ),
        }
    }
    let Some(&(last, _)) = replayed.last() else {
        return Ok((applied, newest));
    };
    let records = fold.len();
    apply_in_one_transaction(conn, &fold.into_ops(), Some(last))
        .map_err(|e| sql_err(&format!("sqlite:{shown}: replaying the log"), e))?;
    for (_, file) in &replayed {
        remove_applied(file);
    }
    tracing::info!(store = %shown, records, files = replayed.len(), "log applied");
    Ok((last, newest))
}

/// Delete a log file whose records are all in the tables. Failing only
/// leaves it to be deleted at the next start.
fn remove_applied(file: &Path) {
    if let Err(e) = std::fs::remove_file(file) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %file.display(), error = %e, "cannot delete an applied log file");
        }
    }
}

/// Apply `ops` to the tables in one transaction, recording the log files up
/// to `applied_gen` (if given) as applied in the same one: all of it lands
/// or none.
fn apply_in_one_transaction(
    conn: &mut Connection,
    ops: &[StoreOp],
    applied_gen: Option<u64>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    for op in ops {
        apply_op(&tx, op)?;
    }
    if let Some(gen) = applied_gen {
        tx.prepare_cached(SET_LOG_APPLIED)?
            .execute(params![gen.to_string()])?;
    }
    tx.commit()
}

/// One write to the tables.
fn apply_op(tx: &rusqlite::Transaction<'_>, op: &StoreOp) -> Result<(), rusqlite::Error> {
    match op {
        StoreOp::PutPublication(p) => put_publication(tx, p),
        StoreOp::DeletePublication(id) => tx
            .prepare_cached(DELETE_PUBLICATION)
            .and_then(|mut st| st.execute(params![id]))
            .map(drop),
        StoreOp::PutSubscription(s) => put_subscription(tx, s),
        StoreOp::DeleteSubscription(id) => tx
            .prepare_cached(DELETE_SUBSCRIPTION)
            .and_then(|mut st| st.execute(params![id]))
            .map(drop),
        StoreOp::ReserveCSeq { id, upto } => tx
            .prepare_cached(RESERVE_CSEQ)
            .and_then(|mut st| st.execute(params![id, upto]))
            .map(drop),
        StoreOp::ResourceChanged { resource, at } => tx
            .prepare_cached(RESOURCE_CHANGED)
            .and_then(|mut st| st.execute(params![resource, time_column(*at)]))
            .map(drop),
    }
}

/// How long a failed folding step waits before it is tried again (the
/// log keeps its writes meanwhile).
const APPLY_RETRY: Duration = Duration::from_secs(1);

impl Backend for SqliteStore {
    fn commit(&mut self, batches: &[StoreBatch]) -> Result<(), StoreError> {
        if batches.iter().all(|b| b.ops.is_empty()) {
            return Ok(());
        }
        if self.log.broken() {
            // Records after a torn one would never be read: start a new
            // file; the pending fold covers both.
            self.log = LogFile::create(&self.path, self.log.gen() + 1, self.identity)?;
        }
        self.log.append(batches.iter().flat_map(|b| &b.ops))
    }

    fn committed(&mut self, batches: Vec<StoreBatch>) {
        if batches.iter().all(|b| b.ops.is_empty()) {
            return;
        }
        self.pending_since.get_or_insert_with(Instant::now);
        for op in batches.into_iter().flat_map(|b| b.ops) {
            self.pending.push(op);
        }
        while self.backlog() > MAX_BACKLOG && self.retry_at.is_none() {
            self.work();
        }
    }

    fn work_due(&self) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        if self.applying.is_some() || self.pending.len() >= MAX_PENDING {
            return Some(Instant::now());
        }
        self.pending_since.map(|since| since + FOLD_WINDOW)
    }

    fn work(&mut self) {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        match self.apply_step() {
            Ok(()) => self.retry_at = None,
            Err(e) => {
                tracing::warn!(error = %e, "store: applying the log to the tables failed; will retry");
                self.retry_at = Some(Instant::now() + APPLY_RETRY);
            }
        }
    }

    fn finish(&mut self) {
        // A stop applies everything, so the tables an operator inspects are
        // complete; if it cannot, the next open replays the log.
        while self.applying.is_some() || !self.pending.is_empty() {
            if let Err(e) = self.apply_step() {
                tracing::warn!(error = %e, "store: log left for the next start to apply");
                return;
            }
        }
        // Everything is in the tables: the file commits would have gone to
        // next holds nothing, and a stopped server leaves only the database.
        if self.log.is_empty() {
            remove_applied(self.log.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{Source, StoreModel, Transport};
    use std::io::Write;

    fn publication(id: &str, state: &str) -> PublicationRecord {
        PublicationRecord {
            id: id.into(),
            package: "call-info".into(),
            resource: "sip:line@example.com".into(),
            etag: format!("e-{state}"),
            expires_at: Time(1_700_000_360_000),
            changed_at: Time(1_700_000_000_000),
            state: state.into(),
            source: Source {
                transport: Transport::Udp,
                local: "127.0.0.1:5060".parse().expect("literal"),
                remote: "192.0.2.7:5070".parse().expect("literal"),
                conn: None,
            },
        }
    }

    fn batch(seq: u64, ops: Vec<StoreOp>) -> StoreBatch {
        StoreBatch { seq, ops }
    }

    fn sorted(mut s: Snapshot) -> Snapshot {
        s.publications.sort_by(|a, b| a.id.cmp(&b.id));
        s
    }

    /// A crash after these commits: they are in the log, nothing folded
    /// them into the tables, and nothing finished.
    fn crash_after(path: &Path, commits: &[StoreBatch]) {
        let (mut store, _) = SqliteStore::open(path).expect("open");
        store.commit(commits).expect("commit");
        std::mem::drop(store);
    }

    /// A crash after committing publication `id`; returns the log file
    /// that holds it.
    fn crash_with_one_publication(path: &Path, id: &str) -> std::path::PathBuf {
        crash_after(
            path,
            &[batch(
                1,
                vec![StoreOp::PutPublication(publication(id, "1"))],
            )],
        );
        let gen = *log::generations(path).expect("list").last().expect("a log");
        log::file_of(path, gen)
    }

    #[test]
    fn commits_left_in_the_log_by_a_crash_are_loaded_by_the_next_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let commits = [
            batch(1, vec![StoreOp::PutPublication(publication("a", "1"))]),
            batch(2, vec![StoreOp::PutPublication(publication("b", "1"))]),
        ];
        crash_after(&path, &commits);
        // A second life that also crashes, with one applied write (a crash
        // between two folding transactions) replayed on top.
        let (mut store, loaded) = SqliteStore::open(&path).expect("reopen");
        assert_eq!(loaded.publications.len(), 2);
        let more = [batch(
            3,
            vec![
                StoreOp::PutPublication(publication("a", "2")),
                StoreOp::DeletePublication("b".into()),
            ],
        )];
        store.commit(&more).expect("commit");
        let tx = store.conn.transaction().expect("tx");
        apply_op(&tx, &StoreOp::DeletePublication("b".into())).expect("apply");
        tx.commit().expect("commit tx");
        std::mem::drop(store);

        let mut expected = StoreModel::default();
        commits
            .iter()
            .chain(&more)
            .flat_map(|b| b.ops.clone())
            .for_each(|op| expected.apply(op));
        let (_, loaded) = SqliteStore::open(&path).expect("third open");
        assert_eq!(sorted(loaded), sorted(expected.snapshot()));
        // Replayed files are deleted; only the new one is left.
        assert_eq!(log::generations(&path).expect("list").len(), 1);
    }

    #[test]
    fn commits_that_never_stop_still_reach_the_tables() {
        // A writer that never finds its queue empty never folds between
        // commits; the backlog must stay bounded all the same.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let (mut store, _) = SqliteStore::open(&path).expect("open");
        let mut expected = StoreModel::default();
        for seq in 1..=300u64 {
            let ops: Vec<StoreOp> = (0..100)
                .map(|i| StoreOp::PutPublication(publication(&format!("p{seq}-{i}"), "x")))
                .collect();
            ops.iter().for_each(|op| expected.apply(op.clone()));
            let group = [batch(seq, ops)];
            store.commit(&group).expect("commit");
            store.committed(group.into());
            assert!(
                store.backlog() <= MAX_BACKLOG + 100,
                "backlog {} after commit {seq}",
                store.backlog()
            );
        }
        let in_tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM publications", [], |r| r.get(0))
            .expect("count");
        assert!(
            in_tables >= 30_000 - MAX_BACKLOG as i64 - 100,
            "{in_tables} in the tables"
        );
        drop(store);
        let (_, loaded) = SqliteStore::open(&path).expect("reopen");
        assert_eq!(sorted(loaded), sorted(expected.snapshot()));
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_a_corrupt_one_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let file = crash_with_one_publication(&path, "a");
        let whole = std::fs::read(&file).expect("read log");
        // A write the process died in: a header promising more than is there.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("open log");
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'[', b'{'])
            .expect("torn record");
        drop(f);
        let (store, loaded) = SqliteStore::open(&path).expect("a torn tail is not an error");
        assert_eq!(loaded.publications, vec![publication("a", "1")]);
        drop(store);

        // The same record with one byte of its payload changed.
        let mut corrupt = whole.clone();
        let last = corrupt.len() - 2;
        corrupt[last] ^= 0x20;
        let bad = log::file_of(&path, 100);
        std::fs::write(&bad, &corrupt).expect("write corrupt log");
        let err = SqliteStore::open(&path)
            .err()
            .expect("a corrupt record stops the start");
        assert!(err.0.contains("CRC mismatch"), "{}", err.0);
        assert!(err.0.contains(&bad.display().to_string()), "{}", err.0);
    }

    #[test]
    fn a_log_of_another_database_with_the_same_name_is_not_replayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let file = crash_with_one_publication(&path, "old");
        let kept = dir.path().join("kept");
        std::fs::rename(file, &kept).expect("keep the log");
        // The operator deletes the database to start afresh, and a log file
        // of the old one is still (or again) beside it.
        for f in ["s.db", "s.db-wal", "s.db-shm"] {
            let _ = std::fs::remove_file(dir.path().join(f));
        }
        let (store, loaded) = SqliteStore::open(&path).expect("new database");
        assert!(loaded.publications.is_empty());
        drop(store);
        std::fs::rename(&kept, log::file_of(&path, 50)).expect("old log back");
        let (_, loaded) = SqliteStore::open(&path).expect("open beside a foreign log");
        assert!(loaded.publications.is_empty(), "{:?}", loaded.publications);
    }
}
