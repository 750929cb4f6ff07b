//! The engine's own cost of a call-info fan-out, without sockets or a
//! store: L lines with W watchers each, then P PUBLISHes spread over the
//! lines, every NOTIFY answered 200 and every batch acknowledged at once.
//! Prints wall-clock time per PUBLISH and per NOTIFY; for a figure the
//! machine's load does not move, count instructions inside the engine:
//!
//! ```text
//! cargo build --release -p engine --example fanout
//! valgrind --tool=callgrind --toggle-collect='engine::engine::Engine::*' \
//!     target/release/examples/fanout 1000 10 2000
//! ```
//! (run it with two values of P: the difference of the totals divided by
//! the difference of P is the engine's instructions per PUBLISH and its W
//! NOTIFYs, 200s included).
//!
//! `cargo run --release -p engine --example fanout -- [LINES] [WATCHERS] [PUBLISHES]`

use engine::{Config, Engine, Output, Source, Time, Transmit, Transport};
use std::time::Instant;

/// A 200 to a NOTIFY, as a phone would send it.
fn answer(notify: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    let text = std::str::from_utf8(notify).expect("NOTIFYs are text");
    for l in text.split("\r\n").skip(1) {
        let name = l.split(':').next().unwrap_or("");
        if matches!(name, "Via" | "From" | "To" | "Call-ID" | "CSeq") {
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

/// Run the engine until it has nothing more to say, acknowledging every
/// store batch; returns the NOTIFYs it sent.
fn settle(e: &mut Engine, now: Time, sent: &mut Vec<Transmit>) {
    loop {
        let mut acked = false;
        while let Some(o) = e.poll_output() {
            match o {
                Output::Store(b) => {
                    e.handle_durable(now, b.seq);
                    acked = true;
                }
                Output::Transmit(t) => {
                    if t.bytes.starts_with(b"NOTIFY") {
                        sent.push(t);
                    }
                }
            }
        }
        if !acked {
            return;
        }
    }
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (lines, watchers, publishes) = (arg(1, 1000), arg(2, 10), arg(3, 2000));
    let mut e = Engine::new(Config::default(), 1);
    let now = Time(1_700_000_000_000);
    let local = "127.0.0.1:5060".parse().expect("literal address");
    let src = |i: usize| Source {
        transport: Transport::Udp,
        local,
        remote: std::net::SocketAddr::new(
            std::net::Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8).into(),
            5060,
        ),
        conn: None,
    };
    // Only trusted sources may publish call-info; loopback is, by default.
    let pbx = Source {
        remote: "127.0.0.1:5080".parse().expect("literal address"),
        ..src(0)
    };
    let mut sent = Vec::new();
    let mut reply = Vec::new();
    for i in 0..lines * watchers {
        let line = i / watchers;
        let req = format!(
            "SUBSCRIBE sip:line{line}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKs{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:phone{i}@example.com>;tag=f{i:08x}\r\nTo: <sip:line{line}@example.com>\r\nCall-ID: {i:016x}@example.com\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:phone{i}@10.0.0.1:5060>\r\nEvent: call-info\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
        );
        e.handle_bytes(now, src(i), req.as_bytes());
        settle(&mut e, now, &mut sent);
        for n in sent.drain(..) {
            answer(&n.bytes, &mut reply);
            e.handle_bytes(now, src(i), &reply);
        }
    }
    settle(&mut e, now, &mut sent);
    let states = ["alerting", "active", "held", "idle"];
    let mut notifies = 0usize;
    let started = Instant::now();
    for p in 0..publishes {
        let line = p % lines;
        let state = states[(p / lines) % states.len()];
        let req = format!(
            "PUBLISH sip:line{line}@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKp{p};rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx@example.com>;tag=pbx{p}\r\nTo: <sip:line{line}@example.com>\r\nCall-ID: pub{p}@example.com\r\nCSeq: 1 PUBLISH\r\nEvent: call-info\r\nExpires: 60\r\nCall-Info: <sip:line{line}@example.com>;appearance-index=1;appearance-state={state}\r\nContent-Length: 0\r\n\r\n"
        );
        e.handle_bytes(now, pbx, req.as_bytes());
        settle(&mut e, now, &mut sent);
        notifies += sent.len();
        for (k, n) in sent.drain(..).enumerate() {
            answer(&n.bytes, &mut reply);
            e.handle_bytes(now, src(line * watchers + k), &reply);
        }
        settle(&mut e, now, &mut sent);
    }
    let took = started.elapsed();
    println!(
        "{lines} lines x {watchers} watchers, {publishes} PUBLISHes: {notifies} NOTIFYs, \
         {:.2} us per PUBLISH, {:.2} us per NOTIFY (wall clock, with the example's own work)",
        took.as_secs_f64() * 1e6 / publishes.max(1) as f64,
        took.as_secs_f64() * 1e6 / notifies.max(1) as f64,
    );
}
