//! Turning bytes into a [`Message`]: [`parse`] for one whole message (a UDP
//! datagram, or a frame cut by [`frame_len`] from a TCP stream).

use crate::message::{Header, HeaderName, Message, Method, StartLine};
use crate::simd::{ascii, find, find2, find_or_space};
use crate::swar::lower_eq;
use crate::text::{all_digits, is_token, parse_u64, run_while, trim_lws, TOKEN};
use memchr::memchr;
use std::fmt;

/// Why bytes are not a SIP message. `Display` is a short reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The start line is malformed (what was wrong).
    StartLine(&'static str),
    /// A header line is malformed (what was wrong).
    HeaderLine(&'static str),
    /// No empty line ends the headers.
    Unterminated,
    /// Content-Length is malformed or repeated with different values.
    ContentLength(&'static str),
    /// The body is shorter than Content-Length says.
    Truncated,
    /// The bytes are not UTF-8 where text is required.
    NotText,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::StartLine(w) => write!(f, "Malformed start line: {w}"),
            ParseError::HeaderLine(w) => write!(f, "Malformed header: {w}"),
            ParseError::Unterminated => f.write_str("Headers not terminated"),
            ParseError::ContentLength(w) => write!(f, "Bad Content-Length: {w}"),
            ParseError::Truncated => f.write_str("Body shorter than Content-Length"),
            ParseError::NotText => f.write_str("Headers are not UTF-8"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Why [`frame_len`] cannot cut a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed.
    Incomplete,
    /// The stream cannot be framed (no or bad Content-Length, or a header
    /// section longer than the limit): the connection must be closed.
    Invalid(&'static str),
}

/// Parse one message. Leading CRLFs are skipped (RFC 3261 §7.5). With
/// `stream` true (TCP) Content-Length is mandatory; with it false (UDP) a
/// missing Content-Length means the body runs to the end of the datagram.
/// Octets after Content-Length bytes of body are ignored.
///
/// Lines may end in CRLF or a bare LF. The header section must be UTF-8; the
/// body may be anything.
pub fn parse(bytes: &[u8], stream: bool) -> Result<Message<'_>, ParseError> {
    let b = bytes;
    let n = b.len();
    // One text check for everything: the ASCII test, and the UTF-8 check
    // only when that fails; with a binary body only the valid prefix is
    // text, and a header reaching past it is refused below.
    let text = match ascii(b) {
        Some(t) => t,
        None => match std::str::from_utf8(b) {
            Ok(t) => t,
            Err(e) => {
                std::str::from_utf8(&b[..e.valid_up_to()]).map_err(|_| ParseError::NotText)?
            }
        },
    };
    let utf8 = |from: usize, to: usize| text.get(from..to).ok_or(ParseError::NotText);
    let mut pos = skip_crlfs(b);

    let lf = find(b, pos, b'\n').ok_or(ParseError::Unterminated)?;
    let line = utf8(pos, strip_cr(b, pos, lf))?;
    let start = start_line(line)?;
    pos = lf + 1;

    let mut headers: Vec<Header<'_>> = Vec::with_capacity(16);
    // Byte range of the last header's value, kept to extend it over folds.
    let (mut vs, mut ve) = (0usize, 0usize);
    let body_start = loop {
        let Some(&c) = b.get(pos) else {
            return Err(ParseError::Unterminated);
        };
        match c {
            b'\n' => break pos + 1,
            b'\r' => match b.get(pos + 1) {
                Some(b'\n') => break pos + 2,
                Some(_) => return Err(ParseError::HeaderLine("stray CR")),
                None => return Err(ParseError::Unterminated),
            },
            b' ' | b'\t' => {
                // A folded continuation of the previous header's value.
                let last = headers
                    .last_mut()
                    .ok_or(ParseError::HeaderLine("continuation line without a header"))?;
                let lf = find(b, pos, b'\n').ok_or(ParseError::Unterminated)?;
                let end = trim_end(b, pos, strip_cr(b, pos, lf));
                if end > pos {
                    if ve == vs {
                        vs = skip_ws(b, pos, end);
                    }
                    ve = end;
                    last.value = utf8(vs, ve)?;
                }
                pos = lf + 1;
            }
            _ => {
                let name_start = pos;
                // A known name is found by its end (the first `:` or byte
                // below 0x21) and a word compare, which also proves it a
                // token; anything else takes the byte-by-byte token rule.
                let stop = find_or_space(b, pos, b':');
                let (name_end, known) = match known_name(&b[name_start..stop]) {
                    Some(h) => (stop, Some(h)),
                    None => (run_while(b, pos, TOKEN), None),
                };
                let mut i = name_end;
                while i < n && (b[i] == b' ' || b[i] == b'\t') {
                    i += 1;
                }
                if name_end == name_start {
                    return Err(ParseError::HeaderLine("bad header name"));
                }
                if i >= n {
                    return Err(ParseError::Unterminated);
                }
                if b[i] != b':' {
                    return Err(ParseError::HeaderLine("missing colon"));
                }
                let lf = find(b, i, b'\n').ok_or(ParseError::Unterminated)?;
                let end = trim_end(b, i + 1, strip_cr(b, i + 1, lf));
                vs = skip_ws(b, i + 1, end);
                ve = end;
                let name = match known {
                    Some(h) => h,
                    None => header_name(utf8(name_start, name_end)?),
                };
                let value = utf8(vs, ve)?;
                headers.push(Header { name, value });
                pos = lf + 1;
            }
        }
    };

    let mut content_length: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        let v = trim_lws(h.value);
        if !all_digits(v) {
            return Err(ParseError::ContentLength("not a number"));
        }
        let len = parse_u64(v)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or(ParseError::ContentLength("too large"))?;
        if content_length.is_some_and(|l| l != len) {
            return Err(ParseError::ContentLength("repeated with different values"));
        }
        content_length = Some(len);
    }
    let body = match content_length {
        Some(len) => {
            let end = body_start.checked_add(len).ok_or(ParseError::Truncated)?;
            b.get(body_start..end).ok_or(ParseError::Truncated)?
        }
        None if stream => return Err(ParseError::ContentLength("missing on a stream")),
        None => &b[body_start.min(n)..],
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

fn skip_crlfs(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() && (b[i] == b'\r' || b[i] == b'\n') {
        i += 1;
    }
    i
}

/// End of a line's content: `lf`, or one less when a CR precedes it.
#[inline]
fn strip_cr(b: &[u8], from: usize, lf: usize) -> usize {
    if lf > from && b[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    }
}

#[inline]
fn trim_end(b: &[u8], from: usize, mut end: usize) -> usize {
    while end > from && (b[end - 1] == b' ' || b[end - 1] == b'\t') {
        end -= 1;
    }
    end
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

fn start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if line.starts_with("SIP/") {
        let sp = line
            .find([' ', '\t'])
            .ok_or(ParseError::StartLine("no status code"))?;
        let version = &line[..sp];
        let rest = line[sp..].trim_start_matches([' ', '\t']);
        let digits = rest.bytes().take_while(|c| c.is_ascii_digit()).count();
        if digits != 3 {
            return Err(ParseError::StartLine("status code is not three digits"));
        }
        let code: u16 = rest[..3]
            .parse()
            .map_err(|_| ParseError::StartLine("bad status code"))?;
        if !(100..=699).contains(&code) {
            return Err(ParseError::StartLine("status code out of range"));
        }
        let after = &rest[3..];
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            return Err(ParseError::StartLine("bad status code"));
        }
        let reason = after.trim_matches([' ', '\t']);
        return Ok(StartLine::Response {
            code,
            reason,
            version,
        });
    }
    // Liberal about runs of white space between the three parts (RFC 4475
    // lwsstart, trws), strict about their number: a Request-URI with a space
    // in it (lwsruri) is refused here.
    let b = line.as_bytes();
    let mut parts = [(0usize, 0usize); 3];
    let mut count = 0;
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        i = find2(b, i, b' ', b'\t');
        if count == 3 {
            return Err(ParseError::StartLine("not three parts"));
        }
        parts[count] = (start, i);
        count += 1;
    }
    if count != 3 {
        return Err(ParseError::StartLine("not three parts"));
    }
    // Each part is cut next to ASCII white space or at the line's ends.
    let part = |k: usize| line.get(parts[k].0..parts[k].1).unwrap_or("");
    let (method, uri, version) = (part(0), part(1), part(2));
    if !is_token(method) {
        return Err(ParseError::StartLine("bad method"));
    }
    if !version
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return Err(ParseError::StartLine("not a SIP version"));
    }
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri,
        version,
    })
}

