//! The `breakpad` target: see `relay_processing::fuzz_targets::breakpad`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_processing::fuzz_targets::breakpad(data));
