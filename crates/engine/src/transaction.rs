//! RFC 3261 §17 non-INVITE transactions, sans-IO.
//!
//! Server side ([`ServerTransactions`]): a request seen again after its final
//! response is answered with that same response and never reaches the engine
//! twice; Timer J keeps the answer 64*T1 on UDP (0 on TCP). Client side
//! ([`ClientTransactions`]): the NOTIFYs we send, retransmitted on Timer E
//! over UDP and given up on Timer F. Both run on the caller's [`Time`] and
//! say when they next need it through `next_timeout`.
//!
//! A client transaction ends at its final response, also over UDP, where
//! RFC 3261 §17.1.2.2 keeps it Completed for Timer K (T4) to absorb
//! retransmissions of that response. The engine drops any response that
//! matches no transaction, which is what absorbing means, so the Completed
//! state would change nothing anyone can see, while it cost a table entry
//! per NOTIFY for 5 s: at 100 000 NOTIFYs/s, half a million entries, some
//! 15% of the CPU of a fan-out and hundreds of MiB. T4 therefore times
//! nothing here.
//!
//! Each table keeps its transactions in a hash map and their single pending
//! deadline beside it. The server table's deadlines are an ordered map keyed
//! by `(Time, sequence number)`, a deadline removed exactly when its
//! transaction leaves; the client table's are a heap whose entries go stale
//! when a NOTIFY is answered and are dropped later (one per NOTIFY, so the
//! cheaper push matters). Firing and finding the next deadline are
//! logarithmic in both.

use crate::config::Timers;
use crate::net::Transmit;
use crate::sharded::{give_back, Sharded};
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

/// The RFC 3261 magic cookie that marks a globally unique branch.
const MAGIC_COOKIE: &str = "z9hG4bK";

/// The branch of a request we send: the magic cookie and 16 lowercase hex
/// digits of a random number. Our client transactions are keyed by the
/// number, so starting one costs no string, and a response's branch is
/// read back with [`Branch::parse`]; a branch of any other shape is not
/// ours and matches nothing (RFC 3261 §17.1.3 compares branches exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Branch(pub u64);

impl Branch {
    /// Length of the text: cookie and 16 digits.
    const LEN: usize = MAGIC_COOKIE.len() + 16;

    /// Append the branch's text.
    pub fn push(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(MAGIC_COOKIE.as_bytes());
        buf.extend_from_slice(&crate::rng::hex16(self.0));
    }

    /// The branch a response's top Via carries, if it has our shape.
    pub fn parse(text: &str) -> Option<Branch> {
        let digits = text.strip_prefix(MAGIC_COOKIE)?.as_bytes();
        if text.len() != Branch::LEN {
            return None;
        }
        digits
            .iter()
            .try_fold(0u64, |n, &b| {
                let d = match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => return None,
                };
                Some(n << 4 | u64::from(d))
            })
            .map(Branch)
    }
}

impl std::fmt::Display for Branch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{MAGIC_COOKIE}{:016x}", self.0)
    }
}

/// Identifies a server transaction (RFC 3261 §17.2.3): the top Via's branch
/// (with the magic cookie) and sent-by, and the method (ACK matches INVITE,
/// which we never serve, so plain method equality is enough here). For a
/// request without the magic cookie (RFC 2543), the key is built from
/// Request-URI, To tag, From tag, Call-ID, CSeq and the top Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey(pub String);

impl ServerKey {
    /// The key of a request, or `None` if it has no readable top Via (or is
    /// not a request; or, for an RFC 2543 request without the magic cookie,
    /// if its From, To, Call-ID or CSeq is missing or unreadable, since the
    /// key could then match an unrelated request).
    pub fn of(req: &sip::Message<'_>) -> Option<ServerKey> {
        ServerKey::with_via(req, req.via().ok()??)
    }

    /// The same, given the request's top Via already read (as
    /// [`sip::Parsed`] keeps it), so it is not scanned again.
    pub fn with_via(req: &sip::Message<'_>, via: sip::Via<'_>) -> Option<ServerKey> {
        let method = req.method()?.as_str();
        let mut key = KeyBuilder::with_capacity(128);
        match via.branch {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => {
                key.kind(b'B');
                key.part(branch);
                // Host names compare case-insensitively; the branch does not.
                key.part_lowercase(via.host);
                match via.port {
                    Some(port) => key.number(u64::from(port)),
                    None => key.part(""),
                }
                key.part(method);
            }
            _ => {
                let uri = req.request_uri()?;
                let to = req.to().ok()??;
                let from = req.from().ok()??;
                let call_id = req.call_id().ok()??;
                let cseq = req.cseq().ok()??;
                key.kind(b'L');
                key.part(uri);
                key.part(to.tag().unwrap_or(""));
                key.part(from.tag().unwrap_or(""));
                key.part(call_id);
                key.number(u64::from(cseq.seq));
                key.part(cseq.method);
                key.part(via.raw);
            }
        }
        Some(key.finish())
    }
}

/// Builds a key in one buffer: a kind letter, then each part prefixed by
/// its length, so that no text in one part (a malformed Call-ID holding a
/// separator, say) can make two different requests produce the same key.
struct KeyBuilder(Vec<u8>);

