//! The core on a manual clock and a memory backend.

use std::sync::Arc;

use super::*;
use crate::{
    addr::IpPrefix,
    backend::memory::MemoryBackend,
    bans::{BanEvent, IgnoreList},
    clock::ManualClock,
    filter::FailureKind,
    jail::RECIDIVE,
    model::JailId,
    state::Store,
    subscribers::Subscriber,
};

fn core_with(backend: MemoryBackend, clock: &ManualClock, dir: &std::path::Path) -> Core {
    let (store, _, _) = Store::open(dir).unwrap();
    let mut ignore = IgnoreList::default();
    ignore.push("198.18.100.0/24".parse().unwrap(), "ignoreip");
    let manager = BanManager::new(Box::new(backend), store, Arc::new(clock.clone()), ignore);
    let config = Config::parse(
        "[jails.sshd]\nlogpath = \"/tmp/banner-core-test.log\"\njournalmatch = []\n[jails.recidive]\nmaxretry = 2\n",
        "t.toml",
    )
    .unwrap();
    Core::new(
        manager,
        &config,
        PositionBook::in_memory(),
        CounterRegistry::default(),
    )
}

fn failure(addr: &str, clock: &ManualClock) -> Failure {
    Failure {
        addr: addr.parse().unwrap(),
        time: crate::clock::Clock::now(clock),
        session: None,
        kind: FailureKind::Attempt,
        user: None,
        fingerprint: 0,
        line: Some(Arc::from(format!("Failed password for root from {addr}"))),
    }
}

#[test]
fn allowlisted_failures_are_never_counted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = core_with(backend.clone(), &clock, dir.path());
    let f = failure("198.18.100.5", &clock);
    core.on_failures(
        "sshd",
        &[f.clone(), f.clone(), f.clone(), f],
        Instant::now(),
    );
    assert!(backend.state().bans.is_empty());
    assert_eq!(core.jails["sshd"].ignored, 4);
    assert_eq!(core.jails["sshd"].jail.stats().failures, 0);
}

/// Each ban made from failures a source handed over is one observation of the detection
/// latency; failures that ban nothing, and an address already banned, are none.
#[test]
fn a_ban_from_a_source_times_its_detection() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let mut core = core_with(MemoryBackend::default(), &clock, dir.path());
    let send = |core: &mut Core, addr: &str, n: usize| {
        let failures = vec![failure(addr, &clock); n];
        assert!(core.handle(Event::Failures {
            jail: "sshd".into(),
            failures,
            found_at: Instant::now(),
        }));
    };
    send(&mut core, "198.18.0.7", 2);
    assert_eq!(core.detection().count(), 0, "two failures ban nothing");
    send(&mut core, "198.18.0.7", 1);
    assert_eq!(core.detection().count(), 1);
    send(&mut core, "198.18.0.7", 3);
    assert_eq!(core.detection().count(), 1, "already banned");
    send(&mut core, "198.18.0.8", 3);
    assert_eq!(core.detection().count(), 2);
}

#[test]
fn a_ban_the_backend_refused_is_retried_until_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = core_with(backend.clone(), &clock, dir.path());
    backend.state().fail_next_block = true;
    let f = failure("198.18.0.9", &clock);
    core.on_failures("sshd", &[f.clone(), f.clone(), f], Instant::now());
    assert!(backend.state().bans.is_empty(), "the first attempt failed");
    assert_eq!(core.retry.len(), 1);
    core.last_housekeeping = Instant::now() - HOUSEKEEPING;
    core.tick();
    assert!(core.retry.is_empty());
    assert!(backend
        .state()
        .bans
        .contains_key(&"198.18.0.9".parse().unwrap()));
}

/// Keeps every event it is given.
#[derive(Clone, Default)]
struct Recorder(Arc<std::sync::Mutex<Vec<BanEvent>>>);

