//! The durable store, tested against real SQLite files in temporary
//! directories: what is acknowledged is on disk, in order, and survives a
//! `kill -9` of the process that wrote it.

use engine::{
    ConnId, PublicationRecord, Snapshot, Source, StoreBatch, StoreOp, SubscriptionRecord, Time,
    Transport,
};
use sharedline::store::{open, StoreSpec, StoreWriter};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn source(conn: Option<u64>) -> Source {
    Source {
        transport: if conn.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        local: "127.0.0.1:5060".parse().expect("literal address"),
        remote: "192.0.2.7:5070".parse().expect("literal address"),
        conn: conn.map(ConnId),
    }
}

fn publication(id: &str, state: &str) -> PublicationRecord {
    PublicationRecord {
        id: id.to_string(),
        package: "call-info".to_string(),
        resource: "sip:shared@example.com".to_string(),
        etag: format!("etag-{id}-{state}"),
        expires_at: Time(1_700_000_360_000),
        changed_at: Time(1_700_000_000_000),
        state: state.to_string(),
        source: source(None),
    }
}

fn subscription(id: &str, state: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        id: id.to_string(),
        package: "line-seize".to_string(),
        resource: "sip:shared@example.com".to_string(),
        event_id: Some("7".to_string()),
        call_id: format!("call-{id}@192.0.2.7"),
        local_tag: "ours".to_string(),
        remote_tag: "theirs".to_string(),
        local_uri: "sip:shared@example.com".to_string(),
        remote_uri: "sip:alice@example.com".to_string(),
        remote_target: "sip:alice@192.0.2.7:5070;transport=tcp".to_string(),
        route_set: vec!["<sip:proxy.example.com;lr>".to_string()],
        local_cseq: 3,
        cseq_reserved: 1000,
        last_notify_at: Time(1_700_000_000_000),
        remote_cseq: 12,
        expires_at: Time(u64::MAX),
        changed_at: Time(1_700_000_000_000),
        state: state.to_string(),
        source: source(Some(42)),
    }
}

/// Opens `spec` with a callback that forwards every acknowledged seq.
fn open_with_acks(spec: &StoreSpec) -> (Snapshot, StoreWriter, Receiver<u64>) {
    let (tx, rx) = mpsc::channel();
    let (snapshot, writer) = open(
        spec,
        Box::new(move |seq| {
            // The receiver may be gone once a test has what it needs.
            let _ = tx.send(seq);
        }),
    )
    .expect("store opens");
    (snapshot, writer, rx)
}

/// Waits until `seq` is acknowledged; returns every ack seen on the way.
fn wait_for_ack(rx: &Receiver<u64>, seq: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(acked) => {
                seen.push(acked);
                if acked >= seq {
                    return seen;
                }
            }
            Err(e) => panic!("no acknowledgement of seq {seq} (last {seen:?}): {e}"),
        }
    }
}

/// Opens the store at `path`, commits `ops` as batch 1 and closes it.
fn store_and_close(path: &Path, ops: Vec<StoreOp>) {
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.to_path_buf()));
    writer.submit(StoreBatch { seq: 1, ops });
    wait_for_ack(&acks, 1);
    writer.close();
}

fn reopen(path: &Path) -> Snapshot {
    let (snapshot, writer) =
        open(&StoreSpec::Sqlite(path.to_path_buf()), Box::new(|_| {})).expect("store reopens");
    writer.close();
    snapshot
}

fn sorted(mut s: Snapshot) -> Snapshot {
    s.publications.sort_by(|a, b| a.id.cmp(&b.id));
    s.subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
    s
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state.db")
}

#[test]
fn spec_parses_and_displays() {
    assert_eq!("memory".parse::<StoreSpec>(), Ok(StoreSpec::Memory));
    assert_eq!(
        "sqlite:/var/lib/sharedline/state.db".parse::<StoreSpec>(),
        Ok(StoreSpec::Sqlite(PathBuf::from(
            "/var/lib/sharedline/state.db"
        )))
    );
    assert_eq!(
        "sqlite:state.db".parse::<StoreSpec>(),
        Ok(StoreSpec::Sqlite(PathBuf::from("state.db")))
    );
    for text in ["memory", "sqlite:/tmp/a b.db", "sqlite:rel/x.db"] {
        let spec: StoreSpec = text.parse().expect("valid spec");
        assert_eq!(spec.to_string(), text);
    }
}