impl KeyBuilder {
    fn with_capacity(cap: usize) -> Self {
        KeyBuilder(Vec::with_capacity(cap))
    }
    fn kind(&mut self, c: u8) {
        self.0.push(c);
    }
    /// Numbers are written without `fmt`: a key is built for every request.
    fn len_prefix(&mut self, len: usize) {
        sip::write::push_u64(&mut self.0, len as u64);
        self.0.push(b':');
    }
    fn part(&mut self, p: &str) {
        self.len_prefix(p.len());
        self.0.extend_from_slice(p.as_bytes());
    }
    fn part_lowercase(&mut self, p: &str) {
        // ASCII lowercasing keeps the byte length.
        self.len_prefix(p.len());
        self.0.extend(p.bytes().map(|b| b.to_ascii_lowercase()));
    }
    fn number(&mut self, n: u64) {
        // The ';' ends the digits, so the key stays uniquely readable.
        sip::write::push_u64(&mut self.0, n);
        self.0.push(b';');
    }
    fn finish(self) -> ServerKey {
        // Every part was a `str` and every added byte ASCII, so this is
        // UTF-8; the lossy path only keeps the function total.
        ServerKey(
            String::from_utf8(self.0)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }
}

/// What to do with an arriving request.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerAction {
    /// First sight: process it, then call [`ServerTransactions::respond`].
    New,
    /// Seen, not yet answered: drop it.
    Absorb,
    /// Answered already: send this again. The `u64` is the value given to
    /// `respond` (the engine uses it as the durability barrier).
    Resend(Transmit, u64),
}

/// The ordered deadlines of one table: `(when, seq) -> transaction id`. The
/// sequence number makes every entry unique and keeps ties cheap to order
/// (no string comparison).
struct Deadlines {
    by_time: BTreeMap<(Time, u64), Arc<str>>,
    next_seq: u64,
}

impl Deadlines {
    fn new() -> Self {
        Deadlines {
            by_time: BTreeMap::new(),
            next_seq: 0,
        }
    }
    fn insert(&mut self, at: Time, id: Arc<str>) -> (Time, u64) {
        let slot = (at, self.next_seq);
        self.next_seq += 1;
        self.by_time.insert(slot, id);
        slot
    }
    fn remove(&mut self, slot: (Time, u64)) {
        self.by_time.remove(&slot);
    }
    /// The earliest entry due at `now`, removed.
    fn pop_due(&mut self, now: Time) -> Option<Arc<str>> {
        let (&(at, _), _) = self.by_time.first_key_value()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first().map(|(_, id)| id)
    }
    fn first(&self) -> Option<Time> {
        self.by_time.first_key_value().map(|(&(at, _), _)| at)
    }
}

/// `64*T1`: Timers F and J.
fn sixty_four_t1(timers: &Timers) -> u64 {
    timers.t1.saturating_mul(64)
}

enum ServerState {
    Trying,
    Completed { response: Transmit, tag: u64 },
}

struct ServerEntry {
    state: ServerState,
    reliable: bool,
    timer: (Time, u64),
}

/// All server transactions.
pub struct ServerTransactions {
    timers: Timers,
    /// Sharded: over UDP it grows for Timer J's 32 s at the request rate,
    /// and one table's growth step stalled everything behind it.
    entries: Sharded<Arc<str>, ServerEntry>,
    deadlines: Deadlines,
}

impl ServerTransactions {
    /// Empty table.
    pub fn new(timers: Timers) -> Self {
        ServerTransactions {
            timers,
            entries: Sharded::new(),
            deadlines: Deadlines::new(),
        }
    }
    /// A request arrived. `reliable` is the transport's reliability.
    ///
    /// A new transaction waits in Trying for at most 64*T1. RFC 3261 gives
    /// Trying no timer because the TU always answers; here an answer can be
    /// lost (the engine dropped the request, or it failed before
    /// responding), and without a bound a flood of unanswered requests would
    /// grow the table forever. 64*T1 is Timer F of the client: by then the
    /// client has given up and will not retransmit, so nothing is lost by
    /// forgetting the request.
    pub fn on_request(&mut self, now: Time, key: &ServerKey, reliable: bool) -> ServerAction {
        if let Some(entry) = self.entries.get(key.0.as_str()) {
            return match &entry.state {
                ServerState::Trying => ServerAction::Absorb,
                ServerState::Completed { response, tag } => {
                    ServerAction::Resend(response.clone(), *tag)
                }
            };
        }
        let id: Arc<str> = Arc::from(key.0.as_str());
        let timer = self
            .deadlines
            .insert(now + sixty_four_t1(&self.timers), id.clone());
        self.entries.insert(
            id,
            ServerEntry {
                state: ServerState::Trying,
                reliable,
                timer,
            },
        );
        ServerAction::New
    }
    /// The final response to the transaction `key` (which must be `New`).
    ///
    /// Over a reliable transport the transaction ends here (Timer J is 0):
    /// a stream never duplicates a request, so a copy arriving later is a new
    /// request from the client's transaction layer, as RFC 3261 intends. A
    /// `key` that is unknown (never seen, or dropped from Trying after
    /// 64*T1) or already answered is ignored: the first answer stands.
    pub fn respond(&mut self, now: Time, key: &ServerKey, response: Transmit, tag: u64) {
        let Some((id, entry)) = self.entries.get_key_value(key.0.as_str()) else {
            return;
        };
        if !matches!(entry.state, ServerState::Trying) {
            return;
        }
        let (id, reliable, old) = (id.clone(), entry.reliable, entry.timer);
        self.deadlines.remove(old);
        if reliable {
            self.entries.remove(&*id);
            return;
        }
        let timer = self
            .deadlines
            .insert(now + sixty_four_t1(&self.timers), id.clone());
        if let Some(entry) = self.entries.get_mut(&*id) {
            entry.state = ServerState::Completed { response, tag };
            entry.timer = timer;
        }
    }
    /// Fire due timers (Timer J removes completed transactions).
    pub fn handle_timeout(&mut self, now: Time) {
        // Every server deadline (Timer J, or the Trying bound) ends the
        // transaction, so firing is just removal.
        while let Some(id) = self.deadlines.pop_due(now) {
            self.entries.remove(&*id);
        }
        self.entries.give_back();
    }
    /// The next deadline.
    pub fn next_timeout(&self) -> Option<Time> {
        self.deadlines.first()
    }
    /// Live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// No live transactions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a client transaction reports.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientEvent<C> {
    /// Send these bytes again (Timer E).
    Retransmit(Transmit),
    /// A final response arrived (reported once; retransmitted finals are absorbed).
    Final { ctx: C, code: u16 },
    /// No final response before Timer F: treat as 408.
    TimedOut { ctx: C },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Trying,
    Proceeding,
}