impl Subscriber for Recorder {
    fn on_event(&mut self, event: &BanEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[test]
fn subscribers_see_each_ban_with_its_cause_and_recidive_is_fed_by_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let mut core = core_with(MemoryBackend::default(), &clock, dir.path());
    let seen = Recorder::default();
    core.subscribe(Box::new(seen.clone()));
    let target: IpPrefix = "198.18.0.9".parse().unwrap();
    for _ in 0..2 {
        let f = failure("198.18.0.9", &clock);
        core.on_failures("sshd", &[f.clone(), f.clone(), f], Instant::now());
        core.unban_by_hand(&[target], None).unwrap();
        clock.advance(Duration::from_secs(60));
    }
    let events = seen.0.lock().unwrap().clone();
    let described: Vec<String> = events.iter().map(BanEvent::describe).collect();
    // sshd's first ban; lifted; sshd's second ban, which recidive (maxretry 2) counts
    // as its second and bans for a week on top; lifted.
    assert_eq!(events.len(), 5, "{described:#?}");
    let BanEvent::Banned { ban, cause } = &events[0] else {
        panic!("{described:#?}");
    };
    assert_eq!((ban.jail.as_str(), cause.failures), ("sshd", 3));
    assert_eq!(cause.lines.len(), 3);
    assert!(cause.lines[0].contains("198.18.0.9"), "{cause:?}");
    let BanEvent::Extended { ban, cause } = &events[3] else {
        panic!("{described:#?}");
    };
    assert_eq!((ban.jail.as_str(), cause.failures), (RECIDIVE, 2));
    // Recidive's evidence is the bans that made it.
    assert!(
        cause
            .lines
            .iter()
            .all(|l| l.starts_with("[sshd] Ban 198.18.0.9")),
        "{cause:?}"
    );
    assert!(matches!(&events[4], BanEvent::Unbanned { ban, .. } if ban.jail == RECIDIVE));
}

#[test]
fn recidive_counts_the_bans_of_jails_reading_logs_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let core = core_with(MemoryBackend::default(), &clock, dir.path());
    assert!(core.feeds_ban_jails(&"sshd".into()));
    assert!(!core.feeds_ban_jails(&RECIDIVE.into()));
    assert!(!core.feeds_ban_jails(&JailId::Manual));
    assert!(!core.feeds_ban_jails(&JailId::Restored));
    // A jail dropped by a reload whose ban was still waiting for a retry: still a jail's ban.
    assert!(core.feeds_ban_jails(&"gone".into()));
}

#[test]
fn repeat_offenders_earn_the_recidive_ban() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = core_with(backend.clone(), &clock, dir.path());
    let target: IpPrefix = "198.18.0.9".parse().unwrap();
    for round in 0..2 {
        let f = failure("198.18.0.9", &clock);
        core.on_failures("sshd", &[f.clone(), f.clone(), f], Instant::now());
        let ban = core.manager.get(&target).cloned().expect("banned");
        if round == 0 {
            assert_eq!(ban.jail, "sshd");
            core.manager.unban(&target).unwrap();
            clock.advance(Duration::from_secs(60));
        } else {
            // The second sshd ban within recidive's day is recidive's second count.
            assert_eq!(ban.jail, RECIDIVE, "{ban:?}");
            let week = crate::clock::Clock::now(&clock) + Duration::from_secs(7 * 86_400);
            assert_eq!(ban.expires_at, Some(week));
        }
    }
}

/// The host's addresses come with the event (read on the watcher's thread): a new own
/// address joins the allowlist and its ban is lifted; an event without addresses (a link
/// changed) leaves the allowlist as it is; a reload keeps the addresses last heard.
#[test]
fn the_allowlist_follows_the_addresses_the_watcher_sends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = core_with(backend.clone(), &clock, dir.path());
    let own = |addr: &str| crate::sys::IfAddr {
        iface: "eth0".into(),
        addr: addr.parse().unwrap(),
        subnet: None,
    };
    core.know_host_addresses(vec![own("198.18.5.1")]);
    let covered = |core: &Core, a: &str| {
        core.manager
            .ignore_list()
            .covering(&a.parse::<IpPrefix>().unwrap())
            .is_some()
    };
    assert!(covered(&core, "198.18.5.1"));
    // The jail bans an address the host does not have yet.
    let f = failure("198.18.7.7", &clock);
    core.on_failures("sshd", &[f.clone(), f.clone(), f], Instant::now());
    assert_eq!(backend.state().bans.len(), 1);
    assert!(core.handle(Event::HostChanged { addresses: None }));
    assert!(!covered(&core, "198.18.7.7"));
    assert_eq!(backend.state().bans.len(), 1);
    // Then the host is given that address (a VIP moved here): never banned from now on.
    assert!(core.handle(Event::HostChanged {
        addresses: Some(vec![own("198.18.5.1"), own("198.18.7.7")]),
    }));
    assert!(covered(&core, "198.18.7.7"));
    assert!(
        backend.state().bans.is_empty(),
        "the ban on an own address is lifted"
    );
    let (reply, _answer) = tokio::sync::oneshot::channel();
    let config = core.config.clone();
    assert!(core.handle(Event::Reload {
        config: Box::new(config),
        sources: BTreeMap::new(),
        reply,
    }));
    assert!(covered(&core, "198.18.7.7") && covered(&core, "198.18.5.1"));
    assert!(!core.handle(Event::Shutdown));
}

