//! A built source map cache and 1-based lookups in it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use symbolic::common::ByteView;
use symbolic::sourcemapcache::{
    ScopeLookupResult, SourceLocation, SourceMapCache, SourceMapCacheWriter, SourcePosition,
};

use super::SourceMapError;

/// How many lines of original source [`Location`] carries on each side of the line.
pub const CONTEXT_LINES: usize = 5;

/// A ready-to-query source map: symbolic's `SourceMapCache` over owned or memory-mapped bytes.
///
/// Built from a source map (regular, index map with `sections`, or Hermes/Metro) and,
/// optionally, the minified source it belongs to. With the minified source, lookups also
/// return the name of the enclosing function scope ([`Location::scope`]).
///
/// The serialized form is symbolic's cache followed by the map's `sourcesContent`, kept out of
/// symbolic's string table: symbolic's `lookup` resolves (and UTF-8-validates) the whole
/// original source of the hit file on every call, which made lookups on maps with embedded
/// sources several times slower than Mozilla's. Context lines come from this section instead,
/// with line offsets computed once per file on first use.
///
/// ```text
/// "RLYSMV01" | u64 LE length of the symbolic cache | symbolic cache, zero-padded to 8
/// | u32 LE count | per source: u8 present, [u32 LE length, UTF-8 bytes]
/// ```
pub struct SourceMapView {
    bytes: ByteView<'static>,
    /// Where symbolic's cache starts in `bytes` (8-aligned) and ends.
    cache: Range<usize>,
    /// Per entry of the map's `sources`: where its content is in `bytes`.
    contents: Vec<Option<Range<usize>>>,
    /// File name (as symbolic reports it) to index into `contents`; first wins.
    by_name: HashMap<String, usize>,
    /// Line start offsets within each content, computed on first use.
    line_starts: Vec<OnceLock<Vec<u32>>>,
}

const MAGIC: &[u8; 8] = b"RLYSMV01";

