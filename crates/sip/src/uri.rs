//! SIP and SIPS URIs (RFC 3261 §19.1) and hosts, including IPv6 references
//! (RFC 5118). Other schemes are recognised by name only.

use crate::header::Params;
use crate::simd::{find, host_bytes};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parse an IPv6 address (no brackets), also taking RFC 3261's three-colon
/// form before an embedded IPv4 address (RFC 5118 §4.10).
pub(crate) fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(a);
    }
    let i = s.find(":::")?;
    let tail = &s[i + 3..];
    if tail.contains(':') || !tail.contains('.') || s.len() > 64 {
        return None;
    }
    // Rebuild with one colon fewer in a stack buffer; it is ASCII because
    // the input reached here through ASCII delimiters only.
    let mut buf = [0u8; 64];
    let head = &s.as_bytes()[..i + 2];
    buf[..head.len()].copy_from_slice(head);
    buf[head.len()..head.len() + tail.len()].copy_from_slice(tail.as_bytes());
    std::str::from_utf8(&buf[..head.len() + tail.len()])
        .ok()?
        .parse()
        .ok()
}

/// Parse an IP address written with or without IPv6 brackets, as found in a
/// Via `received` parameter (RFC 5118 §4.5 asks to accept both).
pub(crate) fn parse_ip_loose(s: &str) -> Option<IpAddr> {
    let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
    match inner {
        Some(v6) => parse_ipv6(v6).map(IpAddr::V6),
        None if s.contains(':') => parse_ipv6(s).map(IpAddr::V6),
        None => parse_ipv4(s.as_bytes()).map(IpAddr::V4),
    }
}

/// Split `host[:port]`, where host may be an `[IPv6]` reference.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), ()> {
    let b = s.as_bytes();
    let cut = if b.first() == Some(&b'[') {
        let close = b.iter().position(|&c| c == b']').ok_or(())? + 1;
        match b.get(close) {
            None => None,
            Some(b':') => Some(close),
            Some(_) => return Err(()),
        }
    } else {
        b.iter().position(|&c| c == b':')
    };
    let Some(cut) = cut else {
        return Ok((s, None));
    };
    // `cut` indexes an ASCII ':' so both halves fall on char boundaries.
    let (host, port) = (s.get(..cut).ok_or(())?, &b[cut + 1..]);
    Ok((host, Some(parse_port(port)?)))
}

/// `host:port` (or `host`, port 5060) whose host is a dotted-quad IPv4,
/// read as a URI's host and port are read; `None` for anything else. For
/// callers that read the same target often and want the usual shape
/// without a whole URI parse.
pub fn ipv4_hostport(s: &str) -> Option<std::net::SocketAddrV4> {
    let (host, port) = split_hostport(s).ok()?;
    let ip = parse_ipv4(host.as_bytes())?;
    Some(std::net::SocketAddrV4::new(ip, port.unwrap_or(5060)))
}

/// A port: one or more digits, at most 65535 (leading zeros allowed).
fn parse_port(p: &[u8]) -> Result<u16, ()> {
    if p.is_empty() {
        return Err(());
    }
    let mut n = 0u32;
    for &d in p {
        if !d.is_ascii_digit() {
            return Err(());
        }
        n = n * 10 + u32::from(d - b'0');
        if n > u32::from(u16::MAX) {
            return Err(());
        }
    }
    Ok(n as u16)
}

/// Dotted-quad IPv4 with the rules of `Ipv4Addr::from_str`: four decimal
/// octets up to 255, no leading zeros. Read octet by octet (at most three
/// digits each, a fourth could only make it too large or zero-led), so the
/// per-byte work is one digit test.
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut oct = [0u8; 4];
    let mut i = 0;
    for (k, o) in oct.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let s = i;
        let mut v = 0u32;
        while i < b.len() && i - s < 3 && b[i].is_ascii_digit() {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == s || v > 255 || (i - s > 1 && b[s] == b'0') {
            return None;
        }
        *o = v as u8;
    }
    (i == b.len()).then_some(Ipv4Addr::from(oct))
}

