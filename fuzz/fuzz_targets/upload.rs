//! The `upload` target: see `relay_processing::fuzz_targets::upload`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_processing::fuzz_targets::upload(data));
