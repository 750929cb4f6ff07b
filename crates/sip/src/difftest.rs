//! Differential tests: the single-pass scanners and the values [`Parsed`]
//! remembers must give exactly the answers of the general parsers read
//! lazily, element by element, the way the crate read every header before
//! the scanners existed. The reference side below is that older path:
//! `split_commas`, the `*_general` parsers, `Uri::parse_general`, and the
//! former `check_request` with its one pass over the header index.

use crate::check::Invalid;
use crate::header::{
    accept_range, contact, name_addr_general, token_of, value, CSeq, CallInfo, ContentType, Event,
    HeaderError, NameAddr, SubscriptionState, Via,
};
use crate::known::Parsed;
use crate::message::{HeaderName, Message, Method, StartLine};
use crate::parse::parse;
use crate::text::trim_lws;
use crate::uri::Uri;
use proptest::prelude::*;
use std::borrow::Cow;

type R<T> = Result<T, HeaderError>;

fn single<'a>(m: &Message<'a>, name: HeaderName<'_>) -> R<Option<&'a str>> {
    let mut found = None;
    for h in m.headers.iter().filter(|h| h.name == name) {
        if found.is_some() {
            return Err(HeaderError {
                header: name.canonical().unwrap_or("header"),
                what: "header repeated",
            });
        }
        found = Some(trim_lws(h.value));
    }
    Ok(found)
}

fn addr_general<'a>(h: &'static str) -> impl Fn(&'a str) -> R<NameAddr<'a>> {
    move |e| {
        if h == "Contact" && e == "*" {
            contact(e)
        } else {
            name_addr_general(e, h)
        }
    }
}

/// Every value a server reads, by the reference path, as comparable text.
/// Parameter views are shown with their raw text too, so a different cut
/// of the same parameters is a difference.
fn reference(m: &Message<'_>) -> Vec<String> {
    let el = |n: HeaderName<'static>| m.elements(n).collect::<Vec<_>>();
    let vias: Vec<R<Via<'_>>> = el(HeaderName::Via)
        .into_iter()
        .map(Via::parse_general)
        .collect();
    let list = |n, h| -> Vec<R<NameAddr<'_>>> { el(n).into_iter().map(addr_general(h)).collect() };
    let na = |n, h: &'static str| single(m, n).and_then(|v| v.map(addr_general(h)).transpose());
    let toks = |n: HeaderName<'static>, h| -> Vec<R<&str>> {
        el(n).into_iter().map(|e| token_of(e, h)).collect()
    };
    let delta = |n: HeaderName<'static>, h| {
        single(m, n).and_then(|v| v.map(|v| value::delta(v, h)).transpose())
    };
    vec![
        show_vias(&vias),
        format!("{:?}", vias.first().cloned().transpose()),
        show_addr(&na(HeaderName::From, "From")),
        show_addr(&na(HeaderName::To, "To")),
        format!(
            "{:?}",
            single(m, HeaderName::CallId).and_then(|v| v.map(value::call_id).transpose())
        ),
        format!(
            "{:?}",
            single(m, HeaderName::CSeq).and_then(|v| v.map(value::cseq).transpose())
        ),
        format!(
            "{:?}",
            single(m, HeaderName::MaxForwards).and_then(|v| v.map(value::max_forwards).transpose())
        ),
        show_addrs(&list(HeaderName::Contact, "Contact")),
        show_addrs(&list(HeaderName::RecordRoute, "Record-Route")),
        show_addrs(&list(HeaderName::Route, "Route")),
        format!("{:?}", delta(HeaderName::Expires, "Expires")),
        format!("{:?}", delta(HeaderName::MinExpires, "Min-Expires")),
        show_event(
            &single(m, HeaderName::Event).and_then(|v| v.map(Event::parse_general).transpose()),
        ),
        format!("{:?}", toks(HeaderName::AllowEvents, "Allow-Events")),
        format!(
            "{:?}",
            el(HeaderName::Accept)
                .into_iter()
                .map(accept_range)
                .collect::<Vec<_>>()
        ),
        show_ct(
            &single(m, HeaderName::ContentType)
                .and_then(|v| v.map(ContentType::parse_general).transpose()),
        ),
        format!(
            "{:?}",
            single(m, HeaderName::ContentLength)
                .and_then(|v| v.map(value::content_length).transpose())
        ),
        format!("{:?}", toks(HeaderName::Require, "Require")),
        format!("{:?}", toks(HeaderName::Supported, "Supported")),
        show_call_info(
            &el(HeaderName::CallInfo)
                .into_iter()
                .map(CallInfo::parse_general)
                .collect::<Vec<_>>(),
        ),
        format!(
            "{:?}",
            single(m, HeaderName::SipETag)
                .and_then(|v| v.map(|v| token_of(v, "SIP-ETag")).transpose())
        ),
        format!(
            "{:?}",
            m.header_lines(HeaderName::SipIfMatch)
                .map(|v| token_of(trim_lws(v), "SIP-If-Match"))
                .collect::<Vec<_>>()
        ),
        format!(
            "{:?}",
            single(m, HeaderName::SubscriptionState)
                .and_then(|v| v.map(SubscriptionState::parse_general).transpose())
        ),
        format!("{:?}", check_reference(m)),
    ]
}

