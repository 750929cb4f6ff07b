//! Shared call appearance end to end: the real binary over real sockets,
//! every flow once over UDP and once over TCP. Watchers and seizers answer
//! each NOTIFY with 200, as phones do.

mod common;

use common::{response_to, start_line, Response, Server, TcpClient, UdpClient};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);
const LINE: &str = "sip:bob@example.com";
const ALICE: &str = r#""\"Alice\" <sip:alice@example.com>""#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tp {
    Udp,
    Tcp,
}

enum Sock {
    Udp(UdpClient),
    Tcp(TcpClient),
}

/// A phone (or PBX): one socket to the server, NOTIFYs answered and queued.
struct Phone {
    sock: Sock,
    server: SocketAddr,
    notifies: VecDeque<Response>,
    seq: u32,
}

/// One subscription dialog of a phone.
struct Sub {
    call_id: String,
    from_tag: String,
    to_tag: String,
    cseq: u32,
    event: String,
}

impl Phone {
    fn new(server: &Server, tp: Tp) -> Phone {
        match tp {
            Tp::Udp => Phone {
                sock: Sock::Udp(UdpClient::new()),
                server: server.udp,
                notifies: VecDeque::new(),
                seq: 0,
            },
            Tp::Tcp => Phone {
                sock: Sock::Tcp(TcpClient::connect(server.tcp)),
                server: server.tcp,
                notifies: VecDeque::new(),
                seq: 0,
            },
        }
    }

    fn addr(&self) -> SocketAddr {
        match &self.sock {
            Sock::Udp(c) => c.addr(),
            Sock::Tcp(c) => c.addr(),
        }
    }

    fn via(&self) -> &'static str {
        match self.sock {
            Sock::Udp(_) => "UDP",
            Sock::Tcp(_) => "TCP",
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        match &mut self.sock {
            Sock::Udp(c) => c.send(self.server, bytes),
            Sock::Tcp(c) => c.send(bytes),
        }
    }

    fn recv_raw(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        match &mut self.sock {
            Sock::Udp(c) => c.recv(timeout).map(|(b, _)| b),
            Sock::Tcp(c) => c.read_message(timeout),
        }
    }

    /// The next message; a NOTIFY is answered with 200 and queued.
    fn pump(&mut self, timeout: Duration) -> Option<Response> {
        let bytes = self.recv_raw(timeout)?;
        if start_line(&bytes).starts_with("NOTIFY ") {
            let ok = response_to(&bytes, 200, "OK");
            self.send(&ok);
            self.notifies.push_back(Response::parse(&bytes));
            return None;
        }
        Some(Response::parse(&bytes))
    }

