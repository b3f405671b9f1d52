//! The ban log decoder on any bytes (a torn or damaged file): no panic; the trusted prefix it
//! reports lies inside the input; replaying what it decoded never panics either.
#![no_main]

use banner::state::{decode, replay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, good_len, _corrupt) = decode(data);
    assert!(good_len as usize <= data.len());
    let _ = replay(&records);
});