/// The same values through an accessor set: `Message`'s or `Parsed`'s
/// (the macro takes either, since their accessors share names).
macro_rules! observed {
    ($m:expr, $check:expr) => {{
        let m = $m;
        vec![
            show_vias(&m.vias_iter().collect::<Vec<_>>()),
            format!("{:?}", m.via()),
            show_addr(&m.from()),
            show_addr(&m.to()),
            format!("{:?}", m.call_id()),
            format!("{:?}", m.cseq()),
            format!("{:?}", m.max_forwards()),
            show_addrs(&m.contacts_iter().collect::<Vec<_>>()),
            show_addrs(&m.record_routes_iter().collect::<Vec<_>>()),
            show_addrs(&m.routes_iter().collect::<Vec<_>>()),
            format!("{:?}", m.expires()),
            format!("{:?}", m.min_expires()),
            show_event(&m.event()),
            format!("{:?}", m.allow_events_iter().collect::<Vec<_>>()),
            format!("{:?}", m.accept_iter().collect::<Vec<_>>()),
            show_ct(&m.content_type()),
            format!("{:?}", m.content_length()),
            format!("{:?}", m.require_iter().collect::<Vec<_>>()),
            format!("{:?}", m.supported_iter().collect::<Vec<_>>()),
            show_call_info(&m.call_info_iter().collect::<Vec<_>>()),
            format!("{:?}", m.sip_etag()),
            format!("{:?}", m.sip_if_match_iter().collect::<Vec<_>>()),
            format!("{:?}", m.subscription_state()),
            format!("{:?}", $check),
        ]
    }};
}

