//! Subscriptions as the engine keeps them in memory: compact (boxed strings,
//! the line's name shared with its other subscriptions) and addressed by a
//! [`SubKey`] rather than by their dialog id string, so the expiry queue,
//! the lines and the NOTIFY transactions hold eight bytes each instead of a
//! copy of the id. A line of 100k watchers is what this saves memory for.

use crate::net::Source;
use crate::package::SubData;
use crate::store::SubscriptionRecord;
use crate::time::Time;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A subscription's handle: a slot and that slot's generation, so a handle
/// kept by a late NOTIFY transaction never reaches the slot's next tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubKey(u64);

impl SubKey {
    fn new(slot: u32, gen: u32) -> SubKey {
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

/// A subscription: live, or ending (its final NOTIFY still to be sent).
pub(crate) struct Subscription {
    pub(crate) id: Box<str>,
    pub(crate) package: &'static str,
    pub(crate) resource: Arc<str>,
    pub(crate) event_id: Option<Box<str>>,
    pub(crate) call_id: Box<str>,
    pub(crate) local_tag: Box<str>,
    pub(crate) remote_tag: Box<str>,
    pub(crate) local_uri: Box<str>,
    pub(crate) remote_uri: Box<str>,
    pub(crate) remote_target: Box<str>,
    pub(crate) route_set: Box<[Box<str>]>,
    pub(crate) local_cseq: u32,
    pub(crate) remote_cseq: u32,
    pub(crate) expires_at: Time,
    pub(crate) changed_at: Time,
    pub(crate) last_notify_at: Time,
    pub(crate) source: Source,
    pub(crate) data: SubData,
    /// Tie-breaker among claims made in the same millisecond.
    pub(crate) order: u64,
    /// A NOTIFY transaction of this subscription is open.
    pub(crate) in_flight: bool,
    /// The state changed while a NOTIFY was in flight: send the latest when it completes.
    pub(crate) dirty: bool,
    /// The subscription is over; send `terminated;reason=...` once nothing is in flight.
    pub(crate) ending: Option<&'static str>,
}

impl Subscription {
    /// From a stored record (`package` and `resource` already interned).
    pub(crate) fn from_record(
        rec: SubscriptionRecord,
        package: &'static str,
        resource: Arc<str>,
        data: SubData,
        order: u64,
    ) -> Subscription {
        Subscription {
            id: rec.id.into(),
            package,
            resource,
            event_id: rec.event_id.map(Into::into),
            call_id: rec.call_id.into(),
            local_tag: rec.local_tag.into(),
            remote_tag: rec.remote_tag.into(),
            local_uri: rec.local_uri.into(),
            remote_uri: rec.remote_uri.into(),
            remote_target: rec.remote_target.into(),
            route_set: rec.route_set.into_iter().map(Into::into).collect(),
            local_cseq: rec.local_cseq,
            remote_cseq: rec.remote_cseq,
            expires_at: rec.expires_at,
            changed_at: rec.changed_at,
            last_notify_at: rec.last_notify_at,
            source: rec.source,
            data,
            order,
            in_flight: false,
            dirty: false,
            ending: None,
        }
    }

    /// The record the store keeps.
    pub(crate) fn to_record(&self) -> SubscriptionRecord {
        SubscriptionRecord {
            id: self.id.to_string(),
            package: self.package.to_string(),
            resource: self.resource.to_string(),
            event_id: self.event_id.as_deref().map(str::to_string),
            call_id: self.call_id.to_string(),
            local_tag: self.local_tag.to_string(),
            remote_tag: self.remote_tag.to_string(),
            local_uri: self.local_uri.to_string(),
            remote_uri: self.remote_uri.to_string(),
            remote_target: self.remote_target.to_string(),
            route_set: self.route_set.iter().map(|r| r.to_string()).collect(),
            local_cseq: self.local_cseq,
            last_notify_at: self.last_notify_at,
            remote_cseq: self.remote_cseq,
            expires_at: self.expires_at,
            changed_at: self.changed_at,
            state: serde_json::to_string(&self.data).unwrap_or_default(),
            source: self.source,
        }
    }
}

struct Slot {
    gen: u32,
    sub: Option<Subscription>,
}

/// Every subscription, by key and by id.
#[derive(Default)]
pub(crate) struct Subscriptions {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// Hash of the id → key; the rare id whose hash is taken goes to
    /// `collisions` (a map with a random hasher, so crafted ids cannot pile
    /// up there either).
    by_hash: HashMap<u64, SubKey>,
    collisions: HashMap<Box<str>, SubKey>,
}

fn id_hash(id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

impl Subscriptions {
    pub(crate) fn insert(&mut self, sub: Subscription) -> SubKey {
        let h = id_hash(&sub.id);
        let id = sub.id.clone();
        let key = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.sub = Some(sub);
                SubKey::new(slot, s.gen)
            }
            None => {
                let slot = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    gen: 0,
                    sub: Some(sub),
                });
                SubKey::new(slot, 0)
            }
        };
        match self.by_hash.get(&h) {
            Some(_) => {
                self.collisions.insert(id, key);
            }
            None => {
                self.by_hash.insert(h, key);
            }
        }
        key
    }

    pub(crate) fn get(&self, key: SubKey) -> Option<&Subscription> {
        let s = self.slots.get(key.slot())?;
        if s.gen != key.gen() {
            return None;
        }
        s.sub.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: SubKey) -> Option<&mut Subscription> {
        let s = self.slots.get_mut(key.slot())?;
        if s.gen != key.gen() {
            return None;
        }
        s.sub.as_mut()
    }

    pub(crate) fn remove(&mut self, key: SubKey) -> Option<Subscription> {
        let slot = self.slots.get_mut(key.slot())?;
        if slot.gen != key.gen() {
            return None;
        }
        let sub = slot.sub.take()?;
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.slot() as u32);
        let h = id_hash(&sub.id);
        if self.by_hash.get(&h) == Some(&key) {
            self.by_hash.remove(&h);
        } else {
            self.collisions.remove(&sub.id);
        }
        Some(sub)
    }

    pub(crate) fn find(&self, id: &str) -> Option<SubKey> {
        if let Some(&k) = self.by_hash.get(&id_hash(id)) {
            if self.get(k).is_some_and(|s| &*s.id == id) {
                return Some(k);
            }
        }
        self.collisions.get(id).copied()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SubKey, &Subscription)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
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

    fn sub(id: &str) -> Subscription {
        let rec = SubscriptionRecord {
            id: id.into(),
            package: "call-info".into(),
            resource: "sip:a@b".into(),
            event_id: None,
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "sip:a@b".into(),
            remote_uri: "sip:w@b".into(),
            remote_target: "sip:w@127.0.0.1".into(),
            route_set: vec![],
            local_cseq: 1,
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
        Subscription::from_record(rec, "call-info", "sip:a@b".into(), SubData::None, 0)
    }

    #[test]
    fn keys_are_not_reused_by_the_next_tenant() {
        let mut subs = Subscriptions::default();
        let a = subs.insert(sub("a"));
        assert_eq!(subs.find("a"), Some(a));
        assert!(subs.remove(a).is_some());
        let b = subs.insert(sub("b"));
        assert_ne!(a, b, "same slot, new generation");
        assert!(subs.get(a).is_none());
        assert!(subs.remove(a).is_none());
        assert_eq!(subs.find("a"), None);
        assert_eq!(subs.find("b"), Some(b));
        assert_eq!(&*subs.get(b).unwrap().id, "b");
    }

    #[test]
    fn record_round_trip() {
        let s = sub("x");
        let rec = s.to_record();
        let back =
            Subscription::from_record(rec.clone(), "call-info", "sip:a@b".into(), SubData::None, 0);
        assert_eq!(back.to_record(), rec);
    }

    #[test]
    fn many_ids_all_found() {
        let mut subs = Subscriptions::default();
        let keys: Vec<_> = (0..10_000)
            .map(|i| subs.insert(sub(&format!("id{i}"))))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(subs.find(&format!("id{i}")), Some(*k));
        }
        for k in keys.iter().step_by(2) {
            subs.remove(*k);
        }
        for (i, k) in keys.iter().enumerate() {
            let found = subs.find(&format!("id{i}"));
            assert_eq!(found, (i % 2 == 1).then_some(*k));
        }
    }
}
