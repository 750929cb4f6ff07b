//! The durable store: keeps the engine's [`engine::StoreBatch`]es and loads
//! them back as an [`engine::Snapshot`] at start.
//!
//! The engine's rule is "a 200 means stored": it waits for
//! [`engine::Engine::handle_durable`] before anything that depends on a batch
//! leaves. This module owns that promise. [`open`] loads what is stored and
//! starts a [`StoreWriter`], which owns one dedicated OS thread so that
//! blocking file I/O never runs on the tokio runtime. The thread commits
//! queued batches in groups (one transaction for everything queued at that
//! moment) and only then reports the highest committed `seq` through the
//! `on_durable` callback. A batch that has not been committed is never
//! acknowledged: a failing commit is logged and retried, not skipped. The
//! engine task hands over a round's batches at once
//! ([`StoreWriter::submit_all`]): on one core every hand-over can switch
//! threads.
//!
//! Two stores exist: SQLite ([`sqlite`], with its write-ahead [`log`]) and
//! memory (nothing survives a restart; for tests and throwaway runs, with
//! no code of its own). SQLite commits on the writer thread (a group is
//! one record appended to the log; between commits the thread folds the
//! log into the tables, [`Backend::work`]), so its callback is invoked
//! from that thread, never from inside [`StoreWriter::submit`]. The memory store has
//! nothing to wait for: its `submit` calls the callback at once, before
//! returning, so a server on one core does not pay two thread switches per
//! round for nothing. The callback must therefore not take locks the
//! submitter holds.

mod log;
mod sqlite;

use engine::{Snapshot, StoreBatch};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where state is kept: `sqlite:PATH` or `memory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// An SQLite database file (created if missing).
    Sqlite(PathBuf),
    /// Nothing is kept across restarts.
    Memory,
}

impl FromStr for StoreSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(format!(
                    "store `{s}` has an empty path: expected sqlite:PATH"
                ));
            }
            return Ok(StoreSpec::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "unknown store `{s}`: expected sqlite:PATH or memory"
        ))
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            StoreSpec::Memory => f.write_str("memory"),
        }
    }
}

/// Why the store could not be opened or written.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// Figures for metrics, cumulative since [`open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Batches committed (and acknowledged).
    pub batches: u64,
    /// Operations inside those batches.
    pub ops: u64,
    /// Transactions committed; fewer than `batches` when group commit groups.
    pub transactions: u64,
    /// Commit attempts that failed and were retried.
    pub failures: u64,
    /// How long the last successful commit took.
    pub last_commit: Duration,
}

/// Upper bound on the batches grouped into one transaction, so a long backlog
/// still produces acknowledgements at a steady pace.
const MAX_GROUP: usize = 4096;
/// First pause after a failed commit; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Once `close` has been asked for, a store that keeps failing gets this many
/// more attempts; shutdown must end even if the disk never recovers (nothing
/// unacknowledged was promised to anyone).
const ATTEMPTS_WHEN_CLOSING: u32 = 3;

/// Something the writer thread can commit batches to.
pub(crate) trait Backend: Send + 'static {
    /// Apply every op of `batches`, in order, all-or-nothing, durably.
    fn commit(&mut self, batches: &[StoreBatch]) -> Result<(), StoreError>;

    /// `batches` were committed and acknowledged: the backend may keep them
    /// for [`Backend::work`].
    fn committed(&mut self, _batches: Vec<StoreBatch>) {}

    /// When the backend has housekeeping to do between commits (`None`:
    /// nothing). The writer calls [`Backend::work`] once that instant has
    /// come and no batch is waiting.
    fn work_due(&self) -> Option<Instant> {
        None
    }

    /// One short step of housekeeping. It must never lose a committed
    /// write: a failing step is retried later.
    fn work(&mut self) {}

    /// The writer is stopping: finish the housekeeping (best effort).
    fn finish(&mut self) {}
}