fn show_vias(v: &[R<Via<'_>>]) -> String {
    let raw: Vec<_> = v
        .iter()
        .map(|v| {
            v.as_ref()
                .map(|v| (v.params.raw(), v.sent_by(), v.received_ip()))
        })
        .collect();
    format!("{v:?} {raw:?}")
}

fn show_addr(a: &R<Option<NameAddr<'_>>>) -> String {
    let extra = a.as_ref().ok().and_then(Option::as_ref).map(|a| {
        (
            a.params.raw(),
            a.tag(),
            a.parsed_uri(),
            Uri::parse_general(a.uri).map(|u| u.params.raw()),
        )
    });
    format!("{a:?} {extra:?}")
}

fn show_addrs(v: &[R<NameAddr<'_>>]) -> String {
    v.iter()
        .map(|a| show_addr(&a.clone().map(Some)))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn show_event(e: &R<Option<Event<'_>>>) -> String {
    let raw = e
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|e| e.params.raw());
    format!("{e:?} {raw:?}")
}

fn show_ct(c: &R<Option<ContentType<'_>>>) -> String {
    let raw = c
        .as_ref()
        .ok()
        .and_then(Option::as_ref)
        .map(|c| c.params.raw());
    format!("{c:?} {raw:?}")
}

fn show_call_info(v: &[R<CallInfo<'_>>]) -> String {
    let raw: Vec<_> = v
        .iter()
        .map(|c| c.as_ref().map(|c| c.params.raw()))
        .collect();
    format!("{v:?} {raw:?}")
}

/// `check_request` as it was: one pass over the header index, each value
/// read by the general parsers.
fn check_reference(msg: &Message<'_>) -> Result<(), Invalid> {
    let bad = |r: &'static str| Invalid {
        status: 400,
        reason: Cow::Borrowed(r),
    };
    let header = |e: HeaderError| Invalid {
        status: 400,
        reason: Cow::Owned(e.to_string()),
    };
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
    let ruri = Uri::parse_general(uri).map_err(|_| bad("Malformed Request-URI"))?;
    if !ruri.is_sip() {
        return Err(Invalid {
            status: 416,
            reason: Cow::Borrowed("Unsupported URI Scheme"),
        });
    }
    if ruri.headers.is_some() {
        return Err(bad("Request-URI must not carry headers"));
    }
    let present = |n| msg.count(n) > 0;
    for (here, missing) in [
        (present(HeaderName::CallId), "Missing Call-ID header"),
        (present(HeaderName::From), "Missing From header"),
        (present(HeaderName::To), "Missing To header"),
        (present(HeaderName::CSeq), "Missing CSeq header"),
        (present(HeaderName::Via), "Missing Via header"),
    ] {
        if !here {
            return Err(bad(missing));
        }
    }
    single(msg, HeaderName::CallId)
        .and_then(|v| v.map(value::call_id).transpose())
        .map_err(header)?;
    let cseq: Option<CSeq<'_>> = single(msg, HeaderName::CSeq)
        .and_then(|v| v.map(value::cseq).transpose())
        .map_err(header)?;
    for (n, which) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
        let a = single(msg, n)
            .and_then(|v| v.map(|v| name_addr_general(v, which)).transpose())
            .map_err(header)?;
        if let Some(a) = a {
            if Uri::parse_general(a.uri).is_err() {
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
    let mut vias = 0;
    for e in msg.elements(HeaderName::Via) {
        Via::parse_general(e).map_err(header)?;
        vias += 1;
    }
    if vias == 0 {
        return Err(bad("Missing Via header"));
    }
    single(msg, HeaderName::MaxForwards)
        .and_then(|v| v.map(value::max_forwards).transpose())
        .map_err(header)?;
    single(msg, HeaderName::ContentLength)
        .and_then(|v| v.map(value::content_length).transpose())
        .map_err(header)?;
    single(msg, HeaderName::ContentType)
        .and_then(|v| v.map(ContentType::parse_general).transpose())
        .map_err(header)?;
    single(msg, HeaderName::Expires)
        .and_then(|v| v.map(|v| value::delta(v, "Expires")).transpose())
        .map_err(header)?;
    single(msg, HeaderName::Event)
        .and_then(|v| v.map(Event::parse_general).transpose())
        .map_err(header)?;
    for (n, h) in [
        (HeaderName::Contact, "Contact"),
        (HeaderName::Route, "Route"),
        (HeaderName::RecordRoute, "Record-Route"),
    ] {
        let mut bad_uri = false;
        for e in msg.elements(n) {
            let a = addr_general(h)(e).map_err(header)?;
            bad_uri |= a.uri != "*" && Uri::parse_general(a.uri).is_err();
        }
        if bad_uri {
            return Err(bad("Bad address: malformed URI"));
        }
    }
    Ok(())
}

/// Compare the three paths on one message; a parse error is fine (it is
/// the same `parse` for all of them).
fn same_answers(bytes: &[u8]) {
    let Ok(m) = parse(bytes, false) else {
        return;
    };
    let want = reference(&m);
    let lazy = observed!(&m, crate::check_request(&m));
    let p = Parsed::new(m.clone());
    let cached = observed!(&p, p.check());
    let text = String::from_utf8_lossy(bytes);
    for (i, w) in want.iter().enumerate() {
        assert_eq!(&lazy[i], w, "Message accessor #{i} differs on\n{text}");
        assert_eq!(&cached[i], w, "Parsed accessor #{i} differs on\n{text}");
    }
    if let Some(u) = m.request_uri() {
        assert_eq!(
            Uri::parse(u),
            Uri::parse_general(u),
            "Request-URI of\n{text}"
        );
    }
}

fn fixtures() -> &'static [Vec<u8>] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let dir = format!("{}/tests/torture", env!("CARGO_MANIFEST_DIR"));
        let mut all: Vec<Vec<u8>> = TYPICAL.iter().map(|m| m.as_bytes().to_vec()).collect();
        for sub in ["rfc4475", "rfc5118"] {
            let mut paths: Vec<_> = std::fs::read_dir(format!("{dir}/{sub}"))
                .expect("torture directory")
                .map(|e| e.expect("directory entry").path())
                .collect();
            paths.sort();
            for p in paths {
                all.push(std::fs::read(p).expect("torture file"));
            }
        }
        all
    })
}

/// Requests of the shapes the scanners are built for, with the variations
/// they must hand over to the general parsers.
const TYPICAL: &[&str] = &[
    "SUBSCRIBE sip:2001@pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---7f3a9c1e2b4d;rport\r\nMax-Forwards: 70\r\nContact: <sip:2001@192.0.2.10:5060;transport=udp>\r\nTo: <sip:2001@pbx.example.com>\r\nFrom: \"Desk 2001\" <sip:2001@pbx.example.com>;tag=8d2f61c3\r\nCall-ID: 5f1e2d3c@192.0.2.10\r\nCSeq: 12 SUBSCRIBE\r\nExpires: 3600\r\nAccept: application/x-call-info\r\nAllow-Events: call-info, line-seize, message-summary\r\nSupported: replaces, timer\r\nEvent: call-info\r\nContent-Length: 0\r\n\r\n",
    "PUBLISH sip:2001@pbx.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.11:5060;branch=z9hG4bK-d8754z;rport\r\nMax-Forwards: 70\r\nTo: <sip:2001@pbx.example.com>\r\nFrom: \"Desk 2002\" <sip:2002@pbx.example.com>;tag=91b0c2de\r\nCall-ID: 0a1b2c3d@192.0.2.11\r\nCSeq: 3 PUBLISH\r\nCall-Info: <sip:2001@pbx.example.com>;appearance-index=1;appearance-state=active;\r\n appearance-uri=\"\\\"Alice\\\" <sip:alice@example.net>\",\r\n <sip:2001@pbx.example.com>;appearance-index=2;appearance-state=seized\r\nSIP-If-Match: 7f3a9c1e\r\nExpires: 60\r\nEvent: call-info\r\nRequire: replaces\r\nContent-Length: 0\r\n\r\n",
    "NOTIFY sip:2001@192.0.2.10:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK.n0t1fy.2b4d6f8a\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK2;received=192.0.2.1, SIP/2.0/TCP h.example.com;branch=z9hG4bK3;rport=5\r\nMax-Forwards: 70\r\nRecord-Route: <sip:198.51.100.5;lr>, <sip:p2.example.com;lr>\r\nRoute: <sip:proxy.example.com;lr>\r\nRoute: Proxy <sip:q@x.example.com;lr>\r\nFrom: <sip:2001@pbx.example.com>;tag=srv-83fa01\r\nTo: <sip:2001@pbx.example.com>;tag=8d2f61c3\r\nCall-ID: 5f1e2d3c@192.0.2.10\r\nCSeq: 7 NOTIFY\r\nContact: <sip:sca@198.51.100.5:5060>, *\r\nEvent: call-info;id=7\r\nSubscription-State: active;expires=3599\r\nCall-Info: <sip:2001@pbx.example.com>;appearance-index=*;appearance-state=idle\r\nSIP-ETag: e1\r\nContent-Type: application/x-call-info;charset=utf-8\r\nContent-Length: 0\r\n\r\n",
    "OPTIONS sips:u:pw@EXAMPLE.com.:5061;maddr=[::1];x=%41?h=v SIP/2.0\r\nVia: SIP/2.0 / UDP host;branch=z9hG4bK1\r\nFrom: sip:a@b;tag=1\r\nTo: <sip:01.2.3.4>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContact: <tel:+1>;q=\"a,b\";x=y\r\nEvent: a ; id = 2\r\nContent-Type: text / plain\r\nSubscription-State: terminated;reason=timeout;retry-after=99999999999\r\nl: 0\r\n\r\n",
];

#[test]
fn every_fixture_gives_the_same_answers_both_ways() {
    for f in fixtures() {
        same_answers(f);
    }
}

#[test]
fn the_fast_path_is_taken_for_typical_requests() {
    // Guard against a scanner that declines everything (which would pass
    // the comparison trivially): the typical shapes are recognised.
    assert!(crate::scan::name_addr("\"D\" <sip:a@b.c>;tag=1", 0).is_some());
    assert!(crate::scan::via("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx;rport", 0).is_some());
    assert!(crate::scan::call_info("<sip:a@b>;appearance-index=1", 0).is_some());
    assert!(crate::scan::event("call-info;id=7").is_some());
    assert!(crate::scan::content_type("application/x-call-info").is_some());
    assert!(crate::scan::subscription_state("active;expires=60").is_some());
    assert!(Uri::scan("sip:2001@192.0.2.10:5060;transport=udp").is_some());
    assert!(Uri::scan("sip:proxy.example.com;lr").is_some());
    for (host, ok) in [
        ("256.1.1.1", false),
        ("1.300.1.1", false),
        ("01.1.1.1", false),
        ("1.2.3.4", true),
    ] {
        assert_eq!(Uri::parse(&format!("sip:u@{host}")).is_ok(), ok, "{host}");
        assert_eq!(
            crate::uri::scan_host(host.as_bytes(), 0).is_some(),
            ok,
            "{host}"
        );
    }
    // And it declines what it does not cover.
    assert!(crate::scan::name_addr("Bob <sip:a@b>", 0).is_none());
    assert!(Uri::scan("sip:[2001:db8::1]").is_none());
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let special = prop_oneof![
        Just(b"\r\n ".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b";".to_vec()),
        Just(b",".to_vec()),
        Just(b"<".to_vec()),
        Just(b">".to_vec()),
        Just(b"[".to_vec()),
        Just(b":".to_vec()),
        Just(b"=".to_vec()),
        Just(b"@".to_vec()),
        Just(b"%4".to_vec()),
        Just(b".".to_vec()),
        Just(b"-".to_vec()),
        Just(b"0".to_vec()),
        Just(b"*".to_vec()),
        Just(b";tag=".to_vec()),
        Just(b";lr".to_vec()),
        Just("é".as_bytes().to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), special).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), 1usize..6).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    b[i % len] = *x;
                }
            }
            Mutation::Insert(i, s) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, s.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = i % len;
                let end = (at + n).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_messages_give_the_same_answers_both_ways(
        which in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let all = fixtures();
        // The typical requests first: most mutations should land in the
        // headers the scanners read.
        let k = which.index(all.len() + 3 * TYPICAL.len());
        let base = if k < all.len() { all[k].clone() } else { all[k % TYPICAL.len()].clone() };
        same_answers(&apply(base, &muts));
    }

    #[test]
    fn uris_agree_with_the_general_parser(s in "[a-zA-Z0-9:@;=?%.\\-_\\[\\]&+$,/!~*'() ]{0,24}") {
        let digits: String = s.chars().map(|c| if c.is_ascii_alphabetic() { '9' } else { c }).collect();
        for u in [s.clone(), format!("sip:{s}"), format!("sips:u@{s}"), format!("sip:{digits}")] {
            prop_assert_eq!(Uri::parse(&u), Uri::parse_general(&u), "{}", u);
        }
    }
}

