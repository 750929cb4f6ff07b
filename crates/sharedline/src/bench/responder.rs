//! The bare responder: the least a presence server could do, as this
//! machine's ceiling. One thread, one blocking UDP socket. It answers
//! SUBSCRIBE and PUBLISH with canned 200s, keeps each subscription as a
//! pre-built NOTIFY head (request line, Via, From, To, Call-ID, Event,
//! Contact already written), and for each event sends that head plus CSeq,
//! Subscription-State and Call-Info to every watcher of the line. No
//! transactions, no retransmissions, no store, no expiry: sharedline's
//! numbers divided by these are the price of doing the job properly.

use super::ResponderArgs;
use engine::Transport;
use sip::{HeaderName, Message, ResponseWriter};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;

/// Bind, print `listening udp:ADDR`, and answer until killed.
pub fn run(a: &ResponderArgs) -> Result<(), String> {
    if a.listen.transport != Transport::Udp {
        return Err("the responder speaks UDP only (--listen udp:HOST:PORT)".into());
    }
    let sock = crate::transport::udp::bind(a.listen.addr)
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
        .map_err(|e| format!("cannot bind {}: {e}", a.listen))?;
    let local = sock.local_addr().map_err(|e| e.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening udp:{local}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    let mut r = Responder::new(local);
    let mut buf = vec![0u8; 65_535];
    let mut sends: Vec<(SocketAddr, std::ops::Range<usize>)> = Vec::new();
    let mut out = Vec::with_capacity(1 << 16);
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // ICMP errors for earlier sends (a watcher gone) arrive here.
            Err(_) => continue,
        };
        out.clear();
        sends.clear();
        r.handle(&buf[..n], from, &mut out, &mut sends);
        for (to, range) in &sends {
            // A lost datagram is the client's to count.
            let _ = sock.send_to(&out[range.clone()], *to);
        }
    }
}

struct Sub {
    dest: SocketAddr,
    /// The NOTIFY up to the branch number.
    head: Vec<u8>,
    /// From the end of the branch to the CSeq line.
    mid: Vec<u8>,
    cseq: u32,
    line: String,
    watcher: bool,
}

/// The responder's state; [`Responder::handle`] is the whole protocol.
pub struct Responder {
    local: SocketAddr,
    subs: Vec<Option<Sub>>,
    free: Vec<usize>,
    by_call_id: HashMap<String, usize>,
    /// call-info watchers of each line.
    lines: HashMap<String, Vec<usize>>,
    counter: u64,
}

impl Responder {
    /// A responder whose NOTIFYs say they come from `local`.
    pub fn new(local: SocketAddr) -> Responder {
        Responder {
            local,
            subs: Vec::new(),
            free: Vec::new(),
            by_call_id: HashMap::new(),
            lines: HashMap::new(),
            counter: 0,
        }
    }

    /// Handle one datagram from `from`: append what to send to `out`, and
    /// (destination, byte range of `out`) to `sends`.
    pub fn handle(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        out: &mut Vec<u8>,
        sends: &mut Vec<(SocketAddr, std::ops::Range<usize>)>,
    ) {
        let Ok(msg) = sip::parse(bytes, false) else {
            return;
        };
        let Some(method) = msg.method() else { return };
        match method.as_str() {
            "SUBSCRIBE" => self.subscribe(&msg, from, out, sends),
            "PUBLISH" => self.publish(&msg, from, out, sends),
            "OPTIONS" => {
                let start = out.len();
                ResponseWriter::new(out, &msg, 200, "OK", Some(from), Some("r0")).finish();
                sends.push((from, start..out.len()));
            }
            "ACK" => {}
            _ => {
                let start = out.len();
                ResponseWriter::new(out, &msg, 405, "Method Not Allowed", Some(from), Some("r0"))
                    .header(HeaderName::Allow, "SUBSCRIBE, PUBLISH, OPTIONS")
                    .finish();
                sends.push((from, start..out.len()));
            }
        }
    }