/// Open the store, create the schema if needed, load everything.
///
/// `on_durable(seq)` is called from the writer thread each time every batch
/// up to and including `seq` is durable; values strictly increase.
pub fn open(
    spec: &StoreSpec,
    on_durable: Box<dyn Fn(u64) + Send + 'static>,
) -> Result<(Snapshot, StoreWriter), StoreError> {
    match spec {
        StoreSpec::Sqlite(path) => {
            let (backend, snapshot) = sqlite::SqliteStore::open(path)?;
            tracing::info!(
                store = %spec,
                publications = snapshot.publications.len(),
                subscriptions = snapshot.subscriptions.len(),
                "store loaded"
            );
            Ok((snapshot, StoreWriter::spawn(backend, on_durable)?))
        }
        StoreSpec::Memory => Ok((Snapshot::default(), StoreWriter::immediate(on_durable))),
    }
}

/// State shared between the [`StoreWriter`] handle and its thread.
#[derive(Default)]
struct Shared {
    batches: AtomicU64,
    ops: AtomicU64,
    transactions: AtomicU64,
    failures: AtomicU64,
    last_commit_nanos: AtomicU64,
    closing: AtomicBool,
}

/// Handle to the writer thread. Dropping it without [`StoreWriter::close`]
/// also lets the thread commit what is queued and stop, but does not wait.
pub struct StoreWriter {
    /// `None` only after `close` took it (dropping it tells the thread to
    /// stop), or for the memory store, which has no thread.
    tx: Option<Sender<Vec<StoreBatch>>>,
    thread: Option<JoinHandle<()>>,
    /// The memory store's callback, called from `submit`.
    immediate: Option<Box<dyn Fn(u64) + Send + 'static>>,
    shared: Arc<Shared>,
}

impl StoreWriter {
    fn spawn<B: Backend>(
        backend: B,
        on_durable: Box<dyn Fn(u64) + Send + 'static>,
    ) -> Result<StoreWriter, StoreError> {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(backend, rx, on_durable, &thread_shared))
            .map_err(|e| StoreError(format!("cannot start the store writer thread: {e}")))?;
        Ok(StoreWriter {
            tx: Some(tx),
            thread: Some(thread),
            immediate: None,
            shared,
        })
    }

    /// The memory store: every batch is "committed" as it is submitted.
    fn immediate(on_durable: Box<dyn Fn(u64) + Send + 'static>) -> StoreWriter {
        StoreWriter {
            tx: None,
            thread: None,
            immediate: Some(on_durable),
            shared: Arc::new(Shared::default()),
        }
    }

    /// Queue a batch; never blocks on I/O.
    pub fn submit(&self, batch: StoreBatch) {
        self.submit_all(vec![batch]);
    }

    /// Queue batches (in seq order) with one hand-over: on a busy server
    /// with one core, each hand-over can switch to the writer thread, which
    /// would then commit batches one by one.
    pub fn submit_all(&self, batches: Vec<StoreBatch>) {
        let Some(last) = batches.last().map(|b| b.seq) else {
            return;
        };
        if let Some(on_durable) = &self.immediate {
            let s = &self.shared;
            let ops: usize = batches.iter().map(|b| b.ops.len()).sum();
            s.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
            s.ops.fetch_add(ops as u64, Ordering::Relaxed);
            s.transactions.fetch_add(1, Ordering::Relaxed);
            on_durable(last);
            return;
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(batches).is_ok(),
            None => false,
        };
        if !sent {
            // Only possible if the writer thread is gone; the batch will never
            // be acknowledged, so whatever waits on it stays unanswered.
            tracing::error!(
                seq = last,
                "store writer is not running; batches not stored"
            );
        }
    }

    /// Commit what is queued, stop the thread, return once durable (for clean
    /// shutdown).
    pub fn close(mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }

    /// Figures for metrics: batches and transactions committed so far, and
    /// the last commit's duration.
    pub fn stats(&self) -> StoreStats {
        let s = &self.shared;
        StoreStats {
            batches: s.batches.load(Ordering::Relaxed),
            ops: s.ops.load(Ordering::Relaxed),
            transactions: s.transactions.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            last_commit: Duration::from_nanos(s.last_commit_nanos.load(Ordering::Relaxed)),
        }
    }
}

