//! A quick look at a response: only what matching it to a client
//! transaction needs (RFC 3261 §17.1.3: the top Via's `branch`), and its
//! status code.
//!
//! A presence server receives one response per NOTIFY it sends, so a line
//! change with W watchers brings W 200s. Parsing each whole (every header
//! indexed, the top Via validated) cost more than building the NOTIFY it
//! answers. [`peek_response`] reads the status line and the first Via line
//! and nothing else. Whenever the message is anything but the plain shape
//! (folded lines, quoted strings in the Via, no `SIP/2.0` prefix, ...) it
//! returns `None` and the caller parses the message in full: `None` never
//! means "drop it".
//!
//! It is more lenient than [`crate::parse`] about the rest of the message
//! (a bad header further down is not looked at): a response is matched by
//! its Via alone, and nothing else in it is used.

/// What [`peek_response`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead<'a> {
    /// The status code (100 to 699).
    pub status: u16,
    /// The top Via's `branch` parameter.
    pub branch: &'a str,
}

/// The status code and top Via branch of a response in the usual shape, or
/// `None` (then parse it in full).
pub fn peek_response(b: &[u8]) -> Option<ResponseHead<'_>> {
    let rest = b.strip_prefix(b"SIP/2.0 ")?;
    let code = rest.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) || rest.get(3) != Some(&b' ') {
        return None;
    }
    let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&status) {
        return None;
    }
    let mut at = line_end(b, 0)? + 2;
    loop {
        let end = line_end(b, at)?;
        let line = &b[at..end];
        // The empty line ends the headers: no Via.
        let first = *line.first()?;
        if first == b' ' || first == b'\t' {
            return None;
        }
        let colon = memchr::memchr(b':', line)?;
        let name = line[..colon].trim_ascii_end();
        if name.eq_ignore_ascii_case(b"via") || name.eq_ignore_ascii_case(b"v") {
            // The value goes on on the next line: let the parser unfold it.
            if matches!(b.get(end + 2), Some(b' ' | b'\t')) {
                return None;
            }
            let branch = branch_of(&line[colon + 1..])?;
            return Some(ResponseHead { status, branch });
        }
        at = end + 2;
    }
}

/// Where the line starting at `from` ends (the index of its CR); `None` if
/// it does not end in CRLF.
fn line_end(b: &[u8], from: usize) -> Option<usize> {
    let lf = from + memchr::memchr(b'\n', b.get(from..)?)?;
    (lf > from && b[lf - 1] == b'\r').then_some(lf - 1)
}

/// The `branch` of the first element of a Via value.
fn branch_of(value: &[u8]) -> Option<&str> {
    let v = value.trim_ascii();
    let proto = v.get(..8)?;
    if !proto.eq_ignore_ascii_case(b"SIP/2.0/") || memchr::memchr(b'"', v).is_some() {
        return None;
    }
    let first = &v[..memchr::memchr(b',', v).unwrap_or(v.len())];
    let mut params = &first[memchr::memchr(b';', first)? + 1..];
    loop {
        let end = memchr::memchr(b';', params).unwrap_or(params.len());
        let param = &params[..end];
        if let Some(eq) = memchr::memchr(b'=', param) {
            let name = param[..eq].trim_ascii();
            if name.len() == 6 && name.eq_ignore_ascii_case(b"branch") {
                let val = param[eq + 1..].trim_ascii();
                if val.is_empty() || !val.iter().all(|&c| is_token(c)) {
                    return None;
                }
                return std::str::from_utf8(val).ok();
            }
        }
        if end == params.len() {
            return None;
        }
        params = &params[end + 1..];
    }
}

