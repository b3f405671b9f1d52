//! TCP Wrappers' /etc/hosts.deny, as the fail2ban setup banner replaces writes it: a block of
//! our own between `# banner begin` and `# banner end`, rewritten atomically (temporary file
//! and rename), every other line untouched. It follows the ban stream: only an event about a
//! jail with `hosts_deny = true` can rewrite it.

use std::{
    collections::BTreeSet,
    fs,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use super::Subscriber;
use crate::{addr::IpPrefix, bans::BanEvent, model::Ban, model::JailId};

pub const BEGIN: &str = "# banner begin";
pub const END: &str = "# banner end";

/// A TCP Wrappers pattern for a target: `a.b.c.d`, `a.b.c.d/m.m.m.m`, `[v6]`, `[v6]/len`.
pub fn pattern(t: &IpPrefix) -> String {
    match (t.addr(), t.is_host()) {
        (std::net::IpAddr::V4(a), true) => a.to_string(),
        (std::net::IpAddr::V4(a), false) => {
            let mask = if t.prefix_len() == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(t.prefix_len()))
            };
            format!("{a}/{}", std::net::Ipv4Addr::from(mask))
        }
        (std::net::IpAddr::V6(a), true) => format!("[{a}]"),
        (std::net::IpAddr::V6(a), false) => format!("[{a}]/{}", t.prefix_len()),
    }
}