struct ClientEntry<C> {
    state: ClientState,
    request: Transmit,
    /// Taken when the final response or the time-out is reported.
    ctx: Option<C>,
    /// Timer E: when to retransmit next (`None` over reliable transports).
    timer_e: Option<Time>,
    /// The interval Timer E was last set with.
    interval_e: u64,
    /// Timer F.
    timer_f: Time,
    /// Its entry in the deadline heap: the earliest of the timers above.
    scheduled: Time,
}

impl<C> ClientEntry<C> {
    fn due(&self) -> Time {
        self.timer_e.map_or(self.timer_f, |e| e.min(self.timer_f))
    }
}

/// All client transactions; `C` is the caller's context for each (e.g. which
/// subscription the NOTIFY belongs to).
pub struct ClientTransactions<C> {
    timers: Timers,
    entries: HashMap<Branch, ClientEntry<C>, ahash::RandomState>,
    /// Deadlines, earliest on top. Nearly every NOTIFY is answered long
    /// before its first timer, so an ended or rescheduled transaction does
    /// not look for its entry here: the entry goes stale (its transaction
    /// is gone or now scheduled at another time) and is dropped when it
    /// reaches the top, or all at once when stale entries outnumber live
    /// ones. A push costs far less than an ordered map's insert and remove.
    deadlines: BinaryHeap<Reverse<(Time, Branch)>>,
}

