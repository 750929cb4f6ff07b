//! `/metrics` against the real binary: drive known SIP traffic and check
//! that each counter moved by exactly what was sent, and that the gauges
//! show the state left behind.

mod common;
mod http_support;

use common::Server;
use http_support::{call, Phone};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LINE: &str = "sip:shared@example.com";

/// One scrape: `name{labels}` → value, labels as the server wrote them.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn take(http: SocketAddr) -> Scrape {
        let r = call("GET", http, "/metrics", None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.content_type.starts_with("application/openmetrics-text"),
            "{}",
            r.content_type
        );
        assert!(
            r.body.trim_end().ends_with("# EOF"),
            "OpenMetrics ends with # EOF"
        );
        let mut m = HashMap::new();
        for line in r.body.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line.rsplit_once(' ').expect("`name value` line");
            m.insert(
                key.to_string(),
                value.parse::<f64>().expect("numeric value"),
            );
        }
        Scrape(m)
    }

    /// The value of `name` with exactly these labels (0 when absent, as a
    /// counter that has never moved).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = if labels.is_empty() {
            name.to_string()
        } else {
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            format!("{name}{{{}}}", inner.join(","))
        };
        self.0.get(&key).copied().unwrap_or(0.0)
    }

    /// Sum of every series of `name` whose labels include `label`.
    fn sum(&self, name: &str, label: (&str, &str)) -> f64 {
        let needle = format!("{}=\"{}\"", label.0, label.1);
        self.0
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name}{{")) && k.contains(&needle))
            .map(|(_, v)| v)
            .sum()
    }
}

fn delta(a: &Scrape, b: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    b.get(name, labels) - a.get(name, labels)
}

