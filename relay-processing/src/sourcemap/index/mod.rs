//! relay's own source map index, written from the Source Map v3 format.
//!
//! Dependencies run one way: `tokens` (the decoded map, in the index's token layout) is
//! used by `decode`, which fills it, by `scopes`, and by `format`, which also takes the
//! scopes.
//!
//! - `tokens`: the [`Decoded`](tokens::Decoded) map and the byte layout of one token.
//! - `decode`: the map's JSON (`json`: borrowed, big strings only delimited) and its VLQ
//!   `mappings` (`vlq`) into position-sorted tokens; index maps (`sections`) are flattened,
//!   Hermes/Metro function maps (`x_facebook_sources`) kept.
//! - `scopes`: the enclosing function's original name for every token, from the minified
//!   source (through the `js-source-scopes` crate) or from Metro's function maps.
//! - `format`: the serialized index that [`SourceMapView`](super::SourceMapView) reads in
//!   place, memory-mapped from the disk cache: the tokens, per-line token ranges cut into
//!   column buckets, a string table and the raw `sourcesContent`. The decoder writes tokens
//!   straight into it: building a view is one pass over `mappings` and one allocation.
//!
//! A lookup reads the line's entry, two bucket entries, a few tokens' columns and one
//! token; the strings it returns are borrowed.

pub(crate) mod decode;
pub(crate) mod format;
mod json;
pub(crate) mod scopes;
pub(crate) mod tokens;
mod vlq;

/// "No such field" in a token record (1-field segments, segments without a name).
pub(crate) const NONE: u32 = u32::MAX;
/// Scope of a token outside any function (or without scope information).
pub(crate) const SCOPE_UNKNOWN: u32 = u32::MAX;
/// Scope of a token in a function without an inferable name.
pub(crate) const SCOPE_ANONYMOUS: u32 = u32::MAX - 1;

/// Why a source map could not be decoded. Byte offsets (`at`) are within `mappings`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A character outside the base64 alphabet.
    #[error("invalid base64 character {byte:?} in mappings at byte {at}")]
    InvalidBase64 {
        /// Offset of the character.
        at: usize,
        /// The character (its first byte, for non-ASCII).
        byte: char,
    },
    /// A VLQ number whose last digit has the continuation bit.
    #[error("unterminated VLQ number in mappings at byte {at}")]
    UnterminatedVlq {
        /// Offset of the number.
        at: usize,
    },
    /// A VLQ number beyond 32 bits.
    #[error("VLQ number too large in mappings at byte {at}")]
    VlqOverflow {
        /// Offset of the number.
        at: usize,
    },
    /// A segment with other than 1, 4 or 5 fields.
    #[error("mappings segment at byte {at} has {fields} fields (1, 4 or 5 expected)")]
    BadSegment {
        /// Offset of the segment.
        at: usize,
        /// Its number of fields (6 means "more than 5").
        fields: usize,
    },
    /// A field that is negative or points past `sources`/`names`.
    #[error("{what} {value} out of range in mappings segment at byte {at}")]
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Its (accumulated) value.
        value: i64,
        /// Offset of the segment.
        at: usize,
    },
    /// An index map section whose map has sections itself.
    #[error("index map section contains an index map")]
    NestedIndexMap,
    /// Index map sections whose mappings run into the next section's lines.
    #[error("index map sections overlap")]
    OverlappingSections,
    /// An error in the map of an index map section.
    #[error("section at {line}:{column}: {error}")]
    Section {
        /// The section's offset line.
        line: u32,
        /// The section's offset column.
        column: u32,
        /// What is wrong in its map.
        error: Box<DecodeError>,
    },
    /// More lines, tokens or string bytes than the index can address.
    #[error("source map too large to index")]
    TooLarge,
}

impl DecodeError {
    fn in_section(self, line: u32, column: u32) -> Self {
        match self {
            Self::Section { .. } | Self::OverlappingSections | Self::TooLarge => self,
            error => Self::Section {
                line,
                column,
                error: Box::new(error),
            },
        }
    }
}

/// Decodes `sourcemap` and writes its index, with scope names from `minified` (ignored for
/// Hermes/Metro maps, which carry their own).
pub(crate) fn build(minified: Option<&str>, sourcemap: &str) -> Result<Vec<u8>, DecodeError> {
    let decoded = decode::decode(sourcemap)?;
    let scopes = match &decoded.function_maps {
        Some(_) => scopes::from_function_maps(&decoded),
        None => minified.and_then(|minified| scopes::from_minified(minified, &decoded)),
    };
    format::finish(decoded, scopes.as_ref())
}

#[cfg(test)]
mod tests;
