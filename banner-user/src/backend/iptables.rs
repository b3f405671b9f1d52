//! The iptables backend: bans in ipset `hash:net` sets with per-entry timeouts (the kernel
//! expires them), matched by one rule each in a chain of ours, `BANNER`, in raw PREROUTING.
//! Every change is one `ipset restore` batch.
//!
//! Port-scoped bans live in `hash:net,port` sets of their own (`banner4-port`, ...) matched
//! `src,dst`: ipset stores one element per port, so a range costs as many elements as ports.
//!
//! Tarpit bans use `-j TARPIT` (with `CT --notrack` in raw, so conntrack holds nothing) where
//! the kernel has xt_TARPIT; found out by trying once. Where it is missing they drop, and the
//! log says so once.

use std::{
    collections::HashMap,
    fmt::Write as _,
    time::{Duration, SystemTime},
};

use banner_common::counter;

use super::{
    collapse, command::CommandRunner, Backend, BackendError, Capacity, Counters, Enforced, Health,
    Hits, ScopedElements,
};
use crate::{
    addr::IpPrefix,
    model::{BlockSpec, BlockType},
    scope::{PortRange, PortScope, Protocol, Scope},
};

pub const CHAIN: &str = "BANNER";
const TARPIT_CHAIN: &str = "BANNER-TARPIT";
/// ipset's longest timeout; longer bans are stored without one and lifted by banner.
const IPSET_MAX_TIMEOUT: u64 = 2_147_483;

/// Names of our sets for one family.
struct Sets {
    drop: &'static str,
    tarpit: &'static str,
    /// Port-scoped bans, `hash:net,port`.
    port: &'static str,
    port_tarpit: &'static str,
    allow: &'static str,
    family: &'static str,
    tool: &'static str,
}

const V4: Sets = Sets {
    drop: "banner4",
    tarpit: "banner4-tarpit",
    port: "banner4-port",
    port_tarpit: "banner4-port-tarpit",
    allow: "banner4-allow",
    family: "inet",
    tool: "iptables",
};
const V6: Sets = Sets {
    drop: "banner6",
    tarpit: "banner6-tarpit",
    port: "banner6-port",
    port_tarpit: "banner6-port-tarpit",
    allow: "banner6-allow",
    family: "inet6",
    tool: "ip6tables",
};

fn sets_of(target: &IpPrefix) -> &'static Sets {
    if target.is_v4() {
        &V4
    } else {
        &V6
    }
}

/// The set a ban goes to: its own tarpit set only when the kernel can tarpit; the port sets
/// for a port-scoped ban.
fn set_for(b: &BlockSpec, tarpit: bool) -> &'static str {
    let s = sets_of(&b.target);
    match (
        tarpit && b.blocktype == BlockType::Tarpit,
        b.scope.is_some(),
    ) {
        (true, false) => s.tarpit,
        (false, false) => s.drop,
        (true, true) => s.port_tarpit,
        (false, true) => s.port,
    }
}

/// A port-scoped ban's set elements: `ADDR,tcp:22`, `NET,tcp:1000-2000` (ipset expands a range).
fn port_elements(target: &IpPrefix, scope: &PortScope) -> Vec<String> {
    [Protocol::Tcp, Protocol::Udp]
        .into_iter()
        .flat_map(|p| {
            scope
                .ranges(p)
                .iter()
                .map(move |r| format!("{target},{}:{r}", p.as_str()))
        })
        .collect()
}

/// `del` lines taking a ban out of every set it may be in, as it is now (`old`: its ports).
fn delete_lines(s: &mut String, target: &IpPrefix, old: &Scope, tarpit: bool) {
    let sets = sets_of(target);
    match old {
        None => {
            let _ = writeln!(s, "del {} {target} -exist", sets.drop);
            if tarpit {
                let _ = writeln!(s, "del {} {target} -exist", sets.tarpit);
            }
        }
        Some(scope) => {
            for e in port_elements(target, scope) {
                let _ = writeln!(s, "del {} {e} -exist", sets.port);
                if tarpit {
                    let _ = writeln!(s, "del {} {e} -exist", sets.port_tarpit);
                }
            }
        }
    }
}

fn timeout_of(expires_at: Option<SystemTime>, now: SystemTime) -> u64 {
    match expires_at {
        // ipset: timeout 0 = never expires.
        None => 0,
        Some(t) => {
            let secs = t
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
                .as_secs()
                .max(1);
            // Longer than ipset can count (24.8 days): the longest it can, re-armed by
            // `check` before it runs out. Never 0, which would mean "never expires" and keep
            // the ban forever if banner died.
            secs.min(IPSET_MAX_TIMEOUT)
        }
    }
}