/// Labels of letters, digits, `-` and `_`, none empty or starting or ending
/// with `-`; one trailing dot allowed. One pass answers both questions
/// `Host::parse` asks: `Some(true)` for text of only digits and dots
/// (whatever its shape), `Some(false)` for a valid name, `None` otherwise.
fn is_hostname(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let mut numeric = true;
    let mut valid = true;
    let body = b.strip_suffix(b".").unwrap_or(b);
    let mut prev = b'.';
    for &c in body {
        match c {
            b'.' => valid &= prev != b'.' && prev != b'-',
            b'0'..=b'9' => {}
            b'-' => {
                numeric = false;
                valid &= prev != b'.';
            }
            b'_' => numeric = false,
            c if c.is_ascii_alphabetic() => numeric = false,
            _ => return None,
        }
        prev = c;
    }
    if numeric && !b.is_empty() {
        return Some(true);
    }
    (valid && !body.is_empty() && prev != b'-' && prev != b'.').then_some(false)
}

const H_DIGIT: u8 = 1;
const H_NAME: u8 = 2;
const H_DASH: u8 = 4;
const H_DOT: u8 = 8;

/// Bytes of a host name or IPv4 address, by kind (0: not part of a host).
const HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_digit() {
            H_DIGIT
        } else if b.is_ascii_alphabetic() || b == b'_' {
            H_NAME
        } else if b == b'-' {
            H_DASH
        } else if b == b'.' {
            H_DOT
        } else {
            0
        };
        c += 1;
    }
    t
};

/// A host name or IPv4 address starting at `i`, running while bytes are
/// letters, digits, `.`, `-` or `_`: the index where it ends, if
/// [`Host::parse`] would accept that text. One pass: runs of letters,
/// digits and `_` are skipped with one table test per byte, and the label
/// rules (and, for a run of digits, the octet rules of a dotted quad) are
/// checked only where a run ends.
#[inline]
pub(crate) fn scan_host(b: &[u8], i: usize) -> Option<usize> {
    dotted_quad(b, i)
        .or_else(|| host_name(b, i))
        .or_else(|| scan_host_general(b, i))
}

/// A host name of at most 15 bytes at `i`, with a letter or `_` in it,
/// checked from byte masks of one 16-byte chunk (`simd::host_bytes`)
/// instead of a walk: where it ends, if it is valid. `None` for anything
/// else (longer, numeric, invalid, or no SIMD), which the general walk
/// decides.
#[inline(always)]
fn host_name(b: &[u8], i: usize) -> Option<usize> {
    let m = host_bytes(b, i)?;
    // The run of host bytes; 16 means it may go on past the chunk.
    let n = (!m.host).trailing_zeros();
    if n == 0 || n >= 16 {
        return None;
    }
    let run = (1u32 << n) - 1;
    if m.alpha & run == 0 {
        return None;
    }
    // The label rules of the walk: no dot at the start, after a dot or
    // after a dash; no dash at the start or after a dot; no dash last.
    let (dots, dashes) = (m.dot & run, m.dash & run);
    let starts = ((dots << 1) | 1) & run;
    if dots & (starts | dashes << 1) != 0 || dashes & (starts | 1 << (n - 1)) != 0 {
        return None;
    }
    Some(i + n as usize)
}

/// A dotted-quad IPv4 address at `i` that no host byte follows (so it is
/// the whole host): where it ends. An address is the most common host of
/// a Via or Contact, and reading it octet by octet costs a third of the
/// general walk. `None` for anything else, which the general walk decides.
#[inline(always)]
fn dotted_quad(b: &[u8], mut i: usize) -> Option<usize> {
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d < 10);
    for k in 0..4 {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let first = digit(i)?;
        let mut v = u32::from(first);
        i += 1;
        // Up to two more digits, after a first one that is not 0.
        for _ in 0..2 {
            match digit(i) {
                Some(_) if first == 0 => return None,
                Some(d) => {
                    v = v * 10 + u32::from(d);
                    i += 1;
                }
                None => break,
            }
        }
        if v > 255 {
            return None;
        }
    }
    match b.get(i) {
        Some(&c) if HOST_CLASS[c as usize] != 0 => None,
        _ => Some(i),
    }
}

