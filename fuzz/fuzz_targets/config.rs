//! Any configuration text: parsed or refused with errors that each name a place in the file,
//! never a panic.
#![no_main]

use banner::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fuzz.toml") {
        Ok(cfg) => {
            // What was accepted dumps to a configuration that reads back.
            let dumped = cfg.dump();
            assert!(
                Config::parse(&dumped, "dump.toml").is_ok(),
                "the dump of an accepted config is refused:\n{dumped}"
            );
        }
        Err(errors) => {
            for e in &errors.0 {
                assert!(!e.message.is_empty());
                assert!(e.file == "fuzz.toml" || e.file == "<embedded default>" || e.line == 0);
            }
        }
    }
});
