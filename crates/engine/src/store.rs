//! What the store keeps, and the writes the engine asks it to make durable.
//!
//! The engine holds the live state in memory and never reads the store while
//! running; it emits [`StoreBatch`]es and waits for their acknowledgement
//! before anything that depends on them leaves (a 200, a NOTIFY with a new
//! CSeq). At start the shell loads a [`Snapshot`] and hands it to
//! [`crate::Engine::restore`]. Records are plain data, so any store (SQLite
//! now, PostgreSQL later) can keep them as rows or as JSON.

use crate::net::Source;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

/// One publication (RFC 3903) as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationRecord {
    /// Stable identity of the publication across refreshes (its ETag changes).
    pub id: String,
    /// Event package name.
    pub package: String,
    /// The resource (AOR) published to, canonical form (`sip:user@host`).
    pub resource: String,
    /// The current entity-tag.
    pub etag: String,
    /// When it expires.
    pub expires_at: Time,
    /// When its state last changed (decides "most recent claim wins").
    pub changed_at: Time,
    /// Package-defined state (for call-info: the appearances, as JSON).
    pub state: String,
    /// Where the publisher sent from.
    pub source: Source,
}

/// One subscription dialog (RFC 6665) as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// Stable identity (derived from the dialog id and the Event id).
    pub id: String,
    /// Event package name.
    pub package: String,
    /// The resource (AOR) watched, canonical form.
    pub resource: String,
    /// The Event header's `id` parameter.
    pub event_id: Option<String>,
    /// Call-ID of the dialog.
    pub call_id: String,
    /// Our tag (To tag of the SUBSCRIBE, From tag of our NOTIFYs).
    pub local_tag: String,
    /// The subscriber's tag.
    pub remote_tag: String,
    /// Our URI (the To of the SUBSCRIBE).
    pub local_uri: String,
    /// The subscriber's URI (the From of the SUBSCRIBE).
    pub remote_uri: String,
    /// Where NOTIFYs go (the Contact of the last SUBSCRIBE).
    pub remote_target: String,
    /// Route set from Record-Route, in the order NOTIFYs use it.
    pub route_set: Vec<String>,
    /// The CSeq of the last NOTIFY we sent, as of this record.
    pub local_cseq: u32,
    /// No NOTIFY of this dialog has used, or will use before the store is
    /// told otherwise, a CSeq above this: a restart goes on above it. CSeqs
    /// are reserved in blocks so that a NOTIFY needs no write of its own.
    #[serde(default)]
    pub cseq_reserved: u32,
    /// When we sent the last NOTIFY, as of this record (shown to operators).
    #[serde(default)]
    pub last_notify_at: Time,
    /// The CSeq of the last SUBSCRIBE we accepted.
    pub remote_cseq: u32,
    /// When it expires.
    pub expires_at: Time,
    /// When it was created or last refreshed.
    pub changed_at: Time,
    /// Package-defined state (for line-seize: the seized appearance index).
    pub state: String,
    /// Where the last SUBSCRIBE came from (the flow NOTIFYs reuse).
    pub source: Source,
}

/// One write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreOp {
    /// Insert or replace a publication by id.
    PutPublication(PublicationRecord),
    /// Remove a publication by id.
    DeletePublication(String),
    /// Insert or replace a subscription by id.
    PutSubscription(SubscriptionRecord),
    /// Remove a subscription by id.
    DeleteSubscription(String),
    /// The subscription reserved NOTIFY CSeqs up to `upto` (its
    /// `cseq_reserved`). Kept apart from `PutSubscription` so a store can
    /// make it a one-column update; it comes once per block of CSeqs, not
    /// once per NOTIFY.
    ReserveCSeq {
        /// Subscription id.
        id: String,
        /// The new reservation.
        upto: u32,
    },
    /// The state watchers see of `resource` changed at `at`. A restart sends
    /// the state again to the watchers of resources that changed shortly
    /// before it, whose NOTIFYs may have been lost with the process.
    ResourceChanged {
        /// The resource (AOR), canonical form.
        resource: String,
        /// When.
        at: Time,
    },
}

/// The writes caused by one input, to be made durable together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBatch {
    /// Increases by one per batch; acknowledge with [`crate::Engine::handle_durable`].
    pub seq: u64,
    /// The writes, in order.
    pub ops: Vec<StoreOp>,
}

/// Everything the store holds, loaded at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Live publications.
    pub publications: Vec<PublicationRecord>,
    /// Live subscriptions.
    pub subscriptions: Vec<SubscriptionRecord>,
    /// When each resource's watched state last changed (from
    /// [`StoreOp::ResourceChanged`]); resources not listed changed long ago.
    pub resources_changed: Vec<(String, Time)>,
}

