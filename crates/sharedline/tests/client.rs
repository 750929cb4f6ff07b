//! The people-facing client: `sharedline watch`, `publish` and `seize` run
//! as real processes against a real server, as a user in two terminals
//! (or a script) would run them.

mod common;

use common::{bin, run_to_exit, Server};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const LINE: &str = "sip:bob@example.com";
const WAIT: Duration = Duration::from_secs(10);

/// A client process whose stdout lines arrive on a channel.
struct Proc {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sharedline client");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Read lines until one satisfies `want`; the lines read are returned.
    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    got.push(line.clone());
                    if want(&line) {
                        return got;
                    }
                }
                Err(_) => panic!(
                    "no line {what} within 10 s; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn signal_int(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "client did not exit within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `publish` to the end: its one stdout line and its exit code.
fn publish(server: &str, extra: &[&str]) -> (String, i32) {
    let mut args = vec!["publish", LINE, "--server", server];
    args.extend_from_slice(extra);
    let out = run_to_exit(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (stdout, out.status.code().unwrap_or(-1))
}

fn etag_of(line: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("etag="))
        .unwrap_or_else(|| panic!("no etag= in {line:?}"))
        .to_string()
}

fn seed_flow(tcp: bool) {
    let server = Server::start_local(&[]);
    let addr = if tcp { server.tcp } else { server.udp }.to_string();
    let mut flags = vec!["--server", addr.as_str()];
    if tcp {
        flags.push("--tcp");
    }
    let mut watch_args = vec!["watch", LINE];
    watch_args.extend_from_slice(&flags);
    let mut watch = Proc::spawn(&watch_args);
    watch.until("(all idle) at start", |l| l.contains("(all idle)"));

    let mut alerting = flags.clone();
    alerting.extend_from_slice(&[
        "--index",
        "1",
        "--state",
        "alerting",
        "--uri",
        "\"Alice\" <sip:alice@example.com>",
    ]);
    let (line, code) = publish(&addr, &alerting[2..]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("200 OK etag=") && line.ends_with(" expires=3600"),
        "{line}"
    );
    let tag = etag_of(&line);
    let got = watch.until("showing alerting", |l| l.contains("alerting"));
    assert!(
        got.last()
            .is_some_and(|l| l.contains("1") && l.contains("\"Alice\" <sip:alice@example.com>")),
        "{got:?}"
    );

    let mut active = flags.clone();
    active.extend_from_slice(&["--etag", &tag, "--index", "1", "--state", "active"]);
    let (line, code) = publish(&addr, &active[2..]);
    assert_eq!(code, 0, "{line}");
    let tag2 = etag_of(&line);
    watch.until("showing active", |l| {
        l.contains("active") && !l.contains("NOTIFY")
    });

    let mut remove = flags.clone();
    remove.extend_from_slice(&["--etag", &tag2, "--remove"]);
    let (line, code) = publish(&addr, &remove[2..]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("200 OK") && line.ends_with("expires=0"),
        "{line}"
    );
    watch.until("(all idle) at the end", |l| l.contains("(all idle)"));

    // A spent entity-tag: the status is printed and the exit code is 1.
    let (line, code) = publish(&addr, &remove[2..]);
    assert_eq!((line.as_str(), code), ("412 Conditional Request Failed", 1));

    watch.signal_int();
    let status = watch.wait_exit();
    assert_eq!(status.code(), Some(0), "watch exits 0 on Ctrl-C");
    // The unsubscribe's final NOTIFY is shown before it exits.
    while let Ok(l) = watch.lines.recv_timeout(Duration::from_secs(1)) {
        watch.seen.push(l);
    }
    assert!(
        watch.seen.iter().any(|l| l.contains("terminated")),
        "{:?}",
        watch.seen
    );
}

#[test]
fn watch_and_publish_show_the_seed_flow_over_udp() {
    seed_flow(false);
}

#[test]
fn watch_and_publish_show_the_seed_flow_over_tcp() {
    seed_flow(true);
}

#[test]
fn seize_holds_until_ctrl_c_and_a_second_is_refused() {
    let server = Server::start_local(&[]);
    let addr = server.udp.to_string();
    let mut first = Proc::spawn(&["seize", LINE, "--index", "1", "--server", &addr]);
    first.until("seized 1", |l| l == "seized 1");

    let out = run_to_exit(&["seize", LINE, "--index", "1", "--server", &addr]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refused 480 Appearance in use"
    );
    assert_eq!(out.status.code(), Some(1));

    // `*` takes the lowest idle one (here over TCP).
    let tcp = server.tcp.to_string();
    let mut star = Proc::spawn(&["seize", LINE, "--index", "*", "--server", &tcp, "--tcp"]);
    star.until("seized 2", |l| l == "seized 2");
    star.signal_int();
    assert_eq!(star.wait_exit().code(), Some(0));

    // Ctrl-C releases the seize: index 1 can be seized again.
    first.signal_int();
    assert_eq!(first.wait_exit().code(), Some(0));
    first.until("released 1", |l| l == "released 1");
    let mut again = Proc::spawn(&["seize", LINE, "--index", "1", "--server", &addr]);
    again.until("seized 1 again", |l| l == "seized 1");
}

#[test]
fn seize_refreshes_before_the_seize_expires() {
    let server = Server::start_with_config(
        "[packages.line-seize]\ndefault_expires = 1\nmax_expires = 1\nmin_expires = 1\n",
    );
    let addr = server.udp.to_string();
    let mut holder = Proc::spawn(&["seize", LINE, "--index", "1", "--server", &addr]);
    holder.until("seized 1", |l| l == "seized 1");
    // Three lifetimes later it still holds the appearance.
    std::thread::sleep(Duration::from_secs(3));
    let out = run_to_exit(&["seize", LINE, "--index", "1", "--server", &addr]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refused 480 Appearance in use"
    );
    assert!(
        holder.child.try_wait().expect("try_wait").is_none(),
        "the holder still runs"
    );
    holder.signal_int();
    assert_eq!(holder.wait_exit().code(), Some(0));
}

#[test]
fn bad_client_arguments_exit_2() {
    let out = run_to_exit(&["publish", LINE, "--server", "127.0.0.1:9"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_to_exit(&["seize", LINE, "--index", "0", "--server", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_to_exit(&["watch", "not a uri", "--server", "127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
}
