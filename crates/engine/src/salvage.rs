//! Answering what the parser refuses. A request so broken that
//! [`sip::parse`] rejects it (a Content-Length the datagram cannot hold, a
//! negative or doubled one, white space inside the Request-URI) still
//! deserves a 400 when it names where to send one: RFC 4475 expects it for
//! its clerr, ncl, lwsruri and mcl01 messages. This module picks the start
//! line and the headers a response copies out of such bytes, without
//! trusting the rest.

use sip::HeaderName;

/// A minimal, well-formed rewrite of an unparsable request: its method, a
/// placeholder Request-URI, and only its Via, From, To, Call-ID and CSeq
/// lines. `None` unless the bytes look like a request and carry all five.
/// The caller parses the result and answers it as it would the original
/// (a response copies exactly those headers).
pub(crate) fn request_head(bytes: &[u8]) -> Option<Vec<u8>> {
    let end = find(bytes, b"\r\n\r\n")
        .or_else(|| find(bytes, b"\n\n"))
        .unwrap_or(bytes.len());
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let head = head.trim_start_matches(['\r', '\n']);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next()?;
    let (method, rest) = first.split_once(' ')?;
    let (_, version) = rest.trim().rsplit_once(' ')?;
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return None;
    }
    if !version.starts_with("SIP/") {
        return None;
    }
    let mut out = Vec::with_capacity(end + 64);
    out.extend_from_slice(method.as_bytes());
    // The response never repeats the Request-URI, which may be what broke.
    out.extend_from_slice(b" sip:invalid SIP/2.0\r\n");
    let mut seen = [false; 5];
    for line in lines {
        // Folded continuation lines belong to the previous header; the
        // answer needs none of them.
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match HeaderName::from_name(name.trim()) {
            HeaderName::Via => 0,
            HeaderName::From => 1,
            HeaderName::To => 2,
            HeaderName::CallId => 3,
            HeaderName::CSeq => 4,
            _ => continue,
        };
        seen[slot] = true;
        out.extend_from_slice(name.trim().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    seen.iter().all(|s| *s).then_some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
