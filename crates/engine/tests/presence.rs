//! The presence engine's rules (RFC 3903 PUBLISH, RFC 6665 SUBSCRIBE/NOTIFY,
//! durability), driven on the settable clock.

mod harness;
use harness::*;

#[test]
fn options_lists_methods_and_packages() {
    let mut h = Harness::new();
    h.input(udp(7000), "OPTIONS sip:example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bKopt\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:example.com>\nCall-ID: o1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n");
    let out = sent(h.take());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status(), Some(200));
    assert!(out[0].header("Allow").unwrap().contains("SUBSCRIBE"));
    let ev = out[0].header("Allow-Events").unwrap();
    assert!(
        ev.contains("call-info") && ev.contains("line-seize"),
        "{ev}"
    );
    assert!(
        out[0].msg().to().unwrap().unwrap().tag().is_some(),
        "a To tag is added"
    );
}

#[test]
fn methods_we_do_not_serve() {
    let mut h = Harness::new();
    let req = |m: &str, extra: &str| {
        format!("{m} sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK{m}\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:bob@example.com>\nCall-ID: m-{m}\nCSeq: 1 {m}\nMax-Forwards: 70\n{extra}Content-Length: 0\n\n")
    };
    h.input(udp(7000), &req("INVITE", ""));
    h.input(udp(7000), &req("REGISTER", ""));
    h.input(udp(7000), &req("FOO", ""));
    h.input(udp(7000), &req("OPTIONS", "Require: 100rel, foo\n"));
    let out = sent(h.take());
    let codes: Vec<_> = out.iter().map(|s| s.status().unwrap()).collect();
    assert_eq!(codes, [405, 405, 501, 420]);
    assert!(out[0].header("Allow").unwrap().contains("PUBLISH"));
    assert_eq!(out[3].header("Unsupported").unwrap(), "100rel, foo");
}

#[test]
fn publish_gets_fresh_etags_and_412_for_stale_ones() {
    let mut h = Harness::new();
    let mut pbx = Phone::new(6000);
    let ok = publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.header("Expires").unwrap(), "3600");
    let e1 = ok.header("SIP-ETag").unwrap();
    // Refresh: no Call-Info, SIP-If-Match.
    let ok = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {e1}\n"),
        Some(120),
    );
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.header("Expires").unwrap(), "120");
    let e2 = ok.header("SIP-ETag").unwrap();
    assert_ne!(e1, e2);
    // The old tag is dead.
    let r = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {e1}\n{}", ci(1, "active")),
        None,
    );
    assert_eq!(r.status(), Some(412));
    // Modify, then remove; each gets a new tag.
    let ok = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {e2}\n{}", ci(1, "active")),
        None,
    );
    let e3 = ok.header("SIP-ETag").unwrap();
    assert!(e3 != e2 && e3 != e1);
    let ok = publish(&mut h, &mut pbx, &format!("SIP-If-Match: {e3}\n"), Some(0));
    assert_eq!(ok.status(), Some(200));
    let e4 = ok.header("SIP-ETag").unwrap();
    assert!(![&e1, &e2, &e3].contains(&&e4));
    assert!(h.store.pubs.is_empty(), "removal reached the store");
    assert_eq!(
        publish(&mut h, &mut pbx, &format!("SIP-If-Match: {e3}\n"), None).status(),
        Some(412)
    );
}