    fn subscribe(
        &mut self,
        msg: &Message<'_>,
        from: SocketAddr,
        out: &mut Vec<u8>,
        sends: &mut Vec<(SocketAddr, std::ops::Range<usize>)>,
    ) {
        let package = msg
            .header(HeaderName::Event)
            .map(|e| e.split(';').next().unwrap_or("").trim())
            .unwrap_or("");
        let watcher = package.eq_ignore_ascii_case("call-info");
        if !watcher && !package.eq_ignore_ascii_case("line-seize") {
            let start = out.len();
            ResponseWriter::new(out, msg, 489, "Bad Event", Some(from), Some("r0"))
                .header(HeaderName::AllowEvents, "call-info, line-seize")
                .finish();
            sends.push((from, start..out.len()));
            return;
        }
        let expires = msg
            .expires()
            .ok()
            .flatten()
            .unwrap_or(if watcher { 3600 } else { 15 });
        let call_id = msg.header(HeaderName::CallId).unwrap_or("");
        let to = msg.to().ok().flatten();
        let existing = self.by_call_id.get(call_id).copied();
        let (idx, to_tag) = match (to.as_ref().and_then(|t| t.tag()), existing) {
            (Some(tag), Some(idx)) => (idx, tag.to_owned()),
            (Some(_), None) => {
                let start = out.len();
                ResponseWriter::new(
                    out,
                    msg,
                    481,
                    "Subscription Does Not Exist",
                    Some(from),
                    None,
                )
                .finish();
                sends.push((from, start..out.len()));
                return;
            }
            (None, _) => {
                self.counter += 1;
                let tag = format!("r{}", self.counter);
                let idx = self.new_sub(msg, from, &tag, package, watcher);
                (idx, tag)
            }
        };
        let start = out.len();
        ResponseWriter::new(out, msg, 200, "OK", Some(from), Some(&to_tag))
            .header(HeaderName::Expires, &expires.to_string())
            .header_with(HeaderName::Contact, |b| {
                let _ = write!(b, "<sip:{}>", self.local);
            })
            .finish();
        sends.push((from, start..out.len()));
        let Some(line) = self.subs[idx].as_ref().map(|s| s.line.clone()) else {
            return;
        };
        let seized_ci = msg
            .header(HeaderName::CallInfo)
            .unwrap_or("<sip:x>;appearance-index=1")
            .to_owned();
        if expires == 0 {
            let ci = if watcher {
                format!("<sip:{line}>;appearance-index=*;appearance-state=idle")
            } else {
                seized_ci.clone()
            };
            self.notify(idx, "terminated;reason=timeout", &ci, out, sends);
            self.drop_sub(idx, call_id);
            if !watcher {
                let idle = format!("<sip:{line}>;appearance-index=*;appearance-state=idle");
                self.notify_line(&line, &idle, out, sends);
            }
            return;
        }
        let state = format!("active;expires={expires}");
        if watcher {
            let idle = format!("<sip:{line}>;appearance-index=*;appearance-state=idle");
            self.notify(idx, &state, &idle, out, sends);
        } else {
            self.notify(idx, &state, &seized_ci, out, sends);
            let seized = format!("{seized_ci};appearance-state=seized");
            self.notify_line(&line, &seized, out, sends);
        }
    }

    fn publish(
        &mut self,
        msg: &Message<'_>,
        from: SocketAddr,
        out: &mut Vec<u8>,
        sends: &mut Vec<(SocketAddr, std::ops::Range<usize>)>,
    ) {
        self.counter += 1;
        let start = out.len();
        ResponseWriter::new(out, msg, 200, "OK", Some(from), Some("r0"))
            .header_with(HeaderName::SipETag, |b| {
                let _ = write!(b, "e{}", self.counter);
            })
            .header(HeaderName::Expires, "3600")
            .finish();
        sends.push((from, start..out.len()));
        let line = line_of(msg.request_uri().unwrap_or(""));
        let ci: Vec<&str> = msg.header_lines(HeaderName::CallInfo).collect();
        let ci = ci.join(", ");
        self.notify_line(line, &ci, out, sends);
    }

