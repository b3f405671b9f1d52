//! Any line through the built-in sshd filter (both modes): no panic, and an address found is
//! one the line really holds.
#![no_main]

use std::{
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
    for f in filters() {
        if let Examined::Failure(fail) = f.examine(line, &meta, &mut DateCache::default()) {
            // The address must be written in the line (IPv4-mapped ones are folded to IPv4).
            let text = String::from_utf8_lossy(line);
            let a = fail.addr.to_string();
            assert!(
                text.contains(&a) || text.to_ascii_lowercase().contains(&a),
                "{a} is not in {text:?}"
            );
        }
    }
});
