//! The binary's surface without SIP: flags, config files, the `listening`
//! lines, signals. Runs the real binary.

mod common;

use common::{run_to_exit, Server, TcpClient, UdpClient};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Exit status 2 and exactly one non-empty stderr line, which is returned.
fn usage_error(args: &[&str]) -> String {
    let out = run_to_exit(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?} exited {:?}; stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} printed {} stderr lines: {stderr}",
        lines.len()
    );
    assert!(lines[0].starts_with("sharedline: "), "{}", lines[0]);
    assert!(out.stdout.is_empty(), "nothing on stdout for an error");
    lines[0].to_string()
}

fn config_file(toml: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), toml).expect("write config");
    file
}

#[test]
fn unknown_flag_is_one_line_and_exit_2() {
    let line = usage_error(&["--bogus"]);
    assert!(line.contains("--bogus"), "{line}");
}

#[test]
fn bad_flag_values_are_one_line_and_exit_2() {
    let line = usage_error(&["--sip", "sctp:127.0.0.1:5060"]);
    assert!(line.contains("sctp"), "{line}");
    let line = usage_error(&["--sip", "udp:127.0.0.1"]);
    assert!(line.contains("--sip"), "{line}");
    let line = usage_error(&["--store", "postgres://x"]);
    assert!(
        line.contains("--store") && line.contains("postgres://x"),
        "{line}"
    );
    let line = usage_error(&["--log", "no such level["]);
    assert!(line.contains("--log"), "{line}");
    let line = usage_error(&["--sip"]);
    assert!(line.contains("--sip"), "{line}");
}

#[test]
fn unreadable_config_file_names_the_file() {
    let line = usage_error(&["--config", "/nonexistent/dir/sharedline.toml"]);
    assert!(line.contains("/nonexistent/dir/sharedline.toml"), "{line}");
}

#[test]
fn bad_toml_names_the_file_and_line() {
    let f = config_file("log = \"info\"\nsip = [\n");
    let path = f.path().to_str().unwrap().to_owned();
    let line = usage_error(&["--config", &path]);
    assert!(line.contains(&path), "{line}");
    assert!(line.contains("line "), "{line}");
}

#[test]
fn unknown_config_key_names_the_key() {
    let f = config_file("foo = 1\n");
    let path = f.path().to_str().unwrap().to_owned();
    let line = usage_error(&["--config", &path]);
    assert!(
        line.contains(&path) && line.contains("unknown field `foo`"),
        "{line}"
    );

    let f = config_file("[limits]\nmax_conections = 5\n");
    let path = f.path().to_str().unwrap().to_owned();
    let line = usage_error(&["--config", &path]);
    assert!(line.contains("max_conections"), "{line}");
}

#[test]
fn inconsistent_config_values_are_named() {
    let cases = [
        (
            "[packages.call-info]\nmin_expires = 600\nmax_expires = 60\n",
            "packages.call-info",
        ),
        (
            "[packages.line-seize]\ndefault_expires = 10\nmin_expires = 20\n",
            "default_expires",
        ),
        ("[timers]\nt1_ms = 0\n", "timers.t1_ms"),
        ("[limits]\nmax_connections = 0\n", "limits.max_connections"),
        (
            "[policy]\ntrusted_publishers = [\"not-an-ip\"]\n",
            "trusted_publishers",
        ),
        (
            "[limits]\ntcp_idle_timeout = \"soon\"\n",
            "tcp_idle_timeout",
        ),
        ("store = \"redis:x\"\n", "store"),
    ];
    for (toml, needle) in cases {
        let f = config_file(toml);
        let path = f.path().to_str().unwrap().to_owned();
        let line = usage_error(&["--config", &path]);
        assert!(line.contains(needle), "{toml:?}: {line}");
        assert!(line.contains(&path), "{toml:?}: {line}");
    }
}

#[test]
fn help_exits_0() {
    let out = run_to_exit(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--sip") && help.contains("--store") && help.contains("--config"),
        "{help}"
    );
}

