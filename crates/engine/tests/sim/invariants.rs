//! The properties every run must keep, checked against the real engine's
//! read-only views (`engine::inspect`), the store and what phones saw:
//!
//! - (a) at most one owner per appearance: never two live seizes of one
//!   index of a line, and no seize outlives a published call on its index;
//! - (b) after the calm period every live watcher's last state is the line;
//! - (c) nothing the engine holds is past its expiry once timers ran;
//! - (d) everything a phone got a 200 for survives a crash;
//! - (e) no NOTIFY after the terminated one, no CSeq reused for other
//!   content (recorded by the phones as they receive).

use crate::phone::{Ap, Kind, Mode};
use crate::world::{line_uri, World, LINES};
use engine::package::{PubState, SubData};
use std::collections::BTreeMap;

/// The engine's table of a line, as a watcher would read it off a NOTIFY.
pub fn engine_line(w: &World, resource: &str) -> Vec<Ap> {
    w.engine
        .line(resource)
        .into_iter()
        .map(|a| (a.index, a.state.as_str().to_string(), a.uri))
        .collect()
}

/// Checks cheap enough for every step: (a), (e), and line-change tracking.
pub fn after_step(w: &mut World) -> Result<(), String> {
    for p in &w.phones {
        if let Some(v) = p.violations.first() {
            return Err(format!("(e) {v}"));
        }
    }
    if !std::mem::take(&mut w.touched) {
        return Ok(());
    }
    one_owner(w)?;
    for i in 0..LINES {
        let now = engine_line(w, &line_uri(i));
        if now != w.lines[i].0 {
            w.lines[i] = (now, w.now);
        }
    }
    Ok(())
}

/// (a) At most one live seize per (line, index), and none on an index a
/// live publication claims with a call state.
pub fn one_owner(w: &World) -> Result<(), String> {
    let mut seized: BTreeMap<(&str, u32), &str> = BTreeMap::new();
    let subs: Vec<engine::SubscriptionRecord> = w.engine.subscriptions().collect();
    for s in subs.iter().filter(|s| s.package == "line-seize") {
        let Ok(SubData::Seize(index)) = serde_json::from_str::<SubData>(&s.state) else {
            return Err(format!(
                "(a) seize {} has unreadable state {}",
                s.call_id, s.state
            ));
        };
        if let Some(other) = seized.insert((s.resource.as_str(), index), &s.call_id) {
            return Err(format!(
                "(a) two live seizes of {} appearance {index}: {other} and {}",
                s.resource, s.call_id
            ));
        }
    }
    for p in w.engine.publications() {
        let Ok(PubState::Appearances(claims)) = serde_json::from_str::<PubState>(&p.state) else {
            continue;
        };
        for c in claims.iter().filter(|c| c.state.is_call()) {
            if let Some(s) = seized.get(&(p.resource.as_str(), c.index)) {
                return Err(format!(
                    "(a) seize {s} still live on {} appearance {} which publication {} holds as {}",
                    p.resource,
                    c.index,
                    p.id,
                    c.state.as_str()
                ));
            }
        }
    }
    Ok(())
}

/// (c) After `handle_timeout(now)`, nothing live has `expires_at <= now`.
pub fn nothing_outlives_expiry(w: &World) -> Result<(), String> {
    let now = w.now;
    if let Some(s) = w.engine.subscriptions().find(|s| s.expires_at <= now) {
        return Err(format!(
            "(c) subscription {} ({}) live {} ms past its expiry",
            s.call_id,
            s.package,
            now - s.expires_at
        ));
    }
    if let Some(p) = w.engine.publications().find(|p| p.expires_at <= now) {
        return Err(format!(
            "(c) publication {} live {} ms past its expiry",
            p.id,
            now - p.expires_at
        ));
    }
    Ok(())
}

/// (d) Right after a restart: every subscription a phone got a 200 for and
/// still holds (not ended, not expired even by the phone's earliest
/// reckoning, no request of its own in flight) is live again, unless the
/// store durably deleted it (the engine ended it deliberately and its
/// terminated NOTIFY may have died with the crash); every publication whose
/// ETag a phone holds is live with that ETag and the state it published.
pub fn nothing_lost(w: &mut World) -> Result<(), String> {
    let mut checked = 0;
    let now = w.now;
    let subs: Vec<engine::SubscriptionRecord> = w.engine.subscriptions().collect();
    let live: BTreeMap<&str, &engine::SubscriptionRecord> =
        subs.iter().map(|s| (s.call_id.as_str(), s)).collect();
    for p in w.phones.iter().filter(|p| p.mode == Mode::Normal) {
        let busy: Option<&str> = match &p.tx {
            Some(tx) => match &tx.purpose {
                crate::phone::Purpose::Subscribe { call_id, .. } => Some(call_id.as_str()),
                crate::phone::Purpose::Publish { .. } => Some(""),
            },
            None => None,
        };
        for d in p.dialogs.values() {
            if !d.believed_live(now)
                || busy == Some(d.call_id.as_str())
                || w.store.deleted_subs.contains(&d.call_id)
            {
                continue;
            }
            if !live.contains_key(d.call_id.as_str()) {
                return Err(format!(
                    "(d) crash {} lost {:?} subscription {} of phone {} (granted, {} ms left)",
                    w.crash_count,
                    d.kind,
                    d.call_id,
                    p.idx,
                    d.expires_at - now
                ));
            }
            checked += 1;
        }
        if let (Some(pb), None) = (&p.publication, busy) {
            if pb.expires_at <= now {
                continue;
            }
            let Some(rec) = w.engine.publications().find(|r| r.etag == pb.etag) else {
                return Err(format!(
                    "(d) crash {} lost the publication of phone {} (ETag {})",
                    w.crash_count, p.idx, pb.etag
                ));
            };
            let Ok(PubState::Appearances(claims)) = serde_json::from_str::<PubState>(&rec.state)
            else {
                return Err(format!("(d) publication {} has unreadable state", rec.id));
            };
            let got: Vec<(u32, &str)> =
                claims.iter().map(|c| (c.index, c.state.as_str())).collect();
            let mut want = pb.claims.clone();
            want.sort();
            if got != want {
                return Err(format!(
                    "(d) after crash {} publication of phone {} has {got:?}, published {want:?}",
                    w.crash_count, p.idx
                ));
            }
            checked += 1;
        }
    }
    w.stats.survivors_checked += checked;
    Ok(())
}

/// (b) Every call-info subscription the engine holds for a phone that still
/// answers shows, in the last NOTIFY that phone got (by CSeq), the line as
/// the engine has it now.
pub fn watchers_match(w: &mut World) -> Result<(), String> {
    let mut checked = 0;
    for s in w
        .engine
        .subscriptions()
        .filter(|s| s.package == "call-info")
    {
        let Some(p) = w.phones.iter().find(|p| p.dialogs.contains_key(&s.call_id)) else {
            return Err(format!(
                "(b) engine holds subscription {} no phone made",
                s.call_id
            ));
        };
        if p.mode != Mode::Normal {
            continue;
        }
        let d = &p.dialogs[&s.call_id];
        debug_assert_eq!(d.kind, Kind::Watch);
        let want = engine_line(w, &s.resource);
        if d.last_state.as_ref() != Some(&want) {
            return Err(format!(
                "(b) phone {} watcher {} last saw {:?} (NOTIFY CSeq {}), line {} is {:?}",
                p.idx, s.call_id, d.last_state, d.last_cseq, s.resource, want
            ));
        }
        checked += 1;
    }
    w.stats.watchers_checked += checked;
    Ok(())
}
