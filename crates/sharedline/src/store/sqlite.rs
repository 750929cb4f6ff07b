//! The SQLite store: one database file holding publications and
//! subscriptions as rows, each with its record as JSON.
//!
//! Durability settings: the journal is a write-ahead log and
//! `synchronous=NORMAL`. A commit has then been written to the WAL file (the
//! OS holds it) before `commit` returns, so a killed process (`kill -9`, a
//! panic, an OOM kill) loses nothing that was acknowledged; what it does not
//! cover is power loss or a kernel crash, which needs `synchronous=FULL` (an
//! fsync per commit). Group commit keeps that cost per group, not per batch,
//! should FULL be wanted later. Commits never checkpoint: a thread of the
//! store does, from its own connection (see `Checkpointer`).
//!
//! The columns beside `data` (package, resource, expires_at) are there for
//! people inspecting the file; loading reads `data` only, so the JSON is the
//! source of truth. Beside the records, `resources` keeps when each line's
//! watched state last changed, and `notify_cseq` each dialog's reserved
//! NOTIFY CSeqs.
//!
//! A commit does not touch those tables: it appends the group's writes, as
//! one JSON row, to `journal`, which costs one page at the end of one
//! B-tree however many records the group names. Between commits the writer
//! thread folds what the journal holds to the last write per record
//! ([`engine::StoreFold`]) and applies that to the tables in short
//! transactions, then deletes the journal rows it covered. A record
//! written many times in a second (a publication being modified, a
//! line-seize made and released) reaches its table once or not at all.
//! The tables lag the journal by about [`FOLD_WINDOW`]; opening the file
//! applies whatever the journal still holds before loading, so a crash
//! anywhere (even between two of those transactions: each write sets a
//! value, so applying one twice is harmless) loses nothing committed.

use super::{Backend, StoreError};
use engine::{
    PublicationRecord, Snapshot, StoreBatch, StoreFold, StoreOp, SubscriptionRecord, Time,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::{Duration, Instant};

/// The schema this build writes and understands, kept in `meta`. Version 2
/// added `journal`; a version 1 file is upgraded on open (an older build
/// refuses a version 2 file, which may hold writes only in its journal).
const SCHEMA_VERSION: i64 = 2;

/// Committed writes wait at most about this long in the journal before the
/// writer applies them to the tables.
pub(crate) const FOLD_WINDOW: Duration = Duration::from_secs(1);
/// ... or less, once this many records have a write pending, which bounds
/// the memory the fold holds and the work a restart replays.
const MAX_PENDING: usize = 4096;
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
-- Committed writes not yet applied to the tables above, oldest first: each
-- row is one group commit's StoreOps as a JSON array.
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    ops TEXT NOT NULL
);
";
const APPEND_JOURNAL: &str = "INSERT INTO journal (ops) VALUES (?1)";
const TRIM_JOURNAL: &str = "DELETE FROM journal WHERE seq <= ?1";

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
    /// Committed writes not yet given to an [`Apply`], folded.
    pending: StoreFold,
    /// The last journal row folded into `pending`.
    pending_upto: i64,
    /// When the oldest write in `pending` was committed.
    pending_since: Option<Instant>,
    /// Folded writes being applied to the tables, a step at a time.
    applying: Option<Apply>,
    /// A failed step waits until then before it is tried again.
    retry_at: Option<Instant>,
    /// Stops the checkpoint thread when the store goes.
    _checkpoints: Checkpointer,
}

/// Folded writes on their way from the journal to the tables.
struct Apply {
    ops: Vec<StoreOp>,
    /// How many of `ops` are in the tables.
    done: usize,
    /// Journal rows up to this one are covered by `ops`.
    upto: i64,
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

