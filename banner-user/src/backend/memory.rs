//! A backend that only remembers: for the decision core's tests and for dry runs. It enforces
//! nothing. Clones share their state, so a test can keep a handle and look inside.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex, MutexGuard},
};

use super::{Backend, BackendError, Capacity, Counters, Enforced};
use crate::{addr::IpPrefix, model::BlockSpec};

#[derive(Debug, Default)]
pub struct MemoryState {
    pub bans: BTreeMap<IpPrefix, BlockSpec>,
    pub allowlist: BTreeSet<IpPrefix>,
    pub capacity: Capacity,
    /// Fail the next call to `block` (to test error paths).
    pub fail_next_block: bool,
    /// Fail every call to `unblock` while set.
    pub fail_unblock: bool,
    /// Calls to `unblock`, failed ones included.
    pub unblock_calls: usize,
    /// Simulate a firewall reload: the next `check` finds everything gone and rebuilds.
    pub lost: bool,
    /// Packets `list` reports stopped, per target (a test's stand-in for the kernel's count).
    pub hits: BTreeMap<IpPrefix, super::Hits>,
}

#[derive(Clone, Debug, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<MemoryState>>,
}

impl MemoryBackend {
    pub fn with_capacity(capacity: Capacity) -> Self {
        let b = Self::default();
        b.state().capacity = capacity;
        b
    }

    pub fn state(&self) -> MutexGuard<'_, MemoryState> {
        // A poisoned lock only means a test panicked mid-call; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "memory (enforces nothing)".into()
    }

    fn capacity(&self) -> Capacity {
        self.state().capacity
    }

    fn block(&mut self, bans: &[BlockSpec]) -> Result<(), BackendError> {
        let mut s = self.state();
        if std::mem::take(&mut s.fail_next_block) {
            return Err(BackendError::Setup("injected failure".into()));
        }
        for b in bans {
            s.bans.insert(b.target, b.clone());
        }
        Ok(())
    }

    fn unblock(&mut self, targets: &[IpPrefix]) -> Result<(), BackendError> {
        let mut s = self.state();
        s.unblock_calls += 1;
        if s.fail_unblock {
            return Err(BackendError::Setup("injected unblock failure".into()));
        }
        for t in targets {
            s.bans.remove(t);
        }
        Ok(())
    }

    fn set_allowlist(&mut self, nets: &[IpPrefix]) -> Result<(), BackendError> {
        self.state().allowlist = nets.iter().copied().collect();
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Enforced>, BackendError> {
        let s = self.state();
        Ok(s.bans
            .values()
            .map(|b| Enforced {
                hits: s.hits.get(&b.target).copied().unwrap_or_default(),
                ..Enforced::from(b)
            })
            .collect())
    }

    fn counters(&mut self) -> Result<Counters, BackendError> {
        Ok(Counters::default())
    }

    fn check(&mut self) -> Result<super::Health, BackendError> {
        let mut s = self.state();
        if std::mem::take(&mut s.lost) {
            s.bans.clear();
            s.allowlist.clear();
            return Ok(super::Health::Rebuilt("memory was wiped".into()));
        }
        Ok(super::Health::Intact)
    }

    fn shutdown(&mut self, keep: bool) -> Result<(), BackendError> {
        if !keep {
            self.state().bans.clear();
        }
        Ok(())
    }
}
