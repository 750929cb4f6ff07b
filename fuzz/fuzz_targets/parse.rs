//! Arbitrary bytes into every entry point of the `sip` crate: the framer,
//! the parser (datagram and stream), `parse_typed` (whose one-pass reader
//! must answer as the parser does), the request checks, every typed
//! accessor and the response writer. Nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sip::{check_request, frame_len, parse, Message, ResponseWriter};

fn touch(m: &Message<'_>) {
    let _ = check_request(m);
    let _ = m
        .request_uri()
        .map(sip::Uri::parse)
        .map(|u| u.map(|u| u.host()));
    if let Ok(vias) = m.vias() {
        for v in vias {
            let _ = (v.received_ip(), v.sent_by());
        }
    }
    let _ = m.via();
    for a in [m.from(), m.to()].into_iter().flatten().flatten() {
        let _ = a.parsed_uri();
    }
    let _ = (m.call_id(), m.cseq(), m.max_forwards());
    for list in [m.contacts(), m.record_routes(), m.routes()]
        .into_iter()
        .flatten()
    {
        for a in list {
            let _ = a.parsed_uri();
        }
    }
    let _ = (
        m.expires(),
        m.min_expires(),
        m.event(),
        m.allow_events(),
        m.accept(),
    );
    let _ = (
        m.content_type(),
        m.content_length(),
        m.require(),
        m.supported(),
    );
    let _ = (
        m.call_info(),
        m.sip_etag(),
        m.sip_if_match(),
        m.subscription_state(),
    );
    iterators(m);
    let mut out = Vec::new();
    let src = "192.0.2.1:5060".parse().ok();
    ResponseWriter::new(&mut out, m, 400, "Bad Request", src, Some("tag")).finish();
    let _ = parse(&out, true);
}

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data, 65_535);
    let _ = frame_len(data, 64);
    for stream in [false, true] {
        match parse(data, stream) {
            Ok(m) => {
                touch(&m);
                fast(data, stream, &m);
                typed(m);
            }
            Err(e) => assert_eq!(sip::parse_typed(data, stream).err(), Some(e)),
        }
    }
});

/// `parse_typed`, which takes the one-pass reader on a CPU with AVX-512
/// VBMI: the same message, and every answer the lazy path's.
fn fast(data: &[u8], stream: bool, m: &Message<'_>) {
    let p = sip::parse_typed(data, stream).expect("parse_typed takes what parse takes");
    assert_eq!(p.headers, m.headers);
    assert_eq!((&p.start, p.body), (&m.start, m.body));
    let tag = |a: Option<sip::NameAddr<'_>>| a.map(|a| a.tag().map(str::to_owned));
    assert_eq!(tag(p.from().ok().flatten()), tag(m.from().ok().flatten()));
    assert_eq!(tag(p.to().ok().flatten()), tag(m.to().ok().flatten()));
    assert_eq!(p.content_length(), m.content_length());
    assert!(p.supported_iter().eq(m.supported_iter()));
    assert_eq!(p.subscription_state(), m.subscription_state());
    same_as_lazy(&p, m);
}

/// The allocation-free accessors, and every parameter of what they yield.
fn iterators(m: &Message<'_>) {
    let walk = |p: sip::Params<'_>| p.iter().map(|p| p.name.len()).sum::<usize>() + p.len();
    for v in m.vias_iter().flatten() {
        let _ = (walk(v.params), v.params.get("branch"), v.received_ip());
    }
    for a in m
        .contacts_iter()
        .chain(m.record_routes_iter())
        .chain(m.routes_iter())
        .flatten()
    {
        let _ = (walk(a.params), a.tag());
        if let Ok(u) = a.parsed_uri() {
            let _ = (walk(u.params), u.transport());
        }
    }
    for c in m.call_info_iter().flatten() {
        let _ = (walk(c.params), c.appearance_index);
    }
    let _ = m
        .require_iter()
        .chain(m.supported_iter())
        .chain(m.allow_events_iter())
        .chain(m.accept_iter())
        .chain(m.sip_if_match_iter())
        .count();
    if let Ok(Some(e)) = m.event() {
        let _ = walk(e.params);
    }
    if let Ok(Some(c)) = m.content_type() {
        let _ = walk(c.params);
    }
}

/// The single-pass typed parse: its check and remembered values must be
/// those of the lazy path.
fn typed(m: Message<'_>) {
    same_as_lazy(&sip::Parsed::new(m.clone()), &m);
}

/// What `Parsed` remembers, against the lazy accessors of `m`.
fn same_as_lazy(p: &sip::Parsed<'_>, m: &Message<'_>) {
    assert_eq!(p.check(), check_request(m));
    assert_eq!(p.via(), m.via());
    assert_eq!((p.from(), p.to()), (m.from(), m.to()));
    assert_eq!((p.call_id(), p.cseq()), (m.call_id(), m.cseq()));
    assert_eq!(
        (p.expires(), p.max_forwards()),
        (m.expires(), m.max_forwards())
    );
    assert_eq!((p.event(), p.content_type()), (m.event(), m.content_type()));
    assert!(p.vias_iter().eq(m.vias_iter()));
    assert!(p.contacts_iter().eq(m.contacts_iter()));
    assert!(p.routes_iter().eq(m.routes_iter()));
    assert!(p.record_routes_iter().eq(m.record_routes_iter()));
    assert!(p.call_info_iter().eq(m.call_info_iter()));
}
