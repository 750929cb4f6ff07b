//! Simulated phones: scripted, sans-IO user agents on UDP that watch a line
//! (call-info), seize appearances (line-seize) and publish call state
//! (call-info PUBLISH), with their own Timer E/F retransmission. A phone may
//! vanish (stop answering anything) or start answering NOTIFYs with 481.
//!
//! Each phone keeps, per subscription dialog, what it was told: the last
//! state by CSeq order, the CSeq of a terminated NOTIFY, and what each CSeq
//! carried (to catch a CSeq reused for different content). Violations of
//! the NOTIFY-order invariants are recorded as they are seen.

use crate::net::Rng;
use engine::Time;
use sip::{HeaderName, Method, SubState};
use std::collections::BTreeMap;
use std::net::SocketAddr;

pub const T1: u64 = 500;
pub const T2: u64 = 4000;
pub const TIMER_F: u64 = 64 * T1;

/// An appearance as a watcher sees it: index, state token, appearance-uri.
pub type Ap = (u32, String, Option<String>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Gone: answers nothing, sends nothing.
    Vanished,
    /// Lost its dialogs: answers every NOTIFY with 481, sends nothing.
    Reject481,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Watch,
    Seize,
}

impl Kind {
    fn event(self) -> &'static str {
        match self {
            Kind::Watch => "call-info",
            Kind::Seize => "line-seize",
        }
    }
}

/// One subscription dialog, as the subscriber sees it.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub kind: Kind,
    pub call_id: String,
    pub tag: String,
    /// The notifier's tag, from the 200 or the first NOTIFY.
    pub to_tag: Option<String>,
    pub cseq: u32,
    /// The index asked for (seize).
    pub index: Option<u32>,
    /// A 200 was received for the initial SUBSCRIBE.
    pub confirmed: bool,
    /// Conservative expiry: first send of the granting request plus the
    /// granted seconds (the engine's own expiry is never earlier).
    pub expires_at: Time,
    pub refresh_at: Time,
    /// This subscriber will not refresh.
    pub lazy: bool,
    /// The phone let go (unsubscribed, refused, or gave up).
    pub ended_locally: bool,
    /// CSeq of the terminated NOTIFY received, if any.
    pub terminated: Option<u32>,
    pub last_cseq: u32,
    pub last_state: Option<Vec<Ap>>,
    /// What each NOTIFY CSeq carried (Subscription-State, Call-Info).
    pub seen: BTreeMap<u32, (String, String)>,
}

impl Dialog {
    /// Whether the subscriber believes it holds this subscription at `now`.
    pub fn believed_live(&self, now: Time) -> bool {
        self.confirmed && !self.ended_locally && self.terminated.is_none() && self.expires_at > now
    }
}

/// A publication, as its publisher sees it.
#[derive(Debug, Clone)]
pub struct Publication {
    pub etag: String,
    pub claims: Vec<(u32, &'static str)>,
    pub expires_at: Time,
    pub refresh_at: Time,
    pub lazy: bool,
}

#[derive(Debug, Clone)]
pub enum Purpose {
    Subscribe {
        call_id: String,
        expires: u32,
    },
    Publish {
        claims: Option<Vec<(u32, &'static str)>>,
        expires: u32,
    },
}

/// The phone's one outstanding request (RFC 3261 §17.1.2, UDP).
#[derive(Debug, Clone)]
pub struct ClientTx {
    pub purpose: Purpose,
    pub branch: String,
    pub bytes: Vec<u8>,
    pub first_sent: Time,
    pub next_rt: Time,
    pub interval: u64,
    pub deadline: Time,
}

pub struct Phone {
    pub idx: usize,
    pub addr: SocketAddr,
    pub line: String,
    pub mode: Mode,
    n: u64,
    pub dialogs: BTreeMap<String, Dialog>,
    pub watch: Option<String>,
    pub seize: Option<String>,
    pub publication: Option<Publication>,
    pub tx: Option<ClientTx>,
    pub next_action: Time,
    /// Quiet phase: refresh seizes and publications only.
    pub quiet: bool,
    pub out: Vec<Vec<u8>>,
    /// PUBLISHes answered 200 (statistics).
    pub publications_made: u64,
    pub violations: Vec<String>,
}

const STATES: [&str; 5] = ["alerting", "active", "held", "progressing", "held-private"];

impl Phone {
    pub fn new(idx: usize, line: String, now: Time) -> Phone {
        Phone {
            idx,
            addr: SocketAddr::new([127, 0, 0, 1].into(), 6000 + idx as u16),
            line,
            mode: Mode::Normal,
            n: 0,
            dialogs: BTreeMap::new(),
            watch: None,
            seize: None,
            publication: None,
            tx: None,
            next_action: now + 10 * idx as u64,
            quiet: false,
            out: Vec::new(),
            publications_made: 0,
            violations: Vec::new(),
        }
    }

