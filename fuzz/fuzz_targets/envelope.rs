//! The `envelope` target: see `relay_processing::fuzz_targets::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_processing::fuzz_targets::envelope(data));
