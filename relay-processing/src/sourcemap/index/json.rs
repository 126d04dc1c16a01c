//! The source map's JSON, borrowed from the input.
//!
//! The top-level object is walked by hand: the big string values (`mappings`, and every
//! `sourcesContent` entry, often most of the file) are only delimited, by looking for the
//! closing quote with `memchr`, not parsed character by character; `sourcesContent` entries
//! stay raw (quoted, escaped) until a frame needs context lines. Every other value (`sources`,
//! `names`, `sections`, `x_facebook_sources`, unknown fields) goes through serde_json.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::DecodeError;

/// The fields of a source map relay uses.
#[derive(Default, Deserialize)]
pub(super) struct RawMap<'a> {
    #[serde(borrow, default)]
    pub sources: Option<Vec<Option<Text<'a>>>>,
    #[serde(borrow, default, rename = "sourceRoot")]
    pub source_root: Option<Text<'a>>,
    #[serde(borrow, default, rename = "sourcesContent")]
    pub sources_content: Option<Contents<'a>>,
    #[serde(borrow, default)]
    pub names: Option<Vec<Name<'a>>>,
    #[serde(borrow, default)]
    pub mappings: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub sections: Option<Vec<RawSection<'a>>>,
    #[serde(borrow, default)]
    pub x_facebook_sources: Option<Vec<Option<Vec<RawFunctionMap<'a>>>>>,
}

#[derive(Deserialize)]
pub(super) struct RawSection<'a> {
    pub offset: RawOffset,
    #[serde(borrow, default)]
    pub map: Option<Box<RawMap<'a>>>,
}

#[derive(Deserialize)]
pub(super) struct RawOffset {
    pub line: u32,
    pub column: u32,
}

#[derive(Deserialize)]
pub(super) struct RawFunctionMap<'a> {
    #[serde(borrow, default)]
    pub names: Vec<Name<'a>>,
    #[serde(borrow)]
    pub mappings: Text<'a>,
}

/// Parses the top-level object of a source map.
pub(super) fn parse(text: &str) -> Result<RawMap<'_>, DecodeError> {
    let mut parser = Parser { text, at: 0 };
    let mut map = RawMap::default();
    parser.expect(b'{')?;
    if parser.peek() == Some(b'}') {
        parser.at += 1;
    } else {
        loop {
            let key = parser.string()?;
            parser.expect(b':')?;
            match &*key {
                "mappings" => map.mappings = parser.nullable(Parser::string)?.map(Text),
                "sourcesContent" => map.sources_content = parser.nullable(Parser::contents)?,
                "sources" => map.sources = parser.value()?,
                "sourceRoot" => map.source_root = parser.value()?,
                "names" => map.names = parser.value()?,
                "sections" => map.sections = parser.value()?,
                "x_facebook_sources" => map.x_facebook_sources = parser.value()?,
                _ => {
                    parser.value::<IgnoredAny>()?;
                }
            }
            match parser.next_byte()? {
                b',' => continue,
                b'}' => break,
                _ => return Err(parser.error("expected `,` or `}`")),
            }
        }
    }
    match parser.peek() {
        None => Ok(map),
        Some(_) => Err(parser.error("trailing characters")),
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    fn next_byte(&mut self) -> Result<u8, DecodeError> {
        let byte = self.peek().ok_or_else(|| self.error("unexpected end"))?;
        self.at += 1;
        Ok(byte)
    }

    fn expect(&mut self, expected: u8) -> Result<(), DecodeError> {
        match self.next_byte()? {
            byte if byte == expected => Ok(()),
            _ => Err(self.error(match expected {
                b'{' => "expected an object",
                b':' => "expected `:`",
                _ => "unexpected character",
            })),
        }
    }

    #[cold]
    fn error(&self, what: &str) -> DecodeError {
        DecodeError::Json(format!("{what} at byte {}", self.at))
    }

    /// `null`, or what `parse` reads.
    fn nullable<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        if self.peek() == Some(b'n') && self.text[self.at..].starts_with("null") {
            self.at += 4;
            return Ok(None);
        }
        parse(self).map(Some)
    }

    /// A string, borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        let raw = self.raw_string()?;
        let inner = &raw[1..raw.len() - 1];
        if !inner.contains('\\') {
            return Ok(Cow::Borrowed(inner));
        }
        serde_json::from_str::<String>(raw)
            .map(Cow::Owned)
            .map_err(|e| DecodeError::Json(e.to_string()))
    }

    /// A string as it is in the JSON, quotes and escapes included; only its end is looked for
    /// (the first `"` after an even number of backslashes).
    fn raw_string(&mut self) -> Result<&'a str, DecodeError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("expected a string"));
        }
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut from = start + 1;
        loop {
            let Some(quote) = memchr::memchr(b'"', &bytes[from..]).map(|i| from + i) else {
                return Err(self.error("unterminated string"));
            };
            let backslashes = bytes[start + 1..quote]
                .iter()
                .rev()
                .take_while(|&&b| b == b'\\')
                .count();
            if backslashes % 2 == 0 {
                self.at = quote + 1;
                return Ok(&self.text[start..quote + 1]);
            }
            from = quote + 1;
        }
    }

    /// `sourcesContent`: an array of raw strings (other values count as absent).
    fn contents(&mut self) -> Result<Contents<'a>, DecodeError> {
        self.expect(b'[')?;
        let mut contents = Vec::new();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Contents(contents));
        }
        loop {
            let content = match self.peek() {
                Some(b'"') => Some(self.raw_string()?),
                _ => {
                    self.value::<IgnoredAny>()?;
                    None
                }
            };
            contents.push(content);
            match self.next_byte()? {
                b',' => continue,
                b']' => return Ok(Contents(contents)),
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// Any value, through serde_json.
    fn value<T: Deserialize<'a>>(&mut self) -> Result<T, DecodeError> {
        self.peek();
        let rest = &self.text[self.at..];
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        match values.next() {
            Some(Ok(value)) => {
                self.at += values.byte_offset();
                Ok(value)
            }
            Some(Err(e)) => Err(DecodeError::Json(format!("at byte {}: {e}", self.at))),
            None => Err(self.error("unexpected end")),
        }
    }
}

