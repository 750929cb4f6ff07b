//! Store throughput and load time, against a real SQLite file in a temporary
//! directory. Run in release:
//!
//! ```text
//! cargo run --release -p sharedline --example store_bench
//! ```
//!
//! Figures: 100k single-op batches submitted at once (group commit at work),
//! 10k batches submitted one at a time after the previous ack (one commit per
//! batch, the latency floor), the memory store for comparison, and the time
//! `open` takes to load 100k subscriptions.

use engine::{ConnId, Source, StoreBatch, StoreOp, SubscriptionRecord, Time, Transport};
use sharedline::store::{open, StoreSpec, StoreWriter};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

fn subscription(n: u64) -> SubscriptionRecord {
    SubscriptionRecord {
        id: format!("dlg-{n:08}-line-seize"),
        package: "line-seize".into(),
        resource: format!("sip:shared{}@example.com", n % 1000),
        event_id: None,
        call_id: format!("{n:016x}@192.0.2.7"),
        local_tag: format!("l{n:x}"),
        remote_tag: format!("r{n:x}"),
        local_uri: format!("sip:shared{}@example.com", n % 1000),
        remote_uri: format!("sip:phone{n}@example.com"),
        remote_target: format!("sip:phone{n}@192.0.2.7:5070;transport=tcp"),
        route_set: vec!["<sip:proxy.example.com;lr>".into()],
        local_cseq: 1,
        cseq_reserved: 1000,
        last_notify_at: Time(1_700_000_000_000),
        remote_cseq: 1,
        expires_at: Time(1_700_003_600_000),
        changed_at: Time(1_700_000_000_000),
        state: "{\"appearance\":1}".into(),
        source: Source {
            transport: Transport::Tcp,
            local: ([127, 0, 0, 1], 5060).into(),
            remote: ([192, 0, 2, 7], 5070).into(),
            conn: Some(ConnId(n)),
        },
    }
}

fn batch(seq: u64, record: u64) -> StoreBatch {
    StoreBatch {
        seq,
        ops: vec![StoreOp::PutSubscription(subscription(record))],
    }
}

fn open_acked(spec: &StoreSpec) -> Result<(StoreWriter, Receiver<u64>), String> {
    let (tx, rx) = mpsc::channel();
    let (_, writer) = open(
        spec,
        Box::new(move |seq| {
            let _ = tx.send(seq);
        }),
    )
    .map_err(|e| e.to_string())?;
    Ok((writer, rx))
}

fn wait_for(rx: &Receiver<u64>, seq: u64) -> Result<(), String> {
    loop {
        let acked = rx
            .recv_timeout(Duration::from_secs(120))
            .map_err(|e| format!("no ack for {seq}: {e}"))?;
        if acked >= seq {
            return Ok(());
        }
    }
}

/// Submits `n` prebuilt single-op batches at once and waits for the last ack.
fn burst(spec: &StoreSpec, n: u64) -> Result<(), String> {
    let batches: Vec<StoreBatch> = (1..=n).map(|i| batch(i, i)).collect();
    let (writer, acks) = open_acked(spec)?;
    let started = Instant::now();
    for b in batches {
        writer.submit(b);
    }
    wait_for(&acks, n)?;
    let took = started.elapsed();
    let stats = writer.stats();
    writer.close();
    let secs = took.as_secs_f64();
    println!(
        "{spec:<10} burst {n} single-op batches: {:.2?}, {:.0} batches/s, {:.0} ops/s, \
         {} transactions (avg {:.0} batches each), last commit {:.2?}",
        took,
        n as f64 / secs,
        stats.ops as f64 / secs,
        stats.transactions,
        n as f64 / stats.transactions.max(1) as f64,
        stats.last_commit,
    );
    Ok(())
}

/// One batch in flight at a time: every batch is its own transaction.
fn lockstep(spec: &StoreSpec, n: u64) -> Result<(), String> {
    let (writer, acks) = open_acked(spec)?;
    let started = Instant::now();
    for seq in 1..=n {
        writer.submit(batch(seq, seq % 1000));
        wait_for(&acks, seq)?;
    }
    let took = started.elapsed();
    writer.close();
    println!(
        "{spec:<10} lock-step {n} batches: {:.2?}, {:.0} commits/s, {:.1} µs submit-to-ack",
        took,
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / n as f64,
    );
    Ok(())
}

fn load(path: &Path, expected: usize) -> Result<(), String> {
    let started = Instant::now();
    let (snapshot, writer) = open(&StoreSpec::Sqlite(path.to_path_buf()), Box::new(|_| {}))
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    writer.close();
    if snapshot.subscriptions.len() < expected {
        return Err(format!(
            "loaded {} subscriptions, expected at least {expected}",
            snapshot.subscriptions.len()
        ));
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "load {} subscriptions: {:.2?} (file {:.1} MB)",
        snapshot.subscriptions.len(),
        took,
        size as f64 / 1e6
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sqlite = StoreSpec::Sqlite(dir.path().join("bench.db"));
    let n = 100_000;

    burst(&sqlite, n)?;
    load(&dir.path().join("bench.db"), n as usize)?;
    lockstep(&StoreSpec::Sqlite(dir.path().join("lockstep.db")), 10_000)?;
    burst(&StoreSpec::Memory, n)?;
    lockstep(&StoreSpec::Memory, 10_000)?;
    Ok(())
}
