//! The RFC 4475 and RFC 5118 torture messages (byte-exact fixtures in
//! `crates/sip/tests/torture/`) sent to the real `sharedline` binary over
//! real UDP and TCP sockets, asserting what the server answers to each; then
//! thousands of seeded random mutations of them, after which the server must
//! still answer and must have stored nothing.
//!
//! `crates/sip/tests/torture.rs` checks the same messages at the message
//! layer; this file checks the whole path: framing, parsing, the engine's
//! checks, and where the answer is sent.
//!
//! How "no answer" is observed without sleeping: each fixture is sent from
//! its own socket (or connection) and followed by an OPTIONS probe from the
//! same place. The server handles one listener's input in order and sends
//! in order, so whatever it answers to the fixture arrives before the
//! probe's 200; and a short drain of every socket at the end catches
//! anything late.

mod common;

use common::{request, Got, Response, Server, TcpClient, UdpClient};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// How long any single expected answer may take.
const WAIT: Duration = Duration::from_secs(3);

/// What the server must do with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Exactly one final response with this status (provisional ones are
    /// tolerated before it), on the same socket or connection.
    Status(u16),
    /// No answer at all.
    Silence,
}

use Want::{Silence, Status};

/// One fixture and what the server must do with it over UDP. `round`
/// separates fixtures that must not share a server, see [`UDP_ROUNDS`].
struct Case {
    file: &'static str,
    udp: Want,
    round: usize,
}

const fn case(file: &'static str, udp: Want) -> Case {
    Case {
        file,
        udp,
        round: 0,
    }
}

/// Several fixtures reuse the same top-Via branch, sent-by and method as an
/// earlier one (cparam01/cparam02, escnull/regescrt, the RFC 5118 OPTIONS
/// pair and the three RFC 5118 REGISTERs). RFC 3261 §17.2.3 matches a
/// request to a live server transaction by exactly those three, and a UDP
/// non-INVITE transaction lives on for Timer J (32 s) after its answer, so
/// on one server the later fixture is rightly a retransmission of the
/// earlier one (see `fixture_sharing_a_transaction_key_is_a_retransmission`).
/// Each round therefore runs on a fresh server.
const UDP_ROUNDS: usize = 3;

const fn round(file: &'static str, udp: Want, round: usize) -> Case {
    Case { file, udp, round }
}

