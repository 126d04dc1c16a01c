//! The `event_structured` target: see `relay_processing::fuzz_targets::event_structured`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_processing::fuzz_targets::event_structured(data));
