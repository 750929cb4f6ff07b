//! Building messages into a `Vec<u8>` without re-parsing them. Header names
//! are written in their canonical form; Content-Length is always written.
//!
//! The writers trust their caller: values are copied as given, so a value
//! holding a bare CR or LF would break the message. Values taken from a
//! parsed request are safe to pass (folds there are CRLF + white space).

use crate::header::{NameAddr, Via};
use crate::message::{HeaderName, Message, Method};
use crate::uri::Host;
use std::net::{IpAddr, SocketAddr};

/// Builds a response to a request, copying Via (all), From, To, Call-ID and
/// CSeq from it byte for byte (RFC 3261 §8.2.6.2).
pub struct ResponseWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> ResponseWriter<'b> {
    /// Start a response to `req`. `received` adds `received=` and fills
    /// `rport` in the top Via as RFC 3261 §18.2.1 and RFC 3581 §4 say (pass
    /// the packet's source address; the writer adds `received` only when it
    /// differs from the sent-by host, and fills `rport` only if the request
    /// carried an empty `rport`). `to_tag` is added to To if it has no tag.
    ///
    /// With an empty `rport` in the request, `received` is always added
    /// (RFC 3581 §4). An IPv6 `received` is written without brackets, as
    /// RFC 3261's `via-received` grammar has it (RFC 5118 §4.5). A top Via
    /// that does not parse is copied unchanged.
    pub fn new(
        buf: &'b mut Vec<u8>,
        req: &Message<'_>,
        code: u16,
        reason: &str,
        received: Option<SocketAddr>,
        to_tag: Option<&str>,
    ) -> ResponseWriter<'b> {
        buf.extend_from_slice(b"SIP/2.0 ");
        push_u64(buf, u64::from(code));
        buf.push(b' ');
        buf.extend_from_slice(reason.as_bytes());
        buf.extend_from_slice(b"\r\n");
        let mut first_via = true;
        for h in &req.headers {
            match h.name {
                HeaderName::Via => {
                    line_start(buf, "Via");
                    match received {
                        Some(src) if first_via => top_via(buf, h.value, src),
                        _ => buf.extend_from_slice(h.value.as_bytes()),
                    }
                    buf.extend_from_slice(b"\r\n");
                    first_via = false;
                }
                HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                    let name = h.name.canonical().unwrap_or_default();
                    line(buf, name, h.value);
                }
                _ => {}
            }
        }
        let mut to_done = false;
        for v in req.header_lines(HeaderName::To) {
            line_start(buf, "To");
            buf.extend_from_slice(v.as_bytes());
            if let (Some(tag), false) = (to_tag, to_done) {
                let has_tag = NameAddr::parse(v).ok().and_then(|a| a.tag()).is_some();
                if !has_tag {
                    buf.extend_from_slice(b";tag=");
                    buf.extend_from_slice(tag.as_bytes());
                }
            }
            buf.extend_from_slice(b"\r\n");
            to_done = true;
        }
        ResponseWriter { buf }
    }

    /// Append a header line.
    #[inline]
    pub fn header(self, name: HeaderName<'_>, value: &str) -> Self {
        line(self.buf, name.as_str(), value);
        self
    }

    /// Append a header line whose value is written by `f` (no temporary String).
    #[inline]
    pub fn header_with(self, name: HeaderName<'_>, f: impl FnOnce(&mut Vec<u8>)) -> Self {
        line_start(self.buf, name.as_str());
        f(self.buf);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Finish with `Content-Length: 0` and no body.
    pub fn finish(self) {
        finish(self.buf, None, b"");
    }

    /// Finish with a body of this content type.
    pub fn finish_with_body(self, content_type: &str, body: &[u8]) {
        finish(self.buf, Some(content_type), body);
    }
}

/// Builds a request line by line.
pub struct RequestWriter<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> RequestWriter<'b> {
    /// Start `METHOD uri SIP/2.0`.
    pub fn new(buf: &'b mut Vec<u8>, method: Method<'_>, uri: &str) -> RequestWriter<'b> {
        buf.extend_from_slice(method.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(uri.as_bytes());
        buf.extend_from_slice(b" SIP/2.0\r\n");
        RequestWriter { buf }
    }

    /// Append a header line.
    #[inline]
    pub fn header(self, name: HeaderName<'_>, value: &str) -> Self {
        line(self.buf, name.as_str(), value);
        self
    }

    /// Append a header line whose value is written by `f`.
    #[inline]
    pub fn header_with(self, name: HeaderName<'_>, f: impl FnOnce(&mut Vec<u8>)) -> Self {
        line_start(self.buf, name.as_str());
        f(self.buf);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Finish with `Content-Length: 0` and no body.
    pub fn finish(self) {
        finish(self.buf, None, b"");
    }

    /// Finish with a body of this content type.
    pub fn finish_with_body(self, content_type: &str, body: &[u8]) {
        finish(self.buf, Some(content_type), body);
    }
}

