//! Any line through any built-in filter: no panic, and an address found is one the line
//! really holds. The first byte picks the filter (and its mode: default or the last one,
//! the widest); the rest is the line.
#![no_main]

use std::{
    net::IpAddr,
    sync::OnceLock,
    time::{Duration, UNIX_EPOCH},
};

use banner::filter::{builtin::BUILTINS, date::DateCache, Examined, Filter, LineMeta};
use libfuzzer_sys::fuzz_target;

/// Each (filter, mode) compiled on first use: compiling all of them up front would spend
/// the run's time budget before the first input.
fn filter(pick: u8) -> &'static Filter {
    static F: OnceLock<Vec<OnceLock<Filter>>> = OnceLock::new();
    let all = F.get_or_init(|| (0..BUILTINS.len() * 2).map(|_| OnceLock::new()).collect());
    let i = usize::from(pick) % all.len();
    all[i].get_or_init(|| {
        let b = &BUILTINS[i / 2];
        let mode = if i % 2 == 0 {
            b.modes[0]
        } else {
            b.modes[b.modes.len() - 1]
        };
        Filter::builtin(b.name, mode, false).expect("built-in filter")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, line)) = data.split_first() else {
        return;
    };
    let meta = LineMeta::arrived(UNIX_EPOCH + Duration::from_secs(1_795_694_400));
    // A fresh copy per input: a line that names no address takes its connection's
    // (pid's) address from an earlier line, which another input must not supply.
    let f = filter(pick).clone();
    if let Examined::Failure(fail) = f.examine(line, &meta, &mut DateCache::default()) {
        // The address must be written in the line, in some spelling (`2001:db8::05`,
        // IPv4-mapped `::ffff:a.b.c.d` folded to IPv4): never one the line does not hold.
        let text = String::from_utf8_lossy(line);
        let written = text
            .split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
            // `ADDR:PORT` (openvpn, gitea) is one token here: its address without the port.
            .map(|t| t.trim_end_matches([':', '.']))
            .filter_map(|t| {
                t.parse::<IpAddr>()
                    .ok()
                    .or_else(|| t.rsplit_once(':').and_then(|(a, _)| a.parse().ok()))
            })
            .map(|a| match a {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
                v4 => v4,
            })
            .any(|a| a == fail.addr);
        assert!(written, "{} is not in {text:?} ({})", fail.addr, f.name());
    }
});