    fn new_sub(
        &mut self,
        msg: &Message<'_>,
        from: SocketAddr,
        to_tag: &str,
        package: &str,
        watcher: bool,
    ) -> usize {
        let contact = msg
            .contacts()
            .ok()
            .and_then(|c| c.first().map(|n| n.uri.to_owned()))
            .unwrap_or_else(|| format!("sip:{from}"));
        let dest = addr_of(&contact).unwrap_or(from);
        let line = line_of(msg.request_uri().unwrap_or("")).to_owned();
        let call_id = msg.header(HeaderName::CallId).unwrap_or("");
        let mut head = Vec::with_capacity(128);
        let _ = write!(
            head,
            "NOTIFY {contact} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bKr",
            self.local
        );
        let mut mid = Vec::with_capacity(256);
        let _ = write!(
            mid,
            "\r\nMax-Forwards: 70\r\nFrom: {};tag={to_tag}\r\nTo: {}\r\nCall-ID: {call_id}\r\nEvent: {package}\r\nContact: <sip:{}>\r\n",
            msg.header(HeaderName::To).unwrap_or(""),
            msg.header(HeaderName::From).unwrap_or(""),
            self.local
        );
        let sub = Sub {
            dest,
            head,
            mid,
            cseq: 0,
            line: line.clone(),
            watcher,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.subs[i] = Some(sub);
                i
            }
            None => {
                self.subs.push(Some(sub));
                self.subs.len() - 1
            }
        };
        self.by_call_id.insert(call_id.to_owned(), idx);
        if watcher {
            self.lines.entry(line).or_default().push(idx);
        }
        idx
    }

    fn drop_sub(&mut self, idx: usize, call_id: &str) {
        let Some(sub) = self.subs[idx].take() else {
            return;
        };
        self.by_call_id.remove(call_id);
        if sub.watcher {
            if let Some(list) = self.lines.get_mut(&sub.line) {
                list.retain(|&i| i != idx);
            }
        }
        self.free.push(idx);
    }

    fn notify(
        &mut self,
        idx: usize,
        state: &str,
        call_info: &str,
        out: &mut Vec<u8>,
        sends: &mut Vec<(SocketAddr, std::ops::Range<usize>)>,
    ) {
        self.counter += 1;
        let Some(sub) = self.subs[idx].as_mut() else {
            return;
        };
        sub.cseq += 1;
        let start = out.len();
        out.extend_from_slice(&sub.head);
        let _ = write!(out, "{}", self.counter);
        out.extend_from_slice(&sub.mid);
        let _ = write!(
            out,
            "CSeq: {} NOTIFY\r\nSubscription-State: {state}\r\nCall-Info: {call_info}\r\nContent-Length: 0\r\n\r\n",
            sub.cseq
        );
        sends.push((sub.dest, start..out.len()));
    }

    fn notify_line(
        &mut self,
        line: &str,
        call_info: &str,
        out: &mut Vec<u8>,
        sends: &mut Vec<(SocketAddr, std::ops::Range<usize>)>,
    ) {
        let Some(list) = self.lines.get(line) else {
            return;
        };
        let list = list.clone();
        for idx in list {
            self.notify(idx, "active", call_info, out, sends);
        }
    }
}

/// The line a Request-URI names: the URI without scheme and parameters.
fn line_of(uri: &str) -> &str {
    let u = uri.strip_prefix("sip:").unwrap_or(uri);
    u.split([';', '?', '>']).next().unwrap_or(u)
}