/// A core whose configuration pulls from CrowdSec (no thread runs: the tests hand it the
/// link's news themselves).
fn crowdsec_core(backend: MemoryBackend, clock: &ManualClock, dir: &std::path::Path) -> Core {
    let (store, records, _) = Store::open(dir).unwrap();
    let mut ignore = IgnoreList::default();
    ignore.push("198.18.100.0/24".parse().unwrap(), "ignoreip");
    let mut manager = BanManager::new(Box::new(backend), store, Arc::new(clock.clone()), ignore);
    manager.restore(&records).unwrap();
    let config = Config::parse(
        "[jails.sshd]\nenabled = false\n[jails.recidive]\nmaxretry = 1\n[crowdsec]\nlapi_url = \"http://127.0.0.1:8080\"\napi_key = \"k\"\ncaptcha = \"drop\"\n",
        "t.toml",
    )
    .unwrap();
    Core::new(
        manager,
        &config,
        PositionBook::in_memory(),
        CounterRegistry::default(),
    )
}

fn pulled(answer: &str, startup: bool) -> crate::crowdsec::News {
    let rules = crate::crowdsec::Rules {
        captcha: true,
        ..Default::default()
    };
    crate::crowdsec::News::Pulled {
        stream: crate::crowdsec::decisions::parse_stream(answer.as_bytes(), &rules).unwrap(),
        startup,
    }
}

fn decision(id: i64, scope: &str, value: &str, kind: &str, duration: &str) -> String {
    format!(
        r#"{{"id":{id},"origin":"cscli","scenario":"t","scope":"{scope}","value":"{value}","type":"{kind}","duration":"{duration}"}}"#
    )
}

