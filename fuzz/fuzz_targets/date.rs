//! The date parser on any bytes, in every mode: no panic, and the rest it returns is a suffix
//! of the line.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use banner::filter::date::{parse_leading, DateCache, DateMode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let now = UNIX_EPOCH + Duration::from_secs(1_795_694_400);
    let modes = [
        DateMode::Auto,
        DateMode::None,
        DateMode::Pattern("%d/%m/%Y %H:%M:%S".into()),
        DateMode::Pattern("%Y-%m-%dT%H:%M:%S%.f%:z".into()),
    ];
    let mut cache = DateCache::default();
    for mode in &modes {
        if let Some((_, rest)) = parse_leading(line, mode, now, &mut cache) {
            assert!(line.ends_with(rest));
        }
    }
});