/// A store kept in memory: applies [`StoreOp`]s as a durable store would
/// and gives back the [`Snapshot`] a restart loads. The engine's tests,
/// its simulation and its fuzz target stand in for the real store with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreModel {
    /// Publications by id.
    pub pubs: BTreeMap<String, PublicationRecord>,
    /// Subscriptions by id.
    pub subs: BTreeMap<String, SubscriptionRecord>,
    /// Each resource's last change.
    pub changed: BTreeMap<String, Time>,
}

impl StoreModel {
    /// Apply one write.
    pub fn apply(&mut self, op: StoreOp) {
        match op {
            StoreOp::PutPublication(p) => {
                self.pubs.insert(p.id.clone(), p);
            }
            StoreOp::DeletePublication(id) => {
                self.pubs.remove(&id);
            }
            StoreOp::PutSubscription(s) => {
                self.subs.insert(s.id.clone(), s);
            }
            StoreOp::DeleteSubscription(id) => {
                self.subs.remove(&id);
            }
            StoreOp::ReserveCSeq { id, upto } => {
                // A dialog the store never kept (a fetch) is not an error.
                if let Some(s) = self.subs.get_mut(&id) {
                    s.cseq_reserved = upto;
                }
            }
            StoreOp::ResourceChanged { resource, at } => {
                self.changed.insert(resource, at);
            }
        }
    }

    /// Everything held, as loaded at start.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            publications: self.pubs.values().cloned().collect(),
            subscriptions: self.subs.values().cloned().collect(),
            resources_changed: self
                .changed
                .iter()
                .map(|(r, at)| (r.clone(), *at))
                .collect(),
        }
    }
}

/// Writes folded to the last one per record: what a store that logs each
/// commit first and applies it to its tables later (see the SQLite store's
/// journal) needs to apply. A subscription created and removed within the
/// window, which is most of them on a busy line-seize server, folds to one
/// delete of a row that was never written; a publication modified a hundred
/// times folds to its last state.
///
/// Applying [`StoreFold::into_ops`] to any state gives what applying every
/// pushed op in order would: each op sets a record (or one column of it) to
/// a value, so only the last of each record counts.
#[derive(Debug, Default)]
pub struct StoreFold {
    pubs: HashMap<String, Option<PublicationRecord>>,
    subs: HashMap<String, SubFold>,
    changed: HashMap<String, Time>,
}

/// The last write to one subscription.
#[derive(Debug)]
enum SubFold {
    Put(Box<SubscriptionRecord>),
    Delete,
    /// Only its CSeq reservation moved.
    Reserve(u32),
}

impl StoreFold {
    /// Fold one more write in, after every earlier one.
    pub fn push(&mut self, op: StoreOp) {
        match op {
            StoreOp::PutPublication(p) => {
                self.pubs.insert(p.id.clone(), Some(p));
            }
            StoreOp::DeletePublication(id) => {
                self.pubs.insert(id, None);
            }
            StoreOp::PutSubscription(s) => {
                self.subs.insert(s.id.clone(), SubFold::Put(Box::new(s)));
            }
            StoreOp::DeleteSubscription(id) => {
                self.subs.insert(id, SubFold::Delete);
            }
            StoreOp::ReserveCSeq { id, upto } => match self.subs.entry(id) {
                Entry::Occupied(mut e) => match e.get_mut() {
                    SubFold::Put(s) => s.cseq_reserved = upto,
                    // As `StoreModel::apply`: a reservation for a dialog the
                    // store does not hold changes nothing.
                    SubFold::Delete => {}
                    SubFold::Reserve(r) => *r = upto,
                },
                Entry::Vacant(e) => {
                    e.insert(SubFold::Reserve(upto));
                }
            },
            StoreOp::ResourceChanged { resource, at } => {
                self.changed.insert(resource, at);
            }
        }
    }

