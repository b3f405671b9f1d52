//! Custom filters: any pattern text compiles or is refused with an error (never a panic), and
//! a compiled one judges any line without a panic.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use banner::filter::{date::DateCache, Filter, FilterSpec, LineMeta};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the pattern, the rest are log lines.
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    let pattern = lines.next().unwrap_or_default().to_string();
    let spec = FilterSpec {
        failregex: vec![pattern],
        ignoreregex: vec![],
        datepattern: None,
        prefregex: None,
    };
    let Ok(filter) = Filter::custom("fuzz", &spec, false) else {
        return;
    };
    let meta = LineMeta::arrived(UNIX_EPOCH + Duration::from_secs(1_795_694_400));
    let mut cache = DateCache::default();
    for line in lines {
        let _ = filter.examine(line, &meta, &mut cache);
    }
});
