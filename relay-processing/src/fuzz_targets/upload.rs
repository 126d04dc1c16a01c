//! `upload`: what the upload API parses from sentry-cli before anything is stored: the chunk
//! form and the two assemble requests.
//!
//! Input: a multipart boundary, a NUL, then the body. The whole input is also given to both
//! assemble parsers (as JSON they mostly refuse it; the seeds are real requests).

use bytes::Bytes;

use super::split_nul;
use crate::uploads::{
    is_checksum, parse_bundle_assemble, parse_chunk_form, parse_dif_assemble, sha1_hex, CHUNK_SIZE,
    MAX_CHUNKS_PER_REQUEST,
};

/// Decoded bytes one input may hold, as a small in-flight budget would allow.
const BUDGET: usize = 2 * CHUNK_SIZE;
/// Chunks a file may have in the assemble parsers.
const MAX_CHUNKS: usize = 16;

pub fn upload(data: &[u8]) {
    let (boundary, body) = split_nul(data);
    if let Ok(boundary) = std::str::from_utf8(boundary) {
        chunk_form(boundary, body);
    }
    assemble(data);
}

/// Every chunk returned is within the bounds and has the SHA-1 it is named by; the decoded
/// bytes never pass the budget.
fn chunk_form(boundary: &str, body: &[u8]) {
    let mut reserved = 0usize;
    let mut reserve = |bytes: usize| {
        reserved += bytes;
        reserved <= BUDGET
    };
    let Ok(chunks) = parse_chunk_form(
        Bytes::copy_from_slice(body),
        boundary.to_owned(),
        &mut reserve,
    ) else {
        return;
    };
    assert!(!chunks.is_empty() && chunks.len() <= MAX_CHUNKS_PER_REQUEST);
    let mut total = 0;
    for chunk in &chunks {
        assert!(chunk.data.len() <= CHUNK_SIZE);
        assert_eq!(sha1_hex(&chunk.data), chunk.checksum);
        total += chunk.data.len();
    }
    assert!(total <= BUDGET);
}

/// What parses names files and chunks by well-formed SHA-1s, within the chunk bound.
fn assemble(data: &[u8]) {
    let lower_checksum = |text: &str| is_checksum(text) && text == text.to_ascii_lowercase();
    if let Ok(files) = parse_dif_assemble(data, MAX_CHUNKS) {
        for file in files {
            assert!(lower_checksum(&file.checksum));
            assert!(!file.chunks.is_empty() && file.chunks.len() <= MAX_CHUNKS);
            assert!(file.chunks.iter().all(|c| lower_checksum(c)));
            assert!(!file.name.is_empty() && !file.name.contains(['/', '\\']));
            assert!(file.name != "." && file.name != "..");
        }
    }
    if let Ok(bundle) = parse_bundle_assemble(data, MAX_CHUNKS) {
        assert!(lower_checksum(&bundle.checksum));
        assert!(!bundle.chunks.is_empty() && bundle.chunks.len() <= MAX_CHUNKS);
        assert!(bundle.chunks.iter().all(|c| lower_checksum(c)));
    }
}