impl<C: Clone> ClientTransactions<C> {
    /// Empty table.
    pub fn new(timers: Timers) -> Self {
        ClientTransactions {
            timers,
            entries: HashMap::default(),
            deadlines: BinaryHeap::new(),
        }
    }
    /// A request was just sent with this top-Via `branch`. Over UDP Timer E
    /// starts at T1 and doubles up to T2; Timer F fires at 64*T1 in any case.
    /// Starting a branch that is still live replaces that transaction (its
    /// context is dropped unreported); branches are ours to keep unique.
    pub fn start(&mut self, now: Time, branch: Branch, request: Transmit, ctx: C) {
        // A live branch being started again is replaced; its deadline
        // goes stale unless it falls at the same instant, where it stands
        // for the new one.
        let reliable = request.transport.reliable();
        // At least 1 ms, so a zero T1 can never make a timer fire again at
        // the instant it was set.
        let interval_e = self.timers.t1.max(1);
        let timer_e = if reliable {
            None
        } else {
            Some(now + interval_e)
        };
        let mut entry = ClientEntry {
            state: ClientState::Trying,
            request,
            ctx: Some(ctx),
            timer_e,
            interval_e,
            timer_f: now + sixty_four_t1(&self.timers),
            scheduled: now,
        };
        entry.scheduled = entry.due();
        self.deadlines.push(Reverse((entry.scheduled, branch)));
        self.entries.insert(branch, entry);
        self.prune();
        self.compact();
    }
    /// A response arrived whose top Via has this branch. Returns `Final` for
    /// the first final response; provisional responses move the transaction
    /// to Proceeding (retransmit every T2); anything unmatched returns `None`.
    pub fn on_response(&mut self, branch: &str, code: u16) -> Option<ClientEvent<C>> {
        let branch = Branch::parse(branch)?;
        let entry = self.entries.get_mut(&branch)?;
        if code < 200 {
            // Timer E keeps its current deadline; only its next interval
            // becomes T2 (RFC 3261 §17.1.2.2).
            entry.state = ClientState::Proceeding;
            return None;
        }
        // Over UDP too the transaction ends here (no Timer K: see the
        // module doc); a retransmission of this final matches nothing.
        let entry = self.entries.remove(&branch)?;
        self.prune();
        let ctx = entry.ctx?;
        Some(ClientEvent::Final { ctx, code })
    }
    /// Fire due timers, appending retransmissions and time-outs to `out`.
    pub fn handle_timeout(&mut self, now: Time, out: &mut Vec<ClientEvent<C>>) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.entries.get_mut(&id).filter(|e| e.scheduled == at) else {
                continue;
            };
            // Timer F wins a tie with Timer E: no point resending a request
            // we are giving up on.
            if entry.timer_f <= now {
                if let Some(ctx) = self.entries.remove(&id).and_then(|e| e.ctx) {
                    out.push(ClientEvent::TimedOut { ctx });
                }
                continue;
            }
            if entry.timer_e.is_some_and(|e| e <= now) {
                out.push(ClientEvent::Retransmit(entry.request.clone()));
                let t2 = self.timers.t2.max(1);
                entry.interval_e = match entry.state {
                    ClientState::Proceeding => t2,
                    _ => entry.interval_e.saturating_mul(2).min(t2),
                };
                // From `now`, not from the missed deadline: a late call
                // sends one copy rather than a burst of catch-up copies.
                entry.timer_e = Some(now + entry.interval_e);
            }
            entry.scheduled = entry.due();
            self.deadlines.push(Reverse((entry.scheduled, id)));
        }
        self.prune();
        give_back(&mut self.entries, 4096);
    }
    /// The next deadline.
    pub fn next_timeout(&self) -> Option<Time> {
        self.deadlines.peek().map(|&Reverse((at, _))| at)
    }
    /// Drop stale entries from the top, so [`Self::next_timeout`] is exact.
    fn prune(&mut self) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if self.entries.get(&id).is_some_and(|e| e.scheduled == at) {
                return;
            }
            self.deadlines.pop();
        }
    }
    /// Rebuild the heap with live entries only once stale ones outnumber
    /// them (amortised: at most once per as many pushes as are live).
    fn compact(&mut self) {
        if self.deadlines.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.deadlines
                .retain(|&Reverse((at, id))| entries.get(&id).is_some_and(|e| e.scheduled == at));
        }
    }
    /// Live transactions (waiting for a final response).
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// No live transactions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;
    use sip::message::Header;
    use sip::{HeaderName, Message, Method, StartLine};

    /// A branch, for tests that need only one.
    const B: Branch = Branch(0xab);

    /// An arbitrary wall-clock start, so nothing depends on time 0.
    const T0: Time = Time(1_700_000_000_000);

    fn at(ms: u64) -> Time {
        T0 + ms
    }

    fn transmit(transport: Transport, bytes: &[u8]) -> Transmit {
        Transmit {
            transport,
            local: "127.0.0.1:5060".parse().expect("literal address"),
            remote: "127.0.0.1:5070".parse().expect("literal address"),
            conn: None,
            bytes: bytes.to_vec(),
        }
    }

    fn key(s: &str) -> ServerKey {
        ServerKey(s.to_string())
    }

    fn timers(t1: u64, t2: u64, t4: u64) -> Timers {
        Timers { t1, t2, t4 }
    }

    // ---- ServerKey::of ----

    fn request<'a>(
        method: &'a str,
        uri: &'a str,
        headers: &[(HeaderName<'a>, &'a str)],
    ) -> Message<'a> {
        Message {
            start: StartLine::Request {
                method: Method::from_token(method),
                uri,
                version: "SIP/2.0",
            },
            headers: headers
                .iter()
                .map(|&(name, value)| Header { name, value })
                .collect(),
            body: b"",
        }
    }

    fn subscribe<'a>(method: &'a str, via: &'a str, cseq: &'a str) -> Message<'a> {
        request(
            method,
            "sip:line1@example.com",
            &[
                (HeaderName::Via, via),
                (HeaderName::From, "<sip:alice@example.com>;tag=f1"),
                (HeaderName::To, "<sip:line1@example.com>"),
                (HeaderName::CallId, "abc@10.0.0.1"),
                (HeaderName::CSeq, cseq),
            ],
        )
    }

    #[test]
    fn key_from_branch_sent_by_and_method() {
        let via = "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-1";
        let a = ServerKey::of(&subscribe("SUBSCRIBE", via, "1 SUBSCRIBE")).expect("has a Via");
        // A retransmission is the same transaction even if other fields vary.
        let again = ServerKey::of(&subscribe("SUBSCRIBE", via, "1 SUBSCRIBE")).expect("has a Via");
        assert_eq!(a, again);
        // RFC 3261 matching ignores CSeq when the branch carries the cookie.
        let other_cseq =
            ServerKey::of(&subscribe("SUBSCRIBE", via, "2 SUBSCRIBE")).expect("has a Via");
        assert_eq!(a, other_cseq);
        // Host names compare case-insensitively.
        let host_a = ServerKey::of(&subscribe(
            "SUBSCRIBE",
            "SIP/2.0/UDP PHONE.example.com;branch=z9hG4bK-1",
            "1 SUBSCRIBE",
        ));
        let host_b = ServerKey::of(&subscribe(
            "SUBSCRIBE",
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bK-1",
            "1 SUBSCRIBE",
        ));
        assert_eq!(host_a, host_b);
        assert!(host_a.is_some());

        let different = [
            ServerKey::of(&subscribe(
                "SUBSCRIBE",
                "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-2",
                "1 SUBSCRIBE",
            )),
            ServerKey::of(&subscribe(
                "SUBSCRIBE",
                "SIP/2.0/UDP 10.0.0.1:5063;branch=z9hG4bK-1",
                "1 SUBSCRIBE",
            )),
            ServerKey::of(&subscribe(
                "SUBSCRIBE",
                "SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK-1",
                "1 SUBSCRIBE",
            )),
            ServerKey::of(&subscribe(
                "SUBSCRIBE",
                "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1",
                "1 SUBSCRIBE",
            )),
            // Same branch, other method (e.g. a CANCEL) is another transaction.
            ServerKey::of(&subscribe("CANCEL", via, "1 CANCEL")),
            // The branch is case-sensitive.
            ServerKey::of(&subscribe(
                "SUBSCRIBE",
                "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK-1X",
                "1 SUBSCRIBE",
            )),
        ];
        for d in different {
            let d = d.expect("has a Via");
            assert_ne!(d, a, "{d:?} must differ from {a:?}");
        }
    }

    #[test]
    fn key_rfc2543_fallback_uses_dialog_fields_and_cseq() {
        let via = "SIP/2.0/UDP 10.0.0.1:5062;branch=old-style-1";
        let a = ServerKey::of(&subscribe("SUBSCRIBE", via, "1 SUBSCRIBE")).expect("readable");
        let again = ServerKey::of(&subscribe("SUBSCRIBE", via, "1 SUBSCRIBE")).expect("readable");
        assert_eq!(a, again);
        let no_branch = ServerKey::of(&subscribe(
            "SUBSCRIBE",
            "SIP/2.0/UDP 10.0.0.1:5062",
            "1 SUBSCRIBE",
        ));
        assert!(no_branch.is_some());
        assert_ne!(no_branch, Some(a.clone()));
        let next_cseq =
            ServerKey::of(&subscribe("SUBSCRIBE", via, "2 SUBSCRIBE")).expect("readable");
        assert_ne!(next_cseq, a);
        let other_uri = request(
            "SUBSCRIBE",
            "sip:line2@example.com",
            &[
                (HeaderName::Via, via),
                (HeaderName::From, "<sip:alice@example.com>;tag=f1"),
                (HeaderName::To, "<sip:line1@example.com>"),
                (HeaderName::CallId, "abc@10.0.0.1"),
                (HeaderName::CSeq, "1 SUBSCRIBE"),
            ],
        );
        assert_ne!(ServerKey::of(&other_uri).expect("readable"), a);
        let with_to_tag = request(
            "SUBSCRIBE",
            "sip:line1@example.com",
            &[
                (HeaderName::Via, via),
                (HeaderName::From, "<sip:alice@example.com>;tag=f1"),
                (HeaderName::To, "<sip:line1@example.com>;tag=t9"),
                (HeaderName::CallId, "abc@10.0.0.1"),
                (HeaderName::CSeq, "1 SUBSCRIBE"),
            ],
        );
        assert_ne!(ServerKey::of(&with_to_tag).expect("readable"), a);
        // Without a Call-ID an old-style request cannot be told apart.
        let no_call_id = request(
            "SUBSCRIBE",
            "sip:line1@example.com",
            &[
                (HeaderName::Via, via),
                (HeaderName::From, "<sip:alice@example.com>;tag=f1"),
                (HeaderName::To, "<sip:line1@example.com>"),
                (HeaderName::CSeq, "1 SUBSCRIBE"),
            ],
        );
        assert_eq!(ServerKey::of(&no_call_id), None);
    }

    #[test]
    fn key_needs_a_via_and_a_request() {
        let no_via = request(
            "SUBSCRIBE",
            "sip:line1@example.com",
            &[
                (HeaderName::CallId, "abc"),
                (HeaderName::CSeq, "1 SUBSCRIBE"),
            ],
        );
        assert_eq!(ServerKey::of(&no_via), None);
        let bad_via = subscribe("SUBSCRIBE", "garbage", "1 SUBSCRIBE");
        assert_eq!(ServerKey::of(&bad_via), None);
        let response = Message {
            start: StartLine::Response {
                code: 200,
                reason: "OK",
                version: "SIP/2.0",
            },
            headers: vec![Header {
                name: HeaderName::Via,
                value: "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-1",
            }],
            body: b"",
        };
        assert_eq!(ServerKey::of(&response), None);
    }

    #[test]
    fn key_of_parsed_datagrams() {
        let long = b"SUBSCRIBE sip:line1@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport\r\n\
From: <sip:alice@example.com>;tag=f1\r\n\
To: <sip:line1@example.com>\r\n\
Call-ID: c1@10.0.0.1\r\n\
CSeq: 7 SUBSCRIBE\r\n\
Event: call-info\r\n\
Content-Length: 0\r\n\r\n";
        // The same request with compact header names and other spacing.
        let compact = b"SUBSCRIBE sip:line1@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5062 ;branch=z9hG4bKabc;rport\r\n\
f: <sip:alice@example.com>;tag=f1\r\n\
t: <sip:line1@example.com>\r\n\
i: c1@10.0.0.1\r\n\
CSeq: 7 SUBSCRIBE\r\n\
o: call-info\r\n\
l: 0\r\n\r\n";
        let a = sip::parse(long, false).expect("valid request");
        let b = sip::parse(compact, false).expect("valid request");
        let ka = ServerKey::of(&a).expect("has a Via");
        assert_eq!(Some(ka.clone()), ServerKey::of(&b));
        let mut st = ServerTransactions::new(Timers::default());
        assert_eq!(st.on_request(at(0), &ka, false), ServerAction::New);
        let kb = ServerKey::of(&b).expect("has a Via");
        assert_eq!(st.on_request(at(500), &kb, false), ServerAction::Absorb);
    }

    // ---- ServerTransactions ----

    #[test]
    fn server_absorbs_until_answered_then_resends_the_answer() {
        let mut st = ServerTransactions::new(Timers::default());
        let k = key("a");
        assert_eq!(st.on_request(at(0), &k, false), ServerAction::New);
        assert_eq!(st.on_request(at(400), &k, false), ServerAction::Absorb);
        assert_eq!(st.on_request(at(900), &k, false), ServerAction::Absorb);
        let ok = transmit(Transport::Udp, b"SIP/2.0 200 OK\r\n\r\n");
        st.respond(at(1000), &k, ok.clone(), 7);
        assert_eq!(
            st.on_request(at(1500), &k, false),
            ServerAction::Resend(ok.clone(), 7)
        );
        assert_eq!(
            st.on_request(at(2500), &k, false),
            ServerAction::Resend(ok, 7)
        );
        // Another request is untouched by all this.
        assert_eq!(st.on_request(at(2500), &key("b"), false), ServerAction::New);
        assert_eq!(st.len(), 2);
    }

    #[test]
    fn server_second_respond_does_not_replace_the_first() {
        let mut st = ServerTransactions::new(Timers::default());
        let k = key("a");
        st.on_request(at(0), &k, false);
        let first = transmit(Transport::Udp, b"first");
        st.respond(at(10), &k, first.clone(), 1);
        st.respond(at(20), &k, transmit(Transport::Udp, b"second"), 2);
        assert_eq!(
            st.on_request(at(30), &k, false),
            ServerAction::Resend(first, 1)
        );
        assert_eq!(st.next_timeout(), Some(at(10 + 32_000)));
        // Answering a request never seen creates nothing.
        st.respond(at(40), &key("ghost"), transmit(Transport::Udp, b"x"), 3);
        assert_eq!(st.len(), 1);
    }

    #[test]
    fn server_timer_j_fires_at_exactly_64_t1_after_the_answer() {
        let mut st = ServerTransactions::new(Timers::default());
        let k = key("a");
        assert_eq!(st.next_timeout(), None);
        st.on_request(at(0), &k, false);
        assert_eq!(st.next_timeout(), Some(at(32_000)));
        let ok = transmit(Transport::Udp, b"200");
        st.respond(at(100), &k, ok.clone(), 5);
        assert_eq!(st.next_timeout(), Some(at(100 + 32_000)));

        st.handle_timeout(at(100 + 31_999));
        assert_eq!(st.len(), 1);
        assert_eq!(
            st.on_request(at(100 + 31_999), &k, false),
            ServerAction::Resend(ok, 5)
        );
        assert_eq!(st.next_timeout(), Some(at(100 + 32_000)));

        st.handle_timeout(at(100 + 32_000));
        assert!(st.is_empty());
        assert_eq!(st.next_timeout(), None);
        // Gone: the same key is a new transaction again.
        assert_eq!(
            st.on_request(at(100 + 32_001), &k, false),
            ServerAction::New
        );
    }

    #[test]
    fn server_reliable_transaction_ends_at_the_answer() {
        let mut st = ServerTransactions::new(Timers::default());
        let k = key("tcp");
        assert_eq!(st.on_request(at(0), &k, true), ServerAction::New);
        assert_eq!(st.on_request(at(1), &k, true), ServerAction::Absorb);
        st.respond(at(2), &k, transmit(Transport::Tcp, b"200"), 1);
        assert!(st.is_empty());
        assert_eq!(st.next_timeout(), None);
        // Over TCP a copy after the answer is a new request (Timer J is 0).
        assert_eq!(st.on_request(at(3), &k, true), ServerAction::New);
    }

    #[test]
    fn server_unanswered_request_is_dropped_after_64_t1() {
        let mut st = ServerTransactions::new(Timers::default());
        let (a, b) = (key("a"), key("b"));
        st.on_request(at(0), &a, false);
        st.on_request(at(10), &b, true);
        assert_eq!(st.next_timeout(), Some(at(32_000)));
        st.handle_timeout(at(31_999));
        assert_eq!(st.len(), 2);
        st.handle_timeout(at(32_000));
        assert_eq!(st.len(), 1);
        assert_eq!(st.next_timeout(), Some(at(32_010)));
        st.handle_timeout(at(32_010));
        assert!(st.is_empty());
        assert_eq!(st.next_timeout(), None);
        // A late answer to a dropped transaction is ignored.
        st.respond(at(32_020), &a, transmit(Transport::Udp, b"200"), 1);
        assert!(st.is_empty());
    }

    #[test]
    fn server_next_timeout_follows_rescheduling() {
        let mut st = ServerTransactions::new(Timers::default());
        let (a, b) = (key("a"), key("b"));
        st.on_request(at(0), &a, false);
        st.on_request(at(10), &b, false);
        assert_eq!(st.next_timeout(), Some(at(32_000)));
        // Answering `a` moves its deadline past `b`'s.
        st.respond(at(20), &a, transmit(Transport::Udp, b"200"), 1);
        assert_eq!(st.next_timeout(), Some(at(32_010)));
        st.handle_timeout(at(32_010));
        assert_eq!(st.len(), 1);
        assert_eq!(st.next_timeout(), Some(at(32_020)));
        // Extra calls do nothing.
        st.handle_timeout(at(32_010));
        assert_eq!(st.len(), 1);
        st.handle_timeout(at(32_020));
        assert!(st.is_empty());
    }

    #[test]
    fn server_custom_t1() {
        let mut st = ServerTransactions::new(timers(100, 400, 500));
        let k = key("a");
        st.on_request(at(0), &k, false);
        assert_eq!(st.next_timeout(), Some(at(6_400)));
        st.respond(at(50), &k, transmit(Transport::Udp, b"200"), 1);
        assert_eq!(st.next_timeout(), Some(at(6_450)));
        st.handle_timeout(at(6_449));
        assert_eq!(st.len(), 1);
        st.handle_timeout(at(6_450));
        assert!(st.is_empty());
    }

    #[test]
    fn server_100k_transactions_all_expire() {
        let mut st = ServerTransactions::new(Timers::default());
        let n = 100_000u64;
        for i in 0..n {
            let k = ServerKey(format!("Bz9hG4bK-{i}"));
            assert_eq!(
                st.on_request(at(i % 1000), &k, i % 3 == 0),
                ServerAction::New
            );
            if i % 2 == 0 {
                st.respond(at(i % 1000 + 5), &k, transmit(Transport::Udp, b"200"), i);
            }
        }
        // Reliable and answered ones (i % 6 == 0) are gone already.
        assert_eq!(st.len() as u64, n - n.div_ceil(6));
        st.handle_timeout(at(20_000));
        assert_eq!(st.len() as u64, n - n.div_ceil(6));
        st.handle_timeout(at(32_000 + 1_005));
        assert!(st.is_empty());
        assert_eq!(st.next_timeout(), None);
    }

    // ---- ClientTransactions ----

    /// Drives `ct` by jumping to each deadline in turn until it is empty or
    /// `until` is passed; returns each event with the time it came out.
    fn drive<C: Clone>(ct: &mut ClientTransactions<C>, until: Time) -> Vec<(Time, ClientEvent<C>)> {
        let mut seen = Vec::new();
        while let Some(t) = ct.next_timeout() {
            if t > until {
                break;
            }
            let mut out = Vec::new();
            ct.handle_timeout(t, &mut out);
            assert!(
                !matches!(ct.next_timeout(), Some(n) if n <= t),
                "deadline did not move on"
            );
            seen.extend(out.into_iter().map(|e| (t, e)));
        }
        seen
    }

    fn retransmit_times<C>(events: &[(Time, ClientEvent<C>)]) -> Vec<u64> {
        events
            .iter()
            .filter(|(_, e)| matches!(e, ClientEvent::Retransmit(_)))
            .map(|(t, _)| *t - T0)
            .collect()
    }

    #[test]
    fn client_udp_retransmits_on_t1_doubling_capped_at_t2_then_times_out() {
        let mut ct = ClientTransactions::new(Timers::default());
        let notify = transmit(Transport::Udp, b"NOTIFY sip:a SIP/2.0\r\n\r\n");
        ct.start(at(0), Branch(0x1a), notify.clone(), "sub-1");
        assert_eq!(ct.len(), 1);

        // next_timeout after each step.
        let expected = [
            500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
        ];
        let mut events = Vec::new();
        for &t in &expected {
            assert_eq!(ct.next_timeout(), Some(at(t)));
            // Nothing is due a millisecond early.
            let mut out = Vec::new();
            ct.handle_timeout(at(t - 1), &mut out);
            assert!(out.is_empty());
            ct.handle_timeout(at(t), &mut out);
            assert_eq!(out, vec![ClientEvent::Retransmit(notify.clone())]);
            events.extend(out);
        }
        assert_eq!(ct.next_timeout(), Some(at(32_000)));
        let mut out = Vec::new();
        ct.handle_timeout(at(32_000), &mut out);
        assert_eq!(out, vec![ClientEvent::TimedOut { ctx: "sub-1" }]);
        assert!(ct.is_empty());
        assert_eq!(ct.next_timeout(), None);
        // Reported once.
        out.clear();
        ct.handle_timeout(at(100_000), &mut out);
        assert!(out.is_empty());
        // And no response can bring it back.
        assert_eq!(ct.on_response(&Branch(0x1a).to_string(), 200), None);
    }

    #[test]
    fn client_schedule_with_custom_timers() {
        let mut ct = ClientTransactions::new(timers(100, 300, 1_000));
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), 1u32);
        let events = drive(&mut ct, at(1_000_000));
        let mut expected = vec![100, 300];
        expected.extend((600..=6_300).step_by(300));
        assert_eq!(retransmit_times(&events), expected);
        let timeouts: Vec<_> = events
            .iter()
            .filter(|(_, e)| matches!(e, ClientEvent::TimedOut { .. }))
            .collect();
        assert_eq!(timeouts.len(), 1);
        assert_eq!(timeouts[0].0, at(6_400));
        assert!(ct.is_empty());
    }

    #[test]
    fn client_tcp_never_retransmits_and_times_out_on_timer_f() {
        let mut ct = ClientTransactions::new(Timers::default());
        ct.start(at(0), B, transmit(Transport::Tcp, b"N"), 'x');
        assert_eq!(ct.next_timeout(), Some(at(32_000)));
        let mut out = Vec::new();
        ct.handle_timeout(at(31_999), &mut out);
        assert!(out.is_empty());
        assert_eq!(ct.len(), 1);
        ct.handle_timeout(at(32_000), &mut out);
        assert_eq!(out, vec![ClientEvent::TimedOut { ctx: 'x' }]);
        assert!(ct.is_empty());
        assert_eq!(ct.next_timeout(), None);
    }

    #[test]
    fn client_provisional_moves_to_t2_interval_and_final_is_reported_once() {
        let mut ct = ClientTransactions::new(Timers::default());
        let n = transmit(Transport::Udp, b"N");
        ct.start(at(0), B, n.clone(), 42u64);
        let mut out = Vec::new();
        ct.handle_timeout(at(500), &mut out);
        assert_eq!(out, vec![ClientEvent::Retransmit(n.clone())]);
        assert_eq!(ct.on_response(&B.to_string(), 100), None);
        // The pending Timer E is kept; only the next interval becomes T2.
        assert_eq!(ct.next_timeout(), Some(at(1_500)));
        let events = drive(&mut ct, at(9_500));
        assert_eq!(retransmit_times(&events), vec![1_500, 5_500, 9_500]);
        assert_eq!(ct.next_timeout(), Some(at(13_500)));

        assert_eq!(
            ct.on_response(&B.to_string(), 200),
            Some(ClientEvent::Final { ctx: 42, code: 200 })
        );
        // Retransmissions of the final and late provisionals are absorbed:
        // the transaction is over, over UDP too (no Timer K, see the module
        // doc), with no more retransmissions and no time-out.
        assert_eq!(ct.on_response(&B.to_string(), 200), None);
        assert_eq!(ct.on_response(&B.to_string(), 180), None);
        assert!(ct.is_empty());
        assert_eq!(ct.next_timeout(), None);
        out.clear();
        ct.handle_timeout(at(100_000), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn client_final_before_any_retransmission_stops_them() {
        let mut ct = ClientTransactions::new(Timers::default());
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), "c");
        assert_eq!(
            ct.on_response(&B.to_string(), 481),
            Some(ClientEvent::Final {
                ctx: "c",
                code: 481
            })
        );
        let events = drive(&mut ct, at(1_000_000));
        assert!(events.is_empty(), "{events:?}");
        assert!(ct.is_empty());
    }

    #[test]
    fn client_final_over_tcp_ends_the_transaction() {
        let mut ct = ClientTransactions::new(Timers::default());
        ct.start(at(0), B, transmit(Transport::Tcp, b"N"), 9);
        assert_eq!(ct.on_response(&B.to_string(), 180), None);
        assert_eq!(ct.len(), 1);
        assert_eq!(
            ct.on_response(&B.to_string(), 200),
            Some(ClientEvent::Final { ctx: 9, code: 200 })
        );
        assert!(ct.is_empty());
        assert_eq!(ct.next_timeout(), None);
        assert_eq!(ct.on_response(&B.to_string(), 200), None);
    }

    #[test]
    fn client_unknown_branch_is_ignored() {
        let mut ct = ClientTransactions::new(Timers::default());
        assert_eq!(ct.on_response("nope", 200), None::<ClientEvent<u8>>);
        assert_eq!(
            ct.on_response("z9hG4bK000000000000000b", 200),
            None::<ClientEvent<u8>>
        );
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), 1u8);
        // Exact match only: upper-case digits, an extra or a missing
        // character, another cookie.
        assert_eq!(ct.on_response(&B.to_string().to_uppercase(), 200), None);
        assert_eq!(ct.on_response(&format!("z9hG4bK{:016X}", 0xabc), 200), None);
        assert_eq!(ct.on_response(&format!("{B}-other"), 200), None);
        assert_eq!(ct.on_response(&B.to_string()[..22], 200), None);
        assert_eq!(ct.on_response(&format!("z9hG4bk{:016x}", B.0), 200), None);
        assert_eq!(ct.len(), 1);
        assert_eq!(
            ct.on_response(&B.to_string(), 200),
            Some(ClientEvent::Final { ctx: 1, code: 200 })
        );
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), 1u8);
        assert_eq!(ct.len(), 1);
        assert_eq!(ct.next_timeout(), Some(at(500)));
    }

    #[test]
    fn client_late_call_sends_one_copy_not_a_burst() {
        let mut ct = ClientTransactions::new(Timers::default());
        let n = transmit(Transport::Udp, b"N");
        ct.start(at(0), B, n.clone(), 0);
        let mut out = Vec::new();
        ct.handle_timeout(at(10_000), &mut out);
        assert_eq!(out, vec![ClientEvent::Retransmit(n)]);
        // The next copy is one doubled interval after this call.
        assert_eq!(ct.next_timeout(), Some(at(11_000)));
    }

    #[test]
    fn client_next_timeout_is_the_earliest_across_transactions() {
        let mut ct = ClientTransactions::new(Timers::default());
        ct.start(at(0), Branch(1), transmit(Transport::Udp, b"N"), 1);
        ct.start(at(100), Branch(2), transmit(Transport::Tcp, b"N"), 2);
        assert_eq!(ct.next_timeout(), Some(at(500)));
        assert_eq!(
            ct.on_response(&Branch(1).to_string(), 200),
            Some(ClientEvent::Final { ctx: 1, code: 200 })
        );
        // The UDP one ended with its final; the TCP one's Timer F is next.
        assert_eq!(ct.next_timeout(), Some(at(32_100)));
        let events = drive(&mut ct, at(1_000_000));
        let kinds: Vec<_> = events.iter().map(|(t, e)| (*t - T0, e)).collect();
        assert_eq!(kinds, vec![(32_100, &ClientEvent::TimedOut { ctx: 2 })]);
        assert!(ct.is_empty());
    }

    #[test]
    fn client_restart_of_a_live_branch_replaces_it() {
        let mut ct = ClientTransactions::new(Timers::default());
        ct.start(at(0), B, transmit(Transport::Udp, b"old"), "old");
        ct.start(at(100), B, transmit(Transport::Udp, b"new"), "new");
        assert_eq!(ct.len(), 1);
        assert_eq!(ct.next_timeout(), Some(at(600)));
        let events = drive(&mut ct, at(1_000_000));
        assert!(events.iter().all(|(_, e)| match e {
            ClientEvent::Retransmit(t) => t.bytes == b"new",
            ClientEvent::TimedOut { ctx } => *ctx == "new",
            ClientEvent::Final { .. } => false,
        }));
        assert_eq!(
            events
                .iter()
                .filter(|(_, e)| matches!(e, ClientEvent::TimedOut { .. }))
                .count(),
            1
        );
    }

    #[test]
    fn client_zero_timers_do_not_spin() {
        let mut ct = ClientTransactions::new(timers(0, 0, 0));
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), ());
        let mut out = Vec::new();
        ct.handle_timeout(at(0), &mut out);
        assert_eq!(out, vec![ClientEvent::TimedOut { ctx: () }]);
        assert!(ct.is_empty());
        // T1 > 0 but T2 = 0: retransmits at most once per ms until Timer F.
        let mut ct = ClientTransactions::new(timers(1, 0, 0));
        ct.start(at(0), B, transmit(Transport::Udp, b"N"), ());
        let events = drive(&mut ct, at(1_000));
        assert_eq!(retransmit_times(&events), (1..64).collect::<Vec<_>>());
        assert!(ct.is_empty());
    }

    #[test]
    fn answered_transactions_leave_no_pile_of_deadlines() {
        let mut ct = ClientTransactions::new(Timers::default());
        // One stays live throughout; 50 000 others are each answered at once.
        ct.start(at(0), Branch(1), transmit(Transport::Tcp, b"N"), 0u32);
        for i in 2..50_002u64 {
            let t = if i % 2 == 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            ct.start(at(i / 100), Branch(i), transmit(t, b"N"), 1);
            assert_eq!(
                ct.on_response(&Branch(i).to_string(), 200),
                Some(ClientEvent::Final { ctx: 1, code: 200 })
            );
            // Compaction runs when a start pushes it past 2 live + 1024.
            assert!(
                ct.deadlines.len() <= 2 * (ct.len() + 1) + 1025,
                "{}",
                ct.deadlines.len()
            );
        }
        assert_eq!(ct.len(), 1);
        // The stale ones never fire and never hide the live deadline.
        assert_eq!(ct.next_timeout(), Some(at(32_000)));
        let events = drive(&mut ct, at(1_000_000));
        let kinds: Vec<_> = events.iter().map(|(t, e)| (*t - T0, e)).collect();
        assert_eq!(kinds, vec![(32_000, &ClientEvent::TimedOut { ctx: 0 })]);
    }

    #[test]
    fn client_100k_transactions_all_end() {
        let mut ct = ClientTransactions::new(Timers::default());
        let n = 100_000u32;
        for i in 0..n {
            let transport = if i % 2 == 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            ct.start(
                at(u64::from(i % 1000)),
                Branch(u64::from(i) << 32 | 0xfff),
                transmit(transport, b"N"),
                i,
            );
        }
        assert_eq!(ct.len(), n as usize);
        let mut finals = 0;
        for i in (0..n).step_by(4) {
            if let Some(ClientEvent::Final { .. }) =
                ct.on_response(&Branch(u64::from(i) << 32 | 0xfff).to_string(), 200)
            {
                finals += 1;
            }
        }
        assert_eq!(finals, n / 4);
        // Answered ones are over; the rest are live.
        assert_eq!(ct.len(), (n - n / 4) as usize);
        let mut out = Vec::new();
        ct.handle_timeout(at(40_000), &mut out);
        assert!(ct.is_empty());
        assert_eq!(ct.next_timeout(), None);
        let timed_out = out
            .iter()
            .filter(|e| matches!(e, ClientEvent::TimedOut { .. }))
            .count();
        assert_eq!(timed_out, (n - n / 4) as usize);
    }
}
