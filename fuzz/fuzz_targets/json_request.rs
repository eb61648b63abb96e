//! The seed JSON request parser, then the featurizer: see `triad_fuzz::json_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| triad_fuzz::json_request(data));
