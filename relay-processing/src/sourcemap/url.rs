//! URLs and paths of JavaScript artifacts: normalisation, matching keys, joining, and the
//! `sourceMappingURL` / `debugId` comments of minified files.
//!
//! Artifacts are matched the way Sentry names them: a full URL
//! (`https://example.com/static/app.js`), or `~/static/app.js` for "this path on any host".

use base64::Engine as _;

use super::SourceMapError;

/// A URL or path split into scheme, host and normalised path segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlParts {
    /// `http`, `https`, `app`, `file`, `webpack`, ... (`None` for plain paths).
    pub scheme: Option<String>,
    /// The host (with port), empty for `app:///x` or plain paths.
    pub host: String,
    /// Path segments without empty, `.` and `..` segments (resolved), percent-decoded.
    pub segments: Vec<String>,
}

impl UrlParts {
    /// Splits `url` (query and fragment dropped). `None` when the path climbs above its root
    /// or contains a segment that is unsafe as a file name (NUL, backslash).
    pub fn parse(url: &str) -> Option<Self> {
        let url = strip_query(url);
        let (scheme, rest) = match split_scheme(url) {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, url),
        };
        let (host, path) = match (scheme.is_some(), rest.strip_prefix("//")) {
            (true, Some(after)) => match after.find('/') {
                Some(slash) => (&after[..slash], &after[slash..]),
                None => (after, ""),
            },
            _ => ("", rest),
        };
        let path = path.strip_prefix("~/").unwrap_or(path);
        let mut segments: Vec<String> = Vec::new();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop()?;
                }
                other => {
                    let decoded = percent_decode(other);
                    if decoded.is_empty()
                        || decoded == "."
                        || decoded == ".."
                        || decoded.contains(['/', '\\', '\0'])
                    {
                        return None;
                    }
                    segments.push(decoded);
                }
            }
        }
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            segments,
        })
    }

    /// The normalised path, `/`-joined, without a leading slash.
    pub fn path(&self) -> String {
        self.segments.join("/")
    }

    /// Keys under which an artifact for this URL may be registered, most specific first:
    /// `scheme://host/path`, then `~/path`.
    pub fn lookup_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(2);
        if let Some(scheme) = &self.scheme {
            keys.push(format!("{scheme}://{}/{}", self.host, self.path()));
        }
        if !self.segments.is_empty() {
            keys.push(format!("~/{}", self.path()));
        }
        keys
    }

    /// The key a bundle entry's `url` is registered under (see [`lookup_keys`](Self::lookup_keys)):
    /// URLs with a scheme keep it, everything else (`~/x`, `/x`, `x`) becomes `~/x`.
    pub fn index_key(&self) -> String {
        match &self.scheme {
            Some(scheme) => format!("{scheme}://{}/{}", self.host, self.path()),
            None => format!("~/{}", self.path()),
        }
    }

    /// Relative paths to try inside a local artifact directory, in order:
    /// `<host>/<path>`, `~/<path>`, `<path>`.
    pub fn local_candidates(&self) -> Vec<std::path::PathBuf> {
        if self.segments.is_empty() {
            return Vec::new();
        }
        let path: std::path::PathBuf = self.segments.iter().collect();
        let mut out = Vec::with_capacity(3);
        if !self.host.is_empty() && !self.host.contains(['\\', '\0']) && self.host != ".." {
            out.push(std::path::Path::new(&self.host.replace(':', "_")).join(&path));
        }
        out.push(std::path::Path::new("~").join(&path));
        out.push(path);
        out
    }
}

/// `url` without `?query` and `#fragment`.
pub fn strip_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// Splits `scheme:` off when `url` starts with a valid URL scheme (at least two characters,
/// so Windows drive letters are not schemes).
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let valid = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then(|| (scheme, &url[colon + 1..]))
}

/// Whether `url` starts with a scheme (`http:`, `webpack:`, `data:`, ...).
pub fn has_scheme(url: &str) -> bool {
    split_scheme(url).is_some()
}