#[test]
fn publish_refusals() {
    let mut h = Harness::new();
    let mut pbx = Phone::new(6000);
    let two = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: a\nSIP-If-Match: b\n{}", ci(1, "active")),
        None,
    );
    assert_eq!(two.status(), Some(400));
    let brief = publish(&mut h, &mut pbx, &ci(1, "active"), Some(30));
    assert_eq!(brief.status(), Some(423));
    assert_eq!(brief.header("Min-Expires").unwrap(), "60");
    let req = pbx
        .publish(LINE, None, &ci(1, "active"))
        .replace("Event: call-info", "Event: dialog");
    h.input(pbx.src(), &req);
    let r = sent(h.take());
    assert_eq!(r[0].status(), Some(489));
    assert!(r[0].header("Allow-Events").unwrap().contains("call-info"));
    let req = pbx
        .publish(LINE, None, &ci(1, "active"))
        .replace("Event: call-info\n", "")
        .replace("Event: call-info\r\n", "");
    h.input(pbx.src(), &req);
    assert_eq!(sent(h.take())[0].status(), Some(489));
    let req = pbx.publish(LINE, None, &ci(1, "active")).replace(
        "Content-Length: 0\n\n",
        "Content-Type: application/xml\nContent-Length: 4\n\n<a/>",
    );
    h.input(pbx.src(), &req);
    assert_eq!(sent(h.take())[0].status(), Some(415));
    // call-info must name index and state.
    for bad in [
        "Call-Info: <sip:example.com>;appearance-state=active\n",
        "Call-Info: <sip:example.com>;appearance-index=1\n",
        "Call-Info: <sip:example.com>;appearance-index=0;appearance-state=active\n",
        "Call-Info: <sip:example.com>;appearance-index=x;appearance-state=active\n",
        "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=ringing\n",
        "Call-Info: <sip:example.com>;appearance-index=*;appearance-state=active\n",
        "",
    ] {
        let r = publish(&mut h, &mut pbx, bad, None);
        assert_eq!(r.status(), Some(400), "{bad}");
        assert!(r.msg().status().is_some());
    }
    // Untrusted source.
    let req = pbx.publish(LINE, None, &ci(1, "active"));
    h.input(from_ip("192.0.2.9", 6000), &req);
    assert_eq!(sent(h.take())[0].status(), Some(403));
    assert!(h.store.pubs.is_empty(), "nothing refused was stored");
}

#[test]
fn seed_flow_watcher_sees_idle_alerting_active_idle() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let first = watch(&mut h, &mut w);
    assert!(
        first.sub_state().starts_with("active;expires="),
        "{}",
        first.sub_state()
    );
    assert_eq!(
        first.header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=*;appearance-state=idle"
    );
    assert!(first.header("Content-Type").is_none());
    assert_eq!(first.header("Content-Length").unwrap(), "0");

    let mut pbx = Phone::new(6000);
    let ok = publish(&mut h, &mut pbx, "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri=\"\\\"Alice\\\" <sip:alice@example.com>\"\n", None);
    let etag = ok.header("SIP-ETag").unwrap();
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=1;appearance-state=alerting;appearance-uri=\"\\\"Alice\\\" <sip:alice@example.com>\", <sip:example.com>;appearance-index=*;appearance-state=idle"
    );
    assert_eq!(n[0].cseq(), first.cseq() + 1);

    let ok = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {etag}\n{}", ci(1, "active")),
        None,
    );
    let etag = ok.header("SIP-ETag").unwrap();
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].appearances(), [(1, "active".to_string())]);

    // A refresh changes nothing and notifies nobody.
    let ok = publish(&mut h, &mut pbx, &format!("SIP-If-Match: {etag}\n"), None);
    let etag = ok.header("SIP-ETag").unwrap();
    assert!(notifies(&mut h, &w).is_empty());

    publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {etag}\n"),
        Some(0),
    );
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1);
    assert!(n[0].appearances().is_empty(), "idle again: {}", n[0].text());
}

#[test]
fn expired_publication_turns_idle() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(2, "active"), Some(60));
    assert_eq!(
        notifies(&mut h, &w)[0].appearances(),
        [(2, "active".to_string())]
    );
    h.advance(59_000);
    assert!(notifies(&mut h, &w).is_empty());
    h.advance(1_000);
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1);
    assert!(n[0].appearances().is_empty());
    assert!(h.store.pubs.is_empty());
}

