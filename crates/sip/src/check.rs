//! The checks a UAS makes on a request before acting on it (RFC 3261 §8.2),
//! each failure mapped to the status code and reason phrase to answer with.

use crate::header::{
    contact as contact_elem, from_value, record_route as record_route_elem, route as route_elem,
    to_value, value, ContentType, Event, HeaderError, NameAddr, Via,
};
use crate::message::{HeaderName, Message, Method, StartLine};
use crate::text::trim_lws;
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
pub fn check_request(msg: &Message<'_>) -> Result<(), Invalid> {
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
    let ruri = Uri::parse(uri).map_err(|_| bad("Malformed Request-URI"))?;
    if !ruri.is_sip() {
        return Err(Invalid {
            status: 416,
            reason: Cow::Borrowed("Unsupported URI Scheme"),
        });
    }
    if ruri.headers.is_some() {
        return Err(bad("Request-URI must not carry headers"));
    }
    // One pass over the header index picks up the single-valued headers
    // (and whether any repeats) and notes which list headers are present;
    // each is then read once, in the order that decides which fault is
    // reported when there are several.
    let mut call_id = Slot::Absent;
    let mut from = Slot::Absent;
    let mut to = Slot::Absent;
    let mut cseq = Slot::Absent;
    let mut max_forwards = Slot::Absent;
    let mut content_length = Slot::Absent;
    let mut content_type = Slot::Absent;
    let mut expires = Slot::Absent;
    let mut event = Slot::Absent;
    let (mut via, mut contact, mut route, mut record_route) = (false, false, false, false);
    for h in &msg.headers {
        let slot = match h.name {
            HeaderName::CallId => &mut call_id,
            HeaderName::From => &mut from,
            HeaderName::To => &mut to,
            HeaderName::CSeq => &mut cseq,
            HeaderName::MaxForwards => &mut max_forwards,
            HeaderName::ContentLength => &mut content_length,
            HeaderName::ContentType => &mut content_type,
            HeaderName::Expires => &mut expires,
            HeaderName::Event => &mut event,
            HeaderName::Via => {
                via = true;
                continue;
            }
            HeaderName::Contact => {
                contact = true;
                continue;
            }
            HeaderName::Route => {
                route = true;
                continue;
            }
            HeaderName::RecordRoute => {
                record_route = true;
                continue;
            }
            _ => continue,
        };
        *slot = match slot {
            Slot::Absent => Slot::One(trim_lws(h.value)),
            _ => Slot::Repeated,
        };
    }
    for (present, missing) in [
        (!call_id.is_absent(), "Missing Call-ID header"),
        (!from.is_absent(), "Missing From header"),
        (!to.is_absent(), "Missing To header"),
        (!cseq.is_absent(), "Missing CSeq header"),
        (via, "Missing Via header"),
    ] {
        if !present {
            return Err(bad(missing));
        }
    }
    call_id.read("Call-ID", value::call_id)?;
    let cseq = cseq.read("CSeq", value::cseq)?;
    for (addr, which, read) in [
        (from, "From", from_value as Reader<'_>),
        (to, "To", to_value),
    ] {
        if let Some(a) = addr.read(which, read)? {
            if Uri::parse(a.uri).is_err() {
                return Err(Invalid {
                    status: 400,
                    reason: Cow::Owned(format!("Bad {which}: malformed URI")),
                });
            }
        }
    }
    if let Some(c) = cseq {
        if !matches!(method, Method::Other(_)) && c.method != method.as_str() {
            return Err(bad("Bad CSeq: method does not match"));
        }
    }
    let mut vias = 0usize;
    for e in msg.elements(HeaderName::Via) {
        Via::parse(e).map_err(header)?;
        vias += 1;
    }
    if vias == 0 {
        return Err(bad("Missing Via header"));
    }
    max_forwards.read("Max-Forwards", value::max_forwards)?;
    content_length.read("Content-Length", value::content_length)?;
    content_type.read("Content-Type", ContentType::parse)?;
    expires.read("Expires", |v| value::delta(v, "Expires"))?;
    event.read("Event", Event::parse)?;
    for (present, name, read) in [
        (contact, HeaderName::Contact, contact_elem as Reader<'_>),
        (route, HeaderName::Route, route_elem),
        (record_route, HeaderName::RecordRoute, record_route_elem),
    ] {
        if !present {
            continue;
        }
        // Every element must parse before a bad URI is reported, so a list
        // with both faults names the syntax error.
        let mut bad_uri = false;
        for e in msg.elements(name) {
            let a = read(e).map_err(header)?;
            bad_uri |= a.uri != "*" && Uri::parse(a.uri).is_err();
        }
        if bad_uri {
            return Err(bad("Bad address: malformed URI"));
        }
    }
    Ok(())
}

type Reader<'v> = fn(&'v str) -> Result<NameAddr<'v>, HeaderError>;

/// What one pass over the headers saw of a single-valued header.
#[derive(Clone, Copy)]
enum Slot<'v> {
    Absent,
    One(&'v str),
    Repeated,
}

impl<'v> Slot<'v> {
    fn is_absent(&self) -> bool {
        matches!(self, Slot::Absent)
    }

    /// Read the value with `f`; a repeated header is the same error the
    /// accessor on `Message` gives.
    fn read<T>(
        self,
        name: &'static str,
        f: impl FnOnce(&'v str) -> Result<T, HeaderError>,
    ) -> Result<Option<T>, Invalid> {
        match self {
            Slot::Absent => Ok(None),
            Slot::One(v) => f(v).map(Some).map_err(header),
            Slot::Repeated => Err(header(HeaderError {
                header: name,
                what: "header repeated",
            })),
        }
    }
}

fn bad(reason: &'static str) -> Invalid {
    Invalid {
        status: 400,
        reason: Cow::Borrowed(reason),
    }
}

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
