//! Shared call appearance rules: call-info merging per appearance and
//! line-seize grants, refusals and releases, on the settable clock.

mod harness;
use harness::*;

/// Send a line-seize SUBSCRIBE; returns the response (and NOTIFY if granted).
fn seize(h: &mut Harness, phone: &mut Phone, index: &str) -> Vec<Sent> {
    let req = phone.subscribe(
        LINE,
        "line-seize",
        None,
        &format!("Call-Info: <sip:example.com>;appearance-index={index}\n"),
    );
    h.input(phone.src(), &req);
    let out = sent(h.take_to(addr(phone.port)));
    if out[0].status() == Some(200) {
        phone.learn(&out[0]);
    }
    out
}

fn state(n: &Sent) -> Vec<(u32, String)> {
    n.appearances()
}

#[test]
fn two_publishers_share_a_line() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut a = Phone::new(6000);
    let mut b = Phone::new(6001);
    let ea = publish(&mut h, &mut a, &ci(1, "alerting"), None)
        .header("SIP-ETag")
        .unwrap();
    assert_eq!(state(&notifies(&mut h, &w)[0]), [(1, "alerting".into())]);
    publish(
        &mut h,
        &mut b,
        &format!("{}{}", ci(2, "active"), ci(3, "held")),
        None,
    );
    assert_eq!(
        state(&notifies(&mut h, &w)[0]),
        [
            (1, "alerting".into()),
            (2, "active".into()),
            (3, "held".into())
        ]
    );
    // A removes its publication: B's appearances stay.
    publish(&mut h, &mut a, &format!("SIP-If-Match: {ea}\n"), Some(0));
    assert_eq!(
        state(&notifies(&mut h, &w)[0]),
        [(2, "active".into()), (3, "held".into())]
    );
}

#[test]
fn most_recent_claim_wins_and_older_comes_back() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut a = Phone::new(6000);
    let mut b = Phone::new(6001);
    publish(&mut h, &mut a, &ci(1, "held"), None);
    notifies(&mut h, &w);
    h.advance(10);
    let eb = publish(&mut h, &mut b, &ci(1, "active"), None)
        .header("SIP-ETag")
        .unwrap();
    assert_eq!(state(&notifies(&mut h, &w)[0]), [(1, "active".into())]);
    publish(&mut h, &mut b, &format!("SIP-If-Match: {eb}\n"), Some(0));
    assert_eq!(state(&notifies(&mut h, &w)[0]), [(1, "held".into())]);
}

#[test]
fn comma_separated_and_repeated_call_info_with_star_idle() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut a = Phone::new(6000);
    let ok = publish(
        &mut h,
        &mut a,
        "Call-Info: <sip:example.com>;appearance-index=2;appearance-state=active, <sip:example.com>;appearance-index=1;appearance-state=progressing\nCall-Info: <sip:example.com>;appearance-index=*;appearance-state=idle\n",
        None,
    );
    assert_eq!(ok.status(), Some(200));
    let n = notifies(&mut h, &w);
    assert_eq!(
        n[0].header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=1;appearance-state=progressing, <sip:example.com>;appearance-index=2;appearance-state=active, <sip:example.com>;appearance-index=*;appearance-state=idle"
    );
}

#[test]
fn seize_grant_notifies_seizer_and_watchers() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut p = Phone::new(7100);
    let out = seize(&mut h, &mut p, "1");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(out[0].header("Expires").unwrap(), "15");
    assert_eq!(out[1].sub_state(), "active;expires=15");
    assert_eq!(
        out[1].header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=1"
    );
    assert_eq!(out[1].header("Event").unwrap(), "line-seize");
    assert_eq!(state(&notifies(&mut h, &w)[0]), [(1, "seized".into())]);
}

#[test]
fn racing_seizes_one_wins() {
    let mut h = Harness::new();
    let mut p1 = Phone::new(7100);
    let mut p2 = Phone::new(7101);
    assert_eq!(seize(&mut h, &mut p1, "1")[0].status(), Some(200));
    let lost = seize(&mut h, &mut p2, "1");
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].status(), Some(480));
    assert!(lost[0].header("Retry-After").is_some());
    // `*` takes the lowest idle index.
    let out = seize(&mut h, &mut p2, "*");
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(
        out[1].header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=2"
    );
}

