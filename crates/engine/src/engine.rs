//! The [`Engine`] facade: it parses what arrives, runs the checks every
//! request gets (RFC 3261 §8.2), absorbs retransmissions, hands PUBLISH to
//! `publish.rs` and SUBSCRIBE to `subscribe.rs`, and keeps the two queues
//! the shell drains: store batches and transmissions.
//!
//! Durability: everything an input changes is written as one
//! [`StoreBatch`]; every transmission that input causes waits in a FIFO
//! behind that batch and leaves only once the store has acknowledged it. So
//! a 200 is never sent for something a crash could lose, and a NOTIFY never
//! carries a CSeq the store has not kept.

use crate::config::Config;
use crate::expiry::{Expiries, Expiry};
use crate::net::{ConnId, Source, Transmit, Transport};
use crate::package::{PackageCx, Packages, PubState, Reject, Rendered, ResourceView, SubData};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::store::{PublicationRecord, Snapshot, StoreBatch, StoreOp};
use crate::subscription::{SubKey, Subscription, Subscriptions};
use crate::time::Time;
use crate::transaction::{
    ClientEvent, ClientTransactions, ServerAction, ServerKey, ServerTransactions,
};
use crate::Output;
use sip::{HeaderName, Message, Method, Parsed, ResponseWriter};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use tracing::debug;

/// Methods we serve (the Allow header).
/// How far back a restart looks for changes whose NOTIFYs may have been
/// lost with the process (milliseconds); see `restore`.
const RESYNC_WINDOW: u64 = 5 * 60 * 1000;

pub(crate) const ALLOW: &str = "OPTIONS, SUBSCRIBE, PUBLISH";

/// A live publication.
pub(crate) struct Publication {
    pub(crate) rec: PublicationRecord,
    pub(crate) state: PubState,
    /// Tie-breaker among claims made in the same millisecond.
    pub(crate) order: u64,
}

/// Everything live on one resource (AOR).
pub(crate) struct Resource {
    /// The resource's name, shared with its subscriptions.
    pub(crate) name: Arc<str>,
    pub(crate) host: String,
    pub(crate) pubs: BTreeSet<String>,
    pub(crate) subs: BTreeSet<SubKey>,
    /// Last state rendered per shared-state package, to notify only on change.
    pub(crate) shared: Vec<(&'static str, Arc<Rendered>)>,
}

/// Context of one of our NOTIFY transactions.
#[derive(Debug, Clone)]
pub(crate) struct NotifyCtx {
    pub(crate) sub: SubKey,
    pub(crate) terminal: bool,
}

/// The presence server's state machine. See the crate docs for the protocol
/// between the engine and its shell.
pub struct Engine {
    pub(crate) cfg: Config,
    pub(crate) packages: Packages,
    pub(crate) rng: Rng,
    pub(crate) server_tx: ServerTransactions,
    pub(crate) client_tx: ClientTransactions<NotifyCtx>,
    pub(crate) resources: HashMap<Arc<str>, Resource, ahash::RandomState>,
    pub(crate) pubs: HashMap<String, Publication, ahash::RandomState>,
    /// ETag → publication id.
    pub(crate) etags: HashMap<String, String, ahash::RandomState>,
    pub(crate) subs: Subscriptions,
    pub(crate) expiries: Expiries,
    pub(crate) order: u64,
    /// Live subscriptions per source address (for the per-source quota).
    pub(crate) per_source: HashMap<IpAddr, usize, ahash::RandomState>,
    /// Live subscriptions, not counting ending ones.
    pub(crate) live_subs: usize,
    /// NOTIFY transactions open now.
    pub(crate) notifies_in_flight: usize,
    /// Subscriptions waiting for a NOTIFY slot, oldest first.
    pub(crate) waiting: VecDeque<SubKey>,
    /// Refusals for overload, logged once per interval: reason → (last log, suppressed).
    overload_log: HashMap<&'static str, (Time, u64)>,
    pub(crate) stats: Stats,
    /// Lines changed since the shell last asked (`None`: nobody asks).
    events: Option<Vec<String>>,
    /// Writes of the input being handled.
    ops: Vec<StoreOp>,
    /// Transmissions of the input being handled.
    staged: Vec<Transmit>,
    /// The seq the current input's batch gets if it writes anything.
    pub(crate) cur_seq: u64,
    last_seq: u64,
    durable: u64,
    batches: VecDeque<StoreBatch>,
    out: VecDeque<(u64, Transmit)>,
    client_events: Vec<ClientEvent<NotifyCtx>>,
}

impl Engine {
    /// A new engine. `seed` drives every random choice (tags, branches,
    /// ETags), so two engines with the same seed and inputs behave alike.
    pub fn new(config: Config, seed: u64) -> Engine {
        Engine {
            packages: Packages::new(&config.package_limits),
            server_tx: ServerTransactions::new(config.timers),
            client_tx: ClientTransactions::new(config.timers),
            cfg: config,
            rng: Rng::new(seed),
            resources: HashMap::default(),
            pubs: HashMap::default(),
            etags: HashMap::default(),
            subs: Subscriptions::default(),
            expiries: Expiries::default(),
            order: 0,
            per_source: HashMap::default(),
            live_subs: 0,
            notifies_in_flight: 0,
            waiting: VecDeque::new(),
            overload_log: HashMap::new(),
            stats: Stats::default(),
            events: None,
            ops: Vec::new(),
            staged: Vec::new(),
            cur_seq: 1,
            last_seq: 0,
            durable: 0,
            batches: VecDeque::new(),
            out: VecDeque::new(),
            client_events: Vec::new(),
        }
    }