/// [`scan_host`] for every host shape.
#[inline]
fn scan_host_general(b: &[u8], i: usize) -> Option<usize> {
    let mut seen = 0u8;
    let mut valid = true;
    let mut prev = H_DOT;
    // Labels read so far, and whether each was an octet (1 to 3 digits,
    // no leading zero, at most 255): what `parse_ipv4` asks of a text of
    // digits and dots.
    let mut labels = 0u32;
    let mut octets = true;
    let mut j = i;
    loop {
        let run = j;
        let mut kinds = 0u8;
        while j < b.len() {
            let k = HOST_CLASS[b[j] as usize];
            if k & (H_DIGIT | H_NAME) == 0 {
                break;
            }
            kinds |= k;
            j += 1;
        }
        seen |= kinds;
        labels += 1;
        if j > run {
            prev = H_DIGIT;
            if kinds == H_DIGIT && octets {
                octets = octet(&b[run..j]);
            }
        } else {
            octets = false;
        }
        let k = match b.get(j) {
            Some(&c) => HOST_CLASS[c as usize],
            None => 0,
        };
        if k == H_DOT {
            valid &= prev & (H_DOT | H_DASH) == 0;
        } else if k == H_DASH {
            valid &= prev != H_DOT;
        } else {
            break;
        }
        seen |= k;
        prev = k;
        j += 1;
    }
    if j == i {
        return None;
    }
    if seen & (H_NAME | H_DASH) == 0 {
        // Digits and dots only: a dotted quad or nothing.
        return (octets && labels == 4).then_some(j);
    }
    // A trailing dot is allowed once: `valid` already refused one after a
    // dot or a dash.
    (valid && prev != H_DASH).then_some(j)
}

/// One to three digits, no leading zero, at most 255.
#[inline]
fn octet(d: &[u8]) -> bool {
    match *d {
        [a] => a.is_ascii_digit(),
        [a, _] => a != b'0',
        [a, b, c] => a != b'0' && (a, b, c) <= (b'2', b'5', b'5'),
        _ => false,
    }
}

/// Check every byte against a class table, with `%HH` escapes allowed.
fn chars_ok(s: &str, class: u8) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if URI_CLASS[b[i] as usize] & class != 0 {
            i += 1;
        } else if b[i] == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else {
            return false;
        }
    }
    true
}

/// One byte of class `class` at `i`, or a `%HH` escape: the index after it.
#[inline]
fn class_step(b: &[u8], i: usize, class: u8) -> Option<usize> {
    let c = *b.get(i)?;
    if URI_CLASS[c as usize] & class != 0 {
        Some(i + 1)
    } else if c == b'%' && b.get(i + 1)?.is_ascii_hexdigit() && b.get(i + 2)?.is_ascii_hexdigit() {
        Some(i + 3)
    } else {
        None
    }
}

/// A run of PARAM bytes and `%HH` escapes from `i`: where it stops (at a
/// byte outside the class), or `None` on a bad escape.
#[inline]
fn param_run(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while i < b.len() && URI_CLASS[b[i] as usize] & PARAM != 0 {
            i += 1;
        }
        if b.get(i) != Some(&b'%') {
            return Some(i);
        }
        i = class_step(b, i, PARAM)?;
    }
}

pub(crate) const USER: u8 = 1;
pub(crate) const PASSWORD: u8 = 2;
pub(crate) const PARAM: u8 = 4;
pub(crate) const HEADER: u8 = 8;

/// Which parts of a SIP URI (RFC 3261 §25.1) may hold each byte unescaped.
pub(crate) const URI_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let unreserved = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        let mut k = 0;
        if unreserved || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            k |= USER;
        }
        if unreserved || matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            k |= PASSWORD;
        }
        if unreserved || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            k |= PARAM;
        }
        if unreserved
            || matches!(
                b,
                b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
            )
        {
            k |= HEADER;
        }
        t[c] = k;
        c += 1;
    }
    t
};

/// A host as written in a URI or a Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name.
    Name(&'a str),
    /// An IPv4 address, or an IPv6 reference (brackets removed).
    Ip(IpAddr),
}

