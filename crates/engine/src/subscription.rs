//! Subscriptions as the engine keeps them in memory: compact (boxed strings,
//! the line's name shared with its other subscriptions) and addressed by a
//! [`SubKey`] rather than by their dialog id string, so the expiry queue,
//! the lines and the NOTIFY transactions hold eight bytes each instead of a
//! copy of the id. A line of 100k watchers is what this saves memory for.

use crate::net::{ConnId, Source, Transport};
use crate::package::SubData;
use crate::store::SubscriptionRecord;
use crate::time::Time;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;

/// A subscription's handle: a slot and that slot's generation, so a handle
/// kept by a late NOTIFY transaction never reaches the slot's next tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubKey(u64);

impl SubKey {
    pub(crate) fn new(slot: u32, gen: u32) -> SubKey {
        SubKey(u64::from(gen) << 32 | u64::from(slot))
    }
    fn slot(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }
    fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// The store's key of a subscription: its dialog and its Event.
pub(crate) fn sub_id(
    call_id: &str,
    local_tag: &str,
    remote_tag: &str,
    package: &str,
    event_id: Option<&str>,
) -> String {
    let mut s = String::with_capacity(
        call_id.len() + local_tag.len() + remote_tag.len() + package.len() + 8,
    );
    for part in [
        call_id,
        local_tag,
        remote_tag,
        package,
        event_id.unwrap_or(""),
    ] {
        s.push_str(part);
        s.push('\u{1f}');
    }
    s
}

/// The texts of a subscription's dialog, borrowed, to build one from.
pub(crate) struct DialogText<'a> {
    pub(crate) call_id: &'a str,
    pub(crate) local_tag: &'a str,
    pub(crate) remote_tag: &'a str,
    pub(crate) package: &'a str,
    pub(crate) event_id: Option<&'a str>,
    pub(crate) local_uri: &'a str,
    pub(crate) remote_uri: &'a str,
    pub(crate) remote_target: &'a str,
}

/// NOTIFY CSeqs are reserved in the store this many at a time. A restart
/// skips what was left of the block (CSeqs must grow, not be contiguous:
/// RFC 3261 §12.2.1.1), and a dialog needs a write only every this many
/// NOTIFYs instead of on each.
pub(crate) const CSEQ_BLOCK: u32 = 1000;

/// Where a subscription's requests come from: a [`Source`] with the
/// listener's address as an index into [`Subscriptions`]' few listeners,
/// which saves a socket address (32 bytes) in every subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubSource {
    pub(crate) transport: Transport,
    pub(crate) remote: SocketAddr,
    pub(crate) conn: Option<ConnId>,
    local: u32,
}

/// A subscription: live, or ending (its final NOTIFY still to be sent).
///
/// Its strings live end to end in one allocation: the id (which is itself
/// call-id, tags, package and event id joined), then the local URI, the
/// remote URI and the remote target, with `ends` marking where each stops.
pub(crate) struct Subscription {
    text: Box<str>,
    /// Ends of: call-id, local tag, remote tag, package, event id, the id
    /// (with its last separator), local URI, remote URI.
    ends: [u32; 8],
    pub(crate) package: &'static str,
    pub(crate) resource: Arc<str>,
    pub(crate) route_set: Box<[Box<str>]>,
    pub(crate) local_cseq: u32,
    /// What the store holds as `cseq_reserved`: NOTIFYs up to this CSeq
    /// need no write.
    pub(crate) cseq_reserved: u32,
    pub(crate) remote_cseq: u32,
    pub(crate) expires_at: Time,
    pub(crate) changed_at: Time,
    pub(crate) last_notify_at: Time,
    pub(crate) source: SubSource,
    pub(crate) data: SubData,
    /// Tie-breaker among claims made in the same millisecond.
    pub(crate) order: u64,
    /// A NOTIFY transaction of this subscription is open.
    pub(crate) in_flight: bool,
    /// The state changed while a NOTIFY was in flight: send the latest when it completes.
    pub(crate) dirty: bool,
    /// The subscription is over; send `terminated;reason=...` once nothing is in flight.
    pub(crate) ending: Option<&'static str>,
    /// The final status of its last completed NOTIFY (408: no answer; 0: none yet).
    pub(crate) last_status: u16,
    /// Waiting in the engine's queue for a NOTIFY slot.
    pub(crate) queued: bool,
}