#[test]
fn subscription_expires_with_final_notify() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(120), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out[0].header("Expires").unwrap(), "120");
    assert!(out[0].header("Contact").is_some());
    h.input(w.src(), &reply(&out[1], 200));
    assert_eq!(h.store.subs.len(), 1);
    h.advance(119_999);
    assert!(h.take().is_empty());
    h.advance(1);
    let n = sent(h.take());
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].sub_state(), "terminated;reason=timeout");
    assert!(h.store.subs.is_empty());
    // And nothing after that.
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    assert!(h.take_to(addr(7000)).is_empty());
}

#[test]
fn refreshed_subscription_expires_at_its_last_time_only() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(120), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    w.learn(&out[0]);
    h.input(w.src(), &reply(&out[1], 200));
    // Refreshed to a longer interval, then to a shorter one than that:
    // neither the first expiry (120 s) nor the second (610 s) may end it.
    for expires in [600, 300] {
        h.advance(10_000);
        let req = w.subscribe(LINE, "call-info", Some(expires), "");
        h.input(w.src(), &req);
        let out = sent(h.take());
        assert_eq!(out[0].header("Expires").unwrap(), expires.to_string());
        h.input(w.src(), &reply(&out[1], 200));
    }
    // Now at 20 s: it ends at 320 s, not at 120 s nor at 610 s.
    let ends = h.now.plus_secs(300);
    h.advance(100_000);
    assert!(h.take().is_empty(), "not at its first expiry");
    // Only the last expiry is on the clock (Timer J of the SUBSCRIBEs is over).
    assert_eq!(h.engine.next_timeout(), Some(ends));
    h.advance(ends - h.now - 1);
    assert!(h.take().is_empty());
    h.advance(1);
    let n = sent(h.take());
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].sub_state(), "terminated;reason=timeout");
    h.input(w.src(), &reply(&n[0], 200));
    assert!(h.store.subs.is_empty());
    assert_eq!(h.engine.next_timeout(), None, "no stale expiry left");
}

#[test]
fn expires_is_capped_and_checked() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(99_999), "");
    h.input(w.src(), &req);
    assert_eq!(sent(h.take())[0].header("Expires").unwrap(), "3600");
    let mut w = Phone::new(7001);
    let req = w.subscribe(LINE, "call-info", Some(10), "");
    h.input(w.src(), &req);
    let r = sent(h.take());
    assert_eq!(r[0].status(), Some(423));
    assert_eq!(r[0].header("Min-Expires").unwrap(), "60");
    let mut w = Phone::new(7002);
    let req = w.subscribe(LINE, "presence", Some(600), "");
    h.input(w.src(), &req);
    let r = sent(h.take());
    assert_eq!(r[0].status(), Some(489));
    assert_eq!(
        r[0].header("Allow-Events").unwrap(),
        "call-info, line-seize"
    );
    let mut w = Phone::new(7003);
    let req = w
        .subscribe(LINE, "call-info", Some(600), "")
        .replace("Event: call-info\n", "")
        .replace("Event: call-info\r\n", "");
    h.input(w.src(), &req);
    assert_eq!(sent(h.take())[0].status(), Some(400));
}

#[test]
fn refresh_unsubscribe_and_unknown_dialog() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let first = watch(&mut h, &mut w);
    let req = w.subscribe(LINE, "call-info", Some(300), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(out[0].header("Expires").unwrap(), "300");
    assert_eq!(
        out[1].cseq(),
        first.cseq() + 1,
        "full-state NOTIFY on refresh"
    );
    assert_eq!(out[1].sub_state(), "active;expires=300");
    h.input(w.src(), &reply(&out[1], 200));
    let req = w.subscribe(LINE, "call-info", Some(0), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(out[1].sub_state(), "terminated;reason=timeout");
    assert!(h.store.subs.is_empty());
    // The dialog is gone now.
    let req = w.subscribe(LINE, "call-info", Some(300), "");
    h.input(w.src(), &req);
    assert_eq!(sent(h.take())[0].status(), Some(481));
}

#[test]
fn fetch_gets_one_terminated_notify() {
    let mut h = Harness::new();
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "held"), None);
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(0), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(out[1].sub_state(), "terminated;reason=timeout");
    assert_eq!(out[1].appearances(), [(1, "held".to_string())]);
    assert!(h.store.subs.is_empty());
}

