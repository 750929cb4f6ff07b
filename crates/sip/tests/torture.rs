//! The RFC 4475 and RFC 5118 torture messages (see `torture/README.md`), one
//! test each, asserting at the message layer what a UAS must do with them.
//!
//! Choices for the messages RFC 4475 lets go either way (lwsstart, trws,
//! baddate, unksm2): all four are accepted. Extra white space in the request
//! line is skipped, a Date is never judged, and From/To/Contact may carry any
//! well-formed URI scheme.

use sip::{check_request, frame_len, parse, FrameError, HeaderName, Message, Method, ParseError};
use std::net::IpAddr;

fn load(path: &str) -> Vec<u8> {
    let full = format!("{}/tests/torture/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Parse a message that must be processed normally (UDP framing), check
/// it, read its key headers, and hand it to `f` for specific assertions.
fn valid(path: &str, f: impl FnOnce(&Message<'_>)) {
    let bytes = load(path);
    let m = parse(&bytes, false).unwrap_or_else(|e| panic!("{path}: {e}"));
    if m.is_request() {
        check_request(&m).unwrap_or_else(|e| panic!("{path}: {} {}", e.status, e.reason));
    }
    assert!(m.via().unwrap().is_some(), "{path}: top Via");
    assert!(m.from().unwrap().is_some(), "{path}: From");
    assert!(m.to().unwrap().is_some(), "{path}: To");
    assert!(m.call_id().unwrap().is_some(), "{path}: Call-ID");
    assert!(m.cseq().unwrap().is_some(), "{path}: CSeq");
    f(&m);
}

/// A request that must be refused with `status`: either it does not parse
/// (which the server answers 400) or `check_request` says so. Returns the
/// reason phrase, or the parse error's text.
fn refused(path: &str, status: u16) -> String {
    let bytes = load(path);
    match parse(&bytes, false) {
        Err(e) => {
            assert_eq!(
                status, 400,
                "{path}: parse failed ({e}) but {status} expected"
            );
            e.to_string()
        }
        Ok(m) => {
            let e = check_request(&m).expect_err(path);
            assert_eq!(e.status, status, "{path}: {}", e.reason);
            e.reason.into_owned()
        }
    }
}

fn parse_error(path: &str) -> ParseError {
    parse(&load(path), false).expect_err(path)
}

// ---- RFC 4475 §3.1.1: valid messages -------------------------------------

#[test]
fn wsinv() {
    valid("rfc4475/wsinv.dat", |m| {
        let to = m.to().unwrap().unwrap();
        assert_eq!(to.uri, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(to.tag(), Some("1918181833n"));
        let from = m.from().unwrap().unwrap();
        assert_eq!(from.display, Some(r#"J Rosenberg \\\""#));
        assert_eq!(from.tag(), Some("98asjd8"));
        assert_eq!(m.max_forwards().unwrap(), Some(68));
        let cseq = m.cseq().unwrap().unwrap();
        assert_eq!((cseq.seq, cseq.method), (9, "INVITE"));
        let vias = m.vias().unwrap();
        let got: Vec<_> = vias
            .iter()
            .map(|v| (v.transport, v.host, v.branch))
            .collect();
        assert_eq!(
            got,
            vec![
                ("UDP", "192.0.2.2", Some("390skdjuw")),
                ("TCP", "spindle.example.com", Some("z9hG4bK9ikj8")),
                ("UDP", "192.168.255.111", Some("z9hG4bK30239")),
            ]
        );
        let contact = &m.contacts().unwrap()[0];
        assert_eq!(contact.display, Some(r#"Quoted string \"\""#));
        assert_eq!(contact.params.get("newparam"), Some(Some("newvalue")));
        assert_eq!(contact.params.get("secondparam"), Some(None));
        assert_eq!(contact.params.get("q"), Some(Some("0.33")));
        assert_eq!(m.routes().unwrap().len(), 1);
        assert_eq!(m.content_length().unwrap(), Some(150));
        assert_eq!(m.body.len(), 150);
        assert_eq!(m.content_type().unwrap().unwrap().media, "application/sdp");
    });
}

#[test]
fn intmeth() {
    valid("rfc4475/intmeth.dat", |m| {
        let method = "!interesting-Method0123456789_*+`.%indeed'~";
        assert_eq!(m.method(), Some(Method::Other(method)));
        assert_eq!(m.cseq().unwrap().unwrap().method, method);
        assert_eq!(m.max_forwards().unwrap(), Some(255));
        let from = m.from().unwrap().unwrap();
        assert_eq!(from.display, Some("token1~` token2'+_ token3*%!.-"));
        assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
        assert_eq!(
            m.call_id().unwrap(),
            Some(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#)
        );
        assert_eq!(
            m.to().unwrap().unwrap().display,
            Some("BEL:\\\x07 NUL:\\\0 DEL:\\\x7f")
        );
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.host, "example.com");
        assert_eq!(
            m.via().unwrap().unwrap().branch,
            Some("z9hG4bK-.!%66*_+`'~")
        );
    });
}

#[test]
fn esc01() {
    valid("rfc4475/esc01.dat", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.user, Some("sips%3Auser%40example.com"));
        assert_eq!(ruri.host, "example.net");
        let c = m.contacts().unwrap();
        assert_eq!(
            c[0].uri,
            "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
        );
        assert_eq!(m.content_type().unwrap().unwrap().media, "application/sdp");
        assert_eq!(
            m.call_id().unwrap(),
            Some("esc01.239409asdfakjkn23onasd0-3234")
        );
    });
}

#[test]
fn escnull() {
    valid("rfc4475/escnull.dat", |m| {
        let c = m.contacts().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].uri, "sip:%00%00@host5.example.com");
    });
}

#[test]
fn esc02() {
    valid("rfc4475/esc02.dat", |m| {
        assert_eq!(m.method(), Some(Method::Other("RE%47IST%45R")));
        // `C%6Fntact` is some other header, not Contact.
        assert_eq!(m.contacts().unwrap().len(), 2);
        assert_eq!(
            m.header(HeaderName::Other("C%6Fntact")),
            Some("<sip:alias2@host2.example.com>")
        );
        assert_eq!(m.from().unwrap().unwrap().display, Some("%Z%45"));
    });
}

#[test]
fn lwsdisp() {
    valid("rfc4475/lwsdisp.dat", |m| {
        let from = m.from().unwrap().unwrap();
        assert_eq!(from.display, Some("caller"));
        assert_eq!(from.uri, "sip:caller@example.com");
        assert_eq!(from.tag(), Some("323"));
    });
}

#[test]
fn longreq() {
    valid("rfc4475/longreq.dat", |m| {
        let vias = m.vias().unwrap();
        assert_eq!(vias.len(), 34);
        assert_eq!(vias[0].host, "sip33.example.com");
        assert_eq!(vias[33].host, "host.example.com");
        assert_eq!(m.from().unwrap().unwrap().tag().map(str::len), Some(155));
        assert_eq!(
            m.to().unwrap().unwrap().parsed_uri().unwrap().port,
            Some(6000)
        );
        assert_eq!(m.body.len(), 150);
    });
}

#[test]
fn dblreq() {
    // Only the first request counts; the octets after it are ignored.
    valid("rfc4475/dblreq.dat", |m| {
        assert_eq!(m.method(), Some(Method::Register));
        assert_eq!(
            m.call_id().unwrap(),
            Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412")
        );
        assert!(m.body.is_empty());
    });
}

#[test]
fn semiuri() {
    valid("rfc4475/semiuri.dat", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.user, Some("user;par=u%40example.net"));
        assert_eq!(ruri.host, "example.com");
        assert!(ruri.params.is_empty());
        assert_eq!(
            m.accept().unwrap(),
            vec![
                "application/sdp",
                "application/pkcs7-mime",
                "multipart/mixed",
                "multipart/signed",
                "message/sip",
                "message/sipfrag"
            ]
        );
    });
}

#[test]
fn transports() {
    valid("rfc4475/transports.dat", |m| {
        let t: Vec<_> = m.vias().unwrap().iter().map(|v| v.transport).collect();
        assert_eq!(t, vec!["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
        assert_eq!(
            m.call_id().unwrap(),
            Some("transports.kijh4akdnaqjkwendsasfdj")
        );
    });
}

#[test]
fn mpart01() {
    valid("rfc4475/mpart01.dat", |m| {
        assert_eq!(m.body.len(), 553);
        let ct = m.content_type().unwrap().unwrap();
        assert_eq!(ct.media, "multipart/mixed");
        assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
        assert_eq!(m.via().unwrap().unwrap().rport, Some(None));
    });
}

#[test]
fn unreason() {
    valid("rfc4475/unreason.dat", |m| {
        assert_eq!(m.status(), Some(200));
        match &m.start {
            sip::StartLine::Response { reason, .. } => {
                assert!(reason.starts_with("= 2**3 * 5**2 "));
                assert!(!reason.is_ascii());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.body.len(), 154);
    });
}

#[test]
fn noreason() {
    valid("rfc4475/noreason.dat", |m| {
        assert_eq!(
            m.start,
            sip::StartLine::Response {
                code: 100,
                reason: "",
                version: "SIP/2.0"
            }
        );
    });
}

#[test]
fn zeromf() {
    valid("rfc4475/zeromf.dat", |m| {
        assert_eq!(m.max_forwards().unwrap(), Some(0))
    });
}

#[test]
fn cparam01() {
    valid("rfc4475/cparam01.dat", |m| {
        let c = &m.contacts().unwrap()[0];
        assert_eq!(c.uri, "sip:+19725552222@gw1.example.net");
        assert_eq!(c.params.get("unknownparam"), Some(None));
    });
}

#[test]
fn cparam02() {
    valid("rfc4475/cparam02.dat", |m| {
        let c = &m.contacts().unwrap()[0];
        assert_eq!(c.uri, "sip:+19725552222@gw1.example.net;unknownparam");
        assert!(c.params.is_empty());
        assert!(c.parsed_uri().unwrap().params.has("unknownparam"));
    });
}

#[test]
fn regescrt() {
    valid("rfc4475/regescrt.dat", |m| {
        let c = &m.contacts().unwrap()[0];
        assert_eq!(
            c.parsed_uri().unwrap().headers,
            Some("Route=%3Csip:sip.example.com%3E")
        );
    });
}

#[test]
fn inv2543() {
    // RFC 2543 syntax: no branch, no From tag, no Max-Forwards, and (on UDP)
    // no Content-Length. Accepted.
    valid("rfc4475/inv2543.dat", |m| {
        assert_eq!(m.via().unwrap().unwrap().branch, None);
        assert_eq!(m.from().unwrap().unwrap().tag(), None);
        assert_eq!(m.max_forwards().unwrap(), None);
        assert_eq!(m.body.len(), 105);
        assert_eq!(m.record_routes().unwrap().len(), 1);
    });
    // On a stream the missing Content-Length cannot be framed.
    assert!(parse(&load("rfc4475/inv2543.dat"), true).is_err());
}

// ---- Invalid: 400 --------------------------------------------------------

#[test]
fn badinv01() {
    assert_eq!(
        refused("rfc4475/badinv01.dat", 400),
        "Bad Via: empty parameter"
    );
}

#[test]
fn clerr() {
    // UDP: the body is shorter than Content-Length.
    assert_eq!(parse_error("rfc4475/clerr.dat"), ParseError::Truncated);
    refused("rfc4475/clerr.dat", 400);
    // TCP: wait for the rest.
    assert_eq!(
        frame_len(&load("rfc4475/clerr.dat"), 65_535),
        Err(FrameError::Incomplete)
    );
}

#[test]
fn ncl() {
    assert!(matches!(
        parse_error("rfc4475/ncl.dat"),
        ParseError::ContentLength(_)
    ));
    assert!(matches!(
        frame_len(&load("rfc4475/ncl.dat"), 65_535),
        Err(FrameError::Invalid(_))
    ));
}

#[test]
fn scalar02() {
    assert_eq!(
        refused("rfc4475/scalar02.dat", 400),
        "Bad CSeq: number out of range"
    );
    let bytes = load("rfc4475/scalar02.dat");
    let m = parse(&bytes, false).unwrap();
    // A too-large Expires clamps; Max-Forwards 300 is an error.
    assert_eq!(m.expires().unwrap(), Some(u32::MAX));
    assert!(m.max_forwards().is_err());
}

#[test]
fn quotbal() {
    assert_eq!(
        refused("rfc4475/quotbal.dat", 400),
        "Bad To: unbalanced quotes"
    );
}

#[test]
fn ltgtruri() {
    assert_eq!(
        refused("rfc4475/ltgtruri.dat", 400),
        "Malformed Request-URI"
    );
}

#[test]
fn lwsruri() {
    assert!(matches!(
        parse_error("rfc4475/lwsruri.dat"),
        ParseError::StartLine(_)
    ));
}

#[test]
fn escruri() {
    assert_eq!(
        refused("rfc4475/escruri.dat", 400),
        "Request-URI must not carry headers"
    );
}

#[test]
fn regbadct() {
    assert_eq!(
        refused("rfc4475/regbadct.dat", 400),
        "Bad Contact: URI with ? or , must be in <>"
    );
}

#[test]
fn badaspec() {
    assert_eq!(
        refused("rfc4475/badaspec.dat", 400),
        "Bad To: bad URI in <>"
    );
}

#[test]
fn baddn() {
    assert_eq!(
        refused("rfc4475/baddn.dat", 400),
        "Bad From: bad display name"
    );
}

#[test]
fn mismatch01() {
    assert_eq!(
        refused("rfc4475/mismatch01.dat", 400),
        "Bad CSeq: method does not match"
    );
}

#[test]
fn badbranch() {
    assert_eq!(refused("rfc4475/badbranch.dat", 400), "Bad Via: bad branch");
}

#[test]
fn insuf() {
    assert_eq!(refused("rfc4475/insuf.dat", 400), "Missing Call-ID header");
}

#[test]
fn multi01() {
    assert_eq!(
        refused("rfc4475/multi01.dat", 400),
        "Bad Call-ID: header repeated"
    );
}

#[test]
fn mcl01() {
    assert!(matches!(
        parse_error("rfc4475/mcl01.dat"),
        ParseError::ContentLength(_)
    ));
    // TCP: unframeable, close the connection.
    assert!(matches!(
        frame_len(&load("rfc4475/mcl01.dat"), 65_535),
        Err(FrameError::Invalid(_))
    ));
}

// ---- Invalid: specific codes ---------------------------------------------

#[test]
fn badvers() {
    refused("rfc4475/badvers.dat", 505);
}

#[test]
fn unkscm() {
    refused("rfc4475/unkscm.dat", 416);
}

#[test]
fn novelsc() {
    refused("rfc4475/novelsc.dat", 416);
}

// ---- Server policy: must parse and pass check_request --------------------

#[test]
fn mismatch02() {
    // 501 for the unknown method beats 400 for the CSeq mismatch.
    valid("rfc4475/mismatch02.dat", |m| {
        assert_eq!(m.method(), Some(Method::Other("NEWMETHOD")));
        assert_eq!(m.cseq().unwrap().unwrap().method, "INVITE");
    });
}

#[test]
fn bext01() {
    valid("rfc4475/bext01.dat", |m| {
        assert_eq!(
            m.require().unwrap(),
            vec!["nothingSupportsThis", "nothingSupportsThisEither"]
        );
        assert_eq!(m.count(HeaderName::ProxyRequire), 1);
    });
}

#[test]
fn invut() {
    valid("rfc4475/invut.dat", |m| {
        assert_eq!(
            m.content_type().unwrap().unwrap().media,
            "application/unknownformat"
        );
        assert_eq!(m.body.len(), 40);
    });
}

#[test]
fn sdp01() {
    valid("rfc4475/sdp01.dat", |m| {
        assert_eq!(m.accept().unwrap(), vec!["text/nobodyKnowsThis"])
    });
}

#[test]
fn regaut01() {
    valid("rfc4475/regaut01.dat", |m| {
        assert_eq!(m.method(), Some(Method::Register));
        assert_eq!(m.content_length().unwrap(), Some(0));
    });
}

// ---- Responses to drop ---------------------------------------------------

#[test]
fn scalarlg() {
    // The status code is fine; the CSeq is not, so a caller reading it drops
    // the response.
    let bytes = load("rfc4475/scalarlg.dat");
    let m = parse(&bytes, false).unwrap();
    assert_eq!(m.status(), Some(503));
    assert_eq!(
        m.cseq().unwrap_err().to_string(),
        "Bad CSeq: number out of range"
    );
}

#[test]
fn bigcode() {
    assert!(matches!(
        parse_error("rfc4475/bigcode.dat"),
        ParseError::StartLine(_)
    ));
}

#[test]
fn bcast() {
    let bytes = load("rfc4475/bcast.dat");
    let m = parse(&bytes, false).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.vias().unwrap()[1].host, "255.255.255.255");
}

// ---- Tolerated either way: accepted --------------------------------------

#[test]
fn lwsstart() {
    valid("rfc4475/lwsstart.dat", |m| {
        assert_eq!(m.request_uri(), Some("sip:user@example.com"));
    });
}

#[test]
fn trws() {
    valid("rfc4475/trws.dat", |m| {
        assert_eq!(m.request_uri(), Some("sip:remote-target@example.com"));
    });
}

#[test]
fn baddate() {
    valid("rfc4475/baddate.dat", |m| {
        assert_eq!(
            m.header(HeaderName::Date),
            Some("Fri, 01 Jan 2010 16:00:00 EST")
        );
    });
}

#[test]
fn unksm2() {
    valid("rfc4475/unksm2.dat", |m| {
        assert_eq!(
            m.to().unwrap().unwrap().parsed_uri().unwrap().scheme,
            "isbn"
        );
        assert_eq!(m.contacts().unwrap()[0].uri, "name:John_Smith");
    });
}

// ---- RFC 5118 ------------------------------------------------------------

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ipv4_mapped_ipv6() {
    valid("rfc5118/ipv4-mapped-ipv6", |m| {
        let vias = m.vias().unwrap();
        assert_eq!(
            (vias[0].host, vias[0].port),
            ("[::ffff:192.0.2.10]", Some(19823))
        );
        assert_eq!(
            vias[1].sent_by(),
            Some(sip::Host::Ip(ip("::ffff:192.0.2.2")))
        );
        let c = &m.contacts().unwrap()[0];
        assert_eq!(c.parsed_uri().unwrap().host, "[::ffff:192.0.2.2]");
        // Content-Length is 236; the rest of the datagram is ignored.
        assert_eq!(m.body.len(), 236);
    });
}

#[test]
fn ipv6_bad() {
    assert_eq!(refused("rfc5118/ipv6-bad", 400), "Malformed Request-URI");
}

#[test]
fn ipv6_good() {
    valid("rfc5118/ipv6-good", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.host().unwrap(), sip::Host::Ip(ip("2001:db8::10")));
        assert_eq!(m.via().unwrap().unwrap().host, "[2001:db8::9:1]");
    });
}

#[test]
fn ipv6_bug_abnf_3_colons() {
    // RFC 5118 §4.10: tolerate RFC 3261's three-colon form.
    valid("rfc5118/ipv6-bug-abnf-3-colons", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(
            ruri.host().unwrap(),
            sip::Host::Ip(ip("2001:db8::192.0.2.1"))
        );
    });
}

#[test]
fn ipv6_correct_abnf_2_colons() {
    valid("rfc5118/ipv6-correct-abnf-2-colons", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(
            ruri.host().unwrap(),
            sip::Host::Ip(ip("2001:db8::192.0.2.1"))
        );
    });
}

