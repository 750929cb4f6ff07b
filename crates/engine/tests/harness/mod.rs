//! Drives the real engine on a settable clock, with a store kept in a map
//! and phones that speak raw SIP text. No sockets: what the engine would send
//! is collected and read back with the `sip` parser.

#![allow(dead_code)]

use engine::{Config, Engine, Output, Source, StoreModel, Time, Transmit, Transport};
use std::net::SocketAddr;

pub const T0: Time = Time(1_700_000_000_000);

/// The engine, its clock, what it sent, and a store that keeps what it was told.
pub struct Harness {
    pub engine: Engine,
    pub now: Time,
    pub sent: Vec<Transmit>,
    /// What the store holds.
    pub store: StoreModel,
    /// Store writes seen so far.
    pub store_ops: usize,
    /// When false, store batches are not acknowledged (the disk is "slow").
    pub ack_store: bool,
    pub pending: Vec<u64>,
    pub server: SocketAddr,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Config::default())
    }

    pub fn with(cfg: Config) -> Harness {
        Harness {
            engine: Engine::new(cfg, 7),
            now: T0,
            sent: Vec::new(),
            store: StoreModel::default(),
            store_ops: 0,
            ack_store: true,
            pending: Vec::new(),
            server: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    /// A new engine on the same store, as after a crash and restart.
    pub fn restart(&mut self, cfg: Config) {
        self.engine = Engine::new(cfg, 99);
        self.engine.restore(self.now, self.store.snapshot());
        self.drain();
    }

    pub fn drain(&mut self) {
        loop {
            match self.engine.poll_output() {
                Some(Output::Transmit(t)) => self.sent.push(t),
                Some(Output::Store(b)) => {
                    self.store_ops += b.ops.len();
                    for op in b.ops {
                        self.store.apply(op);
                    }
                    if self.ack_store {
                        self.engine.handle_durable(self.now, b.seq);
                    } else {
                        self.pending.push(b.seq);
                    }
                }
                None => break,
            }
        }
    }

    pub fn ack_pending(&mut self) {
        for seq in std::mem::take(&mut self.pending) {
            self.engine.handle_durable(self.now, seq);
        }
        self.drain();
    }

    /// Deliver `text` (LF line ends become CRLF) from `from`.
    pub fn input(&mut self, from: Source, text: &str) {
        let bytes = crlf(text);
        self.engine.handle_bytes(self.now, from, &bytes);
        self.drain();
    }

    /// Move the clock forward by `ms`, firing timers on the way in order.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        while let Some(t) = self.engine.next_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = end;
        self.engine.handle_timeout(self.now);
        self.drain();
    }

    pub fn take(&mut self) -> Vec<Transmit> {
        std::mem::take(&mut self.sent)
    }

    /// Everything sent to `to`, removed from the outbox.
    pub fn take_to(&mut self, to: SocketAddr) -> Vec<Transmit> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sent)
            .into_iter()
            .partition(|t| t.remote == to);
        self.sent = rest;
        mine
    }
}

pub fn crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 32);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line.trim_end_matches('\r').as_bytes());
    }
    out
}

pub fn udp(port: u16) -> Source {
    Source {
        transport: Transport::Udp,
        local: "127.0.0.1:5060".parse().unwrap(),
        remote: SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        conn: None,
    }
}

pub fn from_ip(ip: &str, port: u16) -> Source {
    Source {
        remote: SocketAddr::new(ip.parse().unwrap(), port),
        ..udp(port)
    }
}

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::new("127.0.0.1".parse().unwrap(), port)
}

/// A parsed view of something the engine sent.
pub struct Sent {
    pub bytes: Vec<u8>,
}

impl Sent {
    pub fn msg(&self) -> sip::Message<'_> {
        sip::parse(&self.bytes, false).expect("engine output parses")
    }
    pub fn status(&self) -> Option<u16> {
        self.msg().status()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.msg()
            .header(sip::HeaderName::from_name(name))
            .map(str::to_string)
    }
    pub fn is_notify(&self) -> bool {
        self.msg().method() == Some(sip::Method::Notify)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
    /// The appearances a call-info NOTIFY shows: (index, state) for every
    /// non-idle element.
    pub fn appearances(&self) -> Vec<(u32, String)> {
        let m = self.msg();
        m.call_info()
            .expect("Call-Info parses")
            .into_iter()
            .filter(|c| c.appearance_index != Some("*"))
            .map(|c| {
                (
                    c.appearance_index.unwrap().parse().unwrap(),
                    c.appearance_state.unwrap_or("").to_string(),
                )
            })
            .collect()
    }
    pub fn cseq(&self) -> u32 {
        self.msg().cseq().unwrap().unwrap().seq
    }
    pub fn sub_state(&self) -> String {
        self.header("Subscription-State").unwrap()
    }
}

pub fn sent(ts: Vec<Transmit>) -> Vec<Sent> {
    ts.into_iter().map(|t| Sent { bytes: t.bytes }).collect()
}

/// A SIP phone (watcher, seizer) or publisher, as text templates.
pub struct Phone {
    pub port: u16,
    pub call_id: String,
    pub tag: String,
    pub cseq: u32,
    pub to_tag: Option<String>,
    pub branch_n: u32,
}