#[test]
fn notify_answered_481_ends_subscription() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    let n = sent(h.take_to(addr(7000)));
    h.input(w.src(), &reply(&n[0], 481));
    assert!(h.store.subs.is_empty());
    publish(&mut h, &mut pbx, &ci(2, "alerting"), None);
    assert!(h.take_to(addr(7000)).is_empty(), "no NOTIFY after 481");
}

#[test]
fn notify_timeout_ends_subscription_and_retransmits_before() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(600), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out.len(), 2);
    // Never answered: retransmitted on Timer E (500, 1000, 2000, 4000, 4000...).
    h.advance(500);
    assert_eq!(sent(h.take()).len(), 1);
    h.advance(1000);
    assert_eq!(sent(h.take()).len(), 1);
    h.advance(32_000 - 1500 - 1);
    let retx = sent(h.take());
    assert!(
        retx.iter().all(|r| r.bytes == out[1].bytes),
        "identical retransmissions"
    );
    assert_eq!(h.store.subs.len(), 1);
    h.advance(1);
    assert!(h.store.subs.is_empty(), "Timer F removed the watcher");
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    assert!(h.take_to(addr(7000)).is_empty());
}

#[test]
fn changes_during_a_notify_in_flight_are_coalesced() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let first = watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    let e = publish(&mut h, &mut pbx, &ci(1, "alerting"), None)
        .header("SIP-ETag")
        .unwrap();
    let n1 = sent(h.take_to(addr(7000)));
    assert_eq!(n1.len(), 1);
    // Two more changes while n1 is unanswered.
    let e = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {e}\n{}", ci(1, "active")),
        None,
    )
    .header("SIP-ETag")
    .unwrap();
    publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {e}\n{}", ci(1, "held")),
        None,
    );
    assert!(
        h.take_to(addr(7000)).is_empty(),
        "one NOTIFY in flight at a time"
    );
    h.input(w.src(), &reply(&n1[0], 200));
    let n2 = notifies(&mut h, &w);
    assert_eq!(n2.len(), 1);
    assert_eq!(n2[0].appearances(), [(1, "held".to_string())]);
    assert_eq!(n2[0].cseq(), first.cseq() + 2);
}

#[test]
fn retransmitted_subscribe_is_answered_again_not_processed() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(600), "");
    h.input(w.src(), &req);
    let a = sent(h.take());
    h.input(w.src(), &req);
    let b = sent(h.take());
    assert_eq!(b.len(), 1, "only the response again, no second NOTIFY");
    assert_eq!(a[0].bytes, b[0].bytes);
    assert_eq!(h.engine.subscription_count(), 1);
}

#[test]
fn nothing_leaves_before_the_store_acknowledges() {
    let mut h = Harness::new();
    h.ack_store = false;
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(600), "");
    h.input(w.src(), &req);
    assert!(h.take().is_empty(), "no 200 before durable");
    assert_eq!(h.store.subs.len(), 1, "the write was handed to the store");
    h.ack_pending();
    let out = sent(h.take());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].status(), Some(200));
}

