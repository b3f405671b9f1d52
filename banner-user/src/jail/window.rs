//! Failures per address inside the window, for up to `max_tracked` addresses.
//!
//! Laid out for a million tracked addresses (a distributed brute force, an IPv6 sweep):
//! each address is one 40-byte slot in a slab, found through a table of 4-byte slot
//! numbers, and kept in order of last failure by links between slots, so forgetting the
//! least recent is O(1) and needs no queue beside the map. A `HashMap<IpAddr, _>` plus an
//! order queue cost about 190 bytes an address at a million (buckets doubled past 917k,
//! the queue holding stale pairs); this costs about 52 (the slot, the index's 5 bytes a
//! bucket at its load, and the slab's room to grow).

use std::{
    hash::{BuildHasher, RandomState},
    net::IpAddr,
};

use hashbrown::HashTable;

/// Failure times of one address, oldest first, in 12 bytes: up to three inline (maxretry 3
/// keeps at most two; 0 marks a free place, as a time is never 0), more in the window's
/// [`Spill`] table (the first word [`SPILLED`], the second the list's number). Most tracked
/// addresses never fail more than a few times, and a slot stays 40 bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Times([u32; 3]);

const SPILLED: u32 = u32::MAX;

/// The lists of times that outgrew their slot, and the numbers of freed ones.
#[derive(Debug, Default)]
pub(super) struct Spill {
    lists: Vec<Vec<u32>>,
    free: Vec<u32>,
}

impl Spill {
    fn keep(&mut self, list: Vec<u32>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.lists[i as usize] = list;
                i
            }
            None => {
                self.lists.push(list);
                (self.lists.len() - 1) as u32
            }
        }
    }
}

impl Times {
    pub(super) fn is_spilled(&self) -> bool {
        self.0[0] == SPILLED
    }

    pub(super) fn as_slice<'a>(&'a self, spill: &'a Spill) -> &'a [u32] {
        if self.is_spilled() {
            return &spill.lists[self.0[1] as usize];
        }
        let n = self.0.iter().take_while(|&&x| x != 0).count();
        &self.0[..n]
    }

    /// Keep only times after `after`, then add `t` (keeping the list sorted), at most
    /// `keep_at_most` of the newest. No allocation while three fit inline.
    pub(super) fn push_within(
        &mut self,
        spill: &mut Spill,
        after: u32,
        t: u32,
        keep_at_most: usize,
    ) {
        // 0 and SPILLED mark places; no real time is either.
        let t = t.clamp(1, SPILLED - 1);
        if !self.is_spilled() {
            let mut kept = [0u32; 4];
            let mut n = 0;
            for &x in self.as_slice(spill) {
                if x > after {
                    kept[n] = x;
                    n += 1;
                }
            }
            let pos = kept[..n].partition_point(|&x| x <= t);
            kept.copy_within(pos..n, pos + 1);
            kept[pos] = t;
            n += 1;
            let start = n.saturating_sub(keep_at_most);
            let n = n - start;
            if n <= 3 {
                self.0 = [0; 3];
                self.0[..n].copy_from_slice(&kept[start..start + n]);
                return;
            }
            let list = spill.keep(kept[start..start + n].to_vec());
            self.0 = [SPILLED, list, 0];
            return;
        }
        let v = &mut spill.lists[self.0[1] as usize];
        v.retain(|&x| x > after);
        let pos = v.partition_point(|&x| x <= t);
        v.insert(pos, t);
        if v.len() > keep_at_most {
            let extra = v.len() - keep_at_most;
            v.drain(..extra);
        }
    }

    fn newest(&self, spill: &Spill) -> u32 {
        self.as_slice(spill).last().copied().unwrap_or(0)
    }

    /// Empty again; a spilled list goes back to the table.
    fn clear(&mut self, spill: &mut Spill) {
        if self.is_spilled() {
            let i = self.0[1];
            spill.lists[i as usize] = Vec::new();
            spill.free.push(i);
        }
        self.0 = [0; 3];
    }
}

/// What a failure's session makes of it, given the address's session word.
pub(super) enum SessionSays {
    /// It counts; the address's session word becomes this (None: unchanged, the failure
    /// has no session).
    Count(Option<u32>),
    /// A failure of this session counted already: the address's word becomes this.
    Fold(u32),
}