/// The whole corpus: every file in `rfc4475/` and `rfc5118/`.
///
/// The engine checks the version first, then the method (RFC 3261 §8.2.1:
/// an unknown method is 501, a known one we do not serve is 405), but
/// syntax before serving: a malformed request is 400 whatever its method.
const CORPUS: &[Case] = &[
    // RFC 4475 §3.1.1, valid requests: processed normally. We serve only
    // OPTIONS, SUBSCRIBE and PUBLISH, so INVITE, REGISTER and MESSAGE get
    // 405 with Allow; OPTIONS gets 200.
    case("rfc4475/wsinv.dat", Status(405)),
    // The method is a legal extension token we do not know.
    case("rfc4475/intmeth.dat", Status(501)),
    case("rfc4475/esc01.dat", Status(405)),
    case("rfc4475/escnull.dat", Status(405)),
    // `RE%47IST%45R` is not REGISTER: escapes are not decoded in a method.
    case("rfc4475/esc02.dat", Status(501)),
    case("rfc4475/lwsdisp.dat", Status(200)),
    case("rfc4475/longreq.dat", Status(405)),
    // The octets after Content-Length are ignored on UDP: one answer.
    case("rfc4475/dblreq.dat", Status(405)),
    case("rfc4475/semiuri.dat", Status(200)),
    case("rfc4475/transports.dat", Status(200)),
    case("rfc4475/mpart01.dat", Status(405)),
    // Max-Forwards 0 is fine at a UAS (RFC 4475 §3.3.11).
    case("rfc4475/zeromf.dat", Status(200)),
    case("rfc4475/cparam01.dat", Status(405)),
    round("rfc4475/cparam02.dat", Status(405), 1),
    round("rfc4475/regescrt.dat", Status(405), 1),
    // RFC 2543 syntax (no branch): accepted.
    case("rfc4475/inv2543.dat", Status(405)),
    // Responses that match no transaction of ours are dropped, valid or not.
    case("rfc4475/unreason.dat", Silence),
    case("rfc4475/noreason.dat", Silence),
    case("rfc4475/scalarlg.dat", Silence),
    case("rfc4475/bigcode.dat", Silence),
    // sent-by is a broadcast address: never answered (it is a response anyway).
    case("rfc4475/bcast.dat", Silence),
    // RFC 4475 invalid requests: 400 with the engine's reason.
    case("rfc4475/badinv01.dat", Status(400)),
    case("rfc4475/scalar02.dat", Status(400)),
    case("rfc4475/quotbal.dat", Status(400)),
    case("rfc4475/ltgtruri.dat", Status(400)),
    case("rfc4475/escruri.dat", Status(400)),
    case("rfc4475/regbadct.dat", Status(400)),
    case("rfc4475/badaspec.dat", Status(400)),
    case("rfc4475/baddn.dat", Status(400)),
    case("rfc4475/mismatch01.dat", Status(400)),
    case("rfc4475/badbranch.dat", Status(400)),
    case("rfc4475/insuf.dat", Status(400)),
    case("rfc4475/multi01.dat", Status(400)),
    // Invalid requests the parser rejects outright still get 400: the
    // engine salvages their Via, From, To, Call-ID and CSeq to answer
    // (engine/src/salvage.rs). clerr: body shorter than Content-Length;
    // ncl: negative Content-Length; lwsruri: white space inside the
    // Request-URI; mcl01: two Content-Length values.
    case("rfc4475/clerr.dat", Status(400)),
    case("rfc4475/ncl.dat", Status(400)),
    case("rfc4475/lwsruri.dat", Status(400)),
    case("rfc4475/mcl01.dat", Status(400)),
    // Specific codes.
    case("rfc4475/badvers.dat", Status(505)),
    // Unknown method whose CSeq says INVITE: the method decides, 501.
    case("rfc4475/mismatch02.dat", Status(501)),
    case("rfc4475/unkscm.dat", Status(416)),
    case("rfc4475/novelsc.dat", Status(416)),
    // OPTIONS with an unknown Require: 420 with Unsupported (checked below).
    case("rfc4475/bext01.dat", Status(420)),
    // invut (unknown Content-Type) and sdp01 (unsatisfiable Accept): RFC
    // 4475 expects 415 and 406 from a UAS that accepts INVITE. Ours refuses
    // the method first, as RFC 3261 §8.2 orders the checks (method §8.2.1
    // before content §8.2.3), so both are 405.
    case("rfc4475/invut.dat", Status(405)),
    case("rfc4475/sdp01.dat", Status(405)),
    // REGISTER to a server that is no registrar.
    case("rfc4475/regaut01.dat", Status(405)),
    // Tolerated either way; the sip crate accepts all four, so the server
    // processes them normally (extra white space in the request line, a
    // trailing space after the version, a bad Date, a non-sip Contact).
    case("rfc4475/lwsstart.dat", Status(405)),
    case("rfc4475/trws.dat", Status(200)),
    case("rfc4475/baddate.dat", Status(405)),
    case("rfc4475/unksm2.dat", Status(405)),
    // RFC 5118: IPv6 and IPv4-mapped addresses; `*bad*` is rejected.
    case("rfc5118/ipv4-mapped-ipv6", Status(405)),
    case("rfc5118/ipv6-bad", Status(400)),
    // Three colons (RFC 5118 §4.10): tolerated, like the two-colon form.
    case("rfc5118/ipv6-bug-abnf-3-colons", Status(200)),
    round("rfc5118/ipv6-correct-abnf-2-colons", Status(200), 1),
    case("rfc5118/ipv6-good", Status(405)),
    case("rfc5118/ipv6-in-sdp", Status(405)),
    case("rfc5118/mult-ip-in-header", Status(405)),
    case("rfc5118/mult-ip-in-sdp", Status(405)),
    round("rfc5118/port-ambiguous", Status(405), 1),
    round("rfc5118/port-unambiguous", Status(405), 2),
    case("rfc5118/via-received-param-no-delim", Status(200)),
    case("rfc5118/via-received-param-with-delim", Status(405)),
];

