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
    /// The CSeq of the last NOTIFY we sent.
    pub local_cseq: u32,
    /// When we sent it (a restart re-sends the state to watchers whose
    /// last NOTIFY may have been lost with the process).
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
    /// The subscription sent a NOTIFY with this CSeq: only its `local_cseq`
    /// changed. Kept apart from `PutSubscription` because it happens on every
    /// NOTIFY and a store can make it a one-column update.
    SetNotifyCSeq {
        /// Subscription id.
        id: String,
        /// The CSeq of the NOTIFY just sent.
        cseq: u32,
        /// When it was sent.
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
}
