//! The real engine driven by fuzz input read as a sequence of operations:
//! template requests (call-info and line-seize SUBSCRIBE, in-dialog refresh
//! and unsubscribe, PUBLISH initial/refresh/modify/remove) with fields taken
//! from the input, spliced or raw datagrams, answers to the NOTIFYs it sent
//! (200, 481, 408, ...), clock jumps, store acknowledgements, and crashes
//! with a restart from what the store made durable.
//!
//! Besides "never panic", it asserts the simulation's invariants that need
//! no well-behaved peers: (a) at most one live seize per appearance and none
//! on an appearance a publication holds in a call; (c) nothing live past its
//! expiry after `handle_timeout`; (e) per dialog, no NOTIFY with a CSeq above
//! its terminated NOTIFY's, and one CSeq never carries two contents.

#![no_main]

use engine::config::ExpiresLimits;
use engine::package::{PubState, SubData};
use engine::{Config, Engine, Output, Source, StoreBatch, StoreModel, Time, Transport};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::net::SocketAddr;

const T0: Time = Time(1_700_000_000_000);
const PHONES: u8 = 4;
const STATES: [&str; 7] = [
    "idle",
    "seized",
    "progressing",
    "alerting",
    "active",
    "held",
    "held-private",
];
const CODES: [u16; 8] = [200, 481, 408, 500, 404, 180, 489, 202];

/// Reads the fuzz input; past the end it yields zeros, so every input is a
/// whole program.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

/// A phone's dialog, learnt from the engine's 200.
#[derive(Clone, Default)]
struct Dialog {
    call_id: String,
    tag: String,
    to_tag: Option<String>,
    cseq: u32,
}

/// What one NOTIFY dialog (Call-ID, notifier tag) has shown on the wire.
#[derive(Default)]
struct Seen {
    terminated: Option<u32>,
    by_cseq: BTreeMap<u32, (String, String)>,
}

struct Sim {
    now: Time,
    engine: Engine,
    restarts: u64,
    store: StoreModel,
    pending: Vec<StoreBatch>,
    server: SocketAddr,
    dialogs: BTreeMap<(u8, bool), Dialog>,
    etags: Vec<String>,
    notifies: Vec<Vec<u8>>,
    seen: BTreeMap<(String, String), Seen>,
    n: u32,
}

fn config() -> Config {
    let mut cfg = Config::default();
    cfg.package_limits.insert(
        "call-info".into(),
        ExpiresLimits {
            min: 5,
            max: 30,
            default: 20,
        },
    );
    cfg.max_appearances = Some(8);
    cfg
}

fn phone(p: u8) -> SocketAddr {
    SocketAddr::new([127, 0, 0, 1].into(), 6000 + u16::from(p))
}

impl Sim {
    fn new() -> Sim {
        Sim {
            now: T0,
            engine: Engine::new(config(), 1),
            restarts: 0,
            store: StoreModel::default(),
            pending: Vec::new(),
            server: "127.0.0.1:5060".parse().expect("literal address"),
            dialogs: BTreeMap::new(),
            etags: Vec::new(),
            notifies: Vec::new(),
            seen: BTreeMap::new(),
            n: 0,
        }
    }

