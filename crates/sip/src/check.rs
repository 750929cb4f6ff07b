//! The checks a UAS makes on a request before acting on it (RFC 3261 §8.2),
//! each failure mapped to the status code and reason phrase to answer with.

use crate::header::HeaderError;
use crate::message::{HeaderName, Message, Method, StartLine};
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
    for (name, missing) in [
        (HeaderName::CallId, "Missing Call-ID header"),
        (HeaderName::From, "Missing From header"),
        (HeaderName::To, "Missing To header"),
        (HeaderName::CSeq, "Missing CSeq header"),
        (HeaderName::Via, "Missing Via header"),
    ] {
        if msg.count(name) == 0 {
            return Err(bad(missing));
        }
    }
    msg.call_id().map_err(header)?;
    let cseq = msg.cseq().map_err(header)?;
    for (name, which) in [(msg.from(), "From"), (msg.to(), "To")] {
        let addr = name.map_err(header)?;
        if let Some(a) = addr {
            if a.parsed_uri().is_err() {
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
    if msg.vias().map_err(header)?.is_empty() {
        return Err(bad("Missing Via header"));
    }
    msg.max_forwards().map_err(header)?;
    msg.content_length().map_err(header)?;
    msg.content_type().map_err(header)?;
    msg.expires().map_err(header)?;
    msg.event().map_err(header)?;
    for list in [msg.contacts(), msg.routes(), msg.record_routes()] {
        for a in list.map_err(header)? {
            if a.uri != "*" && a.parsed_uri().is_err() {
                return Err(bad("Bad address: malformed URI"));
            }
        }
    }
    Ok(())
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
