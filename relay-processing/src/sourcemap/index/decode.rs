//! Source Map v3 JSON to flat token arrays ([`Decoded`](super::tokens::Decoded)).
//!
//! The JSON is parsed with borrowed strings where it has no escapes; `sourcesContent` is not
//! parsed at all here, only delimited (its entries stay raw JSON strings until a frame needs
//! context lines). `mappings` is decoded in one pass into per-line token ranges.

use std::borrow::Cow;

use super::json::{self, RawFunctionMap, RawMap};
use super::tokens::{self, Decoded, FunctionMap, Tokens};
use super::{vlq, DecodeError, NONE};

/// More generated lines than this is refused: each costs 4 bytes of index, and an index map
/// section offset could otherwise ask for billions.
const MAX_LINES: u32 = 1 << 24;

/// Parses a source map (regular, index map with `sections`, or Hermes/Metro).
pub(crate) fn decode(text: &str) -> Result<Decoded<'_>, DecodeError> {
    let raw = json::parse(strip_xssi_prefix(text))?;
    let mut decoded = Decoded::default();
    let mut builder = Builder::new();
    match raw.sections {
        Some(mut sections) => {
            sections.sort_by_key(|s| (s.offset.line, s.offset.column));
            for section in sections {
                // Sections that reference their map by `url` are not supported (nor fetched).
                let Some(map) = section.map else { continue };
                if map.sections.is_some() {
                    return Err(DecodeError::NestedIndexMap);
                }
                let at = (section.offset.line, section.offset.column);
                add_map(&mut decoded, &mut builder, *map, at)
                    .map_err(|e| e.in_section(at.0, at.1))?;
            }
        }
        None => {
            let function_maps = raw.x_facebook_sources.as_ref().map(|sources| {
                sources
                    .iter()
                    .map(|scopes| scopes.as_ref()?.first().and_then(FunctionMap::decode))
                    .collect()
            });
            add_map(&mut decoded, &mut builder, raw, (0, 0))?;
            decoded.function_maps = function_maps;
        }
    }
    decoded.tokens = builder.finish();
    Ok(decoded)
}

/// A first line starting with `)]}` is an anti-XSSI prefix, not JSON.
fn strip_xssi_prefix(text: &str) -> &str {
    if !text.starts_with(")]}") {
        return text;
    }
    match text.find(['\n', '\r']) {
        Some(end) => &text[end + 1..],
        None => "",
    }
}

/// Appends one regular map, its first token line at generated `(line, column)`.
fn add_map<'a>(
    decoded: &mut Decoded<'a>,
    builder: &mut Builder,
    map: RawMap<'a>,
    (line, column): (u32, u32),
) -> Result<(), DecodeError> {
    let source_base = decoded.sources.len();
    let name_base = decoded.names.len();
    let sources = map.sources.unwrap_or_default();
    let root = map
        .source_root
        .map(|root| root.0)
        .filter(|root| !root.is_empty());
    decoded.sources.extend(sources.into_iter().map(|source| {
        let source = source.map_or(Cow::Borrowed(""), |s| s.0);
        match &root {
            Some(root) => with_root(root, source),
            None => source,
        }
    }));
    decoded
        .names
        .extend(map.names.unwrap_or_default().into_iter().map(|n| n.0));
    let mut contents: Vec<Option<&str>> = map
        .sources_content
        .map(|contents| contents.0)
        .unwrap_or_default();
    contents.resize(decoded.sources.len() - source_base, None);
    decoded.contents.extend(contents);

    let mappings = map.mappings.map(|m| m.0).unwrap_or_default();
    let context = MapContext {
        first_line: line,
        first_column: column,
        source_base: source_base as u32,
        sources: (decoded.sources.len() - source_base) as u32,
        name_base: name_base as u32,
        names: (decoded.names.len() - name_base) as u32,
    };
    if decoded.sources.len() >= NONE as usize || decoded.names.len() >= NONE as usize {
        return Err(DecodeError::TooLarge);
    }
    decode_mappings(mappings.as_bytes(), &context, builder)
}