#[test]
fn ipv6_in_sdp() {
    valid("rfc5118/ipv6-in-sdp", |m| {
        assert_eq!(m.body.len(), 241);
        assert_eq!(m.via().unwrap().unwrap().host, "[2001:db8::20]");
    });
}

#[test]
fn mult_ip_in_sdp() {
    valid("rfc5118/mult-ip-in-sdp", |m| assert_eq!(m.body.len(), 181));
}

#[test]
fn mult_ip_in_header() {
    valid("rfc5118/mult-ip-in-header", |m| {
        let vias = m.vias().unwrap();
        assert_eq!(
            (vias[0].host, vias[0].port),
            ("[2001:db8::9:1]", Some(6050))
        );
        assert_eq!(vias[1].host, "192.0.2.1");
        assert_eq!(vias[2].host, "[2001:db8::9:255]");
        assert_eq!(vias[2].received_ip(), Some(ip("192.0.2.200")));
    });
}

#[test]
fn port_ambiguous() {
    valid("rfc5118/port-ambiguous", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.port, None);
        assert_eq!(ruri.host().unwrap(), sip::Host::Ip(ip("2001:db8::10:5070")));
    });
}

#[test]
fn port_unambiguous() {
    valid("rfc5118/port-unambiguous", |m| {
        let ruri = sip::Uri::parse(m.request_uri().unwrap()).unwrap();
        assert_eq!(ruri.port, Some(5070));
        assert_eq!(ruri.host().unwrap(), sip::Host::Ip(ip("2001:db8::10")));
    });
}

