//! No input makes the parser, the framer, the checks, any typed accessor or
//! the response writer panic: random bytes, and random mutations of the
//! torture messages.

use proptest::prelude::*;
use sip::{check_request, frame_len, parse, Message, ResponseWriter};

fn fixtures() -> &'static [Vec<u8>] {
    static ALL: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    ALL.get_or_init(load_fixtures)
}

fn load_fixtures() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/torture", env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for sub in ["rfc4475", "rfc5118"] {
        let mut paths: Vec<_> = std::fs::read_dir(format!("{dir}/{sub}"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            all.push(std::fs::read(p).unwrap());
        }
    }
    all
}

/// Every accessor, every parsed URI and host, and a response written back.
fn touch_everything(m: &Message<'_>) {
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
    let _ = m.elements(sip::HeaderName::Via).count();
    iterators(m);
    let mut out = Vec::new();
    let src = "[2001:db8::1]:5060".parse().ok();
    ResponseWriter::new(&mut out, m, 400, "Bad Request", src, Some("t")).finish();
    let _ = parse(&out, true);
}

fn everything(bytes: &[u8]) {
    let _ = frame_len(bytes, 4096);
    let _ = frame_len(bytes, 16);
    for stream in [false, true] {
        if let Ok(m) = parse(bytes, stream) {
            touch_everything(&m);
            // The remembered values must agree with the lazy ones.
            let p = sip::Parsed::new(m.clone());
            assert_eq!(p.check(), check_request(&m));
            assert_eq!(p.via(), m.via());
            assert_eq!(p.from(), m.from());
            assert_eq!(p.to(), m.to());
            assert_eq!(p.cseq(), m.cseq());
            assert_eq!(p.event(), m.event());
            assert_eq!(
                p.contacts_iter().collect::<Vec<_>>(),
                m.contacts_iter().collect::<Vec<_>>()
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that matter to the grammar, so mutations hit the parsers' edges.
    let special = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r\n ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b";".to_vec()),
        Just(b",".to_vec()),
        Just(b"<".to_vec()),
        Just(b">".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b":".to_vec()),
        Just(b"=".to_vec()),
        Just(b"%".to_vec()),
        Just("é".as_bytes().to_vec()),
        Just(vec![0xff]),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), special).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
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
            Mutation::Truncate(i) => b.truncate(i % (b.len() + 1)),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        everything(&bytes);
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        which in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let all = fixtures();
        let base = all[which.index(all.len())].clone();
        everything(&apply(base, &muts));
    }
}

#[test]
fn unmutated_torture_messages_never_panic() {
    for f in fixtures() {
        everything(f);
    }
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
