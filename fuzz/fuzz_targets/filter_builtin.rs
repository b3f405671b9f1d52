//! Any line through the built-in sshd filter (both modes): no panic, and an address found is
//! one the line really holds.
#![no_main]

use std::{
    net::IpAddr,
    sync::OnceLock,
    time::{Duration, UNIX_EPOCH},
};

use banner::filter::{date::DateCache, Examined, Filter, LineMeta};
use libfuzzer_sys::fuzz_target;

fn filters() -> &'static [Filter; 2] {
    static F: OnceLock<[Filter; 2]> = OnceLock::new();
    F.get_or_init(|| {
        [
            Filter::builtin("sshd", "normal", false).expect("built-in filter"),
            Filter::builtin("sshd", "aggressive", false).expect("built-in filter"),
        ]
    })
}

fuzz_target!(|line: &[u8]| {
    let meta = LineMeta::arrived(UNIX_EPOCH + Duration::from_secs(1_795_694_400));
    for compiled in filters() {
        // A fresh copy per input: a line that names no address takes its connection's
        // (pid's) address from an earlier line, which another input must not supply.
        let f = compiled.clone();
        if let Examined::Failure(fail) = f.examine(line, &meta, &mut DateCache::default()) {
            // The address must be written in the line, in some spelling (`2001:db8::05`,
            // IPv4-mapped `::ffff:a.b.c.d` folded to IPv4): never one the line does not hold.
            let text = String::from_utf8_lossy(line);
            let written = text
                .split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
                .filter_map(|t| t.parse::<IpAddr>().ok())
                .map(|a| match a {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
                    v4 => v4,
                })
                .any(|a| a == fail.addr);
            assert!(written, "{} is not in {text:?}", fail.addr);
        }
    }
});