fn pack(d: &DialogText<'_>) -> (Box<str>, [u32; 8]) {
    let id = sub_id(d.call_id, d.local_tag, d.remote_tag, d.package, d.event_id);
    let mut text = String::with_capacity(
        id.len() + d.local_uri.len() + d.remote_uri.len() + d.remote_target.len(),
    );
    let mut ends = [0u32; 8];
    // Offsets fit: a message is at most a few MiB (the shell's limit).
    let at = |t: &String| u32::try_from(t.len()).unwrap_or(u32::MAX);
    for (i, part) in [
        d.call_id,
        d.local_tag,
        d.remote_tag,
        d.package,
        d.event_id.unwrap_or(""),
    ]
    .into_iter()
    .enumerate()
    {
        text.push_str(part);
        ends[i] = at(&text);
        text.push('\u{1f}');
    }
    ends[5] = at(&text);
    text.push_str(d.local_uri);
    ends[6] = at(&text);
    text.push_str(d.remote_uri);
    ends[7] = at(&text);
    text.push_str(d.remote_target);
    (text.into_boxed_str(), ends)
}

impl Subscription {
    /// A new subscription of a dialog; the rest is filled by the caller.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        dialog: DialogText<'_>,
        package: &'static str,
        resource: Arc<str>,
        route_set: Box<[Box<str>]>,
        remote_cseq: u32,
        now: Time,
        expires_at: Time,
        source: SubSource,
        data: SubData,
        order: u64,
    ) -> Subscription {
        let (text, ends) = pack(&dialog);
        Subscription {
            text,
            ends,
            package,
            resource,
            route_set,
            local_cseq: 0,
            // A new subscription's record is written before its first
            // NOTIFY leaves, and carries this first block.
            cseq_reserved: CSEQ_BLOCK,
            remote_cseq,
            expires_at,
            changed_at: now,
            last_notify_at: now,
            source,
            data,
            order,
            in_flight: false,
            dirty: false,
            ending: None,
            last_status: 0,
            queued: false,
        }
    }

    fn slice(&self, from: usize, to: usize) -> &str {
        let (a, b) = (from, to.min(self.text.len()));
        self.text.get(a..b).unwrap_or("")
    }
    fn part(&self, i: usize) -> &str {
        let from = if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize + 1
        };
        self.slice(from, self.ends[i] as usize)
    }
    /// The store's key.
    pub(crate) fn id(&self) -> &str {
        self.slice(0, self.ends[5] as usize)
    }
    pub(crate) fn call_id(&self) -> &str {
        self.part(0)
    }
    pub(crate) fn local_tag(&self) -> &str {
        self.part(1)
    }
    pub(crate) fn remote_tag(&self) -> &str {
        self.part(2)
    }
    pub(crate) fn event_id(&self) -> Option<&str> {
        Some(self.part(4)).filter(|e| !e.is_empty())
    }
    pub(crate) fn local_uri(&self) -> &str {
        self.slice(self.ends[5] as usize, self.ends[6] as usize)
    }
    pub(crate) fn remote_uri(&self) -> &str {
        self.slice(self.ends[6] as usize, self.ends[7] as usize)
    }
    pub(crate) fn remote_target(&self) -> &str {
        self.slice(self.ends[7] as usize, self.text.len())
    }

    /// A refresh named a new Contact.
    pub(crate) fn set_remote_target(&mut self, target: &str) {
        let mut t = String::with_capacity(self.ends[7] as usize + target.len());
        t.push_str(self.slice(0, self.ends[7] as usize));
        t.push_str(target);
        self.text = t.into_boxed_str();
    }

    /// From a stored record (`source`, `package` and `resource` already interned).
    pub(crate) fn from_record(
        rec: SubscriptionRecord,
        source: SubSource,
        package: &'static str,
        resource: Arc<str>,
        data: SubData,
        order: u64,
    ) -> Subscription {
        let dialog = DialogText {
            call_id: &rec.call_id,
            local_tag: &rec.local_tag,
            remote_tag: &rec.remote_tag,
            package,
            event_id: rec.event_id.as_deref(),
            local_uri: &rec.local_uri,
            remote_uri: &rec.remote_uri,
            remote_target: &rec.remote_target,
        };
        let route_set = rec.route_set.iter().map(|r| r.as_str().into()).collect();
        let mut s = Subscription::new(
            dialog,
            package,
            resource,
            route_set,
            rec.remote_cseq,
            rec.changed_at,
            rec.expires_at,
            source,
            data,
            order,
        );
        // Go on above anything the last run may have used.
        let floor = rec.local_cseq.max(rec.cseq_reserved);
        s.local_cseq = floor;
        s.cseq_reserved = floor;
        s.last_notify_at = rec.last_notify_at;
        s
    }

    /// The record the store keeps; `source` is the subscription's, whole
    /// (see [`Subscriptions::source`]).
    pub(crate) fn to_record(&self, source: Source) -> SubscriptionRecord {
        SubscriptionRecord {
            id: self.id().to_string(),
            package: self.package.to_string(),
            resource: self.resource.to_string(),
            event_id: self.event_id().map(str::to_string),
            call_id: self.call_id().to_string(),
            local_tag: self.local_tag().to_string(),
            remote_tag: self.remote_tag().to_string(),
            local_uri: self.local_uri().to_string(),
            remote_uri: self.remote_uri().to_string(),
            remote_target: self.remote_target().to_string(),
            route_set: self.route_set.iter().map(|r| r.to_string()).collect(),
            local_cseq: self.local_cseq,
            cseq_reserved: self.cseq_reserved,
            last_notify_at: self.last_notify_at,
            remote_cseq: self.remote_cseq,
            expires_at: self.expires_at,
            changed_at: self.changed_at,
            state: serde_json::to_string(&self.data).unwrap_or_default(),
            source,
        }
    }
}