#[test]
fn restart_keeps_dialogs_and_cseq() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let first = watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    let etag = publish(&mut h, &mut pbx, &ci(1, "alerting"), None)
        .header("SIP-ETag")
        .unwrap();
    let n = notifies(&mut h, &w);
    assert_eq!(n[0].cseq(), first.cseq() + 1);
    // Long enough after the last change that its NOTIFYs were long over
    // (the restart window is 5 minutes); still well inside the 600 s.
    h.advance(301_000);
    h.restart(engine::Config::default());
    assert!(h.take().is_empty(), "nothing to re-send");
    assert_eq!(h.engine.subscription_count(), 1);
    assert_eq!(h.engine.publication_count(), 1);
    // The publisher's ETag still works; the watcher hears in its old dialog.
    let ok = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {etag}\n{}", ci(1, "active")),
        None,
    );
    assert_eq!(ok.status(), Some(200));
    let n2 = notifies(&mut h, &w);
    assert_eq!(n2.len(), 1);
    // Above every CSeq of the dialog so far (RFC 3261 §12.2.1.1); the
    // restart skips what was left of the stored reservation.
    assert!(
        n2[0].cseq() > n[0].cseq(),
        "{} after {}",
        n2[0].cseq(),
        n[0].cseq()
    );
    assert_eq!(n2[0].msg().call_id().unwrap().unwrap(), w.call_id);
    let to = n2[0].msg().to().unwrap().unwrap();
    assert_eq!(to.tag(), Some(w.tag.as_str()));
    assert_eq!(
        n2[0].msg().from().unwrap().unwrap().tag(),
        w.to_tag.as_deref()
    );
}

#[test]
fn what_expired_while_down_is_processed_at_start() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", Some(60), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    h.input(w.src(), &reply(&out[1], 200));
    h.now = h.now + 120_000;
    h.restart(engine::Config::default());
    let n = sent(h.take());
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].sub_state(), "terminated;reason=timeout");
    assert!(h.store.subs.is_empty());
}

#[test]
fn notify_follows_record_route() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(
        LINE,
        "call-info",
        Some(600),
        "Record-Route: <sip:127.0.0.1:5999;lr>\n",
    );
    h.input(w.src(), &req);
    let out = h.take();
    assert_eq!(out.len(), 2);
    let n = &out[1];
    assert_eq!(n.remote, addr(5999), "sent to the proxy");
    let s = Sent {
        bytes: n.bytes.clone(),
    };
    assert_eq!(s.header("Route").unwrap(), "<sip:127.0.0.1:5999;lr>");
    assert_eq!(
        s.msg().request_uri().unwrap(),
        "sip:phone7000@127.0.0.1:7000"
    );
}

#[test]
fn per_package_limits_come_from_config() {
    let mut cfg = engine::Config::default();
    cfg.package_limits.insert(
        "call-info".into(),
        engine::config::ExpiresLimits {
            min: 10,
            max: 100,
            default: 50,
        },
    );
    let mut h = Harness::with(cfg);
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info", None, "");
    h.input(w.src(), &req);
    assert_eq!(sent(h.take())[0].header("Expires").unwrap(), "50");
    let mut pbx = Phone::new(6000);
    let ok = publish(&mut h, &mut pbx, &ci(1, "active"), Some(20));
    assert_eq!(ok.header("Expires").unwrap(), "20");
}

#[test]
fn event_id_is_echoed_and_refresh_moves_the_target() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let req = w.subscribe(LINE, "call-info;id=abc", Some(600), "");
    h.input(w.src(), &req);
    let out = sent(h.take());
    assert_eq!(out[1].header("Event").unwrap(), "call-info;id=abc");
    w.learn(&out[0]);
    h.input(w.src(), &reply(&out[1], 200));
    // Refresh from a new contact: the next NOTIFY goes there.
    let req = w
        .subscribe(LINE, "call-info;id=abc", Some(600), "")
        .replace("127.0.0.1:7000>", "127.0.0.1:7777>");
    h.input(w.src(), &req);
    let out = h.take();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1].remote, addr(7777));
    // A stale CSeq is refused (RFC 3261 §12.2.2).
    w.cseq = 0;
    let req = w.subscribe(LINE, "call-info;id=abc", Some(600), "");
    h.input(w.src(), &req);
    assert_eq!(sent(h.take())[0].status(), Some(500));
}