#[test]
fn crowdsec_decisions_ban_with_their_deadline_and_are_lifted_when_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = crowdsec_core(backend.clone(), &clock, dir.path());
    let first = format!(
        r#"{{"new":[{},{},{},{}],"deleted":null}}"#,
        decision(1, "Ip", "198.18.0.7", "ban", "1h"),
        decision(2, "Range", "198.18.5.0/24", "ban", "2h"),
        decision(3, "Ip", "2001:db8::5", "captcha", "30m"),
        decision(4, "Ip", "198.18.100.9", "ban", "1h"),
    );
    core.on_crowdsec(pulled(&first, true));
    let now = crate::clock::Clock::now(&clock);
    {
        let state = backend.state();
        let seven = &state.bans[&"198.18.0.7".parse().unwrap()];
        assert_eq!(seven.expires_at, Some(now + Duration::from_secs(3600)));
        assert_eq!(seven.blocktype, BlockType::Tarpit, "ban: the default");
        let range = &state.bans[&"198.18.5.0/24".parse().unwrap()];
        assert_eq!(range.expires_at, Some(now + Duration::from_secs(7200)));
        let captcha = &state.bans[&"2001:db8::5".parse().unwrap()];
        assert_eq!(captcha.blocktype, BlockType::Drop, "captcha = \"drop\"");
        assert!(
            !state.bans.contains_key(&"198.18.100.9".parse().unwrap()),
            "the allowlist wins"
        );
        assert_eq!(state.bans.len(), 3);
    }
    let ban = core.manager.get(&"198.18.0.7".parse().unwrap()).unwrap();
    assert_eq!(ban.jail.as_str(), "crowdsec:cscli");
    let status = core.crowdsec_status().unwrap();
    // Held: all four; enforced: all but the allowlisted one.
    assert_eq!((status.state.as_str(), status.decisions), ("up", 4));
    assert_eq!(status.allowlisted, 1);
    // CrowdSec's bans are no jail's offences: recidive (maxretry 1 here) never counts them.
    assert_eq!(core.jails[RECIDIVE].jail.stats().failures, 0);

    // A deletion lifts; a jail's own ban of an address CrowdSec also named is kept.
    let by_hand = core
        .manager
        .ban(BanRequest {
            target: "198.18.0.8".parse().unwrap(),
            jail: JailId::Manual,
            blocktype: BlockType::Drop,
            length: BanLength::For(Duration::from_secs(86_400)),
            scope: None,
            cause: Default::default(),
        })
        .unwrap();
    assert!(matches!(by_hand, crate::bans::BanOutcome::New(_)));
    let add = format!(
        r#"{{"new":[{}],"deleted":null}}"#,
        decision(5, "Ip", "198.18.0.8", "ban", "1h")
    );
    core.on_crowdsec(pulled(&add, false));
    assert_eq!(
        core.manager
            .get(&"198.18.0.8".parse().unwrap())
            .unwrap()
            .jail,
        JailId::Manual,
        "a shorter decision leaves the longer ban by hand as it is"
    );
    let delete = format!(
        r#"{{"new":null,"deleted":[{},{}]}}"#,
        decision(1, "Ip", "198.18.0.7", "ban", "-1s"),
        decision(5, "Ip", "198.18.0.8", "ban", "-1s"),
    );
    core.on_crowdsec(pulled(&delete, false));
    {
        let state = backend.state();
        assert!(!state.bans.contains_key(&"198.18.0.7".parse().unwrap()));
        assert!(
            state.bans.contains_key(&"198.18.0.8".parse().unwrap()),
            "the ban by hand stays"
        );
    }

    // A ban by hand that ends before LAPI's decision: the decision is enforced again.
    let add = format!(
        r#"{{"new":[{}],"deleted":null}}"#,
        decision(6, "Ip", "198.18.0.8", "ban", "48h")
    );
    core.on_crowdsec(pulled(&add, false));
    assert_eq!(
        core.manager
            .get(&"198.18.0.8".parse().unwrap())
            .unwrap()
            .jail,
        JailId::Manual
    );
    clock.advance(Duration::from_secs(86_401));
    core.manager.expire();
    core.last_housekeeping = Instant::now() - HOUSEKEEPING;
    core.tick();
    let ban = core.manager.get(&"198.18.0.8".parse().unwrap()).unwrap();
    assert_eq!(ban.jail.as_str(), "crowdsec:cscli");
    assert_eq!(ban.expires_at, Some(now + Duration::from_secs(48 * 3600)));

    // `banner unban` of a CrowdSec ban holds until LAPI sends the target anew.
    core.manager.unban(&"198.18.0.8".parse().unwrap()).unwrap();
    core.publish();
    core.last_housekeeping = Instant::now() - HOUSEKEEPING;
    core.tick();
    assert!(core.manager.get(&"198.18.0.8".parse().unwrap()).is_none());
}

