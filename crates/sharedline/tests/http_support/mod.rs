//! Helpers for the HTTP interface tests (`http_api`, `http_metrics`,
//! `http_page`): a small blocking HTTP client and a UDP phone that
//! publishes, subscribes and answers NOTIFYs. Each test file includes this
//! with `mod http_support;` next to `mod common;`.
#![allow(dead_code)]

use crate::common::{response_to, start_line, Response, Server, UdpClient};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a test waits for a SIP answer or a NOTIFY.
pub const WAIT: Duration = Duration::from_secs(5);

/// An HTTP answer: status, headers we look at, body.
#[derive(Debug)]
pub struct Http {
    /// The status code.
    pub status: u16,
    /// The Content-Type header.
    pub content_type: String,
    /// The WWW-Authenticate header, if any.
    pub www_authenticate: Option<String>,
    /// The body.
    pub body: String,
}

impl Http {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Assert this is a JSON error with `status` whose message contains `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.content_type.starts_with("application/json"),
            "error is not JSON: {} {}",
            self.content_type,
            self.body
        );
        let j = self.json();
        assert_eq!(j["error"]["status"], status, "{}", self.body);
        let msg = j["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.to_lowercase().contains(&needle.to_lowercase()),
            "message {msg:?} lacks {needle:?}"
        );
    }
}

/// Make a request to `http://{addr}{path}`, with a bearer token if given.
pub fn call(method: &str, addr: SocketAddr, path: &str, token: Option<&str>) -> Http {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    let mut req = agent.request(method, &format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("content-type").unwrap_or("").to_string();
    let www_authenticate = resp.header("www-authenticate").map(str::to_string);
    let body = resp.into_string().expect("read body");
    Http {
        status,
        content_type,
        www_authenticate,
        body,
    }
}

/// GET, expecting 200 and JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let r = call("GET", addr, path, None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

/// Percent-encode everything but unreserved characters (for ids in paths).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A UDP phone or PBX: sends requests, answers every NOTIFY with 200 and
/// keeps them in order.
pub struct Phone {
    sock: UdpClient,
    server: SocketAddr,
    notifies: VecDeque<Response>,
    seq: u32,
    /// Never answer NOTIFYs (a phone that went away).
    pub silent: bool,
    /// Status codes for the next NOTIFYs, in order; 200 once empty.
    pub answers: VecDeque<u16>,
    /// NOTIFY copies received per Via branch (more than one: retransmitted).
    seen: HashMap<String, u32>,
}

/// One subscription dialog.
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub from_tag: String,
    /// The server's tag.
    pub to_tag: String,
    /// The line.
    pub line: String,
}

impl Phone {
    /// A phone talking UDP to `server`.
    pub fn new(server: &Server) -> Phone {
        Phone {
            sock: UdpClient::new(),
            server: server.udp,
            notifies: VecDeque::new(),
            seq: 0,
            silent: false,
            answers: VecDeque::new(),
            seen: HashMap::new(),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.sock.addr()
    }

    fn request(
        &mut self,
        method: &str,
        line: &str,
        call_id: &str,
        to_tag: &str,
        extra: &str,
    ) -> Vec<u8> {
        self.seq += 1;
        let addr = self.addr();
        let to = if to_tag.is_empty() {
            format!("<{line}>")
        } else {
            format!("<{line}>;tag={to_tag}")
        };
        format!(
            "{method} {line} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {addr};branch=z9hG4bK-{call_id}-{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:phone-{}@127.0.0.1>;tag=f{}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {} {method}\r\n\
             Contact: <sip:phone@{addr}>\r\n\
             {extra}\
             Content-Length: 0\r\n\
             \r\n",
            self.seq,
            addr.port(),
            addr.port(),
            self.seq
        )
        .into_bytes()
    }

    /// The next message; a NOTIFY is answered and queued (`None` then).
    fn pump(&mut self, timeout: Duration) -> Option<Response> {
        let (bytes, _) = self.sock.recv(timeout)?;
        if start_line(&bytes).starts_with("NOTIFY ") {
            let n = Response::parse(&bytes);
            let branch = n.header("via").unwrap_or("").to_string();
            let copies = self.seen.entry(branch).or_default();
            *copies += 1;
            let first = *copies == 1;
            if !self.silent {
                // A retransmission gets the answer the original got.
                let code = if first {
                    self.answers.pop_front().unwrap_or(200)
                } else {
                    200
                };
                let reason = if code == 200 { "OK" } else { "Failure" };
                self.sock
                    .send(self.server, &response_to(&bytes, code, reason));
            }
            if first {
                self.notifies.push_back(n);
            }
            return None;
        }
        Some(Response::parse(&bytes))
    }

    /// Send a request and wait for its final response.
    pub fn transact(&mut self, bytes: &[u8]) -> Response {
        self.sock.send(self.server, bytes);
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no response to:\n{}",
                String::from_utf8_lossy(bytes)
            );
            if let Some(r) = self.pump(left) {
                if r.status >= 200 {
                    return r;
                }
            }
        }
    }

