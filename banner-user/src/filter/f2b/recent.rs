//! The connections a filter remembers, least recently remembered first out: a slab of
//! entries linked in the order they were put in, found through a table of slot numbers.
//!
//! Why not a `HashMap` and a queue of keys: when many connections are open at once (a
//! brute force from thousands of clients, each line from another sshd pid) every line
//! missed the cache several times: the map's entry, the queue's stale front looked up again
//! in the map to learn whether it was still live, and the entry evicted. Here the oldest is
//! the list's tail, unlinked without a lookup (its hash is kept in its slot), and its slot
//! takes the entry put in, so evicting and inserting touch one slot.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Slot<K, V> {
    entry: Option<(K, V)>,
    hash: u64,
    /// Toward the oldest and the newest.
    older: u32,
    newer: u32,
}

#[derive(Debug)]
pub struct Recent<K, V, S> {
    slots: Vec<Slot<K, V>>,
    index: HashTable<u32>,
    hasher: S,
    newest: u32,
    oldest: u32,
    /// Slots emptied by `remove`, taken again first (last emptied, still in the cache).
    free: Vec<u32>,
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Default for Recent<K, V, S> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: HashTable::new(),
            hasher: S::default(),
            newest: NONE,
            oldest: NONE,
            free: Vec::new(),
        }
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Recent<K, V, S> {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn find(&self, key: &K) -> Option<(u64, u32)> {
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        let at = *self.index.find(hash, |&i| {
            slots[i as usize]
                .entry
                .as_ref()
                .is_some_and(|(k, _)| k == key)
        })?;
        Some((hash, at))
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_some()
    }

    /// Take the entry of `key` out.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let (hash, at) = self.find(key)?;
        let (_, v) = self.take(hash, at)?;
        self.free.push(at);
        Some(v)
    }

    /// Drop the entry of `key`, where it lies (see [`Self::discard`]).
    pub fn forget_key(&mut self, key: &K) {
        if let Some((hash, at)) = self.find(key) {
            self.discard(hash, at);
        }
    }

    /// The entry put in longest ago.
    pub fn oldest(&self) -> Option<(&K, &V)> {
        let slot = self.slots.get(self.oldest as usize)?;
        slot.entry.as_ref().map(|(k, v)| (k, v))
    }

    /// Take the entry put in longest ago out.
    #[cfg(test)]
    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let at = self.oldest;
        let hash = self.slots.get(at as usize)?.hash;
        let kv = self.take(hash, at)?;
        self.free.push(at);
        Some(kv)
    }

    /// Put `key` in as the newest, replacing what it had. When `evict(len, oldest)` says
    /// so, the oldest entries go first (and their slots are taken again).
    #[cfg(test)]
    pub fn insert(&mut self, key: K, value: V, evict: impl FnMut(usize, &V) -> bool) {
        if let Some((hash, at)) = self.find(&key) {
            self.discard(hash, at);
        }
        self.insert_absent(key, value, evict);
    }

    /// [`Self::insert`] for a key the caller has just looked for and not found (a filter's
    /// new connection): not looked for again.
    pub fn insert_absent(&mut self, key: K, value: V, mut evict: impl FnMut(usize, &V) -> bool) {
        debug_assert!(self.find(&key).is_none(), "the key is not absent");
        while let Some((_, v)) = self.oldest() {
            if !evict(self.len(), v) {
                break;
            }
            let at = self.oldest;
            if let Some(hash) = self.slots.get(at as usize).map(|s| s.hash) {
                self.discard(hash, at);
            }
        }
        let hash = self.hasher.hash_one(&key);
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                self.slots.push(Slot {
                    entry: None,
                    hash,
                    older: NONE,
                    newer: NONE,
                });
                (self.slots.len() - 1) as u32
            }
        };
        // Written where it lives (an entry is a few hundred bytes: moving it through a
        // new slot was a copy more).
        if let Some(slot) = self.slots.get_mut(at as usize) {
            slot.entry = Some((key, value));
            slot.hash = hash;
        }
        self.link_newest(at);
        let slots = &self.slots;
        self.index
            .insert_unique(hash, at, |&i| slots[i as usize].hash);
    }

    /// The entry of `key`, made the newest (as if put in again, without moving it).
    pub fn refresh(&mut self, key: &K) -> Option<&mut V> {
        let (_, at) = self.find(key)?;
        self.unlink(at);
        self.link_newest(at);
        self.slots
            .get_mut(at as usize)?
            .entry
            .as_mut()
            .map(|(_, v)| v)
    }

    /// The entry put in (or refreshed) last.
    pub fn newest_mut(&mut self) -> Option<&mut V> {
        let slot = self.slots.get_mut(self.newest as usize)?;
        slot.entry.as_mut().map(|(_, v)| v)
    }

    /// Unlink slot `at` (holding an entry hashed `hash`) and take its entry (None: the
    /// slot is empty, which a linked slot never is).
    fn take(&mut self, hash: u64, at: u32) -> Option<(K, V)> {
        let kv = self.slots.get_mut(at as usize)?.entry.take()?;
        self.forget(hash, at);
        Some(kv)
    }

    /// [`Self::take`], the entry dropped where it is, and its slot free.
    fn discard(&mut self, hash: u64, at: u32) {
        let Some(slot) = self.slots.get_mut(at as usize) else {
            return;
        };
        // Dropped by assignment, where it lies: `take` would first move its few hundred
        // bytes out.
        if slot.entry.is_some() {
            slot.entry = None;
            self.forget(hash, at);
            self.free.push(at);
        }
    }

    /// Slot `at` out of the index and the order.
    fn forget(&mut self, hash: u64, at: u32) {
        if let Ok(found) = self.index.find_entry(hash, |&i| i == at) {
            found.remove();
        }
        self.unlink(at);
    }

    /// Slot `at` out of the order (its neighbours joined).
    fn unlink(&mut self, at: u32) {
        let Some(slot) = self.slots.get(at as usize) else {
            return;
        };
        let (older, newer) = (slot.older, slot.newer);
        match self.slots.get_mut(older as usize) {
            Some(s) => s.newer = newer,
            None => self.oldest = newer,
        }
        match self.slots.get_mut(newer as usize) {
            Some(s) => s.older = older,
            None => self.newest = older,
        }
    }

    /// Slot `at` (in no order) in as the newest.
    fn link_newest(&mut self, at: u32) {
        let newest = self.newest;
        if let Some(slot) = self.slots.get_mut(at as usize) {
            slot.older = newest;
            slot.newer = NONE;
        }
        match self.slots.get_mut(newest as usize) {
            Some(prev) => prev.newer = at,
            None => self.oldest = at,
        }
        self.newest = at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type R = Recent<u64, &'static str, std::hash::RandomState>;

    fn order(r: &mut R) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some((k, _)) = r.pop_oldest() {
            out.push(k);
        }
        out
    }

    #[test]
    fn oldest_goes_first_and_a_put_again_entry_is_newest() {
        let mut r = R::default();
        for k in 1..=4 {
            r.insert(k, "v", |_, _| false);
        }
        r.insert(2, "again", |_, _| false);
        assert_eq!(r.len(), 4);
        assert_eq!(r.remove(&3), Some("v"));
        assert_eq!(r.remove(&3), None);
        assert!(r.contains_key(&2) && !r.contains_key(&3));
        assert_eq!(r.oldest(), Some((&1, &"v")));
        r.insert(5, "v", |_, _| false);
        assert_eq!(order(&mut r), vec![1, 4, 2, 5]);
        assert_eq!(r.len(), 0);
        assert!(r.oldest().is_none());
        // Emptied, it fills again from nothing.
        r.insert(9, "v", |_, _| false);
        assert_eq!(order(&mut r), vec![9]);
    }

    #[test]
    fn a_refreshed_entry_is_changed_in_place_and_newest() {
        let mut r = R::default();
        for k in 1..=4 {
            r.insert(k, "v", |_, _| false);
        }
        // The oldest, one in the middle, the newest, and the only one.
        for (k, expect) in [(1, [2, 3, 4, 1]), (3, [2, 4, 1, 3]), (3, [2, 4, 1, 3])] {
            *r.refresh(&k).unwrap() = "changed";
            assert_eq!(r.newest_mut().map(|v| *v), Some("changed"));
            let mut copy = R::default();
            let mut keys = Vec::new();
            while let Some((key, v)) = r.pop_oldest() {
                keys.push(key);
                copy.insert(key, v, |_, _| false);
            }
            assert_eq!(keys, expect);
            r = copy;
        }
        assert!(r.refresh(&9).is_none());
        let mut one = R::default();
        one.insert(7, "v", |_, _| false);
        assert!(one.refresh(&7).is_some());
        one.insert(8, "v", |_, _| false);
        assert_eq!(order(&mut one), vec![7, 8]);
        // Evicted in place: the slot taken again, the order intact.
        let mut r = R::default();
        for k in 0..3 {
            r.insert(k, "v", |len, _| len >= 2);
        }
        assert_eq!(r.slots.len(), 2);
        assert_eq!(order(&mut r), vec![1, 2]);
    }

    #[test]
    fn eviction_bounds_it_and_reuses_slots() {
        let mut r = R::default();
        for k in 0..10_000u64 {
            r.insert(k, "v", |len, _| len >= 100);
        }
        assert_eq!(r.len(), 100);
        assert!(r.slots.len() <= 101, "{} slots", r.slots.len());
        assert_eq!(order(&mut r), (9_900..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn removing_the_newest_the_oldest_and_the_middle_keeps_the_links() {
        let mut r = R::default();
        for k in 0..5 {
            r.insert(k, "v", |_, _| false);
        }
        r.remove(&4);
        r.remove(&0);
        r.remove(&2);
        r.insert(7, "v", |_, _| false);
        assert_eq!(order(&mut r), vec![1, 3, 7]);
    }

    #[test]
    fn a_forgotten_entry_is_dropped_its_slot_reused_and_the_links_kept() {
        use std::rc::Rc;
        let alive = Rc::new(());
        let mut r: Recent<u64, Rc<()>, std::hash::RandomState> = Recent::default();
        for k in 0..4 {
            r.insert(k, Rc::clone(&alive), |_, _| false);
        }
        r.forget_key(&2);
        r.forget_key(&0);
        r.forget_key(&9);
        assert_eq!(Rc::strong_count(&alive), 3, "two of four entries dropped");
        assert!(!r.contains_key(&2) && r.contains_key(&3));
        r.insert(5, Rc::clone(&alive), |_, _| false);
        assert_eq!(r.slots.len(), 4, "a forgotten entry's slot is taken again");
        let mut keys = Vec::new();
        while let Some((k, _)) = r.pop_oldest() {
            keys.push(k);
        }
        assert_eq!(keys, vec![1, 3, 5]);
        assert_eq!(Rc::strong_count(&alive), 1);
    }
}