    /// Load what the store held at start. Anything already expired at `now`
    /// is processed at once (watchers told, seizes released).
    pub fn restore(&mut self, now: Time, snapshot: Snapshot) {
        self.begin();
        let mut pubs = snapshot.publications;
        pubs.sort_by(|a, b| (a.changed_at, &a.id).cmp(&(b.changed_at, &b.id)));
        for rec in pubs {
            let Ok(state) = serde_json::from_str::<PubState>(&rec.state) else {
                tracing::warn!(id = %rec.id, "stored publication has unreadable state; dropped");
                self.ops.push(StoreOp::DeletePublication(rec.id));
                continue;
            };
            let order = self.next_order();
            self.insert_publication(Publication { rec, state, order });
        }
        let snapshot_changed = snapshot.resources_changed;
        let mut subs = snapshot.subscriptions;
        subs.sort_by(|a, b| (a.changed_at, &a.id).cmp(&(b.changed_at, &b.id)));
        for rec in subs {
            let Ok(data) = serde_json::from_str::<SubData>(&rec.state) else {
                tracing::warn!(id = %rec.id, "stored subscription has unreadable state; dropped");
                self.ops.push(StoreOp::DeleteSubscription(rec.id));
                continue;
            };
            let Some((pkg, _)) = self.packages.get(&rec.package) else {
                tracing::warn!(id = %rec.id, package = %rec.package, "stored subscription of an unknown package; dropped");
                self.ops.push(StoreOp::DeleteSubscription(rec.id));
                continue;
            };
            let package = pkg.name();
            let order = self.next_order();
            let resource = self.intern(&rec.resource);
            let source = self.subs.compact(rec.source);
            self.insert_subscription(Subscription::from_record(
                rec, source, package, resource, data, order,
            ));
        }
        // Prime the shared-state caches so the first change after the restart
        // is compared with what watchers were last sent.
        let resources: Vec<Arc<str>> = self.resources.keys().cloned().collect();
        for r in resources {
            self.refresh_shared_cache(&r);
        }
        self.expire(now);
        // A change is stored before its NOTIFYs leave, so NOTIFYs owed
        // shortly before a crash may never have reached their watchers (or
        // were never sent). Send the state again to every watcher of a
        // resource that changed within the window, and to subscriptions
        // made or refreshed within it (their first NOTIFY is owed too).
        // Older changes had their answers or their Timer F (64*T1) long
        // ago; the window is wider than that because under load a NOTIFY
        // can wait its turn behind `max_notifies_in_flight`.
        let window = RESYNC_WINDOW.max(64 * self.cfg.timers.t1);
        // A line changed when the store said so, or when one of its
        // publications did (those changes write no separate row).
        let mut changed: HashMap<&str, Time> = snapshot_changed
            .iter()
            .map(|(r, at)| (r.as_str(), *at))
            .collect();
        for p in self.pubs.values() {
            let at = changed.entry(p.rec.resource.as_str()).or_insert(Time(0));
            *at = (*at).max(p.rec.changed_at);
        }
        // In slot order, which follows the snapshot's sorted order, so a
        // restart replays exactly from its seed.
        let recent: Vec<SubKey> = self
            .subs
            .iter()
            .filter(|(_, s)| {
                let line_at = changed.get(&*s.resource).copied().unwrap_or(Time(0));
                s.ending.is_none() && now - s.changed_at.max(line_at) < window
            })
            .map(|(k, _)| k)
            .collect();
        for key in recent {
            self.notify(now, key);
        }
        self.end();
    }

