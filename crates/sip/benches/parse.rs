//! Message-layer cost for the three requests the server sees most, each
//! measured in the same run as:
//! (a) `lines`: only cutting the bytes into lines (a floor for any parser),
//! (a') `lines_memchr`: the same cut with `memchr` finding each LF,
//! `parse_only`: `parse`,
//! (b) `parse_check_access`: `parse_typed` + `Parsed::check` + every typed
//!     accessor of `Parsed`, lists read through the allocation-free `*_iter`
//!     accessors and every parameter list walked in full (on a CPU with
//!     AVX-512 VBMI `parse_typed` takes the one-pass reader `pass`; under
//!     valgrind, which has no AVX-512, it takes `parse` + `Parsed::new`),
//!     (`parse_check_access_listed`: the same reading only what the issue
//!     lists, without walking every parameter list in full;
//!     `parse_check_access_lazy`: the same on a plain `Message` with
//!     `check_request`; `parse_check_access_vec`: that with the `Vec`
//!     accessors),
//! (c) `write`: building the same request with `RequestWriter` into a reused Vec.
//!
//! Run: `cargo bench -p sip --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! More modes of the same binary, for a loaded machine and for checks:
//! `SIP_BENCH_BEST=1` prints the best of 400 batches of 200 calls per case
//! (with `check_only` and `access_only` on a message parsed beforehand),
//! and `SIP_BENCH_COUNT=message:case:n` runs one case n times for
//! `valgrind --tool=callgrind` (instructions per call = difference between
//! two values of n divided by their difference).

use criterion::{black_box, criterion_group, Criterion};
use sip::{
    check_request, parse, parse_typed, HeaderName, Message, Method, NameAddr, Parsed, RequestWriter,
};

const SUBSCRIBE: &[u8] = b"SUBSCRIBE sip:2001@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---7f3a9c1e2b4d;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:2001@192.0.2.10:5060;transport=udp>\r\n\
To: <sip:2001@pbx.example.com>\r\n\
From: \"Desk 2001\" <sip:2001@pbx.example.com>;tag=8d2f61c3\r\n\
Call-ID: 5f1e2d3c4b5a69788796a5b4c3d2e1f0@192.0.2.10\r\n\
CSeq: 12 SUBSCRIBE\r\n\
Expires: 3600\r\n\
Accept: application/x-call-info\r\n\
Allow-Events: call-info, line-seize, message-summary\r\n\
Supported: replaces, timer\r\n\
User-Agent: ExamplePhone/5.2.1\r\n\
Event: call-info\r\n\
Content-Length: 0\r\n\r\n";

const PUBLISH: &[u8] = b"PUBLISH sip:2001@pbx.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 192.0.2.11:5060;branch=z9hG4bK-d8754z-3c9b2a1f0e8d;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:2001@pbx.example.com>\r\n\
From: \"Desk 2002\" <sip:2002@pbx.example.com>;tag=91b0c2de\r\n\
Call-ID: 0a1b2c3d4e5f60718293a4b5c6d7e8f9@192.0.2.11\r\n\
CSeq: 3 PUBLISH\r\n\
Call-Info: <sip:2001@pbx.example.com>;appearance-index=1;appearance-state=active;\r\n \
appearance-uri=\"\\\"Alice\\\" <sip:alice@example.net>\",\r\n \
<sip:2001@pbx.example.com>;appearance-index=2;appearance-state=seized\r\n\
SIP-If-Match: 7f3a9c1e\r\n\
Expires: 60\r\n\
Event: call-info\r\n\
Require: replaces\r\n\
User-Agent: ExamplePhone/5.2.1\r\n\
Content-Length: 0\r\n\r\n";