/// What the server must do with a fixture sent alone on a fresh TCP
/// connection (no rewriting at all: on a stream the answer goes back on the
/// connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpWant {
    /// As over UDP, and the connection stays usable.
    Same(Want),
    /// The connection is closed with nothing sent on it.
    Closed,
    /// One answer with this status; the fixture's octets beyond its
    /// Content-Length then begin a next message on the stream.
    Overlong(u16),
}

/// `None`: the fixture has its own TCP test.
fn tcp_want(c: &Case) -> Option<TcpWant> {
    match c.file {
        // No Content-Length: a stream cannot be framed (RFC 3261 §18.3), so
        // the server closes the connection. ncl's is negative and mcl01 has
        // two values: likewise unframeable (RFC 4475: "TCP: close").
        "rfc4475/inv2543.dat" | "rfc4475/ncl.dat" | "rfc4475/mcl01.dat" => Some(TcpWant::Closed),
        // These three RFC 5118 files carry 8 to 10 more body octets than
        // their Content-Length says (ignored on UDP).
        "rfc5118/ipv4-mapped-ipv6" | "rfc5118/ipv6-in-sdp" | "rfc5118/mult-ip-in-sdp" => {
            Some(TcpWant::Overlong(405))
        }
        // Body shorter than Content-Length, and a second request after the
        // first: see their own tests.
        "rfc4475/clerr.dat" | "rfc4475/dblreq.dat" => None,
        _ => Some(TcpWant::Same(c.udp)),
    }
}