#[test]
fn spec_errors_name_the_problem() {
    assert_eq!(
        "redis://localhost".parse::<StoreSpec>(),
        Err("unknown store `redis://localhost`: expected sqlite:PATH or memory".to_string())
    );
    assert_eq!(
        "".parse::<StoreSpec>(),
        Err("unknown store ``: expected sqlite:PATH or memory".to_string())
    );
    assert_eq!(
        "Memory".parse::<StoreSpec>(),
        Err("unknown store `Memory`: expected sqlite:PATH or memory".to_string())
    );
    let empty = "sqlite:".parse::<StoreSpec>().expect_err("empty path");
    assert!(empty.contains("empty path"), "{empty}");
    assert!(empty.contains("sqlite:PATH"), "{empty}");
}

#[test]
fn every_op_round_trips_through_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (snapshot, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    assert_eq!(snapshot, Snapshot::default(), "a new file starts empty");

    writer.submit(StoreBatch {
        seq: 1,
        ops: vec![
            StoreOp::PutPublication(publication("pa", "one")),
            StoreOp::PutPublication(publication("pb", "one")),
            StoreOp::PutSubscription(subscription("sa", "one")),
            StoreOp::PutSubscription(subscription("sb", "one")),
        ],
    });
    writer.submit(StoreBatch {
        seq: 2,
        ops: vec![
            StoreOp::DeletePublication("pb".into()),
            StoreOp::DeleteSubscription("sb".into()),
            StoreOp::PutPublication(publication("pa", "two")),
            StoreOp::PutSubscription(subscription("sa", "two")),
            // Deleting what does not exist is not an error.
            StoreOp::DeletePublication("never-there".into()),
        ],
    });
    wait_for_ack(&acks, 2);
    writer.close();

    let loaded = reopen(&path);
    assert_eq!(
        loaded,
        Snapshot {
            publications: vec![publication("pa", "two")],
            subscriptions: vec![subscription("sa", "two")],
            resources_changed: Vec::new(),
        }
    );
}

#[test]
fn ops_apply_in_order_within_and_across_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    writer.submit(StoreBatch {
        seq: 1,
        ops: vec![
            // put, delete, put: present with the last value
            StoreOp::PutSubscription(subscription("x", "v1")),
            StoreOp::DeleteSubscription("x".into()),
            StoreOp::PutSubscription(subscription("x", "v2")),
            // put, delete: gone
            StoreOp::PutPublication(publication("z", "v1")),
            StoreOp::DeletePublication("z".into()),
        ],
    });
    writer.submit(StoreBatch {
        seq: 2,
        ops: vec![StoreOp::PutPublication(publication("y", "v1"))],
    });
    writer.submit(StoreBatch {
        seq: 3,
        ops: vec![StoreOp::DeletePublication("y".into())],
    });
    writer.submit(StoreBatch {
        seq: 4,
        ops: vec![StoreOp::PutPublication(publication("y", "v3"))],
    });
    writer.submit(StoreBatch {
        seq: 5,
        ops: vec![StoreOp::DeleteSubscription("x".into())],
    });
    writer.submit(StoreBatch {
        seq: 6,
        ops: vec![StoreOp::PutSubscription(subscription("x", "v6"))],
    });
    wait_for_ack(&acks, 6);
    writer.close();

    assert_eq!(
        reopen(&path),
        Snapshot {
            publications: vec![publication("y", "v3")],
            subscriptions: vec![subscription("x", "v6")],
            resources_changed: Vec::new(),
        }
    );
}

#[test]
fn acknowledged_state_is_on_disk_and_reopen_loads_exactly_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));

    // A model of what the store must hold, driven by a fixed pseudo-random walk.
    let mut pubs: BTreeMap<String, PublicationRecord> = BTreeMap::new();
    let mut subs: BTreeMap<String, SubscriptionRecord> = BTreeMap::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let batches = 500u64;
    for seq in 1..=batches {
        let mut ops = Vec::new();
        for _ in 0..(next() % 4) {
            let id = format!("r{}", next() % 60);
            let state = format!("seq{seq}");
            match next() % 4 {
                0 => {
                    pubs.insert(id.clone(), publication(&id, &state));
                    ops.push(StoreOp::PutPublication(publication(&id, &state)));
                }
                1 => {
                    pubs.remove(&id);
                    ops.push(StoreOp::DeletePublication(id));
                }
                2 => {
                    subs.insert(id.clone(), subscription(&id, &state));
                    ops.push(StoreOp::PutSubscription(subscription(&id, &state)));
                }
                _ => {
                    subs.remove(&id);
                    ops.push(StoreOp::DeleteSubscription(id));
                }
            }
        }
        writer.submit(StoreBatch { seq, ops });
    }
    let expected = Snapshot {
        publications: pubs.into_values().collect(),
        subscriptions: subs.into_values().collect(),
        resources_changed: Vec::new(),
    };
    assert!(!expected.publications.is_empty() && !expected.subscriptions.is_empty());

    wait_for_ack(&acks, batches);
    // Read the file while the writer still runs: an acknowledgement means the
    // data is committed, not merely queued for a clean shutdown.
    assert_eq!(sorted(reopen(&path)), expected);
    writer.close();
    assert_eq!(sorted(reopen(&path)), expected);
}