impl<'a> Host<'a> {
    /// Parse a host: a hostname, an IPv4 address, or `[IPv6]`.
    ///
    /// The three-colon form `[2001:db8:::192.0.2.1]` that RFC 3261's ABNF
    /// allowed is read as the two-colon address, as RFC 5118 §4.10 asks.
    // The `()` error is part of the published signature; callers only need
    // to know the host is unusable.
    #[allow(clippy::result_unit_err)]
    pub fn parse(s: &'a str) -> Result<Host<'a>, ()> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(())?;
            return parse_ipv6(inner).map(|a| Host::Ip(IpAddr::V6(a))).ok_or(());
        }
        if s.is_empty() {
            return Err(());
        }
        match is_hostname(s) {
            // Digits and dots only: an IPv4 address or nothing.
            Some(true) => parse_ipv4(s.as_bytes())
                .map(|a| Host::Ip(IpAddr::V4(a)))
                .ok_or(()),
            Some(false) => Ok(Host::Name(s)),
            None => Err(()),
        }
    }
}

/// Where [`Uri::walk`] found the parts of a URI: byte ranges and starts
/// in its text.
struct Walk {
    scheme_end: usize,
    user: Option<(usize, usize)>,
    host: (usize, usize),
    port: Option<u16>,
    /// Empty when there are none.
    params: (usize, usize),
    /// Where the headers after `?` start.
    headers: Option<usize>,
}

/// A parsed URI. For `sip:`/`sips:` every field is filled; for other schemes
/// only `scheme` is meaningful.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri<'a> {
    /// Scheme as written (`sip`, `sips`, `tel`, ...).
    pub scheme: &'a str,
    /// The user part (still escaped), if any.
    pub user: Option<&'a str>,
    /// The host text as written (IPv6 with brackets).
    pub host: &'a str,
    /// The port, if written.
    pub port: Option<u16>,
    /// The URI parameters (`;transport=tcp;lr`), raw.
    pub params: crate::header::Params<'a>,
    /// The headers part after `?`, raw.
    pub headers: Option<&'a str>,
    /// The whole URI.
    pub raw: &'a str,
}

impl<'a> Uri<'a> {
    /// Parse a URI. A `sip:`/`sips:` URI must have a valid host and port;
    /// another scheme needs only a valid scheme token followed by `:`.
    ///
    /// No URI may hold white space or control characters.
    // The `()` error is part of the published signature.
    #[allow(clippy::result_unit_err)]
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ()> {
        match Uri::scan(s) {
            Some(u) => Ok(u),
            None => Uri::parse_general(s),
        }
    }

    /// Whether [`Uri::parse`] accepts `s`, without building the [`Uri`]:
    /// `Some((is_sip, has_headers))` if it does. The checks of a request
    /// ask only this, for up to half a dozen URIs per message. One copy
    /// out of line: a call costs a few instructions, a second inlined
    /// copy of the walk some 2.5 KB more code for each request to run.
    #[inline(never)]
    pub(crate) fn verdict(s: &str) -> Option<(bool, bool)> {
        match Uri::walk(s.as_bytes()) {
            // The walk takes only `sip:` and `sips:` URIs.
            Some(w) => Some((true, w.headers.is_some())),
            None => Uri::parse_general(s)
                .ok()
                .map(|u| (u.is_sip(), u.headers.is_some())),
        }
    }

    /// Whether [`Uri::parse`] accepts `s`.
    #[inline]
    pub(crate) fn is_valid(s: &str) -> bool {
        Uri::verdict(s).is_some()
    }