impl Phone {
    pub fn new(port: u16) -> Phone {
        Phone {
            port,
            call_id: format!("call-{port}@test"),
            tag: format!("tag{port}"),
            cseq: 0,
            to_tag: None,
            branch_n: 0,
        }
    }

    pub fn src(&self) -> Source {
        udp(self.port)
    }

    fn branch(&mut self) -> String {
        self.branch_n += 1;
        format!("z9hG4bK{}x{}", self.port, self.branch_n)
    }

    /// A SUBSCRIBE (initial, or in-dialog once `to_tag` is set).
    pub fn subscribe(
        &mut self,
        line: &str,
        event: &str,
        expires: Option<u32>,
        extra: &str,
    ) -> String {
        self.cseq += 1;
        let branch = self.branch();
        let to_tag = self
            .to_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let expires = expires
            .map(|e| format!("Expires: {e}\n"))
            .unwrap_or_default();
        format!(
            "SUBSCRIBE {line} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\nMax-Forwards: 70\nFrom: <sip:phone{port}@example.com>;tag={tag}\nTo: <{line}>{to_tag}\nCall-ID: {cid}\nCSeq: {cseq} SUBSCRIBE\nContact: <sip:phone{port}@127.0.0.1:{port}>\nEvent: {event}\n{expires}{extra}Content-Length: 0\n\n",
            port = self.port,
            tag = self.tag,
            cid = self.call_id,
            cseq = self.cseq,
        )
    }

    /// A PUBLISH with the given extra headers (Call-Info, SIP-If-Match ...).
    pub fn publish(&mut self, line: &str, expires: Option<u32>, extra: &str) -> String {
        self.cseq += 1;
        let branch = self.branch();
        let expires = expires
            .map(|e| format!("Expires: {e}\n"))
            .unwrap_or_default();
        format!(
            "PUBLISH {line} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\nMax-Forwards: 70\nFrom: <sip:pbx@example.com>;tag={tag}\nTo: <{line}>\nCall-ID: {cid}-{cseq}\nCSeq: {cseq} PUBLISH\nEvent: call-info\n{expires}{extra}Content-Length: 0\n\n",
            port = self.port,
            tag = self.tag,
            cid = self.call_id,
            cseq = self.cseq,
        )
    }

    /// Learn the dialog's To tag from a 200 to our SUBSCRIBE.
    pub fn learn(&mut self, ok: &Sent) {
        let m = ok.msg();
        self.to_tag = m.to().unwrap().unwrap().tag().map(str::to_string);
    }
}

/// A response to a request the engine sent (a NOTIFY), as the phone would write it.
pub fn reply(req: &Sent, code: u16) -> String {
    let m = req.msg();
    let mut s = format!("SIP/2.0 {code} Whatever\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for v in m.header_lines(sip::HeaderName::from_name(name)) {
            s.push_str(&format!("{name}: {v}\n"));
        }
    }
    s.push_str("Content-Length: 0\n\n");
    s
}

/// The line most tests use.
pub const LINE: &str = "sip:bob@example.com";

pub fn ci(index: u32, state: &str) -> String {
    format!("Call-Info: <sip:example.com>;appearance-index={index};appearance-state={state}\n")
}

/// Subscribe `phone` to call-info on LINE, check the 200 and the first
/// NOTIFY, answer it, and return that NOTIFY.
/// An hour's call-info subscription to `line`, its first NOTIFY answered.
pub fn answered_watch(h: &mut Harness, phone: &mut Phone, line: &str) {
    let req = phone.subscribe(line, "call-info", Some(3600), "");
    h.input(phone.src(), &req);
    let out = sent(h.take());
    assert_eq!(out.len(), 2, "200 and NOTIFY");
    h.input(phone.src(), &reply(&out[1], 200));
}

pub fn watch(h: &mut Harness, phone: &mut Phone) -> Sent {
    let req = phone.subscribe(LINE, "call-info", Some(600), "");
    h.input(phone.src(), &req);
    let mut out = sent(h.take_to(addr(phone.port)));
    assert_eq!(
        out.len(),
        2,
        "200 and NOTIFY: {:?}",
        out.iter().map(Sent::text).collect::<Vec<_>>()
    );
    let notify = out.pop().unwrap();
    let ok = out.pop().unwrap();
    assert_eq!(ok.status(), Some(200));
    phone.learn(&ok);
    assert!(notify.is_notify());
    h.input(phone.src(), &reply(&notify, 200));
    notify
}

pub fn publish(h: &mut Harness, p: &mut Phone, extra: &str, expires: Option<u32>) -> Sent {
    let req = p.publish(LINE, expires, extra);
    h.input(p.src(), &req);
    let mut out = sent(h.take_to(addr(p.port)));
    assert_eq!(out.len(), 1);
    out.pop().unwrap()
}

/// The NOTIFYs sent to `phone` since last asked, each answered with 200.
pub fn notifies(h: &mut Harness, phone: &Phone) -> Vec<Sent> {
    let out = sent(h.take_to(addr(phone.port)));
    for n in &out {
        assert!(n.is_notify(), "{}", n.text());
        h.input(phone.src(), &reply(n, 200));
    }
    out
}