#[test]
fn group_commit_groups_and_acknowledges_every_seq_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    let total = 10_000u64;
    for seq in 1..=total {
        writer.submit(StoreBatch {
            seq,
            ops: vec![StoreOp::PutSubscription(subscription(
                &format!("s{}", seq % 500),
                &seq.to_string(),
            ))],
        });
    }
    let seen = wait_for_ack(&acks, total);
    assert_eq!(seen.last(), Some(&total));
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "acknowledgements must strictly increase"
    );
    let stats = writer.stats();
    assert_eq!(stats.batches, total);
    assert_eq!(stats.ops, total);
    assert_eq!(stats.transactions, seen.len() as u64, "one ack per commit");
    assert!(
        stats.transactions < total,
        "{} transactions for {total} batches: nothing was grouped",
        stats.transactions
    );
    assert!(stats.last_commit > Duration::ZERO);
    assert_eq!(stats.failures, 0);
    writer.close();

    let loaded = reopen(&path);
    assert_eq!(loaded.subscriptions.len(), 500);
    let last = loaded
        .subscriptions
        .iter()
        .find(|s| s.id == format!("s{}", total % 500))
        .expect("the last written id is there");
    assert_eq!(last.state, total.to_string());
}

#[test]
fn close_commits_what_is_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    for seq in 1..=300u64 {
        writer.submit(StoreBatch {
            seq,
            ops: vec![StoreOp::PutPublication(publication(
                &format!("p{seq}"),
                "s",
            ))],
        });
    }
    // No waiting for acks: close alone must make all of it durable.
    writer.close();
    let seen: Vec<u64> = acks.try_iter().collect();
    assert_eq!(seen.last(), Some(&300), "close returns after the final ack");
    assert_eq!(reopen(&path).publications.len(), 300);
}

#[test]
fn sqlite_acknowledges_from_its_thread_memory_at_once() {
    // SQLite commits on its writer thread; the memory store has nothing to
    // wait for and acknowledges inside `submit`.
    for (spec, inline) in [
        (StoreSpec::Memory, true),
        (
            StoreSpec::Sqlite(db_path(&tempfile::tempdir().expect("tempdir"))),
            false,
        ),
    ] {
        let (tx, rx) = mpsc::channel();
        let (_, writer) = open(
            &spec,
            Box::new(move |seq| {
                let _ = tx.send((seq, std::thread::current().id()));
            }),
        )
        .expect("store opens");
        writer.submit(StoreBatch {
            seq: 1,
            ops: vec![StoreOp::DeletePublication("none".into())],
        });
        if inline {
            let (seq, thread) = rx.try_recv().expect("acknowledged before submit returned");
            assert_eq!(seq, 1);
            assert_eq!(thread, std::thread::current().id());
        } else {
            let (seq, thread) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("acknowledged");
            assert_eq!(seq, 1);
            assert_ne!(thread, std::thread::current().id(), "{spec}");
        }
        writer.close();
    }
}

#[test]
fn memory_store_acknowledges_and_starts_empty_every_time() {
    let (snapshot, writer, acks) = open_with_acks(&StoreSpec::Memory);
    assert_eq!(snapshot, Snapshot::default());
    for seq in 1..=1000u64 {
        writer.submit(StoreBatch {
            seq,
            ops: vec![StoreOp::PutSubscription(subscription("s", "x"))],
        });
    }
    let seen = wait_for_ack(&acks, 1000);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(writer.stats().batches, 1000);
    writer.close();

    let (snapshot, writer, _) = open_with_acks(&StoreSpec::Memory);
    assert_eq!(snapshot, Snapshot::default());
    writer.close();
}

