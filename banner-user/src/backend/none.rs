//! The observe-only backend (`backend = "none"`, `banner daemon --dry-run`): it holds what
//! would be banned and enforces nothing, so banner can run beside fail2ban and be compared
//! with it before the cut-over.

use std::collections::HashMap;

use super::{Backend, BackendError, Capacity, Counters, Enforced};
use crate::{addr::IpPrefix, model::BlockSpec};

#[derive(Debug, Default)]
pub struct NoneBackend {
    held: HashMap<IpPrefix, BlockSpec>,
}

impl Backend for NoneBackend {
    fn describe(&self) -> String {
        "none (dry run: nothing is enforced; bans are what banner would do)".into()
    }

    fn capacity(&self) -> Capacity {
        Capacity::default()
    }

    fn enforces(&self) -> bool {
        false
    }

    fn block(&mut self, bans: &[BlockSpec]) -> Result<(), BackendError> {
        for b in bans {
            self.held.insert(b.target, b.clone());
        }
        Ok(())
    }

    fn unblock(&mut self, targets: &[IpPrefix]) -> Result<(), BackendError> {
        for t in targets {
            self.held.remove(t);
        }
        Ok(())
    }

    fn set_allowlist(&mut self, _nets: &[IpPrefix]) -> Result<(), BackendError> {
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<Enforced>, BackendError> {
        Ok(self.held.values().map(Enforced::from).collect())
    }

    fn counters(&mut self) -> Result<Counters, BackendError> {
        Ok(Counters::default())
    }

    fn shutdown(&mut self, _keep: bool) -> Result<(), BackendError> {
        Ok(())
    }
}
