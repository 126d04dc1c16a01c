//! The `sourcemap` target: see `relay_processing::fuzz_targets::sourcemap`.
#![no_main]

use std::sync::Once;

/// swc's parser (under js-source-scopes) asserts things of its input in debug builds; relay
/// catches a panic there (`sourcemap/index/scopes.rs`), losing only that file's scope names.
/// libfuzzer-sys's panic hook aborts before any panic unwinds, so panics raised inside swc's
/// parser are let through to that catch; every other panic still aborts.
fn let_parser_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parser = info
                .location()
                .is_some_and(|at| at.file().contains("/swc_ecma_parser-"));
            if !in_parser {
                abort(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let_parser_panics_unwind();
    relay_processing::fuzz_targets::sourcemap(data)
});