/// `ipset restore` lines creating our sets (existing ones kept).
pub fn create_sets(maxelem: usize) -> String {
    let mut s = String::new();
    for set in [&V4, &V6] {
        for (name, kind) in [
            (set.drop, "hash:net"),
            (set.tarpit, "hash:net"),
            (set.port, "hash:net,port"),
            (set.port_tarpit, "hash:net,port"),
        ] {
            let _ = writeln!(
                s,
                "create {name} {kind} family {} timeout 0 counters maxelem {maxelem} -exist",
                set.family
            );
        }
        let _ = writeln!(
            s,
            "create {} hash:net family {} maxelem 65536 -exist",
            set.allow, set.family
        );
    }
    s
}

/// `ipset restore` lines for a batch of bans (`-exist` also renews a timeout). `scoped` holds
/// the ports of the targets now banned on some ports only.
pub fn block_batch(
    bans: &[BlockSpec],
    tarpit: bool,
    now: SystemTime,
    scoped: &HashMap<IpPrefix, std::sync::Arc<PortScope>>,
) -> String {
    let mut s = String::with_capacity(bans.len() * 48);
    for b in bans {
        let set = set_for(b, tarpit);
        let sets = sets_of(&b.target);
        let old = scoped.get(&b.target).cloned();
        if old == b.scope {
            // The same elements: a ban that changes block type must leave the other set
            // (`add -exist` renews the timeout where it stays).
            if tarpit {
                let other = match set {
                    x if x == sets.drop => sets.tarpit,
                    x if x == sets.tarpit => sets.drop,
                    x if x == sets.port => sets.port_tarpit,
                    _ => sets.port,
                };
                match &b.scope {
                    None => {
                        let _ = writeln!(s, "del {other} {} -exist", b.target);
                    }
                    Some(scope) => {
                        for e in port_elements(&b.target, scope) {
                            let _ = writeln!(s, "del {other} {e} -exist");
                        }
                    }
                }
            }
        } else {
            // Other ports: out of wherever it was first.
            delete_lines(&mut s, &b.target, &old, tarpit);
        }
        let timeout = timeout_of(b.expires_at, now);
        match &b.scope {
            None => {
                let _ = writeln!(s, "add {set} {} timeout {timeout} -exist", b.target);
            }
            Some(scope) => {
                for e in port_elements(&b.target, scope) {
                    let _ = writeln!(s, "add {set} {e} timeout {timeout} -exist");
                }
            }
        }
    }
    s
}

pub fn unblock_batch(
    targets: &[IpPrefix],
    tarpit: bool,
    scoped: &HashMap<IpPrefix, std::sync::Arc<PortScope>>,
) -> String {
    let mut s = String::with_capacity(targets.len() * 40);
    for t in targets {
        delete_lines(&mut s, t, &scoped.get(t).cloned(), tarpit);
    }
    s
}

pub fn allowlist_batch(nets: &[IpPrefix]) -> String {
    let mut s = format!("flush {}\nflush {}\n", V4.allow, V6.allow);
    for n in collapse(nets) {
        let _ = writeln!(s, "add {} {n} -exist", sets_of(&n).allow);
    }
    s
}

/// The rules of our chains for one family (after `-F`).
pub fn chain_rules(tarpit: bool, v6: bool) -> Vec<Vec<String>> {
    let s = if v6 { &V6 } else { &V4 };
    let rule = |table: &str, chain: &str, rest: &str| -> Vec<String> {
        let mut v: Vec<String> = vec!["-t".into(), table.into(), "-A".into(), chain.into()];
        v.extend(rest.split_whitespace().map(str::to_string));
        v
    };
    let mut rules = vec![
        rule(
            "raw",
            CHAIN,
            &format!("-m set --match-set {} src -j RETURN", s.allow),
        ),
        rule(
            "raw",
            CHAIN,
            &format!("-m set --match-set {} src -j DROP", s.drop),
        ),
        rule(
            "raw",
            CHAIN,
            &format!("-m set --match-set {} src,dst -j DROP", s.port),
        ),
    ];
    if tarpit {
        for (set, dir) in [(s.tarpit, "src"), (s.port_tarpit, "src,dst")] {
            rules.push(rule(
                "raw",
                CHAIN,
                &format!("-m set --match-set {set} {dir} -j CT --notrack"),
            ));
        }
        // The allowlist first here too: an allowlisted address inside a tarpitted prefix
        // (loopback included) must never meet the tarpit in INPUT or FORWARD.
        rules.push(rule(
            "filter",
            TARPIT_CHAIN,
            &format!("-m set --match-set {} src -j RETURN", s.allow),
        ));
        for (set, dir) in [(s.tarpit, "src"), (s.port_tarpit, "src,dst")] {
            rules.push(rule(
                "filter",
                TARPIT_CHAIN,
                &format!("-p tcp -m set --match-set {set} {dir} -j TARPIT"),
            ));
            rules.push(rule(
                "filter",
                TARPIT_CHAIN,
                &format!("-m set --match-set {set} {dir} -j DROP"),
            ));
        }
    } else {
        for (set, dir) in [(s.tarpit, "src"), (s.port_tarpit, "src,dst")] {
            rules.push(rule(
                "raw",
                CHAIN,
                &format!("-m set --match-set {set} {dir} -j DROP"),
            ));
        }
    }
    rules
}

