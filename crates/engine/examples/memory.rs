//! Heap bytes per live subscription in the engine: N call-info watchers on
//! N/10 lines, each SUBSCRIBE answered and its NOTIFY acknowledged, counted
//! by a global allocator that tracks live bytes.
//!
//! `cargo run --release -p engine --example memory -- 100000`

use engine::{Config, Engine, Output, Source, Time, Transport};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut e = Engine::new(Config::default(), 1);
    let now = Time(1_700_000_000_000);
    let base = LIVE.load(Ordering::Relaxed);
    let local = "127.0.0.1:5060".parse().unwrap();
    for i in 0..n {
        let port = 10_000 + (i % 50_000) as u16;
        let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        let from = Source {
            transport: Transport::Udp,
            local,
            remote: format!("{ip}:{port}").parse().unwrap(),
            conn: None,
        };
        let line = i / 10;
        let req = format!(
            "SUBSCRIBE sip:line{line}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{i}x;rport\r\nMax-Forwards: 70\r\nFrom: <sip:phone{i}@example.com>;tag=f{i:08x}\r\nTo: <sip:line{line}@example.com>\r\nCall-ID: {i:016x}@{ip}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:phone{i}@{ip}:{port}>\r\nEvent: call-info\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
        );
        e.handle_bytes(now, from, req.as_bytes());
        let mut seq = 0;
        let mut notify = None;
        while let Some(o) = e.poll_output() {
            match o {
                Output::Store(b) => seq = b.seq,
                Output::Transmit(t) => {
                    if t.bytes.starts_with(b"NOTIFY") {
                        notify = Some(t.bytes);
                    }
                }
            }
        }
        e.handle_durable(now, seq);
        while let Some(o) = e.poll_output() {
            if let Output::Transmit(t) = o {
                if t.bytes.starts_with(b"NOTIFY") {
                    notify = Some(t.bytes);
                }
            }
        }
        // Answer the NOTIFY so its transaction can end.
        if let Some(nb) = notify {
            let text = String::from_utf8(nb).unwrap();
            let mut resp = String::from("SIP/2.0 200 OK\r\n");
            for l in text.split("\r\n").skip(1) {
                let name = l.split(':').next().unwrap_or("");
                if ["Via", "From", "To", "Call-ID", "CSeq"].contains(&name) {
                    resp.push_str(l);
                    resp.push_str("\r\n");
                }
            }
            resp.push_str("Content-Length: 0\r\n\r\n");
            e.handle_bytes(now, from, resp.as_bytes());
            while e.poll_output().is_some() {}
        }
    }
    // Let completed transactions (Timer J / K) go, so only subscriptions remain.
    let later = now.plus_secs(60);
    e.handle_timeout(later);
    while e.poll_output().is_some() {}
    let used = LIVE.load(Ordering::Relaxed) - base;
    println!(
        "{n} subscriptions: {} live subscriptions in the engine, {:.1} MiB heap, {:.0} bytes per subscription; open transactions {:?}",
        e.subscription_count(),
        used as f64 / 1048576.0,
        used as f64 / n as f64,
        e.open_transactions()
    );
}