    /// Send a request and return its final response.
    fn transact(&mut self, bytes: &[u8]) -> Response {
        self.send(bytes);
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

    /// The next NOTIFY within `timeout`.
    fn notify_within(&mut self, timeout: Duration) -> Option<Response> {
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

    fn notify(&mut self) -> Response {
        self.notify_within(WAIT).expect("a NOTIFY within 5 s")
    }

    fn request(
        &mut self,
        method: &str,
        call_id: &str,
        from_tag: &str,
        to_tag: &str,
        cseq: u32,
        extra: &str,
    ) -> Vec<u8> {
        self.seq += 1;
        let addr = self.addr();
        let to = if to_tag.is_empty() {
            format!("<{LINE}>")
        } else {
            format!("<{LINE}>;tag={to_tag}")
        };
        format!(
            "{method} {LINE} SIP/2.0\r\n\
             Via: SIP/2.0/{} {addr};branch=z9hG4bK-{call_id}-{}-{};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:phone@127.0.0.1>;tag={from_tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:phone@{addr}>\r\n\
             {extra}\
             Content-Length: 0\r\n\
             \r\n",
            self.via(),
            self.seq,
            addr.port()
        )
        .into_bytes()
    }

    /// A PUBLISH with these extra header lines.
    fn publish(&mut self, extra: &str) -> Response {
        let id = format!("pub-{}-{}", self.addr().port(), self.seq);
        let req = self.request(
            "PUBLISH",
            &id,
            "p",
            "",
            1,
            &format!("Event: call-info\r\n{extra}"),
        );
        self.transact(&req)
    }

    /// An initial SUBSCRIBE; the dialog if it was granted.
    fn subscribe(&mut self, event: &str, extra: &str) -> (Response, Sub) {
        let call_id = format!("sub-{}-{}", self.addr().port(), self.seq);
        let req = self.request(
            "SUBSCRIBE",
            &call_id,
            "w",
            "",
            1,
            &format!("Event: {event}\r\n{extra}"),
        );
        let r = self.transact(&req);
        let to_tag = r
            .header("to")
            .and_then(|t| t.split(";tag=").nth(1))
            .unwrap_or("")
            .to_string();
        let sub = Sub {
            call_id,
            from_tag: "w".into(),
            to_tag,
            cseq: 1,
            event: event.into(),
        };
        (r, sub)
    }

    /// A SUBSCRIBE in the dialog (refresh, or Expires: 0 to end it).
    fn resubscribe(&mut self, sub: &mut Sub, expires: u32) -> Response {
        sub.cseq += 1;
        let extra = format!("Event: {}\r\nExpires: {expires}\r\n", sub.event);
        let req = self.request(
            "SUBSCRIBE",
            &sub.call_id.clone(),
            &sub.from_tag.clone(),
            &sub.to_tag.clone(),
            sub.cseq,
            &extra,
        );
        self.transact(&req)
    }

    /// A call-info watcher: subscribed, its first NOTIFY taken.
    fn watcher(server: &Server, tp: Tp) -> (Phone, Sub, Response) {
        let mut p = Phone::new(server, tp);
        let (r, sub) = p.subscribe("call-info", "Expires: 600\r\n");
        assert_eq!(r.status, 200, "{}", r.start);
        let n = p.notify();
        (p, sub, n)
    }

    /// A line-seize SUBSCRIBE for `index` (`*` allowed).
    fn seize(&mut self, index: &str, expires: Option<u32>) -> (Response, Sub) {
        let mut extra = format!("Call-Info: <sip:example.com>;appearance-index={index}\r\n");
        if let Some(e) = expires {
            extra.push_str(&format!("Expires: {e}\r\n"));
        }
        self.subscribe("line-seize", &extra)
    }
}

fn call_info(n: &Response) -> &str {
    n.header("call-info")
        .unwrap_or_else(|| panic!("no Call-Info in {}", String::from_utf8_lossy(&n.raw)))
}

const IDLE: &str = "<sip:example.com>;appearance-index=*;appearance-state=idle";

fn alerting_1() -> String {
    format!("Call-Info: <sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri={ALICE}\r\n")
}

fn etag(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.raw));
    r.header("sip-etag")
        .expect("SIP-ETag on a 200 to PUBLISH")
        .to_string()
}

fn seed_flow(tp: Tp) {
    let server = Server::start_local(&[]);
    let (mut watcher, _sub, first) = Phone::watcher(&server, tp);
    assert_eq!(call_info(&first), IDLE);
    let mut pbx = Phone::new(&server, tp);

    let r = pbx.publish(&format!("Expires: 600\r\n{}", alerting_1()));
    let tag = etag(&r);
    assert_eq!(r.header("expires"), Some("600"));
    let n = watcher.notify();
    assert!(n.start.starts_with("NOTIFY "), "{}", n.start);
    assert_eq!(n.header("event"), Some("call-info"));
    assert_eq!(
        call_info(&n),
        format!("<sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri={ALICE}, {IDLE}")
    );
    assert_eq!(
        n.headers.get("call-info").map(Vec::len),
        Some(1),
        "one Call-Info header"
    );
    assert!(
        n.header("content-type").is_none(),
        "a call-info NOTIFY has no body"
    );
    assert_eq!(n.header("content-length"), Some("0"));

    let r = pbx.publish(&format!(
        "SIP-If-Match: {tag}\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=active;appearance-uri={ALICE}\r\n"
    ));
    let tag2 = etag(&r);
    assert_ne!(tag, tag2, "each PUBLISH gets a fresh entity-tag");
    let n = watcher.notify();
    assert_eq!(
        call_info(&n),
        format!("<sip:example.com>;appearance-index=1;appearance-state=active;appearance-uri={ALICE}, {IDLE}")
    );

    // The old tag is spent.
    let r = pbx.publish(&format!("SIP-If-Match: {tag}\r\nExpires: 0\r\n"));
    assert_eq!(r.status, 412, "{}", r.start);

    let r = pbx.publish(&format!("SIP-If-Match: {tag2}\r\nExpires: 0\r\n"));
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(r.header("expires"), Some("0"));
    let n = watcher.notify();
    assert_eq!(call_info(&n), IDLE);
    assert!(
        watcher.notify_within(Duration::from_millis(500)).is_none(),
        "one NOTIFY per change"
    );
}

#[test]
fn seed_flow_udp() {
    seed_flow(Tp::Udp);
}
#[test]
fn seed_flow_tcp() {
    seed_flow(Tp::Tcp);
}