/// A `hash:net,port` element's port part: `tcp:22`.
fn port_of(text: &str) -> Option<(Protocol, u16)> {
    let (proto, port) = text.split_once(':')?;
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((proto, port.parse().ok()?))
}

/// Parse `ipset save SET` into enforced bans; a port set's elements (one per port) come back
/// as one ban per target with its ports.
pub fn parse_save(text: &str, blocktype: BlockType, now: SystemTime) -> Vec<Enforced> {
    let mut out: Vec<Enforced> = Vec::new();
    let mut scoped = ScopedElements::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("add") {
            continue;
        }
        let _set = words.next();
        let Some(element) = words.next() else {
            continue;
        };
        let (addr, port) = match element.split_once(',') {
            Some((addr, port)) => match port_of(port) {
                Some(p) => (addr, Some(p)),
                None => continue,
            },
            None => (element, None),
        };
        let Some(target) = addr.parse::<IpPrefix>().ok() else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        let field = |name: &str| {
            rest.windows(2)
                .find(|w| w[0] == name)
                .and_then(|w| w[1].parse::<u64>().ok())
        };
        let expires_at = field("timeout")
            .filter(|&t| t > 0)
            .map(|t| now + Duration::from_secs(t));
        let packets = field("packets").unwrap_or(0);
        if let Some((proto, port)) = port {
            let range = PortRange {
                first: port,
                last: port,
            };
            if let Some(i) = scoped.add(target, proto, range, out.len()) {
                // One more port of a ban already listed: its packets add up.
                let hits = &mut out[i].hits;
                match blocktype {
                    BlockType::Drop => hits.dropped += packets,
                    BlockType::Tarpit => hits.tarpitted += packets,
                }
                continue;
            }
        }
        out.push(Enforced {
            target,
            blocktype,
            expires_at,
            scope: None,
            hits: Hits {
                dropped: if blocktype == BlockType::Drop {
                    packets
                } else {
                    0
                },
                tarpitted: if blocktype == BlockType::Tarpit {
                    packets
                } else {
                    0
                },
                last_seen: None,
            },
        });
    }
    scoped.finish(&mut out);
    out
}

pub struct IptablesBackend {
    runner: Box<dyn CommandRunner>,
    tarpit: bool,
    warned_tarpit: bool,
    /// Set size, to re-create the sets after a firewall reload destroyed them.
    maxelem: usize,
    /// Bans longer than ipset's longest timeout: the ban, and when the kernel's timeout for
    /// it runs out. `check` re-arms them a day before.
    long: HashMap<IpPrefix, (BlockSpec, SystemTime)>,
    /// The ports of the bans that cover only some: their elements, to take them out again.
    scoped: HashMap<IpPrefix, std::sync::Arc<PortScope>>,
}

/// How early a capped ipset timeout is re-armed before it runs out.
const REARM_AHEAD: Duration = Duration::from_secs(86_400);

/// Our chains: (table, chain, the built-in chain that jumps to it).
fn hooks(tarpit: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut chains = vec![("raw", CHAIN, "PREROUTING")];
    if tarpit {
        chains.push(("filter", TARPIT_CHAIN, "INPUT"));
        chains.push(("filter", TARPIT_CHAIN, "FORWARD"));
    }
    chains
}

/// Create (or flush and refill) our chains and make sure each is jumped to once, first.
fn install_chains(runner: &mut dyn CommandRunner, tarpit: bool) -> Result<(), BackendError> {
    for tool in [V4.tool, V6.tool] {
        let v6 = tool == V6.tool;
        let chains = hooks(tarpit);
        for (table, chain, _) in &chains {
            // Creating an existing chain fails; flushing it makes it ours again.
            let _ = runner.run(tool, &["-t", table, "-N", chain], None);
            runner.run(tool, &["-t", table, "-F", chain], None)?;
        }
        for rule in chain_rules(tarpit, v6) {
            let args: Vec<&str> = rule.iter().map(String::as_str).collect();
            runner.run(tool, &args, None)?;
        }
        for (table, chain, hook) in &chains {
            if runner
                .run(tool, &["-t", table, "-C", hook, "-j", chain], None)
                .is_err()
            {
                runner.run(tool, &["-t", table, "-I", hook, "1", "-j", chain], None)?;
            }
        }
    }
    Ok(())
}

