//! Write requests and responses with the writers, parse them back, and
//! compare every field.

use proptest::prelude::*;
use sip::{check_request, parse, HeaderName, Method, RequestWriter, ResponseWriter, SubState};
use std::net::{IpAddr, SocketAddr};

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,11}"
}

fn hostname() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9]{0,6}){0,3}"
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

/// A host as written: a name, an IPv4 address or a bracketed IPv6 address.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        hostname(),
        ip().prop_map(|a| match a {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }),
    ]
}

fn method() -> impl Strategy<Value = Method<'static>> {
    prop_oneof![
        Just(Method::Subscribe),
        Just(Method::Notify),
        Just(Method::Publish),
        Just(Method::Options),
        Just(Method::Invite),
        Just(Method::Message),
        Just(Method::Other("X-CUSTOM")),
    ]
}

#[derive(Debug, Clone)]
struct Req {
    method: Method<'static>,
    user: String,
    host: String,
    port: Option<u16>,
    transport: &'static str,
    via_host: String,
    via_port: Option<u16>,
    branch: String,
    rport: bool,
    display: Option<String>,
    from_tag: String,
    to_tag: Option<String>,
    call_id: String,
    cseq: u32,
    call_info: Vec<(u8, &'static str, Option<String>)>,
    event: (String, Option<String>),
    expires: u32,
    body: Vec<u8>,
}

fn req() -> impl Strategy<Value = Req> {
    (
        (
            method(),
            "[a-z0-9]{1,10}",
            host(),
            proptest::option::of(1u16..),
        ),
        (
            prop_oneof![Just("UDP"), Just("TCP"), Just("TLS")],
            host(),
            proptest::option::of(1u16..),
        ),
        (token(), any::<bool>()),
        // Display names with quotes, backslashes and commas inside.
        (
            proptest::option::of("[a-zA-Z ,\"\\\\]{0,12}"),
            token(),
            proptest::option::of(token()),
        ),
        (token(), hostname(), any::<u32>()),
        proptest::collection::vec(
            (
                any::<u8>(),
                prop_oneof![Just("idle"), Just("seized"), Just("active"), Just("held")],
                proptest::option::of("[a-z]{1,8}"),
            ),
            0..4,
        ),
        (
            prop_oneof![
                Just("call-info".to_string()),
                Just("line-seize".to_string()),
                token()
            ],
            proptest::option::of(token()),
        ),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)),
    )
        .prop_map(|(r, v, b, d, c, call_info, event, (expires, body))| Req {
            method: r.0,
            user: r.1,
            host: r.2,
            port: r.3,
            transport: v.0,
            via_host: v.1,
            via_port: v.2,
            branch: format!("z9hG4bK{}", b.0),
            rport: b.1,
            display: d.0,
            from_tag: d.1,
            to_tag: d.2,
            call_id: format!("{}@{}", c.0, c.1),
            cseq: c.2,
            call_info,
            event,
            expires,
            body,
        })
}