#[test]
fn open_reports_unusable_files() {
    let dir = tempfile::tempdir().expect("tempdir");

    let missing_dir = dir.path().join("no/such/dir/state.db");
    let err = open(&StoreSpec::Sqlite(missing_dir.clone()), Box::new(|_| {}))
        .expect_err("directory does not exist");
    assert!(
        err.to_string().contains(&missing_dir.display().to_string()),
        "{err}"
    );

    let path = db_path(&dir);
    store_and_close(
        &path,
        vec![StoreOp::PutSubscription(subscription("s1", "x"))],
    );

    let conn = rusqlite::Connection::open(&path).expect("inspect");
    conn.execute(
        "UPDATE subscriptions SET data = '{not json' WHERE id = 's1'",
        [],
    )
    .expect("corrupt a row");
    let err = open(&StoreSpec::Sqlite(path.clone()), Box::new(|_| {}))
        .expect_err("unreadable row is refused");
    assert!(err.to_string().contains("`s1`"), "{err}");
    conn.execute("DELETE FROM subscriptions", [])
        .expect("remove it");

    conn.execute(
        "UPDATE meta SET value = '99' WHERE key = 'schema_version'",
        [],
    )
    .expect("bump version");
    let err = open(&StoreSpec::Sqlite(path.clone()), Box::new(|_| {}))
        .expect_err("unknown schema is refused");
    assert!(err.to_string().contains("schema version `99`"), "{err}");

    std::fs::write(dir.path().join("junk.db"), b"this is not a database at all, not even close....................................................")
        .expect("write junk");
    assert!(open(
        &StoreSpec::Sqlite(dir.path().join("junk.db")),
        Box::new(|_| {})
    )
    .is_err());
}

#[test]
fn the_schema_is_what_operators_can_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    writer.submit(StoreBatch {
        seq: 1,
        ops: vec![
            StoreOp::PutPublication(publication("p", "x")),
            StoreOp::PutSubscription(subscription("s", "x")),
        ],
    });
    wait_for_ack(&acks, 1);
    writer.close();

    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let row: (String, String, i64) = conn
        .query_row(
            "SELECT package, resource, expires_at FROM publications WHERE id = 'p'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("publication row");
    assert_eq!(
        row,
        (
            "call-info".to_string(),
            "sip:shared@example.com".to_string(),
            1_700_000_360_000
        )
    );
    // u64::MAX does not fit SQLite's integer; it is kept as the largest one.
    let sub_expiry: i64 = conn
        .query_row(
            "SELECT expires_at FROM subscriptions WHERE resource = 'sip:shared@example.com'",
            [],
            |r| r.get(0),
        )
        .expect("subscription row");
    assert_eq!(sub_expiry, i64::MAX);
    let indexes: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql LIKE '%(resource)%'",
            [],
            |r| r.get(0),
        )
        .expect("index count");
    // Queries by resource work (above) without an index: nothing in the
    // server needs one, and every index is one more B-tree per write.
    assert_eq!(indexes, 0);
}

// ---------------------------------------------------------------------------
// kill -9

const CRASH_ENV: &str = "SHAREDLINE_STORE_CRASH_DB";

/// The batch numbered `seq` in the crash test: two records named after it and
/// an update of one shared record, so a reopened file shows exactly which
/// batches made it.
fn crash_batch(seq: u64) -> StoreBatch {
    StoreBatch {
        seq,
        ops: vec![
            StoreOp::PutSubscription(subscription(&format!("s{seq}"), "x")),
            StoreOp::PutPublication(publication(&format!("p{seq}"), "x")),
            StoreOp::PutPublication(publication("latest", &seq.to_string())),
        ],
    }
}

