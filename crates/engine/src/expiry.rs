//! The clock of what expires: publications and subscriptions, each at its
//! `expires_at`, fired earliest first (a publication before a subscription
//! due the same millisecond, subscriptions among themselves by key).
//!
//! Subscriptions are many (one per phone and line) and long-lived, so
//! their entries sit in one flat binary heap of sixteen bytes each rather
//! than in a B-tree: a B-tree's nodes are small allocations of the size
//! class the transactions of a SUBSCRIBE burst also use, so the nodes that
//! stayed pinned the slabs those transactions left behind (a third of the
//! server's RSS at 100k subscriptions). A refresh or an end does not look
//! for the old entry: it goes stale and is dropped when it reaches the top
//! or when stale entries outnumber live ones. Whether an entry still holds
//! is the caller's to say (the subscription is live and expires then).

use crate::subscription::SubKey;
use crate::time::Time;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// Something that expires on the clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expiry {
    Publication(String),
    Subscription(SubKey),
}

/// Below this many entries the heap is never compacted.
const COMPACT_FLOOR: usize = 1024;

#[derive(Default)]
pub(crate) struct Expiries {
    pubs: BTreeSet<(Time, String)>,
    subs: BinaryHeap<Reverse<(Time, SubKey)>>,
}

impl Expiries {
    pub(crate) fn add_publication(&mut self, at: Time, id: String) {
        self.pubs.insert((at, id));
    }

    pub(crate) fn remove_publication(&mut self, at: Time, id: String) {
        self.pubs.remove(&(at, id));
    }

    /// The subscription expires at `at`; an entry it had before goes stale.
    pub(crate) fn add_subscription(&mut self, at: Time, key: SubKey) {
        self.subs.push(Reverse((at, key)));
    }

    /// The earliest instant on the clock (after [`Expiries::prune`], a live one).
    pub(crate) fn first(&self) -> Option<Time> {
        let sub = self.subs.peek().map(|Reverse((at, _))| *at);
        let publication = self.pubs.first().map(|(at, _)| *at);
        match (publication, sub) {
            (Some(p), Some(s)) => Some(p.min(s)),
            (p, s) => p.or(s),
        }
    }

    /// The earliest entry due at `now`, removed, with its instant. A
    /// subscription's may be stale: the caller checks.
    pub(crate) fn pop_due(&mut self, now: Time) -> Option<(Time, Expiry)> {
        let sub = self.subs.peek().map(|Reverse((at, _))| *at);
        let publication = self.pubs.first().map(|(at, _)| *at);
        match (publication, sub) {
            (Some(p), s) if p <= now && s.is_none_or(|s| p <= s) => self
                .pubs
                .pop_first()
                .map(|(at, id)| (at, Expiry::Publication(id))),
            (_, Some(s)) if s <= now => self
                .subs
                .pop()
                .map(|Reverse((at, key))| (at, Expiry::Subscription(key))),
            _ => None,
        }
    }

    /// Drop stale subscription entries: those on top, so that
    /// [`Expiries::first`] names a live instant, and all of them once they
    /// outnumber the `live` ones, so refreshes and ends cannot grow the heap
    /// without bound. `holds(at, key)`: the subscription is live and
    /// expires at `at`.
    pub(crate) fn prune(&mut self, live: usize, holds: impl Fn(Time, SubKey) -> bool) {
        if self.subs.len() > COMPACT_FLOOR && self.subs.len() > 2 * live {
            self.subs.retain(|Reverse((at, key))| holds(*at, *key));
            if self.subs.capacity() > 4 * self.subs.len().max(COMPACT_FLOOR) {
                self.subs.shrink_to(2 * self.subs.len());
            }
        }
        while let Some(Reverse((at, key))) = self.subs.peek() {
            if holds(*at, *key) {
                break;
            }
            self.subs.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::SubKey;

    fn key(i: u32) -> SubKey {
        SubKey::new(i, 0)
    }

    #[test]
    fn fires_in_time_order_publications_first_on_ties() {
        let mut e = Expiries::default();
        e.add_subscription(Time(20), key(2));
        e.add_subscription(Time(10), key(1));
        e.add_publication(Time(20), "p".into());
        e.add_subscription(Time(20), key(0));
        assert_eq!(e.first(), Some(Time(10)));
        assert_eq!(e.pop_due(Time(5)), None);
        let fired: Vec<_> = std::iter::from_fn(|| e.pop_due(Time(30))).collect();
        assert_eq!(
            fired,
            vec![
                (Time(10), Expiry::Subscription(key(1))),
                (Time(20), Expiry::Publication("p".into())),
                (Time(20), Expiry::Subscription(key(0))),
                (Time(20), Expiry::Subscription(key(2))),
            ]
        );
        assert_eq!(e.first(), None);
    }

    #[test]
    fn stale_entries_leave_the_top_and_do_not_pile_up() {
        let mut e = Expiries::default();
        // One subscription refreshed to ever shorter expiries, so its stale
        // entries sit under the live one: only compaction removes them.
        let last = Time(10);
        for i in (1..=5000).rev() {
            e.add_subscription(Time(10 * i), key(7));
            e.prune(1, |at, k| k == key(7) && at == Time(10 * i));
        }
        assert!(e.subs.len() <= COMPACT_FLOOR + 1, "{}", e.subs.len());
        assert_eq!(e.first(), Some(last));
        e.add_publication(Time(1), "p".into());
        e.remove_publication(Time(1), "p".into());
        assert_eq!(e.first(), Some(last));
    }
}