        let mut store = SqliteStore {
            conn,
            pending: StoreFold::default(),
            pending_upto: 0,
            pending_since: None,
            applying: None,
            retry_at: None,
            _checkpoints: Checkpointer::start(path)?,
        };
        store.create_schema(path)?;
        store.replay_journal(path)?;
        let snapshot = store.load(path)?;
        Ok((store, snapshot))
    }

    fn create_schema(&mut self, path: &Path) -> Result<(), StoreError> {
        let shown = path.display();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sql_err(&format!("sqlite:{shown}: begin"), e))?;
        tx.execute_batch(SCHEMA)
            .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot create schema"), e))?;
        let found: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| sql_err(&format!("sqlite:{shown}: cannot read schema version"), e))?;
        match found {
            Some(v) if v == "1" => {
                // The schema above has just added the journal.
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

    /// Apply every write the journal still holds (a crash, or a stop that
    /// could not finish folding) to the tables, and empty it.
    fn replay_journal(&mut self, path: &Path) -> Result<(), StoreError> {
        let shown = path.display();
        let read_err = |e| sql_err(&format!("sqlite:{shown}: cannot read the journal"), e);
        let mut fold = StoreFold::default();
        let mut upto = 0i64;
        {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, ops FROM journal ORDER BY seq")
                .map_err(read_err)?;
            let mut rows = stmt.query([]).map_err(read_err)?;
            while let Some(row) = rows.next().map_err(read_err)? {
                let seq: i64 = row.get(0).map_err(read_err)?;
                let text: String = row.get(1).map_err(read_err)?;
                // Starting without a committed write would drop what
                // clients were told is stored.
                let ops: Vec<StoreOp> = serde_json::from_str(&text).map_err(|e| {
                    StoreError(format!(
                        "sqlite:{shown}: journal row {seq} holds unreadable data: {e}"
                    ))
                })?;
                ops.into_iter().for_each(|op| fold.push(op));
                upto = seq;
            }
        }
        if upto == 0 {
            return Ok(());
        }
        let records = fold.len();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| sql_err(&format!("sqlite:{shown}: begin"), e))?;
        for op in &fold.into_ops() {
            apply_op(&tx, op).map_err(|e| sql_err(&format!("sqlite:{shown}: replay"), e))?;
        }
        tx.execute(TRIM_JOURNAL, params![upto])
            .map_err(|e| sql_err(&format!("sqlite:{shown}: replay"), e))?;
        tx.commit()
            .map_err(|e| sql_err(&format!("sqlite:{shown}: replay"), e))?;
        tracing::info!(store = %shown, records, "journal applied");
        Ok(())
    }

    /// Apply the next step of `applying`, starting one from `pending` if
    /// none is under way. The step's transaction either applies its writes
    /// (and, for the last step, trims the journal) or changes nothing.
    fn apply_step(&mut self) -> Result<(), rusqlite::Error> {
        if self.applying.is_none() {
            if self.pending.is_empty() {
                return Ok(());
            }
            self.applying = Some(Apply {
                ops: std::mem::take(&mut self.pending).into_ops(),
                done: 0,
                upto: self.pending_upto,
            });
            self.pending_since = None;
        }
        let Some(apply) = &mut self.applying else {
            return Ok(());
        };
        let end = (apply.done + APPLY_STEP).min(apply.ops.len());
        let tx = self.conn.transaction()?;
        for op in &apply.ops[apply.done..end] {
            apply_op(&tx, op)?;
        }
        let last = end == apply.ops.len();
        if last {
            tx.prepare_cached(TRIM_JOURNAL)?
                .execute(params![apply.upto])?;
        }
        tx.commit()?;
        apply.done = end;
        if last {
            self.applying = None;
        }
        Ok(())
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
/// journal keeps its writes meanwhile).
const APPLY_RETRY: Duration = Duration::from_secs(1);

impl Backend for SqliteStore {
    fn commit(&mut self, batches: &[StoreBatch]) -> Result<(), StoreError> {
        let ops: Vec<&StoreOp> = batches.iter().flat_map(|b| &b.ops).collect();
        if ops.is_empty() {
            return Ok(());
        }
        let text = serde_json::to_string(&ops)
            .map_err(|e| StoreError(format!("store: cannot encode the journal row: {e}")))?;
        self.conn
            .prepare_cached(APPEND_JOURNAL)
            .and_then(|mut st| st.execute(params![text]))
            .map_err(|e| sql_err("store: journal append", e))?;
        // Outside a transaction the insert above is its own commit.
        self.pending_upto = self.conn.last_insert_rowid();
        Ok(())
    }

    fn committed(&mut self, batches: Vec<StoreBatch>) {
        if batches.iter().all(|b| b.ops.is_empty()) {
            return;
        }
        self.pending_since.get_or_insert_with(Instant::now);
        for op in batches.into_iter().flat_map(|b| b.ops) {
            self.pending.push(op);
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
                tracing::warn!(error = %e, "store: applying the journal to the tables failed; will retry");
                self.retry_at = Some(Instant::now() + APPLY_RETRY);
            }
        }
    }

    fn finish(&mut self) {
        // A stop applies everything, so the tables an operator inspects are
        // complete; if it cannot, the next open replays the journal.
        while self.applying.is_some() || !self.pending.is_empty() {
            if let Err(e) = self.apply_step() {
                tracing::warn!(error = %e, "store: journal left for the next start to apply");
                return;
            }
        }
    }
}