/// Not a test on its own: the child process of
/// `kill_9_loses_nothing_acknowledged`, which runs this binary again with
/// only this test selected. It writes batches until it is killed and prints
/// each acknowledged seq.
#[test]
#[ignore = "child process of kill_9_loses_nothing_acknowledged"]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let acked = Arc::new(AtomicU64::new(0));
    let acked_in_callback = Arc::clone(&acked);
    let (_, writer) = open(
        &StoreSpec::Sqlite(PathBuf::from(path)),
        Box::new(move |seq| {
            // Direct writes, not println!, so the test harness's capture
            // cannot hold them back.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "acked {seq}");
            let _ = out.flush();
            acked_in_callback.store(seq, Ordering::SeqCst);
        }),
    )
    .expect("child opens the store");
    for seq in 1..=50_000_000u64 {
        // Stay a bounded distance ahead of the disk, like a busy server.
        while seq - acked.load(Ordering::SeqCst) > 2_000 {
            std::thread::sleep(Duration::from_micros(200));
        }
        writer.submit(crash_batch(seq));
    }
    writer.close();
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut child = KillOnDrop(child);

    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(seq) = line.strip_prefix("acked ") {
                if let Ok(seq) = seq.trim().parse::<u64>() {
                    let _ = tx.send(seq);
                }
            }
        }
    });

    // Let it run well into its work, then kill it mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut max_acked = 0;
    while max_acked < 20_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(seq) => max_acked = max_acked.max(seq),
            Err(e) => panic!("child stopped acknowledging at {max_acked}: {e}"),
        }
    }
    child.0.kill().expect("SIGKILL the child");
    let status = child.0.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    // Acks printed before the kill are still in the pipe.
    reader.join().expect("reader thread");
    max_acked = lines.try_iter().fold(max_acked, u64::max);

    let loaded = reopen(&path);
    let mut subs: Vec<u64> = loaded
        .subscriptions
        .iter()
        .map(|s| s.id[1..].parse().expect("s<seq>"))
        .collect();
    subs.sort_unstable();
    let committed = subs.len() as u64;
    eprintln!("acknowledged up to {max_acked}; {committed} batches stored after SIGKILL");
    assert!(
        committed >= max_acked,
        "acknowledged up to {max_acked} but only {committed} batches are stored"
    );
    // Batches commit whole and in order: what is stored is exactly 1..=n.
    assert_eq!(subs, (1..=committed).collect::<Vec<_>>());
    let mut pubs: Vec<u64> = loaded
        .publications
        .iter()
        .filter(|p| p.id != "latest")
        .map(|p| p.id[1..].parse().expect("p<seq>"))
        .collect();
    pubs.sort_unstable();
    assert_eq!(pubs, subs);
    let latest = loaded
        .publications
        .iter()
        .find(|p| p.id == "latest")
        .expect("latest record");
    assert_eq!(latest.state, committed.to_string());
}

#[test]
fn cseq_reservations_and_line_changes_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    let sub = subscription("sa", "one");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    writer.submit(StoreBatch {
        seq: 1,
        ops: vec![StoreOp::PutSubscription(sub.clone())],
    });
    writer.submit(StoreBatch {
        seq: 2,
        ops: vec![
            StoreOp::ReserveCSeq {
                id: "sa".into(),
                upto: 2000,
            },
            StoreOp::ReserveCSeq {
                id: "sa".into(),
                upto: 3000,
            },
            // A dialog the store never kept (a fetch) is not an error.
            StoreOp::ReserveCSeq {
                id: "gone".into(),
                upto: 9,
            },
            StoreOp::ResourceChanged {
                resource: "sip:shared@example.com".into(),
                at: Time(now - 10),
            },
            StoreOp::ResourceChanged {
                resource: "sip:shared@example.com".into(),
                at: Time(now),
            },
            // Far older than a restart looks back: dropped at load.
            StoreOp::ResourceChanged {
                resource: "sip:old@example.com".into(),
                at: Time(now - 3 * 24 * 3600 * 1000),
            },
        ],
    });
    wait_for_ack(&acks, 2);
    writer.close();
    let loaded = reopen(&path);
    assert_eq!(loaded.subscriptions.len(), 1);
    assert_eq!(loaded.subscriptions[0].cseq_reserved, 3000);
    let mut want = sub;
    want.cseq_reserved = 3000;
    assert_eq!(loaded.subscriptions[0], want);
    assert_eq!(
        loaded.resources_changed,
        vec![("sip:shared@example.com".to_string(), Time(now))]
    );
}

#[test]
fn the_wal_is_checkpointed_while_the_writer_runs() {
    // Commits never checkpoint themselves (a checkpoint syncs the database
    // file); a thread of the store does, so the WAL's pages reach the
    // database file without a restart.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    let empty = std::fs::metadata(&path).expect("db file").len();
    for seq in 1..=200u64 {
        let ops = (0..10)
            .map(|i| StoreOp::PutPublication(publication(&format!("p{seq}-{i}"), "state")))
            .collect();
        writer.submit(StoreBatch { seq, ops });
    }
    wait_for_ack(&acks, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let size = std::fs::metadata(&path).expect("db file").len();
        if size > empty + 100_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {size} bytes (empty: {empty}): no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.close();
    assert_eq!(reopen(&path).publications.len(), 2000);
}

// ---------------------------------------------------------------------------
// The log: commits append to it, the writer folds it into the tables.

/// The log files beside the database at `path`.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .to_string();
    let mut files: Vec<PathBuf> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("list dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}-log-")))
        })
        .collect();
    files.sort();
    files
}

