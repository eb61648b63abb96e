//! Arbitrary bytes as `triad.v1` FeaturizeRequest and ScoreRequest, to records, featurized: see `triad_fuzz::proto_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| triad_fuzz::proto_request(data));