struct Slot {
    gen: u32,
    sub: Option<Subscription>,
}

/// Slots come in chunks of this many, so growing never copies the slots
/// already there nor leaves half a doubled vector empty.
const CHUNK: usize = 4096;

/// Every subscription, by key and by id.
#[derive(Default)]
pub(crate) struct Subscriptions {
    chunks: Vec<Vec<Slot>>,
    free: Vec<u32>,
    /// Hash of the id → key; the rare id whose hash is taken goes to
    /// `collisions` (a map with a random hasher, so crafted ids cannot pile
    /// up there either).
    by_hash: HashMap<u64, SubKey, ahash::RandomState>,
    collisions: HashMap<Box<str>, SubKey>,
    /// The listeners subscriptions came in on, each once (a shell has a
    /// few sockets; the table only grows with them).
    listeners: Vec<SocketAddr>,
}

/// The id's hash, the same in every run (so runs replay exactly); an id
/// crafted to collide only lands in `collisions`.
fn id_hash(id: &str) -> u64 {
    const SEEDS: ahash::RandomState = ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    );
    SEEDS.hash_one(id)
}

impl Subscriptions {
    /// `source` as a subscription keeps it.
    pub(crate) fn compact(&mut self, source: Source) -> SubSource {
        let i = match self.listeners.iter().position(|l| *l == source.local) {
            Some(i) => i,
            None => {
                self.listeners.push(source.local);
                self.listeners.len() - 1
            }
        };
        SubSource {
            transport: source.transport,
            remote: source.remote,
            conn: source.conn,
            local: u32::try_from(i).unwrap_or(u32::MAX),
        }
    }

    /// A subscription's source, whole again.
    pub(crate) fn source(&self, s: &SubSource) -> Source {
        Source {
            transport: s.transport,
            // Every index came from `compact`; the fallback keeps this total.
            local: self
                .listeners
                .get(s.local as usize)
                .copied()
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            remote: s.remote,
            conn: s.conn,
        }
    }