/// `sourceRoot` joined with a source, unless the source is absolute.
fn with_root<'a>(root: &str, source: Cow<'a, str>) -> Cow<'a, str> {
    let absolute = !source.is_empty()
        && (source.starts_with('/') || source.starts_with("http:") || source.starts_with("https:"));
    if absolute {
        return source;
    }
    let root = root.strip_suffix('/').unwrap_or(root);
    Cow::Owned(format!("{root}/{source}"))
}

/// Where the tokens of one (section) map go.
struct MapContext {
    first_line: u32,
    first_column: u32,
    source_base: u32,
    sources: u32,
    name_base: u32,
    names: u32,
}

/// Decodes `mappings` (the bytes of the JSON string) into `builder`.
fn decode_mappings(
    bytes: &[u8],
    context: &MapContext,
    builder: &mut Builder,
) -> Result<(), DecodeError> {
    // Segments are rarely shorter than 6 bytes with their separator; growing past this is a
    // reallocation or two.
    builder.reserve(bytes.len() / 6 + 16);

    let mut line = context.first_line;
    let mut column_base = i64::from(context.first_column);
    // Generated column restarts on every line; the other fields run across the whole string.
    let mut column = 0i64;
    let (mut source, mut source_line, mut source_column, mut name) = (0i64, 0i64, 0i64, 0i64);
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        if byte == b';' {
            line = line.checked_add(1).ok_or(DecodeError::TooLarge)?;
            column = 0;
            column_base = 0;
            at += 1;
            continue;
        }
        if byte == b',' {
            at += 1;
            continue;
        }
        // A segment is 1, 4 or 5 numbers; straight-line code for each.
        let segment = at;
        column += vlq::decode(bytes, &mut at)?;
        let generated = in_range(column + column_base, NONE, "generated column", segment)?;
        let record = if at_separator(bytes, at) {
            [NONE; 4]
        } else {
            source += vlq::decode(bytes, &mut at)?;
            if at_separator(bytes, at) {
                return Err(bad_segment(segment, 2));
            }
            source_line += vlq::decode(bytes, &mut at)?;
            if at_separator(bytes, at) {
                return Err(bad_segment(segment, 3));
            }
            source_column += vlq::decode(bytes, &mut at)?;
            let source = in_range(source, context.sources, "source index", segment)?;
            let original_line = in_range(source_line, NONE, "original line", segment)?;
            let original_column = in_range(source_column, NONE, "original column", segment)?;
            let name = if at_separator(bytes, at) {
                NONE
            } else {
                name += vlq::decode(bytes, &mut at)?;
                if !at_separator(bytes, at) {
                    return Err(bad_segment(segment, 6));
                }
                context.name_base + in_range(name, context.names, "name index", segment)?
            };
            [
                context.source_base + source,
                original_line,
                original_column,
                name,
            ]
        };
        builder.push(line, generated, record)?;
    }
    Ok(())
}

/// Whether a segment ends at `at`.
#[inline(always)]
fn at_separator(bytes: &[u8], at: usize) -> bool {
    matches!(bytes.get(at), None | Some(b',' | b';'))
}

#[cold]
fn bad_segment(at: usize, fields: usize) -> DecodeError {
    DecodeError::BadSegment { at, fields }
}

/// `value` as a u32 below `limit`.
#[inline(always)]
fn in_range(value: i64, limit: u32, what: &'static str, at: usize) -> Result<u32, DecodeError> {
    match u32::try_from(value) {
        Ok(v) if v < limit => Ok(v),
        _ => Err(out_of_range(what, value, at)),
    }
}

#[cold]
fn out_of_range(what: &'static str, value: i64, at: usize) -> DecodeError {
    DecodeError::OutOfRange { what, value, at }
}

/// Collects tokens line by line: sorts a line whose columns go backwards and keeps the first
/// token of each generated position.
struct Builder {
    tokens: Tokens,
    /// The line tokens are being added to (`line_starts` has an entry for it).
    line: u32,
    /// Index of its first token.
    line_start: usize,
    /// Tokens so far.
    count: usize,
    /// Column of the last token, if the line has one.
    last_col: Option<u32>,
    line_sorted: bool,
}

impl Builder {
    fn new() -> Self {
        Self {
            tokens: Tokens::default(),
            line: 0,
            line_start: 0,
            count: 0,
            last_col: None,
            line_sorted: true,
        }
    }