fn publish_rules(tp: Tp) {
    let server = Server::start_local(&[]);
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut pbx = Phone::new(&server, tp);

    // A body is refused, whatever it claims to be.
    let id = "body-1";
    let body = "<x/>";
    let req = format!(
        "PUBLISH {LINE} SIP/2.0\r\nVia: SIP/2.0/{} {};branch=z9hG4bK-body;rport\r\nMax-Forwards: 70\r\n\
         From: <sip:pbx@127.0.0.1>;tag=b\r\nTo: <{LINE}>\r\nCall-ID: {id}\r\nCSeq: 1 PUBLISH\r\n\
         Event: call-info\r\n{}Content-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        pbx.via(),
        pbx.addr(),
        alerting_1(),
        body.len()
    );
    let r = pbx.transact(req.as_bytes());
    assert_eq!(r.status, 415, "{}", r.start);

    // Malformed Call-Info: 400 naming the fault.
    let bad: [(&str, &str); 6] = [
        (
            "Call-Info: <sip:example.com>;appearance-state=alerting\r\n",
            "appearance-index",
        ),
        (
            "Call-Info: <sip:example.com>;appearance-index=0;appearance-state=alerting\r\n",
            "appearance-index",
        ),
        (
            "Call-Info: <sip:example.com>;appearance-index=1\r\n",
            "appearance-state",
        ),
        (
            "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=ringing\r\n",
            "appearance-state",
        ),
        (
            "Call-Info: <sip:example.com>;appearance-index=*;appearance-state=active\r\n",
            "*",
        ),
        ("", "Call-Info"),
    ];
    for (header, names) in bad {
        let r = pbx.publish(header);
        assert_eq!(r.status, 400, "{header:?} got {}", r.start);
        assert!(
            r.start.contains(names),
            "reason of {:?} should name {names:?}: {}",
            header,
            r.start
        );
    }
    assert!(
        watcher.notify_within(Duration::from_millis(300)).is_none(),
        "refused PUBLISHes change nothing"
    );

    // Several appearances: comma-separated and on separate lines, listed in index order.
    let r = pbx.publish(
        "Call-Info: <sip:example.com>;appearance-index=3;appearance-state=held, <sip:example.com>;appearance-index=1;appearance-state=active\r\n\
         Call-Info: <sip:example.com>;appearance-index=2;appearance-state=progressing\r\n\
         Call-Info: <sip:example.com>;appearance-index=*;appearance-state=idle\r\n",
    );
    let tag = etag(&r);
    let n = watcher.notify();
    assert_eq!(
        call_info(&n),
        format!(
            "<sip:example.com>;appearance-index=1;appearance-state=active, \
             <sip:example.com>;appearance-index=2;appearance-state=progressing, \
             <sip:example.com>;appearance-index=3;appearance-state=held, {IDLE}"
        )
    );

    // A refresh keeps the state and tells nobody.
    let r = pbx.publish(&format!("SIP-If-Match: {tag}\r\nExpires: 900\r\n"));
    let tag = etag(&r);
    assert_eq!(r.header("expires"), Some("900"));
    assert!(
        watcher.notify_within(Duration::from_secs(1)).is_none(),
        "a refresh sends no NOTIFY"
    );
    let (_late, _s, n) = Phone::watcher(&server, tp);
    assert!(
        call_info(&n).contains("appearance-index=2;appearance-state=progressing"),
        "{}",
        call_info(&n)
    );

    // Removal needs no Call-Info.
    let r = pbx.publish(&format!("SIP-If-Match: {tag}\r\nExpires: 0\r\n"));
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(call_info(&watcher.notify()), IDLE);
}

#[test]
fn publish_rules_udp() {
    publish_rules(Tp::Udp);
}
#[test]
fn publish_rules_tcp() {
    publish_rules(Tp::Tcp);
}

fn untrusted_publisher(tp: Tp) {
    let server = Server::start_with_config("[policy]\ntrusted_publishers = [\"192.0.2.0/24\"]\n");
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut pbx = Phone::new(&server, tp);
    let r = pbx.publish(&alerting_1());
    assert_eq!(r.status, 403, "{}", r.start);
    assert!(r.header("sip-etag").is_none());
    assert!(watcher.notify_within(Duration::from_millis(500)).is_none());
}

#[test]
fn untrusted_publisher_udp() {
    untrusted_publisher(Tp::Udp);
}
#[test]
fn untrusted_publisher_tcp() {
    untrusted_publisher(Tp::Tcp);
}

