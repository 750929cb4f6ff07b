//! The optional HTTP interface: a JSON API to inspect and steer lines,
//! Prometheus metrics, and a live page. Off unless `--http HOST:PORT` or
//! the config file's `[http]` table enables it.
//!
//! The HTTP tasks never touch the [`engine::Engine`]: every question or
//! action goes to the engine task as an [`crate::transport::Input::Http`]
//! carrying a [`Call`] with a oneshot reply channel, and the engine task
//! answers it between two inputs ([`query::answer`]). For the live page the
//! engine task keeps [`EngineHooks`]: after each round it renders the lines
//! that changed and broadcasts them; each `/api/events` stream forwards
//! what it receives.
//!
//! # Layout
//! - [`api`]: the axum router, handlers, parameter checks, JSON errors and
//!   the bearer-token / loopback rules.
//! - [`query`]: what the engine task does with each [`Query`].
//! - [`views`]: the JSON shapes (the contract `docs/openapi.json` describes).
//! - [`metrics`]: `/metrics` in the Prometheus text format, and the store
//!   write latency histogram.
//! - `assets/index.html`: the live page, one self-contained file (inline CSS
//!   and JS, nothing fetched from elsewhere).

pub mod api;
pub mod metrics;
pub mod query;
pub mod views;

pub use query::{Call, LineFilter, MetricsSnapshot, Query, RecordFilter, Reply};

use crate::store::StoreWriter;
use crate::transport::{Input, Shutdown};
use engine::Engine;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

/// Where the HTTP interface listens when `[http]` gives no `listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// Live-page updates buffered per stream before a slow reader is told to
/// resynchronise (it then reloads the whole list).
const LIVE_BUFFER: usize = 1024;

/// How the HTTP interface is set up.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The address to bind (port 0: the OS chooses).
    pub listen: SocketAddr,
    /// When set, every API call and `/metrics` need `Authorization: Bearer <token>`.
    /// When not set, reads are open and writes are accepted from loopback only.
    pub token: Option<String>,
}

impl fmt::Debug for HttpSettings {
    // The token is a secret; settings get logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// An API error: an HTTP status and a message, sent as
/// `{"error": {"status": 404, "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// 400: a parameter is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
        }
    }
    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 404,
            message: message.into(),
        }
    }
    /// 500: our fault.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 500,
            message: message.into(),
        }
    }
    /// 503: the engine did not answer in time.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 503,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// One changed line for the live page: its [`views::LineView`] as JSON,
/// stamped with the engine round that produced it, so a page that has just
/// loaded a snapshot can skip updates older than it.
#[derive(Debug, Clone)]
pub struct LiveUpdate {
    /// The round; a snapshot taken after round `n` already contains it.
    pub seq: u64,
    /// The line, as JSON.
    pub json: Arc<str>,
}

/// What the HTTP tasks share with each other and with the engine task.
#[derive(Clone)]
pub struct Shared {
    /// The engine task's input channel.
    pub inputs: mpsc::Sender<Input>,
    /// Rendered line updates (one JSON object per changed line).
    pub live: broadcast::Sender<LiveUpdate>,
    /// How long store writes take, from submission to acknowledgement.
    pub store_latency: metrics::StoreLatency,
    /// The settings.
    pub settings: Arc<HttpSettings>,
    /// Ends streams and the server.
    pub shutdown: Shutdown,
}

/// The engine task's part of the HTTP interface: it feeds the live page
/// and times store writes. Present only when HTTP is enabled.
pub struct EngineHooks {
    live: broadcast::Sender<LiveUpdate>,
    /// Rounds that broadcast something; stamps each [`LiveUpdate`].
    seq: u64,
    store_latency: metrics::StoreLatency,
    /// Submitted batches not yet acknowledged, oldest first.
    in_store: std::collections::VecDeque<(u64, Instant)>,
}

impl EngineHooks {
    /// Start recording line changes in `engine`, and return the hooks the
    /// engine task keeps plus the state the HTTP server shares.
    pub fn new(
        engine: &mut Engine,
        settings: HttpSettings,
        inputs: mpsc::Sender<Input>,
        shutdown: Shutdown,
    ) -> (EngineHooks, Shared) {
        engine.enable_events();
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let store_latency = metrics::StoreLatency::new();
        let hooks = EngineHooks {
            live: live.clone(),
            seq: 0,
            store_latency: store_latency.clone(),
            in_store: std::collections::VecDeque::new(),
        };
        let shared = Shared {
            inputs,
            live,
            store_latency,
            settings: Arc::new(settings),
            shutdown,
        };
        (hooks, shared)
    }

    /// Answer an HTTP call from `engine` (see [`query::answer`]).
    pub fn answer(&mut self, engine: &mut Engine, store: &StoreWriter, call: Call) {
        query::answer(engine, store, crate::server::now(), self.seq, call);
    }

    /// A batch went to the store writer.
    pub fn store_submitted(&mut self, seq: u64) {
        self.in_store.push_back((seq, Instant::now()));
    }

    /// Every batch up to `seq` is durable.
    pub fn store_durable(&mut self, seq: u64) {
        while let Some(&(s, at)) = self.in_store.front() {
            if s > seq {
                break;
            }
            self.store_latency.observe(at.elapsed());
            self.in_store.pop_front();
        }
    }

    /// After a round of inputs: send the lines that changed to every live
    /// page. Rendering is skipped when no page listens, but the engine's
    /// list is always taken so it does not grow.
    pub fn after_round(&mut self, engine: &mut Engine) {
        let changed = engine.take_changed_lines();
        if changed.is_empty() || self.live.receiver_count() == 0 {
            return;
        }
        self.seq += 1;
        for line in query::changed_lines(engine, &changed) {
            match serde_json::to_string(&line) {
                // No receiver left is not an error: the page went away.
                Ok(json) => drop(self.live.send(LiveUpdate {
                    seq: self.seq,
                    json: Arc::from(json),
                })),
                Err(e) => tracing::warn!(error = %e, "cannot encode a line update"),
            }
        }
    }
}

/// Serve HTTP on `listener` until shutdown.
pub async fn serve(listener: TcpListener, shared: Shared) {
    let mut shutdown = shared.shutdown.clone();
    let app = api::router(shared);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.wait().await })
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "HTTP server failed");
    }
}