const NOTIFY: &[u8] = b"NOTIFY sip:2001@192.0.2.10:5060;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK.n0t1fy.2b4d6f8a\r\n\
Max-Forwards: 70\r\n\
Record-Route: <sip:198.51.100.5;lr>\r\n\
Route: <sip:proxy.example.com;lr>\r\n\
From: <sip:2001@pbx.example.com>;tag=srv-83fa01\r\n\
To: <sip:2001@pbx.example.com>;tag=8d2f61c3\r\n\
Call-ID: 5f1e2d3c4b5a69788796a5b4c3d2e1f0@192.0.2.10\r\n\
CSeq: 7 NOTIFY\r\n\
Contact: <sip:sca@198.51.100.5:5060>\r\n\
Event: call-info;id=7\r\n\
Subscription-State: active;expires=3599\r\n\
Call-Info: <sip:2001@pbx.example.com>;appearance-index=*;appearance-state=idle\r\n\
SIP-ETag: e1\r\n\
Content-Type: application/x-call-info\r\n\
Content-Length: 0\r\n\r\n";

/// Baseline: cut at CRLF with a plain byte loop, summing line lengths.
fn split_lines(b: &[u8]) -> usize {
    let mut sum = 0;
    let mut start = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\r' && b[i + 1] == b'\n' {
            sum += i - start;
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    sum + b.len() - start
}

/// A faster floor: find each LF with `memchr` (the parser's own line finder),
/// summing line lengths without the CR.
fn split_lines_memchr(b: &[u8]) -> usize {
    let mut sum = 0;
    let mut start = 0;
    for lf in memchr::memchr_iter(b'\n', b) {
        sum += lf.saturating_sub(start + 1);
        start = lf + 1;
    }
    sum + b.len() - start
}

/// Parse, check, and read every header the server has a typed view of,
/// through the allocation-free accessors (the server's hot path): the
/// single-pass typed parse, `Parsed::check` and `Parsed`'s accessors.
fn full(b: &[u8]) -> usize {
    let m = parse_typed(b, false).expect("bench message parses");
    m.check().expect("bench message is valid");
    access(&m)
}

/// [`full`] with only the values the issue lists read: the parameters it
/// names (branch, received, rport, tag, id, appearance-*), not every
/// parameter of every list. The pass has checked every parameter either way.
fn full_listed(b: &[u8]) -> usize {
    let m = parse_typed(b, false).expect("bench message parses");
    m.check().expect("bench message is valid");
    access_listed(&m)
}

/// The same on a plain `Message`: `parse`, `check_request` and the lazy
/// accessors of `Message`, which read each header again.
fn full_lazy(b: &[u8]) -> usize {
    let m = parse(b, false).expect("bench message parses");
    check_request(&m).expect("bench message is valid");
    access_lazy(&m)
}

/// The same with the `Vec`-returning accessors, for comparison.
fn full_vec(b: &[u8]) -> usize {
    let m = parse(b, false).expect("bench message parses");
    check_request(&m).expect("bench message is valid");
    access_vec(&m)
}

fn len(s: Option<&str>) -> usize {
    s.map_or(0, str::len)
}

fn addr(a: &NameAddr<'_>, walk: fn(sip::Params<'_>) -> usize) -> usize {
    a.uri.len() + len(a.tag()) + len(a.display) + walk(a.params)
}