fn fixture(rel: &str) -> Vec<u8> {
    let path = format!("{}/../sip/tests/torture/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The fixture with `;rport` added to its top Via, right after the sent-by
/// (RFC 3581). This changes only where the server sends a UDP response: to
/// the source port of the datagram (our socket) instead of the sent-by port
/// (5060 unless given) at the source address, where nobody listens. Nothing
/// else in the bytes changes; a Via that already has rport, or a message
/// with no Via, is returned as it is.
fn with_rport(msg: &[u8]) -> Vec<u8> {
    let head_end = find(msg, b"\r\n\r\n").map_or(msg.len(), |i| i + 2);
    let line_end = |from: usize| find(&msg[from..], b"\r\n").map_or(msg.len(), |p| from + p);
    // Headers start after the start line.
    let Some(mut i) = find(msg, b"\r\n").map(|i| i + 2) else {
        return msg.to_vec();
    };
    while i < head_end {
        let end_of_line = line_end(i);
        let line = &msg[i..end_of_line];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            i = end_of_line + 2;
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        if name != "via" && name != "v" {
            i = end_of_line + 2;
            continue;
        }
        // The value runs on over folded continuation lines.
        let mut end = end_of_line;
        while end + 2 < msg.len() && matches!(msg[end + 2], b' ' | b'\t') {
            end = line_end(end + 2);
        }
        let start = i + colon + 1;
        let value = &msg[start..end];
        if String::from_utf8_lossy(value)
            .to_ascii_lowercase()
            .contains("rport")
        {
            return msg.to_vec();
        }
        // The sent-by ends at the first parameter or the next Via value.
        let at = match value.iter().position(|&b| b == b';' || b == b',') {
            Some(p) => start + p,
            None => {
                let mut e = end;
                while e > start && matches!(msg[e - 1], b' ' | b'\t') {
                    e -= 1;
                }
                e
            }
        };
        let mut out = Vec::with_capacity(msg.len() + 6);
        out.extend_from_slice(&msg[..at]);
        out.extend_from_slice(b";rport");
        out.extend_from_slice(&msg[at..]);
        return out;
    }
    msg.to_vec()
}

/// The Call-ID of a fixture, if it has one (long or compact form).
fn call_id_of(msg: &[u8]) -> Option<String> {
    let parsed = Response::parse(msg);
    parsed
        .header("call-id")
        .or_else(|| parsed.header("i"))
        .map(str::to_string)
}

/// Why `got` (everything the server sent back for fixture `file`) is not
/// what `want` asks, or `None` if it is.
fn judge(file: &str, want: Want, got: &[Response]) -> Option<String> {
    let show = |rs: &[Response]| -> Vec<String> { rs.iter().map(|r| r.start.clone()).collect() };
    let Status(code) = want else {
        return (!got.is_empty()).then(|| format!("{file}: wanted no answer, got {:?}", show(got)));
    };
    let finals: Vec<&Response> = got.iter().filter(|r| r.status >= 200).collect();
    if got.iter().any(|r| r.status < 100) {
        return Some(format!("{file}: got a non-response {:?}", show(got)));
    }
    let [resp] = finals.as_slice() else {
        return Some(format!("{file}: wanted one {code}, got {:?}", show(got)));
    };
    if resp.status != code {
        return Some(format!("{file}: wanted {code}, got {:?}", resp.start));
    }
    let reason = resp.start.splitn(3, ' ').nth(2).unwrap_or("").trim();
    if reason.is_empty() {
        return Some(format!("{file}: empty reason phrase in {:?}", resp.start));
    }
    let fixture_call_id = call_id_of(&fixture(file));
    if fixture_call_id.is_some() && resp.header("call-id").map(str::to_string) != fixture_call_id {
        return Some(format!(
            "{file}: Call-ID {:?} is not the request's {fixture_call_id:?}",
            resp.header("call-id")
        ));
    }
    let allow = resp.list("Allow");
    let allows = |m: &str| allow.iter().any(|a| a.eq_ignore_ascii_case(m));
    match code {
        405 | 200 => {
            let served = ["OPTIONS", "SUBSCRIBE", "PUBLISH"];
            if !served.iter().all(|m| allows(m)) || allows("INVITE") || allows("REGISTER") {
                return Some(format!("{file}: {code} with Allow {allow:?}"));
            }
        }
        420 => {
            let unsupported = resp.list("Unsupported");
            let want = ["nothingSupportsThis", "nothingSupportsThisEither"];
            if unsupported.len() != 2 || !want.iter().all(|t| unsupported.iter().any(|u| u == t)) {
                return Some(format!("{file}: 420 with Unsupported {unsupported:?}"));
            }
        }
        _ => {}
    }
    None
}

/// An OPTIONS from `from` asking for the answer at its source port.
fn udp_probe(from: SocketAddr, id: &str) -> Vec<u8> {
    request("OPTIONS", "UDP", from, ";rport", id, "")
}

/// Everything `client` receives until the answer to a probe sent after
/// whatever it sent before; panics if the probe goes unanswered (the
/// server has died or stopped reading). Each response must come from the
/// listener's own address.
fn udp_until_probe(server: &Server, client: &UdpClient, id: &str) -> Vec<Response> {
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    // A probe lost to a full receive buffer is sent again (a new branch each
    // time, so it is not taken for a retransmission).
    let mut tries = 0;
    'send: loop {
        tries += 1;
        client.send(
            server.udp,
            &udp_probe(client.addr(), &format!("{id}-{tries}")),
        );
        let resend_at = Instant::now() + Duration::from_millis(500);
        loop {
            let now = Instant::now();
            assert!(
                now < deadline,
                "server did not answer probe {id} (process {})",
                process_state(server)
            );
            let left = resend_at.saturating_duration_since(now);
            if left.is_zero() {
                continue 'send;
            }
            let Some((bytes, from)) = client.recv(left) else {
                continue 'send;
            };
            let resp = Response::parse(&bytes);
            assert_eq!(from, server.udp, "answer from an unexpected address");
            let call_id = resp.header("call-id").unwrap_or("");
            if call_id.starts_with(&format!("{id}-")) && call_id.ends_with("@test") {
                assert_eq!(resp.status, 200, "probe answered {:?}", resp.start);
                return got;
            }
            // A late answer to an earlier probe (no fixture's Call-ID ends so).
            if call_id.ends_with("@test") {
                continue;
            }
            got.push(resp);
        }
    }
}

/// Nothing more arrives at any of `clients` within a short while.
fn assert_quiet(clients: &[(&str, UdpClient)]) {
    std::thread::sleep(Duration::from_millis(200));
    for (file, c) in clients {
        if let Some((bytes, _)) = c.recv(Duration::from_millis(1)) {
            panic!("{file}: late datagram {:?}", common::start_line(&bytes));
        }
    }
}

/// The server process is still running.
fn assert_running(server: &mut Server) {
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "the server process exited"
    );
}

