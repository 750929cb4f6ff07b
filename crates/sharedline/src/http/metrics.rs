//! `/metrics`: the engine's counters and gauges in the Prometheus text
//! (OpenMetrics) format, built with prometheus-client.
//!
//! Counters live in the engine ([`engine::stats::Stats`]) and gauges are
//! computed from its state, so each scrape copies a [`MetricsSnapshot`] out
//! through the engine task and registers it in a fresh registry: nothing is
//! counted twice and the hot path pays nothing for metrics. The one figure
//! measured here is the store write latency ([`StoreLatency`]), timed by the
//! engine task from submitting a batch to its acknowledgement, which is how
//! long a reply that waits on that batch is held back.

use super::MetricsSnapshot;
use engine::sca::ApState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The content type of what [`encode_snapshot`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Store write latency: submission to acknowledgement, in seconds. Cheap to
/// clone (shared histogram).
#[derive(Debug, Clone)]
pub struct StoreLatency(Histogram);

impl StoreLatency {
    /// An empty histogram with buckets from 100 µs to about 3 s.
    pub fn new() -> StoreLatency {
        StoreLatency(Histogram::new(exponential_buckets(0.0001, 2.0, 16)))
    }

    /// Record one write.
    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }
}

impl Default for StoreLatency {
    fn default() -> Self {
        StoreLatency::new()
    }
}

type Labels = Vec<(String, String)>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn counter_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels, u64)>,
) {
    let f: Family<Labels, Counter> = Family::default();
    for (labels, v) in values {
        f.get_or_create(&labels).inc_by(v);
    }
    registry.register(name, help, f);
}

fn gauge_family(
    registry: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (Labels, u64)>,
) {
    let f: Family<Labels, Gauge> = Family::default();
    for (labels, v) in values {
        f.get_or_create(&labels)
            .set(i64::try_from(v).unwrap_or(i64::MAX));
    }
    registry.register(name, help, f);
}

fn label(name: &str, value: impl ToString) -> Labels {
    vec![(name.to_string(), value.to_string())]
}

/// The non-idle appearance states, so every one is reported even at zero.
const BUSY_STATES: [ApState; 6] = [
    ApState::Seized,
    ApState::Progressing,
    ApState::Alerting,
    ApState::Active,
    ApState::Held,
    ApState::HeldPrivate,
];

/// Render `m` and the latency histogram as a `/metrics` body.
pub fn encode_snapshot(m: &MetricsSnapshot, latency: &StoreLatency) -> Result<String, String> {
    let mut r = Registry::with_prefix("sharedline");
    let s = &m.stats;

    let mut requests: Vec<(Labels, u64)> = s
        .requests
        .iter()
        .map(|(method, n)| (label("method", method), *n))
        .collect();
    requests.sort();
    counter_family(
        &mut r,
        "sip_requests",
        "SIP requests received, by method",
        requests,
    );
    let mut responses: Vec<(Labels, u64)> = s
        .responses
        .iter()
        .map(|(status, n)| (label("status", status), *n))
        .collect();
    responses.sort();
    counter_family(
        &mut r,
        "sip_responses",
        "SIP responses sent, by status code",
        responses,
    );
    let mut refusals: Vec<(Labels, u64)> = s
        .refusals
        .iter()
        .map(|((status, reason), n)| {
            (
                vec![
                    ("status".to_string(), status.to_string()),
                    ("reason".to_string(), reason.clone()),
                ],
                *n,
            )
        })
        .collect();
    refusals.sort();
    counter_family(
        &mut r,
        "sip_refusals",
        "Requests refused, by status code and reason phrase",
        refusals,
    );

    counter(
        &mut r,
        "notify_sent",
        "NOTIFY transactions started",
        s.notifies_sent,
    );
    counter(
        &mut r,
        "notify_retransmissions",
        "NOTIFY retransmissions (Timer E)",
        s.notifies_retransmitted,
    );
    counter(
        &mut r,
        "notify_failures",
        "NOTIFYs answered with a 3xx-6xx",
        s.notifies_failed,
    );
    counter(
        &mut r,
        "notify_timeouts",
        "NOTIFYs that got no final answer (Timer F)",
        s.notifies_timed_out,
    );

    // Every known package appears, with 0 when nothing is live.
    let known = engine::package::Packages::new(&BTreeMap::new());
    let mut subs: BTreeMap<String, u64> = known.iter().map(|p| (p.name().to_string(), 0)).collect();
    let mut pubs = subs.clone();
    subs.extend(
        m.subscriptions_by_package
            .iter()
            .map(|(k, v)| (k.clone(), *v)),
    );
    pubs.extend(
        m.publications_by_package
            .iter()
            .map(|(k, v)| (k.clone(), *v)),
    );
    gauge_family(
        &mut r,
        "subscriptions",
        "Live subscriptions, by event package",
        subs.into_iter().map(|(p, n)| (label("package", p), n)),
    );
    gauge_family(
        &mut r,
        "publications",
        "Live publications, by event package",
        pubs.into_iter().map(|(p, n)| (label("package", p), n)),
    );
    gauge_family(
        &mut r,
        "appearances",
        "Non-idle appearances over every line, by state",
        BUSY_STATES.iter().map(|st| {
            let n = m
                .appearances_by_state
                .get(st.as_str())
                .copied()
                .unwrap_or(0);
            (label("state", st.as_str()), n)
        }),
    );
    let seized = m.appearances_by_state.get("seized").copied().unwrap_or(0);
    let busy: u64 = m.appearances_by_state.values().sum();
    gauge(
        &mut r,
        "appearances_seized",
        "Appearances seized (line-seize)",
        seized,
    );
    gauge(
        &mut r,
        "appearances_busy",
        "Appearances in any non-idle state",
        busy,
    );
    gauge(
        &mut r,
        "lines",
        "Lines with something live on them",
        m.lines,
    );
    gauge_family(
        &mut r,
        "transactions",
        "Open SIP transactions: server (requests answered) and client (our NOTIFYs)",
        [
            (label("kind", "server"), m.server_transactions),
            (label("kind", "client"), m.client_transactions),
        ],
    );

    counter(
        &mut r,
        "store_batches_emitted",
        "Store batches the engine emitted",
        s.store_batches,
    );
    counter(
        &mut r,
        "store_batches_committed",
        "Store batches committed and acknowledged",
        m.store.batches,
    );
    counter(
        &mut r,
        "store_commits",
        "Store transactions committed (group commit joins batches)",
        m.store.transactions,
    );
    counter(
        &mut r,
        "store_commit_failures",
        "Store commits that failed and were retried",
        m.store.failures,
    );
    let last: Gauge<f64, AtomicU64> = Gauge::default();
    last.set(m.store.last_commit.as_secs_f64());
    r.register(
        "store_last_commit_seconds",
        "Duration of the last store commit",
        last,
    );
    r.register(
        "store_write_seconds",
        "Store write latency: from submitting a batch to its acknowledgement",
        latency.0.clone(),
    );

    let mut out = String::with_capacity(8192);
    encode(&mut out, &r).map_err(|e| format!("cannot encode metrics: {e}"))?;
    Ok(out)
}