    pub fn next_wake(&self) -> Option<Time> {
        if self.mode != Mode::Normal {
            return None;
        }
        let tx = self.tx.as_ref().map(|t| t.next_rt.min(t.deadline));
        Some(tx.map_or(self.next_action, |t| t.min(self.next_action)))
    }

    fn fresh(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}{}x{}", self.idx, self.n)
    }

    // ---- time ----

    pub fn on_timer(&mut self, now: Time, rng: &mut Rng) {
        if self.mode != Mode::Normal {
            return;
        }
        if let Some(tx) = &mut self.tx {
            if now >= tx.deadline {
                let tx = self.tx.take();
                if let Some(tx) = tx {
                    self.on_final(now, tx, None);
                }
            } else if now >= tx.next_rt {
                tx.interval = (tx.interval * 2).min(T2);
                tx.next_rt = now + tx.interval;
                self.out.push(tx.bytes.clone());
            }
        }
        if now >= self.next_action {
            self.next_action = now + rng.range(100, 2500);
            if self.tx.is_none() {
                self.act(now, rng);
            }
        }
    }

    /// Pick the next thing to do: refreshes first, then (outside the quiet
    /// phase) a random change.
    fn act(&mut self, now: Time, rng: &mut Rng) {
        // Refreshes that are due.
        if let Some(id) = self.seize.clone() {
            let d = &self.dialogs[&id];
            if d.confirmed && !d.lazy && now >= d.refresh_at && d.expires_at > now {
                let e = *rng.pick(&[5, 10, 15]);
                return self.subscribe(now, &id, e);
            }
        }
        if let Some(p) = &self.publication {
            if !p.lazy && now >= p.refresh_at && p.expires_at > now {
                let e = *rng.pick(&[10, 20, 30]);
                return self.publish(now, None, e);
            }
        }
        if self.quiet {
            return;
        }
        if let Some(id) = self.watch.clone() {
            let d = &self.dialogs[&id];
            if d.confirmed && !d.lazy && now >= d.refresh_at && d.expires_at > now {
                let e = *rng.pick(&[10, 20, 30, 40]);
                return self.subscribe(now, &id, e);
            }
        }
        // A phone may fail.
        if rng.chance(4) {
            self.mode = Mode::Vanished;
            return;
        }
        if rng.chance(4) {
            self.mode = Mode::Reject481;
            return;
        }
        match rng.range(0, 9) {
            0 | 1 => match self.watch.clone() {
                None => {
                    let id = self.new_dialog(now, rng, Kind::Watch, None);
                    let e = *rng.pick(&[10, 20, 30, 40]);
                    self.subscribe(now, &id, e);
                }
                Some(id) if rng.chance(300) => self.subscribe(now, &id, 0),
                Some(_) => {}
            },
            2..=4 => match self.seize.clone() {
                None => {
                    let index = rng.range(1, 4) as u32;
                    let id = self.new_dialog(now, rng, Kind::Seize, Some(index));
                    let e = *rng.pick(&[5, 10, 15]);
                    self.subscribe(now, &id, e);
                }
                Some(id) if rng.chance(400) => self.subscribe(now, &id, 0),
                Some(_) => {}
            },
            _ => match &self.publication {
                None => {
                    let claims = random_claims(rng);
                    let e = *rng.pick(&[10, 20, 30]);
                    self.publish(now, Some(claims), e);
                }
                Some(_) => match rng.range(0, 3) {
                    0 => self.publish(now, None, 0),
                    1 => {
                        let e = *rng.pick(&[10, 20, 30]);
                        self.publish(now, None, e);
                    }
                    _ => {
                        let claims = random_claims(rng);
                        let e = *rng.pick(&[10, 20, 30]);
                        self.publish(now, Some(claims), e);
                    }
                },
            },
        }
    }

