//! Scope names per token: the original name of the function enclosing each mapped position.
//!
//! Two sources, with the same results as symbolic's source map cache, which relay used before
//! (tests/sourcemap_differential.rs compares them on every fixture):
//!
//! - the **minified source**, parsed by the `js-source-scopes` crate (swc) into function ranges
//!   with their minified names; each name is mapped back to its original through the map's
//!   tokens (the token at the identifier, or the one just before it when that maps to the
//!   same original position, or the one at its end);
//! - for **Hermes/Metro** maps, Metro's function map in `x_facebook_sources`: the function
//!   starting last at or before the token's original position.

use std::collections::HashMap;
use std::ops::Range;

use js_source_scopes::{ScopeIndex, ScopeLookupResult, ScopeName, SourceContext};

use super::tokens::{self, Decoded};
use super::{NONE, SCOPE_ANONYMOUS, SCOPE_UNKNOWN};

/// Per-token scopes and the names they refer to.
#[derive(Debug, Default)]
pub(crate) struct Scopes {
    /// Distinct scope names.
    pub names: Vec<String>,
    /// Per token: an index into `names`, [`SCOPE_ANONYMOUS`] or [`SCOPE_UNKNOWN`].
    pub per_token: Vec<u32>,
}

impl Scopes {
    fn with_tokens(count: usize) -> Self {
        Self {
            names: Vec::new(),
            per_token: Vec::with_capacity(count),
        }
    }

    fn push(&mut self, interned: &mut HashMap<String, u32>, scope: ScopeLookupResult<'_>) {
        let value = match scope {
            ScopeLookupResult::NamedScope(name) => match interned.get(name) {
                Some(&index) => index,
                None => {
                    let index = self.names.len() as u32;
                    self.names.push(name.to_owned());
                    interned.insert(name.to_owned(), index);
                    index
                }
            },
            ScopeLookupResult::AnonymousScope => SCOPE_ANONYMOUS,
            ScopeLookupResult::Unknown => SCOPE_UNKNOWN,
        };
        self.per_token.push(value);
    }
}

/// Scopes from Metro's function maps; `None` when the map has none.
pub(crate) fn from_function_maps(decoded: &Decoded<'_>) -> Option<Scopes> {
    let maps = decoded.function_maps.as_ref()?;
    let mut scopes = Scopes::with_tokens(decoded.tokens.len());
    let mut interned = HashMap::new();
    for token in decoded.tokens.all() {
        let [source, line, column, _] = tokens::token_record(token);
        let name = maps
            .get(source as usize)
            .and_then(Option::as_ref)
            .and_then(|map| map.lookup(line, column));
        let scope = match name {
            Some(name) => ScopeLookupResult::NamedScope(name),
            None => ScopeLookupResult::Unknown,
        };
        scopes.push(&mut interned, scope);
    }
    Some(scopes)
}

/// Scopes from the minified source; `None` when it has none or does not parse (lookups
/// then work without scope names).
pub(crate) fn from_minified(minified: &str, decoded: &Decoded<'_>) -> Option<Scopes> {
    let extracted = match extract_scope_names(minified)? {
        Ok(extracted) => extracted,
        Err(error) => {
            let error: &dyn std::error::Error = &error;
            tracing::debug!(error, "minified source does not parse, no scope names");
            return None;
        }
    };
    if extracted.is_empty() {
        return None;
    }
    let context = SourceContext::new(minified).ok()?;
    let resolver = Resolver {
        context: &context,
        decoded,
    };
    let ranges: Vec<(Range<u32>, Option<String>)> = extracted
        .into_iter()
        .map(|(range, name)| {
            let minified_name = name.as_ref().map(ToString::to_string);
            let original = name
                .as_ref()
                .map(|name| resolver.original_name(name))
                .filter(|name| !name.is_empty());
            // Not resolved (or anonymous): some generators (Flutter's) put the function's name
            // on the token at the end of its body instead.
            let closing = match minified_name == original {
                true => resolver.closing_name(range.clone()),
                false => None,
            };
            (range, closing.or(original))
        })
        .collect();
    // Ranges that are not well nested make no index: no scope names then.
    let index = ScopeIndex::new(ranges).ok()?;
    let starts: Vec<_> = index
        .iter()
        .filter_map(|(offset, scope)| {
            let position = context.offset_to_position(offset)?;
            Some(((position.line, position.column), scope))
        })
        .collect();

    // Tokens and scope starts are both sorted by position: walk them together. Each token
    // gets the scope starting last at or before it (the first one if none does).
    let tokens = &decoded.tokens;
    let mut scopes = Scopes::with_tokens(tokens.len());
    let mut interned = HashMap::new();
    let mut at = 0;
    for (line, bounds) in tokens.line_starts.windows(2).enumerate() {
        for token in &tokens.all()[bounds[0] as usize..bounds[1] as usize] {
            let position = (line as u32, tokens::token_col(token));
            while at + 1 < starts.len() && starts[at + 1].0 <= position {
                at += 1;
            }
            let scope = starts
                .get(at)
                .map_or(ScopeLookupResult::Unknown, |&(_, scope)| scope);
            scopes.push(&mut interned, scope);
        }
    }
    Some(scopes)
}

