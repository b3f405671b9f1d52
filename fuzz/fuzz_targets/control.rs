//! The control protocol decoder on any bytes: a request or an error, never a panic; what
//! decodes encodes and decodes back to the same request. Replies likewise.
#![no_main]

use banner::protocol::{decode_request, decode_response, encode_request, encode_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = decode_request(data) {
        let back = decode_request(&encode_request(&request)).expect("its encoding decodes");
        assert_eq!(request, back);
    }
    if let Ok(reply) = decode_response(data) {
        let back = decode_response(&encode_response(&reply)).expect("its encoding decodes");
        assert_eq!(format!("{reply:?}"), format!("{back:?}"));
    }
});