    fn new_dialog(&mut self, now: Time, rng: &mut Rng, kind: Kind, index: Option<u32>) -> String {
        let call_id = format!("{}@sim", self.fresh("c"));
        let d = Dialog {
            kind,
            call_id: call_id.clone(),
            tag: self.fresh("t"),
            to_tag: None,
            cseq: 0,
            index,
            confirmed: false,
            expires_at: now,
            refresh_at: now,
            lazy: rng.chance(150),
            ended_locally: false,
            terminated: None,
            last_cseq: 0,
            last_state: None,
            seen: BTreeMap::new(),
        };
        self.dialogs.insert(call_id.clone(), d);
        match kind {
            Kind::Watch => self.watch = Some(call_id.clone()),
            Kind::Seize => self.seize = Some(call_id.clone()),
        }
        call_id
    }

    fn start(&mut self, now: Time, purpose: Purpose, branch: String, bytes: Vec<u8>) {
        self.out.push(bytes.clone());
        self.tx = Some(ClientTx {
            purpose,
            branch,
            bytes,
            first_sent: now,
            next_rt: now + T1,
            interval: T1,
            deadline: now + TIMER_F,
        });
    }

    fn subscribe(&mut self, now: Time, call_id: &str, expires: u32) {
        let branch = format!("z9hG4bK{}", self.fresh("b"));
        let (port, idx, line) = (self.addr.port(), self.idx, self.line.clone());
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return;
        };
        d.cseq += 1;
        let initial = d.to_tag.is_none() || !d.confirmed;
        let to_tag = match (&d.to_tag, initial) {
            (Some(t), false) => format!(";tag={t}"),
            _ => String::new(),
        };
        let seize = match d.index {
            Some(i) if initial => format!("Call-Info: <sip:example.com>;appearance-index={i}\r\n"),
            _ => String::new(),
        };
        let text = format!(
            "SUBSCRIBE {line} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:phone{idx}@example.com>;tag={tag}\r\nTo: <{line}>{to_tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\nContact: <sip:phone{idx}@127.0.0.1:{port}>\r\nEvent: {event}\r\nExpires: {expires}\r\n{seize}Content-Length: 0\r\n\r\n",
            tag = d.tag,
            cseq = d.cseq,
            event = d.kind.event(),
        );
        let purpose = Purpose::Subscribe {
            call_id: call_id.to_string(),
            expires,
        };
        self.start(now, purpose, branch, text.into_bytes());
    }