#[test]
fn via_received_param_no_delim() {
    valid("rfc5118/via-received-param-no-delim", |m| {
        let v = m.via().unwrap().unwrap();
        assert_eq!(v.received, Some("2001:db8::9:255"));
        assert_eq!(v.received_ip(), Some(ip("2001:db8::9:255")));
        assert_eq!(v.branch, Some("z9hG4bKas3"));
    });
}

#[test]
fn via_received_param_with_delim() {
    valid("rfc5118/via-received-param-with-delim", |m| {
        let v = m.via().unwrap().unwrap();
        assert_eq!(v.received, Some("[2001:db8::9:255]"));
        assert_eq!(v.received_ip(), Some(ip("2001:db8::9:255")));
    });
}

/// Every file is covered by a test above; this catches a fixture added
/// without one, and checks framing agrees with parsing on TCP.
#[test]
fn every_fixture_is_known_and_frames_consistently() {
    let dir = format!("{}/tests/torture", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for sub in ["rfc4475", "rfc5118"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            count += 1;
            if let Ok(n) = frame_len(&bytes, 65_535) {
                // Whatever frames on a stream parses on a stream, unless the
                // fault is in the message rather than its framing.
                if let Ok(m) = parse(&bytes[..n], true) {
                    assert!(m.body.len() <= n);
                }
            }
        }
    }
    assert_eq!(count, 49 + 12);
}
