//! The HTTP JSON API against the real binary: every endpoint, its errors,
//! filters and pagination, and the operator actions (release, terminate)
//! seen from the SIP side by real phones on UDP.

mod common;
mod http_support;

use common::Server;
use http_support::{call, call_info, encode, get_json, start_http, Phone};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BOB: &str = "sip:bob@example.com";
const IDLE: &str = "<sip:example.com>;appearance-index=*;appearance-state=idle";

#[test]
fn health_ready_openapi_page_and_unknown_routes() {
    let (_server, http) = start_http(&[]);
    assert_eq!(get_json(http, "/api/health")["status"], "ok");
    assert_eq!(get_json(http, "/api/ready")["ready"], true);

    let doc = get_json(http, "/api/openapi.json");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let served: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/openapi.json")).unwrap();
    assert_eq!(doc, served, "the served description is the one in docs/");

    let page = call("GET", http, "/", None);
    assert_eq!(page.status, 200);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        page.body.contains("/api/events"),
        "the page subscribes to the event stream"
    );
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "the page fetches nothing from elsewhere"
    );

    call("GET", http, "/api/nope", None).assert_error(404, "no such endpoint");
    call("PUT", http, "/api/lines", None).assert_error(405, "PUT");
}

#[test]
fn lines_list_and_line_detail() {
    let (server, http) = start_http(&[]);
    assert_eq!(get_json(http, "/api/lines")["total"], 0);

    let mut watcher = Phone::new(&server);
    let (_d, first) = watcher.watch(BOB);
    assert_eq!(call_info(&first), IDLE);
    let mut pbx = Phone::new(&server);
    let r = pbx.publish(
        BOB,
        "Expires: 600\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri=\"sip:alice@example.com\"\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.start);
    let etag = r.header("sip-etag").unwrap().to_string();
    watcher.notify();
    let mut seizer = Phone::new(&server);
    seizer.seize(BOB, 2);
    watcher.notify();
    Phone::new(&server).publish_state("sip:carol@example.com", 1, "active");

    let lines = get_json(http, "/api/lines");
    assert_eq!(lines["total"], 2);
    assert_eq!(lines["offset"], 0);
    assert_eq!(lines["limit"], 100);
    let items = lines["items"].as_array().unwrap();
    assert_eq!(items[0]["resource"], BOB, "sorted by AOR");
    assert_eq!(items[1]["resource"], "sip:carol@example.com");
    assert_eq!(
        items[0]["watchers"], 2,
        "the call-info watcher and the seize"
    );
    let aps = items[0]["appearances"].as_array().unwrap();
    assert_eq!(aps.len(), 2);
    assert_eq!(aps[0]["index"], 1);
    assert_eq!(aps[0]["state"], "alerting");
    assert_eq!(aps[0]["uri"], "\"sip:alice@example.com\"");
    assert_eq!(aps[0]["holder"]["kind"], "publication");
    assert_eq!(aps[0]["holder"]["etag"], etag.as_str());
    assert_eq!(aps[1]["index"], 2);
    assert_eq!(aps[1]["state"], "seized");
    assert_eq!(aps[1]["holder"]["kind"], "seize");
    // `since` is now-ish, in both forms.
    let since = aps[1]["since_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now >= since && now - since < 60_000,
        "since {since}, now {now}"
    );
    assert!(aps[1]["since"].as_str().unwrap().ends_with('Z'));

    // The detail view, with and without the scheme.
    let d = get_json(http, "/api/lines/sip:bob@example.com");
    let again = get_json(http, "/api/lines/bob@example.com");
    assert_eq!(again["resource"], BOB);
    assert_eq!(again["appearances"], d["appearances"]);
    assert_eq!(
        d["appearances"], items[0]["appearances"],
        "list and detail agree"
    );
    assert_eq!(d["resource"], BOB);
    assert_eq!(d["appearances"].as_array().unwrap().len(), 2);
    let watchers = d["watchers"].as_array().unwrap();
    assert_eq!(watchers.len(), 2);
    let ci = watchers
        .iter()
        .find(|w| w["package"] == "call-info")
        .unwrap();
    assert_eq!(ci["contact"], format!("sip:phone@{}", watcher.addr()));
    assert_eq!(ci["source"]["transport"], "udp");
    assert_eq!(ci["source"]["address"], watcher.addr().to_string());
    let left = ci["expires_in"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "expires_in {left}");
    assert!(
        ci["last_notify"]["cseq"].as_u64().unwrap() >= 3,
        "three NOTIFYs so far"
    );
    // The phone answers every NOTIFY with 200, and two completed before the third.
    assert_eq!(ci["last_notify"]["status"], 200);
    assert!(ci["seized_index"].is_null());
    let ls = watchers
        .iter()
        .find(|w| w["package"] == "line-seize")
        .unwrap();
    assert_eq!(ls["seized_index"], 2);
    assert_eq!(ls["id"], aps[1]["holder"]["id"]);
    let pubs = d["publications"].as_array().unwrap();
    assert_eq!(pubs.len(), 1);
    assert_eq!(pubs[0]["etag"], etag.as_str());
    assert_eq!(pubs[0]["source"]["address"], pbx.addr().to_string());
    assert_eq!(pubs[0]["claims"][0]["state"], "alerting");

    call("GET", http, "/api/lines/sip:nobody@example.com", None)
        .assert_error(404, "line sip:nobody@example.com not found");
}

#[test]
fn filters_pagination_and_bad_parameters() {
    let (server, http) = start_http(&[]);
    let mut pbx = Phone::new(&server);
    for i in 1..=5 {
        let state = if i % 2 == 0 { "active" } else { "held" };
        pbx.publish_state(&format!("sip:line{i}@example.com"), 1, state);
    }
    let mut phone = Phone::new(&server);
    phone.watch("sip:line2@example.com");
    phone.seize("sip:line3@example.com", 4);
    phone.seize("sip:line4@example.com", 2);

    let page = get_json(http, "/api/lines?limit=2");
    assert_eq!(page["total"], 5);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["resource"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sip:line1@example.com", "sip:line2@example.com"]);
    let page = get_json(http, "/api/lines?limit=2&offset=4");
    assert_eq!(page["total"], 5);
    assert_eq!(page["offset"], 4);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["resource"], "sip:line5@example.com");
    assert_eq!(
        get_json(http, "/api/lines?offset=9")["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let q = get_json(http, "/api/lines?q=LINE3");
    assert_eq!(q["total"], 1);
    assert_eq!(q["items"][0]["resource"], "sip:line3@example.com");
    assert_eq!(get_json(http, "/api/lines?state=active")["total"], 2);
    assert_eq!(get_json(http, "/api/lines?state=held")["total"], 3);
    let seized = get_json(http, "/api/lines?state=seized");
    assert_eq!(seized["total"], 2);
    assert_eq!(get_json(http, "/api/lines?state=idle")["total"], 0);

    let pubs = get_json(http, "/api/publications");
    assert_eq!(pubs["total"], 5);
    let pubs = get_json(
        http,
        "/api/publications?line=line4@example.com&package=call-info",
    );
    assert_eq!(pubs["total"], 1);
    assert_eq!(pubs["items"][0]["resource"], "sip:line4@example.com");
    assert_eq!(pubs["items"][0]["claims"][0]["state"], "active");
    assert_eq!(
        get_json(http, "/api/publications?package=line-seize")["total"],
        0
    );
    let p2 = get_json(http, "/api/publications?limit=2&offset=2");
    assert_eq!(p2["items"][0]["resource"], "sip:line3@example.com");

    let subs = get_json(http, "/api/subscriptions");
    assert_eq!(subs["total"], 3);
    let seizes = get_json(http, "/api/subscriptions?package=line-seize");
    assert_eq!(seizes["total"], 2);
    assert_eq!(seizes["items"][0]["resource"], "sip:line3@example.com");
    assert_eq!(seizes["items"][0]["seized_index"], 4);
    let one = get_json(http, "/api/subscriptions?line=sip:line2@example.com");
    assert_eq!(one["total"], 1);
    assert_eq!(one["items"][0]["package"], "call-info");
    assert_eq!(
        get_json(http, "/api/subscriptions?limit=1&offset=1")["items"][0]["resource"],
        "sip:line3@example.com"
    );

    for (path, needle) in [
        ("/api/lines?limit=0", "limit"),
        ("/api/lines?limit=1001", "limit"),
        ("/api/lines?limit=ten", "limit"),
        ("/api/lines?offset=-1", "offset"),
        ("/api/lines?state=ringing", "unknown state"),
        ("/api/lines?colour=red", "unknown parameter `colour`"),
        ("/api/publications?package=presence", "unknown package"),
        (
            "/api/subscriptions?line=sip:x@y&sort=id",
            "unknown parameter `sort`",
        ),
        ("/api/subscriptions?offset=1.5", "offset"),
    ] {
        call("GET", http, path, None).assert_error(400, needle);
    }
}

#[test]
fn release_of_a_seize_ends_it_and_tells_the_watchers() {
    let (server, http) = start_http(&[]);
    let mut watcher = Phone::new(&server);
    watcher.watch(BOB);
    let mut seizer = Phone::new(&server);
    let (_d, first) = seizer.seize(BOB, 1);
    assert!(first
        .header("subscription-state")
        .unwrap()
        .starts_with("active"));
    let n = watcher.notify();
    assert!(
        call_info(&n).contains("appearance-index=1;appearance-state=seized"),
        "{}",
        call_info(&n)
    );

    let r = call(
        "POST",
        http,
        "/api/lines/sip:bob@example.com/appearances/1/release",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["resource"], BOB);
    assert_eq!(j["index"], 1);
    assert_eq!(j["released"]["kind"], "seize");

    let end = seizer.notify();
    assert_eq!(
        end.header("subscription-state"),
        Some("terminated;reason=deactivated"),
        "the seizer is told"
    );
    let n = watcher.notify();
    assert_eq!(call_info(&n), IDLE, "the watchers see the appearance idle");
    let line = get_json(http, "/api/lines/sip:bob@example.com");
    assert_eq!(line["appearances"].as_array().unwrap().len(), 0);
    assert_eq!(line["watchers"].as_array().unwrap().len(), 1);

    call(
        "POST",
        http,
        "/api/lines/sip:bob@example.com/appearances/1/release",
        None,
    )
    .assert_error(404, "appearance 1 of sip:bob@example.com not found");
}

#[test]
fn release_of_a_published_appearance_drops_only_that_claim() {
    let (server, http) = start_http(&[]);
    let mut watcher = Phone::new(&server);
    watcher.watch(BOB);
    let mut pbx = Phone::new(&server);
    let r = pbx.publish(
        BOB,
        "Expires: 600\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=active, <sip:example.com>;appearance-index=2;appearance-state=held\r\n",
    );
    assert_eq!(r.status, 200);
    watcher.notify();

    let r = call(
        "POST",
        http,
        "/api/lines/bob@example.com/appearances/1/release",
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["released"]["kind"], "publication");
    let n = watcher.notify();
    assert_eq!(
        call_info(&n),
        format!("<sip:example.com>;appearance-index=2;appearance-state=held, {IDLE}")
    );
    let pubs = get_json(http, "/api/publications");
    let claims = pubs["items"][0]["claims"].as_array().unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["index"], 2);

    let base = "/api/lines/bob@example.com/appearances";
    call("POST", http, &format!("{base}/9/release"), None).assert_error(404, "appearance 9");
    call("POST", http, &format!("{base}/0/release"), None).assert_error(400, "index");
    call("POST", http, &format!("{base}/one/release"), None).assert_error(400, "index");
    call(
        "POST",
        http,
        "/api/lines/nobody@example.com/appearances/1/release",
        None,
    )
    .assert_error(404, "not found");
    call("GET", http, &format!("{base}/2/release"), None).assert_error(405, "GET");
    assert!(
        watcher.notify_within(Duration::from_millis(300)).is_none(),
        "failed calls change nothing"
    );
}

#[test]
fn terminate_ends_a_subscription_with_deactivated() {
    let (server, http) = start_http(&[]);
    let mut watcher = Phone::new(&server);
    watcher.watch(BOB);
    let subs = get_json(http, "/api/subscriptions");
    assert_eq!(subs["total"], 1);
    let id = subs["items"][0]["id"].as_str().unwrap().to_string();

    let r = call(
        "DELETE",
        http,
        &format!("/api/subscriptions/{}", encode(&id)),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["id"], id.as_str());
    assert_eq!(r.json()["reason"], "deactivated");
    let n = watcher.notify();
    assert_eq!(
        n.header("subscription-state"),
        Some("terminated;reason=deactivated")
    );
    assert_eq!(get_json(http, "/api/subscriptions")["total"], 0);

    call(
        "DELETE",
        http,
        &format!("/api/subscriptions/{}", encode(&id)),
        None,
    )
    .assert_error(404, "not found");
    call("DELETE", http, "/api/subscriptions/nope", None).assert_error(404, "subscription nope");
}

#[test]
fn token_guards_every_data_call_but_not_health() {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(
        file.path(),
        "[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"t0k3n-x\"\n",
    )
    .unwrap();
    let server = Server::start_expecting(
        &[
            "--sip",
            "udp:127.0.0.1:0",
            "--store",
            "memory",
            "--config",
            file.path().to_str().unwrap(),
        ],
        2,
    );
    let http = server.http.expect("http enabled by the config file");
    assert!(http.ip().is_loopback());

    for (method, path) in [
        ("GET", "/api/lines"),
        ("GET", "/api/lines/bob@example.com"),
        ("GET", "/api/publications"),
        ("GET", "/api/subscriptions"),
        ("GET", "/api/events"),
        ("GET", "/metrics"),
        ("POST", "/api/lines/bob@example.com/appearances/1/release"),
        ("DELETE", "/api/subscriptions/x"),
    ] {
        let r = call(method, http, path, None);
        r.assert_error(401, "bearer");
        assert!(
            r.www_authenticate
                .as_deref()
                .unwrap_or("")
                .starts_with("Bearer"),
            "{method} {path}: 401 without WWW-Authenticate"
        );
        call(method, http, path, Some("wrong")).assert_error(401, "wrong bearer token");
    }
    assert_eq!(call("GET", http, "/api/lines", Some("t0k3n-x")).status, 200);
    assert_eq!(call("GET", http, "/metrics", Some("t0k3n-x")).status, 200);
    // With the token a write reaches the engine: 404, nothing to release.
    call(
        "POST",
        http,
        "/api/lines/bob@example.com/appearances/1/release",
        Some("t0k3n-x"),
    )
    .assert_error(404, "not found");
    call("DELETE", http, "/api/subscriptions/x", Some("t0k3n-x")).assert_error(404, "not found");
    for open in ["/api/health", "/api/ready", "/api/openapi.json", "/"] {
        assert_eq!(call("GET", http, open, None).status, 200, "{open}");
    }
}

/// Read SSE events (`event:` name, `data:` line) from a raw connection.
fn next_event(reader: &mut BufReader<TcpStream>, deadline: Instant) -> (String, String) {
    let (mut name, mut data) = (String::new(), String::new());
    loop {
        assert!(Instant::now() < deadline, "no event in time");
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => panic!("event stream closed"),
            Ok(_) => {}
            Err(e) => panic!("no event line in time: {e}"),
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        } else if line.is_empty() && !name.is_empty() {
            return (name, data);
        }
    }
}

#[test]
fn event_stream_sends_a_snapshot_then_each_change() {
    let (server, http) = start_http(&[]);
    let mut pbx = Phone::new(&server);
    pbx.publish_state(BOB, 1, "alerting");

    let mut s = TcpStream::connect(http).unwrap();
    // Long enough that a read never times out half-way through a line.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // HTTP/1.0: the body is not chunked, so every line read is an SSE line.
    write!(
        s,
        "GET /api/events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).expect("a status line");
    assert!(
        status.starts_with("HTTP/1.") && status.contains(" 200 "),
        "{status}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let (name, data) = next_event(&mut reader, deadline);
    assert_eq!(name, "snapshot");
    let snap: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(snap[0]["resource"], BOB);
    assert_eq!(snap[0]["appearances"][0]["state"], "alerting");

    let etag = pbx.publish_state("sip:carol@example.com", 3, "held");
    assert!(!etag.is_empty());
    let (name, data) = next_event(&mut reader, deadline);
    assert_eq!(name, "line");
    let line: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(line["resource"], "sip:carol@example.com");
    assert_eq!(line["appearances"][0]["index"], 3);
    assert_eq!(line["appearances"][0]["state"], "held");

    let mut seizer = Phone::new(&server);
    seizer.seize(BOB, 2);
    let (name, data) = next_event(&mut reader, deadline);
    assert_eq!(name, "line");
    let line: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(line["resource"], BOB);
    assert_eq!(line["watchers"], 1);
    assert_eq!(line["appearances"][1]["state"], "seized");
}

#[test]
fn sigterm_stops_the_server_with_an_event_stream_open() {
    let (mut server, http) = start_http(&[]);
    let mut s = TcpStream::connect(http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/events HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let (name, _) = next_event(&mut reader, Instant::now() + Duration::from_secs(10));
    assert_eq!(name, "snapshot");
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exits within 5 s although a stream is open");
    assert!(status.success(), "{status:?}");
}
