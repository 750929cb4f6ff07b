//! A hash map in many small tables, so that no insert pays for moving
//! everything.
//!
//! A hash table that outgrows its capacity allocates one twice as large and
//! moves every entry, all inside the insert that crossed the line. For the
//! server's transaction table over UDP (Timer J keeps each transaction for
//! 32 s, so the table grows for 32 s at the request rate) that insert took
//! 3 to 6 ms at 7 400 PUBLISHes/s, most of it first-touch faults on the new
//! table, and every request behind it waited: the largest part of the p99
//! of a paced run. Split in [`SHARDS`] tables, each grows on its own and
//! moves a sixty-fourth as much at a time.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// A burst (100k phones re-registering after an outage) grows a table that
/// then sits mostly empty: give the memory back once it is under a quarter
/// used, keeping room to double. Tables of at most `floor` slots are left
/// as they are.
pub(crate) fn give_back<K: Hash + Eq, V, S: std::hash::BuildHasher>(
    map: &mut HashMap<K, V, S>,
    floor: usize,
) {
    if map.capacity() > floor && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// Tables per map.
const SHARDS: usize = 64;

/// A hash map split by key hash into [`SHARDS`] independent tables.
pub(crate) struct Sharded<K, V> {
    /// Picks the table. Its keys differ from the tables' own, so the keys
    /// of one table do not share the hash bits that table probes with.
    pick: ahash::RandomState,
    tables: Box<[HashMap<K, V, ahash::RandomState>]>,
    len: usize,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    /// Empty map.
    pub(crate) fn new() -> Self {
        Sharded {
            pick: ahash::RandomState::new(),
            tables: (0..SHARDS).map(|_| HashMap::default()).collect(),
            len: 0,
        }
    }

    fn index<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // The top bits: ahash mixes them as well as the bottom ones.
        (self.pick.hash_one(key) >> (64 - SHARDS.trailing_zeros())) as usize
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.tables[self.index(key)].get(key)
    }

    pub(crate) fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.tables[self.index(key)].get_key_value(key)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.index(key);
        self.tables[i].get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let i = self.index(&key);
        let old = self.tables[i].insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.index(key);
        let old = self.tables[i].remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// After a burst: give memory back from tables under a quarter used.
    pub(crate) fn give_back(&mut self) {
        for t in self.tables.iter_mut() {
            give_back(t, 64);
        }
    }

    /// Entries the tables have room for without growing.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.tables.iter().map(|t| t.capacity()).sum()
    }

    /// The largest table's capacity: what one growth step can move.
    #[cfg(test)]
    fn largest(&self) -> usize {
        self.tables.iter().map(|t| t.capacity()).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn it_is_a_map() {
        let mut m: Sharded<Arc<str>, u32> = Sharded::new();
        for i in 0..10_000u32 {
            assert_eq!(m.insert(Arc::from(format!("k{i}")), i), None);
        }
        assert_eq!(m.insert(Arc::from("k7"), 70), Some(7));
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get("k7"), Some(&70));
        assert_eq!(m.get("k10000"), None);
        *m.get_mut("k8").expect("present") += 1;
        assert_eq!(
            m.get_key_value("k8").map(|(k, v)| (&**k, *v)),
            Some(("k8", 9))
        );
        for i in (0..10_000u32).step_by(2) {
            assert!(m.remove(format!("k{i}").as_str()).is_some());
        }
        assert_eq!(m.remove("k0"), None);
        assert_eq!(m.len(), 5_000);
        assert!((1..10_000)
            .step_by(2)
            .all(|i| m.get(format!("k{i}").as_str()).is_some()));
    }

    #[test]
    fn keys_spread_over_the_tables_and_memory_comes_back() {
        let mut m: Sharded<u64, ()> = Sharded::new();
        for i in 0..100_000u64 {
            m.insert(i, ());
        }
        // Each table holds about 1/64 of the keys, so no growth step moves
        // more than a small part of the map.
        assert!(
            m.largest() * 16 <= m.capacity(),
            "largest table {} of {}",
            m.largest(),
            m.capacity()
        );
        for i in 0..99_000u64 {
            m.remove(&i);
        }
        m.give_back();
        assert_eq!(m.len(), 1_000);
        assert!(
            m.capacity() < 10_000,
            "capacity {} after the burst",
            m.capacity()
        );
    }
}