impl IptablesBackend {
    /// Create (or find and complete) our sets, chains and jump rules.
    pub fn open(mut runner: Box<dyn CommandRunner>, maxelem: usize) -> Result<Self, BackendError> {
        runner.run("ipset", &["restore"], Some(&create_sets(maxelem)))?;
        let tarpit = probe_tarpit(runner.as_mut());
        if tarpit {
            log::info!("the kernel has xt_TARPIT: tarpit bans use -j TARPIT");
        }
        install_chains(runner.as_mut(), tarpit)?;
        Ok(Self {
            runner,
            tarpit,
            warned_tarpit: false,
            maxelem,
            long: HashMap::new(),
            scoped: HashMap::new(),
        })
    }

    /// Give bans longer than ipset's longest timeout a fresh one before theirs runs out.
    fn rearm_long_bans(&mut self) -> Result<(), BackendError> {
        let now = SystemTime::now();
        let due: Vec<BlockSpec> = self
            .long
            .values()
            .filter(|(_, kernel_end)| *kernel_end <= now + REARM_AHEAD)
            .map(|(spec, _)| spec.clone())
            .collect();
        if !due.is_empty() {
            log::info!(
                "re-arming {} bans longer than ipset's 24.8-day timeout",
                due.len()
            );
            // `add ... -exist` on a present element takes the new timeout.
            self.block(&due)?;
        }
        Ok(())
    }

    /// Are our sets, chains, their rules and the jumps to them all there?
    fn chains_intact(&mut self) -> bool {
        for tool in [V4.tool, V6.tool] {
            let v6 = tool == V6.tool;
            let expected = chain_rules(self.tarpit, v6);
            for (table, chain, hook) in hooks(self.tarpit) {
                let want = expected
                    .iter()
                    .filter(|r| r[1] == table && r[3] == chain)
                    .count();
                let have = self
                    .runner
                    .run(tool, &["-t", table, "-S", chain], None)
                    .map(|t| t.lines().filter(|l| l.starts_with("-A ")).count());
                if have.ok() != Some(want)
                    || self
                        .runner
                        .run(tool, &["-t", table, "-C", hook, "-j", chain], None)
                        .is_err()
                {
                    return false;
                }
            }
        }
        true
    }

    fn restore(&mut self, batch: &str) -> Result<(), BackendError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.runner
            .run("ipset", &["restore"], Some(batch))
            .map(|_| ())
    }
}

/// Does this kernel have the TARPIT target? Try it once in a chain of our own.
fn probe_tarpit(runner: &mut dyn CommandRunner) -> bool {
    let probe = "BANNER-PROBE";
    let _ = runner.run("iptables", &["-t", "filter", "-N", probe], None);
    let ok = runner
        .run(
            "iptables",
            &["-t", "filter", "-A", probe, "-p", "tcp", "-j", "TARPIT"],
            None,
        )
        .is_ok();
    let _ = runner.run("iptables", &["-t", "filter", "-F", probe], None);
    let _ = runner.run("iptables", &["-t", "filter", "-X", probe], None);
    ok
}

impl Backend for IptablesBackend {
    fn describe(&self) -> String {
        format!(
            "iptables + ipset (chain {CHAIN} in raw PREROUTING{})",
            if self.tarpit { ", TARPIT" } else { "" }
        )
    }

    fn capacity(&self) -> Capacity {
        Capacity::default()
    }

    fn block(&mut self, bans: &[BlockSpec]) -> Result<(), BackendError> {
        if !self.tarpit
            && !self.warned_tarpit
            && bans.iter().any(|b| b.blocktype == BlockType::Tarpit)
        {
            log::warn!("this kernel has no xt_TARPIT (xtables-addons): tarpit bans drop with the iptables backend");
            self.warned_tarpit = true;
        }
        let now = SystemTime::now();
        let batch = block_batch(bans, self.tarpit, now, &self.scoped);
        self.restore(&batch)?;
        for b in bans {
            match &b.scope {
                Some(scope) => self.scoped.insert(b.target, scope.clone()),
                None => self.scoped.remove(&b.target),
            };
        }
        let cap = Duration::from_secs(IPSET_MAX_TIMEOUT);
        for b in bans {
            match b.expires_at {
                Some(t) if t.duration_since(now).is_ok_and(|d| d > cap) => {
                    self.long.insert(b.target, (b.clone(), now + cap));
                }
                _ => {
                    self.long.remove(&b.target);
                }
            }
        }
        Ok(())
    }