/// RFC 3261 `token` characters.
fn is_token(c: u8) -> bool {
    matches!(c, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the full parser says: status and top Via branch.
    fn full(b: &[u8]) -> Option<(u16, String)> {
        let m = crate::parse(b, false).ok()?;
        let via = m.via().ok()??;
        Some((m.status()?, via.branch?.to_string()))
    }

    fn peek(b: &[u8]) -> Option<(u16, String)> {
        peek_response(b).map(|h| (h.status, h.branch.to_string()))
    }

    const OK: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK.n0t1fy;rport=5060;received=192.0.2.1\r\n\
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsecond\r\n\
        From: <sip:2001@pbx.example.com>;tag=srv\r\n\
        To: <sip:2001@pbx.example.com>;tag=ph\r\n\
        Call-ID: c1@example.com\r\n\
        CSeq: 7 NOTIFY\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn reads_the_top_via_branch_and_status() {
        assert_eq!(peek(OK.as_bytes()), Some((200, "z9hG4bK.n0t1fy".into())));
        assert_eq!(peek(OK.as_bytes()), full(OK.as_bytes()));
    }

    #[test]
    fn usual_variants_agree_with_the_full_parser() {
        let variants = [
            OK.replace("Via:", "v:"),
            OK.replace("Via:", "VIA :"),
            OK.replace(";branch=", " ; BRANCH = "),
            OK.replace("SIP/2.0/UDP 198", "sip/2.0/tcp 198"),
            OK.replace(";rport=5060", ",SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnot"),
            OK.replace("200 OK", "481 Call/Transaction Does Not Exist"),
            OK.replace("200 OK", "180 Ringing"),
            OK.replace("Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK.n0t1fy;rport=5060;received=192.0.2.1\r\n", ""),
        ];
        for v in &variants {
            let p = peek(v.as_bytes());
            assert!(p.is_some(), "usual shape not read: {v}");
            assert_eq!(p, full(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_the_full_parser() {
        let unusual = [
            // folded Via value
            OK.replace(";branch=z9hG4bK.n0t1fy", "\r\n ;branch=z9hG4bK.n0t1fy"),
            // a quoted string among the parameters
            OK.replace(";rport=5060", ";x=\"a;branch=evil\""),
            // not SIP/2.0
            OK.replace("SIP/2.0 200", "SIP/3.0 200"),
            OK.replace("200 OK", "2000 OK"),
            OK.replace("200 OK", "099 Odd"),
            // no branch, or an empty one
            OK.replace(";branch=z9hG4bK.n0t1fy", ""),
            OK.replace("branch=z9hG4bK.n0t1fy", "branch="),
            // bare LF line ends
            OK.replace("\r\n", "\n"),
            // a request
            OK.replace("SIP/2.0 200 OK", "NOTIFY sip:a@b SIP/2.0"),
            // no headers end in sight
            "SIP/2.0 200 OK\r\nCSeq: 1 NOTIFY\r\n".to_string(),
        ];
        for u in &unusual {
            assert_eq!(peek(u.as_bytes()), None, "{u}");
        }
    }

    #[test]
    fn torture_responses_are_read_as_the_parser_reads_them_or_left_to_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
        let mut seen = 0;
        for dir in ["rfc4475", "rfc5118"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("fixtures") {
                let bytes = std::fs::read(entry.expect("entry").path()).expect("readable");
                if let Some(p) = peek(&bytes) {
                    seen += 1;
                    if let Some(f) = full(&bytes) {
                        assert_eq!(p, f);
                    }
                }
            }
        }
        assert!(seen > 0, "no torture response read");
    }

    proptest::proptest! {
        /// Mutations of a plain 200: whatever peek reads, the full parser
        /// reads the same (or rejects the message as a whole).
        #[test]
        fn never_disagrees_with_the_full_parser(
            edits in proptest::collection::vec(
                (0usize..400, proptest::sample::select(b" \t\r\n;,=:\"<>/vVbB0aZ".to_vec()), 0u8..3),
                1..6,
            )
        ) {
            let mut b = OK.as_bytes().to_vec();
            for (at, c, op) in edits {
                let at = at % (b.len() + 1);
                match op {
                    0 if at < b.len() => b[at] = c,
                    1 => b.insert(at, c),
                    _ if at < b.len() => { b.remove(at); }
                    _ => {}
                }
            }
            if let (Some(p), Some(f)) = (peek(&b), full(&b)) {
                proptest::prop_assert_eq!(p, f);
            }
        }
    }
}