/// The file's text with our block replaced by one listing `targets` (dropped when empty).
/// Allowlist entries inside a banned prefix are excepted (`ALL: net EXCEPT allowed`), so a
/// wide ban never denies loopback or the host itself to TCP-wrapped services.
pub fn render(existing: &str, targets: &[IpPrefix], allow: &[IpPrefix]) -> String {
    let mut out = String::with_capacity(existing.len() + targets.len() * 24);
    let mut inside = false;
    for line in existing.lines() {
        match line.trim() {
            BEGIN => inside = true,
            END => inside = false,
            _ if !inside => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    if !targets.is_empty() {
        out.push_str(BEGIN);
        out.push('\n');
        for t in targets {
            // The manager never bans a target the allowlist covers; be safe all the same.
            if allow.iter().any(|a| a.contains(t)) {
                continue;
            }
            out.push_str("ALL: ");
            out.push_str(&pattern(t));
            let inside: Vec<String> = allow
                .iter()
                .filter(|a| t.contains(a) && *a != t)
                .map(pattern)
                .collect();
            if !inside.is_empty() {
                out.push_str(" EXCEPT ");
                out.push_str(&inside.join(" "));
            }
            out.push('\n');
        }
        out.push_str(END);
        out.push('\n');
    }
    out
}

/// Writes the block when the set of targets changes.
#[derive(Debug)]
pub struct HostsDeny {
    path: PathBuf,
    last: Option<(Vec<IpPrefix>, Vec<IpPrefix>)>,
}

impl HostsDeny {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            last: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Never synced: no jail has asked for hosts.deny since start.
    pub fn untouched(&self) -> bool {
        self.last.is_none()
    }

    /// Make the block list exactly `targets` (sorted), minus `allow`, if that changes anything.
    pub fn sync(&mut self, mut targets: Vec<IpPrefix>, allow: &[IpPrefix]) -> io::Result<()> {
        targets.sort();
        let state = (targets, allow.to_vec());
        if self.last.as_ref() == Some(&state) {
            return Ok(());
        }
        let (targets, _) = &state;
        let existing = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let text = render(&existing, targets, allow);
        if text == existing {
            self.last = Some(state);
            return Ok(());
        }
        if let Err(e) = self.replace(&text) {
            // The unit's ProtectSystem=strict leaves /etc read-only but for the file itself
            // (ReadWritePaths), where no temporary file can be made beside it nor renamed
            // over a bind mount: then the file is rewritten in place, a reader risking a
            // short read of it rather than the bans never reaching it.
            log::debug!(
                "{}: cannot replace it atomically ({e}); rewriting it in place",
                self.path.display()
            );
            let mut f = fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .create(true)
                .open(&self.path)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        self.last = Some(state);
        Ok(())
    }

    /// Write `text` beside the file and rename it over, so a reader sees the old or the new.
    fn replace(&self, text: &str) -> io::Result<()> {
        let tmp = self.path.with_extension("banner-tmp");
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            if let Ok(meta) = fs::metadata(&self.path) {
                let _ = fs::set_permissions(&tmp, meta.permissions());
            }
            fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }
}

/// The subscriber: the bans of the jails that asked for hosts.deny, written when they change.
#[derive(Debug)]
pub struct HostsDenyList {
    file: HostsDeny,
    jails: BTreeSet<JailId>,
    targets: BTreeSet<IpPrefix>,
    allow: Vec<IpPrefix>,
}

impl HostsDenyList {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            file: HostsDeny::new(path),
            jails: BTreeSet::new(),
            targets: BTreeSet::new(),
            allow: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Start over from the active bans (at start, on reload, when the allowlist changes):
    /// `jails` are those with `hosts_deny = true`.
    pub fn reset<'a>(
        &mut self,
        jails: BTreeSet<JailId>,
        active: impl Iterator<Item = &'a Ban>,
        allow: Vec<IpPrefix>,
    ) {
        self.targets = active
            .filter(|b| jails.contains(&b.jail))
            .map(|b| b.target)
            .collect();
        self.jails = jails;
        self.allow = allow;
        self.write();
    }

    fn write(&mut self) {
        // Never touch hosts.deny unless a jail asked for it (once one did, keep it clean).
        if self.jails.is_empty() && self.file.untouched() {
            return;
        }
        let targets = self.targets.iter().copied().collect();
        if let Err(e) = self.file.sync(targets, &self.allow) {
            log::warn!("writing {}: {e}", self.file.path().display());
        }
    }
}

impl Subscriber for HostsDenyList {
    fn on_event(&mut self, event: &BanEvent) {
        let Some(ban) = event.ban() else {
            return;
        };
        let changed = if event.holds() {
            self.jails.contains(&ban.jail) && self.targets.insert(ban.target)
        } else {
            self.targets.remove(&ban.target)
        };
        if changed {
            self.write();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        s.parse().unwrap()
    }

    fn ban(target: &str, jail: &str) -> Ban {
        Ban {
            target: p(target),
            jail: jail.into(),
            blocktype: crate::model::BlockType::Drop,
            banned_at: std::time::SystemTime::UNIX_EPOCH,
            expires_at: None,
            count: 1,
            scope: None,
        }
    }

    #[test]
    fn only_events_of_jails_that_asked_touch_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        let mut list = HostsDenyList::new(&path);
        let banned = |target: &str, jail: &str| BanEvent::Banned {
            ban: ban(target, jail),
            cause: Default::default(),
        };
        // No jail asked: neither a reset nor a ban creates the file.
        list.reset(BTreeSet::new(), std::iter::empty(), Vec::new());
        list.on_event(&banned("198.18.0.1", "sshd"));
        assert!(!path.exists());
        // One jail asked: the bans it already has are written, then its new ones.
        let active = [ban("198.18.0.2", "vsftpd"), ban("198.18.0.3", "sshd")];
        list.reset(BTreeSet::from(["vsftpd".into()]), active.iter(), Vec::new());
        list.on_event(&banned("198.18.0.4", "vsftpd"));
        list.on_event(&banned("198.18.0.5", "sshd"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("ALL: 198.18.0.2\nALL: 198.18.0.4\n"),
            "{text}"
        );
        assert!(
            !text.contains("198.18.0.3") && !text.contains("198.18.0.5"),
            "{text}"
        );
        // Expired and unbanned leave it; the block goes when empty.
        list.on_event(&BanEvent::Expired {
            ban: ban("198.18.0.2", "vsftpd"),
        });
        list.on_event(&BanEvent::Unbanned {
            ban: ban("198.18.0.4", "vsftpd"),
            why: crate::bans::Lifted::ByHand,
        });
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn our_block_is_replaced_and_the_rest_kept() {
        let before = "# site rules\nsshd: 192.0.2.1\n# banner begin\nALL: 198.18.0.9\n# banner end\nvsftpd: ALL\n";
        let after = render(
            before,
            &[
                p("198.18.0.1"),
                p("198.51.100.0/24"),
                p("2001:db8::1"),
                p("2001:db8::/64"),
            ],
            &[],
        );
        assert_eq!(
            after,
            "# site rules\nsshd: 192.0.2.1\nvsftpd: ALL\n# banner begin\nALL: 198.18.0.1\nALL: 198.51.100.0/255.255.255.0\nALL: [2001:db8::1]\nALL: [2001:db8::]/64\n# banner end\n"
        );
        assert_eq!(
            render(&after, &[], &[]),
            "# site rules\nsshd: 192.0.2.1\nvsftpd: ALL\n"
        );
    }

    #[test]
    fn sync_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        fs::write(&path, "sshd: 192.0.2.1\n").unwrap();
        let mut h = HostsDeny::new(&path);
        h.sync(vec![p("198.18.0.2"), p("198.18.0.1")], &[]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "sshd: 192.0.2.1\n# banner begin\nALL: 198.18.0.1\nALL: 198.18.0.2\n# banner end\n"
        );
        h.sync(vec![], &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "sshd: 192.0.2.1\n");
        assert!(!dir.path().join("hosts.banner-tmp").exists());
    }

    /// Where no file can be made beside it (the unit's read-only /etc with the file alone
    /// writable; here, the temporary name taken by a directory), the file is rewritten in
    /// place and the bans still reach it.
    #[test]
    fn a_file_that_cannot_be_replaced_is_rewritten_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        fs::write(&path, "sshd: 192.0.2.1\n").unwrap();
        fs::create_dir(dir.path().join("hosts.banner-tmp")).unwrap();
        let mut h = HostsDeny::new(&path);
        h.sync(vec![p("198.18.0.1")], &[]).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "sshd: 192.0.2.1\n# banner begin\nALL: 198.18.0.1\n# banner end\n"
        );
        h.sync(vec![], &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "sshd: 192.0.2.1\n");
    }

    #[test]
    fn a_wide_ban_excepts_the_allowlist_inside_it() {
        // Issue 9, item 10: `ban --jail sshd 0.0.0.0/0` wrote `ALL: 0.0.0.0/0.0.0.0`,
        // denying localhost to every TCP-wrapped service.
        let allow = [p("127.0.0.0/8"), p("198.18.0.1"), p("::1")];
        let text = render(
            "",
            &[p("0.0.0.0/0"), p("198.18.0.1"), p("2001:db8::/32")],
            &allow,
        );
        assert_eq!(
            text,
            "# banner begin\nALL: 0.0.0.0/0.0.0.0 EXCEPT 127.0.0.0/255.0.0.0 198.18.0.1\nALL: [2001:db8::]/32\n# banner end\n"
        );
    }
}