fn line_start(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b": ");
}

// Always inlined into each writer's `header`, where it is all the work:
// with the crate compiled as one unit LLVM otherwise keeps it a call,
// which costs 7% more instructions per request written (callgrind).
#[inline(always)]
fn line(buf: &mut Vec<u8>, name: &str, value: &str) {
    line_start(buf, name);
    buf.extend_from_slice(value.as_bytes());
    buf.extend_from_slice(b"\r\n");
}

fn finish(buf: &mut Vec<u8>, content_type: Option<&str>, body: &[u8]) {
    if let Some(ct) = content_type {
        line(buf, "Content-Type", ct);
    }
    buf.extend_from_slice(b"Content-Length: ");
    push_u64(buf, body.len() as u64);
    buf.extend_from_slice(b"\r\n\r\n");
    buf.extend_from_slice(body);
}

/// Append a number in decimal without going through `fmt` (for callers
/// that build the rest of a message by hand, too).
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    // Most numbers in a message (ports, CSeqs, expiries, lengths) are short.
    if n < 10 {
        buf.push(b'0' + n as u8);
        return;
    }
    let mut tmp = [0u8; 20];
    let start = digits(&mut tmp, n);
    buf.extend_from_slice(&tmp[start..]);
}

/// Write `n` in decimal at the end of `tmp`; returns where it starts.
fn digits(tmp: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

/// Append an IP address, IPv6 without brackets. IPv4 (nearly every
/// address a response or NOTIFY carries) is written without `fmt`.
pub fn push_ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            // Built on the stack and appended once: one capacity check
            // instead of seven.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            buf.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(buf, "{v6}");
        }
    }
}

/// Append `host:port` as a Via sent-by or URI host part (IPv6 in brackets).
pub fn push_host_port(buf: &mut Vec<u8>, addr: SocketAddr) {
    if addr.is_ipv6() {
        buf.push(b'[');
        push_ip(buf, addr.ip());
        buf.push(b']');
    } else {
        push_ip(buf, addr.ip());
    }
    buf.push(b':');
    push_u64(buf, u64::from(addr.port()));
}

/// Offset of `inner` within `outer`; `inner` must be a subslice of it.
fn offset_in(outer: &str, inner: &str) -> usize {
    (inner.as_ptr() as usize)
        .wrapping_sub(outer.as_ptr() as usize)
        .min(outer.len())
}

/// Write the first Via line's value with `received`/`rport` set on its first
/// element (RFC 3261 §18.2.1, RFC 3581 §4).
fn top_via(buf: &mut Vec<u8>, value: &str, src: SocketAddr) {
    let Some(elem) = crate::text::split_commas(value).next() else {
        buf.extend_from_slice(value.as_bytes());
        return;
    };
    let Ok(via) = Via::parse(elem) else {
        buf.extend_from_slice(value.as_bytes());
        return;
    };
    let ip = src.ip();
    let empty_rport = via.rport == Some(None);
    let differs = !matches!(via.sent_by(), Some(Host::Ip(h)) if h == ip);
    let add_received = empty_rport || differs;
    // Byte positions in `value` where text is inserted or replaced, in order.
    let elem_end = offset_in(value, elem) + elem.len();
    let mut edits: Vec<(usize, usize, Edit)> = Vec::with_capacity(2);
    for p in via.params.iter() {
        let name_end = offset_in(value, p.name) + p.name.len();
        let value_end = p.value.map_or(name_end, |v| offset_in(value, v) + v.len());
        if empty_rport && p.name.eq_ignore_ascii_case("rport") {
            edits.push((name_end, value_end, Edit::Rport));
        } else if add_received && p.name.eq_ignore_ascii_case("received") {
            edits.push((name_end, value_end, Edit::Received));
        }
    }
    if add_received && via.received.is_none() {
        buf.reserve(value.len() + 48);
        edits.push((elem_end, elem_end, Edit::AddReceived));
    }
    edits.sort_by_key(|e| e.0);
    let mut at = 0;
    for (from, to, edit) in edits {
        buf.extend_from_slice(value.as_bytes().get(at..from).unwrap_or_default());
        match edit {
            Edit::Rport => {
                buf.push(b'=');
                push_u64(buf, u64::from(src.port()));
            }
            Edit::Received => {
                buf.push(b'=');
                push_ip(buf, ip);
            }
            Edit::AddReceived => {
                buf.extend_from_slice(b";received=");
                push_ip(buf, ip);
            }
        }
        at = to;
    }
    buf.extend_from_slice(value.as_bytes().get(at..).unwrap_or_default());
}