impl std::fmt::Debug for SourceMapView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMapView")
            .field("cache", &self.cache())
            .finish()
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
    /// Parses `sourcemap` (with the `minified` source when known) and builds the cache
    /// in memory.
    pub fn build(minified: Option<&str>, sourcemap: &str) -> Result<Self, SourceMapError> {
        let bytes = build_cache_bytes(minified, sourcemap)?;
        Self::from_bytes(ByteView::from_vec(bytes), 0)
    }

    /// Wraps serialized view bytes starting at `offset` (8-aligned) and validates them.
    pub(crate) fn from_bytes(
        bytes: ByteView<'static>,
        offset: usize,
    ) -> Result<Self, SourceMapError> {
        let invalid = |what: &str| SourceMapError::InvalidCache(what.to_owned());
        let data = bytes.as_slice();
        let header = data
            .get(offset..offset + 16)
            .ok_or_else(|| invalid("truncated"))?;
        if &header[..8] != MAGIC {
            return Err(invalid("not a relay source map cache"));
        }
        let len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let start = offset + 16;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| invalid("truncated cache"))?;
        let cache = SourceMapCache::parse(&data[start..end])
            .map_err(|e| SourceMapError::InvalidCache(e.to_string()))?;

        let mut reader = Reader {
            data,
            at: end.next_multiple_of(8),
        };
        let count = reader.u32().ok_or_else(|| invalid("truncated sources"))?;
        let mut contents = Vec::with_capacity(count.min(1 << 16) as usize);
        for _ in 0..count {
            let present = reader.u8().ok_or_else(|| invalid("truncated sources"))?;
            contents.push(match present {
                0 => None,
                _ => Some(reader.bytes().ok_or_else(|| invalid("truncated sources"))?),
            });
        }
        let mut by_name = HashMap::new();
        for (index, file) in cache.files().enumerate() {
            if let Some(name) = file.name() {
                by_name.entry(name.to_owned()).or_insert(index);
            }
        }
        let line_starts = contents.iter().map(|_| OnceLock::new()).collect();
        Ok(Self {
            cache: start..end,
            contents,
            by_name,
            line_starts,
            bytes,
        })
    }

    /// The underlying symbolic cache, for callers that want raw 0-based access.
    ///
    /// Parsing is a few bounds checks (the bytes were validated when the view was made).
    pub fn cache(&self) -> SourceMapCache<'_> {
        SourceMapCache::parse(&self.bytes.as_slice()[self.cache.clone()])
            .expect("validated in SourceMapView::from_bytes")
    }

    /// Size of the serialized view in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// Resolves a minified position, 1-based `line` and 1-based `col` (UTF-16 units), to its
    /// original location (1-based too), with context lines when `sourcesContent` is present.
    ///
    /// Returns `None` when the position is not covered by the map (line 0 or col 0 included).
    pub fn lookup(&self, line: u32, col: u32) -> Option<Location> {
        let position = SourcePosition::new(line.checked_sub(1)?, col.checked_sub(1)?);
        let cache = self.cache();
        let location = cache.lookup(position)?;
        let mut resolved = to_location(&location);
        if resolved.context.is_none() {
            resolved.context = location
                .file_name()
                .and_then(|name| self.context(name, location.line() as usize));
        }
        Some(resolved)
    }

    /// Context lines around 0-based `line` of the source named `name`, from the contents
    /// section.
    fn context(&self, name: &str, line: usize) -> Option<Context> {
        let index = *self.by_name.get(name)?;
        let range = self.contents.get(index)?.clone()?;
        let text = &self.bytes.as_slice()[range];
        let starts = self.line_starts[index].get_or_init(|| match std::str::from_utf8(text) {
            Ok(text) => line_starts(text),
            Err(_) => Vec::new(),
        });
        let line_at = |i: usize| -> Option<String> {
            let start = *starts.get(i)? as usize;
            let end = starts.get(i + 1).map_or(text.len(), |&e| e as usize);
            let raw = std::str::from_utf8(&text[start..end]).ok()?;
            Some(trim_eol(raw))
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
}

/// Byte offsets where the lines of `text` start; no entry for the empty rest after a
/// trailing newline.
fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = vec![0];
    starts.extend(
        text.match_indices('\n')
            .map(|(i, _)| (i + 1) as u32)
            .filter(|&start| (start as usize) < text.len()),
    );
    starts
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.data.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_le_bytes(bytes.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<Range<usize>> {
        let len = self.u32()? as usize;
        let range = self.at..self.at.checked_add(len)?;
        self.data.get(range.clone())?;
        self.at = range.end;
        Some(range)
    }
}

/// Builds a view's serialized form (see [`SourceMapView`]).
///
/// Hermes maps carry their own scope information and ignore `minified`.
pub(crate) fn build_cache_bytes(
    minified: Option<&str>,
    sourcemap: &str,
) -> Result<Vec<u8>, SourceMapError> {
    let split = split_sources_content(sourcemap);
    let (map, contents) = match &split {
        Some((map, contents)) => (map.as_str(), contents.as_slice()),
        None => (sourcemap, &[][..]),
    };
    let writer = SourceMapCacheWriter::new(minified.unwrap_or(""), map)
        .map_err(|e| SourceMapError::InvalidSourceMap(e.to_string()))?;
    let mut cache = Vec::new();
    writer
        .serialize(&mut cache)
        .map_err(|e| SourceMapError::InvalidSourceMap(e.to_string()))?;

    let contents_len: usize = contents
        .iter()
        .map(|c| 5 + c.as_ref().map_or(0, String::len))
        .sum();
    let mut out = Vec::with_capacity(16 + cache.len() + 8 + 4 + contents_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(cache.len() as u64).to_le_bytes());
    out.extend_from_slice(&cache);
    out.resize(out.len().next_multiple_of(8), 0);
    out.extend_from_slice(&(contents.len() as u32).to_le_bytes());
    for content in contents {
        match content {
            Some(text) => {
                out.push(1);
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            None => out.push(0),
        }
    }
    Ok(out)
}

/// Takes `sourcesContent` out of a regular (or Hermes) map: the map without it, and the
/// contents by source index. `None` when there is nothing to take out, for index maps (their
/// sections keep their contents in symbolic's cache) or when the map is not a JSON object
/// (symbolic reports the error then).
fn split_sources_content(sourcemap: &str) -> Option<(String, Vec<Option<String>>)> {
    if !sourcemap.contains("\"sourcesContent\"") {
        return None;
    }
    let fields: BTreeMap<String, &RawValue> = serde_json::from_str(sourcemap).ok()?;
    if fields.contains_key("sections") {
        return None;
    }
    let contents = fields.get("sourcesContent")?;
    let contents: Vec<Option<String>> = serde_json::from_str(contents.get()).ok()?;
    if contents
        .iter()
        .any(|c| c.as_ref().is_some_and(|c| c.len() > u32::MAX as usize))
    {
        return None;
    }
    let mut map = String::with_capacity(sourcemap.len());
    map.push('{');
    for (key, value) in fields.iter().filter(|(key, _)| *key != "sourcesContent") {
        if map.len() > 1 {
            map.push(',');
        }
        map.push_str(&serde_json::to_string(key).ok()?);
        map.push(':');
        map.push_str(value.get());
    }
    map.push('}');
    Some((map, contents))
}

fn to_location(location: &SourceLocation<'_>) -> Location {
    let scope = match location.scope() {
        ScopeLookupResult::NamedScope(name) => Scope::Named(name.to_owned()),
        ScopeLookupResult::AnonymousScope => Scope::Anonymous,
        ScopeLookupResult::Unknown => Scope::Unknown,
    };
    let context = location
        .file()
        .filter(|file| file.source().is_some())
        .and_then(|file| {
            let index = location.line() as usize;
            let line = file.line(index)?;
            let pre = (index.saturating_sub(CONTEXT_LINES)..index)
                .filter_map(|i| file.line(i))
                .map(trim_eol)
                .collect();
            // After a trailing newline symbolic reports one more, empty (not even "\n") line.
            let post = (index + 1..=index + CONTEXT_LINES)
                .map_while(|i| file.line(i))
                .filter(|line| !line.is_empty())
                .map(trim_eol)
                .collect();
            Some(Context {
                pre,
                line: trim_eol(line),
                post,
            })
        });
    Location {
        source: location.file_name().map(str::to_owned),
        line: location.line().saturating_add(1),
        col: location.column().saturating_add(1),
        name: location.name().map(str::to_owned),
        scope,
        context,
    }
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
        // 0-based (0,10) in symbolic's terms is 1:11 for an SDK.
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
