//! The serialized index: written once per map, read in place (memory-mapped) afterwards.
//!
//! All integers are little-endian `u32`s (the header's lengths `u64`s); every section starts
//! 8-aligned relative to the start of the index:
//!
//! ```text
//! header (64 bytes): "RLYSMV02", lines, tokens, sources, names, scope names, flags,
//!                    strings length (u64), contents length (u64), zero padding
//! line starts   [lines + 1]           first token of each generated line, then the count
//! columns       [tokens]              generated column of each token, sorted within a line
//! records       [tokens × 4]          source, original line, original column, name
//! scopes        [tokens]              only with flag 1: scope name index or a sentinel
//! string ends   [sources + names + scope names]   end of each string in the string blob
//! contents      [sources × 2]         start, end of each sourcesContent entry (NONE, NONE)
//! string blob   UTF-8: sources, then names, then scope names
//! content blob  the sourcesContent entries as raw JSON strings (quoted, still escaped)
//! ```
//!
//! [`Layout::read`] checks the header against the data length; line starts are checked to be
//! ordered and within the tokens, the string table to be UTF-8 on char boundaries
//! ([`Strings::read`]). Everything else (indices in records, content ranges) is checked where
//! it is used, so a corrupt file yields wrong or missing results, never a panic.

use super::decode::Decoded;
use super::scopes::Scopes;
use super::{DecodeError, NONE};

pub(crate) const MAGIC: &[u8; 8] = b"RLYSMV02";
const HEADER_LEN: usize = 64;
const FLAG_SCOPES: u32 = 1;

