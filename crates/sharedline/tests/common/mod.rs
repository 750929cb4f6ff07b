//! Test harness: runs the real `sharedline` binary and talks to it over real
//! sockets on 127.0.0.1. Each test file includes this with `mod common;` and
//! uses only part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a started server may take to print its `listening` lines.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sharedline")
}

/// Run the binary to completion (for argument and config errors), giving up
/// after 20 s.
pub fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sharedline");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "sharedline {args:?} did not exit within 20 s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running server. Killed on drop; its stderr is kept in a file and
/// printed if the test is failing.
pub struct Server {
    /// The first UDP listener (0.0.0.0:0 if none).
    pub udp: SocketAddr,
    /// The first TCP listener (0.0.0.0:0 if none).
    pub tcp: SocketAddr,
    /// The HTTP listener, if the server has one.
    pub http: Option<SocketAddr>,
    /// Every `listening ...` line, in order.
    pub listening: Vec<String>,
    /// The process.
    pub child: Child,
    stderr_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Server {
    /// Start with exactly `args`, and wait for `expect` `listening` lines.
    pub fn start_expecting(args: &[&str], expect: usize) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new(bin())
            .args(args)
            // Run in the tempdir so a default ./sharedline.db lands there.
            .current_dir(dir.path())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn sharedline");
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
        let mut server = Server {
            udp: "0.0.0.0:0".parse().expect("literal"),
            tcp: "0.0.0.0:0".parse().expect("literal"),
            http: None,
            listening: Vec::new(),
            child,
            stderr_path,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while server.listening.len() < expect {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "server {args:?} printed {:?} and then nothing (exit: {:?}); stderr:\n{}",
                    server.listening,
                    server.child.try_wait(),
                    server.stderr()
                ),
            };
            let Some(rest) = line.strip_prefix("listening ") else {
                panic!("unexpected stdout line {line:?}");
            };
            let (scheme, addr) = rest.split_once(':').expect("listening line has a scheme");
            let addr: SocketAddr = addr.parse().expect("listening line has an address");
            match scheme {
                "udp" if server.udp.port() == 0 => server.udp = addr,
                "tcp" if server.tcp.port() == 0 => server.tcp = addr,
                "udp" | "tcp" => {}
                "http" => server.http = Some(addr),
                other => panic!("unknown scheme {other} in {line:?}"),
            }
            server.listening.push(line);
        }
        server
    }

    /// Start with `args`, expecting one `listening` line per `--sip` given
    /// (two, the defaults, if none), plus one for `--http`.
    pub fn start(args: &[&str]) -> Server {
        let n = args.iter().filter(|a| **a == "--sip").count();
        let http = args.iter().filter(|a| **a == "--http").count();
        Server::start_expecting(args, if n == 0 { 2 } else { n } + http)
    }

    /// UDP and TCP on 127.0.0.1 with OS-chosen ports, memory store, plus `extra`.
    pub fn start_local(extra: &[&str]) -> Server {
        let mut args = vec![
            "--sip",
            "udp:127.0.0.1:0",
            "--sip",
            "tcp:127.0.0.1:0",
            "--store",
            "memory",
        ];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Like [`Server::start_local`] with a config file holding `toml`.
    pub fn start_with_config(toml: &str) -> Server {
        let file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("config file");
        std::fs::write(file.path(), toml).expect("write config");
        let path = file.path().to_str().expect("utf-8 temp path").to_owned();
        let server = Server::start_local(&["--config", &path]);
        drop(file);
        server
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Send a signal by name (`TERM`, `INT`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Wait up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- sharedline stderr ----\n{}", self.stderr());
        }
    }
}

/// A UDP client on 127.0.0.1 with an OS-chosen port.
pub struct UdpClient {
    /// The socket.
    pub sock: UdpSocket,
}

impl UdpClient {
    /// Bind a new client.
    pub fn new() -> UdpClient {
        UdpClient {
            sock: UdpSocket::bind("127.0.0.1:0").expect("bind udp client"),
        }
    }

    /// The client's address.
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("local addr")
    }

    /// Send one datagram.
    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.sock.send_to(bytes, to).expect("udp send");
    }

    /// The next datagram, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.sock
            .set_read_timeout(Some(timeout))
            .expect("set timeout");
        let mut buf = vec![0u8; 70_000];
        loop {
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    buf.truncate(n);
                    return Some((buf, from));
                }
                // Signals (a sibling test's child exiting) interrupt the wait.
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) => panic!("udp recv: {e}"),
            }
        }
    }

    /// The next response, parsed, or `None` after `timeout`.
    pub fn recv_response(&self, timeout: Duration) -> Option<Response> {
        self.recv(timeout).map(|(bytes, _)| Response::parse(&bytes))
    }
}

