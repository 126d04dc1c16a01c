//! The serialized index: written once per map, read in place (memory-mapped) afterwards.
//!
//! All integers are little-endian `u32`s (the header's lengths `u64`s); every section starts
//! 8-aligned relative to the start of the index:
//!
//! ```text
//! header (64 bytes): "RLYSMV02", lines, tokens, buckets, sources, names, scope names, flags,
//!                    strings length (u64), contents length (u64), zero padding
//! tokens        [tokens × 5]          generated column, source, original line, original
//!                                     column, name; sorted by generated position
//! lines         [(lines + 1) × 3]     first token, first bucket, bucket shift of each
//!                                     generated line; then (tokens, buckets, 0)
//! buckets       [buckets]             per line, for each bucket b: the first token whose
//!                                     column >> shift >= b; then the line's end
//! scopes        [tokens]              only with flag 1: scope name index or a sentinel
//! string ends   [sources + names + scope names]   end of each string in the string blob
//! contents      [sources × 2]         start, end of each sourcesContent entry (NONE, NONE)
//! string blob   UTF-8: sources, then names, then scope names
//! content blob  the sourcesContent entries as raw JSON strings (quoted, still escaped)
//! ```
//!
//! The buckets cut a long line (minified bundles are one line of thousands of tokens) into
//! column ranges of about two tokens each, so a lookup reads two bucket entries and searches
//! a handful of tokens instead of bisecting the whole line.
//!
//! [`Layout::read`] checks the header against the data length and the line table (ordered,
//! within the tokens and buckets); [`Strings::read`] checks the string table (UTF-8, on char
//! boundaries). Everything else (bucket entries, indices in tokens, content ranges) is
//! checked where it is used, so a corrupt file yields wrong or missing results, never a panic.

use super::scopes::Scopes;
use super::tokens::{token_col, Decoded, HEADER_LEN, TOKEN_LEN};
use super::{DecodeError, NONE};

pub(crate) const MAGIC: &[u8; 8] = b"RLYSMV02";
const LINE_LEN: usize = 12;
const FLAG_SCOPES: u32 = 1;
/// Tokens per bucket the shift aims at.
const BUCKET_TOKENS: usize = 2;