impl fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreWriter")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The writer thread: wait for a batch, take everything else already queued,
/// commit it as one transaction, acknowledge, repeat until the handle is gone.
/// While no batch waits, it lets the backend do its housekeeping in steps.
fn run<B: Backend>(
    mut backend: B,
    rx: Receiver<Vec<StoreBatch>>,
    on_durable: Box<dyn Fn(u64) + Send + 'static>,
    shared: &Shared,
) {
    // Commit larger groups on a busy core (see `sched`).
    if !crate::sched::batch_policy_for_this_thread() {
        tracing::debug!("store writer: SCHED_BATCH not available");
    }
    let mut group: Vec<StoreBatch> = Vec::new();
    let mut disconnected = false;
    while !disconnected {
        let first = match backend.work_due() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        match first {
            Ok(batches) => group.extend(batches),
            Err(RecvTimeoutError::Timeout) => {
                backend.work();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(batches) => group.extend(batches),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        if !commit_with_retry(&mut backend, &group, shared) {
            // Only when closing and the store keeps failing: stop without
            // acknowledging, as promised.
            return;
        }
        // Batches are submitted in seq order, so the last is the highest; max
        // guards against a caller that does not keep that order.
        if let Some(seq) = group.iter().map(|b| b.seq).max() {
            on_durable(seq);
        }
        backend.committed(std::mem::take(&mut group));
    }
    backend.finish();
}

/// Commit `group`, retrying with backoff until it succeeds. Returns false only
/// if the writer is closing and the store still fails after a few attempts.
fn commit_with_retry<B: Backend>(backend: &mut B, group: &[StoreBatch], shared: &Shared) -> bool {
    let mut backoff = FIRST_BACKOFF;
    let mut attempts_while_closing = 0u32;
    loop {
        let started = Instant::now();
        match backend.commit(group) {
            Ok(()) => {
                let took = started.elapsed();
                let ops: usize = group.iter().map(|b| b.ops.len()).sum();
                shared
                    .batches
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                shared.ops.fetch_add(ops as u64, Ordering::Relaxed);
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                shared.last_commit_nanos.store(
                    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                return true;
            }
            Err(e) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                let first = group.first().map(|b| b.seq);
                let last = group.last().map(|b| b.seq);
                if shared.closing.load(Ordering::SeqCst) {
                    attempts_while_closing += 1;
                    if attempts_while_closing > ATTEMPTS_WHEN_CLOSING {
                        tracing::error!(
                            error = %e, ?first, ?last,
                            "store commit failed while closing; giving up, these batches are not stored"
                        );
                        return false;
                    }
                }
                tracing::error!(
                    error = %e, ?first, ?last, retry_in = ?backoff,
                    "store commit failed; will retry"
                );
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::StoreOp;

    /// A backend whose commits fail until `fail` is cleared, recording
    /// what it committed.
    struct Flaky {
        fail: Arc<AtomicBool>,
        committed: Arc<std::sync::Mutex<Vec<u64>>>,
    }

    impl Backend for Flaky {
        fn commit(&mut self, batches: &[StoreBatch]) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(StoreError("disk full".into()));
            }
            let mut c = self.committed.lock().expect("lock");
            c.extend(batches.iter().map(|b| b.seq));
            Ok(())
        }
    }

    #[test]
    fn a_failing_commit_is_retried_and_never_acknowledged_early() {
        let fail = Arc::new(AtomicBool::new(true));
        let committed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, acks) = mpsc::channel();
        let writer = StoreWriter::spawn(
            Flaky {
                fail: Arc::clone(&fail),
                committed: Arc::clone(&committed),
            },
            Box::new(move |seq| {
                let _ = tx.send(seq);
            }),
        )
        .expect("spawn");
        writer.submit(StoreBatch {
            seq: 1,
            ops: vec![StoreOp::DeletePublication("p".into())],
        });
        assert_eq!(
            acks.recv_timeout(Duration::from_millis(400)),
            Err(mpsc::RecvTimeoutError::Timeout),
            "a batch that could not be committed was acknowledged"
        );
        assert!(
            writer.stats().failures >= 1,
            "the commit should have failed"
        );
        fail.store(false, Ordering::SeqCst);
        assert_eq!(acks.recv_timeout(Duration::from_secs(10)), Ok(1));
        assert_eq!(*committed.lock().expect("lock"), vec![1]);
        assert_eq!(writer.stats().batches, 1);
        writer.close();
    }
}
