//! Entry points of the fuzz targets (`fuzz/`), one per parser of untrusted bytes.
//!
//! Each takes the fuzzer's bytes, runs the code the relay runs on such input, and panics only
//! when that code breaks a promise: it must never panic, hang or exhaust memory on any input,
//! and where a result can be checked (a round trip, the index against the full parse) it must
//! be right. `cargo test` replays every seed and every saved finding through these same
//! functions (`tests/fuzz_replay.rs`), so a fixed finding stays fixed on the stable toolchain.
//!
//! Not part of the relay's API: public only for the fuzz crate and the replay test.

mod breakpad;
mod event;
mod intake;
mod minidump;
mod sourcemap;
mod upload;

use std::path::{Path, PathBuf};

pub use self::breakpad::breakpad;
pub use self::event::{event, event_structured};
pub use self::intake::{envelope, intake, multipart};
pub use self::minidump::minidump;
pub use self::sourcemap::sourcemap;
pub use self::upload::upload;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The target names, as `cargo fuzz list` prints them and as the folders of `fuzz/seeds/` and
/// `fuzz/regressions/` are named, with their entry points.
pub const TARGETS: [(&str, Target); 9] = [
    ("envelope", envelope),
    ("intake", intake),
    ("multipart", multipart),
    ("event", event),
    ("event_structured", event_structured),
    ("sourcemap", sourcemap),
    ("breakpad", breakpad),
    ("minidump", minidump),
    ("upload", upload),
];

/// The repository's fixtures (`tests/fixtures`): the minidump target walks with their symbols.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// Splits `data` at the first NUL byte: (before, after). Text inputs (maps, `.sym` files,
/// headers) never contain one, so the part after it carries the fuzzer's other choices.
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(0, data) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// Up to `max` little-endian `u32` pairs from `data`.
fn positions(data: &[u8], max: usize) -> Vec<(u32, u32)> {
    data.chunks_exact(8)
        .take(max)
        .map(|c| {
            let line = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let col = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
            (line, col)
        })
        .collect()
}