/// Every header the issue lists, through the `_iter` accessors; each value
/// read is folded into the result so none of it can be optimised away.
/// `$walk` sees every parameter list met on the way: [`walk`] reads every
/// name and value (so lazy parameter views cannot skip work), [`skip`]
/// none (the list alone: the named parameters).
macro_rules! access_body {
    ($m:expr, $walk:expr) => {{
        let m = $m;
        let walk: fn(sip::Params<'_>) -> usize = $walk;
        let mut n = 0;
        for v in m.vias_iter().flatten() {
            n += len(v.branch)
                + len(v.received)
                + v.rport.map_or(0, |p| 1 + p.unwrap_or(0) as usize)
                + walk(v.params);
        }
        n += m.from().ok().flatten().map_or(0, |a| addr(&a, walk));
        n += m.to().ok().flatten().map_or(0, |a| addr(&a, walk));
        n += len(m.call_id().ok().flatten());
        n += m
            .cseq()
            .ok()
            .flatten()
            .map_or(0, |c| c.seq as usize + c.method.len());
        n += m.max_forwards().ok().flatten().unwrap_or(0) as usize;
        n += m
            .contacts_iter()
            .flatten()
            .map(|a| addr(&a, walk))
            .sum::<usize>();
        n += m
            .record_routes_iter()
            .flatten()
            .map(|a| addr(&a, walk))
            .sum::<usize>();
        n += m
            .routes_iter()
            .flatten()
            .map(|a| addr(&a, walk))
            .sum::<usize>();
        n += m.expires().ok().flatten().unwrap_or(0) as usize;
        n += m.min_expires().ok().flatten().unwrap_or(0) as usize;
        n += m
            .event()
            .ok()
            .flatten()
            .map_or(0, |e| e.package.len() + len(e.id) + walk(e.params));
        n += m.allow_events_iter().flatten().map(str::len).sum::<usize>();
        n += m.accept_iter().flatten().map(str::len).sum::<usize>();
        n += m
            .content_type()
            .ok()
            .flatten()
            .map_or(0, |c| c.media.len() + walk(c.params));
        n += m.content_length().ok().flatten().unwrap_or(0) as usize;
        n += m.require_iter().flatten().map(str::len).sum::<usize>();
        n += m.supported_iter().flatten().map(str::len).sum::<usize>();
        for ci in m.call_info_iter().flatten() {
            n += ci.uri.len()
                + len(ci.appearance_index)
                + len(ci.appearance_state)
                + len(ci.appearance_uri)
                + walk(ci.params);
        }
        n += len(m.sip_etag().ok().flatten());
        n += m.sip_if_match_iter().flatten().map(str::len).sum::<usize>();
        n += m
            .subscription_state()
            .ok()
            .flatten()
            .map_or(0, |s| s.expires.unwrap_or(0) as usize);
        n
    }};
}

fn access(m: &Parsed<'_>) -> usize {
    access_body!(m, walk)
}

/// [`access`] without the full parameter walks: exactly the list.
fn access_listed(m: &Parsed<'_>) -> usize {
    access_body!(m, skip)
}

fn access_lazy(m: &Message<'_>) -> usize {
    access_body!(m, walk)
}

fn walk(p: sip::Params<'_>) -> usize {
    p.iter().map(|p| p.name.len() + len(p.value)).sum()
}

fn skip(_: sip::Params<'_>) -> usize {
    0
}

/// [`access`] through the `Vec`-returning accessors.
fn access_vec(m: &Message<'_>) -> usize {
    let mut n = 0;
    for v in m.vias().unwrap_or_default() {
        n += len(v.branch)
            + len(v.received)
            + v.rport.map_or(0, |p| 1 + p.unwrap_or(0) as usize)
            + walk(v.params);
    }
    n += m.from().ok().flatten().map_or(0, |a| addr(&a, walk));
    n += m.to().ok().flatten().map_or(0, |a| addr(&a, walk));
    n += len(m.call_id().ok().flatten());
    n += m
        .cseq()
        .ok()
        .flatten()
        .map_or(0, |c| c.seq as usize + c.method.len());
    n += m.max_forwards().ok().flatten().unwrap_or(0) as usize;
    for list in [m.contacts(), m.record_routes(), m.routes()] {
        n += list
            .unwrap_or_default()
            .iter()
            .map(|a| addr(a, walk))
            .sum::<usize>();
    }
    n += m.expires().ok().flatten().unwrap_or(0) as usize;
    n += m.min_expires().ok().flatten().unwrap_or(0) as usize;
    n += m
        .event()
        .ok()
        .flatten()
        .map_or(0, |e| e.package.len() + len(e.id) + walk(e.params));
    for list in [m.allow_events(), m.accept()] {
        n += list
            .unwrap_or_default()
            .iter()
            .map(|s| s.len())
            .sum::<usize>();
    }
    n += m
        .content_type()
        .ok()
        .flatten()
        .map_or(0, |c| c.media.len() + walk(c.params));
    n += m.content_length().ok().flatten().unwrap_or(0) as usize;
    for list in [m.require(), m.supported()] {
        n += list
            .unwrap_or_default()
            .iter()
            .map(|s| s.len())
            .sum::<usize>();
    }
    for ci in m.call_info().unwrap_or_default() {
        n += ci.uri.len()
            + len(ci.appearance_index)
            + len(ci.appearance_state)
            + len(ci.appearance_uri)
            + walk(ci.params);
    }
    n += len(m.sip_etag().ok().flatten());
    n += m
        .sip_if_match()
        .unwrap_or_default()
        .iter()
        .map(|s| s.len())
        .sum::<usize>();
    n += m
        .subscription_state()
        .ok()
        .flatten()
        .map_or(0, |s| s.expires.unwrap_or(0) as usize);
    n
}

/// Write the parsed message back out with `RequestWriter`, header by header
/// (values copied from the parsed message, prepared before timing).
fn write(out: &mut Vec<u8>, method: Method<'_>, uri: &str, headers: &[(HeaderName<'_>, &str)]) {
    out.clear();
    let mut w = RequestWriter::new(out, method, uri);
    for (name, value) in headers {
        w = w.header(*name, value);
    }
    w.finish();
}