/// [`HeaderName::from_name`] for a name made of token bytes, dispatching on
/// length and first letter before comparing, since this runs for every
/// header line.
pub(crate) fn header_name(s: &str) -> HeaderName<'_> {
    known_name(s.as_bytes()).unwrap_or(HeaderName::Other(s))
}

/// The known header name `b` spells (case-insensitively, compact forms
/// too), if any. `b` must hold no byte below 0x21 (see [`lower_eq`]); a
/// match is then made of letters and `-` only, so it is a token.
#[inline(always)]
pub(crate) fn known_name(b: &[u8]) -> Option<HeaderName<'static>> {
    use HeaderName as H;
    let &first = b.first()?;
    let f = first | 0x20;
    if b.len() == 1 {
        return Some(match f {
            b'v' => H::Via,
            b'f' => H::From,
            b't' => H::To,
            b'i' => H::CallId,
            b'm' => H::Contact,
            b'o' => H::Event,
            b'u' => H::AllowEvents,
            b'c' => H::ContentType,
            b'l' => H::ContentLength,
            b'e' => H::ContentEncoding,
            b'k' => H::Supported,
            _ => return None,
        });
    }
    // One table probe and one compare, the same code for every name. A
    // match with a compare per name, each inlined with its own constant,
    // took fewer instructions here but ran a different stretch of code
    // for each header line; a fully read request runs more code than the
    // L1 instruction cache holds, and took up to 6% more time with it
    // (BENCHMARKS.md, message layer, round 6).
    let last = b.last().map_or(0, |&l| l | 0x20);
    let &(canon, name) = NAMES.get(usize::from(NAME_SLOT[name_hash(b.len(), f, last)]))?;
    lower_eq(b, canon).then_some(name)
}