    fn publish(&mut self, now: Time, claims: Option<Vec<(u32, &'static str)>>, expires: u32) {
        let branch = format!("z9hG4bK{}", self.fresh("b"));
        let call_id = format!("{}@sim", self.fresh("p"));
        let (port, idx, line) = (self.addr.port(), self.idx, self.line.clone());
        let if_match = match &self.publication {
            Some(p) => format!("SIP-If-Match: {}\r\n", p.etag),
            None => String::new(),
        };
        let call_info = match &claims {
            Some(c) => {
                let els: Vec<String> = c
                    .iter()
                    .map(|(i, s)| {
                        format!("<sip:example.com>;appearance-index={i};appearance-state={s}")
                    })
                    .collect();
                format!("Call-Info: {}\r\n", els.join(", "))
            }
            None => String::new(),
        };
        let text = format!(
            "PUBLISH {line} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx{idx}@example.com>;tag={tag}\r\nTo: <{line}>\r\nCall-ID: {call_id}\r\nCSeq: 1 PUBLISH\r\nEvent: call-info\r\nExpires: {expires}\r\n{if_match}{call_info}Content-Length: 0\r\n\r\n",
            tag = self.fresh("t"),
        );
        self.start(
            now,
            Purpose::Publish { claims, expires },
            branch,
            text.into_bytes(),
        );
    }

    // ---- network ----

    pub fn on_packet(&mut self, now: Time, bytes: &[u8]) {
        if self.mode == Mode::Vanished {
            return;
        }
        let Ok(msg) = sip::parse(bytes, false) else {
            self.violations
                .push(format!("phone {} got unparsable bytes", self.idx));
            return;
        };
        if msg.is_request() {
            if msg.method() == Some(Method::Notify) {
                self.on_notify(&msg);
            } else {
                self.violations.push(format!(
                    "phone {} got a {:?} request",
                    self.idx,
                    msg.method()
                ));
            }
            return;
        }
        if self.mode != Mode::Normal {
            return;
        }
        let (Some(code), Ok(Some(via))) = (msg.status(), msg.via()) else {
            return;
        };
        let matches = self
            .tx
            .as_ref()
            .is_some_and(|t| via.branch == Some(t.branch.as_str()));
        if !matches || code < 200 {
            return;
        }
        let Some(tx) = self.tx.take() else { return };
        let expires = msg.expires().ok().flatten();
        let etag = msg.sip_etag().ok().flatten().map(str::to_string);
        let to_tag = msg
            .to()
            .ok()
            .flatten()
            .and_then(|t| t.tag())
            .map(str::to_string);
        self.on_final(
            now,
            tx,
            Some(Final {
                code,
                expires,
                etag,
                to_tag,
            }),
        );
    }

    /// The outstanding request ended: a final response, or Timer F (`None`).
    fn on_final(&mut self, now: Time, tx: ClientTx, fin: Option<Final>) {
        match tx.purpose {
            Purpose::Subscribe { call_id, expires } => {
                let Some(d) = self.dialogs.get_mut(&call_id) else {
                    return;
                };
                match fin {
                    Some(f) if f.code == 200 && expires > 0 => {
                        let granted = u64::from(f.expires.unwrap_or(0));
                        d.confirmed = true;
                        if d.to_tag.is_none() {
                            d.to_tag = f.to_tag;
                        }
                        d.expires_at = tx.first_sent.plus_secs(granted);
                        d.refresh_at = now.plus_ms(granted * 500);
                    }
                    _ => {
                        // Unsubscribed, refused, or gave up: the phone lets go.
                        // A refusal of an initial request leaves nothing live
                        // at the engine; anything else may still end with a
                        // terminated NOTIFY, which is still answered.
                        d.ended_locally = true;
                        let slot = match d.kind {
                            Kind::Watch => &mut self.watch,
                            Kind::Seize => &mut self.seize,
                        };
                        if slot.as_deref() == Some(call_id.as_str()) {
                            *slot = None;
                        }
                    }
                }
            }
            Purpose::Publish { claims, expires } => match fin {
                Some(Final {
                    code: 200,
                    etag: Some(etag),
                    expires: granted,
                    ..
                }) if expires > 0 => {
                    let granted = u64::from(granted.unwrap_or(0));
                    self.publications_made += 1;
                    let claims = match (claims, &self.publication) {
                        (Some(c), _) => c,
                        (None, Some(p)) => p.claims.clone(),
                        (None, None) => Vec::new(),
                    };
                    let lazy = self
                        .publication
                        .as_ref()
                        .map_or_else(|| self.n.is_multiple_of(7), |p| p.lazy);
                    self.publication = Some(Publication {
                        etag,
                        claims,
                        expires_at: tx.first_sent.plus_secs(granted),
                        refresh_at: now.plus_ms(granted * 500),
                        lazy,
                    });
                }
                _ => self.publication = None,
            },
        }
    }

    fn on_notify(&mut self, msg: &sip::Message<'_>) {
        let code = if self.mode == Mode::Reject481 {
            481
        } else {
            self.take_notify(msg)
        };
        let mut s = format!("SIP/2.0 {code} Sim\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for v in msg.header_lines(HeaderName::from_name(name)) {
                s.push_str(name);
                s.push_str(": ");
                s.push_str(v);
                s.push_str("\r\n");
            }
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        self.out.push(s.into_bytes());
    }

    /// Record what a NOTIFY says; returns the status to answer with.
    fn take_notify(&mut self, msg: &sip::Message<'_>) -> u16 {
        let idx = self.idx;
        let call_id = msg.call_id().ok().flatten().unwrap_or_default();
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return 481;
        };
        let from_tag = msg
            .from()
            .ok()
            .flatten()
            .and_then(|f| f.tag())
            .map(str::to_string);
        match (&d.to_tag, from_tag) {
            (None, Some(t)) => d.to_tag = Some(t),
            (Some(t), Some(f)) if *t == f => {}
            _ => return 481,
        }
        let Some(cseq) = msg.cseq().ok().flatten().map(|c| c.seq) else {
            return 400;
        };
        let sub_state = msg
            .header(HeaderName::SubscriptionState)
            .unwrap_or_default()
            .to_string();
        let call_info = msg
            .header(HeaderName::CallInfo)
            .unwrap_or_default()
            .to_string();
        let terminated = matches!(
            msg.subscription_state().ok().flatten().map(|s| s.state),
            Some(SubState::Terminated)
        );
        if let Some(prev) = d.seen.get(&cseq) {
            if *prev != (sub_state.clone(), call_info.clone()) {
                self.violations.push(format!(
                    "phone {idx} dialog {call_id}: NOTIFY CSeq {cseq} reused for different content: {prev:?} then {:?}",
                    (&sub_state, &call_info)
                ));
            }
        }
        if let Some(t) = d.terminated {
            if cseq > t {
                self.violations.push(format!(
                    "phone {idx} dialog {call_id}: NOTIFY CSeq {cseq} after the terminated NOTIFY CSeq {t}"
                ));
            }
        }
        d.seen.insert(cseq, (sub_state, call_info));
        if cseq > d.last_cseq {
            d.last_cseq = cseq;
            if d.kind == Kind::Watch {
                match parse_call_info(msg) {
                    Some(aps) => d.last_state = Some(aps),
                    None => self
                        .violations
                        .push(format!("phone {idx}: unreadable call-info NOTIFY")),
                }
            }
            if terminated {
                d.terminated = Some(cseq);
            }
        }
        200
    }
}

struct Final {
    code: u16,
    expires: Option<u32>,
    etag: Option<String>,
    to_tag: Option<String>,
}

fn random_claims(rng: &mut Rng) -> Vec<(u32, &'static str)> {
    let mut claims = Vec::new();
    for i in 1..=4u32 {
        if rng.chance(350) {
            claims.push((i, *rng.pick(&STATES)));
        }
    }
    if claims.is_empty() {
        claims.push((rng.range(1, 4) as u32, *rng.pick(&STATES)));
    }
    claims
}

/// The non-idle appearances a call-info NOTIFY lists, in order.
pub fn parse_call_info(msg: &sip::Message<'_>) -> Option<Vec<Ap>> {
    let els = msg.call_info().ok()?;
    let mut out = Vec::new();
    let mut star = false;
    for el in els {
        match el.appearance_index? {
            "*" => star = true,
            n => out.push((
                n.parse().ok()?,
                el.appearance_state?.to_string(),
                el.appearance_uri.map(str::to_string),
            )),
        }
    }
    star.then_some(out)
}