    fn unblock(&mut self, targets: &[IpPrefix]) -> Result<(), BackendError> {
        for t in targets {
            self.long.remove(t);
        }
        let batch = unblock_batch(targets, self.tarpit, &self.scoped);
        self.restore(&batch)?;
        for t in targets {
            self.scoped.remove(t);
        }
        Ok(())
    }

    fn set_allowlist(&mut self, nets: &[IpPrefix]) -> Result<(), BackendError> {
        self.restore(&allowlist_batch(nets))
    }

    fn list(&mut self) -> Result<Vec<Enforced>, BackendError> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for (set, blocktype) in [
            (V4.drop, BlockType::Drop),
            (V6.drop, BlockType::Drop),
            (V4.tarpit, BlockType::Tarpit),
            (V6.tarpit, BlockType::Tarpit),
            (V4.port, BlockType::Drop),
            (V6.port, BlockType::Drop),
            (V4.port_tarpit, BlockType::Tarpit),
            (V6.port_tarpit, BlockType::Tarpit),
        ] {
            let text = self.runner.run("ipset", &["save", set], None)?;
            out.extend(parse_save(&text, blocktype, now));
        }
        // What is in the sets now is what later changes take out.
        self.scoped = out
            .iter()
            .filter_map(|e| Some((e.target, e.scope.clone()?)))
            .collect();
        Ok(out)
    }

    fn counters(&mut self) -> Result<Counters, BackendError> {
        let mut c = Counters::default();
        for tool in [V4.tool, V6.tool] {
            let text =
                self.runner
                    .run(tool, &["-t", "raw", "-L", CHAIN, "-n", "-v", "-x"], None)?;
            for line in text.lines().skip(2) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let Some(packets) = cols.first().and_then(|p| p.parse::<u64>().ok()) else {
                    continue;
                };
                match cols.get(2).copied() {
                    Some("RETURN") => c.add(counter::ALLOWLISTED, packets),
                    Some("DROP") => c.add(counter::DROPPED, packets),
                    _ => {}
                }
            }
            if self.tarpit {
                let text = self.runner.run(
                    tool,
                    &["-t", "filter", "-L", TARPIT_CHAIN, "-n", "-v", "-x"],
                    None,
                )?;
                for line in text.lines().skip(2) {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    if let (Some(p), Some(&"TARPIT")) = (
                        cols.first().and_then(|p| p.parse::<u64>().ok()),
                        cols.get(2),
                    ) {
                        c.add(counter::TARPITTED, p);
                    }
                }
            }
        }
        Ok(c)
    }

    fn check(&mut self) -> Result<Health, BackendError> {
        self.rearm_long_bans()?;
        // A firewall reload (`iptables -t raw -F`, `ipset destroy`, iptables.service) leaves
        // bans that print "banned" and are not enforced: look, and rebuild what is missing.
        let listed = self.runner.run("ipset", &["list", "-n"], None)?;
        let names: Vec<&str> = listed.lines().map(str::trim).collect();
        let sets_intact = [&V4, &V6]
            .iter()
            .flat_map(|s| [s.drop, s.tarpit, s.port, s.port_tarpit, s.allow])
            .all(|n| names.contains(&n));
        if !sets_intact {
            self.runner
                .run("ipset", &["restore"], Some(&create_sets(self.maxelem)))?;
            install_chains(self.runner.as_mut(), self.tarpit)?;
            return Ok(Health::Rebuilt("the banner ipsets were destroyed".into()));
        }
        if self.chains_intact() {
            return Ok(Health::Intact);
        }
        install_chains(self.runner.as_mut(), self.tarpit)?;
        Ok(Health::Repaired(format!(
            "chain {CHAIN} or its jump was removed (a firewall reload?); restored"
        )))
    }

    fn shutdown(&mut self, keep: bool) -> Result<(), BackendError> {
        if keep {
            log::info!("keep_on_exit: leaving chain {CHAIN} and the banner ipsets in place");
            return Ok(());
        }
        for tool in [V4.tool, V6.tool] {
            let chains = hooks(self.tarpit);
            for (table, chain, hook) in &chains {
                let _ = self
                    .runner
                    .run(tool, &["-t", table, "-D", hook, "-j", chain], None);
            }
            for (table, chain, _) in &chains {
                let _ = self.runner.run(tool, &["-t", table, "-F", chain], None);
                let _ = self.runner.run(tool, &["-t", table, "-X", chain], None);
            }
        }
        let mut destroy = String::new();
        for set in [&V4, &V6] {
            for name in [set.drop, set.tarpit, set.port, set.port_tarpit, set.allow] {
                let _ = writeln!(destroy, "destroy {name}");
            }
        }
        self.restore(&destroy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::command::RecordingRunner;

    fn spec(t: &str, blocktype: BlockType, secs: Option<u64>, now: SystemTime) -> BlockSpec {
        BlockSpec {
            target: t.parse().unwrap(),
            blocktype,
            expires_at: secs.map(|s| now + Duration::from_secs(s)),
            scope: None,
        }
    }

    #[test]
    fn setup_creates_sets_chains_and_one_jump_each_and_probes_tarpit_once() {
        let runner = RecordingRunner::default();
        runner.answer(
            "-j TARPIT",
            Err("iptables v1.8.9 (nf_tables): Couldn't load target `TARPIT'"),
        );
        runner.answer(
            "-C PREROUTING -j BANNER",
            Err("Bad rule (does a matching rule exist in that chain?)."),
        );
        let b = IptablesBackend::open(Box::new(runner.clone()), 1_000_000).unwrap();
        assert!(!b.tarpit);
        let lines: Vec<String> = runner.calls().iter().map(|c| c.line()).collect();
        assert_eq!(lines[0], "ipset restore");
        let sets = runner.calls()[0].stdin.clone().unwrap();
        assert!(
            sets.contains(
                "create banner4 hash:net family inet timeout 0 counters maxelem 1000000 -exist"
            ),
            "{sets}"
        );
        assert!(
            sets.contains("create banner6-allow hash:net family inet6 maxelem 65536 -exist"),
            "{sets}"
        );
        for expected in [
            "iptables -t filter -A BANNER-PROBE -p tcp -j TARPIT",
            "iptables -t raw -F BANNER",
            "iptables -t raw -A BANNER -m set --match-set banner4-allow src -j RETURN",
            "iptables -t raw -A BANNER -m set --match-set banner4 src -j DROP",
            "iptables -t raw -A BANNER -m set --match-set banner4-tarpit src -j DROP",
            "iptables -t raw -I PREROUTING 1 -j BANNER",
            "ip6tables -t raw -A BANNER -m set --match-set banner6 src -j DROP",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "missing `{expected}` in {lines:#?}"
            );
        }
        // The allowlist rule comes before the drop rule.
        let allow = lines
            .iter()
            .position(|l| l.contains("banner4-allow src -j RETURN"))
            .unwrap();
        let drop = lines
            .iter()
            .position(|l| l.contains("banner4 src -j DROP"))
            .unwrap();
        assert!(allow < drop);
        assert!(
            !lines
                .iter()
                .any(|l| l.contains(" -F PREROUTING") || l.contains(" -F INPUT")),
            "never flush the user's chains"
        );
    }

    #[test]
    fn a_jump_already_there_is_not_added_again() {
        let runner = RecordingRunner::default();
        runner.answer("-j TARPIT", Err("no TARPIT"));
        IptablesBackend::open(Box::new(runner.clone()), 10).unwrap();
        assert!(!runner
            .calls()
            .iter()
            .any(|c| c.line().contains("-I PREROUTING")));
    }

    #[test]
    fn bans_are_one_restore_batch_with_timeouts_and_tarpit_goes_where_the_kernel_can() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let bans = [
            spec("198.18.0.1", BlockType::Drop, Some(3600), now),
            spec("2001:db8::/64", BlockType::Tarpit, None, now),
            spec("198.18.0.2", BlockType::Tarpit, Some(100_000_000), now),
        ];
        assert_eq!(
            block_batch(&bans, false, now, &HashMap::new()),
            "add banner4 198.18.0.1 timeout 3600 -exist\n\
             add banner6 2001:db8::/64 timeout 0 -exist\n\
             add banner4 198.18.0.2 timeout 2147483 -exist\n"
        );
        let with_tarpit = block_batch(&bans[1..2], true, now, &HashMap::new());
        assert_eq!(
            with_tarpit,
            "del banner6 2001:db8::/64 -exist\nadd banner6-tarpit 2001:db8::/64 timeout 0 -exist\n"
        );
        assert_eq!(
            unblock_batch(&["198.18.0.1".parse().unwrap()], false, &HashMap::new()),
            "del banner4 198.18.0.1 -exist\n"
        );
        assert_eq!(
            allowlist_batch(&["127.0.0.0/8".parse().unwrap(), "127.0.0.1".parse().unwrap(), "::1".parse().unwrap()]),
            "flush banner4-allow\nflush banner6-allow\nadd banner4-allow 127.0.0.0/8 -exist\nadd banner6-allow ::1 -exist\n"
        );
    }

    #[test]
    fn port_scoped_bans_go_to_the_port_sets_and_move_out_whole() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ssh: std::sync::Arc<PortScope> = std::sync::Arc::new("tcp:22 udp:53".parse().unwrap());
        let scoped = BlockSpec {
            scope: Some(ssh.clone()),
            ..spec("198.18.0.1", BlockType::Drop, Some(60), now)
        };
        // Was banned whole: out of the address sets, into the port set.
        assert_eq!(
            block_batch(std::slice::from_ref(&scoped), true, now, &HashMap::new()),
            "del banner4 198.18.0.1 -exist
del banner4-tarpit 198.18.0.1 -exist\n\
             add banner4-port 198.18.0.1,tcp:22 timeout 60 -exist\n\
             add banner4-port 198.18.0.1,udp:53 timeout 60 -exist
"
        );
        let known = HashMap::from([(scoped.target, ssh.clone())]);
        // Now whole again: its port elements go.
        let whole = spec("198.18.0.1", BlockType::Tarpit, Some(60), now);
        assert_eq!(
            block_batch(std::slice::from_ref(&whole), true, now, &known),
            "del banner4-port 198.18.0.1,tcp:22 -exist
del banner4-port-tarpit 198.18.0.1,tcp:22 -exist\n\
             del banner4-port 198.18.0.1,udp:53 -exist
del banner4-port-tarpit 198.18.0.1,udp:53 -exist\n\
             add banner4-tarpit 198.18.0.1 timeout 60 -exist
"
        );
        assert_eq!(
            unblock_batch(&[scoped.target], false, &known),
            "del banner4-port 198.18.0.1,tcp:22 -exist
del banner4-port 198.18.0.1,udp:53 -exist
"
        );
        // The rules match the port sets by source and destination port.
        let rules: Vec<String> = chain_rules(true, false)
            .iter()
            .map(|r| r.join(" "))
            .collect();
        assert!(
            rules.contains(
                &"-t raw -A BANNER -m set --match-set banner4-port src,dst -j DROP".to_string()
            ),
            "{rules:?}"
        );
        assert!(rules.contains(&"-t filter -A BANNER-TARPIT -p tcp -m set --match-set banner4-port-tarpit src,dst -j TARPIT".to_string()), "{rules:?}");
        // ipset lists one element per port; they come back as one ban.
        let text = "create banner4-port hash:net,port family inet\n\
                    add banner4-port 198.18.0.5,tcp:22 timeout 99 packets 2 bytes 0\n\
                    add banner4-port 198.18.1.0/24,tcp:1001 timeout 0 packets 0 bytes 0\n\
                    add banner4-port 198.18.0.5,udp:53 timeout 99 packets 1 bytes 0\n\
                    add banner4-port 198.18.1.0/24,tcp:1000 timeout 0 packets 0 bytes 0\n\
                    add banner4-port 198.18.0.6,sctp:5 timeout 0 packets 0 bytes 0