    /// A datagram or a whole stream frame arrived.
    pub fn handle_bytes(&mut self, now: Time, from: Source, bytes: &[u8]) {
        self.begin();
        if let Some(head) = sip::peek_response(bytes) {
            // A response (to our NOTIFYs: one per watcher per change) is
            // matched by its status and top Via branch alone.
            self.on_response(now, head.status, head.branch);
            self.end();
            return;
        }
        if bytes.starts_with(b"SIP/") {
            match sip::parse(bytes, from.transport.reliable()) {
                Ok(msg) if !msg.is_request() => {
                    if let (Some(code), Ok(Some(via))) = (msg.status(), msg.via()) {
                        if let Some(branch) = via.branch {
                            self.on_response(now, code, branch);
                        }
                    }
                }
                Ok(_) => {
                    debug!(from = %from.remote, "dropped a request that starts like a response")
                }
                Err(e) => debug!(from = %from.remote, error = %e, "dropped unparsable response"),
            }
            self.end();
            return;
        }
        // The typed parse keeps what it checked, so the checks and the
        // handlers below read each header's value once.
        match sip::parse_typed(bytes, from.transport.reliable()) {
            Ok(msg) if msg.is_request() => self.on_request(now, from, &msg),
            Ok(_) => {} // a response, handled above
            Err(e) => match crate::salvage::request_head(bytes) {
                Some(head) => match sip::parse(&head, false) {
                    Ok(msg) => self.reject_untracked(from, &msg, 400, &e.to_string()),
                    Err(_) => debug!(from = %from.remote, error = %e, "dropped unparsable request"),
                },
                None => debug!(from = %from.remote, error = %e, "dropped unparsable message"),
            },
        }
        self.end();
    }

    /// Time has passed; fire whatever is due. Extra calls do nothing.
    pub fn handle_timeout(&mut self, now: Time) {
        self.begin();
        self.server_tx.handle_timeout(now);
        let mut events = std::mem::take(&mut self.client_events);
        self.client_tx.handle_timeout(now, &mut events);
        for ev in events.drain(..) {
            self.on_client_event(now, ev);
        }
        self.client_events = events;
        self.expire(now);
        self.end();
    }

    /// Every store batch up to and including `seq` is durable.
    pub fn handle_durable(&mut self, _now: Time, seq: u64) {
        self.durable = self.durable.max(seq);
    }

    /// A stream connection closed. Nothing to forget: NOTIFYs carry the
    /// connection id and the shell opens a new connection when it is gone.
    pub fn handle_closed(&mut self, _conn: ConnId) {}