fn bench(c: &mut Criterion) {
    for (name, bytes) in [
        ("subscribe", SUBSCRIBE),
        ("publish", PUBLISH),
        ("notify", NOTIFY),
    ] {
        assert_eq!(full(bytes), full_vec(bytes));
        assert!(full_listed(bytes) > 0 && full_listed(bytes) < full(bytes));
        assert_eq!(full(bytes), full_lazy(bytes));
        assert_eq!(split_lines(bytes), split_lines_memchr(bytes));
        let mut g = c.benchmark_group(name);
        g.bench_function("lines", |b| b.iter(|| split_lines(black_box(bytes))));
        g.bench_function("lines_memchr", |b| {
            b.iter(|| split_lines_memchr(black_box(bytes)))
        });
        g.bench_function("parse_check_access", |b| b.iter(|| full(black_box(bytes))));
        g.bench_function("parse_check_access_listed", |b| {
            b.iter(|| full_listed(black_box(bytes)))
        });
        g.bench_function("parse_check_access_vec", |b| {
            b.iter(|| full_vec(black_box(bytes)))
        });
        g.bench_function("parse_check_access_lazy", |b| {
            b.iter(|| full_lazy(black_box(bytes)))
        });
        g.bench_function("parse_only", |b| {
            b.iter(|| parse(black_box(bytes), false).map(|m| m.headers.len()))
        });
        let parsed = parse_typed(bytes, false).expect("bench message parses");
        g.bench_function("check_only", |b| b.iter(|| black_box(&parsed).check()));
        g.bench_function("access_only", |b| b.iter(|| access(black_box(&parsed))));
        let m = parse(bytes, false).expect("bench message parses");
        let headers: Vec<_> = m
            .headers
            .iter()
            .filter(|h| h.name != HeaderName::ContentLength)
            .map(|h| (h.name, h.value))
            .collect();
        let (method, uri) = (
            m.method().expect("request"),
            m.request_uri().expect("request"),
        );
        let mut out = Vec::with_capacity(2048);
        g.bench_function("write", |b| {
            b.iter(|| {
                write(&mut out, method, uri, black_box(&headers));
                out.len()
            })
        });
        g.finish();
    }
}