/// The message-layer bench's three requests (crates/sip/benches/parse.rs).
const BENCH: &[&[u8]] = &[
    b"SUBSCRIBE sip:2001@pbx.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---7f3a9c1e2b4d;rport\r\nMax-Forwards: 70\r\nContact: <sip:2001@192.0.2.10:5060;transport=udp>\r\nTo: <sip:2001@pbx.example.com>\r\nFrom: \"Desk 2001\" <sip:2001@pbx.example.com>;tag=8d2f61c3\r\nCall-ID: 5f1e2d3c4b5a69788796a5b4c3d2e1f0@192.0.2.10\r\nCSeq: 12 SUBSCRIBE\r\nExpires: 3600\r\nAccept: application/x-call-info\r\nAllow-Events: call-info, line-seize, message-summary\r\nSupported: replaces, timer\r\nUser-Agent: ExamplePhone/5.2.1\r\nEvent: call-info\r\nContent-Length: 0\r\n\r\n",
    b"PUBLISH sip:2001@pbx.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.11:5060;branch=z9hG4bK-d8754z-3c9b2a1f0e8d;rport\r\nMax-Forwards: 70\r\nTo: <sip:2001@pbx.example.com>\r\nFrom: \"Desk 2002\" <sip:2002@pbx.example.com>;tag=91b0c2de\r\nCall-ID: 0a1b2c3d4e5f60718293a4b5c6d7e8f9@192.0.2.11\r\nCSeq: 3 PUBLISH\r\nCall-Info: <sip:2001@pbx.example.com>;appearance-index=1;appearance-state=active;\r\n appearance-uri=\"\\\"Alice\\\" <sip:alice@example.net>\",\r\n <sip:2001@pbx.example.com>;appearance-index=2;appearance-state=seized\r\nSIP-If-Match: 7f3a9c1e\r\nExpires: 60\r\nEvent: call-info\r\nRequire: replaces\r\nUser-Agent: ExamplePhone/5.2.1\r\nContent-Length: 0\r\n\r\n",
    b"NOTIFY sip:2001@192.0.2.10:5060;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK.n0t1fy.2b4d6f8a\r\nMax-Forwards: 70\r\nRecord-Route: <sip:198.51.100.5;lr>\r\nRoute: <sip:proxy.example.com;lr>\r\nFrom: <sip:2001@pbx.example.com>;tag=srv-83fa01\r\nTo: <sip:2001@pbx.example.com>;tag=8d2f61c3\r\nCall-ID: 5f1e2d3c4b5a69788796a5b4c3d2e1f0@192.0.2.10\r\nCSeq: 7 NOTIFY\r\nContact: <sip:sca@198.51.100.5:5060>\r\nEvent: call-info;id=7\r\nSubscription-State: active;expires=3599\r\nCall-Info: <sip:2001@pbx.example.com>;appearance-index=*;appearance-state=idle\r\nSIP-ETag: e1\r\nContent-Type: application/x-call-info\r\nContent-Length: 0\r\n\r\n",
];