/// A tracked address in 16 bytes with no padding (an `IpAddr` is 17, 20 with alignment):
/// IPv4 as its IPv4-mapped IPv6 form, which is the same host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key([u32; 4]);

impl Key {
    fn of(addr: IpAddr) -> Self {
        let v6 = match addr {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        let o = v6.octets();
        let word = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
        Self([word(0), word(4), word(8), word(12)])
    }
}

/// No slot: the end of the recency list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Slot {
    key: Key,
    /// The address's current session and its state, packed (see `super::SESSION_*`): one
    /// session per address is enough in practice. An address running parallel sessions
    /// may be counted a little early, never late.
    session: u32,
    /// Neighbours in order of last failure (toward the least and the most recent); for a
    /// free slot, `newer` links the free list.
    older: u32,
    newer: u32,
    times: Times,
}

/// Failures per address inside the window, with a bound on how many addresses are tracked.
#[derive(Debug)]
pub struct FailureWindow {
    slots: Vec<Slot>,
    spill: Spill,
    /// Slot numbers of the tracked addresses, hashed by key with a random seed (addresses
    /// are the attacker's choice: no flooding one bucket).
    index: HashTable<u32>,
    hasher: RandomState,
    /// Least and most recently failing (NIL when none), and the first free slot.
    oldest: u32,
    newest: u32,
    free: u32,
    pub(super) evicted: u64,
}

impl Default for FailureWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl FailureWindow {
    pub fn new() -> Self {
        Self {
            slots: Vec::new(),
            spill: Spill::default(),
            index: HashTable::new(),
            hasher: RandomState::new(),
            oldest: NIL,
            newest: NIL,
            free: NIL,
            evicted: 0,
        }
    }