enum Edit {
    Rport,
    Received,
    AddReceived,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn req(via: &str) -> Vec<u8> {
        format!(
            "SUBSCRIBE sip:a@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2\r\nFrom: \"A, B\" <sip:a@example.com>;tag=f1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1@h\r\nCSeq: 7 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn respond(via: &str, src: &str, tag: Option<&str>) -> String {
        let bytes = req(via);
        let m = parse(&bytes, false).unwrap();
        let mut out = Vec::new();
        ResponseWriter::new(&mut out, &m, 200, "OK", Some(src.parse().unwrap()), tag)
            .header(HeaderName::Expires, "600")
            .finish();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn copies_dialog_headers_and_tags_to() {
        let r = respond(
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            "192.0.2.1:5060",
            Some("xyz"),
        );
        assert_eq!(
            r,
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2\r\nFrom: \"A, B\" <sip:a@example.com>;tag=f1\r\nCall-ID: c1@h\r\nCSeq: 7 SUBSCRIBE\r\nTo: <sip:a@example.com>;tag=xyz\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn received_only_when_source_differs() {
        let r = respond(
            "SIP/2.0/UDP host.example.com;branch=z9hG4bK1",
            "192.0.2.9:5070",
            None,
        );
        assert!(
            r.contains("Via: SIP/2.0/UDP host.example.com;branch=z9hG4bK1;received=192.0.2.9\r\n"),
            "{r}"
        );
    }

    #[test]
    fn empty_rport_is_filled_and_received_always_added() {
        let r = respond(
            "SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK1",
            "192.0.2.1:40000",
            None,
        );
        assert!(
            r.contains(
                "Via: SIP/2.0/UDP 192.0.2.1;rport=40000;branch=z9hG4bK1;received=192.0.2.1\r\n"
            ),
            "{r}"
        );
    }

    #[test]
    fn ipv6_received_without_brackets() {
        let r = respond(
            "SIP/2.0/UDP [2001:db8::1];rport;branch=z9hG4bK1",
            "[2001:db8::2]:5062",
            None,
        );
        assert!(
            r.contains("Via: SIP/2.0/UDP [2001:db8::1];rport=5062;branch=z9hG4bK1;received=2001:db8::2\r\n"),
            "{r}"
        );
        let r = respond(
            "SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK1",
            "[2001:db8::1]:5062",
            None,
        );
        assert!(
            r.contains("Via: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK1\r\n"),
            "{r}"
        );
    }

    #[test]
    fn only_the_first_element_of_a_via_list_changes() {
        let r = respond(
            "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=192.0.2.7, SIP/2.0/TCP b.example.com;branch=z9hG4bK3",
            "192.0.2.8:5060",
            None,
        );
        assert!(
            r.contains("Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=192.0.2.8, SIP/2.0/TCP b.example.com;branch=z9hG4bK3\r\n"),
            "{r}"
        );
    }

    #[test]
    fn request_writer_and_numbers() {
        let mut out = Vec::new();
        RequestWriter::new(&mut out, Method::Notify, "sip:b@example.com")
            .header_with(HeaderName::CSeq, |b| {
                push_u64(b, 4294967295);
                b.extend_from_slice(b" NOTIFY");
            })
            .finish_with_body("application/x", b"body");
        assert_eq!(
            out,
            b"NOTIFY sip:b@example.com SIP/2.0\r\nCSeq: 4294967295 NOTIFY\r\nContent-Type: application/x\r\nContent-Length: 4\r\n\r\nbody"
        );
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for a in [
            "192.0.2.10:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[2001:db8::1]:5060",
            "[::1]:7",
        ] {
            let addr: SocketAddr = a.parse().expect("literal address");
            let mut buf = Vec::new();
            push_host_port(&mut buf, addr);
            assert_eq!(buf, addr.to_string().into_bytes());
            buf.clear();
            push_ip(&mut buf, addr.ip());
            assert_eq!(buf, addr.ip().to_string().into_bytes());
        }
        // Every octet value, in every position.
        for o in 0..=255u8 {
            for ip in [[o, 0, 0, 0], [1, o, 2, 3], [10, 99, o, 100], [9, 9, 9, o]] {
                let ip = std::net::IpAddr::from(ip);
                let mut buf = Vec::new();
                push_ip(&mut buf, ip);
                assert_eq!(buf, ip.to_string().into_bytes());
            }
        }
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut n = 1u64;
        let mut cases = vec![0, 9, 10, 99, 100, u64::MAX, u64::MAX - 1];
        while n < u64::MAX / 3 {
            cases.extend([n - 1, n, n + 1]);
            n *= 3;
        }
        for n in cases {
            let mut buf = b"x".to_vec();
            push_u64(&mut buf, n);
            assert_eq!(buf, format!("x{n}").into_bytes());
        }
    }
}