/// The one-pass reader (`pass`, its stage 1 done byte by byte so that this
/// runs on every CPU) against `parse` + `Parsed::new`, on UDP and TCP
/// framing: wherever the pass answers, `parse` must accept the bytes and
/// give the same `Parsed`, and every accessor and `check` the same answer.
/// Where the CPU has AVX-512, its stage 1 must give the same masks, and
/// `parse_typed` the same `Parsed`. Returns whether the pass answered.
fn same_as_pass(bytes: &[u8]) -> bool {
    let Some(masks) = crate::pass::portable_masks(bytes) else {
        return false;
    };
    if let Some(fast) = crate::pass::avx512_masks(bytes) {
        assert!(fast == masks, "AVX-512 masks differ");
    }
    let text = String::from_utf8_lossy(bytes);
    let mut answered = false;
    for stream in [false, true] {
        let Some(p) = crate::pass::request_with(bytes, &masks, stream) else {
            continue;
        };
        answered = true;
        let q = parse(bytes, stream)
            .map(Parsed::new)
            .unwrap_or_else(|e| panic!("the pass took what parse refuses ({e}):\n{text}"));
        // The pass also judged the Request-URI, which `Parsed::new` leaves
        // to the check.
        let judged = q.clone().with_request_uri_judged();
        assert_eq!(
            format!("{p:?}"),
            format!("{judged:?}"),
            "Parsed differs on\n{text}"
        );
        let (a, b) = (observed!(&p, p.check()), observed!(&q, q.check()));
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            assert_eq!(a, b, "accessor #{i} differs on\n{text}");
        }
        // `parse_typed` took the pass where the CPU has AVX-512 (with the
        // same masks), `Parsed::new` elsewhere.
        let typed = crate::parse_typed(bytes, stream).expect("parse_typed");
        let want = if crate::pass::avx512_masks(bytes).is_some() {
            &judged
        } else {
            &q
        };
        assert_eq!(
            format!("{typed:?}"),
            format!("{want:?}"),
            "parse_typed on\n{text}"
        );
    }
    answered
}