fn hostport(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Quote a display name, escaping `"` and `\`.
fn quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn write_req(r: &Req, out: &mut Vec<u8>) {
    let uri = format!("sip:{}@{}", r.user, hostport(&r.host, r.port));
    let mut via = format!(
        "SIP/2.0/{} {};branch={}",
        r.transport,
        hostport(&r.via_host, r.via_port),
        r.branch
    );
    if r.rport {
        via.push_str(";rport");
    }
    let from = match &r.display {
        Some(d) => format!("{} <{uri}>;tag={}", quote(d), r.from_tag),
        None => format!("<{uri}>;tag={}", r.from_tag),
    };
    let to = match &r.to_tag {
        Some(t) => format!("<{uri}>;tag={t}"),
        None => format!("<{uri}>"),
    };
    let mut event = r.event.0.clone();
    if let Some(id) = &r.event.1 {
        event.push_str(";id=");
        event.push_str(id);
    }
    let mut w = RequestWriter::new(out, r.method, &uri)
        .header(HeaderName::Via, &via)
        .header(HeaderName::MaxForwards, "70")
        .header(HeaderName::From, &from)
        .header(HeaderName::To, &to)
        .header(HeaderName::CallId, &r.call_id)
        .header_with(HeaderName::CSeq, |b| {
            b.extend_from_slice(format!("{} {}", r.cseq, r.method.as_str()).as_bytes())
        })
        .header(HeaderName::Event, &event)
        .header(HeaderName::Expires, &r.expires.to_string());
    // Call-Info elements alternate between one comma list and separate lines.
    let elems: Vec<String> = r
        .call_info
        .iter()
        .map(|(i, st, u)| {
            let mut e = format!("<{uri}>;appearance-index={i};appearance-state={st}");
            if let Some(u) = u {
                e.push_str(&format!(";appearance-uri=\"<sip:{u}@{}>\"", r.host));
            }
            e
        })
        .collect();
    for pair in elems.chunks(2) {
        w = w.header(HeaderName::CallInfo, &pair.join(",\r\n "));
    }
    w.finish_with_body("application/octet-stream", &r.body);
}

fn check_req(r: &Req, bytes: &[u8]) -> Result<(), TestCaseError> {
    let m = parse(bytes, true).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    check_request(&m).map_err(|e| TestCaseError::fail(format!("{} {}", e.status, e.reason)))?;
    prop_assert_eq!(m.method(), Some(r.method));
    let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
    prop_assert_eq!(ruri.user, Some(r.user.as_str()));
    prop_assert_eq!(ruri.host, r.host.as_str());
    prop_assert_eq!(ruri.port, r.port);
    let via = m.via().unwrap().unwrap();
    prop_assert_eq!(via.transport, r.transport);
    prop_assert_eq!(via.host, r.via_host.as_str());
    prop_assert_eq!(via.port, r.via_port);
    prop_assert_eq!(via.branch, Some(r.branch.as_str()));
    prop_assert_eq!(via.rport, if r.rport { Some(None) } else { None });
    let from = m.from().unwrap().unwrap();
    let quoted = r.display.as_deref().map(quote);
    prop_assert_eq!(from.display, quoted.as_deref().map(|q| &q[1..q.len() - 1]));
    prop_assert_eq!(from.tag(), Some(r.from_tag.as_str()));
    prop_assert_eq!(m.to().unwrap().unwrap().tag(), r.to_tag.as_deref());
    prop_assert_eq!(m.call_id().unwrap(), Some(r.call_id.as_str()));
    let cseq = m.cseq().unwrap().unwrap();
    prop_assert_eq!((cseq.seq, cseq.method), (r.cseq, r.method.as_str()));
    let ev = m.event().unwrap().unwrap();
    prop_assert_eq!(ev.package, r.event.0.as_str());
    prop_assert_eq!(ev.id, r.event.1.as_deref());
    prop_assert_eq!(m.expires().unwrap(), Some(r.expires));
    prop_assert_eq!(m.max_forwards().unwrap(), Some(70));
    let ci = m.call_info().unwrap();
    prop_assert_eq!(ci.len(), r.call_info.len());
    for (got, (i, st, u)) in ci.iter().zip(&r.call_info) {
        let idx = i.to_string();
        prop_assert_eq!(got.appearance_index, Some(idx.as_str()));
        prop_assert_eq!(got.appearance_state, Some(*st));
        let au = u.as_ref().map(|u| format!("\"<sip:{u}@{}>\"", r.host));
        prop_assert_eq!(got.appearance_uri, au.as_deref());
    }
    prop_assert_eq!(m.content_length().unwrap(), Some(r.body.len() as u32));
    prop_assert_eq!(m.body, &r.body[..]);
    prop_assert_eq!(
        m.content_type().unwrap().unwrap().media,
        "application/octet-stream"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_round_trip(r in req()) {
        let mut out = Vec::new();
        write_req(&r, &mut out);
        check_req(&r, &out)?;
        // Framing agrees with the writer's Content-Length.
        prop_assert_eq!(sip::frame_len(&out, 1 << 16), Ok(out.len()));
    }

    #[test]
    fn responses_round_trip(
        r in req(),
        code in 100u16..=699,
        reason in "[A-Za-z][A-Za-z ]{0,15}[A-Za-z]",
        src_ip in ip(),
        src_port in 1u16..,
        tag in token(),
        state in prop_oneof![Just(SubState::Active), Just(SubState::Pending), Just(SubState::Terminated)],
    ) {
        let mut req_bytes = Vec::new();
        write_req(&r, &mut req_bytes);
        let request = parse(&req_bytes, true).unwrap();
        let src = SocketAddr::new(src_ip, src_port);
        let state_text = match state {
            SubState::Active => "active;expires=60",
            SubState::Pending => "pending;expires=60",
            SubState::Terminated => "terminated;reason=timeout;retry-after=60",
        };
        let mut out = Vec::new();
        ResponseWriter::new(&mut out, &request, code, &reason, Some(src), Some(&tag))
            .header(HeaderName::SubscriptionState, state_text)
            .header(HeaderName::SipETag, "etag1")
            .finish_with_body("text/plain", b"ok");
        let m = parse(&out, true).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(m.status(), Some(code));
        match m.start {
            sip::StartLine::Response { reason: got, .. } => prop_assert_eq!(got, reason.as_str()),
            _ => prop_assert!(false, "not a response"),
        }
        let req_via = request.via().unwrap().unwrap();
        let via = m.via().unwrap().unwrap();
        prop_assert_eq!(via.branch, req_via.branch);
        prop_assert_eq!(via.host, req_via.host);
        let sent_by_is_src = req_via.sent_by() == Some(sip::Host::Ip(src_ip));
        if r.rport {
            prop_assert_eq!(via.rport, Some(Some(src_port)));
            prop_assert_eq!(via.received_ip(), Some(src_ip));
        } else {
            prop_assert_eq!(via.rport, None);
            prop_assert_eq!(via.received_ip(), if sent_by_is_src { None } else { Some(src_ip) });
        }
        // IPv6 received is written without brackets.
        prop_assert!(!via.received.unwrap_or("").contains('['));
        prop_assert_eq!(m.from().unwrap().unwrap().raw, request.from().unwrap().unwrap().raw);
        let to_tag = r.to_tag.clone().unwrap_or(tag);
        prop_assert_eq!(m.to().unwrap().unwrap().tag(), Some(to_tag.as_str()));
        prop_assert_eq!(m.call_id().unwrap(), request.call_id().unwrap());
        prop_assert_eq!(m.cseq().unwrap(), request.cseq().unwrap());
        prop_assert_eq!(m.subscription_state().unwrap().unwrap().state, state);
        prop_assert_eq!(m.sip_etag().unwrap(), Some("etag1"));
        prop_assert_eq!(m.body, b"ok");
    }
}