fn meta(conn: &rusqlite::Connection, key: &str) -> Option<String> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .ok()
}

#[test]
fn the_writer_folds_the_log_into_the_tables_while_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    // A line-seize made and released, a publication modified many times,
    // and one subscription that stays.
    let mut seq = 0;
    let mut submit = |ops: Vec<StoreOp>| {
        seq += 1;
        writer.submit(StoreBatch { seq, ops });
        seq
    };
    submit(vec![StoreOp::PutSubscription(subscription("seize", "1"))]);
    submit(vec![StoreOp::DeleteSubscription("seize".into())]);
    for v in 0..50 {
        submit(vec![StoreOp::PutPublication(publication(
            "p",
            &v.to_string(),
        ))]);
    }
    let last = submit(vec![StoreOp::PutSubscription(subscription("stays", "x"))]);
    wait_for_ack(&acks, last);
    let first_log = log_files(&path);
    assert_eq!(first_log.len(), 1, "one log file: {first_log:?}");
    assert!(
        std::fs::metadata(&first_log[0]).expect("log file").len() > 1000,
        "the acknowledged writes are in the log"
    );

    let conn = rusqlite::Connection::open(&path).expect("inspect");
    let deadline = Instant::now() + Duration::from_secs(30);
    while meta(&conn, "log_applied").is_none() {
        assert!(
            Instant::now() < deadline,
            "the log was not applied to the tables"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let subs: Vec<String> = conn
        .prepare("SELECT id FROM subscriptions")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .expect("subscription ids");
    assert_eq!(subs, ["stays"]);
    let data: String = conn
        .query_row("SELECT data FROM publications WHERE id = 'p'", [], |r| {
            r.get(0)
        })
        .expect("publication row");
    let stored: PublicationRecord = serde_json::from_str(&data).expect("record JSON");
    assert_eq!(stored, publication("p", "49"));
    // The applied file is gone; commits went on in a new one.
    assert!(
        !first_log[0].exists(),
        "{:?} was applied but not deleted",
        first_log[0]
    );
    assert_eq!(log_files(&path).len(), 1);
    writer.close();
}

#[test]
fn a_locked_database_delays_the_tables_not_the_acknowledgements() {
    // Another connection holds the write lock (an operator's sqlite3 shell
    // in a transaction): commits go to the log and are acknowledged; the
    // tables catch up once the lock is released.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    let (_, writer, acks) = open_with_acks(&StoreSpec::Sqlite(path.clone()));
    let locker = rusqlite::Connection::open(&path).expect("second connection");
    locker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("write lock taken");
    writer.submit(StoreBatch {
        seq: 1,
        ops: vec![StoreOp::PutPublication(publication("a", "1"))],
    });
    wait_for_ack(&acks, 1);
    // Long enough for the fold window and a failed attempt to apply.
    std::thread::sleep(Duration::from_millis(2500));
    let in_table: i64 = locker
        .query_row("SELECT count(*) FROM publications", [], |r| r.get(0))
        .expect("count");
    assert_eq!(
        in_table, 0,
        "the tables cannot have been written while locked"
    );
    locker.execute_batch("ROLLBACK").expect("lock released");
    writer.close();
    assert_eq!(
        meta(&locker, "log_applied").as_deref(),
        Some("1"),
        "the first log file is applied at close"
    );
    assert_eq!(
        log_files(&path),
        Vec::<PathBuf>::new(),
        "a clean stop leaves no log file"
    );
    let ids: Vec<String> = reopen(&path)
        .publications
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, ["a"]);
}

#[test]
fn a_version_1_file_is_upgraded_and_keeps_its_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = db_path(&dir);
    store_and_close(
        &path,
        vec![StoreOp::PutSubscription(subscription("s", "x"))],
    );
    // What the previous release left: version 1, no log.
    let conn = rusqlite::Connection::open(&path).expect("inspect");
    conn.execute_batch(
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';
         DELETE FROM meta WHERE key IN ('log_applied', 'log_identity');",
    )
    .expect("make a version 1 file");
    for f in log_files(&path) {
        std::fs::remove_file(f).expect("remove log");
    }

    let loaded = reopen(&path);
    assert_eq!(loaded.subscriptions, vec![subscription("s", "x")]);
    assert_eq!(meta(&conn, "schema_version").as_deref(), Some("2"));
}
