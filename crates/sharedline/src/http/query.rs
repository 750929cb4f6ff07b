//! The engine task's side of the HTTP interface: it answers each
//! [`Query`] from the [`Engine`] it owns, on the caller's reply channel.
//! Everything here runs on the engine task, so it only reads, filters and
//! copies; rendering bytes for the network happens in the HTTP tasks.

use super::views::{AppearanceView, LineDetail, LineView, Page, PublicationView, SubscriptionView};
use super::ApiError;
use crate::store::{StoreStats, StoreWriter};
use engine::sca::ApState;
use engine::stats::Stats;
use engine::{Engine, Time};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// One question or action from the HTTP side, with where to answer.
#[derive(Debug)]
pub struct Call {
    /// What is asked.
    pub query: Query,
    /// Where the answer goes (the asker may have given up: sending can fail).
    pub reply: oneshot::Sender<Reply>,
}

/// What the HTTP side can ask the engine task.
#[derive(Debug, Clone)]
pub enum Query {
    /// Is the engine task answering? (readiness)
    Ping,
    /// A page of lines.
    Lines {
        /// Which lines.
        filter: LineFilter,
        /// First item.
        offset: usize,
        /// Page size.
        limit: usize,
    },
    /// Every line, for a live page that just connected.
    AllLines,
    /// One line in detail.
    Line(String),
    /// A page of publications.
    Publications {
        /// Which ones.
        filter: RecordFilter,
        /// First item.
        offset: usize,
        /// Page size.
        limit: usize,
    },
    /// A page of subscriptions.
    Subscriptions {
        /// Which ones.
        filter: RecordFilter,
        /// First item.
        offset: usize,
        /// Page size.
        limit: usize,
    },
    /// Free an appearance (ends the seize or drops the publication's claim).
    Release {
        /// The line.
        resource: String,
        /// The appearance index.
        index: u32,
    },
    /// End a subscription (`terminated;reason=deactivated`).
    Terminate {
        /// Its id.
        id: String,
    },
    /// Figures for `/metrics`.
    Metrics,
}

/// Which lines to list.
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    /// Substring of the AOR, case-insensitive.
    pub q: Option<String>,
    /// Only lines with an appearance in this state (`Idle`: lines with none busy).
    pub state: Option<ApState>,
}

/// Which publications or subscriptions to list.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only those on this line (exact AOR).
    pub line: Option<String>,
    /// Only those of this event package.
    pub package: Option<String>,
}

/// The engine task's answer.
#[derive(Debug)]
pub enum Reply {
    /// A JSON document, or why there is none.
    Json(Result<serde_json::Value, ApiError>),
    /// Every line, for the live page, as of live round `seq`.
    Lines {
        /// The last live round broadcast before this snapshot.
        seq: u64,
        /// The lines.
        lines: Vec<LineView>,
    },
    /// Figures for `/metrics`.
    Metrics(Box<MetricsSnapshot>),
    /// Answer to [`Query::Ping`].
    Pong,
}

/// What `/metrics` shows, copied out of the engine at scrape time.
#[derive(Debug, Clone, Default)]
pub struct MetricsSnapshot {
    /// The engine's counters.
    pub stats: Stats,
    /// Live subscriptions by event package.
    pub subscriptions_by_package: BTreeMap<String, u64>,
    /// Live publications by event package.
    pub publications_by_package: BTreeMap<String, u64>,
    /// Non-idle appearances by state, over every line.
    pub appearances_by_state: BTreeMap<&'static str, u64>,
    /// Lines with something live on them.
    pub lines: u64,
    /// Server transactions open (requests we answered, absorbing retransmissions).
    pub server_transactions: u64,
    /// Client transactions open (our NOTIFYs awaiting a final answer).
    pub client_transactions: u64,
    /// The store writer's figures.
    pub store: StoreStats,
}