#[test]
fn counters_move_by_exactly_the_traffic_sent() {
    // Short timers so an unanswered NOTIFY times out (64*T1) within the test.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sharedline.toml");
    std::fs::write(&config, "[timers]\nt1_ms = 50\nt2_ms = 200\nt4_ms = 200\n").unwrap();
    let server = Server::start(&[
        "--sip",
        "udp:127.0.0.1:0",
        "--store",
        "memory",
        "--http",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ]);
    let http = server.http.unwrap();
    let m0 = Scrape::take(http);
    for (name, labels) in [
        ("sharedline_subscriptions", [("package", "call-info")]),
        ("sharedline_subscriptions", [("package", "line-seize")]),
        ("sharedline_publications", [("package", "call-info")]),
    ] {
        assert!(
            m0.0.contains_key(&format!("{name}{{{}=\"{}\"}}", labels[0].0, labels[0].1)),
            "{name} {labels:?} reported at zero"
        );
        assert_eq!(m0.get(name, &labels), 0.0);
    }

    // Five publications on five other lines, one malformed PUBLISH, one
    // SUBSCRIBE to a package we do not serve.
    const PUBS: u32 = 5;
    let mut pbx = Phone::new(&server);
    for i in 0..PUBS {
        pbx.publish_state(&format!("sip:line{i}@example.com"), 1, "active");
    }
    let r = pbx.publish(
        LINE,
        "Call-Info: <sip:example.com>;appearance-index=0;appearance-state=active\r\n",
    );
    assert_eq!(r.status, 400);
    let (r, _) = pbx.subscribe(LINE, "presence", "");
    assert_eq!(r.status, 489);

    // Two watchers; a third that fails its first NOTIFY with a 500.
    let mut watchers: Vec<Phone> = (0..3).map(|_| Phone::new(&server)).collect();
    watchers[2].answers.push_back(500);
    for w in &mut watchers {
        w.watch(LINE);
    }
    // A seize: its own NOTIFY, and one to each watcher.
    let mut seizer = Phone::new(&server);
    seizer.seize(LINE, 1);
    for w in &mut watchers {
        w.notify();
    }
    // A watcher that never answers: Timer E retransmits, Timer F ends it.
    let mut silent = Phone::new(&server);
    silent.silent = true;
    let (r, _) = silent.subscribe(LINE, "call-info", "Expires: 600\r\n");
    assert_eq!(r.status, 200);

    let deadline = Instant::now() + Duration::from_secs(15);
    let m1 = loop {
        let m = Scrape::take(http);
        if delta(&m0, &m, "sharedline_notify_timeouts_total", &[]) >= 1.0 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "the silent watcher's NOTIFY never timed out"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let every phone read (and answer) whatever is still in flight, then
    // take the final figures.
    for p in watchers
        .iter_mut()
        .chain([&mut seizer, &mut silent, &mut pbx])
    {
        p.drain(Duration::from_millis(100));
    }
    let m2 = Scrape::take(http);
    assert_eq!(
        m1.get("sharedline_notify_sent_total", &[]),
        m2.get("sharedline_notify_sent_total", &[]),
        "quiet after the timeout"
    );

    let d = |name: &str, labels: &[(&str, &str)]| delta(&m0, &m2, name, labels);
    assert_eq!(
        d("sharedline_sip_requests_total", &[("method", "PUBLISH")]),
        f64::from(PUBS + 1)
    );
    assert_eq!(
        d("sharedline_sip_requests_total", &[("method", "SUBSCRIBE")]),
        6.0,
        "3 watchers, 1 seize, 1 silent, 1 presence"
    );
    assert_eq!(
        d("sharedline_sip_requests_total", &[("method", "NOTIFY")]),
        0.0,
        "NOTIFYs are ours"
    );
    assert_eq!(
        d("sharedline_sip_responses_total", &[("status", "200")]),
        f64::from(PUBS) + 5.0
    );
    assert_eq!(
        d("sharedline_sip_responses_total", &[("status", "400")]),
        1.0
    );
    assert_eq!(
        d("sharedline_sip_responses_total", &[("status", "489")]),
        1.0
    );
    assert_eq!(
        m2.sum("sharedline_sip_refusals_total", ("status", "400"))
            - m0.sum("sharedline_sip_refusals_total", ("status", "400")),
        1.0
    );
    assert_eq!(
        d(
            "sharedline_sip_refusals_total",
            &[("status", "489"), ("reason", "Bad Event")]
        ),
        1.0
    );

    // 3 first NOTIFYs + 1 to the seizer + 3 for the seize + 1 to the silent one.
    assert_eq!(d("sharedline_notify_sent_total", &[]), 8.0);
    assert_eq!(
        d("sharedline_notify_failures_total", &[]),
        1.0,
        "the one 500"
    );
    assert_eq!(d("sharedline_notify_timeouts_total", &[]), 1.0);
    let seen: u32 = watchers
        .iter()
        .chain([&seizer, &silent])
        .map(Phone::retransmissions_seen)
        .sum();
    assert!(
        silent.retransmissions_seen() >= 3,
        "Timer E fired: {}",
        silent.retransmissions_seen()
    );
    assert_eq!(
        d("sharedline_notify_retransmissions_total", &[]),
        f64::from(seen),
        "every retransmission counted is one a phone received"
    );

    // Gauges: what is left.
    assert_eq!(
        m2.get("sharedline_subscriptions", &[("package", "call-info")]),
        3.0,
        "the silent watcher is gone"
    );
    assert_eq!(
        m2.get("sharedline_subscriptions", &[("package", "line-seize")]),
        1.0
    );
    assert_eq!(
        m2.get("sharedline_publications", &[("package", "call-info")]),
        f64::from(PUBS)
    );
    assert_eq!(m2.get("sharedline_appearances_seized", &[]), 1.0);
    assert_eq!(
        m2.get("sharedline_appearances", &[("state", "active")]),
        f64::from(PUBS)
    );
    assert_eq!(
        m2.get("sharedline_appearances_busy", &[]),
        f64::from(PUBS) + 1.0
    );
    assert_eq!(m2.get("sharedline_lines", &[]), f64::from(PUBS) + 1.0);
    assert!(m2
        .0
        .contains_key("sharedline_transactions{kind=\"server\"}"));
    assert!(m2
        .0
        .contains_key("sharedline_transactions{kind=\"client\"}"));

    // Every batch the engine emitted was committed, and each was timed.
    let emitted = d("sharedline_store_batches_emitted_total", &[]);
    assert!(
        emitted >= f64::from(PUBS) + 4.0,
        "at least one batch per accepted request: {emitted}"
    );
    assert_eq!(d("sharedline_store_batches_committed_total", &[]), emitted);
    assert_eq!(d("sharedline_store_write_seconds_count", &[]), emitted);
    assert!(d("sharedline_store_write_seconds_sum", &[]) > 0.0);
    assert!(m2.get("sharedline_store_commits_total", &[]) >= 1.0);
}