    fn deliver(&mut self, from: SocketAddr, bytes: &[u8]) {
        let src = Source {
            transport: Transport::Udp,
            local: self.server,
            remote: from,
            conn: None,
        };
        self.engine.handle_bytes(self.now, src, bytes);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Store(b) => self.pending.push(b),
                Output::Transmit(t) => self.observe(&t.bytes),
            }
        }
        self.one_owner();
    }

    fn ack(&mut self, count: usize) {
        let n = count.min(self.pending.len());
        let batches: Vec<StoreBatch> = self.pending.drain(..n).collect();
        for b in batches {
            let seq = b.seq;
            for op in b.ops {
                self.store.apply(op);
            }
            self.engine.handle_durable(self.now, seq);
        }
        self.drain();
    }

    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some(t) = self.engine.next_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.timeout();
        }
        self.now = end;
        self.timeout();
    }

    fn timeout(&mut self) {
        self.engine.handle_timeout(self.now);
        self.drain();
        let now = self.now;
        // (c)
        if let Some(s) = self.engine.subscriptions().find(|s| s.expires_at <= now) {
            panic!(
                "(c) subscription {} live {} ms past expiry",
                s.id,
                now - s.expires_at
            );
        }
        if let Some(p) = self.engine.publications().find(|p| p.expires_at <= now) {
            panic!(
                "(c) publication {} live {} ms past expiry",
                p.id,
                now - p.expires_at
            );
        }
    }

    fn crash(&mut self) {
        // Un-acknowledged batches are lost; nothing that depended on them left.
        self.pending.clear();
        self.restarts += 1;
        self.engine = Engine::new(config(), 1 + self.restarts);
        let snap = self.store.snapshot();
        self.engine.restore(self.now, snap);
        self.drain();
    }

    /// Follow what the engine sends: learn dialogs and ETags, check (e).
    fn observe(&mut self, bytes: &[u8]) {
        let msg = sip::parse(bytes, false).expect("the engine's output parses");
        let call_id = msg.call_id().ok().flatten().unwrap_or_default().to_string();
        if let Some(code) = msg.status() {
            if let Ok(Some(e)) = msg.sip_etag() {
                if self.etags.len() >= 8 {
                    self.etags.remove(0);
                }
                self.etags.push(e.to_string());
            }
            // A response copies the request's CSeq, which a malformed
            // request may lack.
            let subscribe = msg
                .cseq()
                .ok()
                .flatten()
                .is_some_and(|c| c.method == "SUBSCRIBE");
            if code == 200 && subscribe {
                let to_tag = msg
                    .to()
                    .ok()
                    .flatten()
                    .and_then(|t| t.tag())
                    .map(str::to_string);
                for d in self.dialogs.values_mut().filter(|d| d.call_id == call_id) {
                    d.to_tag = to_tag.clone();
                }
            }
            return;
        }
        let cseq = msg.cseq().ok().flatten().expect("our NOTIFYs have a CSeq");
        assert_eq!(
            msg.method(),
            Some(sip::Method::Notify),
            "the engine sends only NOTIFY requests"
        );
        if self.notifies.len() >= 16 {
            self.notifies.remove(0);
        }
        self.notifies.push(bytes.to_vec());
        let from_tag = msg
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.tag())
            .unwrap_or_default()
            .to_string();
        let state = msg
            .header(sip::HeaderName::SubscriptionState)
            .unwrap_or_default()
            .to_string();
        let info = msg
            .header(sip::HeaderName::CallInfo)
            .unwrap_or_default()
            .to_string();
        let terminated = state.starts_with("terminated");
        let seen = self.seen.entry((call_id.clone(), from_tag)).or_default();
        if let Some(t) = seen.terminated {
            assert!(
                cseq.seq <= t,
                "(e) dialog {call_id}: NOTIFY CSeq {} after terminated CSeq {t}",
                cseq.seq
            );
        }
        if let Some(prev) = seen.by_cseq.get(&cseq.seq) {
            assert_eq!(
                *prev,
                (state.clone(), info.clone()),
                "(e) dialog {call_id}: CSeq {} reused",
                cseq.seq
            );
        }
        if terminated {
            seen.terminated = Some(seen.terminated.map_or(cseq.seq, |t| t.min(cseq.seq)));
        }
        seen.by_cseq.insert(cseq.seq, (state, info));
    }

    /// (a) At most one live seize per appearance; none on one in a call.
    fn one_owner(&self) {
        let mut seized: BTreeMap<(String, u32), String> = BTreeMap::new();
        for s in self
            .engine
            .subscriptions()
            .filter(|s| s.package == "line-seize")
        {
            let Ok(SubData::Seize(i)) = serde_json::from_str::<SubData>(&s.state) else {
                panic!("seize with unreadable state {}", s.state)
            };
            if let Some(o) = seized.insert((s.resource.clone(), i), s.id.clone()) {
                panic!(
                    "(a) two live seizes of {} appearance {i}: {o:?} and {:?}",
                    s.resource, s.id
                );
            }
        }
        for p in self.engine.publications() {
            let Ok(PubState::Appearances(claims)) = serde_json::from_str::<PubState>(&p.state)
            else {
                continue;
            };
            for c in claims.iter().filter(|c| c.state.is_call()) {
                if let Some(s) = seized.get(&(p.resource.clone(), c.index)) {
                    panic!(
                        "(a) seize {s:?} live on {} appearance {} held by a call",
                        p.resource, c.index
                    );
                }
            }
        }
    }

    fn subscribe(
        &mut self,
        inp: &mut Input<'_>,
        seize: bool,
        expires: Option<u32>,
    ) -> (SocketAddr, String) {
        let b = inp.byte();
        let p = b % PHONES;
        let line = format!("sip:line{}@example.com", (b >> 2) % 2);
        self.n += 1;
        let n = self.n;
        let fresh = b & 0x80 != 0 || !self.dialogs.contains_key(&(p, seize));
        let d = self.dialogs.entry((p, seize)).or_default();
        if fresh {
            *d = Dialog {
                call_id: format!("c{p}x{n}"),
                tag: format!("t{n}"),
                to_tag: None,
                cseq: 0,
            };
        }
        d.cseq = if inp.byte() == 0xff {
            d.cseq
        } else {
            d.cseq + 1
        };
        let expires = expires.unwrap_or_else(|| u32::from(inp.byte()) % 50);
        let to_tag = d
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let (event, extra) = if seize {
            let i = inp.byte() % 10;
            let index = if i == 0 {
                "*".to_string()
            } else {
                i.to_string()
            };
            (
                "line-seize",
                format!("Call-Info: <sip:example.com>;appearance-index={index}\r\n"),
            )
        } else {
            ("call-info", String::new())
        };
        let port = 6000 + u16::from(p);
        let text = format!(
            "SUBSCRIBE {line} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:p{p}@example.com>;tag={tag}\r\nTo: <{line}>{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:p{p}@127.0.0.1:{port}>\r\nEvent: {event}\r\nExpires: {expires}\r\n{extra}Content-Length: 0\r\n\r\n",
            tag = d.tag,
            cid = d.call_id,
            cseq = d.cseq,
        );
        (phone(p), text)
    }

    fn publish(&mut self, inp: &mut Input<'_>, conditional: bool) -> (SocketAddr, String) {
        let b = inp.byte();
        let p = b % PHONES;
        let line = format!("sip:line{}@example.com", (b >> 2) % 2);
        self.n += 1;
        let n = self.n;
        let expires = match inp.byte() {
            0..=15 => 0,
            e => u32::from(e) % 40,
        };
        let if_match = if conditional && !self.etags.is_empty() {
            let i = usize::from(inp.byte()) % self.etags.len();
            format!("SIP-If-Match: {}\r\n", self.etags[i])
        } else if conditional {
            "SIP-If-Match: nosuchetag\r\n".to_string()
        } else {
            String::new()
        };
        let mut info = Vec::new();
        let count = inp.byte() % 4;
        for _ in 0..count {
            let i = inp.byte();
            let index = if i % 11 == 0 {
                "*".to_string()
            } else {
                (i % 11).to_string()
            };
            let state = STATES[usize::from(inp.byte()) % STATES.len()];
            info.push(format!(
                "<sip:example.com>;appearance-index={index};appearance-state={state}"
            ));
        }
        let info = if info.is_empty() {
            String::new()
        } else {
            format!("Call-Info: {}\r\n", info.join(", "))
        };
        let port = 6000 + u16::from(p);
        let text = format!(
            "PUBLISH {line} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKp{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx@example.com>;tag=pt{n}\r\nTo: <{line}>\r\nCall-ID: pub{n}\r\nCSeq: 1 PUBLISH\r\nEvent: call-info\r\nExpires: {expires}\r\n{if_match}{info}Content-Length: 0\r\n\r\n"
        );
        (phone(p), text)
    }

    fn answer(&mut self, inp: &mut Input<'_>) {
        if self.notifies.is_empty() {
            return;
        }
        let i = usize::from(inp.byte()) % self.notifies.len();
        let code = CODES[usize::from(inp.byte()) % CODES.len()];
        let req = self.notifies[i].clone();
        let msg = sip::parse(&req, false).expect("kept NOTIFYs parse");
        let mut s = format!("SIP/2.0 {code} Fuzz\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in msg.header_lines(sip::HeaderName::from_name(name)) {
                s.push_str(&format!("{name}: {v}\r\n"));
            }
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        let to = msg
            .to()
            .ok()
            .flatten()
            .and_then(|t| t.parsed_uri().ok())
            .and_then(|u| u.port)
            .unwrap_or(6000);
        self.deliver(SocketAddr::new([127, 0, 0, 1].into(), to), s.as_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mut sim = Sim::new();
    let mut ops = 0;
    while !inp.done() && ops < 256 {
        ops += 1;
        match inp.byte() % 13 {
            0 => {
                let (from, text) = sim.subscribe(&mut inp, false, None);
                sim.deliver(from, text.as_bytes());
            }
            1 => {
                let (from, text) = sim.subscribe(&mut inp, true, None);
                sim.deliver(from, text.as_bytes());
            }
            2 => {
                let seize = inp.byte() % 2 == 0;
                let (from, text) = sim.subscribe(&mut inp, seize, Some(0));
                sim.deliver(from, text.as_bytes());
            }
            3 => {
                let (from, text) = sim.publish(&mut inp, false);
                sim.deliver(from, text.as_bytes());
            }
            4 => {
                let (from, text) = sim.publish(&mut inp, true);
                sim.deliver(from, text.as_bytes());
            }
            5 | 6 => sim.answer(&mut inp),
            7 => {
                // A template with a stretch overwritten by input bytes.
                let kind = inp.byte();
                let (from, text) = match kind % 3 {
                    0 => sim.subscribe(&mut inp, false, None),
                    1 => sim.subscribe(&mut inp, true, None),
                    _ => sim.publish(&mut inp, kind & 4 != 0),
                };
                let mut bytes = text.into_bytes();
                let at = usize::from(inp.byte()) * 2 % bytes.len();
                let len = usize::from(inp.byte() % 16);
                for (i, b) in inp.take(len).iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
                sim.deliver(from, &bytes);
            }
            8 => {
                let len = usize::from(inp.byte()) * 4;
                let raw = inp.take(len).to_vec();
                let from = phone(inp.byte() % PHONES);
                sim.deliver(from, &raw);
            }
            9 | 10 => {
                let ms = u64::from(inp.byte()) * 137;
                sim.advance(ms);
            }
            11 => {
                let n = usize::from(inp.byte() % 4) + 1;
                sim.ack(n);
            }
            _ => {
                if inp.byte() % 4 == 0 {
                    sim.crash();
                } else {
                    sim.ack(usize::MAX);
                }
            }
        }
    }
    // Let everything finish: every batch durable, every timer run.
    sim.ack(usize::MAX);
    sim.advance(120_000);
});