#[test]
fn seize_refused_on_published_call_and_above_max() {
    let cfg = engine::Config {
        max_appearances: Some(2),
        ..Default::default()
    };
    let mut h = Harness::with(cfg);
    let mut a = Phone::new(6000);
    publish(&mut h, &mut a, &ci(1, "active"), None);
    let mut p = Phone::new(7100);
    assert_eq!(seize(&mut h, &mut p, "1")[0].status(), Some(480));
    let mut p = Phone::new(7101);
    assert_eq!(seize(&mut h, &mut p, "3")[0].status(), Some(403));
    let mut p = Phone::new(7102);
    assert_eq!(
        seize(&mut h, &mut p, "*")[1].header("Call-Info").unwrap(),
        "<sip:example.com>;appearance-index=2"
    );
    let mut p = Phone::new(7103);
    assert_eq!(
        seize(&mut h, &mut p, "*")[0].status(),
        Some(480),
        "line full"
    );
    for bad in ["0", "-1", "abc", ""] {
        let mut p = Phone::new(7104);
        assert_eq!(
            seize(&mut h, &mut p, bad)[0].status(),
            Some(400),
            "index {bad:?}"
        );
    }
    let mut p = Phone::new(7105);
    let req = p.subscribe(LINE, "line-seize", None, "");
    h.input(p.src(), &req);
    let r = sent(h.take_to(addr(7105)));
    assert_eq!(r[0].status(), Some(400));
}

#[test]
fn seize_released_by_unsubscribe() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut p = Phone::new(7100);
    let out = seize(&mut h, &mut p, "1");
    h.input(p.src(), &reply(&out[1], 200));
    notifies(&mut h, &w);
    let req = p.subscribe(LINE, "line-seize", Some(0), "");
    h.input(p.src(), &req);
    let out = sent(h.take_to(addr(7100)));
    assert_eq!(out[0].status(), Some(200));
    assert_eq!(out[1].sub_state(), "terminated;reason=timeout");
    assert!(state(&notifies(&mut h, &w)[0]).is_empty());
    let mut p2 = Phone::new(7101);
    assert_eq!(seize(&mut h, &mut p2, "1")[0].status(), Some(200));
}

#[test]
fn seize_expires_on_the_clock_and_refresh_extends_it() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut p = Phone::new(7100);
    let out = seize(&mut h, &mut p, "1");
    h.input(p.src(), &reply(&out[1], 200));
    notifies(&mut h, &w);
    h.advance(10_000);
    let req = p.subscribe(LINE, "line-seize", Some(15), "");
    h.input(p.src(), &req);
    let out = sent(h.take_to(addr(7100)));
    assert_eq!(out[0].status(), Some(200));
    h.input(p.src(), &reply(&out[1], 200));
    assert!(
        notifies(&mut h, &w).is_empty(),
        "a refresh changes nothing for watchers"
    );
    h.advance(14_999);
    assert!(h.take().is_empty());
    h.advance(1);
    let out = sent(h.take_to(addr(7100)));
    assert_eq!(out[0].sub_state(), "terminated;reason=timeout");
    assert!(state(&notifies(&mut h, &w)[0]).is_empty());
    assert!(h.store.subs.values().all(|s| s.package != "line-seize"));
}

#[test]
fn published_call_ends_the_seize() {
    let mut h = Harness::new();
    let mut w = Phone::new(7000);
    watch(&mut h, &mut w);
    let mut p = Phone::new(7100);
    let out = seize(&mut h, &mut p, "1");
    h.input(p.src(), &reply(&out[1], 200));
    notifies(&mut h, &w);
    let mut a = Phone::new(6000);
    assert_eq!(
        publish(&mut h, &mut a, &ci(1, "progressing"), None).status(),
        Some(200)
    );
    let out = sent(h.take_to(addr(7100)));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].sub_state(), "terminated;reason=noresource");
    let n = notifies(&mut h, &w);
    assert_eq!(n.len(), 1);
    assert_eq!(state(&n[0]), [(1, "progressing".into())]);
}

#[test]
fn seize_survives_restart() {
    let mut h = Harness::new();
    let mut p = Phone::new(7100);
    let out = seize(&mut h, &mut p, "4");
    h.input(p.src(), &reply(&out[1], 200));
    h.restart(engine::Config::default());
    // Its first NOTIFY was recent, so the restart sends the state again,
    // with a CSeq above it.
    let resync = sent(h.take_to(addr(7100)));
    assert_eq!(resync.len(), 1);
    assert!(resync[0].cseq() > out[1].cseq());
    h.input(p.src(), &reply(&resync[0], 200));
    let mut p2 = Phone::new(7101);
    assert_eq!(seize(&mut h, &mut p2, "4")[0].status(), Some(480));
    h.advance(15_000);
    let out = sent(h.take_to(addr(7100)));
    assert_eq!(out[0].sub_state(), "terminated;reason=timeout");
    assert_eq!(out[0].cseq(), resync[0].cseq() + 1);
}
