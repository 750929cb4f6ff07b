//! SIP and SIPS URIs (RFC 3261 §19.1) and hosts, including IPv6 references
//! (RFC 5118). Other schemes are recognised by name only.

use crate::header::{Param, Params};
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
        None => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// Split `host[:port]`, where host may be an `[IPv6]` reference.
pub(crate) fn split_hostport(s: &str) -> Result<(&str, Option<u16>), ()> {
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']').ok_or(())?;
        let (h, rest) = s.split_at(close + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(()),
        }
    } else {
        match s.find(':') {
            Some(c) => (&s[..c], Some(&s[c + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) if crate::text::all_digits(p) => Some(p.parse::<u16>().map_err(|_| ())?),
        Some(_) => return Err(()),
        None => None,
    };
    Ok((host, port))
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Check every byte with `ok`, with `%HH` escapes allowed.
fn chars_ok(s: &str, ok: fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                _ => return false,
            }
        } else if ok(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_header_byte(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'=' | b'&'
        )
}

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
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s
                .parse::<Ipv4Addr>()
                .map(|a| Host::Ip(IpAddr::V4(a)))
                .map_err(|_| ());
        }
        if is_hostname(s) {
            Ok(Host::Name(s))
        } else {
            Err(())
        }
    }
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
        let b = s.as_bytes();
        let colon = memchr::memchr(b':', b).ok_or(())?;
        let scheme = &s[..colon];
        let scheme_ok = b.first().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !scheme_ok || b.iter().any(|&c| c <= b' ' || c == 0x7f) {
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
        let hostpart = match memchr::memchr(b'@', rest.as_bytes()) {
            Some(at) => {
                let userinfo = &rest[..at];
                let (user, password) = match memchr::memchr(b':', userinfo.as_bytes()) {
                    Some(c) => (&userinfo[..c], Some(&userinfo[c + 1..])),
                    None => (userinfo, None),
                };
                if user.is_empty() || !chars_ok(user, is_user_byte) {
                    return Err(());
                }
                if let Some(pw) = password {
                    if !chars_ok(pw, is_password_byte) {
                        return Err(());
                    }
                }
                uri.user = Some(user);
                &rest[at + 1..]
            }
            None => rest,
        };
        let (hostport, after) = match memchr::memchr2(b';', b'?', hostpart.as_bytes()) {
            Some(i) => hostpart.split_at(i),
            None => (hostpart, ""),
        };
        let (host, port) = split_hostport(hostport)?;
        Host::parse(host)?;
        uri.host = host;
        uri.port = port;
        let (params, headers) = match memchr::memchr(b'?', after.as_bytes()) {
            Some(q) => (&after[..q], Some(&after[q + 1..])),
            None => (after, None),
        };
        if let Some(h) = headers {
            if !chars_ok(h, is_header_byte) {
                return Err(());
            }
        }
        uri.headers = headers;
        if !params.is_empty() {
            let mut list = Vec::new();
            // `params` starts with ';', so the first piece is empty.
            for p in params.split(';').skip(1) {
                let (name, value) = match p.find('=') {
                    Some(e) => (&p[..e], Some(&p[e + 1..])),
                    None => (p, None),
                };
                if name.is_empty() || !chars_ok(name, is_param_byte) {
                    return Err(());
                }
                if let Some(v) = value {
                    if v.is_empty() || !chars_ok(v, is_param_byte) {
                        return Err(());
                    }
                }
                list.push(Param { name, value });
            }
            uri.params = Params(list);
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