/// Whether the server's pid still runs, for failure messages (`try_wait`
/// needs `&mut`). An exited child not yet reaped shows as a zombie.
fn process_state(server: &Server) -> &'static str {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.child.id()));
    match stat.as_deref().ok().and_then(|s| s.rsplit_once(") ")) {
        Some((_, rest)) if !rest.starts_with('Z') => "still running",
        _ => "exited",
    }
}

#[test]
fn every_fixture_over_udp_gets_the_right_answer_or_none() {
    let mut failures = Vec::new();
    for r in 0..UDP_ROUNDS {
        let mut server = Server::start_local(&[]);
        let mut clients = Vec::new();
        for (n, c) in CORPUS.iter().filter(|c| c.round == r).enumerate() {
            let client = UdpClient::new();
            client.send(server.udp, &with_rport(&fixture(c.file)));
            let got = udp_until_probe(&server, &client, &format!("probe-{r}-{n}"));
            failures.extend(judge(c.file, c.udp, &got));
            clients.push((c.file, client));
        }
        assert_quiet(&clients);
        // After its whole round the server is running and answers OPTIONS.
        assert_running(&mut server);
        let last = UdpClient::new();
        assert!(udp_until_probe(&server, &last, "alive").is_empty());
    }
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_file_of_both_rfcs_is_in_the_corpus() {
    let root = format!("{}/../sip/tests/torture", env!("CARGO_MANIFEST_DIR"));
    let mut on_disk = Vec::new();
    for dir in ["rfc4475", "rfc5118"] {
        for entry in std::fs::read_dir(format!("{root}/{dir}")).expect("fixture dir") {
            let name = entry.expect("dir entry").file_name();
            on_disk.push(format!("{dir}/{}", name.to_string_lossy()));
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|c| c.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(on_disk.len(), 49 + 12);
}

#[test]
fn fixture_sharing_a_transaction_key_is_a_retransmission() {
    // cparam02 has cparam01's branch, sent-by and method (REGISTER): RFC
    // 3261 §17.2.3 makes it a retransmission, answered by resending the
    // first response to where the first went.
    let server = Server::start_local(&[]);
    let a = UdpClient::new();
    a.send(server.udp, &with_rport(&fixture("rfc4475/cparam01.dat")));
    let (first, _) = a.recv(WAIT).expect("cparam01 unanswered");
    assert_eq!(Response::parse(&first).status, 405);
    let b = UdpClient::new();
    b.send(server.udp, &with_rport(&fixture("rfc4475/cparam02.dat")));
    let (again, _) = a.recv(WAIT).expect("cparam02 did not resend the answer");
    assert_eq!(first, again, "the resent answer must be identical");
    assert!(udp_until_probe(&server, &b, "after-cparam02").is_empty());
}

#[test]
fn without_rport_the_answer_goes_to_the_sent_by_port() {
    // RFC 3261 §18.2.2: no rport, so the answer goes to the source address
    // at the Via's sent-by port. zeromf with its sent-by host replaced by
    // 127.0.0.1:P, where `listener` is bound on P; sent from another socket.
    let server = Server::start_local(&[]);
    let listener = UdpClient::new();
    let sender = UdpClient::new();
    let original = fixture("rfc4475/zeromf.dat");
    let text = String::from_utf8(original).expect("zeromf is ASCII");
    let via = "Via: SIP/2.0/UDP host1.example.com;";
    assert!(text.contains(via), "zeromf's Via changed");
    let copy = text.replace(via, &format!("Via: SIP/2.0/UDP {};", listener.addr()));
    sender.send(server.udp, copy.as_bytes());
    let (bytes, from) = listener.recv(WAIT).expect("no answer at the sent-by port");
    assert_eq!(from, server.udp);
    let resp = Response::parse(&bytes);
    assert_eq!(resp.status, 200, "{}", resp.start);
    assert_eq!(
        resp.header("call-id"),
        call_id_of(copy.as_bytes()).as_deref()
    );
    // And nothing at the source port.
    assert!(udp_until_probe(&server, &sender, "after-sent-by").is_empty());
}

// ---- TCP ----------------------------------------------------------------

/// What came back on a TCP connection.
#[derive(Debug)]
struct TcpOutcome {
    /// Responses other than the probes'.
    got: Vec<Response>,
    /// The first probe was answered.
    first_probe: bool,
    /// The server closed the connection (before the second probe's answer).
    closed: bool,
}

/// Send `bytes` on a fresh connection, then two probes, and read until the
/// second probe's answer or the close. Two probes, because octets left over
/// after a message glue themselves to the first one.
fn tcp_exchange(server: &Server, bytes: &[u8], id: &str) -> TcpOutcome {
    let mut c = TcpClient::connect(server.tcp);
    let first = format!("{id}-a");
    let second = format!("{id}-b");
    let mut out = bytes.to_vec();
    out.extend(request("OPTIONS", "TCP", c.addr(), "", &first, ""));
    out.extend(request("OPTIONS", "TCP", c.addr(), "", &second, ""));
    // The server may close at once: a failed write is not an error here.
    let _ = c.try_send(&out);
    let mut outcome = TcpOutcome {
        got: Vec::new(),
        first_probe: false,
        closed: false,
    };
    loop {
        let Some(m) = c.read_message(WAIT) else {
            // Closed, or the second probe went unanswered on an open connection.
            outcome.closed = c.read_some(Duration::from_millis(1)) != Got::Timeout;
            assert!(
                outcome.closed,
                "{id}: connection open but the probe unanswered"
            );
            return outcome;
        };
        let resp = Response::parse(&m);
        let call_id = resp.header("call-id").unwrap_or("");
        if call_id == format!("{first}@test") {
            assert_eq!(resp.status, 200, "probe answered {:?}", resp.start);
            outcome.first_probe = true;
        } else if call_id == format!("{second}@test") {
            assert_eq!(resp.status, 200, "probe answered {:?}", resp.start);
            return outcome;
        } else {
            outcome.got.push(resp);
        }
    }
}

#[test]
fn every_fixture_over_tcp_gets_the_same_answer_or_a_close() {
    let mut server = Server::start_local(&[]);
    let mut failures = Vec::new();
    for (n, c) in CORPUS.iter().enumerate() {
        let Some(want) = tcp_want(c) else { continue };
        let o = tcp_exchange(&server, &fixture(c.file), &format!("tcp-probe-{n}"));
        let starts: Vec<&str> = o.got.iter().map(|r| r.start.as_str()).collect();
        let (ok, judged) = match want {
            TcpWant::Closed => (o.closed && o.got.is_empty(), None),
            TcpWant::Same(w) => (!o.closed && o.first_probe, judge(c.file, w, &o.got)),
            // The left-over octets and the first probe make one unparsable
            // message, which is dropped; the second probe is answered.
            TcpWant::Overlong(code) => (
                !o.closed && !o.first_probe,
                judge(c.file, Status(code), &o.got),
            ),
        };
        if !ok {
            failures.push(format!(
                "{}: wanted {want:?}; got {starts:?}, first probe answered: {}, closed: {}",
                c.file, o.first_probe, o.closed
            ));
        }
        failures.extend(judged);
    }
    assert_running(&mut server);
    let last = tcp_exchange(&server, b"", "tcp-alive");
    assert!(last.first_probe && !last.closed && last.got.is_empty());
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn clerr_over_tcp_waits_for_the_rest_then_closes_on_half_close() {
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    c.send(&fixture("rfc4475/clerr.dat"));
    // Content-Length promises 9999 octets: the server must wait for them,
    // neither answering nor closing.
    assert_eq!(c.read_some(Duration::from_millis(500)), Got::Timeout);
    // The rest never comes: end our side; the server must close, and may
    // at most say 400 first.
    c.stream.shutdown(Shutdown::Write).expect("half-close");
    let (closed, got) = read_to_close(&mut c, WAIT);
    assert!(closed, "connection still open after our half-close");
    assert_at_most_one_400(&got);
}

#[test]
fn clerr_over_tcp_is_closed_when_the_connection_idles() {
    let server = Server::start_with_config("[limits]\ntcp_idle_timeout = 1\n");
    let mut c = TcpClient::connect(server.tcp);
    c.send(&fixture("rfc4475/clerr.dat"));
    assert_eq!(c.read_some(Duration::from_millis(300)), Got::Timeout);
    let (closed, got) = read_to_close(&mut c, WAIT);
    assert!(
        closed,
        "waiting connection not closed after the idle timeout"
    );
    assert_at_most_one_400(&got);
}

#[test]
fn dblreq_over_tcp_answers_both_requests_before_closing() {
    // On a stream the octets after the REGISTER are a second message: an
    // INVITE whose body is 5 octets longer than its Content-Length. Both
    // requests are framed and answered 405; the 5 left-over octets
    // ("C\r\n\r\n") cannot be framed, so the server then closes. The
    // answers to the two framed requests must still be sent first.
    let server = Server::start_local(&[]);
    let mut c = TcpClient::connect(server.tcp);
    c.send(&fixture("rfc4475/dblreq.dat"));
    let mut got = Vec::new();
    while let Some(m) = c.read_message(WAIT) {
        got.push(Response::parse(&m));
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![405, 405], "{got:?}");
    let ids: Vec<&str> = got.iter().filter_map(|r| r.header("call-id")).collect();
    assert_eq!(
        ids,
        vec![
            "dblreq.0ha0isndaksdj99sdfafnl3lk233412",
            "dblreq.0ha0isnda977644900765@192.0.2.15"
        ]
    );
    assert!(
        c.closed_within(WAIT),
        "left-over octets did not close the connection"
    );
}

/// Read until the server closes (true) or `timeout` passes (false).
fn read_to_close(c: &mut TcpClient, timeout: Duration) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, got);
        }
        match c.read_some(left) {
            Got::Data(d) => got.extend(d),
            Got::Closed => return (true, got),
            Got::Timeout => return (false, got),
        }
    }
}