fn publication_expiry(tp: Tp) {
    let server = Server::start_with_config("[packages.call-info]\nmin_expires = 1\n");
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut pbx = Phone::new(&server, tp);
    let r = pbx.publish(&format!("Expires: 1\r\n{}", alerting_1()));
    assert_eq!(r.header("expires"), Some("1"), "{}", r.start);
    let started = Instant::now();
    assert!(call_info(&watcher.notify()).contains("appearance-state=alerting"));
    let n = watcher.notify();
    assert_eq!(call_info(&n), IDLE);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "expired after {took:?}"
    );
}

#[test]
fn publication_expiry_udp() {
    publication_expiry(Tp::Udp);
}
#[test]
fn publication_expiry_tcp() {
    publication_expiry(Tp::Tcp);
}

fn seize_rules(tp: Tp) {
    let server = Server::start_with_config("[policy]\nmax_appearances = 3\n");
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);

    // Grant: 200, the seizer's NOTIFY names its index, watchers see it seized.
    let mut a = Phone::new(&server, tp);
    let (r, mut sub_a) = a.seize("1", None);
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(
        r.header("expires"),
        Some("15"),
        "line-seize default Expires"
    );
    let n = a.notify();
    assert_eq!(n.header("event"), Some("line-seize"));
    let state = n.header("subscription-state").unwrap_or("");
    assert!(state.starts_with("active;expires="), "{state}");
    let secs: u32 = state["active;expires=".len()..].parse().expect("a number");
    assert!((14..=15).contains(&secs), "{state}");
    assert_eq!(call_info(&n), "<sip:example.com>;appearance-index=1");
    assert_eq!(
        call_info(&watcher.notify()),
        format!("<sip:example.com>;appearance-index=1;appearance-state=seized, {IDLE}")
    );

    // Taken: 480 with Retry-After.
    let mut b = Phone::new(&server, tp);
    let (r, _) = b.seize("1", None);
    assert_eq!(r.status, 480, "{}", r.start);
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u32>().is_ok()),
        "{}",
        String::from_utf8_lossy(&r.raw)
    );

    // Above max_appearances: 403. Missing or bad index: 400.
    let (r, _) = b.seize("4", None);
    assert_eq!(r.status, 403, "{}", r.start);
    let (r, _) = b.subscribe("line-seize", "");
    assert_eq!(r.status, 400, "{}", r.start);
    let (r, _) = b.seize("x", None);
    assert_eq!(r.status, 400, "{}", r.start);
    assert!(
        watcher.notify_within(Duration::from_millis(300)).is_none(),
        "refusals change nothing"
    );

    // `*`: the lowest idle index.
    let (r, mut sub_b) = b.seize("*", None);
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(
        call_info(&b.notify()),
        "<sip:example.com>;appearance-index=2"
    );
    assert!(call_info(&watcher.notify()).contains("appearance-index=2;appearance-state=seized"));

    // Unsubscribe releases: a final NOTIFY to the seizer, idle to watchers.
    let r = a.resubscribe(&mut sub_a, 0);
    assert_eq!(r.status, 200, "{}", r.start);
    let last = a.notify();
    assert!(
        last.header("subscription-state")
            .unwrap_or("")
            .starts_with("terminated"),
        "{}",
        last.start
    );
    assert_eq!(
        call_info(&watcher.notify()),
        format!("<sip:example.com>;appearance-index=2;appearance-state=seized, {IDLE}")
    );
    // Index 1 is free again.
    let mut c = Phone::new(&server, tp);
    let (r, _) = c.seize("1", None);
    assert_eq!(r.status, 200, "{}", r.start);
    // A refresh keeps the seize and NOTIFYs only the seizer.
    let r = b.resubscribe(&mut sub_b, 10);
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(r.header("expires"), Some("10"));
}

#[test]
fn seize_rules_udp() {
    seize_rules(Tp::Udp);
}
#[test]
fn seize_rules_tcp() {
    seize_rules(Tp::Tcp);
}