#[test]
fn listening_lines_name_real_os_ports() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("x.db").display());
    let server = Server::start(&[
        "--sip",
        "udp:127.0.0.1:0",
        "--sip",
        "tcp:127.0.0.1:0",
        "--store",
        &db,
    ]);
    assert_eq!(server.listening.len(), 2);
    assert!(
        server.listening[0].starts_with("listening udp:127.0.0.1:"),
        "{:?}",
        server.listening
    );
    assert!(
        server.listening[1].starts_with("listening tcp:127.0.0.1:"),
        "{:?}",
        server.listening
    );
    assert_ne!(server.udp.port(), 0);
    assert_ne!(server.tcp.port(), 0);
    // The TCP port accepts connections, and the UDP port is bound: binding it
    // again fails.
    let _c = TcpClient::connect(server.tcp);
    assert!(
        std::net::UdpSocket::bind(server.udp).is_err(),
        "UDP port {} is not bound",
        server.udp
    );
    // The SQLite store was created where asked.
    assert!(dir.path().join("x.db").exists());
}

#[test]
fn ipv6_listeners_work() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this host; skipping");
        return;
    }
    let server = Server::start(&[
        "--sip",
        "udp:[::1]:0",
        "--sip",
        "tcp:[::1]:0",
        "--store",
        "memory",
    ]);
    assert!(
        server.listening[0].starts_with("listening udp:[::1]:"),
        "{:?}",
        server.listening
    );
    assert!(
        server.listening[1].starts_with("listening tcp:[::1]:"),
        "{:?}",
        server.listening
    );
    let _c = TcpClient::connect(server.tcp);
}

#[test]
fn listeners_come_from_the_config_file_unless_flags_say_otherwise() {
    let f = config_file("sip = [\"tcp:127.0.0.1:0\"]\nstore = \"memory\"\n");
    let path = f.path().to_str().unwrap().to_owned();
    let server = Server::start_expecting(&["--config", &path], 1);
    assert_eq!(server.listening.len(), 1);
    assert!(
        server.listening[0].starts_with("listening tcp:127.0.0.1:"),
        "{:?}",
        server.listening
    );
    drop(server);

    let server = Server::start(&["--config", &path, "--sip", "udp:127.0.0.1:0"]);
    assert_eq!(server.listening.len(), 1);
    assert!(
        server.listening[0].starts_with("listening udp:127.0.0.1:"),
        "{:?}",
        server.listening
    );
}

#[test]
fn serve_subcommand_runs_the_server() {
    let server = Server::start(&["serve", "--sip", "tcp:127.0.0.1:0", "--store", "memory"]);
    assert!(server.listening[0].starts_with("listening tcp:"));
}

#[test]
fn port_in_use_fails_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp:{}", taken.local_addr().unwrap());
    let out = run_to_exit(&["--sip", &addr, "--store", "memory", "--log", "off"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(out.stdout.is_empty(), "no listening line when a bind fails");
}

fn exits_cleanly_on(signal: &str) {
    let mut server = Server::start_local(&[]);
    // A live connection must not hold up the exit.
    let _c = TcpClient::connect(server.tcp);
    let started = Instant::now();
    server.signal(signal);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("server did not exit within 5 s");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        started.elapsed()
    );
}

#[test]
fn sigterm_exits_0_quickly() {
    exits_cleanly_on("TERM");
}

#[test]
fn sigint_exits_0_quickly() {
    exits_cleanly_on("INT");
}

#[test]
fn sigterm_right_after_listening_is_still_clean() {
    let mut server = Server::start_local(&[]);
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("exit within 5 s");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn udp_keepalives_and_oversize_datagrams_leave_the_server_serving() {
    let server = Server::start_with_config("[limits]\nmax_message_size = 1000\n");
    let client = UdpClient::new();
    client.send(server.udp, b"\r\n\r\n");
    client.send(server.udp, &vec![b'x'; 5000]);
    // Neither gets an answer.
    assert!(client.recv(Duration::from_millis(300)).is_none());
    let target: SocketAddr = server.udp;
    assert_ne!(target.port(), 0);
    // And TCP still works afterwards (the server did not die).
    let mut c = TcpClient::connect(server.tcp);
    c.send(b"\r\n\r\n");
    assert_eq!(
        c.read_some(Duration::from_secs(2)),
        common::Got::Data(b"\r\n".to_vec())
    );
}
