//! The HTTP routes: JSON API, `/metrics`, the live page and its event
//! stream, and the rules on who may call what.
//!
//! Access rules ([`check_access`]): with a token configured, every API call,
//! `/api/events` and `/metrics` need `Authorization: Bearer <token>` (401
//! otherwise). Without one, reads are open and writes are accepted from
//! loopback only (403 otherwise). The page itself, the OpenAPI document and
//! health/readiness hold no line data and are always open, so probes and a
//! browser can reach them; the page asks for the token and sends it itself.
//!
//! Every error is JSON, `{"error": {"status": N, "message": "..."}}`, with
//! the matching HTTP status, including unknown routes and bad parameters.

use super::query::{LineFilter, Query, RecordFilter, Reply};
use super::{metrics, ApiError, Call, Shared};
use crate::transport::Input;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use engine::sca::ApState;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// How long a handler waits for the engine task before answering 503.
const ENGINE_WAIT: Duration = Duration::from_secs(5);
/// How long readiness waits for the engine task.
const READY_WAIT: Duration = Duration::from_secs(2);
/// Page size when `limit` is not given, and the largest allowed.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The live page.
const PAGE: &str = include_str!("assets/index.html");
/// The API's description, kept in the repository under `docs/`.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// Every route the server answers, as `(method, path)` with OpenAPI-style
/// `{params}`; tests compare it with `docs/openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/api/health"),
    ("get", "/api/ready"),
    ("get", "/api/openapi.json"),
    ("get", "/api/lines"),
    ("get", "/api/lines/{resource}"),
    ("post", "/api/lines/{resource}/appearances/{index}/release"),
    ("get", "/api/publications"),
    ("get", "/api/subscriptions"),
    ("delete", "/api/subscriptions/{id}"),
    ("get", "/api/events"),
    ("get", "/metrics"),
];

/// The whole HTTP interface.
pub fn router(shared: Shared) -> Router {
    let guarded = Router::new()
        .route("/api/lines", get(list_lines))
        .route("/api/lines/{resource}", get(get_line))
        .route(
            "/api/lines/{resource}/appearances/{index}/release",
            post(release),
        )
        .route("/api/publications", get(list_publications))
        .route("/api/subscriptions", get(list_subscriptions))
        .route("/api/subscriptions/{id}", delete(terminate))
        .route("/api/events", get(events))
        .route("/metrics", get(get_metrics))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/api/openapi.json", get(openapi))
        .merge(guarded)
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(shared)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({
            "error": { "status": status.as_u16(), "message": self.message }
        });
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sharedline\""),
            );
        }
        resp
    }
}