    /// The next output, or `None` when there is nothing to do until the next input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(b) = self.batches.pop_front() {
            return Some(Output::Store(b));
        }
        match self.out.front() {
            Some((barrier, _)) if *barrier <= self.durable => {
                self.out.pop_front().map(|(_, t)| Output::Transmit(t))
            }
            Some(_) => None,
            None => {
                // After a burst the queues sit empty with their peak
                // capacity; give it back.
                if self.out.capacity() > 4096 {
                    self.out.shrink_to(64);
                }
                if self.batches.capacity() > 4096 {
                    self.batches.shrink_to(64);
                }
                None
            }
        }
    }

    /// When to call [`Engine::handle_timeout`] next.
    pub fn next_timeout(&self) -> Option<Time> {
        [
            self.server_tx.next_timeout(),
            self.client_tx.next_timeout(),
            self.expiries.first(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a transmission over this stream connection is still queued
    /// (the shell keeps a closing connection open until it is not).
    pub fn has_pending_transmit(&self, conn: ConnId) -> bool {
        self.out.iter().any(|(_, t)| t.conn == Some(conn))
    }

    /// Live publications.
    pub fn publication_count(&self) -> usize {
        self.pubs.len()
    }

    /// Live subscriptions (not counting ones whose final NOTIFY is pending).
    pub fn subscription_count(&self) -> usize {
        self.live_subs
    }

    // ---- input bracketing and durability ----

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Start recording which lines change, for [`Engine::take_changed_lines`].
    pub fn enable_events(&mut self) {
        self.events.get_or_insert_with(Vec::new);
    }

    /// The lines whose state or watchers changed since the last call, each
    /// once (empty unless [`Engine::enable_events`] was called).
    pub fn take_changed_lines(&mut self) -> Vec<String> {
        match &mut self.events {
            Some(v) => {
                let mut out = std::mem::take(v);
                out.sort_unstable();
                out.dedup();
                out
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn begin_input(&mut self) {
        self.begin();
    }

    pub(crate) fn end_input(&mut self) {
        self.end();
    }

    fn begin(&mut self) {
        self.cur_seq = self.last_seq + 1;
    }

    fn end(&mut self) {
        // After every input, so `next_timeout` never names the instant of
        // an expiry the input made stale.
        let subs = &self.subs;
        self.expiries
            .prune(self.live_subs, |at, key| subs.live_until(key, at));
        let barrier = if self.ops.is_empty() {
            self.last_seq
        } else {
            self.last_seq = self.cur_seq;
            self.stats.store_batches += 1;
            self.batches.push_back(StoreBatch {
                seq: self.cur_seq,
                ops: std::mem::take(&mut self.ops),
            });
            self.cur_seq
        };
        for t in self.staged.drain(..) {
            self.out.push_back((barrier, t));
        }
    }

    pub(crate) fn write(&mut self, op: StoreOp) {
        self.ops.push(op);
    }

    pub(crate) fn send(&mut self, t: Transmit) {
        self.staged.push(t);
    }

    pub(crate) fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    // ---- requests ----

    fn on_request(&mut self, now: Time, from: Source, msg: &Parsed<'_>) {
        let Some(method) = msg.method() else { return };
        self.stats.request(&method);
        if method == Method::Ack {
            // ACKs belong to INVITE transactions, which we never create.
            return;
        }
        if let sip::StartLine::Request { version, .. } = msg.start {
            if !version.eq_ignore_ascii_case("SIP/2.0") {
                return self.reject_untracked(from, msg, 505, "Version Not Supported");
            }
        }
        // RFC 3261 §8.2.1 inspects the method before the headers, so an
        // unknown method is 501 even when its CSeq names another method.
        if let Method::Other(_) = method {
            return self.reject_untracked(from, msg, 501, "Not Implemented");
        }
        if let Err(inv) = msg.check() {
            return self.reject_untracked(from, msg, inv.status, &inv.reason);
        }
        let key = match msg.via() {
            Ok(Some(via)) => ServerKey::with_via(msg, via),
            _ => None,
        };
        let Some(key) = key else {
            return self.reject_untracked(from, msg, 400, "Bad Via header");
        };
        match self
            .server_tx
            .on_request(now, &key, from.transport.reliable())
        {
            ServerAction::New => {}
            ServerAction::Absorb => return,
            ServerAction::Resend(t, tag) => {
                // The tag is the seq the answering input would have written
                // under; if that input wrote nothing, nothing need wait.
                self.out.push_back((tag.min(self.last_seq), t));
                return;
            }
        }
        let cx = Req {
            now,
            from,
            msg,
            key,
        };
        let unsupported: Vec<&str> = match msg.require() {
            Ok(r) => r,
            Err(e) => return self.reject(&cx, Reject::new(400, e.to_string())),
        };
        if !unsupported.is_empty() {
            let list = unsupported.join(", ");
            return self.reject(
                &cx,
                Reject::new(420, "Bad Extension").with(HeaderName::Unsupported, list),
            );
        }
        match method {
            Method::Options => {
                let allow_events = self.packages.allow_events();
                let headers = [
                    (HeaderName::Allow, ALLOW.to_string()),
                    (HeaderName::Accept, String::new()),
                    (HeaderName::AllowEvents, allow_events),
                ];
                self.respond(&cx, 200, "OK", &headers, None);
            }
            Method::Subscribe => self.on_subscribe(&cx),
            Method::Publish => self.on_publish(&cx),
            // Our non-INVITE transactions are answered at once, so there is
            // never anything left to cancel (RFC 3261 §9.2).
            Method::Cancel => self.respond(&cx, 481, "Call/Transaction Does Not Exist", &[], None),
            _ => self.reject(
                &cx,
                Reject::new(405, "Method Not Allowed").with(HeaderName::Allow, ALLOW),
            ),
        }
    }

    fn on_response(&mut self, now: Time, code: u16, branch: &str) {
        if let Some(ev) = self.client_tx.on_response(branch, code) {
            self.on_client_event(now, ev);
        }
    }

    /// Answer a request outside any transaction (it failed the checks that
    /// come before transaction matching, so a retransmission is answered
    /// afresh, identically).
    fn reject_untracked(&mut self, from: Source, msg: &Message<'_>, status: u16, reason: &str) {
        debug!(from = %from.remote, status, reason, "refused request");
        self.stats.refusal(status, reason);
        if msg.count(HeaderName::Via) == 0 {
            return;
        }
        *self.stats.responses.entry(status).or_default() += 1;
        let mut buf = Vec::with_capacity(512);
        let tag = self.rng.token();
        ResponseWriter::new(&mut buf, msg, status, reason, Some(from.remote), Some(&tag))
            .header(HeaderName::Server, &self.cfg.server_name)
            .finish();
        let t = response_target(from, msg, buf);
        self.send(t);
    }

    /// Refuse a request with `rej`, logged at debug level.
    pub(crate) fn reject(&mut self, cx: &Req<'_, '_>, rej: Reject) {
        debug!(from = %cx.from.remote, status = rej.status, reason = %rej.reason, "refused request");
        self.stats.refusal(rej.status, &rej.reason);
        self.respond(cx, rej.status, &rej.reason, &rej.headers, None);
    }

    /// Send the final response of the request's transaction.
    pub(crate) fn respond(
        &mut self,
        cx: &Req<'_, '_>,
        status: u16,
        reason: &str,
        headers: &[(HeaderName<'_>, String)],
        to_tag: Option<&str>,
    ) {
        let mut buf = Vec::with_capacity(512);
        let fresh;
        let tag = match to_tag {
            Some(t) => t,
            None => {
                fresh = self.rng.token();
                &fresh
            }
        };
        let mut w = ResponseWriter::new(
            &mut buf,
            cx.msg,
            status,
            reason,
            Some(cx.from.remote),
            Some(tag),
        );
        for (name, value) in headers {
            w = w.header(*name, value);
        }
        w.header(HeaderName::Server, &self.cfg.server_name).finish();
        *self.stats.responses.entry(status).or_default() += 1;
        let t = response_target(cx.from, cx.msg, buf);
        self.server_tx
            .respond(cx.now, &cx.key, t.clone(), self.cur_seq);
        self.send(t);
    }

    // ---- our NOTIFY transactions ----

    fn on_client_event(&mut self, now: Time, ev: ClientEvent<NotifyCtx>) {
        match ev {
            ClientEvent::Retransmit(t) => {
                self.stats.notifies_retransmitted += 1;
                self.send(t)
            }
            ClientEvent::Final { ctx, code } => self.notify_done(now, ctx, Some(code)),
            ClientEvent::TimedOut { ctx } => self.notify_done(now, ctx, None),
        }
    }

    // ---- expiry ----

    fn expire(&mut self, now: Time) {
        while let Some((at, what)) = self.expiries.pop_due(now) {
            match what {
                Expiry::Publication(id) => {
                    if let Some(resource) = self.remove_publication(&id) {
                        debug!(%id, "publication expired");
                        self.resource_changed(now, &resource);
                    }
                }
                Expiry::Subscription(key) if self.subs.live_until(key, at) => {
                    debug!(id = ?self.subs.get(key).map(|s| s.id()), "subscription expired");
                    self.end_subscription(now, key, "timeout");
                }
                Expiry::Subscription(_) => {} // refreshed or ended since
            }
        }
    }

    // ---- resources ----

    /// The resource named `name`, created if new; returns its shared name.
    pub(crate) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(r) = self.resources.get(name) {
            return Arc::clone(&r.name);
        }
        let shared: Arc<str> = name.into();
        let res = Resource {
            name: Arc::clone(&shared),
            host: host_of(name).to_string(),
            pubs: BTreeSet::new(),
            subs: BTreeSet::new(),
            shared: Vec::new(),
        };
        self.resources.insert(Arc::clone(&shared), res);
        shared
    }

    pub(crate) fn insert_publication(&mut self, p: Publication) {
        let name = self.intern(&p.rec.resource);
        let Some(res) = self.resources.get_mut(&name) else {
            return;
        };
        res.pubs.insert(p.rec.id.clone());
        self.etags.insert(p.rec.etag.clone(), p.rec.id.clone());
        self.expiries
            .add_publication(p.rec.expires_at, p.rec.id.clone());
        self.pubs.insert(p.rec.id.clone(), p);
    }

    /// Remove a publication from memory and the store; returns its resource.
    pub(crate) fn remove_publication(&mut self, id: &str) -> Option<String> {
        let p = self.pubs.remove(id)?;
        self.etags.remove(&p.rec.etag);
        self.expiries
            .remove_publication(p.rec.expires_at, id.to_string());
        self.write(StoreOp::DeletePublication(id.to_string()));
        if let Some(res) = self.resources.get_mut(p.rec.resource.as_str()) {
            res.pubs.remove(id);
        }
        Some(p.rec.resource)
    }

    pub(crate) fn insert_subscription(&mut self, s: Subscription) -> SubKey {
        let name = self.intern(&s.resource);
        let (expires_at, ip) = (s.expires_at, s.source.remote.ip());
        let key = self.subs.insert(s);
        if let Some(res) = self.resources.get_mut(&name) {
            res.subs.insert(key);
        }
        self.expiries.add_subscription(expires_at, key);
        *self.per_source.entry(ip).or_default() += 1;
        self.live_subs += 1;
        key
    }

    /// Undo `insert_subscription`'s counting.
    pub(crate) fn uncount_subscription(&mut self, source: IpAddr) {
        self.live_subs = self.live_subs.saturating_sub(1);
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// A refusal because a quota is full: 503 with Retry-After, logged at
    /// most once per 10 s per reason (a flood must not flood the log too).
    pub(crate) fn overloaded(&mut self, now: Time, reason: &'static str) -> Reject {
        let entry = self.overload_log.entry(reason).or_insert((Time(0), 0));
        if now - entry.0 >= 10_000 {
            tracing::warn!(
                reason,
                suppressed = entry.1,
                "refusing requests: quota full"
            );
            *entry = (now, 0);
        } else {
            entry.1 += 1;
        }
        Reject::new(503, reason).with(HeaderName::RetryAfter, "60")
    }

    /// Drop a resource that has nothing left on it.
    /// Tell the store that watchers of `resource` are owed new state (once
    /// per batch): a restart re-sends it if the NOTIFYs may have been lost.
    /// A publication written in the same batch with this change's time says
    /// it already (a restart reads publications' `changed_at` too): the
    /// fan-out of a PUBLISH, the busiest path, writes one row, not two.
    fn note_resource_changed(&mut self, now: Time, resource: &str) {
        let noted = self.ops.iter().any(|op| match op {
            StoreOp::ResourceChanged { resource: r, .. } => r == resource,
            StoreOp::PutPublication(p) => p.resource == resource && p.changed_at == now,
            _ => false,
        });
        if !noted {
            self.ops.push(StoreOp::ResourceChanged {
                resource: resource.to_string(),
                at: now,
            });
        }
    }

    pub(crate) fn gc_resource(&mut self, resource: &str) {
        if let Some(res) = self.resources.get(resource) {
            if res.pubs.is_empty() && res.subs.is_empty() {
                self.resources.remove(resource);
            }
        }
    }

    /// What packages see of a resource.
    pub(crate) fn view<'s>(&'s self, resource: &'s str) -> ResourceView<'s> {
        let Some(res) = self.resources.get(resource) else {
            return ResourceView {
                resource,
                host: host_of(resource),
                pubs: Vec::new(),
                subs: Vec::new(),
            };
        };
        ResourceView {
            resource,
            host: &res.host,
            pubs: res
                .pubs
                .iter()
                .filter_map(|id| self.pubs.get(id))
                .map(|p| crate::package::PubView {
                    package: &p.rec.package,
                    state: &p.state,
                    order: (p.rec.changed_at, p.order),
                })
                .collect(),
            subs: res
                .subs
                .iter()
                .filter_map(|k| self.subs.get(*k).map(|s| (*k, s)))
                .map(|(key, s)| crate::package::SubView {
                    key,
                    package: s.package,
                    data: s.data,
                    order: (s.changed_at, s.order),
                })
                .collect(),
        }
    }

    pub(crate) fn package_cx(&self) -> PackageCx {
        PackageCx {
            max_appearances: self.cfg.max_appearances,
        }
    }

    /// Render every shared-state package of a resource into its cache,
    /// returning the packages whose state changed. A package with no
    /// subscribers on the resource keeps no cache; the first subscriber's
    /// NOTIFY is rendered afresh, so a new cache entry is no change.
    pub(crate) fn refresh_shared_cache(&mut self, resource: &str) -> Vec<&'static str> {
        let mut changed = Vec::new();
        let mut fresh: Vec<(&'static str, Option<Rendered>)> = Vec::new();
        {
            let view = self.view(resource);
            for p in self.packages.iter().filter(|p| p.shared_state()) {
                let watched = view.subs.iter().any(|s| s.package == p.name());
                fresh.push((p.name(), watched.then(|| p.render(&view, SubData::None))));
            }
        }
        let Some(res) = self.resources.get_mut(resource) else {
            return changed;
        };
        for (name, r) in fresh {
            let slot = res.shared.iter().position(|(n, _)| *n == name);
            match (slot, r) {
                (Some(i), None) => {
                    res.shared.swap_remove(i);
                }
                (Some(i), Some(r)) => {
                    if *res.shared[i].1 != r {
                        res.shared[i].1 = Arc::new(r);
                        changed.push(name);
                    }
                }
                (None, Some(r)) => res.shared.push((name, Arc::new(r))),
                (None, None) => {}
            }
        }
        changed
    }

    /// The resource's state changed: end what no longer holds, then notify
    /// the watchers whose view changed.
    pub(crate) fn resource_changed(&mut self, now: Time, resource: &str) {
        if let Some(ev) = &mut self.events {
            ev.push(resource.to_string());
        }
        // Ending a subscription can change the resource again; each round
        // ends at least one, so this terminates.
        loop {
            let ended: Vec<(SubKey, &'static str)> = {
                let view = self.view(resource);
                self.packages
                    .iter()
                    .flat_map(|p| p.reconcile(&view))
                    .collect()
            };
            if ended.is_empty() {
                break;
            }
            for (key, reason) in ended {
                self.end_subscription_quiet(now, key, reason);
            }
        }
        let changed = self.refresh_shared_cache(resource);
        if !changed.is_empty() {
            self.note_resource_changed(now, resource);
        }
        for package in changed {
            let keys: Vec<SubKey> = match self.resources.get(resource) {
                Some(res) => res
                    .subs
                    .iter()
                    .filter(|k| self.subs.get(**k).is_some_and(|s| s.package == package))
                    .copied()
                    .collect(),
                None => Vec::new(),
            };
            for key in keys {
                self.notify(now, key);
            }
        }
        self.gc_resource(resource);
    }
}

/// One request being handled, with what answering it needs.
pub(crate) struct Req<'m, 'a> {
    pub(crate) now: Time,
    pub(crate) from: Source,
    pub(crate) msg: &'m Parsed<'a>,
    pub(crate) key: ServerKey,
}

/// Where a response goes (RFC 3261 §18.2.2, RFC 3581 §4): on a stream, back
/// over the connection; on UDP, to the source address, and to the source port
/// if the request asked with `rport`, else to the sent-by port (5060 if none).
pub(crate) fn response_target(from: Source, msg: &Message<'_>, bytes: Vec<u8>) -> Transmit {
    let mut remote = from.remote;
    if from.transport == Transport::Udp {
        if let Ok(Some(via)) = msg.via() {
            if via.rport.is_none() {
                remote.set_port(via.port.unwrap_or(5060));
            }
        }
    }
    Transmit {
        transport: from.transport,
        local: from.local,
        remote,
        conn: from.conn,
        bytes,
    }
}

/// The host part of `sip:user@host` (or of `sip:host`).
pub(crate) fn host_of(resource: &str) -> &str {
    let rest = resource.split_once(':').map_or(resource, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(_, h)| h)
}

/// The resource a Request-URI names, as a key: `sip:user@host[:port]`,
/// scheme and host lower-cased, parameters and headers dropped.
pub(crate) fn canonical_resource(uri: &str) -> Result<String, Reject> {
    let u = sip::Uri::parse(uri).map_err(|_| Reject::new(400, "Bad Request-URI"))?;
    if !u.is_sip() {
        return Err(Reject::new(416, "Unsupported URI Scheme"));
    }
    let mut s = String::with_capacity(uri.len());
    s.push_str("sip:");
    if let Some(user) = u.user {
        s.push_str(user);
        s.push('@');
    }
    s.push_str(&u.host.to_ascii_lowercase());
    if let Some(port) = u.port {
        s.push(':');
        s.push_str(&port.to_string());
    }
    Ok(s)
}
