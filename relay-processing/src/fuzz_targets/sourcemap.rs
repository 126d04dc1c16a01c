//! `sourcemap`: the source map index built from a map (and minified source), lookups at
//! fuzzed positions, and cache files read back after corruption.
//!
//! Input: the map's text, a NUL, the minified source, a NUL, then positions (pairs of
//! little-endian `u32`) and bytes that corrupt the built index before it is read back.

use symbolic::common::ByteView;

use super::{positions, split_nul};
use crate::sourcemap::view::build_cache_bytes;
use crate::sourcemap::SourceMapView;

/// Lookups per input: enough to walk several lines, few enough to stay fast.
const MAX_LOOKUPS: usize = 32;

pub fn sourcemap(data: &[u8]) {
    let (map, rest) = split_nul(data);
    let (minified, rest) = split_nul(rest);
    let Ok(map) = std::str::from_utf8(map) else {
        return;
    };
    let minified = std::str::from_utf8(minified).ok().filter(|m| !m.is_empty());
    let at = positions(rest, MAX_LOOKUPS);

    // A cache file as read back: whatever its bytes, it is refused or answers bounded lookups.
    read_back(rest.to_vec(), &at);

    let Ok(bytes) = build_cache_bytes(minified, map) else {
        return;
    };
    let view = SourceMapView::from_bytes(ByteView::from_vec(bytes.clone()), 0)
        .expect("a freshly built index reads back");
    for &(line, col) in &at {
        let _ = view.lookup(line, col);
        let _ = view.lookup_raw(line, col);
    }
    read_back(corrupt(bytes, rest), &at);
}

/// Opens `bytes` as a cache file and looks up `at` if it is accepted.
fn read_back(bytes: Vec<u8>, at: &[(u32, u32)]) {
    if let Ok(view) = SourceMapView::from_bytes(ByteView::from_vec(bytes), 0) {
        for &(line, col) in at {
            let _ = view.lookup(line, col);
        }
    }
}

/// Flips bytes of `index` where `edits` says (pairs of position, xor mask), or cuts it short.
fn corrupt(mut index: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    if index.is_empty() {
        return index;
    }
    for edit in edits.chunks_exact(3) {
        let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % index.len();
        index[at] ^= edit[2].max(1);
    }
    if let Some(&cut) = edits.last() {
        if cut & 1 == 1 {
            let len = index.len() * usize::from(cut) / 256;
            index.truncate(len);
        }
    }
    index
}
