//! The `event` target: see `relay_processing::fuzz_targets::event`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_processing::fuzz_targets::event(data));
