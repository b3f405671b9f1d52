//! The host under the core: is enforcement still in place (an interface re-created, a
//! firewall reloaded), and the allowlist made of the host's addresses as last read.

use std::time::{Duration, Instant};

use super::Core;

impl Core {
    /// An interface or address changed: re-check at once (at most every 200 ms: a VPN
    /// restart sends a burst of messages).
    pub(super) fn on_host_changed(&mut self) {
        if self.last_host_check.elapsed() < Duration::from_millis(200) {
            self.host_check_pending = true;
            return;
        }
        self.host_check_pending = false;
        self.last_host_check = Instant::now();
        self.check_host();
    }

    /// Is enforcement still in place?
    pub(super) fn check_host(&mut self) {
        if let Err(e) = self.manager.check_enforcement() {
            log::warn!("checking enforcement: {e}");
        }
    }

    /// Rebuild the allowlist from the configuration and the host's addresses as last read;
    /// apply it (lifting bans it now covers) if it changed.
    pub(super) fn refresh_allowlist(&mut self) {
        let Some(addresses) = &self.host_addresses else {
            return;
        };
        let fresh = self.config.allowlist(addresses);
        if &fresh == self.manager.ignore_list() {
            return;
        }
        for e in fresh.entries() {
            if self.manager.ignore_list().covering(&e.net).is_none() {
                log::info!("never banned from now on: {} ({})", e.net, e.why);
            }
        }
        if let Err(e) = self.manager.set_ignore(fresh) {
            log::warn!("updating the allowlist: {e}");
        }
        self.reset_hosts_deny();
        self.publish();
    }
}