#[test]
fn the_pass_reads_the_bench_requests_as_parse_does() {
    for m in BENCH {
        assert!(same_as_pass(m), "{}", String::from_utf8_lossy(m));
        if crate::pass::avx512_masks(m).is_some() {
            assert!(crate::pass::parse_typed(m, false).is_some());
        }
    }
}

#[test]
fn the_pass_agrees_with_parse_on_every_fixture() {
    let answered = fixtures().iter().filter(|f| same_as_pass(f)).count();
    // Most torture messages are odd on purpose and go to `parse`; the
    // typical ones must not.
    assert!(answered >= 2, "the pass answered {answered} fixtures");
}

/// Every byte of each bench request overwritten with each of a set of
/// bytes that matter to the grammar, and each byte deleted: wherever the
/// pass answers, it answers as `parse` does. It must answer often, or the
/// comparison would prove little.
#[test]
fn the_pass_agrees_with_parse_on_every_single_byte_mutation() {
    let (mut cases, mut answered) = (0, 0);
    for msg in BENCH {
        for i in 0..msg.len() {
            for c in [
                0u8, b'\t', b' ', b'\r', b'\n', b'"', b'%', b',', b'-', b'.', b'/', b'0', b'9',
                b':', b';', b'<', b'=', b'>', b'?', b'@', b'A', b'Z', b'[', b'a', b'z', b'~', 0x7f,
                0xc3, b'*', b'_', b'&', b'+', b'\\',
            ] {
                let mut m = msg.to_vec();
                m[i] = c;
                cases += 1;
                answered += usize::from(same_as_pass(&m));
            }
            let mut m = msg.to_vec();
            m.remove(i);
            cases += 1;
            answered += usize::from(same_as_pass(&m));
        }
    }
    println!("the pass answered {answered} of {cases} mutations");
    assert!(
        answered * 4 > cases,
        "the pass answered {answered} of {cases} mutations"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_pass_agrees_with_parse_on_mutated_requests(
        which in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..4),
    ) {
        let all = fixtures();
        let k = which.index(all.len() + 4 * BENCH.len());
        let base = if k < all.len() { all[k].clone() } else { BENCH[k % BENCH.len()].to_vec() };
        same_as_pass(&apply(base, &muts));
    }
}

