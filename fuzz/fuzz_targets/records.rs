//! Arbitrary structured records (built with `arbitrary`) into a featurizer
//! with arbitrary bounds: see `triad_fuzz::records`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: triad_fuzz::ArbRequest| triad_fuzz::records(input));