/// `sourcesContent` entries, raw JSON strings (quoted, still escaped).
#[derive(Default)]
pub(super) struct Contents<'a>(pub Vec<Option<&'a str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Contents<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: Vec<Option<&'a RawValue>> = Deserialize::deserialize(deserializer)?;
        Ok(Self(
            raw.into_iter()
                .map(|c| c.map(RawValue::get).filter(|c| c.starts_with('"')))
                .collect(),
        ))
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
pub(super) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// A `names` entry: real-world maps have numbers (kept as text) and other junk (empty) there.
pub(super) struct Name<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NameVisitor).map(Name)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(""))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(""))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Cow::Borrowed(""))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cow::Borrowed(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_the_top_level_object() {
        let text = r#" { "unknown": {"a": [1, "}"]}, "mappings" : "AA\/AA",
            "sourcesContent": ["a\"b\\", null, 5, "\\\\\""], "names": ["x"], "version": 3 } "#;
        let map = parse(text).unwrap();
        assert_eq!(map.mappings.unwrap().0, "AA/AA");
        let contents = map.sources_content.unwrap().0;
        assert_eq!(
            contents,
            [Some(r#""a\"b\\""#), None, None, Some(r#""\\\\\"""#)]
        );
        assert_eq!(map.names.unwrap()[0].0, "x");
        assert!(parse("{}").unwrap().mappings.is_none());
        assert!(parse(r#"{"mappings": null}"#).unwrap().mappings.is_none());
    }

    #[test]
    fn rejects_what_is_not_a_json_object() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"mappings": "AAAA}"#,
            r#"{"mappings": "AAAA" "names": []}"#,
            r#"{"mappings": 5}"#,
            r#"{"sources": ["a"]} x"#,
            r#"{"sourcesContent": ["a" 5]}"#,
            r#"{"mappings": "\q"}"#,
        ] {
            assert!(matches!(parse(text), Err(DecodeError::Json(_))), "{text}");
        }
    }
}
