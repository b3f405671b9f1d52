//! fail2ban filter files: any INI text is read or refused with an error naming where (never
//! a panic); any Python pattern is compiled or refused, and searches any line; a compiled
//! filter judges any line, and any date text, without a panic.
#![no_main]

use std::collections::BTreeMap;

use banner::filter::f2b::{dates::DateDetector, definition, pyre, Fail2banFilter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Up to the first NUL: a filter file; after it: log lines.
    let text = String::from_utf8_lossy(data);
    let (file, lines) = text.split_once('\0').unwrap_or((&text, ""));
    let _ = pyre::translate(file);
    let _ = pyre::relaxed(file);
    // A pattern's own engines on the lines: the chain that walks look-aheads and
    // conditionals (and its marked syntax) never panics, whatever the pattern.
    if let Ok(t) = pyre::translate(file) {
        let _ = pyre::marked(&t.pattern);
    }
    if let Ok(re) = pyre::Re::python(file, "fuzz") {
        for l in lines.lines() {
            let _ = re.search(l);
        }
    }
    let _ = DateDetector::new(Some(file)).map(|mut d| {
        for l in lines.lines() {
            let _ = d.find(l, 1_124_013_600.0);
        }
    });
    let dir = std::env::temp_dir().join(format!("banner-fuzz-f2b-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let path = dir.join("f.conf");
    if std::fs::write(&path, file).is_err() {
        return;
    }
    let Ok(def) = definition::load(&path, &BTreeMap::new()) else {
        return;
    };
    let Ok(filter) = Fail2banFilter::compile(&def) else {
        return;
    };
    for l in lines.lines() {
        let _ = filter.process(l, None, 1_124_013_600.0);
    }
});
