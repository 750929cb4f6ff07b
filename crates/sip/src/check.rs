//! The checks a UAS makes on a request before acting on it (RFC 3261 §8.2),
//! each failure mapped to the status code and reason phrase to answer with.

use crate::header::{lists, HeaderError, NameAddr};
use crate::known::{First, Index, Known, K};
use crate::message::{Header, Message, Method, StartLine};
use crate::scan::{Elements, Kind};
use crate::uri::Uri;
use std::borrow::Cow;

/// A request that must be refused, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// 400, 416, 505 ...
    pub status: u16,
    /// Reason phrase naming the fault.
    pub reason: Cow<'static, str>,
}

/// Check a parsed request: version `SIP/2.0` (505), Request-URI well formed
/// (400) with a scheme we serve, sip or sips (416), the mandatory headers
/// (Via, From, To, Call-ID, CSeq; Max-Forwards if present) present once and
/// well formed (400), CSeq method equal to the request method (400),
/// Content-Length not repeated with different values (400). It does not
/// judge Require, Accept, Content-Type or methods: those are server policy.
///
/// Also refused with 400: a Request-URI carrying `?headers` (RFC 3261
/// §19.1.1), a repeated Content-Length, Content-Type, Expires or Event, and a
/// malformed Contact, Route, Record-Route, Expires, Event or Content-Type.
///
/// A method we do not know (`Method::Other`) skips the CSeq method
/// comparison: the server answers it 501 whatever its CSeq says (RFC 4475
/// message mismatch02 asks for 501, not 400).
///
/// This reads the headers it checks and then drops what it read; a server
/// that goes on to read them should use [`crate::Parsed::check`], which
/// gives the same answer from values kept for the accessors.
pub fn check_request(msg: &Message<'_>) -> Result<(), Invalid> {
    let index = Index::build(&msg.headers);
    let known = Known::build(&msg.headers, &index);
    check_known(msg, &index, &known)
}

/// [`check_request`] from headers already read into `known` (the
/// request line is read here).
pub(crate) fn check_known(
    msg: &Message<'_>,
    index: &Index,
    known: &Known<'_>,
) -> Result<(), Invalid> {
    let method = request_line(msg, known)?;
    check_headers(method, index, known, &msg.headers)
}

/// Version, Request-URI and scheme; the method. A Request-URI that is
/// the text of From's or To's URI takes the verdict they got.
fn request_line<'a>(msg: &Message<'a>, known: &Known<'_>) -> Result<Method<'a>, Invalid> {
    let StartLine::Request {
        method,
        uri,
        version,
    } = msg.start
    else {
        return Err(bad("Not a request"));
    };
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Invalid {
            status: 505,
            reason: Cow::Borrowed("Version Not Supported"),
        });
    }
    let verdict = known
        .request_uri
        .or_else(|| known.known_verdict(uri))
        .unwrap_or_else(|| Uri::verdict(uri));
    let (sip, headers) = verdict.ok_or_else(|| bad("Malformed Request-URI"))?;
    if !sip {
        return Err(Invalid {
            status: 416,
            reason: Cow::Borrowed("Unsupported URI Scheme"),
        });
    }
    if headers {
        return Err(bad("Request-URI must not carry headers"));
    }
    Ok(method)
}

