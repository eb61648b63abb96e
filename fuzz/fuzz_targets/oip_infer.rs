//! Arbitrary bytes as an OIP ModelInferRequest, decoded and validated: see `triad_fuzz::oip_infer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| triad_fuzz::oip_infer(data));