    /// One forward pass over a `sip:`/`sips:` URI with a name or IPv4 host
    /// ([`Uri::walk`]), with the parts cut out where it found them. `None`
    /// when the URI is anything else or is not valid;
    /// [`Uri::parse_general`] then decides.
    #[inline(always)]
    pub(crate) fn scan(s: &'a str) -> Option<Uri<'a>> {
        let w = Uri::walk(s.as_bytes())?;
        let part = |(from, to): (usize, usize)| s.get(from..to);
        Some(Uri {
            scheme: s.get(..w.scheme_end)?,
            user: match w.user {
                Some(u) => Some(part(u)?),
                None => None,
            },
            host: part(w.host)?,
            port: w.port,
            params: if w.params.1 > w.params.0 {
                Params::from_checked(part(w.params)?)
            } else {
                Params::default()
            },
            headers: match w.headers {
                Some(h) => Some(s.get(h..)?),
                None => None,
            },
            raw: s,
        })
    }

    /// The walk of [`Uri::scan`]: scheme, userinfo, host, port, parameters
    /// and headers are each checked as it reaches them, and only where
    /// they lie is kept. Every byte it accepts is ASCII, so each of those
    /// places is a character boundary and cutting there cannot fail: a
    /// verdict needs the walk alone.
    #[inline(always)]
    fn walk(b: &[u8]) -> Option<Walk> {
        let sip = match b.get(..4)? {
            [s0, i0, p0, b':'] if [*s0 | 0x20, *i0 | 0x20, *p0 | 0x20] == *b"sip" => 4,
            [s0, i0, p0, s1] if [*s0 | 0x20, *i0 | 0x20, *p0 | 0x20, *s1 | 0x20] == *b"sips" => {
                if b.get(4) != Some(&b':') {
                    return None;
                }
                5
            }
            _ => return None,
        };
        let mut user = None;
        // Walk what may be userinfo (user, then password after the first
        // ':'); an '@' ends it. Stopping anywhere else means there is none
        // (a later '@' would make the rest of the scan fail, since no part
        // after the host may hold one).
        let mut i = sip;
        let mut class = USER;
        let mut user_end = 0;
        // Without an `@` the walk below can only end in "no userinfo", so
        // it is skipped (a 16-byte search costs less than walking the
        // whole URI twice, here and again as host and parameters).
        if find(b, sip, b'@').is_some() {
            loop {
                while i < b.len() && URI_CLASS[b[i] as usize] & class != 0 {
                    i += 1;
                }
                match b.get(i) {
                    Some(b'@') => {
                        if class == USER {
                            user_end = i;
                        }
                        if user_end == sip {
                            return None;
                        }
                        user = Some((sip, user_end));
                        break;
                    }
                    Some(b':') if class == USER => {
                        user_end = i;
                        class = PASSWORD;
                        i += 1;
                    }
                    Some(b'%') => match class_step(b, i, class) {
                        Some(n) => i = n,
                        None => break,
                    },
                    _ => break,
                }
            }
        }
        i = if user.is_some() { i + 1 } else { sip };
        let h = i;
        i = scan_host(b, h)?;
        let host = (h, i);
        let mut port = None;
        if b.get(i) == Some(&b':') {
            let ps = i + 1;
            let mut n = 0u32;
            i = ps;
            while i < b.len() && b[i].is_ascii_digit() {
                n = n * 10 + u32::from(b[i] - b'0');
                if n > u32::from(u16::MAX) {
                    return None;
                }
                i += 1;
            }
            if i == ps {
                return None;
            }
            port = Some(n as u16);
        }
        let ps = i;
        while b.get(i) == Some(&b';') {
            i += 1;
            let ns = i;
            // `=`, `;` and `?` are outside the PARAM class, so the run
            // stops at them (or at a `%` escape, or at a byte no part of
            // a parameter may hold).
            i = param_run(b, i)?;
            if i == ns {
                return None;
            }
            if b.get(i) == Some(&b'=') {
                i += 1;
                let vs = i;
                i = param_run(b, i)?;
                if i == vs || b.get(i) == Some(&b'=') {
                    return None;
                }
            }
        }
        let params = (ps, i);
        let headers = match b.get(i) {
            None => None,
            Some(b'?') => {
                let hs = i + 1;
                let mut j = hs;
                while j < b.len() {
                    j = class_step(b, j, HEADER)?;
                }
                Some(hs)
            }
            Some(_) => return None,
        };
        Some(Walk {
            scheme_end: sip - 1,
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// The general parser: every scheme, IPv6 references, and the exact
    /// verdict on malformed text.
    pub(crate) fn parse_general(s: &'a str) -> Result<Uri<'a>, ()> {
        let b = s.as_bytes();
        if b.iter().any(|&c| c <= b' ' || c == 0x7f) {
            return Err(());
        }
        let colon = b.iter().position(|&c| c == b':').ok_or(())?;
        let scheme = &s[..colon];
        let scheme_ok = b.first().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(());
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(());
        }
        let mut uri = Uri {
            scheme,
            user: None,
            host: "",
            port: None,
            params: Params::default(),
            headers: None,
            raw: s,
        };
        if !uri.is_sip() {
            return Ok(uri);
        }
        // '@' may not appear unescaped anywhere else in a SIP URI, so the
        // first one ends the userinfo (whose user part may hold ';' and '?').
        let hostpart = match rest.bytes().position(|c| c == b'@') {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match userinfo.bytes().position(|c| c == b':') {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() || !chars_ok(user, USER) {
                    return Err(());
                }
                if let Some(pw) = password {
                    if !chars_ok(pw, PASSWORD) {
                        return Err(());
                    }
                }
                uri.user = Some(user);
                &rest[at + 1..]
            }
            None => rest,
        };
        let (hostport, after) = match hostpart.bytes().position(|c| c == b';' || c == b'?') {
            Some(i) => hostpart.split_at(i),
            None => (hostpart, ""),
        };
        let (host, port) = split_hostport(hostport)?;
        Host::parse(host)?;
        uri.host = host;
        uri.port = port;
        let (params, headers) = match after.bytes().position(|c| c == b'?') {
            Some(q) => (&after[..q], Some(&after[q + 1..])),
            None => (after, None),
        };
        if let Some(h) = headers {
            if !chars_ok(h, HEADER) {
                return Err(());
            }
        }
        uri.headers = headers;
        if !params.is_empty() {
            // `params` starts with ';', so the first piece is empty.
            for p in params.split(';').skip(1) {
                let (name, value) = match p.find('=') {
                    Some(e) => (&p[..e], Some(&p[e + 1..])),
                    None => (p, None),
                };
                if name.is_empty() || !chars_ok(name, PARAM) {
                    return Err(());
                }
                if let Some(v) = value {
                    if v.is_empty() || !chars_ok(v, PARAM) {
                        return Err(());
                    }
                }
            }
            uri.params = Params::from_checked(params);
        }
        Ok(uri)
    }

    /// Whether the scheme is `sip` or `sips` (case-insensitive).
    pub fn is_sip(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("sip") || self.scheme.eq_ignore_ascii_case("sips")
    }

    /// The host, parsed.
    // The `()` error is part of the published signature.
    #[allow(clippy::result_unit_err)]
    pub fn host(&self) -> Result<Host<'a>, ()> {
        Host::parse(self.host)
    }

    /// The `transport` URI parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.get("transport").flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn host_names_are_read_as_the_general_walk_reads_them(
            s in "[a-zA-Z0-9._-]{0,18}[:;>@ ]?[a-z0-9.]{0,14}",
            at in 0usize..3,
        ) {
            let b = s.as_bytes();
            prop_assert_eq!(scan_host(b, at), scan_host_general(b, at), "{}", s);
        }

        #[test]
        fn verdicts_are_those_of_the_general_parser(
            s in "(sip|SIPS|tel|sipx)?:?([a-z0-9%;:._-]{0,8}@)?[a-z0-9.\\[\\]:_-]{0,20}(:[0-9]{0,6})?(;[a-z=0-9%]{0,6}){0,3}(\\?[a-z=&0-9]{0,6})?",
        ) {
            let general = Uri::parse_general(&s).ok();
            prop_assert_eq!(
                Uri::verdict(&s),
                general.as_ref().map(|u| (u.is_sip(), u.headers.is_some())),
                "{}", s
            );
            // The walk takes exactly what the scan cuts into parts.
            prop_assert_eq!(Uri::walk(s.as_bytes()).is_some(), Uri::scan(&s).is_some());
            if let Some(u) = Uri::scan(&s) {
                prop_assert_eq!(Some(u), general, "{}", s);
            }
        }

        #[test]
        fn dotted_quads_are_read_as_the_general_walk_reads_them(
            s in "[0-9.]{0,18}[0-9a-z.:;>_-]{0,3}",
            at in 0usize..3,
        ) {
            let b = s.as_bytes();
            prop_assert_eq!(scan_host(b, at), scan_host_general(b, at), "{}", s);
        }
    }

    #[test]
    fn dotted_quads() {
        for (text, want) in [
            ("192.0.2.10", Some(10)),
            ("198.51.100.5:5060", Some(12)),
            ("0.0.0.0;lr", Some(7)),
            ("255.255.255.255>", Some(15)),
            ("256.1.1.1", None),
            ("01.1.1.1", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("1.2.3.4a", None),
            ("1.2.3.4-x", None),
        ] {
            assert_eq!(dotted_quad(text.as_bytes(), 0), want, "{text}");
        }
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(
            Host::parse("[2001:db8::10]"),
            Ok(Host::Ip("2001:db8::10".parse().unwrap()))
        );
        assert_eq!(
            Host::parse("[2001:db8:::192.0.2.1]"),
            Ok(Host::Ip("2001:db8::192.0.2.1".parse().unwrap()))
        );
        assert!(Host::parse("[2001:db8::10").is_err());
        assert!(Host::parse("[zz::1]").is_err());
        assert!(Host::parse("2001:db8::10").is_err());
        assert!(Host::parse("300.1.1.1").is_err());
        assert_eq!(Host::parse("example.com."), Ok(Host::Name("example.com.")));
        assert!(Host::parse("a..b").is_err());
    }

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sips:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=hi").unwrap();
        assert_eq!(u.scheme, "sips");
        assert_eq!(u.user, Some("alice"));
        assert_eq!(u.host, "[2001:db8::1]");
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.params.has("lr"));
        assert_eq!(u.headers, Some("subject=hi"));
        assert!(u.is_sip());
    }