#[test]
fn crowdsec_bans_survive_a_restart_and_a_whole_set_lifts_what_went_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = crowdsec_core(backend.clone(), &clock, dir.path());
    let first = format!(
        r#"{{"new":[{},{}]}}"#,
        decision(1, "Ip", "198.18.0.1", "ban", "1h"),
        decision(2, "Ip", "198.18.0.2", "ban", "1h"),
    );
    core.on_crowdsec(pulled(&first, true));
    drop(core);

    // Restarted with LAPI down: the saved bans are enforced again, with no answer yet.
    let backend = MemoryBackend::default();
    let mut core = crowdsec_core(backend.clone(), &clock, dir.path());
    assert_eq!(backend.state().bans.len(), 2);
    core.on_crowdsec(crate::crowdsec::News::Down {
        why: "cannot reach LAPI".into(),
    });
    assert_eq!(backend.state().bans.len(), 2, "a link down lifts nothing");
    assert_eq!(core.crowdsec_status().unwrap().state, "down");

    // LAPI back: its whole set no longer holds 198.18.0.1; 198.18.0.2's deadline, counted
    // again a second later, is the same decision and no new ban.
    clock.advance(Duration::from_secs(1));
    let seen = Recorder::default();
    core.subscribe(Box::new(seen.clone()));
    let again = format!(
        r#"{{"new":[{}]}}"#,
        decision(2, "Ip", "198.18.0.2", "ban", "59m59.5s")
    );
    core.on_crowdsec(pulled(&again, true));
    let events: Vec<String> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.describe())
        .collect();
    assert_eq!(
        events,
        ["[crowdsec:cscli] Unban 198.18.0.1 (no longer decided by CrowdSec)"]
    );
    let state = backend.state();
    assert!(!state.bans.contains_key(&"198.18.0.1".parse().unwrap()));
    assert!(state.bans.contains_key(&"198.18.0.2".parse().unwrap()));
}

#[test]
fn taking_crowdsec_out_of_the_configuration_lifts_its_bans_only() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::default();
    let mut core = crowdsec_core(backend.clone(), &clock, dir.path());
    core.on_crowdsec(pulled(
        &format!(
            r#"{{"new":[{}]}}"#,
            decision(1, "Ip", "198.18.0.1", "ban", "1h")
        ),
        true,
    ));
    core.manager
        .ban(BanRequest {
            target: "198.18.0.3".parse().unwrap(),
            jail: JailId::Manual,
            blocktype: BlockType::Drop,
            length: BanLength::Permanent,
            scope: None,
            cause: Default::default(),
        })
        .unwrap();
    let without = Config::parse("[jails.sshd]\nenabled = false\n", "t.toml").unwrap();
    core.apply_config(&without, &BTreeMap::new());
    let state = backend.state();
    assert_eq!(
        state.bans.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["198.18.0.3"]
    );
    assert!(core.crowdsec_status().is_none());
}

#[test]
fn a_full_map_leaves_out_its_own_decisions_and_enforces_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(1_800_000_000);
    let backend = MemoryBackend::with_capacity(crate::backend::Capacity {
        exact_v4: Some(2),
        ..Default::default()
    });
    let mut core = crowdsec_core(backend.clone(), &clock, dir.path());
    let answer = format!(
        r#"{{"new":[{},{},{},{},{}]}}"#,
        decision(1, "Ip", "198.18.0.1", "ban", "1h"),
        decision(2, "Ip", "198.18.0.2", "ban", "1h"),
        decision(3, "Ip", "198.18.0.3", "ban", "1h"),
        decision(4, "Range", "198.18.5.0/24", "ban", "1h"),
        decision(5, "Ip", "2001:db8::5", "ban", "1h"),
    );
    core.on_crowdsec(pulled(&answer, true));
    {
        let state = backend.state();
        let v4 = state
            .bans
            .keys()
            .filter(|k| k.is_v4() && k.is_host())
            .count();
        assert_eq!(v4, 2, "as many as the map takes");
        assert!(state.bans.contains_key(&"198.18.5.0/24".parse().unwrap()));
        assert!(state.bans.contains_key(&"2001:db8::5".parse().unwrap()));
        assert_eq!(state.bans.len(), 4);
    }
    // When one of them is lifted in LAPI, the one left out takes its place.
    let delete = format!(
        r#"{{"deleted":[{}]}}"#,
        decision(1, "Ip", "198.18.0.1", "ban", "-1s")
    );
    core.on_crowdsec(pulled(&delete, false));
    core.last_housekeeping = Instant::now() - HOUSEKEEPING;
    core.tick();
    let state = backend.state();
    let v4: Vec<String> = state
        .bans
        .keys()
        .filter(|k| k.is_v4() && k.is_host())
        .map(|k| k.to_string())
        .collect();
    assert_eq!(v4, ["198.18.0.2", "198.18.0.3"]);
}