/// Answer `call` from `engine` at `now` and send the answer back. Operator
/// actions change the engine like any input; the caller drains its outputs
/// afterwards as usual, so the NOTIFYs they cause go out.
/// `live_seq` is the last live round broadcast (see [`super::LiveUpdate`]).
pub fn answer(engine: &mut Engine, store: &StoreWriter, now: Time, live_seq: u64, call: Call) {
    let reply = match call.query {
        Query::Ping => Reply::Pong,
        Query::Lines {
            filter,
            offset,
            limit,
        } => Reply::Json(json(&lines(engine, &filter, offset, limit))),
        Query::AllLines => Reply::Lines {
            seq: live_seq,
            lines: all_lines(engine),
        },
        Query::Line(resource) => Reply::Json(match line_detail(engine, &resource, now) {
            Some(d) => json(&d),
            None => Err(ApiError::not_found(format!("line {resource} not found"))),
        }),
        Query::Publications {
            filter,
            offset,
            limit,
        } => {
            let mut all: Vec<PublicationView> = engine
                .publications()
                .filter(|p| filter.matches(&p.resource, &p.package))
                .map(|p| PublicationView::new(p, now))
                .collect();
            all.sort_unstable_by(|a, b| (&a.resource, &a.id).cmp(&(&b.resource, &b.id)));
            Reply::Json(json(&Page::of(all, offset, limit)))
        }
        Query::Subscriptions {
            filter,
            offset,
            limit,
        } => {
            let mut all: Vec<SubscriptionView> = engine
                .subscriptions()
                .filter(|s| filter.matches(&s.resource, &s.package))
                .map(|s| SubscriptionView::new(&s, engine.last_notify_status(&s.id), now))
                .collect();
            all.sort_unstable_by(|a, b| (&a.resource, &a.id).cmp(&(&b.resource, &b.id)));
            Reply::Json(json(&Page::of(all, offset, limit)))
        }
        Query::Release { resource, index } => {
            Reply::Json(match engine.release(now, &resource, index) {
                Ok(holder) => Ok(serde_json::json!({
                    "resource": resource,
                    "index": index,
                    "released": super::views::HolderView::from(holder),
                })),
                Err(e) => Err(ApiError::not_found(e.to_string())),
            })
        }
        Query::Terminate { id } => Reply::Json(match engine.terminate(now, &id) {
            Ok(()) => Ok(serde_json::json!({
                "id": id,
                "terminated": true,
                "reason": "deactivated",
            })),
            Err(e) => Err(ApiError::not_found(e.to_string())),
        }),
        Query::Metrics => Reply::Metrics(Box::new(metrics(engine, store.stats()))),
    };
    // The asker may have timed out and gone; nothing to do then.
    let _ = call.reply.send(reply);
}

fn json<T: Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(format!("cannot encode: {e}")))
}

impl RecordFilter {
    fn matches(&self, resource: &str, package: &str) -> bool {
        self.line.as_deref().is_none_or(|l| l == resource)
            && self.package.as_deref().is_none_or(|p| p == package)
    }
}

fn lines(engine: &Engine, filter: &LineFilter, offset: usize, limit: usize) -> Page<LineView> {
    let needle = filter.q.as_ref().map(|q| q.to_ascii_lowercase());
    let mut names: Vec<&str> = engine
        .resources()
        .filter(|r| {
            needle
                .as_deref()
                .is_none_or(|n| r.to_ascii_lowercase().contains(n))
        })
        .collect();
    names.sort_unstable();
    let all: Vec<LineView> = names
        .into_iter()
        .filter_map(|r| {
            let aps = engine.line(r);
            let keep = match filter.state {
                None => true,
                Some(ApState::Idle) => aps.is_empty(),
                Some(s) => aps.iter().any(|a| a.state == s),
            };
            keep.then(|| LineView {
                resource: r.to_string(),
                appearances: aps.into_iter().map(AppearanceView::from).collect(),
                watchers: engine.watcher_count(r),
            })
        })
        .collect();
    Page::of(all, offset, limit)
}

fn all_lines(engine: &Engine) -> Vec<LineView> {
    let mut names: Vec<&str> = engine.resources().collect();
    names.sort_unstable();
    names
        .into_iter()
        .map(|r| LineView {
            resource: r.to_string(),
            appearances: engine.line(r).into_iter().map(Into::into).collect(),
            watchers: engine.watcher_count(r),
        })
        .collect()
}

/// The summaries of `changed` lines (a line with nothing left on it has no
/// appearances and no watchers: the page shows it idle).
pub(crate) fn changed_lines(engine: &Engine, changed: &[String]) -> Vec<LineView> {
    changed
        .iter()
        .map(|r| LineView {
            resource: r.clone(),
            appearances: engine.line(r).into_iter().map(Into::into).collect(),
            watchers: engine.watcher_count(r),
        })
        .collect()
}

fn line_detail(engine: &Engine, resource: &str, now: Time) -> Option<LineDetail> {
    if !engine.resources().any(|r| r == resource) {
        return None;
    }
    let mut watchers: Vec<SubscriptionView> = engine
        .line_subscriptions(resource)
        .iter()
        .map(|s| SubscriptionView::new(s, engine.last_notify_status(&s.id), now))
        .collect();
    watchers.sort_unstable_by(|a, b| (&a.package, &a.id).cmp(&(&b.package, &b.id)));
    let mut publications: Vec<PublicationView> = engine
        .publications()
        .filter(|p| p.resource == resource)
        .map(|p| PublicationView::new(p, now))
        .collect();
    publications.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    Some(LineDetail {
        resource: resource.to_string(),
        appearances: engine.line(resource).into_iter().map(Into::into).collect(),
        watchers,
        publications,
    })
}

fn metrics(engine: &Engine, store: StoreStats) -> MetricsSnapshot {
    let mut m = MetricsSnapshot {
        stats: engine.stats().clone(),
        store,
        ..MetricsSnapshot::default()
    };
    for (package, n) in engine.subscription_counts() {
        m.subscriptions_by_package
            .insert(package.to_string(), n as u64);
    }
    for p in engine.publications() {
        *m.publications_by_package
            .entry(p.package.clone())
            .or_default() += 1;
    }
    for r in engine.resources() {
        m.lines += 1;
        for a in engine.line(r) {
            *m.appearances_by_state.entry(a.state.as_str()).or_default() += 1;
        }
    }
    let (server, client) = engine.open_transactions();
    m.server_transactions = server as u64;
    m.client_transactions = client as u64;
    m
}