/// swc's parser (under js-source-scopes) asserts things of its input in debug builds (the
/// `sourcemap` fuzz target found one on a malformed arrow function): a panic there costs the
/// scope names of that file, never the symbolication thread. `None` when it panicked.
fn extract_scope_names(
    minified: &str,
) -> Option<Result<js_source_scopes::Scopes, js_source_scopes::ParseError>> {
    let result = std::panic::catch_unwind(|| js_source_scopes::extract_scope_names(minified));
    if result.is_err() {
        tracing::warn!("the JavaScript parser panicked on a minified file: no scope names for it");
    }
    result.ok()
}

/// Maps minified identifiers back to their original names through the decoded tokens.
struct Resolver<'a, 'd> {
    context: &'a SourceContext<&'a str>,
    decoded: &'a Decoded<'d>,
}

impl Resolver<'_, '_> {
    /// The original text of a (possibly dotted) scope name: each identifier mapped back,
    /// synthetic parts (`.`, `prototype`) kept.
    fn original_name(&self, name: &ScopeName) -> String {
        name.components()
            .map(|component| {
                component
                    .range()
                    .and_then(|range| {
                        self.name_at(range.start)
                            .or_else(|| self.name_at(range.end))
                    })
                    .unwrap_or_else(|| component.text())
            })
            .collect()
    }

    /// The original name of the token at (or one column before) byte `offset`; when that token
    /// has none, the name of the token before it if both map to the same original position.
    fn name_at(&self, offset: u32) -> Option<&str> {
        let position = self.context.offset_to_position(offset)?;
        let tokens = &self.decoded.tokens;
        let index = tokens.floor(position.line, position.column)?;
        let col = tokens.col(index);
        let exactish =
            tokens.line_of(index) == position.line && col >= position.column.saturating_sub(1);
        if !exactish {
            return None;
        }
        if let Some(name) = self.name_of(index) {
            return Some(name);
        }
        let before = tokens.floor(position.line, col.checked_sub(1)?)?;
        let same_origin = tokens.record(before)[..3] == tokens.record(index)[..3];
        if same_origin {
            self.name_of(before)
        } else {
            None
        }
    }

    /// The name of the token exactly at the last character of `range`, if the position just
    /// after the range belongs to another token.
    fn closing_name(&self, range: Range<u32>) -> Option<String> {
        let last = self.context.offset_to_position(range.end.checked_sub(1)?)?;
        let tokens = &self.decoded.tokens;
        let index = tokens.floor(last.line, last.column)?;
        if (tokens.line_of(index), tokens.col(index)) != (last.line, last.column) {
            return None;
        }
        let after = self
            .context
            .offset_to_position(range.end)
            .and_then(|after| tokens.floor(after.line, after.column));
        if after == Some(index) {
            return None;
        }
        self.name_of(index).map(str::to_owned)
    }

    fn name_of(&self, index: usize) -> Option<&str> {
        let name = self.decoded.tokens.record(index)[3];
        if name == NONE {
            return None;
        }
        self.decoded.names.get(name as usize).map(|n| n.as_ref())
    }
}