fn assert_at_most_one_400(got: &[u8]) {
    if !got.is_empty() {
        let resp = Response::parse(got);
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(got));
        let len: usize = resp
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let head = find(got, b"\r\n\r\n").map_or(got.len(), |i| i + 4);
        assert_eq!(
            got.len(),
            head + len,
            "more than one message before the close"
        );
    }
}

// ---- mutations ----------------------------------------------------------

/// xorshift64*: a small seeded generator, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Byte offsets where lines start (after each CRLF, and 0).
fn line_starts(msg: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        msg.windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\r\n")
            .map(|(i, _)| i + 2),
    );
    v
}

/// `msg` with one to three random damages.
fn mutate(rng: &mut Rng, msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for _ in 0..1 + rng.below(3) {
        if m.is_empty() {
            m.extend_from_slice(b"\r\n");
        }
        let at = rng.below(m.len());
        match rng.below(9) {
            // Overwrite a byte with any value.
            0 => m[at] = rng.next() as u8,
            // Flip one bit.
            1 => m[at] ^= 1 << rng.below(8),
            // Truncate.
            2 => m.truncate(at),
            // Duplicate a line (usually a header).
            3 => {
                let starts = line_starts(&m);
                let i = rng.below(starts.len());
                let end = starts.get(i + 1).copied().unwrap_or(m.len());
                let line = m[starts[i]..end].to_vec();
                m.splice(end..end, line);
            }
            // Insert a CRLF.
            4 => {
                m.splice(at..at, *b"\r\n");
            }
            // Delete a run.
            5 => {
                let end = (at + 1 + rng.below(64)).min(m.len());
                m.drain(at..end);
            }
            // Insert random bytes.
            6 => {
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                m.splice(at..at, junk);
            }
            // Insert something a parser may choke on.
            7 => {
                let nasty: [&[u8]; 8] = [
                    b"99999999999999999999",
                    b"-1",
                    b"\r\n ",
                    b";;,,<>\"",
                    b"%",
                    b"\0",
                    b"[::",
                    b"\r\nContent-Length: 4000000000\r\n",
                ];
                let s = nasty[rng.below(nasty.len())];
                m.splice(at..at, s.iter().copied());
            }
            // Swap two lines.
            _ => {
                let starts = line_starts(&m);
                if starts.len() > 2 {
                    let i = 1 + rng.below(starts.len() - 2);
                    let (a, b, c) = (starts[i - 1], starts[i], starts[i + 1]);
                    let (first, second) = (m[a..b].to_vec(), m[b..c].to_vec());
                    let mut swapped = second;
                    swapped.extend(first);
                    m.splice(a..c, swapped);
                }
            }
        }
    }
    m
}