/// Who may make this call. `authorization` is the raw header value, `peer`
/// the client's address, `write` whether the call changes state.
pub fn check_access(
    token: Option<&str>,
    authorization: Option<&str>,
    peer: IpAddr,
    write: bool,
) -> Result<(), ApiError> {
    let unauthorized = |m: &str| ApiError {
        status: 401,
        message: m.to_string(),
    };
    match token {
        Some(expected) => {
            let given = authorization
                .ok_or_else(|| unauthorized("this server needs Authorization: Bearer <token>"))?;
            let (scheme, value) = given
                .trim()
                .split_once(' ')
                .ok_or_else(|| unauthorized("Authorization must be `Bearer <token>`"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(unauthorized("Authorization must be `Bearer <token>`"));
            }
            if !constant_time_eq(value.trim().as_bytes(), expected.as_bytes()) {
                return Err(unauthorized("wrong bearer token"));
            }
            Ok(())
        }
        None if write && !peer.to_canonical().is_loopback() => Err(ApiError {
            status: 403,
            message: "write calls from other hosts need a token: set [http] token in the config"
                .into(),
        }),
        None => Ok(()),
    }
}

/// Compare without stopping at the first difference, so the time taken
/// does not tell how much of a guessed token was right (only its length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

async fn authorize(
    State(shared): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match check_access(
        shared.settings.token.as_deref(),
        authorization,
        peer.ip(),
        write,
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError {
        status: 405,
        message: format!("{method} is not allowed on {}", uri.path()),
    }
}

/// Ask the engine task and wait for its answer.
async fn ask(shared: &Shared, query: Query, wait: Duration) -> Result<Reply, ApiError> {
    let (reply, answer) = oneshot::channel();
    let asked = async {
        shared
            .inputs
            .send(Input::Http(Call { query, reply }))
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable("the server is shutting down"))
    };
    tokio::time::timeout(wait, asked)
        .await
        .map_err(|_| ApiError::unavailable("the engine did not answer in time"))?
}

/// Ask for a JSON document.
async fn ask_json(shared: &Shared, query: Query) -> Result<Json<serde_json::Value>, ApiError> {
    match ask(shared, query, ENGINE_WAIT).await? {
        Reply::Json(r) => r.map(Json),
        _ => Err(ApiError::internal("unexpected answer from the engine")),
    }
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn ready(State(shared): State<Shared>) -> Result<Json<serde_json::Value>, ApiError> {
    match ask(&shared, Query::Ping, READY_WAIT).await? {
        Reply::Pong => Ok(Json(serde_json::json!({ "ready": true }))),
        _ => Err(ApiError::internal("unexpected answer from the engine")),
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Query parameters, checked: unknown names and bad values are 400s.
struct Params(Vec<(String, String)>);

impl Params {
    fn new(
        q: Result<axum::extract::Query<Vec<(String, String)>>, QueryRejection>,
        allowed: &[&str],
    ) -> Result<Params, ApiError> {
        let axum::extract::Query(pairs) =
            q.map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        for (name, _) in &pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{name}` (expected one of: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(Params(pairs))
    }

    /// The last value given for `name`, if any (empty counts as absent).
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn page(&self) -> Result<(usize, usize), ApiError> {
        let offset = match self.get("offset") {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("offset must be a whole number, got `{v}`"))
            })?,
        };
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "limit must be between 1 and {MAX_LIMIT}, got `{v}`"
                    )))
                }
            },
        };
        Ok((offset, limit))
    }

    fn package(&self) -> Result<Option<String>, ApiError> {
        let Some(p) = self.get("package") else {
            return Ok(None);
        };
        let known = engine::package::Packages::new(&std::collections::BTreeMap::new());
        if known.get(p).is_none() {
            let names: Vec<&str> = known.iter().map(|k| k.name()).collect();
            return Err(ApiError::bad_request(format!(
                "unknown package `{p}` (known: {})",
                names.join(", ")
            )));
        }
        Ok(Some(p.to_string()))
    }
}

/// A line as the API takes it: the AOR as the engine keys it, `sip:`
/// added when left out (`bob@example.com` names `sip:bob@example.com`).
fn resource_param(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::bad_request("empty line name"));
    }
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("sip:") || lower.starts_with("sips:") {
        Ok(raw.to_string())
    } else {
        Ok(format!("sip:{raw}"))
    }
}

async fn list_lines(
    State(shared): State<Shared>,
    q: Result<axum::extract::Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = Params::new(q, &["q", "state", "offset", "limit"])?;
    let (offset, limit) = p.page()?;
    let state = match p.get("state") {
        None => None,
        Some(s) => Some(ApState::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state `{s}` (expected idle, seized, progressing, alerting, active, held or held-private)"
            ))
        })?),
    };
    let filter = LineFilter {
        q: p.get("q").map(str::to_string),
        state,
    };
    ask_json(
        &shared,
        Query::Lines {
            filter,
            offset,
            limit,
        },
    )
    .await
}

async fn get_line(
    State(shared): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    ask_json(&shared, Query::Line(resource_param(&raw)?)).await
}

async fn release(
    State(shared): State<Shared>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path((raw, index)) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let resource = resource_param(&raw)?;
    let index = match index.parse::<u32>() {
        Ok(i) if i >= 1 => i,
        _ => {
            return Err(ApiError::bad_request(format!(
                "appearance index must be a whole number from 1, got `{index}`"
            )))
        }
    };
    ask_json(&shared, Query::Release { resource, index }).await
}

fn record_filter(p: &Params) -> Result<RecordFilter, ApiError> {
    Ok(RecordFilter {
        line: p.get("line").map(resource_param).transpose()?,
        package: p.package()?,
    })
}

/// The query of a record listing: the same filters and paging for both kinds.
fn record_query(
    q: Result<axum::extract::Query<Vec<(String, String)>>, QueryRejection>,
    kind: fn(RecordFilter, usize, usize) -> Query,
) -> Result<Query, ApiError> {
    let p = Params::new(q, &["line", "package", "offset", "limit"])?;
    let (offset, limit) = p.page()?;
    Ok(kind(record_filter(&p)?, offset, limit))
}

async fn list_publications(
    State(shared): State<Shared>,
    q: Result<axum::extract::Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = record_query(q, |filter, offset, limit| Query::Publications {
        filter,
        offset,
        limit,
    })?;
    ask_json(&shared, query).await
}

async fn list_subscriptions(
    State(shared): State<Shared>,
    q: Result<axum::extract::Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = record_query(q, |filter, offset, limit| Query::Subscriptions {
        filter,
        offset,
        limit,
    })?;
    ask_json(&shared, query).await
}

async fn terminate(
    State(shared): State<Shared>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if id.is_empty() {
        return Err(ApiError::bad_request("empty subscription id"));
    }
    ask_json(&shared, Query::Terminate { id }).await
}

async fn get_metrics(State(shared): State<Shared>) -> Result<Response, ApiError> {
    let snapshot = match ask(&shared, Query::Metrics, ENGINE_WAIT).await? {
        Reply::Metrics(m) => m,
        _ => return Err(ApiError::internal("unexpected answer from the engine")),
    };
    let body =
        metrics::encode_snapshot(&snapshot, &shared.store_latency).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response())
}

/// Where a live stream is.
enum Stream {
    /// Send this snapshot first.
    Start(Event, u64),
    /// Forward updates newer than this round.
    Live(u64),
    /// Over.
    Done,
}

/// `/api/events`: Server-Sent Events. First a `snapshot` event (every
/// line, a JSON array), then one `line` event per changed line. A reader
/// too slow to keep up gets a fresh `snapshot` instead of what it missed.
async fn events(State(shared): State<Shared>) -> Result<Response, ApiError> {
    // Subscribe before the snapshot is taken so no change falls between.
    let rx = shared.live.subscribe();
    let (first, seq) = snapshot_event(&shared).await?;
    let state = (Stream::Start(first, seq), rx, shared);
    let stream = futures_util::stream::unfold(state, |(mut at, mut rx, shared)| async move {
        loop {
            match at {
                Stream::Done => return None,
                Stream::Start(ev, seq) => {
                    return Some((Ok::<_, Infallible>(ev), (Stream::Live(seq), rx, shared)))
                }
                Stream::Live(seen) => {
                    let mut shutdown = shared.shutdown.clone();
                    let got = tokio::select! {
                        _ = shutdown.wait() => return None,
                        got = rx.recv() => got,
                    };
                    match got {
                        Ok(u) if u.seq <= seen => at = Stream::Live(seen),
                        Ok(u) => {
                            let ev = Event::default().event("line").data(&*u.json);
                            return Some((Ok(ev), (Stream::Live(u.seq), rx, shared)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            at = match snapshot_event(&shared).await {
                                Ok((ev, seq)) => Stream::Start(ev, seq),
                                Err(_) => Stream::Done,
                            };
                        }
                        Err(broadcast::error::RecvError::Closed) => at = Stream::Done,
                    }
                }
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

async fn snapshot_event(shared: &Shared) -> Result<(Event, u64), ApiError> {
    match ask(shared, Query::AllLines, ENGINE_WAIT).await? {
        Reply::Lines { seq, lines } => {
            let json = serde_json::to_string(&lines)
                .map_err(|e| ApiError::internal(format!("cannot encode: {e}")))?;
            Ok((Event::default().event("snapshot").data(json), seq))
        }
        _ => Err(ApiError::internal("unexpected answer from the engine")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const FAR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn without_token_reads_are_open_and_writes_need_loopback() {
        assert!(check_access(None, None, FAR, false).is_ok());
        assert!(check_access(None, None, LOOP, true).is_ok());
        assert!(check_access(None, None, "::1".parse().unwrap(), true).is_ok());
        // IPv4 loopback seen through a dual-stack socket.
        assert!(check_access(None, None, "::ffff:127.0.0.1".parse().unwrap(), true).is_ok());
        let e = check_access(None, None, FAR, true).unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("token"), "{}", e.message);
        // A token offered to a server without one changes nothing.
        assert_eq!(
            check_access(None, Some("Bearer x"), FAR, true)
                .unwrap_err()
                .status,
            403
        );
    }

    #[test]
    fn with_token_every_call_needs_it_from_anywhere() {
        let t = Some("s3cret");
        for (peer, write) in [(LOOP, false), (LOOP, true), (FAR, false), (FAR, true)] {
            assert_eq!(check_access(t, None, peer, write).unwrap_err().status, 401);
            assert_eq!(
                check_access(t, Some("Bearer wrong"), peer, write)
                    .unwrap_err()
                    .status,
                401
            );
            assert_eq!(
                check_access(t, Some("Basic czNjcmV0"), peer, write)
                    .unwrap_err()
                    .status,
                401
            );
            assert_eq!(
                check_access(t, Some("Bearer s3cre"), peer, write)
                    .unwrap_err()
                    .status,
                401
            );
            assert_eq!(
                check_access(t, Some("Bearer s3cret!"), peer, write)
                    .unwrap_err()
                    .status,
                401
            );
            assert!(check_access(t, Some("Bearer s3cret"), peer, write).is_ok());
            assert!(check_access(t, Some("bearer  s3cret "), peer, write).is_ok());
        }
    }

    #[test]
    fn resource_names_get_their_scheme() {
        assert_eq!(
            resource_param("bob@example.com").unwrap(),
            "sip:bob@example.com"
        );
        assert_eq!(
            resource_param("sip:bob@example.com").unwrap(),
            "sip:bob@example.com"
        );
        assert!(resource_param(" ").is_err());
    }

    #[test]
    fn openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for (method, path) in ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "docs/openapi.json lacks {method} {path}"
            );
        }
        let documented: usize = paths
            .values()
            .map(|p| p.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(
            documented,
            ROUTES.len(),
            "docs/openapi.json documents routes we do not serve"
        );
    }
}
