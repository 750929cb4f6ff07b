//! The JSON shapes of the HTTP API, built from the engine's read-only views
//! ([`engine::inspect`], the store records). Field names here are the API's
//! contract and match `docs/openapi.json`.

use engine::inspect::{AppearanceInfo, Holder};
use engine::package::{PubState, SubData};
use engine::{PublicationRecord, Source, SubscriptionRecord, Time, Transport};
use serde::Serialize;

/// Who claims an appearance.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HolderView {
    /// A call-info publication (its id and current ETag).
    Publication {
        /// Publication id.
        id: String,
        /// Its current entity-tag.
        etag: String,
    },
    /// A line-seize subscription.
    Seize {
        /// Subscription id.
        id: String,
    },
}

impl From<Holder> for HolderView {
    fn from(h: Holder) -> Self {
        match h {
            Holder::Publication { id, etag } => HolderView::Publication { id, etag },
            Holder::Seize { id } => HolderView::Seize { id },
        }
    }
}

/// One non-idle appearance.
#[derive(Debug, Clone, Serialize)]
pub struct AppearanceView {
    /// The appearance index (1 and up).
    pub index: u32,
    /// `seized`, `progressing`, `alerting`, `active`, `held` or `held-private`.
    pub state: &'static str,
    /// Its appearance-uri as published, if any.
    pub uri: Option<String>,
    /// Who claims it.
    pub holder: HolderView,
    /// Since when (RFC 3339, UTC).
    pub since: String,
    /// Since when, in milliseconds since the Unix epoch.
    pub since_ms: u64,
}

impl From<AppearanceInfo> for AppearanceView {
    fn from(a: AppearanceInfo) -> Self {
        AppearanceView {
            index: a.index,
            state: a.state.as_str(),
            uri: a.uri,
            holder: a.holder.into(),
            since: rfc3339(a.since),
            since_ms: a.since.0,
        }
    }
}

/// A line in a list: its appearances and how many subscriptions watch it.
#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    /// The line's AOR (`sip:user@host`).
    pub resource: String,
    /// Its non-idle appearances in index order; every other index is idle.
    pub appearances: Vec<AppearanceView>,
    /// Live subscriptions on the line (call-info watchers and seizes).
    pub watchers: usize,
}

/// Where a peer is: transport and address.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    /// `udp` or `tcp`.
    pub transport: &'static str,
    /// The peer's address.
    pub address: String,
}

impl From<&Source> for PeerView {
    fn from(s: &Source) -> Self {
        PeerView {
            transport: match s.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
            },
            address: s.remote.to_string(),
        }
    }
}

/// The last NOTIFY sent in a subscription's dialog.
#[derive(Debug, Clone, Serialize)]
pub struct LastNotifyView {
    /// Its CSeq (0: none sent yet).
    pub cseq: u32,
    /// When it was sent (RFC 3339, UTC).
    pub at: String,
    /// The final status of the last NOTIFY that completed (408: no answer);
    /// null while none has.
    pub status: Option<u16>,
}

/// A subscription (a watcher of a line, or a seize).
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionView {
    /// Subscription id (use it, percent-encoded, in `DELETE /api/subscriptions/{id}`).
    pub id: String,
    /// `call-info` or `line-seize`.
    pub package: String,
    /// The line watched.
    pub resource: String,
    /// The subscriber (the From URI of its SUBSCRIBE).
    pub subscriber: String,
    /// Where NOTIFYs go (its Contact).
    pub contact: String,
    /// The flow its last SUBSCRIBE came over.
    pub source: PeerView,
    /// When it expires (RFC 3339, UTC).
    pub expires_at: String,
    /// Seconds left.
    pub expires_in: u64,
    /// For a line-seize subscription, the appearance it holds.
    pub seized_index: Option<u32>,
    /// The last NOTIFY we sent it.
    pub last_notify: LastNotifyView,
}