/// Completes the index of `decoded` (whose token buffer becomes the index), with per-token
/// `scopes` if any.
pub(crate) fn finish(
    decoded: Decoded<'_>,
    scopes: Option<&Scopes>,
) -> Result<Vec<u8>, DecodeError> {
    let Decoded {
        tokens,
        sources,
        names,
        contents,
        ..
    } = decoded;
    let token_count = tokens.len();
    let (lines, buckets) = line_table(&tokens.line_starts, tokens.all());
    let mut out = tokens.buffer;

    let scope_names = scopes.map_or(&[][..], |s| s.names.as_slice());
    let strings = sources
        .iter()
        .map(|s| s.as_ref())
        .chain(names.iter().map(|s| s.as_ref()))
        .chain(scope_names.iter().map(String::as_str));
    let string_count = sources.len() + names.len() + scope_names.len();
    let strings_len: usize = strings.clone().map(str::len).sum();
    let contents_len: usize = contents.iter().flatten().map(|c| c.len()).sum();
    let limit = NONE as usize;
    if strings_len >= limit
        || contents_len >= limit
        || string_count >= limit
        || buckets.len() >= limit
    {
        return Err(DecodeError::TooLarge);
    }
    let counts = Counts {
        lines: tokens.line_starts.len() as u32 - 1,
        tokens: token_count as u32,
        buckets: buckets.len() as u32,
        sources: sources.len() as u32,
        names: names.len() as u32,
        scope_names: scope_names.len() as u32,
        flags: if scopes.is_some() { FLAG_SCOPES } else { 0 },
        strings_len: strings_len as u64,
        contents_len: contents_len as u64,
    };
    let layout = Layout::of(&counts).ok_or(DecodeError::TooLarge)?;
    out.reserve(layout.end.saturating_sub(out.len()));

    put_u32s(&mut out, layout.lines, &lines);
    put_u32s(&mut out, layout.buckets, &buckets);
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
    for content in &contents {
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
    for content in contents.iter().flatten() {
        out.extend_from_slice(content.as_bytes());
    }
    pad_to(&mut out, layout.end);

    let header = &mut out[..HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    let words = [
        counts.lines,
        counts.tokens,
        counts.buckets,
        counts.sources,
        counts.names,
        counts.scope_names,
        counts.flags,
    ];
    for (i, value) in words.into_iter().enumerate() {
        header[8 + i * 4..12 + i * 4].copy_from_slice(&value.to_le_bytes());
    }
    header[40..48].copy_from_slice(&counts.strings_len.to_le_bytes());
    header[48..56].copy_from_slice(&counts.contents_len.to_le_bytes());
    Ok(out)
}

/// The lines table and the buckets of every line.
fn line_table(line_starts: &[u32], tokens: &[[u8; TOKEN_LEN]]) -> (Vec<u32>, Vec<u32>) {
    let mut lines = Vec::with_capacity(line_starts.len() * 3);
    let mut buckets = Vec::with_capacity(tokens.len() / BUCKET_TOKENS + line_starts.len() * 2);
    for bounds in line_starts.windows(2) {
        let (start, end) = (bounds[0] as usize, bounds[1] as usize);
        let line = &tokens[start..end];
        let last = line.last().map_or(0, token_col);
        let target = (line.len() / BUCKET_TOKENS).max(1) as u64;
        let shift = (0..32)
            .find(|&shift| (u64::from(last) >> shift) < target)
            .unwrap_or(32);
        let count = (u64::from(last) >> shift) + 1;
        lines.extend([start as u32, buckets.len() as u32, shift]);
        let mut at = 0;
        for bucket in 0..count {
            while at < line.len() && (u64::from(token_col(&line[at])) >> shift) < bucket {
                at += 1;
            }
            buckets.push((start + at) as u32);
        }
        buckets.push(end as u32);
    }
    let total = line_starts.last().copied().unwrap_or(0);
    lines.extend([total, buckets.len() as u32, 0]);
    (lines, buckets)
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
    pub buckets: u32,
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
    pub tokens: usize,
    pub lines: usize,
    pub buckets: usize,
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
            tokens: section(tokens.checked_mul(TOKEN_LEN)?)?,
            lines: section((counts.lines as usize + 1).checked_mul(LINE_LEN)?)?,
            buckets: section(words(counts.buckets as usize)?)?,
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
            buckets: word(2),
            sources: word(3),
            names: word(4),
            scope_names: word(5),
            flags: word(6),
            strings_len: long(40),
            contents_len: long(48),
        };
        if counts.flags & !FLAG_SCOPES != 0 {
            return Err("unknown flags");
        }
        let layout = Self::of(&counts).ok_or("sizes overflow")?;
        if layout.end > data.len() {
            return Err("truncated");
        }
        // Lookups rely on ordered lines, each with at least one bucket (and its end).
        let lines = &data[layout.lines..layout.lines + (counts.lines as usize + 1) * LINE_LEN];
        let mut previous: Option<(u32, u32)> = None;
        for line in lines.as_chunks::<LINE_LEN>().0 {
            let [start, bucket, shift] = [0, 4, 8]
                .map(|i| u32::from_le_bytes([line[i], line[i + 1], line[i + 2], line[i + 3]]));
            let ordered = match previous {
                None => start == 0 && bucket == 0,
                Some((previous_start, previous_bucket)) => {
                    start >= previous_start && bucket >= previous_bucket.saturating_add(2)
                }
            };
            if !ordered || start > counts.tokens || bucket > counts.buckets || shift > 32 {
                return Err("line table out of order");
            }
            previous = Some((start, bucket));
        }
        if previous != Some((counts.tokens, counts.buckets)) {
            return Err("line table does not cover the tokens");
        }
        Ok(layout)
    }
}

/// The `index`-th u32 of `data`.
#[inline(always)]
pub(crate) fn u32_at(data: &[u8], index: usize) -> Option<u32> {
    let bytes = data.get(index.checked_mul(4)?..)?.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*bytes))
}

/// The string table, copied out of the index once it is checked (it is small: file and
/// identifier names), one boxed `str` per entry, so a lookup hands out a `&str` with one read
/// and no re-validation.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    list: Vec<Box<str>>,
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
        let mut list = Vec::with_capacity(count);
        let mut start = 0;
        for end in ends.as_chunks::<4>().0 {
            let end = u32::from_le_bytes(*end) as usize;
            let string = text.get(start..end).ok_or("string table out of order")?;
            list.push(Box::from(string));
            start = end;
        }
        Ok(Self { list })
    }

    /// String `index`, `None` when out of range.
    #[inline(always)]
    pub fn get(&self, index: u32) -> Option<&str> {
        self.list.get(index as usize).map(|s| &**s)
    }
}