/// The header checks, in the order that decides which fault is reported
/// when there are several.
fn check_headers(
    method: Method<'_>,
    index: &Index,
    known: &Known<'_>,
    headers: &[Header<'_>],
) -> Result<(), Invalid> {
    for (here, missing) in [
        (!matches!(known.call_id, Ok(None)), "Missing Call-ID header"),
        (!matches!(known.from, Ok(None)), "Missing From header"),
        (!matches!(known.to, Ok(None)), "Missing To header"),
        (!matches!(known.cseq, Ok(None)), "Missing CSeq header"),
        (index.has(K::Via), "Missing Via header"),
    ] {
        if !here {
            return Err(bad(missing));
        }
    }
    known.call_id.as_ref().map_err(header_ref)?;
    let cseq = known.cseq.as_ref().map_err(header_ref)?;
    for (addr, uri_ok, which) in [
        (&known.from, Known::uri_ok(known.from_uri), "From"),
        (&known.to, Known::uri_ok(known.to_uri), "To"),
    ] {
        addr.as_ref().map_err(header_ref)?;
        if !uri_ok {
            return Err(Invalid {
                status: 400,
                reason: Cow::Owned(format!("Bad {which}: malformed URI")),
            });
        }
    }
    if let Some(c) = cseq {
        if !matches!(method, Method::Other(_)) && c.method != method.as_str() {
            return Err(bad("Bad CSeq: method does not match"));
        }
    }
    match &known.vias {
        Err(e) => return Err(header_ref(e)),
        Ok(0) => return Err(bad("Missing Via header")),
        Ok(_) => {}
    }
    known.max_forwards.as_ref().map_err(header_ref)?;
    known.content_length.as_ref().map_err(header_ref)?;
    known.content_type.as_ref().map_err(header_ref)?;
    known.expires.as_ref().map_err(header_ref)?;
    known.event.as_ref().map_err(header_ref)?;
    addresses(
        &known.contact,
        lists::contacts(index.lines(headers, K::Contact)),
    )?;
    addresses(&known.route, lists::routes(index.lines(headers, K::Route)))?;
    addresses(
        &known.record_route,
        lists::record_routes(index.lines(headers, K::RecordRoute)),
    )
}

/// Contact, Route or Record-Route: its first element as read, then the
/// rest of `list`. Every element must parse before a bad URI is reported,
/// so a list with both faults names the syntax error.
fn addresses<'a, L: Kind<'a, Item = NameAddr<'a>>>(
    first: &First<'a, NameAddr<'a>>,
    list: Elements<'_, 'a, L>,
) -> Result<(), Invalid> {
    let mut bad_uri = false;
    match &first.item {
        None => return Ok(()),
        Some(Err(e)) => return Err(header_ref(e)),
        Some(Ok(_)) => bad_uri |= !first.uri_ok,
    }
    for a in list.resume(first.rest) {
        let a = a.map_err(header)?;
        bad_uri |= a.uri != "*" && !Uri::is_valid(a.uri);
    }
    if bad_uri {
        return Err(bad("Bad address: malformed URI"));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn header_ref(e: &HeaderError) -> Invalid {
    header(e.clone())
}

#[cold]
#[inline(never)]
fn bad(reason: &'static str) -> Invalid {
    Invalid {
        status: 400,
        reason: Cow::Borrowed(reason),
    }
}

#[cold]
#[inline(never)]
fn header(e: HeaderError) -> Invalid {
    Invalid {
        status: 400,
        reason: Cow::Owned(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    const BASE: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\n";

    fn check(extra: &str) -> Result<(), Invalid> {
        let b = format!("SUBSCRIBE sip:c@d SIP/2.0\r\n{BASE}{extra}l: 0\r\n\r\n");
        check_request(&parse(b.as_bytes(), true).unwrap())
    }

    fn reason(extra: &str) -> String {
        check(extra).unwrap_err().reason.into_owned()
    }

    #[test]
    fn one_pass_finds_repeats_and_bad_values() {
        assert_eq!(check(""), Ok(()));
        assert_eq!(reason("From: <sip:e@f>\r\n"), "Bad From: header repeated");
        assert_eq!(
            reason("Expires: 1\r\nExpires: 1\r\n"),
            "Bad Expires: header repeated"
        );
        assert_eq!(
            reason("Max-Forwards: 300\r\n"),
            "Bad Max-Forwards: value out of range"
        );
        assert_eq!(reason("Event: ;id=1\r\n"), "Bad Event: missing package");
        assert_eq!(reason("Via: SIP/2.0/UDP\r\n"), "Bad Via: missing sent-by");
        assert_eq!(
            reason("Call-ID: y\r\n").as_str(),
            "Bad Call-ID: header repeated"
        );
    }

    #[test]
    fn a_request_uri_shared_with_from_or_to_gets_the_same_verdict() {
        // The Request-URI takes the verdict From's or To's URI got when it
        // is the same text: it must be the verdict it would get alone.
        let req = |ruri: &str, from: &str, to: &str| {
            let b = format!("SUBSCRIBE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <{from}>;tag=1\r\nTo: <{to}>\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\nl: 0\r\n\r\n");
            let m = parse(b.as_bytes(), true).unwrap();
            let via_parsed = crate::Parsed::new(m.clone()).check();
            let alone = check_request(&m);
            assert_eq!(via_parsed, alone);
            alone.map_err(|e| (e.status, e.reason.into_owned()))
        };
        assert_eq!(req("sip:a@b.c", "sip:a@b.c", "sip:a@b.c"), Ok(()));
        assert_eq!(
            req("tel:+1", "tel:+1", "sip:c@d"),
            Err((416, "Unsupported URI Scheme".into()))
        );
        assert_eq!(
            req("sip:a@b.c?x=y", "sip:e@f", "sip:a@b.c?x=y"),
            Err((400, "Request-URI must not carry headers".into()))
        );
        assert_eq!(
            req("sip:a@-b", "sip:a@-b", "sip:a@-b"),
            Err((400, "Malformed Request-URI".into()))
        );
        // Not shared: judged on its own.
        assert_eq!(
            req("sip:a@-b", "sip:a@b", "sip:a@b"),
            Err((400, "Malformed Request-URI".into()))
        );
    }

    #[test]
    fn the_first_fault_in_rfc_order_is_reported() {
        // Call-ID is judged before From, whatever their order in the message.
        assert_eq!(
            reason("From: x\r\nCall-ID: a b\r\n"),
            "Bad Call-ID: header repeated"
        );
        let b = "SUBSCRIBE sip:c@d SIP/2.0\r\nFrom: <sip:a@b;=>\r\nCall-ID: a b\r\nTo: <sip:c@d>\r\nCSeq: 1 SUBSCRIBE\r\nVia: SIP/2.0/UDP h\r\nl: 0\r\n\r\n";
        let e = check_request(&parse(b.as_bytes(), true).unwrap()).unwrap_err();
        assert_eq!(e.reason, "Bad Call-ID: malformed");
        // In a list, a syntax error anywhere beats a bad URI earlier on.
        assert_eq!(
            reason("Contact: <sip:a@b;=x>, <sip:c@d\r\n"),
            "Bad Contact: missing >"
        );
        assert_eq!(
            reason("Contact: <sip:a@b;=x>\r\n"),
            "Bad address: malformed URI"
        );
        assert_eq!(
            check("Route: <sip:r;lr>, <tel:+1>\r\nContact: *\r\n"),
            Ok(())
        );
        let b = "SUBSCRIBE sip:c@d SIP/2.0\r\nVia: ,\r\nFrom: <sip:a@b>\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 SUBSCRIBE\r\nl: 0\r\n\r\n";
        let e = check_request(&parse(b.as_bytes(), true).unwrap()).unwrap_err();
        assert_eq!(e.reason, "Missing Via header");
    }
}