    fn reserve(&mut self, tokens: usize) {
        self.tokens.buffer.reserve(tokens * tokens::TOKEN_LEN);
    }

    #[inline(always)]
    fn push(&mut self, line: u32, col: u32, record: [u32; 4]) -> Result<(), DecodeError> {
        if line != self.line {
            self.next_line(line)?;
        }
        if let Some(last) = self.last_col {
            if col <= last {
                if col == last && self.line_sorted {
                    return Ok(());
                }
                self.line_sorted = false;
            }
        }
        self.tokens
            .buffer
            .extend_from_slice(&tokens::token_bytes(col, record));
        self.count += 1;
        self.last_col = Some(col);
        Ok(())
    }

    #[cold]
    fn next_line(&mut self, line: u32) -> Result<(), DecodeError> {
        if line < self.line {
            // Only index map sections can go back: they overlap.
            return Err(DecodeError::OverlappingSections);
        }
        if line >= MAX_LINES || self.count >= NONE as usize {
            return Err(DecodeError::TooLarge);
        }
        self.sort_line();
        self.tokens
            .line_starts
            .resize(line as usize + 1, self.count as u32);
        self.line = line;
        self.line_start = self.count;
        self.last_col = None;
        Ok(())
    }

    /// Sorts the current line by column (stable) and drops repeated positions.
    fn sort_line(&mut self) {
        if self.line_sorted {
            return;
        }
        self.line_sorted = true;
        let start = tokens::HEADER_LEN + self.line_start * tokens::TOKEN_LEN;
        let line = self.tokens.buffer[start..]
            .as_chunks_mut::<{ tokens::TOKEN_LEN }>()
            .0;
        line.sort_by_key(tokens::token_col);
        let mut kept = 0;
        for i in 1..line.len() {
            if tokens::token_col(&line[i]) != tokens::token_col(&line[kept]) {
                kept += 1;
                line[kept] = line[i];
            }
        }
        let kept = kept + 1;
        self.last_col = Some(tokens::token_col(&line[kept - 1]));
        self.count = self.line_start + kept;
        self.tokens
            .buffer
            .truncate(tokens::HEADER_LEN + self.count * tokens::TOKEN_LEN);
    }

    fn finish(mut self) -> Tokens {
        self.sort_line();
        self.tokens.line_starts.push(self.count as u32);
        self.tokens
    }
}

impl<'a> FunctionMap<'a> {
    /// Decodes one `x_facebook_sources` entry: segments of (column, name index, line) deltas,
    /// the column restarting on each `;` group, lines 1-based. `None` if it does not decode.
    fn decode(raw: &RawFunctionMap<'a>) -> Option<Self> {
        let bytes = raw.mappings.0.as_bytes();
        let mut starts = Vec::new();
        let (mut line, mut name) = (1i64, 0i64);
        let mut column = 0i64;
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                b';' => {
                    column = 0;
                    at += 1;
                    continue;
                }
                b',' => {
                    at += 1;
                    continue;
                }
                _ => {}
            }
            let mut fields = [0i64; 3];
            let mut count = 0;
            while at < bytes.len() && bytes[at] != b',' && bytes[at] != b';' {
                let value = vlq::decode(bytes, &mut at).ok()?;
                if let Some(field) = fields.get_mut(count) {
                    *field = value;
                }
                count += 1;
            }
            column += fields[0];
            name += fields[1];
            line += fields[2];
            starts.push((
                u32::try_from(line).ok()?,
                u32::try_from(column).ok()?,
                u32::try_from(name).ok()?,
            ));
        }
        starts.sort_by_key(|&(line, column, _)| (line, column));
        Some(Self {
            names: raw.names.iter().map(|n| n.0.clone()).collect(),
            starts,
        })
    }

    /// The function enclosing 0-based original `(line, column)`: the last start at or before it.
    pub fn lookup(&self, line: u32, column: u32) -> Option<&str> {
        let key = (line.checked_add(1)?, column);
        let after = self
            .starts
            .partition_point(|&(line, column, _)| (line, column) <= key);
        let (_, _, name) = self.starts.get(after.checked_sub(1)?)?;
        self.names.get(*name as usize).map(|n| n.as_ref())
    }
}
