//! The decoded map: tokens already in the index's token layout, and the strings they point at.
//!
//! The bottom of the index modules: `decode` fills a [`Decoded`], `scopes` reads it, and
//! `format` turns it into the serialized index (the token buffer becomes the index, so the
//! token layout and the header's length are fixed here).

use std::borrow::Cow;

/// Bytes of the index header, left free at the start of the token buffer.
pub(crate) const HEADER_LEN: usize = 64;
/// Bytes of one token: generated column, source, original line, original column, name.
pub(crate) const TOKEN_LEN: usize = 20;

/// A token's bytes: generated column, then the record.
#[inline(always)]
pub(crate) fn token_bytes(col: u32, record: [u32; 4]) -> [u8; TOKEN_LEN] {
    let mut bytes = [0; TOKEN_LEN];
    bytes[..4].copy_from_slice(&col.to_le_bytes());
    for (i, value) in record.into_iter().enumerate() {
        bytes[4 + i * 4..8 + i * 4].copy_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// A token's generated column.
#[inline(always)]
pub(crate) fn token_col(token: &[u8; TOKEN_LEN]) -> u32 {
    u32::from_le_bytes([token[0], token[1], token[2], token[3]])
}

/// A token's source, original line, original column and name.
#[inline(always)]
pub(crate) fn token_record(token: &[u8; TOKEN_LEN]) -> [u32; 4] {
    let field = |i: usize| u32::from_le_bytes([token[i], token[i + 1], token[i + 2], token[i + 3]]);
    [field(4), field(8), field(12), field(16)]
}

/// The mappings of a map, sorted by generated position, one token per position, already in
/// the index's token layout ([`TOKEN_LEN`] bytes each, after room for the header).
#[derive(Debug)]
pub(crate) struct Tokens {
    /// Per generated line, the index of its first token; one more entry at the end.
    pub line_starts: Vec<u32>,
    /// [`HEADER_LEN`] bytes for the header, then the tokens.
    pub buffer: Vec<u8>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            line_starts: vec![0],
            buffer: vec![0; HEADER_LEN],
        }
    }
}

impl Tokens {
    /// All tokens.
    pub fn all(&self) -> &[[u8; TOKEN_LEN]] {
        self.buffer[HEADER_LEN..].as_chunks().0
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        (self.buffer.len() - HEADER_LEN) / TOKEN_LEN
    }

    /// Generated column of token `index`.
    pub fn col(&self, index: usize) -> u32 {
        token_col(&self.all()[index])
    }

    /// Source, original line, original column and name of token `index`.
    pub fn record(&self, index: usize) -> [u32; 4] {
        token_record(&self.all()[index])
    }

    /// The last token at or before `(line, col)`, possibly on an earlier line.
    pub fn floor(&self, line: u32, col: u32) -> Option<usize> {
        let line = line as usize;
        let Some(&end) = self.line_starts.get(line + 1) else {
            return self.len().checked_sub(1);
        };
        let start = self.line_starts[line] as usize;
        let within = self.all()[start..end as usize].partition_point(|t| token_col(t) <= col);
        (start + within).checked_sub(1)
    }

    /// The generated line of token `index`.
    pub fn line_of(&self, index: usize) -> u32 {
        (self
            .line_starts
            .partition_point(|&start| start as usize <= index)
            - 1) as u32
    }
}

/// A decoded map: tokens, the strings they point at, and what else the cache keeps.
#[derive(Debug, Default)]
pub(crate) struct Decoded<'a> {
    pub tokens: Tokens,
    /// `sources`, with `sourceRoot` applied; `null` entries are empty.
    pub sources: Vec<Cow<'a, str>>,
    pub names: Vec<Cow<'a, str>>,
    /// Per source, its `sourcesContent` entry as raw JSON (a quoted string, still escaped).
    pub contents: Vec<Option<&'a str>>,
    /// Per source, Metro's function map (`x_facebook_sources`), for Hermes/Metro maps.
    pub function_maps: Option<Vec<Option<FunctionMap<'a>>>>,
}

/// Metro's function map of one source: where each function starts in the original source.
#[derive(Debug, Default)]
pub(crate) struct FunctionMap<'a> {
    pub names: Vec<Cow<'a, str>>,
    /// `(1-based line, 0-based column, index into names)`, sorted.
    pub starts: Vec<(u32, u32, u32)>,
}