    #[test]
    fn ambiguous_port_belongs_to_the_address() {
        let u = Uri::parse("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port, None);
        let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.port, Some(5070));
    }

    #[test]
    fn bad_uris() {
        assert!(Uri::parse("<sip:a@b>").is_err());
        assert!(Uri::parse("sip:a@b; lr").is_err());
        assert!(Uri::parse("sip:2001:db8::10").is_err());
        assert!(Uri::parse("sip:a@b:99999").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:a%zz@b").is_err());
        assert!(Uri::parse("sip:a@b;=x").is_err());
        let t = Uri::parse("tel:+1-555").unwrap();
        assert!(!t.is_sip());
    }

    #[test]
    fn ipv4_and_ports_agree_with_std() {
        for s in [
            "0.0.0.0",
            "192.0.2.1",
            "255.255.255.255",
            "01.2.3.4",
            "1.2.3.256",
            "1.2.3",
            "1.2.3.4.",
            "1..2.3",
            "1.2.3.4.5",
            "1234.1.1.1",
            "",
        ] {
            assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for p in [
            "0",
            "5060",
            "65535",
            "65536",
            "0005060",
            "",
            "12a",
            "99999999999",
        ] {
            assert_eq!(
                parse_port(p.as_bytes()).ok(),
                p.parse::<u16>().ok().filter(|_| !p.is_empty()),
                "{p}"
            );
        }
        // Every string of up to five bytes from a small alphabet gets the
        // same answer as the plain rule (std's IPv4 parser, labels split at
        // dots).
        fn reference(s: &str) -> Result<Host<'_>, ()> {
            if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return s.parse().map(|a| Host::Ip(IpAddr::V4(a))).map_err(|_| ());
            }
            let t = s.strip_suffix('.').unwrap_or(s);
            let ok = !t.is_empty()
                && t.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if ok {
                Ok(Host::Name(s))
            } else {
                Err(())
            }
        }
        let alphabet = ["a", "1", "0", ".", "-", "_", "%"];
        let mut words = vec![String::new()];
        for _ in 0..5 {
            let longer: Vec<String> = words
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            for w in longer.iter().filter(|w| !w.is_empty()) {
                assert_eq!(Host::parse(w), reference(w), "{w}");
            }
            words = longer;
        }
        assert!(Host::parse("a-.b").is_err());
        assert!(Host::parse("-a.b").is_err());
        assert!(Host::parse(".").is_err());
        assert_eq!(Host::parse("a_b.c-d."), Ok(Host::Name("a_b.c-d.")));
    }

    #[test]
    fn received_with_or_without_brackets() {
        let a: IpAddr = "2001:db8::9:255".parse().unwrap();
        assert_eq!(parse_ip_loose("[2001:db8::9:255]"), Some(a));
        assert_eq!(parse_ip_loose("2001:db8::9:255"), Some(a));
        assert_eq!(
            parse_ip_loose("192.0.2.1"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_ip_loose("host"), None);
    }
}
