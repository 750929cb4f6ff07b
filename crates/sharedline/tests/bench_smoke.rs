//! The load client and the bare responder work end to end: each workload
//! runs briefly over UDP and TCP against the real server, and its JSON line
//! says every NOTIFY it expected arrived. No speed is asserted: these runs
//! prove the tools work, they do not measure.

mod common;

use common::{bin, Server};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `sharedline bench ARGS`, check its exit status, and return the JSON
/// line it printed last.
fn bench(args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin())
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sharedline bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "no JSON line from bench {args:?}; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let v: serde_json::Value = serde_json::from_str(line).expect("the JSON line parses");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {line}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

fn assert_no_loss(v: &serde_json::Value, workload: &str, transport: &str) {
    assert_eq!(v["workload"], workload, "{v}");
    assert_eq!(v["transport"], transport, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    let expected = v["notifies_expected"].as_u64().expect("expected count");
    assert!(expected > 0, "the workload caused no NOTIFY: {v}");
    assert_eq!(v["notifies_received"].as_u64(), Some(expected), "{v}");
    assert_eq!(v["notifies_lost"].as_u64(), Some(0), "{v}");
    assert_eq!(v["error_responses"].as_u64(), Some(0), "{v}");
    assert!(v["requests"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(v["latency"]["p50_us"].as_u64().unwrap_or(0) > 0, "{v}");
}

const SMALL: [&str; 8] = [
    "--lines",
    "3",
    "--watchers",
    "2",
    "--outstanding",
    "2",
    "--duration",
    "0.5",
];

#[test]
fn every_workload_over_udp_and_tcp_loses_nothing() {
    let server = Server::start_local(&[]);
    let pid = server.child.id().to_string();
    for transport in ["udp", "tcp"] {
        let addr = if transport == "udp" {
            server.udp
        } else {
            server.tcp
        };
        let target = format!("{transport}:{addr}");
        for workload in ["publish-fanout", "seize-fanout", "subscribe-churn"] {
            let mut args = vec![workload, "--target", &target, "--server-pid", &pid];
            args.extend_from_slice(&SMALL);
            let v = bench(&args);
            assert_no_loss(&v, workload, transport);
            // The server's cost was read from /proc.
            assert!(v["server_rss_kb"].as_u64().unwrap_or(0) > 0, "{v}");
        }
        let v = bench(&[
            "hold",
            "--target",
            &target,
            "--subscriptions",
            "50",
            "--lines",
            "5",
            "--server-pid",
            &pid,
        ]);
        assert_eq!(v["workload"], "hold");
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["notifies_received"].as_u64(), Some(50), "{v}");
        assert!(v["bytes_per_subscription"].is_number(), "{v}");
    }
}

#[test]
fn an_open_loop_run_keeps_the_rate_it_was_given() {
    let server = Server::start_local(&[]);
    let target = format!("udp:{}", server.udp);
    let v = bench(&[
        "publish-fanout",
        "--target",
        &target,
        "--lines",
        "20",
        "--watchers",
        "2",
        "--outstanding",
        "20",
        "--duration",
        "1",
        "--rate",
        "200",
    ]);
    assert_no_loss(&v, "publish-fanout", "udp");
    assert_eq!(v["rate"].as_f64(), Some(200.0), "{v}");
    // About 200 PUBLISHes in the second: paced, neither a burst of every
    // line at once nor as fast as the server goes.
    let requests = v["requests"].as_u64().unwrap_or(0);
    assert!((150..=220).contains(&requests), "{requests} requests: {v}");
}

#[test]
fn hold_times_a_restart_until_every_subscription_is_notified_again() {
    // Fixed ports are needed for a restart: take free ones from the OS.
    let port = {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hold.db");
    let listen = format!("udp:127.0.0.1:{port}");
    let args = [
        "--sip".to_string(),
        listen.clone(),
        "--store".to_string(),
        format!("sqlite:{}", db.display()),
    ];
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&arg_refs);
    let restart_cmd = format!("{} {}", bin(), args.join(" "));
    let v = bench(&[
        "hold",
        "--target",
        &listen,
        "--subscriptions",
        "40",
        "--lines",
        "4",
        "--server-pid",
        &server.child.id().to_string(),
        "--restart-cmd",
        &restart_cmd,
    ]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["restart_notified"].as_u64(), Some(40), "{v}");
    let ready = v["restart_ready_s"].as_f64().expect("ready time");
    let serve = v["restart_serve_s"].as_f64().expect("serve time");
    assert!(ready > 0.0 && serve >= ready, "{v}");
    drop(server);
    // The bench stopped the server it restarted: the port is free again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the restarted server was left running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn responder_serves_the_fanout_workloads_without_loss() {
    let mut child = Command::new(bin())
        .args(["bench", "responder", "--listen", "udp:127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn responder");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read listening line");
    let target = first
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    assert!(target.starts_with("udp:127.0.0.1:"), "{target}");
    let pid = child.id().to_string();
    for workload in ["publish-fanout", "seize-fanout", "subscribe-churn"] {
        let mut args = vec![workload, "--target", &target, "--server-pid", &pid];
        args.extend_from_slice(&SMALL);
        let v = bench(&args);
        assert_no_loss(&v, workload, "udp");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_silent_target_is_reported_as_a_failure() {
    // Nothing answers on this socket: setup cannot complete.
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target = format!("udp:{}", quiet.local_addr().unwrap());
    let out = Command::new(bin())
        .args([
            "bench",
            "publish-fanout",
            "--target",
            &target,
            "--lines",
            "1",
            "--watchers",
            "1",
            "--setup-timeout",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run bench");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("JSON line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["failure"].as_str().unwrap_or("").contains("setup"), "{v}");
}