/// Requests put together from the shapes of real ones: header order,
/// name spelling (case, compact forms), white space around the colon and
/// the commas, folds, display names, ports, parameters, several values
/// in one line or across lines, bodies; each choice is the usual shape
/// three times in four. The pass must answer as `parse` does wherever it
/// answers, and answer more than a fifth of them (one odd choice is
/// enough to send a request to `parse`).
#[test]
fn the_pass_agrees_with_parse_on_generated_requests() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut cases, mut answered) = (0, 0);
    for _ in 0..5000 {
        let method = r.pick(&["SUBSCRIBE", "PUBLISH", "NOTIFY", "OPTIONS", "INVITE", "FOO"]);
        let ruri = r.pick(&[
            "sip:2001@pbx.example.com",
            "sips:a@b.example.org:5061;transport=tls",
            "sip:192.0.2.7",
            "SIP:u%41@h-1.example.com;lr",
            "sip:u:pw@h.example.com",
            "tel:+15551234",
            "sip:[2001:db8::1]",
        ]);
        let mut headers: Vec<String> = Vec::new();
        let name = |full: &'static str, compact: Option<&'static str>, k: usize| -> String {
            match (k, compact) {
                (0, _) => full.to_string(),
                (1, _) => full.to_ascii_lowercase(),
                (2, _) => full.to_ascii_uppercase(),
                (_, Some(c)) => c.to_string(),
                _ => full.to_string(),
            }
        };
        let colon = r.pick(&[": ", ": ", ":", " : ", ":\t", ":  "]);
        let sep = r.pick(&[", ", ",", " , ", ",\r\n "]);
        let mut add = |h: String| headers.push(h);
        let hosts = [
            "192.0.2.10",
            "pc33.example.com",
            "[2001:db8::2]",
            "h_1.example.com",
        ];
        let ports = [":5060", "", ":65535", ":70000"];
        let vparams = [
            ";branch=z9hG4bK776asdhds",
            ";branch=z9hG4bK1;rport",
            ";rport;branch=z9hG4bKx;received=192.0.2.1",
            ";branch=z9hG4bK2;rport=5060;received=example.com",
            ";branch=\"z9hG4bKq\"",
            "",
        ];
        let one_via = |a: usize, b: usize, c: usize| {
            format!(
                "SIP/2.0/{} {}{}{}",
                ["UDP", "TCP", "TLS"][a % 3],
                hosts[a % hosts.len()],
                ports[b % ports.len()],
                vparams[c % vparams.len()]
            )
        };
        let v1 = one_via(r.w(9), r.w(9), r.w(9));
        let k = r.w(4);
        add(match r.n(3) {
            0 => format!("{}{colon}{v1}", name("Via", Some("v"), k)),
            1 => format!(
                "{}{colon}{v1}{sep}{}",
                name("Via", Some("v"), k),
                one_via(r.w(9), r.w(9), r.w(9))
            ),
            _ => format!(
                "{}{colon}{v1}\r\nVia: {}",
                name("Via", Some("v"), k),
                one_via(r.w(9), r.w(9), r.w(9))
            ),
        });
        let addr = |r: &mut Rng| {
            let d = ["", "\"Desk 2001\" ", "Bob ", "\"Q \\\"x\\\"\" ", "\"\" "][r.w(5)];
            let u = [
                "sip:2001@pbx.example.com",
                "sip:a@192.0.2.1:5070;transport=udp",
                "sips:b@c.example.com",
                "tel:+1",
            ][r.w(4)];
            let p = [
                "",
                ";tag=8d2f61c3",
                ";tag=1;x=y",
                ";TAG=ab",
                ";tag",
                ";x=\"a;b\";tag=2",
            ][r.w(6)];
            format!("{d}<{u}>{p}")
        };
        if r.n(10) > 0 {
            let a = addr(&mut r);
            add(format!("{}{colon}{a}", name("From", Some("f"), r.w(4))));
        }
        if r.n(10) > 0 {
            let a = addr(&mut r);
            add(format!("{}{colon}{a}", name("To", Some("t"), r.w(4))));
        }
        if r.n(10) > 0 {
            let c = r.pick(&[
                "5f1e2d3c@192.0.2.10",
                "abc",
                "a b",
                "x@y@z",
                "{}()<>:\\/?[]",
            ]);
            add(format!("{}{colon}{c}", name("Call-ID", Some("i"), r.w(4))));
        }
        if r.n(10) > 0 {
            let n = r.pick(&["1", "12", "4294967295", "4294967296", "007"]);
            let m = if r.n(4) == 0 { "ACK" } else { method };
            add(format!("{}{colon}{n} {m}", name("CSeq", None, r.w(3))));
        }
        if r.n(2) == 0 {
            add(format!(
                "{}{colon}{}",
                name("Max-Forwards", None, r.w(3)),
                r.pick(&["70", "0", "255", "256"])
            ));
        }
        for _ in 0..r.n(3) {
            let (hn, compact) = [
                ("Contact", Some("m")),
                ("Route", None),
                ("Record-Route", None),
            ][r.n(3)];
            let a = addr(&mut r);
            let v = match r.n(4) {
                0 => format!("{a}{sep}{}", addr(&mut r)),
                1 if hn == "Contact" => "*".to_string(),
                _ => a,
            };
            add(format!("{}{colon}{v}", name(hn, compact, r.w(4))));
        }
        let extra: &[(&'static str, Option<&'static str>, &[&'static str])] = &[
            ("Expires", None, &["3600", "0", "99999999999", "-1"]),
            ("Min-Expires", None, &["60", "x"]),
            ("Event", Some("o"), &["call-info", "call-info;id=7", "line-seize ; id = 2", "presence;x=\"y\""]),
            ("Allow-Events", Some("u"), &["call-info, line-seize", "a,b,,c", "x", "a ,\r\n b", "a b", "a,"]),
            ("Accept", None, &["application/x-call-info", "text/plain;q=0.5, */*", "a / b"]),
            ("Content-Type", Some("c"), &["application/x-call-info", "text/plain;charset=utf-8", "bad"]),
            ("Require", None, &["replaces", "a, b", "a;b"]),
            ("Supported", Some("k"), &["replaces, timer", "100rel", "a,\r\n\tb , c", "a, \"b\""]),
            ("Call-Info", None, &[
                "<sip:2001@pbx.example.com>;appearance-index=1;appearance-state=active",
                "<sip:a@b>;appearance-index=*;appearance-state=idle, <sip:a@b>;appearance-index=2",
                "<sip:a@b>;appearance-uri=\"\\\"A\\\" <sip:x@y>\"",
            ]),
            ("SIP-ETag", None, &["e1", "a b"]),
            ("SIP-If-Match", None, &["7f3a9c1e"]),
            ("Subscription-State", None, &["active;expires=3599", "terminated;reason=timeout", "pending;expires"]),
            ("User-Agent", None, &["ExamplePhone/5.2.1", "A\r\n  B"]),
            ("X-Extra", None, &["anything : goes", "x"]),
        ];
        for _ in 0..r.n(6) {
            let (hn, compact, vals) = extra[r.n(extra.len())];
            let v = vals[r.w(vals.len())];
            add(format!("{}{colon}{v}", name(hn, compact, r.w(4))));
        }
        let body = r.pick(&["", "", "", "hello"]);
        match r.n(5) {
            0 => {}
            1 => add(format!("Content-Length{colon}{}", body.len() + 1)),
            _ => add(format!(
                "{}{colon}{}",
                name("Content-Length", Some("l"), r.w(4)),
                body.len()
            )),
        }
        // Shuffle the header lines (Via stays a Via wherever it lands).
        for i in (1..headers.len()).rev() {
            headers.swap(i, r.n(i + 1));
        }
        let msg = format!(
            "{method} {ruri} SIP/2.0\r\n{}\r\n\r\n{body}",
            headers.join("\r\n")
        );
        cases += 1;
        answered += usize::from(same_as_pass(msg.as_bytes()));
        same_answers(msg.as_bytes());
    }
    println!("the pass answered {answered} of {cases} generated requests");
    assert!(
        answered * 5 > cases,
        "the pass answered {answered} of {cases}"
    );
}

/// xorshift64*: reproducible draws without a dependency.
struct Rng(u64);

impl Rng {
    /// A number below `n`.
    fn n(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    /// Below `n`: 0 (the usual shape) three times in four, else any.
    fn w(&mut self, n: usize) -> usize {
        if self.n(4) != 0 {
            0
        } else {
            self.n(n)
        }
    }

    /// One of `opts`, the first (the usual shape) three times in four.
    fn pick(&mut self, opts: &[&'static str]) -> &'static str {
        opts[self.w(opts.len())]
    }
}
