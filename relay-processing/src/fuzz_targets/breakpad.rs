//! `breakpad`: the Breakpad/CFI index built from a `.sym` text, its lookups checked against
//! breakpad-symbols' full parse, and cache files read back after corruption.
//!
//! Input: the text, a NUL, then addresses (little-endian `u64`) and bytes that corrupt the
//! built cache file before it is read back.

use minidump_unwind::SymbolFile;
use symbolic::common::ByteView;

use super::split_nul;
use crate::symbolicate::cfi::probe::{lazy_at, outcome, record_addresses};
use crate::symbolicate::cfi::{
    cache_file_parts, has_stack_records, read_cache_file, Cfi, Index, TextAt,
};

/// Addresses looked up per input, from the text's records and from the fuzzer.
const MAX_ADDRESSES: usize = 64;

pub fn breakpad(data: &[u8]) {
    let (text, rest) = split_nul(data);
    let mut addresses: Vec<u64> = rest
        .chunks_exact(8)
        .take(MAX_ADDRESSES / 2)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();

    // Fuzzed bytes as a cache file, with the text as its debug file: refused or bounded.
    read_back(rest.to_vec(), text, &addresses);

    let Some(index) = Index::build(text) else {
        return;
    };
    // The index is built only for text breakpad-symbols accepts, and must agree with it.
    let parsed = SymbolFile::from_bytes(text).expect("indexed text parses");
    assert!(
        index.agrees_with(&parsed),
        "the index disagrees with the parse"
    );
    assert_eq!(index.has_stack(), has_stack_records(text));
    let full = Cfi::Parsed(parsed);
    addresses.extend(record_addresses(text).into_iter().take(MAX_ADDRESSES / 2));
    let lazy = lazy_at(text, &index, TextAt::CacheFile);
    for &addr in &addresses {
        assert_eq!(outcome(&lazy, addr), outcome(&full, addr), "at {addr:#x}");
    }

    let [encoded, footer] = cache_file_parts(text, Some(&index), TextAt::CacheFile);
    let file = [text, &encoded, &footer].concat();
    read_back(corrupt(file, rest), text, &addresses);
}

/// Opens `file` as a CFI cache file and walks `addresses` with it if it is accepted.
fn read_back(file: Vec<u8>, debug_file: &[u8], addresses: &[u64]) {
    let cached = read_cache_file(ByteView::from_vec(file), || {
        Some(ByteView::from_vec(debug_file.to_vec()))
    });
    let Some(Ok(cfi)) = cached.map(|c| c.into_cfi()) else {
        return;
    };
    for &addr in addresses {
        let _ = outcome(&cfi, addr);
    }
}

/// Flips bytes of `file` where `edits` says (position, xor mask), counting from its end, where
/// the index and footer are.
fn corrupt(mut file: Vec<u8>, edits: &[u8]) -> Vec<u8> {
    if file.is_empty() {
        return file;
    }
    for edit in edits.chunks_exact(3) {
        let back = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % file.len();
        let at = file.len() - 1 - back;
        file[at] ^= edit[2].max(1);
    }
    file
}