/// Run one case `n` times without criterion, for instruction counts:
/// `SIP_BENCH_COUNT=notify:full:1000 valgrind --tool=callgrind <bench binary>`
/// (the difference between two values of `n`, divided by their difference,
/// is the cost of one call).
fn count(spec: &str) {
    let mut it = spec.split(':');
    let (Some(msg), Some(case), Some(n)) = (it.next(), it.next(), it.next()) else {
        panic!("SIP_BENCH_COUNT=message:case:n");
    };
    let n: usize = n.parse().expect("n is a number");
    let bytes = match msg {
        "subscribe" => SUBSCRIBE,
        "publish" => PUBLISH,
        "notify" => NOTIFY,
        other => panic!("unknown message {other}"),
    };
    let f: fn(&[u8]) -> usize = match case {
        "lines" => split_lines,
        "lines_memchr" => split_lines_memchr,
        "parse_only" => |b| parse(b, false).map_or(0, |m| m.headers.len()),
        "full" => full,
        "full_listed" => full_listed,
        "full_vec" => full_vec,
        "full_lazy" => full_lazy,
        "parse_typed" => |b| parse_typed(b, false).map_or(0, |m| m.headers.len()),
        "check" => |b| parse_typed(b, false).map_or(0, |m| usize::from(m.check().is_ok())),
        other => panic!("unknown case {other}"),
    };
    let mut sum = 0;
    for _ in 0..n {
        sum += f(black_box(bytes));
    }
    println!("{sum}");
}

criterion_group!(benches, bench);

/// The best of 400 batches of 200 calls of `f`, in ns per call.
fn best_of(mut f: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0;
    for _ in 0..400 {
        let t = std::time::Instant::now();
        for _ in 0..200 {
            sink += f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / 200.0);
    }
    black_box(sink);
    best
}

/// A named case of the benchmark.
type Case = (&'static str, fn(&[u8]) -> usize);

/// The best of 400 batches of 200 calls, in ns per call, for every case:
/// on a loaded machine the fastest batch is the one nobody preempted.
/// `SIP_BENCH_BEST=1 <bench binary>`.
fn best_batches() {
    let cases: [Case; 9] = [
        ("lines", split_lines),
        ("lines_memchr", split_lines_memchr),
        ("parse_only", |b| {
            parse(b, false).map_or(0, |m| m.headers.len())
        }),
        ("parse_typed", |b| {
            parse_typed(b, false).map_or(0, |m| m.headers.len())
        }),
        ("parse_typed_check", |b| {
            parse_typed(b, false).map_or(0, |m| usize::from(m.check().is_ok()))
        }),
        ("full", full),
        ("full_listed", full_listed),
        ("full_lazy", full_lazy),
        ("full_vec", full_vec),
    ];
    for (name, bytes) in [
        ("subscribe", SUBSCRIBE),
        ("publish", PUBLISH),
        ("notify", NOTIFY),
    ] {
        for (case, f) in cases {
            println!("{name} {case} {:.0}", best_of(|| f(black_box(bytes))));
        }
        let parsed = parse_typed(bytes, false).expect("bench message parses");
        let parts: [(&str, &dyn Fn() -> usize); 2] = [
            ("check_only", &|| {
                usize::from(black_box(&parsed).check().is_ok())
            }),
            ("access_only", &|| access(black_box(&parsed))),
        ];
        for (case, f) in parts {
            println!("{name} {case} {:.0}", best_of(f));
        }
        let m = parse(bytes, false).expect("bench message parses");
        let headers: Vec<_> = m
            .headers
            .iter()
            .filter(|h| h.name != HeaderName::ContentLength)
            .map(|h| (h.name, h.value))
            .collect();
        let (method, uri) = (
            m.method().expect("request"),
            m.request_uri().expect("request"),
        );
        let mut out = Vec::with_capacity(2048);
        let best = best_of(|| {
            write(&mut out, method, uri, black_box(&headers));
            out.len()
        });
        println!("{name} write {best:.0}");
    }
}

fn main() {
    if std::env::var("SIP_BENCH_BEST").is_ok() {
        best_batches();
        return;
    }
    if let Ok(spec) = std::env::var("SIP_BENCH_COUNT") {
        count(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