    /// PUBLISH call-info to `line` with these extra header lines (a new
    /// publication unless they carry SIP-If-Match).
    pub fn publish(&mut self, line: &str, extra: &str) -> Response {
        let id = format!("pub-{}-{}", self.addr().port(), self.seq);
        let req = self.request(
            "PUBLISH",
            line,
            &id,
            "",
            &format!("Event: call-info\r\n{extra}"),
        );
        self.transact(&req)
    }

    /// PUBLISH one appearance's state; returns the SIP-ETag.
    pub fn publish_state(&mut self, line: &str, index: u32, state: &str) -> String {
        let r = self.publish(
            line,
            &format!(
                "Expires: 600\r\nCall-Info: <sip:example.com>;appearance-index={index};appearance-state={state}\r\n"
            ),
        );
        assert_eq!(r.status, 200, "{}", r.start);
        r.header("sip-etag").expect("SIP-ETag").to_string()
    }

    /// An initial SUBSCRIBE; the response and the dialog.
    pub fn subscribe(&mut self, line: &str, event: &str, extra: &str) -> (Response, Dialog) {
        let call_id = format!("sub-{}-{}", self.addr().port(), self.seq);
        let req = self.request(
            "SUBSCRIBE",
            line,
            &call_id,
            "",
            &format!("Event: {event}\r\n{extra}"),
        );
        let r = self.transact(&req);
        let to_tag = r
            .header("to")
            .and_then(|t| t.split(";tag=").nth(1))
            .unwrap_or("")
            .to_string();
        let from_tag = format!("f{}", self.addr().port());
        (
            r,
            Dialog {
                call_id,
                from_tag,
                to_tag,
                line: line.to_string(),
            },
        )
    }

    /// Subscribe to call-info of `line` and take the first NOTIFY.
    pub fn watch(&mut self, line: &str) -> (Dialog, Response) {
        let (r, d) = self.subscribe(line, "call-info", "Expires: 600\r\n");
        assert_eq!(r.status, 200, "{}", r.start);
        let n = self.notify();
        (d, n)
    }

    /// Seize appearance `index` of `line` and take the first NOTIFY.
    pub fn seize(&mut self, line: &str, index: u32) -> (Dialog, Response) {
        let (r, d) = self.subscribe(
            line,
            "line-seize",
            &format!("Expires: 15\r\nCall-Info: <sip:example.com>;appearance-index={index}\r\n"),
        );
        assert_eq!(r.status, 200, "{}", r.start);
        let n = self.notify();
        (d, n)
    }

    /// The next NOTIFY within `timeout`.
    pub fn notify_within(&mut self, timeout: Duration) -> Option<Response> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.notifies.pop_front() {
                return Some(n);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.pump(left);
        }
    }

    /// Read whatever arrives for `time` (answering NOTIFYs as usual).
    pub fn drain(&mut self, time: Duration) {
        let deadline = Instant::now() + time;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.pump(left);
        }
    }

    /// NOTIFY retransmissions received so far (copies beyond the first).
    pub fn retransmissions_seen(&self) -> u32 {
        self.seen.values().map(|n| n - 1).sum()
    }

    /// The next NOTIFY (panics after [`WAIT`]).
    pub fn notify(&mut self) -> Response {
        self.notify_within(WAIT).expect("a NOTIFY within 5 s")
    }
}

/// The Call-Info value of a NOTIFY.
pub fn call_info(n: &Response) -> String {
    n.header("call-info").unwrap_or("").to_string()
}

/// Start a server with UDP, TCP, a memory store and HTTP on an OS-chosen
/// loopback port; returns it and its HTTP address.
pub fn start_http(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec![
        "--sip",
        "udp:127.0.0.1:0",
        "--sip",
        "tcp:127.0.0.1:0",
        "--store",
        "memory",
        "--http",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let http = server.http.expect("a listening http: line");
    (server, http)
}
