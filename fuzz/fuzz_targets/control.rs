//! The control protocol decoder on any bytes: a request or an error, never a panic; what
//! decodes encodes and decodes back to the same request.
#![no_main]

use banner::control::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        let again = serde_json::to_vec(&request).expect("a request encodes");
        let back: Request = serde_json::from_slice(&again).expect("its encoding decodes");
        assert_eq!(format!("{request:?}"), format!("{back:?}"));
    }
});