    fn find(&self, key: Key) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&i| self.slots[i as usize].key == key)
            .copied()
    }

    /// Record a failure of `addr` at `t` (unix seconds) and return how many failures it now
    /// has within the last `findtime` seconds; None when `session` (asked with the
    /// address's session word, 0 for an address not tracked) folds it into a failure
    /// already counted. One lookup of the address serves both.
    pub(super) fn record(
        &mut self,
        session: impl FnOnce(u32) -> SessionSays,
        addr: IpAddr,
        t: u32,
        findtime: u32,
        maxretry: u32,
        max_tracked: usize,
    ) -> Option<u32> {
        let key = Key::of(addr);
        let after = t.saturating_sub(findtime);
        let i = match self.find(key) {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                match session(slot.session) {
                    SessionSays::Fold(word) => {
                        slot.session = word;
                        return None;
                    }
                    SessionSays::Count(word) => {
                        if let Some(word) = word {
                            slot.session = word;
                        }
                    }
                }
                self.unlink(i);
                i
            }
            None => match session(0) {
                SessionSays::Fold(_) => return None,
                SessionSays::Count(word) => {
                    // Make room first, so the table never holds more than max_tracked.
                    while self.index.len() >= max_tracked.max(1) && self.oldest != NIL {
                        self.remove(self.oldest);
                        self.evicted += 1;
                    }
                    self.insert(key, word.unwrap_or(0))
                }
            },
        };
        self.push_newest(i);
        let times = &mut self.slots[i as usize].times;
        times.push_within(&mut self.spill, after, t, maxretry.max(1) as usize);
        Some(times.as_slice(&self.spill).len() as u32)
    }

    /// A new slot for `key`, indexed but not yet in the recency list.
    fn insert(&mut self, key: Key, session: u32) -> u32 {
        let slot = Slot {
            key,
            session,
            older: NIL,
            newer: NIL,
            times: Times::default(),
        };
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].newer;
            self.slots[i as usize] = slot;
            i
        } else {
            // Slot numbers stay below NIL: max_tracked is at most 100 million.
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        };
        let hash = self.hasher.hash_one(key);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(slots[j as usize].key));
        i
    }

    fn unlink(&mut self, i: u32) {
        let (older, newer) = {
            let s = &self.slots[i as usize];
            (s.older, s.newer)
        };
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        match newer {
            NIL => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
    }

    fn push_newest(&mut self, i: u32) {
        let last = self.newest;
        {
            let s = &mut self.slots[i as usize];
            s.older = last;
            s.newer = NIL;
        }
        match last {
            NIL => self.oldest = i,
            l => self.slots[l as usize].newer = i,
        }
        self.newest = i;
    }

    /// Forget slot `i`: out of the index and the recency list, onto the free list.
    fn remove(&mut self, i: u32) {
        let key = self.slots[i as usize].key;
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.unlink(i);
        let s = &mut self.slots[i as usize];
        // Give a spilled list of times back now, not when the slot is reused.
        s.times.clear(&mut self.spill);
        s.older = NIL;
        s.newer = self.free;
        self.free = i;
    }

    pub(super) fn forget(&mut self, addr: IpAddr) {
        if let Some(i) = self.find(Key::of(addr)) {
            self.remove(i);
        }
    }

    /// Drop addresses whose newest failure left the window; give memory back when most of
    /// it went (the slab only grows otherwise).
    pub(super) fn purge(&mut self, now: u32, findtime: u32) -> usize {
        let cutoff = now.saturating_sub(findtime);
        let mut gone = 0;
        let mut i = self.oldest;
        while i != NIL {
            let next = self.slots[i as usize].newer;
            if self.slots[i as usize].times.newest(&self.spill) <= cutoff {
                self.remove(i);
                gone += 1;
            }
            i = next;
        }
        if self.slots.len() > 4096 && self.index.len() < self.slots.len() / 4 {
            self.repack();
        }
        gone
    }

    /// Rebuild with only the live slots, in recency order.
    fn repack(&mut self) {
        let mut slots = Vec::with_capacity(self.index.len());
        let mut i = self.oldest;
        while i != NIL {
            let s = &self.slots[i as usize];
            i = s.newer;
            let n = slots.len() as u32;
            slots.push(Slot {
                older: n.checked_sub(1).unwrap_or(NIL),
                newer: n + 1,
                ..*s
            });
        }
        if let Some(last) = slots.last_mut() {
            last.newer = NIL;
        }
        let n = slots.len() as u32;
        let hasher = &self.hasher;
        let mut index = HashTable::with_capacity(slots.len());
        for (j, s) in slots.iter().enumerate() {
            index.insert_unique(hasher.hash_one(s.key), j as u32, |&k: &u32| {
                hasher.hash_one(slots[k as usize].key)
            });
        }
        self.slots = slots;
        self.index = index;
        self.free = NIL;
        (self.oldest, self.newest) = if n == 0 { (NIL, NIL) } else { (0, n - 1) };
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Is `addr` tracked?
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.find(Key::of(addr)).is_some()
    }

    /// Failures of `addr` currently in the window.
    pub fn failures_of(&self, addr: &IpAddr) -> usize {
        self.find(Key::of(*addr)).map_or(0, |i| {
            self.slots[i as usize].times.as_slice(&self.spill).len()
        })
    }

    /// Slots held, live or free (for tests of the bound).
    #[cfg(test)]
    pub(super) fn slots_held(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(w: &mut FailureWindow, addr: &str, t: u32, max_tracked: usize) -> Option<u32> {
        let addr: IpAddr = addr.parse().unwrap();
        w.record(|_| SessionSays::Count(None), addr, t, 600, 3, max_tracked)
    }

    #[test]
    fn failure_times_stay_sorted_bounded_and_inside_the_window() {
        let mut spill = Spill::default();
        let mut t = Times::default();
        for x in [10, 30, 20] {
            t.push_within(&mut spill, 0, x, 5);
        }
        assert_eq!(t.as_slice(&spill), &[10, 20, 30]);
        t.push_within(&mut spill, 0, 25, 5);
        assert_eq!(
            t.as_slice(&spill),
            &[10, 20, 25, 30],
            "spills to the table past three"
        );
        assert!(t.is_spilled());
        t.push_within(&mut spill, 15, 40, 3);
        assert_eq!(
            t.as_slice(&spill),
            &[25, 30, 40],
            "window and bound both apply"
        );
        let mut small = Times::default();
        for x in 1..=10 {
            small.push_within(&mut spill, 0, x, 3);
        }
        assert_eq!(small.as_slice(&spill), &[8, 9, 10]);
        assert!(!small.is_spilled());
        // A cleared list's place in the table is taken by the next one to spill.
        t.clear(&mut spill);
        assert_eq!(t.as_slice(&spill), &[] as &[u32]);
        let mut again = Times::default();
        for x in 1..=4 {
            again.push_within(&mut spill, 0, x, 9);
        }
        assert_eq!(spill.lists.len(), 1);
        assert_eq!(again.as_slice(&spill), &[1, 2, 3, 4]);
    }

    #[test]
    fn a_slot_is_small() {
        // The figure the memory bench's goal rests on: 40 bytes a slot, 4 an index entry.
        assert_eq!(std::mem::size_of::<Slot>(), 40);
        assert_eq!(std::mem::size_of::<Key>(), 16);
    }

    #[test]
    fn ipv4_and_its_mapped_form_are_one_address_and_families_stay_apart() {
        let mut w = FailureWindow::new();
        assert_eq!(count(&mut w, "198.18.0.1", 1000, 10), Some(1));
        assert_eq!(count(&mut w, "::ffff:198.18.0.1", 1001, 10), Some(2));
        assert_eq!(count(&mut w, "::c612:1", 1002, 10), Some(1), "::198.18.0.1");
        assert_eq!(count(&mut w, "2001:db8::c612:1", 1003, 10), Some(1));
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn eviction_follows_recency_through_reused_slots() {
        let mut w = FailureWindow::new();
        for (n, a) in ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
            .iter()
            .enumerate()
        {
            count(&mut w, a, 1000 + n as u32, 3);
        }
        // .1 again: .2 is the least recent and goes for .4, whose slot is then reused.
        count(&mut w, "198.18.0.1", 1010, 3);
        count(&mut w, "198.18.0.4", 1011, 3);
        assert!(!w.contains("198.18.0.2".parse().unwrap()));
        w.forget("198.18.0.3".parse().unwrap());
        count(&mut w, "198.18.0.5", 1012, 3);
        assert_eq!(w.slots_held(), 3, "freed slots are taken again");
        // Now .1 is the least recent, then .4, then .5.
        count(&mut w, "198.18.0.6", 1013, 3);
        assert!(!w.contains("198.18.0.1".parse().unwrap()));
        count(&mut w, "198.18.0.7", 1014, 3);
        assert!(!w.contains("198.18.0.4".parse().unwrap()));
        assert_eq!(w.failures_of(&"198.18.0.5".parse().unwrap()), 1);
        assert_eq!(w.evicted, 3);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn counts_past_three_spill_and_come_back_when_forgotten() {
        let mut w = FailureWindow::new();
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let fail = |w: &mut FailureWindow, addr, t| {
            w.record(|_| SessionSays::Count(None), addr, t, 600, 6, 10)
        };
        for t in 1..=5 {
            assert_eq!(fail(&mut w, a, 1000 + t), Some(t));
        }
        assert_eq!(w.spill.lists.len(), 1);
        w.forget(a);
        assert_eq!(w.spill.free, [0], "the forgotten list is free again");
        for t in 1..=6 {
            assert_eq!(fail(&mut w, b, 2000 + t), Some(t));
        }
        assert_eq!(fail(&mut w, b, 2007), Some(6), "bounded by maxretry");
        assert_eq!(w.spill.lists.len(), 1, "its place was taken again");
        assert_eq!(w.failures_of(&a), 0);
    }

    #[test]
    fn purge_repacks_once_most_addresses_left() {
        let mut w = FailureWindow::new();
        for i in 0..10_000u32 {
            let a = format!("198.19.{}.{}", i / 250, i % 250);
            // The first 9,000 fail at t=100, the rest at t=700.
            let t = if i < 9_000 { 100 } else { 700 };
            count(&mut w, &a, t, 1_000_000);
        }
        assert_eq!(w.purge(800, 600), 9_000);
        assert_eq!(w.len(), 1_000);
        assert_eq!(w.slots_held(), 1_000, "repacked");
        // Order and counts survive the repack: the oldest left go first.
        assert_eq!(w.failures_of(&"198.19.36.0".parse().unwrap()), 1);
        count(&mut w, "198.19.36.0", 801, 1_000);
        count(&mut w, "198.18.0.1", 802, 1_000);
        assert!(
            !w.contains("198.19.36.1".parse().unwrap()),
            "9001 was oldest"
        );
        assert!(w.contains("198.19.36.0".parse().unwrap()));
        assert_eq!(w.failures_of(&"198.19.36.0".parse().unwrap()), 2);
    }
}