fn all_fixtures() -> Vec<Vec<u8>> {
    CORPUS.iter().map(|c| fixture(c.file)).collect()
}

#[test]
fn thousands_of_mutated_messages_break_nothing_and_store_nothing() {
    // SQLite rather than memory so "stored nothing" can be read back.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let store = format!("sqlite:{}", db.display());
    let mut server = Server::start(&[
        "--sip",
        "udp:127.0.0.1:0",
        "--sip",
        "tcp:127.0.0.1:0",
        "--store",
        &store,
    ]);
    let corpus = all_fixtures();
    let mut rng = Rng(0x5EED_4475_5118_0001);
    let started = Instant::now();

    // UDP: rport on, so most answers come back here rather than to some
    // port on the loopback; a probe every 100 keeps the server's receive
    // buffer from overflowing, so it really parses every one.
    let client = UdpClient::new();
    let mut answers = 0;
    for i in 0..5000 {
        let base = with_rport(&corpus[rng.below(corpus.len())]);
        client.send(server.udp, &mutate(&mut rng, &base));
        if i % 100 == 99 {
            answers += udp_until_probe(&server, &client, &format!("m{i}")).len();
        }
    }
    let udp_time = started.elapsed();

    // TCP: one connection each, half-closed after the message: the server
    // must close every one of them, whatever it made of the bytes.
    let mut still_open = 0;
    for _ in 0..500 {
        let base = &corpus[rng.below(corpus.len())];
        let bytes = mutate(&mut rng, base);
        let mut c = TcpClient::connect(server.tcp);
        let _ = c.try_send(&bytes);
        let _ = c.stream.shutdown(Shutdown::Write);
        let (closed, _) = read_to_close(&mut c, WAIT);
        still_open += usize::from(!closed);
    }
    eprintln!(
        "mutations: 5000 UDP in {udp_time:?} ({answers} answers), 500 TCP; total {:?}",
        started.elapsed()
    );
    assert_eq!(still_open, 0, "connections the server never closed");

    assert_running(&mut server);
    assert!(udp_until_probe(&server, &UdpClient::new(), "udp-alive").is_empty());
    let last = tcp_exchange(&server, b"", "tcp-alive");
    assert!(last.first_probe && !last.closed && last.got.is_empty());
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the server's database");
    for table in ["publications", "subscriptions"] {
        let rows: i64 = conn
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count rows");
        assert_eq!(rows, 0, "mutated messages left rows in {table}");
    }
}