/// The address of a Contact URI `sip:user@host:port;params`.
fn addr_of(uri: &str) -> Option<SocketAddr> {
    let u = uri.strip_prefix("sip:")?;
    let host = u.rsplit_once('@').map_or(u, |(_, h)| h);
    let host = host.split([';', '?', '>']).next()?;
    host.parse()
        .ok()
        .or_else(|| format!("{host}:5060").parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, call_id: &str, to_tag: &str, extra: &str) -> Vec<u8> {
        format!(
            "{method} sip:line1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK{call_id}{method}\r\n\
             From: <sip:w@127.0.0.1>;tag=f\r\nTo: <sip:line1@127.0.0.1>{to_tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\nContact: <sip:w@127.0.0.1:7000>\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn run(r: &mut Responder, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut sends = Vec::new();
        r.handle(
            bytes,
            "127.0.0.1:7000".parse().unwrap(),
            &mut out,
            &mut sends,
        );
        sends
            .iter()
            .map(|(_, range)| String::from_utf8_lossy(&out[range.clone()]).into_owned())
            .collect()
    }

    #[test]
    fn subscribe_publish_seize_and_unsubscribe() {
        let mut r = Responder::new("127.0.0.1:5060".parse().unwrap());
        let got = run(
            &mut r,
            &req(
                "SUBSCRIBE",
                "w1",
                "",
                "Event: call-info\r\nExpires: 600\r\n",
            ),
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("SIP/2.0 200"), "{}", got[0]);
        assert!(got[0].contains(";tag=r1"), "{}", got[0]);
        assert!(
            got[1].starts_with("NOTIFY sip:w@127.0.0.1:7000 SIP/2.0"),
            "{}",
            got[1]
        );
        // Every NOTIFY it sends parses and is a request.
        for m in &got[1..] {
            let msg = sip::parse(m.as_bytes(), false).unwrap();
            assert!(msg.is_request());
            assert_eq!(msg.header(HeaderName::CallId), Some("w1"));
        }
        let got = run(&mut r, &req("PUBLISH", "p1", "", "Event: call-info\r\nCall-Info: <sip:x>;appearance-index=1;appearance-state=alerting\r\n"));
        assert_eq!(got.len(), 2);
        assert!(got[0].contains("SIP-ETag: e"), "{}", got[0]);
        assert!(got[1].contains("CSeq: 2 NOTIFY"), "{}", got[1]);
        assert!(got[1].contains("appearance-state=alerting"), "{}", got[1]);
        let got = run(
            &mut r,
            &req(
                "SUBSCRIBE",
                "s1",
                "",
                "Event: line-seize\r\nCall-Info: <sip:x>;appearance-index=1\r\n",
            ),
        );
        assert_eq!(got.len(), 3, "200, seizer NOTIFY, watcher NOTIFY");
        let tag = "r3";
        let got = run(
            &mut r,
            &req(
                "SUBSCRIBE",
                "s1",
                &format!(";tag={tag}"),
                "Event: line-seize\r\nExpires: 0\r\nCall-Info: <sip:x>;appearance-index=1\r\n",
            ),
        );
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[1].contains("terminated"));
        let got = run(
            &mut r,
            &req(
                "SUBSCRIBE",
                "w1",
                ";tag=r1",
                "Event: call-info\r\nExpires: 0\r\n",
            ),
        );
        assert_eq!(got.len(), 2);
        assert!(got[1].contains("Subscription-State: terminated"));
        assert_eq!(
            run(
                &mut r,
                &req("SUBSCRIBE", "zz", ";tag=nope", "Event: call-info\r\n")
            )
            .len(),
            1
        );
        assert!(r.lines.get("line1@127.0.0.1").is_none_or(|l| l.is_empty()));
    }

    #[test]
    fn contact_addresses() {
        assert_eq!(
            addr_of("sip:w@127.0.0.1:7000;transport=udp"),
            Some("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(addr_of("sip:[::1]:9"), Some("[::1]:9".parse().unwrap()));
        assert_eq!(
            addr_of("sip:w@127.0.0.1"),
            Some("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(addr_of("tel:123"), None);
        assert_eq!(line_of("sip:line1@h;x=y"), "line1@h");
    }
}
