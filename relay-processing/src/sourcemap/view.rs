//! A built source map index and 1-based lookups in it.

use std::sync::OnceLock;

use symbolic::common::ByteView;

use super::index::format::{self, Layout, Strings};
use super::index::tokens::{self, TOKEN_LEN};
use super::index::{self, NONE, SCOPE_ANONYMOUS, SCOPE_UNKNOWN};
use super::SourceMapError;

/// How many lines of original source [`Location`] carries on each side of the line.
pub const CONTEXT_LINES: usize = 5;

/// A ready-to-query source map: relay's index (see [`super::index`]) over owned or
/// memory-mapped bytes.
///
/// Built from a source map (regular, index map with `sections`, or Hermes/Metro) and,
/// optionally, the minified source it belongs to. With the minified source, lookups also
/// return the name of the enclosing function scope ([`Location::scope`]).
///
/// Lookups read the index in place: the line's token range, a binary search over its
/// columns, the token's record. Only the string table (file and identifier names) is copied
/// out when the view is opened. `sourcesContent` stays raw JSON in the index; a file's content
/// is unescaped, and its line offsets computed, when a lookup first needs its context lines.
pub struct SourceMapView {
    bytes: ByteView<'static>,
    /// Where the index starts in `bytes`.
    base: usize,
    layout: Layout,
    strings: Strings,
    /// Per source: its content and line starts, on first use.
    contents: Vec<OnceLock<Option<Content>>>,
}

/// One `sourcesContent` entry, unescaped.
struct Content {
    text: String,
    /// Byte offsets where the lines start; no entry for the empty rest after a trailing
    /// newline.
    line_starts: Vec<u32>,
}

impl std::fmt::Debug for SourceMapView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = &self.layout.counts;
        f.debug_struct("SourceMapView")
            .field("lines", &counts.lines)
            .field("tokens", &counts.tokens)
            .field("sources", &counts.sources)
            .field("names", &counts.names)
            .field("scopes", &counts.has_scopes())
            .finish()
    }
}

/// A lookup result straight from the index: 0-based line and column, borrowed strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawLocation<'a> {
    /// The map's `sources` entry (with `sourceRoot` applied; `""` for a `null` entry).
    pub source: Option<&'a str>,
    /// Index of the source in the map's `sources` (index maps: all sections' in order).
    pub source_index: u32,
    /// 0-based original line.
    pub line: u32,
    /// 0-based original column.
    pub col: u32,
    /// The `names` entry of the token.
    pub name: Option<&'a str>,
    /// The enclosing function scope.
    pub scope: RawScope<'a>,
}

/// [`Scope`], borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawScope<'a> {
    /// A named function, with its original name.
    Named(&'a str),
    /// An anonymous function.
    Anonymous,
    /// No scope information.
    Unknown,
}

impl RawScope<'_> {
    /// The owned [`Scope`].
    pub fn to_scope(self) -> Scope {
        match self {
            Self::Named(name) => Scope::Named(name.to_owned()),
            Self::Anonymous => Scope::Anonymous,
            Self::Unknown => Scope::Unknown,
        }
    }
}

/// The scope (enclosing function) a position belongs to, from the minified source's syntax
/// tree (or from Hermes' `x_facebook_sources` function map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A named function, with its original name (e.g. `onFailure`, `Foo.prototype.bar`).
    Named(String),
    /// An anonymous function for which no name could be inferred.
    Anonymous,
    /// No scope information: top level, or built without the minified source.
    Unknown,
}

/// An original position, 1-based line and column, as the SDK protocol uses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The original source as named in the map's `sources` (not joined with any base URL).
    pub source: Option<String>,
    /// 1-based original line.
    pub line: u32,
    /// 1-based original column (UTF-16 code units).
    pub col: u32,
    /// The `names` entry of the token at the position (often the callee at a call site).
    pub name: Option<String>,
    /// The enclosing function scope.
    pub scope: Scope,
    /// Lines around the original line, when the map has `sourcesContent`.
    pub context: Option<Context>,
}

/// Original source lines around a location, without line terminators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// Up to [`CONTEXT_LINES`] lines before the line.
    pub pre: Vec<String>,
    /// The line itself.
    pub line: String,
    /// Up to [`CONTEXT_LINES`] lines after the line.
    pub post: Vec<String>,
}

impl Location {
    /// The function name to show for a frame at this location: the scope name, `<anonymous>`
    /// for an unnamed function, or `None` when the scope is unknown.
    pub fn function(&self) -> Option<&str> {
        match &self.scope {
            Scope::Named(name) => Some(name),
            Scope::Anonymous => Some("<anonymous>"),
            Scope::Unknown => None,
        }
    }
}