#[test]
fn mutation_is_deterministic_and_actually_damages() {
    let corpus = all_fixtures();
    let run = |seed| {
        let mut rng = Rng(seed);
        (0..200)
            .map(|_| {
                let base = &corpus[rng.below(corpus.len())];
                mutate(&mut rng, base)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    let changed = run(7).iter().filter(|m| !corpus.contains(m)).count();
    assert!(
        changed > 190,
        "only {changed} of 200 mutations changed anything"
    );
}

#[test]
fn rport_is_added_after_the_top_sent_by_only() {
    let cases: [(&[u8], &[u8]); 4] = [
        (
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP g\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport;branch=z9hG4bKx\r\nVia: SIP/2.0/UDP g\r\n\r\n",
        ),
        (
            b"OPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP h:5070  \r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nv: SIP/2.0/UDP h:5070;rport  \r\n\r\n",
        ),
        (
            b"OPTIONS sip:a SIP/2.0\r\nVia  : SIP /\r\n 2.0/UDP\r\n  h ;branch=1, SIP/2.0/UDP g\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nVia  : SIP /\r\n 2.0/UDP\r\n  h ;rport;branch=1, SIP/2.0/UDP g\r\n\r\n",
        ),
        (
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport\r\n\r\n",
            b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h;rport\r\n\r\n",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            String::from_utf8_lossy(&with_rport(input)),
            String::from_utf8_lossy(want)
        );
    }
    // The real fixtures keep their bytes apart from the six added.
    for c in CORPUS {
        let f = fixture(c.file);
        let r = with_rport(&f);
        assert!(r.len() == f.len() + 6 || r == f, "{}", c.file);
    }
}
