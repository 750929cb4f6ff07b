//! The process-level promise: kill the real server with SIGKILL in the
//! middle of a load of subscribes and publishes, restart it on the same
//! SQLite file, and every acknowledged publication and subscription is
//! there: the publishers' last ETags still work and every watcher hears the
//! state that follows, in its existing dialog, with a higher CSeq.

mod common;

use common::{response_to, start_line, Server};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LINES: usize = 4;
const WATCHERS_PER_LINE: usize = 5;

fn line(n: usize) -> String {
    format!("sip:line{n}@example.com")
}

/// What one watcher has heard: its dialog and the last NOTIFY.
#[derive(Default, Clone, Debug)]
struct Heard {
    to_tag: Option<String>,
    last_cseq: u32,
    last_call_info: String,
    notifies: usize,
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim())
}

/// A watcher on its own socket: subscribes once, then answers every NOTIFY
/// with 200 (to whichever server address sent it) and records it.
struct Watcher {
    sock: UdpSocket,
    call_id: String,
    heard: Arc<Mutex<Heard>>,
}

impl Watcher {
    fn new(n: usize) -> Watcher {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        Watcher {
            sock,
            call_id: format!("kill9-watch-{n}"),
            heard: Arc::default(),
        }
    }

    fn subscribe(&self, server: SocketAddr, line: &str) {
        let me = self.sock.local_addr().unwrap();
        let req = format!(
            "SUBSCRIBE {line} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{cid};rport\r\nMax-Forwards: 70\r\nFrom: <sip:w@example.com>;tag=w-{cid}\r\nTo: <{line}>\r\nCall-ID: {cid}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:w@{me}>\r\nEvent: call-info\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
            cid = self.call_id
        );
        self.sock.send_to(req.as_bytes(), server).unwrap();
    }

    /// Run the answer loop until `stop`.
    fn spawn(self, stop: Arc<AtomicBool>) -> (Arc<Mutex<Heard>>, std::thread::JoinHandle<()>) {
        let heard = Arc::clone(&self.heard);
        let handle = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = self.sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let first = start_line(msg.as_bytes());
                let mut h = self.heard.lock().unwrap();
                if first.starts_with("SIP/2.0 200")
                    && header(&msg, "CSeq").is_some_and(|c| c.ends_with("SUBSCRIBE"))
                {
                    let to = header(&msg, "To").unwrap_or_default();
                    h.to_tag = to.split(";tag=").nth(1).map(str::to_string);
                } else if first.starts_with("NOTIFY ") {
                    let _ = self
                        .sock
                        .send_to(&response_to(msg.as_bytes(), 200, "OK"), from);
                    let cseq: u32 = header(&msg, "CSeq")
                        .and_then(|c| c.split(' ').next()?.parse().ok())
                        .unwrap_or(0);
                    assert_eq!(
                        header(&msg, "Call-ID"),
                        Some(self.call_id.as_str()),
                        "NOTIFY in the watcher's dialog"
                    );
                    if cseq > h.last_cseq {
                        h.last_cseq = cseq;
                        h.last_call_info =
                            header(&msg, "Call-Info").unwrap_or_default().to_string();
                    }
                    h.notifies += 1;
                }
            }
        });
        (heard, handle)
    }
}

/// Send one PUBLISH and wait for its final response; returns (status, etag).
fn publish(
    sock: &UdpSocket,
    server: SocketAddr,
    n: u32,
    line: &str,
    etag: Option<&str>,
    state: &str,
) -> Option<(u16, String)> {
    let me = sock.local_addr().unwrap();
    let if_match = etag
        .map(|e| format!("SIP-If-Match: {e}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "PUBLISH {line} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKpub{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:pbx@example.com>;tag=p{n}\r\nTo: <{line}>\r\nCall-ID: pub-{n}\r\nCSeq: 1 PUBLISH\r\nEvent: call-info\r\n{if_match}Call-Info: <sip:example.com>;appearance-index=1;appearance-state={state}\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(req.as_bytes(), server).ok()?;
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let msg = String::from_utf8_lossy(&buf[..len]).into_owned();
        if header(&msg, "Call-ID") != Some(&format!("pub-{n}")) {
            continue;
        }
        let status: u16 = start_line(msg.as_bytes()).split(' ').nth(1)?.parse().ok()?;
        return Some((
            status,
            header(&msg, "SIP-ETag").unwrap_or_default().to_string(),
        ));
    }
    None
}

#[test]
fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("state.db").display());
    let args = ["--sip", "udp:127.0.0.1:0", "--store", db.as_str()];
    let server = Server::start(&args);

    let stop = Arc::new(AtomicBool::new(false));
    let mut heard = Vec::new();
    let mut threads = Vec::new();
    for i in 0..LINES * WATCHERS_PER_LINE {
        let w = Watcher::new(i);
        w.subscribe(server.udp, &line(i % LINES));
        let (h, t) = w.spawn(Arc::clone(&stop));
        heard.push((i % LINES, h));
        threads.push(t);
    }

    // Publish and modify in a loop; the kill lands somewhere in the middle.
    let publisher = UdpSocket::bind("127.0.0.1:0").unwrap();
    publisher
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut acked: HashMap<usize, (String, String)> = HashMap::new(); // line -> (etag, state)
    let states = ["alerting", "active", "held", "progressing"];
    let started = Instant::now();
    let mut n = 0u32;
    let mut server = Some(server);
    while started.elapsed() < Duration::from_millis(600) {
        n += 1;
        let l = (n as usize) % LINES;
        let state = states[(n as usize / LINES) % states.len()];
        let etag = acked.get(&l).map(|(e, _)| e.clone());
        if n == 120 {
            // SIGKILL: no flush, no goodbye.
            let mut s = server.take().unwrap();
            s.signal("KILL");
            assert!(s.wait_exit(Duration::from_secs(5)).is_some());
            break;
        }
        let to = server.as_ref().unwrap().udp;
        if let Some((200, new_etag)) = publish(&publisher, to, n, &line(l), etag.as_deref(), state)
        {
            acked.insert(l, (new_etag, state.to_string()));
        }
    }
    assert!(server.is_none(), "the kill happened");
    assert_eq!(
        acked.len(),
        LINES,
        "every line had an acknowledged publication before the kill"
    );

    // Restart on the same file.
    let server = Server::start(&args);
    // Every acknowledged ETag still works: modify each line to a final state.
    for (l, (etag, _)) in acked.clone() {
        n += 1;
        let got = publish(
            &publisher,
            server.udp,
            n,
            &line(l),
            Some(&etag),
            "held-private",
        );
        let (status, new_etag) = got.expect("answer after restart");
        assert_eq!(
            status, 200,
            "line {l}: the acknowledged ETag {etag} survived the kill"
        );
        acked.insert(l, (new_etag, "held-private".into()));
    }
    // Every watcher hears that state in its dialog.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let missing: Vec<_> = heard
            .iter()
            .filter(|(_, h)| {
                !h.lock()
                    .unwrap()
                    .last_call_info
                    .contains("appearance-state=held-private")
            })
            .map(|(l, h)| (l, h.lock().unwrap().clone()))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "watchers without the final state: {missing:?}\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (_, h) in &heard {
        let h = h.lock().unwrap();
        assert!(h.to_tag.is_some(), "every SUBSCRIBE was acknowledged");
        assert!(h.notifies >= 2);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}