impl SourceMapView {
    /// Parses `sourcemap` (with the `minified` source when known) and builds the index
    /// in memory.
    pub fn build(minified: Option<&str>, sourcemap: &str) -> Result<Self, SourceMapError> {
        let bytes = build_cache_bytes(minified, sourcemap)?;
        Self::from_bytes(ByteView::from_vec(bytes), 0)
    }

    /// Wraps a serialized index starting at `offset` in `bytes` and checks it: anything that
    /// does not read as an index of this version is [`SourceMapError::InvalidCache`].
    pub(crate) fn from_bytes(
        bytes: ByteView<'static>,
        offset: usize,
    ) -> Result<Self, SourceMapError> {
        let invalid = |what: &str| SourceMapError::InvalidCache(what.to_owned());
        let data = bytes
            .as_slice()
            .get(offset..)
            .ok_or_else(|| invalid("truncated"))?;
        let layout = Layout::read(data).map_err(invalid)?;
        let strings = Strings::read(data, &layout).map_err(invalid)?;
        let contents = (0..layout.counts.sources)
            .map(|_| OnceLock::new())
            .collect();
        Ok(Self {
            base: offset,
            layout,
            strings,
            contents,
            bytes,
        })
    }

    /// Size of the serialized index in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len() - self.base
    }

    /// The serialized index.
    fn data(&self) -> &[u8] {
        &self.bytes.as_slice()[self.base..]
    }

    /// Resolves a minified position, 0-based `line` and 0-based `col` (UTF-16 units), to the
    /// token at or before it on that line. `None` before the line's first token, on lines
    /// without tokens, and on tokens that map to no source (1-field segments).
    ///
    /// This is the raw lookup, for tools and benchmarks; frames go through [`Self::lookup`].
    /// Always inlined: in a caller's loop the view's layout is then read once, not per call.
    /// With the release profile's fat LTO, a plain `#[inline]` was no longer taken in the
    /// criterion benchmark's loop, which then ran 55-65 % slower (`docs/benchmarks.md`).
    #[inline(always)]
    pub fn lookup_raw(&self, line: u32, col: u32) -> Option<RawLocation<'_>> {
        let data = self.data();
        let layout = &self.layout;
        let counts = &layout.counts;
        let line = line as usize;
        if line >= counts.lines as usize {
            return None;
        }
        // This line's and the next line's entries: token range, bucket range, shift.
        let entries = data.get(layout.lines + line * 12..)?.first_chunk::<24>()?;
        let word = |i: usize| {
            u32::from_le_bytes([entries[i], entries[i + 1], entries[i + 2], entries[i + 3]])
        };
        let (start, end) = (word(0) as usize, word(12) as usize);
        let (first_bucket, buckets_end) = (word(4) as usize, word(16) as usize);
        let last = buckets_end.checked_sub(first_bucket + 2)?;
        let bucket = ((u64::from(col) >> word(8)) as usize).min(last);
        let buckets = data.get(layout.buckets + (first_bucket + bucket) * 4..)?;
        let low = (format::u32_at(buckets, 0)? as usize).max(start).min(end);
        let high = (format::u32_at(buckets, 1)? as usize).max(low).min(end);

        let tokens = data.get(layout.tokens..)?.as_chunks::<{ TOKEN_LEN }>().0;
        let candidates = tokens.get(low..high)?;
        // Sorted: the tokens at or before `col` are a prefix. A bucket holds a few tokens;
        // counting them without branches beats bisecting.
        let before = if candidates.len() <= 8 {
            candidates
                .iter()
                .map(|t| usize::from(tokens::token_col(t) <= col))
                .sum()
        } else {
            candidates.partition_point(|t| tokens::token_col(t) <= col)
        };
        let index = (low + before).checked_sub(1).filter(|&i| i >= start)?;

        let [source, line, col, name] = tokens::token_record(tokens.get(index)?);
        if source == NONE {
            return None;
        }
        let name = match name {
            NONE => None,
            name if name < counts.names => self.strings.get(counts.sources + name),
            _ => None,
        };
        let scope = match counts.has_scopes() {
            true => match format::u32_at(data.get(layout.scopes..)?, index)? {
                SCOPE_UNKNOWN => RawScope::Unknown,
                SCOPE_ANONYMOUS => RawScope::Anonymous,
                scope if scope < counts.scope_names => self
                    .strings
                    .get(counts.sources + counts.names + scope)
                    .map_or(RawScope::Unknown, RawScope::Named),
                _ => RawScope::Unknown,
            },
            false => RawScope::Unknown,
        };
        Some(RawLocation {
            source: (source < counts.sources)
                .then(|| self.strings.get(source))
                .flatten(),
            source_index: source,
            line,
            col,
            name,
            scope,
        })
    }

    /// Resolves a minified position, 1-based `line` and 1-based `col` (UTF-16 units), to its
    /// original location (1-based too), with context lines when `sourcesContent` is present.
    ///
    /// Returns `None` when the position is not covered by the map (line 0 or col 0 included).
    pub fn lookup(&self, line: u32, col: u32) -> Option<Location> {
        let raw = self.lookup_raw(line.checked_sub(1)?, col.checked_sub(1)?)?;
        Some(Location {
            source: raw.source.map(str::to_owned),
            line: raw.line.saturating_add(1),
            col: raw.col.saturating_add(1),
            name: raw.name.map(str::to_owned),
            scope: raw.scope.to_scope(),
            context: self.context(raw.source_index, raw.line as usize),
        })
    }

    /// Context lines around 0-based `line` of source `index`, from its `sourcesContent`.
    fn context(&self, index: u32, line: usize) -> Option<Context> {
        let content = self
            .contents
            .get(index as usize)?
            .get_or_init(|| self.read_content(index))
            .as_ref()?;
        let text = content.text.as_str();
        let starts = &content.line_starts;
        let line_at = |i: usize| -> Option<String> {
            let start = *starts.get(i)? as usize;
            let end = starts.get(i + 1).map_or(text.len(), |&e| e as usize);
            Some(trim_eol(text.get(start..end)?))
        };
        Some(Context {
            pre: (line.saturating_sub(CONTEXT_LINES)..line)
                .filter_map(line_at)
                .collect(),
            line: line_at(line)?,
            post: (line + 1..=line + CONTEXT_LINES)
                .map_while(line_at)
                .collect(),
        })
    }

    /// Source `index`'s content, unescaped; `None` if it has none (or it is not a string).
    fn read_content(&self, index: u32) -> Option<Content> {
        let data = self.data();
        let layout = &self.layout;
        let contents = data.get(layout.contents..)?;
        let start = format::u32_at(contents, index as usize * 2)?;
        let end = format::u32_at(contents, index as usize * 2 + 1)?;
        if start == NONE || start > end {
            return None;
        }
        let blob = data.get(layout.content_blob..)?;
        let raw = blob.get(start as usize..end as usize)?;
        let text: String = serde_json::from_slice(raw).ok()?;
        let line_starts = line_starts(&text);
        Some(Content { text, line_starts })
    }
}