#[test]
fn tcp_notifies_reuse_the_connection() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    let src = engine::Source {
        transport: engine::Transport::Tcp,
        conn: Some(engine::ConnId(42)),
        ..w.src()
    };
    let req = w
        .subscribe(LINE, "call-info", Some(600), "")
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    h.input(src, &req);
    let out = h.take();
    assert_eq!(out.len(), 2);
    for t in &out {
        assert_eq!(t.transport, engine::Transport::Tcp);
        assert_eq!(t.conn, Some(engine::ConnId(42)));
    }
    let n = Sent {
        bytes: out[1].bytes.clone(),
    };
    assert!(n.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    // No retransmission over TCP; Timer F still ends an unanswered NOTIFY.
    h.advance(31_999);
    assert!(h.take().is_empty());
    h.advance(1);
    assert_eq!(h.engine.subscription_count(), 0);
}

#[test]
fn notify_lost_in_a_crash_is_sent_again_after_restart() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    // The NOTIFY was stored, then the process died before it arrived.
    let lost = sent(h.take_to(addr(7000)));
    assert_eq!(lost.len(), 1);
    h.advance(1_000);
    h.take(); // its retransmissions died with it too
    h.restart(engine::Config::default());
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1, "the state is sent again");
    assert!(
        n[0].cseq() > lost[0].cseq(),
        "a new CSeq, above the lost one"
    );
    assert_eq!(n[0].appearances(), [(1, "alerting".to_string())]);
}

#[test]
fn notifies_need_no_store_write_of_their_own() {
    let mut h = Harness::new();
    let mut watchers: Vec<Phone> = (0..5).map(|i| Phone::new(7000 + i)).collect();
    for w in &mut watchers {
        watch(&mut h, w);
    }
    let mut pbx = Phone::new(6000);
    let etag = publish(&mut h, &mut pbx, &ci(1, "alerting"), None)
        .header("SIP-ETag")
        .unwrap();
    for w in &watchers {
        assert_eq!(notifies(&mut h, w).len(), 1);
    }
    let before = h.store_ops;
    let ok = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {etag}\n{}", ci(1, "active")),
        None,
    );
    assert_eq!(ok.status(), Some(200));
    for w in &watchers {
        assert_eq!(notifies(&mut h, w).len(), 1);
    }
    // The publication (whose change time is the line's): not one write per
    // watcher, nor a second row for the line.
    assert_eq!(h.store_ops - before, 1);
}

#[test]
fn a_line_changed_before_a_crash_is_sent_again_but_not_an_old_one() {
    let mut h = Harness::new();
    let mut quiet = Phone::new(7001);
    answered_watch(&mut h, &mut quiet, "sip:quiet@example.com");
    let mut w = Phone::new(7002);
    answered_watch(&mut h, &mut w, LINE);
    // Both subscriptions are old news by the time the line changes.
    h.advance(600_000);
    let mut pbx = Phone::new(6000);
    publish(&mut h, &mut pbx, &ci(1, "alerting"), None);
    h.advance(1_000);
    h.take(); // the NOTIFYs and their retransmissions, lost with the process
    h.restart(engine::Config::default());
    let again = h.take();
    let to = |port| again.iter().filter(|t| t.remote == addr(port)).count();
    assert_eq!(to(7002), 1, "the changed line's watcher hears again");
    assert_eq!(to(7001), 0, "the unchanged line's watcher does not");
}

#[test]
fn a_line_emptied_before_a_crash_is_sent_again() {
    // Removing a publication leaves no publication to date the change: the
    // store keeps the line's change time apart.
    let mut h = Harness::new();
    let mut w = Phone::new(7002);
    answered_watch(&mut h, &mut w, LINE);
    let mut pbx = Phone::new(6000);
    let etag = publish(&mut h, &mut pbx, &ci(1, "alerting"), Some(3600))
        .header("SIP-ETag")
        .unwrap();
    let n = sent(h.take_to(addr(7002)));
    h.input(w.src(), &reply(&n[0], 200));
    h.advance(600_000);
    h.take();
    let gone = publish(
        &mut h,
        &mut pbx,
        &format!("SIP-If-Match: {etag}\n"),
        Some(0),
    );
    assert_eq!(gone.status(), Some(200));
    h.advance(1_000);
    h.take(); // the NOTIFYs of the removal, lost with the process
    h.restart(engine::Config::default());
    let again = notifies(&mut h, &w);
    assert_eq!(again.len(), 1, "the watcher hears the line again");
    assert_eq!(again[0].appearances(), Vec::<(u32, String)>::new());
}

