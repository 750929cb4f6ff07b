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
use std::collections::BTreeMap;

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