fn seize_expiry(tp: Tp) {
    let server = Server::start_with_config(
        "[packages.line-seize]\ndefault_expires = 1\nmax_expires = 1\nmin_expires = 1\n",
    );
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut a = Phone::new(&server, tp);
    let (r, _) = a.seize("1", Some(15));
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(
        r.header("expires"),
        Some("1"),
        "granted at most max_expires"
    );
    let started = Instant::now();
    assert!(a
        .notify()
        .header("subscription-state")
        .unwrap_or("")
        .starts_with("active"));
    assert!(call_info(&watcher.notify()).contains("appearance-index=1;appearance-state=seized"));
    let end = a.notify();
    assert_eq!(
        end.header("subscription-state"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(call_info(&watcher.notify()), IDLE);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(4),
        "expired after {took:?}"
    );
}

#[test]
fn seize_expiry_udp() {
    seize_expiry(Tp::Udp);
}
#[test]
fn seize_expiry_tcp() {
    seize_expiry(Tp::Tcp);
}

fn call_ends_seize(tp: Tp) {
    let server = Server::start_local(&[]);
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut a = Phone::new(&server, tp);
    let (r, _) = a.seize("1", None);
    assert_eq!(r.status, 200, "{}", r.start);
    a.notify();
    watcher.notify();
    let mut pbx = Phone::new(&server, tp);
    let r = pbx.publish(
        "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=progressing\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.start);
    let end = a.notify();
    assert_eq!(
        end.header("subscription-state"),
        Some("terminated;reason=noresource")
    );
    let n = watcher.notify();
    assert_eq!(
        call_info(&n),
        format!("<sip:example.com>;appearance-index=1;appearance-state=progressing, {IDLE}")
    );
    assert!(
        watcher.notify_within(Duration::from_millis(500)).is_none(),
        "one NOTIFY for one change"
    );
}

#[test]
fn call_ends_seize_udp() {
    call_ends_seize(Tp::Udp);
}
#[test]
fn call_ends_seize_tcp() {
    call_ends_seize(Tp::Tcp);
}

fn two_publishers(tp: Tp) {
    let server = Server::start_local(&[]);
    let (mut watcher, _sub, _) = Phone::watcher(&server, tp);
    let mut p1 = Phone::new(&server, tp);
    let mut p2 = Phone::new(&server, tp);
    let t1 = etag(&p1.publish(&alerting_1()));
    assert!(call_info(&watcher.notify()).contains("appearance-index=1;appearance-state=alerting"));
    let t2 = etag(
        &p2.publish("Call-Info: <sip:example.com>;appearance-index=2;appearance-state=active\r\n"),
    );
    assert_eq!(
        call_info(&watcher.notify()),
        format!(
            "<sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri={ALICE}, \
             <sip:example.com>;appearance-index=2;appearance-state=active, {IDLE}"
        )
    );
    // The most recent claim on an index wins.
    let t2 = etag(&p2.publish(&format!(
        "SIP-If-Match: {t2}\r\nCall-Info: <sip:example.com>;appearance-index=1;appearance-state=held, \
         <sip:example.com>;appearance-index=2;appearance-state=active\r\n"
    )));
    assert_eq!(
        call_info(&watcher.notify()),
        format!(
            "<sip:example.com>;appearance-index=1;appearance-state=held, \
             <sip:example.com>;appearance-index=2;appearance-state=active, {IDLE}"
        )
    );
    // Publisher 1 leaving changes nothing: its claim was overtaken.
    let r = p1.publish(&format!("SIP-If-Match: {t1}\r\nExpires: 0\r\n"));
    assert_eq!(r.status, 200, "{}", r.start);
    assert!(
        watcher.notify_within(Duration::from_millis(500)).is_none(),
        "no change, no NOTIFY"
    );
    let r = p2.publish(&format!("SIP-If-Match: {t2}\r\nExpires: 0\r\n"));
    assert_eq!(r.status, 200, "{}", r.start);
    assert_eq!(call_info(&watcher.notify()), IDLE);
}

#[test]
fn two_publishers_udp() {
    two_publishers(Tp::Udp);
}
#[test]
fn two_publishers_tcp() {
    two_publishers(Tp::Tcp);
}

fn racing_seizes(tp: Tp) {
    let server = Server::start_local(&[]);
    for round in 0..5 {
        let index = (round + 1).to_string();
        let mut a = Phone::new(&server, tp);
        let mut b = Phone::new(&server, tp);
        let extra = format!(
            "Event: line-seize\r\nCall-Info: <sip:example.com>;appearance-index={index}\r\n"
        );
        let ra = a.request("SUBSCRIBE", &format!("race-a-{round}"), "a", "", 1, &extra);
        let rb = b.request("SUBSCRIBE", &format!("race-b-{round}"), "b", "", 1, &extra);
        // Both on the wire before either answer is read.
        a.send(&ra);
        b.send(&rb);
        let wait_final = |p: &mut Phone| loop {
            let r = p.pump(WAIT).expect("a response to the racing seize");
            if r.status >= 200 {
                break r.status;
            }
        };
        let mut codes = [wait_final(&mut a), wait_final(&mut b)];
        codes.sort();
        assert_eq!(codes, [200, 480], "round {round}: exactly one seize wins");
    }
}

#[test]
fn racing_seizes_udp() {
    racing_seizes(Tp::Udp);
}
#[test]
fn racing_seizes_tcp() {
    racing_seizes(Tp::Tcp);
}