/// The known names of two letters or more, lowercase, as [`known_name`]
/// finds them through [`NAME_SLOT`].
pub(crate) const NAMES: [(&[u8], HeaderName<'static>); 30] = {
    use HeaderName as H;
    [
        (b"via", H::Via),
        (b"from", H::From),
        (b"to", H::To),
        (b"call-id", H::CallId),
        (b"contact", H::Contact),
        (b"cseq", H::CSeq),
        (b"max-forwards", H::MaxForwards),
        (b"record-route", H::RecordRoute),
        (b"route", H::Route),
        (b"expires", H::Expires),
        (b"min-expires", H::MinExpires),
        (b"event", H::Event),
        (b"allow-events", H::AllowEvents),
        (b"accept", H::Accept),
        (b"content-type", H::ContentType),
        (b"content-length", H::ContentLength),
        (b"content-encoding", H::ContentEncoding),
        (b"require", H::Require),
        (b"proxy-require", H::ProxyRequire),
        (b"supported", H::Supported),
        (b"unsupported", H::Unsupported),
        (b"call-info", H::CallInfo),
        (b"sip-etag", H::SipETag),
        (b"sip-if-match", H::SipIfMatch),
        (b"subscription-state", H::SubscriptionState),
        (b"allow", H::Allow),
        (b"retry-after", H::RetryAfter),
        (b"user-agent", H::UserAgent),
        (b"server", H::Server),
        (b"date", H::Date),
    ]
};

/// Where a name of `len` bytes, first and last letters `first` and
/// `last` (OR-ed with 0x20), would sit in [`NAME_SLOT`]. The constants
/// were chosen so that the thirty names of [`NAMES`] land in thirty
/// slots (checked when the table is built); any other name that lands on
/// one of them fails the compare.
#[inline(always)]
pub(crate) const fn name_hash(len: usize, first: u8, last: u8) -> usize {
    len.wrapping_add(2 * first as usize + 38 * last as usize) & 127
}

/// For each hash, the index in [`NAMES`] of the name there, or `u8::MAX`.
pub(crate) const NAME_SLOT: [u8; 128] = {
    let mut t = [u8::MAX; 128];
    let mut k = 0;
    while k < NAMES.len() {
        let n = NAMES[k].0;
        let h = name_hash(n.len(), n[0], n[n.len() - 1]);
        assert!(t[h] == u8::MAX, "two known header names share a slot");
        t[h] = k as u8;
        k += 1;
    }
    t
};

/// On a stream: how many bytes at the start of `buf` form the next frame
/// (leading CRLFs included, so the caller drains exactly that many). A buffer
/// holding only CRLFs (RFC 5626 keep-alives) returns `Ok(n)` with n the CRLF
/// bytes, and the caller sees an empty frame. `max` bounds a frame's size.
pub fn frame_len(buf: &[u8], max: usize) -> Result<usize, FrameError> {
    let b = buf;
    let start = skip_crlfs(b);
    if start == b.len() {
        // Only line ends so far. A trailing lone CR may be half of a CRLF.
        let whole = if b.last() == Some(&b'\r') {
            start - 1
        } else {
            start
        };
        return if whole > 0 {
            Ok(whole)
        } else {
            Err(FrameError::Incomplete)
        };
    }
    // The start line first, then header lines one at a time; a line that
    // starts with white space is a fold and cannot hold a Content-Length name.
    let mut pos = match memchr(b'\n', &b[start..]) {
        Some(rel) => start + rel + 1,
        None => return Err(too_long_or_incomplete(b.len(), max)),
    };
    let mut content_length: Option<usize> = None;
    let body_start = loop {
        let Some(rel) = memchr(b'\n', &b[pos..]) else {
            return Err(too_long_or_incomplete(b.len(), max));
        };
        let lf = pos + rel;
        let end = strip_cr(b, pos, lf);
        if end == pos {
            break lf + 1;
        }
        if let Some(len) = content_length_line(&b[pos..end], &b[lf + 1..])? {
            if content_length.is_some_and(|l| l != len) {
                return Err(FrameError::Invalid("Content-Length values differ"));
            }
            content_length = Some(len);
        }
        pos = lf + 1;
        if pos > max {
            return Err(FrameError::Invalid("header section too long"));
        }
    };
    let len = content_length.ok_or(FrameError::Invalid("no Content-Length"))?;
    let total = body_start
        .checked_add(len)
        .filter(|&t| t <= max)
        .ok_or(FrameError::Invalid("frame too large"))?;
    if total > b.len() {
        Err(FrameError::Incomplete)
    } else {
        Ok(total)
    }
}

fn too_long_or_incomplete(len: usize, max: usize) -> FrameError {
    if len > max {
        FrameError::Invalid("header section too long")
    } else {
        FrameError::Incomplete
    }
}

/// If `line` is a Content-Length header, its value. `next` is what follows
/// the line, read only when the value is folded onto it.
fn content_length_line(line: &[u8], next: &[u8]) -> Result<Option<usize>, FrameError> {
    let colon = match memchr(b':', line) {
        Some(c) => c,
        None => return Ok(None),
    };
    let mut name = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = name {
        name = rest;
    }
    if !(name.eq_ignore_ascii_case(b"Content-Length") || name.eq_ignore_ascii_case(b"l")) {
        return Ok(None);
    }
    let mut value = trim_bytes(&line[colon + 1..]);
    if value.is_empty() && matches!(next.first(), Some(b' ' | b'\t')) {
        let end = memchr(b'\n', next).unwrap_or(next.len());
        value = trim_bytes(&next[..end]);
    }
    let bad = FrameError::Invalid("bad Content-Length");
    if value.is_empty() || !value.iter().all(|c| c.is_ascii_digit()) {
        return Err(bad);
    }
    let text = std::str::from_utf8(value).map_err(|_| bad.clone())?;
    parse_u64(text)
        .and_then(|v| usize::try_from(v).ok())
        .map(Some)
        .ok_or(bad)
}

fn trim_bytes(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Contact",
        "Record-Route",
        "Route",
        "Expires",
        "Min-Expires",
        "Event",
        "Allow-Events",
        "Accept",
        "Content-Type",
        "Content-Length",
        "Content-Encoding",
        "Require",
        "Proxy-Require",
        "Supported",
        "Unsupported",
        "Call-Info",
        "SIP-ETag",
        "SIP-If-Match",
        "Subscription-State",
        "Allow",
        "Retry-After",
        "User-Agent",
        "Server",
        "Date",
        "v",
        "f",
        "t",
        "i",
        "m",
        "o",
        "u",
        "c",
        "l",
        "e",
        "k",
        "s",
        "x",
        "X-Foo",
        "Call-IE",
        "CONTACT",
        "via",
        "sip-etag",
        "Reason",
        "Warning",
        "Subject",
        "",
    ];

    #[test]
    fn fast_header_names_agree_with_from_name() {
        for n in NAMES {
            assert_eq!(header_name(n), HeaderName::from_name(n), "{n}");
            let lower = n.to_ascii_lowercase();
            assert_eq!(
                header_name(&lower),
                HeaderName::from_name(&lower),
                "{lower}"
            );
        }
    }

    #[test]
    fn every_known_name_is_in_the_table() {
        // `NAMES` repeats the names of `HeaderName`: one added there and
        // not here would be `Other` to the parser, known to `from_name`.
        for spellings in HeaderName::SPELLINGS {
            for s in *spellings {
                for n in [
                    s.to_string(),
                    s.to_ascii_lowercase(),
                    s.to_ascii_uppercase(),
                ] {
                    let found = header_name(&n);
                    assert_eq!(found, HeaderName::from_name(&n), "{n}");
                    assert!(
                        found.canonical().is_some(),
                        "{n} is not known to the parser"
                    );
                }
            }
        }
    }

    #[test]
    fn table_names_and_their_neighbours_agree_with_from_name() {
        // Every name of the table in three cases, with each byte replaced
        // by every printable byte, cut short and made longer: the table
        // must find exactly the names `from_name` finds.
        let printable: Vec<u8> = (0x21..0x7f).collect();
        for &(canon, _) in super::NAMES.iter() {
            let canon = std::str::from_utf8(canon).unwrap();
            let mut names = vec![
                canon.to_string(),
                canon.to_ascii_uppercase(),
                format!("{canon}x"),
                canon[1..].to_string(),
                canon[..canon.len() - 1].to_string(),
            ];
            for at in 0..canon.len() {
                for &c in &printable {
                    let mut v = canon.as_bytes().to_vec();
                    v[at] = c;
                    names.push(String::from_utf8(v).unwrap());
                }
            }
            for n in &names {
                assert_eq!(header_name(n), HeaderName::from_name(n), "{n}");
            }
        }
    }

    #[test]
    fn folding_keeps_the_text_and_extends_the_value() {
        let m = parse(
            b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\n\tthree\r\nContact:\r\n  <sip:c@d>\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(m.headers[0].value, "one\r\n two\r\n\tthree");
        assert_eq!(m.header(HeaderName::Contact), Some("<sip:c@d>"));
    }

    #[test]
    fn lf_only_line_ends() {
        let m = parse(b"\n\nSIP/2.0 200 OK\nl: 2\nv: SIP/2.0/UDP h\n\nhi", true).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.body, b"hi");
        assert_eq!(m.header(HeaderName::Via), Some("SIP/2.0/UDP h"));
    }

    #[test]
    fn content_length_rules() {
        let msg = |cl: &str| format!("OPTIONS sip:a@b SIP/2.0\r\n{cl}\r\n\r\nabcdef");
        assert_eq!(parse(msg("l: 3").as_bytes(), true).unwrap().body, b"abc");
        assert_eq!(
            parse(msg("X: y").as_bytes(), false).unwrap().body,
            b"abcdef"
        );
        assert!(matches!(
            parse(msg("X: y").as_bytes(), true),
            Err(ParseError::ContentLength(_))
        ));
        assert_eq!(
            parse(msg("l: 9").as_bytes(), false).unwrap_err(),
            ParseError::Truncated
        );
        assert!(matches!(
            parse(msg("l: 1\r\nContent-Length: 2").as_bytes(), false),
            Err(ParseError::ContentLength(_))
        ));
        assert!(matches!(
            parse(msg("l: -1").as_bytes(), false),
            Err(ParseError::ContentLength(_))
        ));
        assert!(matches!(
            parse(msg("l: 99999999999999999999999").as_bytes(), false),
            Err(ParseError::ContentLength(_))
        ));
    }

    #[test]
    fn status_lines() {
        let st = |l: &str| {
            parse(format!("{l}\r\n\r\n").as_bytes(), false).map(|m| format!("{:?}", m.start))
        };
        let noreason = StartLine::Response {
            code: 100,
            reason: "",
            version: "SIP/2.0",
        };
        assert_eq!(st("SIP/2.0 100 "), Ok(format!("{noreason:?}")));
        assert!(st("SIP/2.0 4294967301 big").is_err());
        assert!(st("SIP/2.0 099 low").is_err());
        assert!(st("SIP/2.0 700 high").is_err());
        assert!(st("SIP/2.0 20x OK").is_err());
        assert!(st("INVITE sip:a@b; lr SIP/2.0").is_err());
        assert!(st("INVITE sip:a@b HTTP/1.1").is_err());
        assert!(st("INV(ITE sip:a@b SIP/2.0").is_err());
    }

    #[test]
    fn bad_header_lines() {
        assert!(parse(b"OPTIONS sip:a@b SIP/2.0\r\n folded first\r\n\r\n", false).is_err());
        assert!(parse(b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n", false).is_err());
        assert!(parse(b"OPTIONS sip:a@b SIP/2.0\r\nA: b\r\n", false).is_err());
        assert_eq!(
            parse(b"OPTIONS sip:a@b SIP/2.0\r\nA: \xff\r\n\r\n", false).unwrap_err(),
            ParseError::NotText
        );
        // A non-UTF-8 body is fine.
        assert_eq!(
            parse(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\n\r\n\xff", true)
                .unwrap()
                .body,
            b"\xff"
        );
    }

    #[test]
    fn frames() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcNEXT";
        assert_eq!(frame_len(m, 4096), Ok(m.len() - 4));
        // Keep-alives before a message are part of its frame.
        let mut ka = b"\r\n\r\n".to_vec();
        ka.extend_from_slice(m);
        assert_eq!(frame_len(&ka, 4096), Ok(ka.len() - 4));
        assert_eq!(
            frame_len(b"\r\n\r\nOPTIONS", 4096),
            Err(FrameError::Incomplete)
        );
        assert_eq!(frame_len(b"\r\n\r\n", 4096), Ok(4));
        assert_eq!(frame_len(b"\r\n\r", 4096), Ok(2));
        assert_eq!(frame_len(b"", 4096), Err(FrameError::Incomplete));
        // Partial frames wait for more.
        for cut in 1..m.len() - 4 {
            assert_eq!(
                frame_len(&m[..cut], 4096),
                Err(FrameError::Incomplete),
                "cut {cut}"
            );
        }
        // Oversize: header section or total beyond max.
        assert!(matches!(frame_len(m, 20), Err(FrameError::Invalid(_))));
        assert!(matches!(
            frame_len(&[b'a'; 100], 50),
            Err(FrameError::Invalid(_))
        ));
        let big = b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n";
        assert!(matches!(frame_len(big, 500), Err(FrameError::Invalid(_))));
        // No or bad Content-Length.
        assert!(matches!(
            frame_len(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", 4096),
            Err(FrameError::Invalid(_))
        ));
        assert!(matches!(
            frame_len(b"OPTIONS sip:a@b SIP/2.0\r\nl: x\r\n\r\n", 4096),
            Err(FrameError::Invalid(_))
        ));
        // Folded value, compact name with space before the colon.
        assert_eq!(
            frame_len(b"A B SIP/2.0\r\nL :\r\n 2\r\n\r\nxy", 4096),
            Ok(26)
        );
    }
}