    fn slot(&self, i: usize) -> Option<&Slot> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }
    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    pub(crate) fn insert(&mut self, sub: Subscription) -> SubKey {
        let h = id_hash(sub.id());
        let id: Box<str> = sub.id().into();
        let key = match self.free.pop() {
            Some(i) => match self.slot_mut(i as usize) {
                Some(s) => {
                    s.sub = Some(sub);
                    SubKey::new(i, s.gen)
                }
                // Free slots always exist; this arm only keeps the code total.
                None => return self.push(sub, h, id),
            },
            None => return self.push(sub, h, id),
        };
        self.index(h, id, key);
        key
    }

    fn push(&mut self, sub: Subscription, h: u64, id: Box<str>) -> SubKey {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let i = (self.chunks.len() - 1) * CHUNK + self.chunks.last().map_or(0, Vec::len);
        if let Some(c) = self.chunks.last_mut() {
            c.push(Slot {
                gen: 0,
                sub: Some(sub),
            });
        }
        let key = SubKey::new(u32::try_from(i).unwrap_or(u32::MAX), 0);
        self.index(h, id, key);
        key
    }

    fn index(&mut self, h: u64, id: Box<str>, key: SubKey) {
        match self.by_hash.get(&h) {
            Some(_) => {
                self.collisions.insert(id, key);
            }
            None => {
                self.by_hash.insert(h, key);
            }
        }
    }

    pub(crate) fn get(&self, key: SubKey) -> Option<&Subscription> {
        let s = self.slot(key.slot())?;
        if s.gen != key.gen() {
            return None;
        }
        s.sub.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: SubKey) -> Option<&mut Subscription> {
        let s = self.slot_mut(key.slot())?;
        if s.gen != key.gen() {
            return None;
        }
        s.sub.as_mut()
    }

    /// Whether the subscription is live (not ending) and expires at `at`:
    /// its entry on the clock still holds.
    pub(crate) fn live_until(&self, key: SubKey, at: Time) -> bool {
        self.get(key)
            .is_some_and(|s| s.ending.is_none() && s.expires_at == at)
    }

    pub(crate) fn remove(&mut self, key: SubKey) -> Option<Subscription> {
        let slot = self.slot_mut(key.slot())?;
        if slot.gen != key.gen() {
            return None;
        }
        let sub = slot.sub.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.slot() as u32);
        let h = id_hash(sub.id());
        if self.by_hash.get(&h) == Some(&key) {
            self.by_hash.remove(&h);
        } else {
            self.collisions.remove(sub.id());
        }
        Some(sub)
    }

    pub(crate) fn find(&self, id: &str) -> Option<SubKey> {
        if let Some(&k) = self.by_hash.get(&id_hash(id)) {
            if self.get(k).is_some_and(|s| s.id() == id) {
                return Some(k);
            }
        }
        self.collisions.get(id).copied()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SubKey, &Subscription)> {
        self.chunks
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, s)| {
                s.sub
                    .as_ref()
                    .map(|sub| (SubKey::new(i as u32, s.gen), sub))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Transport;

    fn sub(call_id: &str) -> Subscription {
        sub_in(&mut Subscriptions::default(), call_id)
    }

    fn sub_in(subs: &mut Subscriptions, call_id: &str) -> Subscription {
        let rec = SubscriptionRecord {
            id: String::new(),
            package: "call-info".into(),
            resource: "sip:a@b".into(),
            event_id: None,
            call_id: call_id.into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "sip:a@b".into(),
            remote_uri: "sip:w@b".into(),
            remote_target: "sip:w@127.0.0.1".into(),
            route_set: vec![],
            local_cseq: 1,
            cseq_reserved: 0,
            last_notify_at: Time(1),
            remote_cseq: 1,
            expires_at: Time(2),
            changed_at: Time(1),
            state: "\"None\"".into(),
            source: Source {
                transport: Transport::Udp,
                local: "127.0.0.1:5060".parse().unwrap(),
                remote: "127.0.0.1:5070".parse().unwrap(),
                conn: None,
            },
        };
        let source = subs.compact(rec.source);
        Subscription::from_record(rec, source, "call-info", "sip:a@b".into(), SubData::None, 0)
    }

    fn id(call_id: &str) -> String {
        sub_id(call_id, "l", "r", "call-info", None)
    }

    #[test]
    fn keys_are_not_reused_by_the_next_tenant() {
        let mut subs = Subscriptions::default();
        let a = subs.insert(sub("a"));
        assert_eq!(subs.find(&id("a")), Some(a));
        assert!(subs.remove(a).is_some());
        let b = subs.insert(sub("b"));
        assert_ne!(a, b, "same slot, new generation");
        assert!(subs.get(a).is_none());
        assert!(subs.remove(a).is_none());
        assert_eq!(subs.find(&id("a")), None);
        assert_eq!(subs.find(&id("b")), Some(b));
        assert_eq!(subs.get(b).unwrap().call_id(), "b");
    }

    #[test]
    fn record_round_trip_and_packed_texts() {
        let mut subs = Subscriptions::default();
        let mut s = sub_in(&mut subs, "x");
        let rec = s.to_record(subs.source(&s.source));
        assert_eq!(rec.id, id("x"));
        assert_eq!(rec.local_tag, "l");
        assert_eq!(rec.remote_tag, "r");
        assert_eq!(rec.local_uri, "sip:a@b");
        assert_eq!(rec.remote_uri, "sip:w@b");
        assert_eq!(rec.remote_target, "sip:w@127.0.0.1");
        assert_eq!(rec.event_id, None);
        let source = subs.compact(rec.source);
        let back = Subscription::from_record(
            rec.clone(),
            source,
            "call-info",
            "sip:a@b".into(),
            SubData::None,
            0,
        );
        assert_eq!(back.to_record(subs.source(&back.source)), rec);
        s.set_remote_target("sip:w@10.0.0.1:5070");
        assert_eq!(s.remote_target(), "sip:w@10.0.0.1:5070");
        assert_eq!(s.remote_uri(), "sip:w@b");
        assert_eq!(s.id(), rec.id);
    }

    #[test]
    fn event_id_is_kept() {
        let mut subs = Subscriptions::default();
        let y = sub_in(&mut subs, "y");
        let mut rec = y.to_record(subs.source(&y.source));
        rec.event_id = Some("7".into());
        let source = subs.compact(rec.source);
        let s =
            Subscription::from_record(rec, source, "call-info", "sip:a@b".into(), SubData::None, 0);
        assert_eq!(s.event_id(), Some("7"));
        assert_eq!(s.id(), sub_id("y", "l", "r", "call-info", Some("7")));
    }

    #[test]
    fn sources_keep_their_listener() {
        let mut subs = Subscriptions::default();
        let at = |local: &str, remote: &str, transport, conn| Source {
            transport,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            conn,
        };
        let sources = [
            at("127.0.0.1:5060", "10.0.0.1:5070", Transport::Udp, None),
            at(
                "[::1]:5061",
                "[2001:db8::1]:5070",
                Transport::Tcp,
                Some(ConnId(9)),
            ),
            at(
                "127.0.0.1:5060",
                "10.0.0.2:5071",
                Transport::Tcp,
                Some(ConnId(3)),
            ),
        ];
        let kept: Vec<SubSource> = sources.iter().map(|s| subs.compact(*s)).collect();
        for (s, k) in sources.iter().zip(&kept) {
            assert_eq!(subs.source(k), *s);
        }
        assert_eq!(kept[0].local, kept[2].local, "one entry per listener");
        assert_ne!(kept[0].local, kept[1].local);
    }

    #[test]
    fn many_ids_all_found_across_chunks() {
        let mut subs = Subscriptions::default();
        let n = 3 * CHUNK + 17;
        let keys: Vec<_> = (0..n).map(|i| subs.insert(sub(&format!("c{i}")))).collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(subs.find(&id(&format!("c{i}"))), Some(*k));
        }
        for k in keys.iter().step_by(2) {
            subs.remove(*k);
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(subs.find(&id(&format!("c{i}"))), (i % 2 == 1).then_some(*k));
        }
        assert_eq!(subs.iter().count(), n / 2);
        // Freed slots are reused before new chunks are added.
        let again: Vec<_> = (0..n / 2 + 1)
            .map(|i| subs.insert(sub(&format!("d{i}"))))
            .collect();
        assert!(again.iter().all(|k| k.slot() < n));
    }
}