";
        let got = parse_save(text, BlockType::Drop, now);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].scope.as_ref().unwrap().to_string(), "tcp:22 udp:53");
        assert_eq!(got[0].hits.dropped, 3);
        assert_eq!(got[1].target, "198.18.1.0/24".parse().unwrap());
        assert_eq!(got[1].scope.as_ref().unwrap().to_string(), "tcp:1000-1001");
    }

    #[test]
    fn saved_sets_parse_with_timeouts_and_counters() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(50);
        let text =
            "create banner4 hash:net family inet hashsize 1024 maxelem 65536 timeout 0 counters\n\
                    add banner4 198.18.0.1 timeout 3595 packets 3 bytes 252\n\
                    add banner4 198.51.100.0/24 timeout 0 packets 0 bytes 0\n";
        let got = parse_save(text, BlockType::Drop, now);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].expires_at, Some(now + Duration::from_secs(3595)));
        assert_eq!(got[0].hits.dropped, 3);
        assert_eq!(got[1].target.to_string(), "198.51.100.0/24");
        assert_eq!(got[1].expires_at, None);
    }

    #[test]
    fn a_failing_ipset_names_itself() {
        let runner = RecordingRunner::default();
        runner.answer("-j TARPIT", Err("no TARPIT"));
        let mut b = IptablesBackend::open(Box::new(runner.clone()), 10).unwrap();
        runner.answer(
            "ipset restore",
            Err("ipset v7.17: Error in line 1: Kernel error received: set is full"),
        );
        let now = SystemTime::now();
        let err = b
            .block(&[spec("198.18.0.1", BlockType::Drop, Some(5), now)])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("`ipset restore` failed: ipset v7.17: Error in line 1"),
            "{err}"
        );
    }

    #[test]
    fn the_tarpit_chain_returns_the_allowlist_first() {
        // Issue 9, item 10: an allowlisted address inside a tarpitted prefix (loopback
        // included) was tarpitted in filter INPUT/FORWARD.
        for v6 in [false, true] {
            let rules: Vec<String> = chain_rules(true, v6).iter().map(|r| r.join(" ")).collect();
            let in_tarpit: Vec<&String> =
                rules.iter().filter(|r| r.contains(TARPIT_CHAIN)).collect();
            assert!(
                in_tarpit[0].contains("-allow src -j RETURN"),
                "{in_tarpit:#?}"
            );
            assert!(in_tarpit.iter().skip(1).all(|r| !r.contains("-allow")));
        }
    }

    #[test]
    fn a_firewall_reload_is_noticed_and_repaired() {
        // Issue 9, item 6: after `iptables -t raw -F` new bans printed "banned" and were not
        // enforced.
        let runner = RecordingRunner::default();
        runner.answer("-j TARPIT", Err("no TARPIT"));
        let mut b = IptablesBackend::open(Box::new(runner.clone()), 1000).unwrap();
        let all_sets =
            "banner4\nbanner4-tarpit\nbanner4-port\nbanner4-port-tarpit\nbanner4-allow\nbanner6\nbanner6-tarpit\nbanner6-port\nbanner6-port-tarpit\nbanner6-allow\n";
        runner.answer("ipset list -n", Ok(all_sets));
        let rules = |tool: &str| {
            chain_rules(false, tool == "ip6tables")
                .iter()
                .map(|r| r[2..].join(" "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let v4 = rules("iptables");
        let v6 = rules("ip6tables");
        runner.answer("iptables -t raw -S BANNER", Ok(&v4));
        runner.answer("ip6tables -t raw -S BANNER", Ok(&v6));
        assert_eq!(b.check().unwrap(), Health::Intact);
        // `iptables -t raw -F`: the chain is empty.
        runner.answer("iptables -t raw -S BANNER", Ok("-N BANNER"));
        runner.clear();
        assert!(matches!(b.check().unwrap(), Health::Repaired(_)));
        let lines: Vec<String> = runner.calls().iter().map(|c| c.line()).collect();
        assert!(
            lines
                .iter()
                .any(|l| l == "iptables -t raw -A BANNER -m set --match-set banner4 src -j DROP"),
            "{lines:#?}"
        );
        // `ipset destroy`: the sets are re-created, and the manager puts the bans back.
        runner.answer("ipset list -n", Ok("banner6\n"));
        assert!(matches!(b.check().unwrap(), Health::Rebuilt(_)));
    }

    #[test]
    fn bans_past_ipsets_longest_timeout_get_the_longest_and_are_re_armed() {
        // Issue 9, item 23: bans longer than 24.8 days got no timeout at all (never expiring
        // in the kernel if banner died).
        let now = SystemTime::now();
        let forty_days = spec("198.18.0.1", BlockType::Drop, Some(40 * 86_400), now);
        let batch = block_batch(
            std::slice::from_ref(&forty_days),
            false,
            now,
            &HashMap::new(),
        );
        assert!(
            batch.contains(&format!("timeout {IPSET_MAX_TIMEOUT} -exist")),
            "{batch}"
        );
        assert_eq!(timeout_of(None, now), 0, "permanent stays permanent");

        let runner = RecordingRunner::default();
        runner.answer("-j TARPIT", Err("no TARPIT"));
        let mut b = IptablesBackend::open(Box::new(runner.clone()), 1000).unwrap();
        b.block(std::slice::from_ref(&forty_days)).unwrap();
        assert!(b.long.contains_key(&forty_days.target));
        // As if 24 days had passed: the kernel's timeout is about to run out.
        b.long.get_mut(&forty_days.target).unwrap().1 = now;
        runner.clear();
        let _ = b.check();
        let rearmed = runner.calls().iter().any(|c| {
            c.stdin
                .as_deref()
                .is_some_and(|i| i.contains("add banner4 198.18.0.1 timeout"))
        });
        assert!(rearmed, "{:#?}", runner.calls());
        // Unbanned: no longer re-armed.
        b.unblock(&[forty_days.target]).unwrap();
        assert!(b.long.is_empty());
    }
}