    /// Records (publications, subscriptions, lines) with a pending write.
    pub fn len(&self) -> usize {
        self.pubs.len() + self.subs.len() + self.changed.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One write per record, sorted by table and id so that a store applying
    /// them in order walks each B-tree once, left to right.
    pub fn into_ops(self) -> Vec<StoreOp> {
        let mut pubs: Vec<_> = self.pubs.into_iter().collect();
        pubs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut subs: Vec<_> = self.subs.into_iter().collect();
        subs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut changed: Vec<_> = self.changed.into_iter().collect();
        changed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut ops = Vec::with_capacity(pubs.len() + subs.len() + changed.len());
        ops.extend(pubs.into_iter().map(|(id, p)| match p {
            Some(p) => StoreOp::PutPublication(p),
            None => StoreOp::DeletePublication(id),
        }));
        ops.extend(subs.into_iter().map(|(id, s)| match s {
            SubFold::Put(s) => StoreOp::PutSubscription(*s),
            SubFold::Delete => StoreOp::DeleteSubscription(id),
            SubFold::Reserve(upto) => StoreOp::ReserveCSeq { id, upto },
        }));
        ops.extend(
            changed
                .into_iter()
                .map(|(resource, at)| StoreOp::ResourceChanged { resource, at }),
        );
        ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{ConnId, Source, Transport};
    use proptest::prelude::*;

    fn publication(id: u8, v: u8) -> PublicationRecord {
        PublicationRecord {
            id: format!("p{id}"),
            package: "call-info".into(),
            resource: "sip:line@example.com".into(),
            etag: format!("e{v}"),
            expires_at: Time(u64::from(v)),
            changed_at: Time(1),
            state: format!("state {v}"),
            source: source(None),
        }
    }

    fn source(conn: Option<ConnId>) -> Source {
        Source {
            transport: if conn.is_some() {
                Transport::Tcp
            } else {
                Transport::Udp
            },
            local: "127.0.0.1:5060".parse().expect("literal"),
            remote: "127.0.0.1:5070".parse().expect("literal"),
            conn,
        }
    }

    fn subscription(id: u8, v: u8) -> SubscriptionRecord {
        SubscriptionRecord {
            id: format!("s{id}"),
            package: "line-seize".into(),
            resource: "sip:line@example.com".into(),
            event_id: None,
            call_id: format!("c{id}"),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "sip:line@example.com".into(),
            remote_uri: "sip:a@example.com".into(),
            remote_target: "sip:a@127.0.0.1:5070".into(),
            route_set: vec![],
            local_cseq: u32::from(v),
            cseq_reserved: u32::from(v) * 10,
            last_notify_at: Time(0),
            remote_cseq: 1,
            expires_at: Time(100),
            changed_at: Time(1),
            state: format!("{v}"),
            source: source(Some(ConnId(u64::from(v)))),
        }
    }

    /// Few ids, so that the same record is written again and again.
    fn op() -> impl Strategy<Value = StoreOp> {
        let id = 0u8..4;
        prop_oneof![
            (id.clone(), any::<u8>()).prop_map(|(i, v)| StoreOp::PutPublication(publication(i, v))),
            id.clone()
                .prop_map(|i| StoreOp::DeletePublication(format!("p{i}"))),
            (id.clone(), any::<u8>())
                .prop_map(|(i, v)| StoreOp::PutSubscription(subscription(i, v))),
            id.clone()
                .prop_map(|i| StoreOp::DeleteSubscription(format!("s{i}"))),
            (id.clone(), any::<u32>()).prop_map(|(i, upto)| StoreOp::ReserveCSeq {
                id: format!("s{i}"),
                upto
            }),
            (id, any::<u8>()).prop_map(|(i, at)| StoreOp::ResourceChanged {
                resource: format!("sip:line{i}@example.com"),
                at: Time(u64::from(at)),
            }),
        ]
    }

    proptest! {
        /// From any stored state, the folded writes leave what the writes
        /// one by one leave.
        #[test]
        fn folded_writes_end_where_the_writes_in_order_do(
            before in proptest::collection::vec(op(), 0..12),
            window in proptest::collection::vec(op(), 0..40),
        ) {
            let mut start = StoreModel::default();
            before.into_iter().for_each(|op| start.apply(op));
            let mut in_order = start.clone();
            let mut fold = StoreFold::default();
            for op in window {
                in_order.apply(op.clone());
                fold.push(op);
            }
            let mut folded = start;
            for op in fold.into_ops() {
                folded.apply(op);
            }
            prop_assert_eq!(folded, in_order);
        }
    }

    #[test]
    fn a_subscription_made_and_removed_folds_to_one_delete() {
        let mut fold = StoreFold::default();
        fold.push(StoreOp::PutSubscription(subscription(1, 1)));
        fold.push(StoreOp::ReserveCSeq {
            id: "s1".into(),
            upto: 2000,
        });
        fold.push(StoreOp::DeleteSubscription("s1".into()));
        fold.push(StoreOp::PutPublication(publication(1, 1)));
        fold.push(StoreOp::PutPublication(publication(1, 2)));
        assert_eq!(fold.len(), 2);
        assert_eq!(
            fold.into_ops(),
            vec![
                StoreOp::PutPublication(publication(1, 2)),
                StoreOp::DeleteSubscription("s1".into()),
            ]
        );
    }
}