/// Writes the index of `decoded` (with per-token `scopes` if any).
pub(crate) fn write(
    decoded: &Decoded<'_>,
    scopes: Option<&Scopes>,
) -> Result<Vec<u8>, DecodeError> {
    let tokens = &decoded.tokens;
    let scope_names = scopes.map_or(&[][..], |s| s.names.as_slice());
    let strings = decoded
        .sources
        .iter()
        .map(|s| s.as_ref())
        .chain(decoded.names.iter().map(|s| s.as_ref()))
        .chain(scope_names.iter().map(String::as_str));
    let string_count = decoded.sources.len() + decoded.names.len() + scope_names.len();
    let strings_len: usize = strings.clone().map(str::len).sum();
    let contents_len: usize = decoded.contents.iter().flatten().map(|c| c.len()).sum();
    if strings_len >= NONE as usize
        || contents_len >= NONE as usize
        || string_count >= NONE as usize
    {
        return Err(DecodeError::TooLarge);
    }
    let counts = Counts {
        lines: tokens.line_starts.len() as u32 - 1,
        tokens: tokens.cols.len() as u32,
        sources: decoded.sources.len() as u32,
        names: decoded.names.len() as u32,
        scope_names: scope_names.len() as u32,
        flags: if scopes.is_some() { FLAG_SCOPES } else { 0 },
        strings_len: strings_len as u64,
        contents_len: contents_len as u64,
    };
    let layout = Layout::of(&counts).ok_or(DecodeError::TooLarge)?;

    let mut out = Vec::with_capacity(layout.end);
    out.extend_from_slice(MAGIC);
    for value in [
        counts.lines,
        counts.tokens,
        counts.sources,
        counts.names,
        counts.scope_names,
        counts.flags,
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&counts.strings_len.to_le_bytes());
    out.extend_from_slice(&counts.contents_len.to_le_bytes());
    out.resize(HEADER_LEN, 0);

    put_u32s(&mut out, layout.line_starts, &tokens.line_starts);
    put_u32s(&mut out, layout.cols, &tokens.cols);
    pad_to(&mut out, layout.records);
    for record in &tokens.records {
        for value in record {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    if let Some(scopes) = scopes {
        put_u32s(&mut out, layout.scopes, &scopes.per_token);
    }
    pad_to(&mut out, layout.string_ends);
    let mut end = 0u32;
    for string in strings.clone() {
        end += string.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    pad_to(&mut out, layout.contents);
    let mut end = 0u32;
    for content in &decoded.contents {
        let range = match content {
            Some(content) => {
                let start = end;
                end += content.len() as u32;
                [start, end]
            }
            None => [NONE, NONE],
        };
        for value in range {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    pad_to(&mut out, layout.strings);
    for string in strings {
        out.extend_from_slice(string.as_bytes());
    }
    pad_to(&mut out, layout.content_blob);
    for content in decoded.contents.iter().flatten() {
        out.extend_from_slice(content.as_bytes());
    }
    pad_to(&mut out, layout.end);
    Ok(out)
}

fn pad_to(out: &mut Vec<u8>, at: usize) {
    debug_assert!(out.len() <= at);
    out.resize(at, 0);
}

fn put_u32s(out: &mut Vec<u8>, at: usize, values: &[u32]) {
    pad_to(out, at);
    out.reserve(values.len() * 4);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// The header's counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counts {
    pub lines: u32,
    pub tokens: u32,
    pub sources: u32,
    pub names: u32,
    pub scope_names: u32,
    pub flags: u32,
    pub strings_len: u64,
    pub contents_len: u64,
}

impl Counts {
    pub fn has_scopes(&self) -> bool {
        self.flags & FLAG_SCOPES != 0
    }

    fn strings(&self) -> usize {
        self.sources as usize + self.names as usize + self.scope_names as usize
    }
}

/// Where each section starts, in bytes from the start of the index.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub counts: Counts,
    pub line_starts: usize,
    pub cols: usize,
    pub records: usize,
    pub scopes: usize,
    pub string_ends: usize,
    pub contents: usize,
    pub strings: usize,
    pub content_blob: usize,
    pub end: usize,
}

impl Layout {
    /// The layout for `counts`; `None` on overflow.
    fn of(counts: &Counts) -> Option<Self> {
        let mut at = HEADER_LEN;
        let mut section = |bytes: usize| -> Option<usize> {
            let start = at;
            at = start.checked_add(bytes)?.checked_next_multiple_of(8)?;
            Some(start)
        };
        let words = |n: usize| n.checked_mul(4);
        let tokens = counts.tokens as usize;
        Some(Self {
            line_starts: section(words(counts.lines as usize + 1)?)?,
            cols: section(words(tokens)?)?,
            records: section(words(tokens.checked_mul(4)?)?)?,
            scopes: section(if counts.has_scopes() {
                words(tokens)?
            } else {
                0
            })?,
            string_ends: section(words(counts.strings())?)?,
            contents: section(words(counts.sources as usize * 2)?)?,
            strings: section(usize::try_from(counts.strings_len).ok()?)?,
            content_blob: section(usize::try_from(counts.contents_len).ok()?)?,
            end: at,
            counts: *counts,
        })
    }

    /// Reads and checks the header of the index at the start of `data`.
    pub fn read(data: &[u8]) -> Result<Self, &'static str> {
        let header = data.get(..HEADER_LEN).ok_or("truncated header")?;
        if &header[..8] != MAGIC {
            return Err("not a relay source map index (or another version)");
        }
        let word = |i: usize| u32_at(header, 2 + i).expect("in the header");
        let long = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let counts = Counts {
            lines: word(0),
            tokens: word(1),
            sources: word(2),
            names: word(3),
            scope_names: word(4),
            flags: word(5),
            strings_len: long(32),
            contents_len: long(40),
        };
        if counts.flags & !FLAG_SCOPES != 0 {
            return Err("unknown flags");
        }
        let layout = Self::of(&counts).ok_or("sizes overflow")?;
        if layout.end > data.len() {
            return Err("truncated");
        }
        // Lookups rely on ordered line starts within the tokens.
        let starts = data
            .get(layout.line_starts..layout.line_starts + (counts.lines as usize + 1) * 4)
            .ok_or("truncated")?;
        let (starts, _) = starts.as_chunks::<4>();
        let mut previous = 0;
        for start in starts {
            let start = u32::from_le_bytes(*start);
            if start < previous || start > counts.tokens {
                return Err("line starts out of order");
            }
            previous = start;
        }
        if starts.first().map(|s| u32::from_le_bytes(*s)) != Some(0) || previous != counts.tokens {
            return Err("line starts do not cover the tokens");
        }
        Ok(layout)
    }
}

/// The `index`-th u32 of `data`.
#[inline]
pub(crate) fn u32_at(data: &[u8], index: usize) -> Option<u32> {
    let bytes = data.get(index.checked_mul(4)?..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*bytes))
}

/// The string table, copied out of the index once it is checked (it is small: file and
/// identifier names), so lookups hand out `&str` without re-validating UTF-8.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    text: String,
    ends: Vec<u32>,
}

impl Strings {
    pub fn read(data: &[u8], layout: &Layout) -> Result<Self, &'static str> {
        let count = layout.counts.strings();
        let blob = data
            .get(layout.strings..layout.strings + layout.counts.strings_len as usize)
            .ok_or("truncated strings")?;
        let text = std::str::from_utf8(blob).map_err(|_| "strings are not UTF-8")?;
        let ends = data
            .get(layout.string_ends..layout.string_ends + count * 4)
            .ok_or("truncated string table")?;
        let ends: Vec<u32> = ends
            .as_chunks::<4>()
            .0
            .iter()
            .map(|e| u32::from_le_bytes(*e))
            .collect();
        let mut start = 0;
        for &end in &ends {
            if end < start || !text.is_char_boundary(end as usize) {
                return Err("string table out of order");
            }
            start = end;
        }
        Ok(Self {
            text: text.to_owned(),
            ends,
        })
    }

    /// String `index`, `None` when out of range.
    #[inline]
    pub fn get(&self, index: u32) -> Option<&str> {
        let index = index as usize;
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize,
        };
        self.text.get(start..end)
    }
}