impl SubscriptionView {
    /// The view of `rec` at `now`.
    pub fn new(rec: &SubscriptionRecord, last_status: Option<u16>, now: Time) -> Self {
        let seized_index = match serde_json::from_str::<SubData>(&rec.state) {
            Ok(SubData::Seize(i)) => Some(i),
            _ => None,
        };
        SubscriptionView {
            id: rec.id.clone(),
            package: rec.package.clone(),
            resource: rec.resource.clone(),
            subscriber: rec.remote_uri.clone(),
            contact: rec.remote_target.clone(),
            source: (&rec.source).into(),
            expires_at: rfc3339(rec.expires_at),
            expires_in: now.secs_until(rec.expires_at),
            seized_index,
            last_notify: LastNotifyView {
                cseq: rec.local_cseq,
                at: rfc3339(rec.last_notify_at),
                status: last_status,
            },
        }
    }
}

/// One appearance a publication claims.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimView {
    /// The appearance index.
    pub index: u32,
    /// Its published state.
    pub state: &'static str,
    /// Its appearance-uri, if any.
    pub uri: Option<String>,
}

/// A publication (RFC 3903).
#[derive(Debug, Clone, Serialize)]
pub struct PublicationView {
    /// Publication id (stable across refreshes).
    pub id: String,
    /// The event package.
    pub package: String,
    /// The line published to.
    pub resource: String,
    /// Its current entity-tag.
    pub etag: String,
    /// Who published it.
    pub source: PeerView,
    /// When its state last changed (RFC 3339, UTC).
    pub changed_at: String,
    /// When it expires (RFC 3339, UTC).
    pub expires_at: String,
    /// Seconds left.
    pub expires_in: u64,
    /// For call-info, the appearances it claims (the winning claim per
    /// index is in the line view).
    pub claims: Vec<ClaimView>,
}

impl PublicationView {
    /// The view of `rec` at `now`.
    pub fn new(rec: &PublicationRecord, now: Time) -> Self {
        let claims = match serde_json::from_str::<PubState>(&rec.state) {
            Ok(PubState::Appearances(claims)) => claims
                .into_iter()
                .map(|c| ClaimView {
                    index: c.index,
                    state: c.state.as_str(),
                    uri: c.uri,
                })
                .collect(),
            _ => Vec::new(),
        };
        PublicationView {
            id: rec.id.clone(),
            package: rec.package.clone(),
            resource: rec.resource.clone(),
            etag: rec.etag.clone(),
            source: (&rec.source).into(),
            changed_at: rfc3339(rec.changed_at),
            expires_at: rfc3339(rec.expires_at),
            expires_in: now.secs_until(rec.expires_at),
            claims,
        }
    }
}

/// A line in detail: appearances, watchers, publications.
#[derive(Debug, Clone, Serialize)]
pub struct LineDetail {
    /// The line's AOR.
    pub resource: String,
    /// Its non-idle appearances in index order.
    pub appearances: Vec<AppearanceView>,
    /// Every live subscription on it.
    pub watchers: Vec<SubscriptionView>,
    /// Every live publication to it.
    pub publications: Vec<PublicationView>,
}

/// A page of a longer list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// How many items match the filters, over all pages.
    pub total: usize,
    /// Index of the first item returned.
    pub offset: usize,
    /// The page size asked for.
    pub limit: usize,
    /// The items.
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// Cut one page out of `all` (already filtered and sorted).
    pub fn of(all: Vec<T>, offset: usize, limit: usize) -> Page<T> {
        let total = all.len();
        let items = all.into_iter().skip(offset).take(limit).collect();
        Page {
            total,
            offset,
            limit,
            items,
        }
    }
}

/// `t` as RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.250Z`.
pub fn rfc3339(t: Time) -> String {
    let ms = t.0 % 1000;
    let secs = t.0 / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (the well-known
/// era-based conversion, done in unsigned arithmetic since we start at 1970).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(Time(0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.789.
        assert_eq!(rfc3339(Time(951_827_696_789)), "2000-02-29T12:34:56.789Z");
        // 2024-12-31T23:59:59.999Z
        assert_eq!(rfc3339(Time(1_735_689_599_999)), "2024-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(Time(1_735_689_600_000)), "2025-01-01T00:00:00.000Z");
    }

    #[test]
    fn page_cuts_and_counts() {
        let p = Page::of((0..10).collect::<Vec<_>>(), 8, 5);
        assert_eq!((p.total, p.offset, p.limit), (10, 8, 5));
        assert_eq!(p.items, vec![8, 9]);
        assert!(Page::of((0..3).collect::<Vec<_>>(), 7, 5).items.is_empty());
    }
}
