//! Operator actions, counters and change events, on the settable clock.

mod harness;
use engine::inspect::Holder;
use harness::*;

#[test]
fn release_a_seize_tells_seizer_and_watchers() {
    let mut h = Harness::new();
    h.engine.enable_events();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut p = Phone::new(7100);
    let req = p.subscribe(
        LINE,
        "line-seize",
        None,
        "Call-Info: <sip:example.com>;appearance-index=2\n",
    );
    h.input(p.src(), &req);
    let out = sent(h.take_to(addr(7100)));
    h.input(p.src(), &reply(&out[1], 200));
    notifies(&mut h, &w);
    assert_eq!(h.engine.take_changed_lines(), vec![LINE.to_string()]);

    let line = h.engine.line(LINE);
    assert_eq!(line.len(), 1);
    assert!(matches!(line[0].holder, Holder::Seize { .. }));
    let now = h.now;
    assert!(h.engine.release(now, LINE, 2).is_ok());
    h.drain();
    let seizer = sent(h.take_to(addr(7100)));
    assert_eq!(seizer[0].sub_state(), "terminated;reason=deactivated");
    assert!(notifies(&mut h, &w)[0].appearances().is_empty());
    assert!(h.engine.line(LINE).is_empty());
    assert!(
        h.engine.release(now, LINE, 2).is_err(),
        "nothing left to release"
    );
    assert_eq!(h.engine.take_changed_lines(), vec![LINE.to_string()]);
}

#[test]
fn release_a_published_appearance_keeps_the_others() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    let req = pbx.publish(LINE, None, "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=active, <sip:example.com>;appearance-index=2;appearance-state=held\n");
    h.input(pbx.src(), &req);
    h.take_to(addr(6000));
    notifies(&mut h, &w);
    let now = h.now;
    assert!(matches!(
        h.engine.release(now, LINE, 1),
        Ok(Holder::Publication { .. })
    ));
    h.drain();
    assert_eq!(
        notifies(&mut h, &w)[0].appearances(),
        [(2, "held".to_string())]
    );
    // The store holds the trimmed publication.
    assert!(h
        .store
        .pubs
        .values()
        .all(|p| !p.state.contains("\"index\":1")));
}

#[test]
fn terminate_a_subscription() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let id = h.engine.subscriptions().next().unwrap().id.clone();
    let now = h.now;
    h.engine.terminate(now, &id).unwrap();
    h.drain();
    let out = sent(h.take_to(addr(7000)));
    assert_eq!(out[0].sub_state(), "terminated;reason=deactivated");
    assert_eq!(h.engine.subscription_count(), 0);
    assert!(h.store.subs.is_empty());
    assert!(h.engine.terminate(now, &id).is_err());
}

#[test]
fn counters_move_by_what_happened() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut pbx = Phone::new(6000);
    let req = pbx.publish(
        LINE,
        Some(30),
        "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=active\n",
    );
    h.input(pbx.src(), &req); // 423
    let req = pbx.publish(
        LINE,
        None,
        "Call-Info: <sip:example.com>;appearance-index=1;appearance-state=active\n",
    );
    h.input(pbx.src(), &req); // 200 + NOTIFY, left unanswered
    h.advance(500); // one retransmission
    let s = h.engine.stats().clone();
    assert_eq!(s.requests["SUBSCRIBE"], 1);
    assert_eq!(s.requests["PUBLISH"], 2);
    assert_eq!(s.responses[&200], 2);
    assert_eq!(s.responses[&423], 1);
    assert_eq!(s.refusals[&(423, "Interval Too Brief".to_string())], 1);
    assert_eq!(s.notifies_sent, 2);
    assert_eq!(s.notifies_retransmitted, 1);
    let n = sent(h.take_to(addr(7000)));
    h.input(w.src(), &reply(&n[0], 481));
    assert_eq!(h.engine.stats().notifies_failed, 1);
}

#[test]
fn per_line_views_and_last_notify_status() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut w2 = Phone::new(7001);
    let req = w2.subscribe(LINE, "call-info", Some(600), "");
    h.input(w2.src(), &req);
    let out = sent(h.take_to(addr(7001)));
    assert_eq!(h.engine.watcher_count(LINE), 2);
    assert_eq!(h.engine.watcher_count("sip:nobody@example.com"), 0);
    assert_eq!(h.engine.line_subscriptions(LINE).len(), 2);
    assert_eq!(
        h.engine.subscription_counts(),
        vec![("call-info", 2), ("line-seize", 0)]
    );
    let id1 = h
        .engine
        .line_subscriptions(LINE)
        .into_iter()
        .find(|s| s.call_id == w.call_id)
        .unwrap()
        .id;
    let id2 = h
        .engine
        .line_subscriptions(LINE)
        .into_iter()
        .find(|s| s.call_id == w2.call_id)
        .unwrap()
        .id;
    assert_eq!(h.engine.last_notify_status(&id1), Some(200));
    assert_eq!(
        h.engine.last_notify_status(&id2),
        None,
        "its first NOTIFY is unanswered"
    );
    h.input(w2.src(), &reply(&out[1], 500));
    assert_eq!(h.engine.last_notify_status(&id2), Some(500));
    h.advance(600_000);
}