/// A TCP client with its own read buffer.
pub struct TcpClient {
    /// The connection.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What a read from a [`TcpClient`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Some bytes.
    Data(Vec<u8>),
    /// The server closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

impl TcpClient {
    /// Connect to `addr`.
    pub fn connect(addr: SocketAddr) -> TcpClient {
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        TcpClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// The client's address.
    pub fn addr(&self) -> SocketAddr {
        self.stream.local_addr().expect("local addr")
    }

    /// Write all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("tcp send");
    }

    /// Write all of `bytes`, reporting failure instead of panicking (the
    /// server may have closed the connection).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Whatever arrives next (buffered bytes first).
    pub fn read_some(&mut self, timeout: Duration) -> Got {
        if !self.buf.is_empty() {
            return Got::Data(std::mem::take(&mut self.buf));
        }
        self.stream
            .set_read_timeout(Some(timeout))
            .expect("set timeout");
        let mut chunk = [0u8; 65536];
        match read_retrying(&mut self.stream, &mut chunk) {
            Ok(0) => Got::Closed,
            Ok(n) => Got::Data(chunk[..n].to_vec()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Got::Timeout
            }
            Err(_) => Got::Closed,
        }
    }

    /// Read until the server closes the connection; true if it did within
    /// `timeout` (bytes received meanwhile are discarded).
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.read_some(left) {
                Got::Closed => return true,
                Got::Timeout => return false,
                Got::Data(_) => {}
            }
        }
    }

    /// The next whole SIP message (headers plus Content-Length body), or
    /// `None` if none completes within `timeout` or the connection closes.
    pub fn read_message(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            // Skip keep-alive CRLFs between messages.
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let len = header_values(&head, "content-length")
                    .first()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    return Some(self.buf.drain(..end + 4 + len).collect());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set timeout");
            let mut chunk = [0u8; 65536];
            match read_retrying(&mut self.stream, &mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return None,
            }
        }
    }

    /// The next response, parsed.
    pub fn read_response(&mut self, timeout: Duration) -> Option<Response> {
        self.read_message(timeout).map(|m| Response::parse(&m))
    }
}

/// `read`, retried when a signal interrupts it.
pub fn read_retrying(stream: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Values of header `name` (long form, case-insensitive) in a header block.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// A SIP response as a test reads it: status, headers (by lower-case name,
/// in order), body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code (0 if the start line is not a status line).
    pub status: u16,
    /// The start line.
    pub start: String,
    /// Header values by lower-case name.
    pub headers: HashMap<String, Vec<String>>,
    /// The whole message as received.
    pub raw: Vec<u8>,
}

impl Response {
    /// Parse leniently; a test asserts on the fields.
    pub fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes).to_string();
        let head = match text.find("\r\n\r\n") {
            Some(i) => &text[..i],
            None => &text[..],
        };
        let start = head.split("\r\n").next().unwrap_or("").to_string();
        let status = start
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut headers: HashMap<String, Vec<String>> = HashMap::new();
        for line in head.split("\r\n").skip(1) {
            if let Some((n, v)) = line.split_once(':') {
                headers
                    .entry(n.trim().to_ascii_lowercase())
                    .or_default()
                    .push(v.trim().to_string());
            }
        }
        Response {
            status,
            start,
            headers,
            raw: bytes.to_vec(),
        }
    }

    /// The first value of header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every comma-separated item of every `name` header, trimmed.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A request as a phone would send it. `via_transport` is `UDP` or `TCP`,
/// `sent_by` the Via address, `via_params` extra Via parameters such as
/// `;rport`, `extra` more header lines (each ending in CRLF).
pub fn request(
    method: &str,
    via_transport: &str,
    sent_by: SocketAddr,
    via_params: &str,
    call_id: &str,
    extra: &str,
) -> Vec<u8> {
    format!(
        "{method} sip:line1@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/{via_transport} {sent_by};branch=z9hG4bK-{call_id}{via_params}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:phone@127.0.0.1>;tag=t-{call_id}\r\n\
         To: <sip:line1@127.0.0.1>\r\n\
         Call-ID: {call_id}@test\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:phone@{sent_by}>\r\n\
         {extra}\
         Content-Length: 0\r\n\
         \r\n"
    )
    .into_bytes()
}

/// Parameters of a Via value, lower-case name → value (empty if none).
pub fn via_params(via: &str) -> HashMap<String, String> {
    via.split(';')
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim().to_ascii_lowercase(), v.trim().to_string()),
            None => (p.trim().to_ascii_lowercase(), String::new()),
        })
        .collect()
}

/// A `status` response to the request in `req` (Via, From, To, Call-ID and
/// CSeq copied), as a phone answers a NOTIFY.
pub fn response_to(req: &[u8], status: u16, reason: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(req);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for line in head.split("\r\n").skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
        ) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// The start line of a message.
pub fn start_line(msg: &[u8]) -> String {
    String::from_utf8_lossy(msg)
        .split("\r\n")
        .next()
        .unwrap_or("")
        .to_string()
}