/// Resolves `reference` against `base` like a browser does for relative URLs, for URLs and
/// for `~/` / plain paths alike. `..` never climbs above the root.
pub fn join(base: &str, reference: &str) -> String {
    if has_scheme(reference) {
        return reference.to_owned();
    }
    let base = strip_query(base);
    // The prefix that stays: `scheme://host` for URLs, `~` for `~/` paths, nothing otherwise.
    let (prefix, base_path) = match split_scheme(base) {
        Some((scheme, rest)) => match rest.strip_prefix("//") {
            Some(after) => {
                let slash = after.find('/').unwrap_or(after.len());
                (
                    format!("{scheme}://{}", &after[..slash]),
                    after[slash..].to_owned(),
                )
            }
            None => (format!("{scheme}:"), rest.to_owned()),
        },
        None => match base.strip_prefix("~/") {
            Some(rest) => ("~".to_owned(), format!("/{rest}")),
            None => (String::new(), base.to_owned()),
        },
    };
    if let Some(protocol_relative) = reference.strip_prefix("//") {
        let scheme = prefix.split(':').next().unwrap_or("https");
        return format!("{scheme}://{protocol_relative}");
    }
    let absolute_base = base_path.starts_with('/');
    let joined = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        let dir = base_path.rfind('/').map_or("", |i| &base_path[..=i]);
        format!("{dir}{reference}")
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let path = segments.join("/");
    if prefix.is_empty() && !absolute_base && !reference.starts_with('/') {
        path
    } else if prefix.ends_with(':') && !absolute_base {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}/{path}")
    }
}

/// The `sourceMappingURL` of a minified file: the last `//# sourceMappingURL=` (or the old
/// `//@` form) comment line.
pub fn find_source_mapping_url(source: &str) -> Option<&str> {
    find_comment(source, "sourceMappingURL=")
}

/// The debug id of a minified file, from its last `//# debugId=` comment, normalised.
pub fn find_debug_id(source: &str) -> Option<String> {
    find_comment(source, "debugId=").and_then(normalize_debug_id)
}

fn find_comment<'a>(source: &'a str, key: &str) -> Option<&'a str> {
    source.lines().rev().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("//#")
            .or_else(|| line.strip_prefix("//@"))?;
        let value = rest.trim_start().strip_prefix(key)?.trim();
        (!value.is_empty()).then_some(value)
    })
}

/// Normalises a debug id to the lowercase hyphenated UUID form (`None` if it is not a UUID).
pub fn normalize_debug_id(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id.trim())
        .ok()
        .map(|uuid| uuid.hyphenated().to_string())
}

/// Decodes a `data:` URL (`data:application/json;base64,...` or percent-encoded) into bytes.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, SourceMapError> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| SourceMapError::InvalidDataUrl("not a data: URL".into()))?;
    let (meta, payload) = rest
        .split_once(',')
        .ok_or_else(|| SourceMapError::InvalidDataUrl("missing ','".into()))?;
    if meta
        .split(';')
        .any(|part| part.eq_ignore_ascii_case("base64"))
    {
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| SourceMapError::InvalidDataUrl(e.to_string()))
    } else {
        Ok(percent_decode(payload).into_bytes())
    }
}

/// The `filename` Sentry shows for an original source's `abs_path`: webpack URLs lose their
/// `webpack://<namespace>/` prefix, other URLs their scheme and host.
pub fn display_filename(abs_path: &str) -> String {
    if let Some(rest) = abs_path.strip_prefix("webpack://") {
        return match rest.find('/') {
            Some(slash) => rest[slash + 1..].to_owned(),
            None => rest.to_owned(),
        };
    }
    match split_scheme(abs_path) {
        Some((_, rest)) => match rest.strip_prefix("//") {
            Some(after) => {
                let path = after.find('/').map_or("", |slash| &after[slash + 1..]);
                strip_query(path).to_owned()
            }
            None => rest.to_owned(),
        },
        None => abs_path.strip_prefix("~/").unwrap_or(abs_path).to_owned(),
    }
}

/// A module name for a source file: its display filename without `./` and extension.
pub fn module_name(filename: &str) -> String {
    let path = filename.trim_start_matches("./").trim_start_matches('/');
    let file_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[file_start..].find('.') {
        Some(dot) if dot > 0 => path[..file_start + dot].to_owned(),
        _ => path.to_owned(),
    }
}