/// Byte offsets where the lines of `text` start; no entry for the empty rest after a
/// trailing newline.
fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = vec![0];
    starts.extend(
        memchr::memchr_iter(b'\n', text.as_bytes())
            .map(|i| (i + 1) as u32)
            .filter(|&start| (start as usize) < text.len()),
    );
    starts
}

/// Builds a view's serialized form (see [`index::format`]).
///
/// Hermes maps carry their own scope information and ignore `minified`.
pub(crate) fn build_cache_bytes(
    minified: Option<&str>,
    sourcemap: &str,
) -> Result<Vec<u8>, SourceMapError> {
    index::build(minified, sourcemap).map_err(|e| SourceMapError::InvalidSourceMap(e.to_string()))
}

fn trim_eol(line: &str) -> String {
    line.trim_end_matches(['\n', '\r']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIFIED: &str = "function t(){}export default t;";
    const MAP: &str = r#"{"version":3,"names":["abcd"],"sources":["original.js"],"sourcesContent":["// comment\nfunction abcd() {}\nexport default abcd;\n"],"mappings":"AACA,SAASA,oBACMA"}"#;

    #[test]
    fn one_based_in_and_out() {
        let view = SourceMapView::build(Some(MINIFIED), MAP).unwrap();
        // 0-based (0,10) in the map's terms is 1:11 for an SDK.
        let loc = view.lookup(1, 11).unwrap();
        assert_eq!(loc.source.as_deref(), Some("original.js"));
        assert_eq!((loc.line, loc.col), (2, 10));
        assert_eq!(loc.function(), Some("abcd"));
        let context = loc.context.unwrap();
        assert_eq!(context.line, "function abcd() {}");
        assert_eq!(context.pre, ["// comment"]);
        assert_eq!(context.post, ["export default abcd;"]);
        assert!(view.lookup(0, 1).is_none());
        assert!(view.lookup(1, 0).is_none());
        assert!(view.lookup(7, 1).is_none());
    }

    #[test]
    fn without_minified_source_scope_is_unknown() {
        let view = SourceMapView::build(None, MAP).unwrap();
        let loc = view.lookup(1, 11).unwrap();
        assert_eq!(loc.scope, Scope::Unknown);
        assert_eq!(loc.name.as_deref(), Some("abcd"));
    }

    #[test]
    fn invalid_map_is_an_error() {
        let err = SourceMapView::build(None, "{not json").unwrap_err();
        assert!(matches!(err, SourceMapError::InvalidSourceMap(_)), "{err}");
    }
}