#[test]
fn quotas_refuse_with_503_and_keep_state_bounded() {
    let quotas = engine::config::Quotas {
        max_subscriptions: 50,
        max_subscriptions_per_line: 10,
        max_subscriptions_per_source: 20,
        max_publications_per_line: 2,
        ..Default::default()
    };
    let mut h = Harness::with(engine::Config {
        quotas,
        ..Default::default()
    });
    let mut codes = std::collections::BTreeMap::new();
    // A flood from one address to one line: the line's quota bites first.
    for port in 10_000..10_100u16 {
        let mut w = Phone::new(port);
        let req = w.subscribe(LINE, "call-info", Some(600), "");
        h.input(from_ip("192.0.2.1", port), &req);
        for s in sent(h.take()) {
            if let Some(code) = s.status() {
                *codes.entry(code).or_insert(0) += 1;
                if code == 503 {
                    assert!(s.header("Retry-After").is_some());
                }
            }
        }
    }
    assert_eq!(codes[&200], 10);
    assert_eq!(codes[&503], 90);
    assert_eq!(h.engine.subscription_count(), 10);
    // The same address on other lines: its own quota (20) bites.
    for n in 0..40u16 {
        let mut w = Phone::new(20_000 + n);
        let req = w.subscribe(
            &format!("sip:line{n}@example.com"),
            "call-info",
            Some(600),
            "",
        );
        h.input(from_ip("192.0.2.1", 20_000 + n), &req);
    }
    assert_eq!(h.engine.subscription_count(), 20);
    // Other addresses are not starved, up to the total (50).
    for n in 0..60u16 {
        let mut w = Phone::new(30_000 + n);
        let req = w.subscribe(
            &format!("sip:other{n}@example.com"),
            "call-info",
            Some(600),
            "",
        );
        h.input(
            from_ip(&format!("192.0.2.{}", 10 + n % 200), 30_000 + n),
            &req,
        );
    }
    assert_eq!(h.engine.subscription_count(), 50);
    // Publications per line.
    let mut pbx = Phone::new(6000);
    h.take();
    let codes: Vec<u16> = (1..=3)
        .map(|i| {
            publish(&mut h, &mut pbx, &ci(i, "active"), None)
                .status()
                .unwrap()
        })
        .collect();
    assert_eq!(codes, [200, 200, 503]);
    assert_eq!(h.engine.publication_count(), 2);
}

#[test]
fn unparsable_requests_that_name_their_sender_get_400() {
    let mut h = Harness::new();
    for (name, reason) in [
        ("clerr", "Content-Length"),
        ("ncl", "Content-Length"),
        ("lwsruri", ""),
        ("mcl01", "Content-Length"),
    ] {
        let path = format!(
            "{}/../sip/tests/torture/rfc4475/{name}.dat",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            sip::parse(&bytes, false).is_err(),
            "{name} is meant to be unparsable"
        );
        h.engine.handle_bytes(h.now, udp(7000), &bytes);
        h.drain();
        let out = sent(h.take());
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(out[0].status(), Some(400), "{name}");
        let m = out[0].msg();
        let text = out[0].text();
        assert!(
            text.lines().next().unwrap().contains(reason),
            "{name}: {text}"
        );
        let want_call_id = std::str::from_utf8(&bytes)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("Call-ID: "))
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(m.call_id().unwrap(), Some(want_call_id.as_str()), "{name}");
    }
    assert!(h.store.pubs.is_empty() && h.store.subs.is_empty());
    // Garbage that names nobody is dropped.
    h.engine
        .handle_bytes(h.now, udp(7000), b"\x00\x01 not sip at all\r\n\r\n");
    h.drain();
    assert!(h.take().is_empty());
}