fn percent_decode(input: &str) -> String {
    if !input.contains('%') {
        return input.to_owned();
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_and_paths() {
        let parts =
            UrlParts::parse("https://Example.com:8080/static/./js/../app%20x.js?v=1#a").unwrap();
        assert_eq!(parts.scheme.as_deref(), Some("https"));
        assert_eq!(parts.host, "example.com:8080");
        assert_eq!(parts.path(), "static/app x.js");
        assert_eq!(
            parts.lookup_keys(),
            [
                "https://example.com:8080/static/app x.js",
                "~/static/app x.js"
            ]
        );
        let local: Vec<_> = parts.local_candidates();
        assert_eq!(
            local[0],
            std::path::Path::new("example.com_8080/static/app x.js")
        );
        assert_eq!(local[1], std::path::Path::new("~/static/app x.js"));
        assert_eq!(local[2], std::path::Path::new("static/app x.js"));

        let app = UrlParts::parse("app:///index.android.bundle").unwrap();
        assert_eq!(
            (app.host.as_str(), app.path().as_str()),
            ("", "index.android.bundle")
        );
        assert_eq!(UrlParts::parse("~/a/b.js").unwrap().index_key(), "~/a/b.js");
        assert_eq!(UrlParts::parse("/a/b.js").unwrap().index_key(), "~/a/b.js");
        assert_eq!(UrlParts::parse("C:/a/b.js").unwrap().path(), "C:/a/b.js");
        // Traversal out of the root and encoded separators are refused.
        assert!(UrlParts::parse("http://x/../../etc/passwd").is_none());
        assert!(UrlParts::parse("http://x/a%2F..%2F..%2Fb").is_none());
    }

    #[test]
    fn joins_like_a_browser() {
        assert_eq!(
            join("http://example.com/static/app.min.js", "app.min.js.map"),
            "http://example.com/static/app.min.js.map"
        );
        assert_eq!(
            join("http://example.com/a/b.js", "../src/x.js"),
            "http://example.com/src/x.js"
        );
        assert_eq!(
            join("http://example.com/a/b.js", "/maps/b.map"),
            "http://example.com/maps/b.map"
        );
        assert_eq!(
            join("http://example.com/a/b.js", "//cdn.x/b.map"),
            "http://cdn.x/b.map"
        );
        assert_eq!(
            join("http://example.com/a/b.js", "webpack:///./x.js"),
            "webpack:///./x.js"
        );
        assert_eq!(join("~/a/b.js", "b.js.map"), "~/a/b.js.map");
        assert_eq!(join("/srv/app/b.js", "b.js.map"), "/srv/app/b.js.map");
        assert_eq!(join("dist/b.js", "../src/b.ts"), "src/b.ts");
        assert_eq!(
            join("app:///index.bundle", "index.bundle.map"),
            "app:///index.bundle.map"
        );
        assert_eq!(
            join("http://example.com", "x.map"),
            "http://example.com/x.map"
        );
    }

    #[test]
    fn finds_comments() {
        let src = "a();\n//# sourceMappingURL=old.map\nb();\n//# sourceMappingURL=app.js.map \n";
        assert_eq!(find_source_mapping_url(src), Some("app.js.map"));
        assert_eq!(
            find_source_mapping_url("x();\n//@ sourceMappingURL=y.map"),
            Some("y.map")
        );
        assert_eq!(find_source_mapping_url("x();"), None);
        let src =
            "x();\n//# debugId=85314830-023F-4CF1-A267-535F4E37BB17\n//# sourceMappingURL=x.map";
        assert_eq!(
            find_debug_id(src).as_deref(),
            Some("85314830-023f-4cf1-a267-535f4e37bb17")
        );
        assert_eq!(find_debug_id("//# debugId=nope"), None);
    }

    #[test]
    fn decodes_data_urls() {
        let url = "data:application/json;charset=utf-8;base64,eyJ2ZXJzaW9uIjozfQ==";
        assert_eq!(decode_data_url(url).unwrap(), br#"{"version":3}"#);
        assert_eq!(
            decode_data_url("data:application/json,%7B%7D").unwrap(),
            b"{}"
        );
        assert!(decode_data_url("data:application/json;base64,@@").is_err());
    }

    #[test]
    fn filenames_and_modules() {
        assert_eq!(
            display_filename("webpack:///./src/components/CampaignContent.tsx"),
            "./src/components/CampaignContent.tsx"
        );
        assert_eq!(display_filename("webpack://app/./src/a.js"), "./src/a.js");
        assert_eq!(display_filename("http://example.com/test.js"), "test.js");
        assert_eq!(display_filename("app:///src/a.js"), "src/a.js");
        assert_eq!(display_filename("~/src/a.js"), "src/a.js");
        assert_eq!(
            module_name("./src/components/CampaignContent.tsx"),
            "src/components/CampaignContent"
        );
        assert_eq!(module_name("test.js"), "test");
        assert_eq!(module_name("a/.hidden"), "a/.hidden");
    }
}
