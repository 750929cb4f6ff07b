//! Arbitrary bytes into every entry point of the `sip` crate: the framer,
//! the parser (datagram and stream), the request checks, every typed
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
    let mut out = Vec::new();
    let src = "192.0.2.1:5060".parse().ok();
    ResponseWriter::new(&mut out, m, 400, "Bad Request", src, Some("tag")).finish();
    let _ = parse(&out, true);
}

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data, 65_535);
    let _ = frame_len(data, 64);
    for stream in [false, true] {
        if let Ok(m) = parse(data, stream) {
            touch(&m);
        }
    }
});