#[test]
fn silent_watchers_do_not_pile_up_retransmission_state() {
    let mut h = Harness::new();
    // 200 watchers that subscribe and then never answer a NOTIFY.
    for port in 8000..8200u16 {
        let mut w = Phone::new(port);
        let req = w.subscribe(LINE, "call-info", Some(3600), "");
        h.input(w.src(), &req);
    }
    let mut pbx = Phone::new(6000);
    let mut etag = publish(&mut h, &mut pbx, &ci(1, "alerting"), None)
        .header("SIP-ETag")
        .unwrap();
    // A hundred changes while every NOTIFY hangs: one transaction per
    // watcher at most, the rest coalesced.
    for i in 0..100 {
        let state = if i % 2 == 0 { "active" } else { "held" };
        etag = publish(
            &mut h,
            &mut pbx,
            &format!("SIP-If-Match: {etag}\n{}", ci(1, state)),
            None,
        )
        .header("SIP-ETag")
        .unwrap();
        let (_, client) = h.engine.open_transactions();
        assert!(client <= 200, "open NOTIFY transactions: {client}");
    }
    h.take();
    // Timer F ends them all; nothing is left behind.
    h.advance(32_000);
    assert_eq!(h.engine.subscription_count(), 0);
    h.advance(10_000);
    assert_eq!(h.engine.open_transactions(), (0, 0));
}

#[test]
fn notifies_beyond_the_in_flight_cap_wait_their_turn_with_the_latest_state() {
    let quotas = engine::config::Quotas {
        max_notifies_in_flight: 10,
        ..Default::default()
    };
    let mut h = Harness::with(engine::Config {
        quotas,
        ..Default::default()
    });
    let mut phones: Vec<Phone> = (9000..9030u16).map(Phone::new).collect();
    // Thirty watchers subscribe at once: ten first NOTIFYs go out, the rest wait.
    for p in &mut phones {
        let req = p.subscribe(LINE, "call-info", Some(600), "");
        h.input(p.src(), &req);
    }
    let mut seen: std::collections::HashMap<u16, Vec<Sent>> = Default::default();
    let collect = |h: &mut Harness| -> Vec<(u16, Sent)> {
        let out: Vec<(u16, Sent)> = h
            .take()
            .into_iter()
            .map(|t| (t.remote.port(), Sent { bytes: t.bytes }))
            .filter(|(_, s)| s.is_notify())
            .collect();
        out
    };
    let first = collect(&mut h);
    assert_eq!(first.len(), 10);
    assert_eq!(h.engine.open_transactions().1, 10);
    // A change while they wait: it reaches everyone, once each.
    let mut pbx = Phone::new(6000);
    h.input(pbx.src(), &pbx.publish(LINE, None, &ci(4, "alerting")));
    let mut pending = first;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        for (port, n) in &pending {
            h.input(udp(*port), &reply(n, 200));
        }
        for (port, n) in pending.drain(..) {
            seen.entry(port).or_default().push(n);
        }
        pending = collect(&mut h);
        assert!(pending.len() <= 10, "never more than the cap in flight");
    }
    assert!(rounds >= 3);
    assert_eq!(seen.len(), 30);
    for (port, ns) in &seen {
        let last = ns.last().unwrap();
        assert_eq!(
            last.appearances(),
            [(4, "alerting".to_string())],
            "watcher {port}"
        );
        assert!(ns.len() <= 2, "watcher {port} got {} NOTIFYs", ns.len());
    }
    // Completed transactions linger only for Timer K.
    h.advance(5_000);
    assert_eq!(h.engine.open_transactions().1, 0);
}
