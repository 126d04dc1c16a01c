//! The assemble requests: which chunks make which file.
//!
//! Debug files (`POST /api/0/projects/{org}/{project}/files/difs/assemble/`), keyed by the
//! file's SHA-1:
//!
//! ```json
//! {"<sha1>": {"name": "crash.debug", "debug_id": "c0bcc3f1-…", "chunks": ["<sha1>", …]}}
//! ```
//!
//! Artifact bundles (`POST /api/0/organizations/{org}/artifactbundle/assemble/`):
//!
//! ```json
//! {"checksum": "<sha1>", "chunks": ["<sha1>", …], "projects": ["web"],
//!  "version": "app@1.2.3", "dist": "d1"}
//! ```
//!
//! `version` and `dist` come with `sourcemaps upload --release`/`--dist` only.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{is_checksum, UploadError};

/// Debug files in one assemble request at most.
pub const MAX_DIFS_PER_REQUEST: usize = 1024;
/// The longest file name, release or dist kept, in bytes.
const MAX_NAME_BYTES: usize = 256;

/// One debug file to assemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DifAssembleRequest {
    /// The SHA-1 of the whole file, lower-case hex.
    pub checksum: String,
    /// The file's name as the client gave it (a leaf name, for listings).
    pub name: String,
    /// The debug id the client read from the file, if it sent one (informational: the
    /// stored file is identified by its content).
    pub debug_id: Option<String>,
    /// The chunks in order, lower-case hex.
    pub chunks: Vec<String>,
}

/// An artifact bundle to assemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleAssembleRequest {
    /// The SHA-1 of the bundle, lower-case hex.
    pub checksum: String,
    /// The chunks in order, lower-case hex.
    pub chunks: Vec<String>,
    /// The project slugs the bundle is for.
    pub projects: Vec<String>,
    /// The release (`--release`), if any.
    pub version: Option<String>,
    /// The distribution (`--dist`), if any.
    pub dist: Option<String>,
}

#[derive(Deserialize)]
struct DifFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    debug_id: Option<String>,
    chunks: Vec<String>,
}

#[derive(Deserialize)]
struct Bundle {
    checksum: String,
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    dist: Option<String>,
}

/// Parses a debug-file assemble request; files may have at most `max_chunks` chunks.
pub fn parse_dif_assemble(
    body: &[u8],
    max_chunks: usize,
) -> Result<Vec<DifAssembleRequest>, UploadError> {
    let files: BTreeMap<String, DifFile> = serde_json::from_slice(body)
        .map_err(|e| UploadError::BadRequest(format!("invalid assemble request: {e}")))?;
    if files.len() > MAX_DIFS_PER_REQUEST {
        return Err(UploadError::TooLarge(format!(
            "more than {MAX_DIFS_PER_REQUEST} files in one assemble request"
        )));
    }
    files
        .into_iter()
        .map(|(checksum, file)| {
            let checksum = checked_sum("file", &checksum)?;
            let chunks = checked_chunks(file.chunks, max_chunks)?;
            let name = file.name.map(|n| leaf_name(&n)).unwrap_or_default();
            let name = if name.is_empty() {
                checksum.clone()
            } else {
                name
            };
            Ok(DifAssembleRequest {
                debug_id: file.debug_id.map(|id| truncate(&id)),
                checksum,
                name,
                chunks,
            })
        })
        .collect()
}

/// Parses an artifact bundle assemble request; at most `max_chunks` chunks.
pub fn parse_bundle_assemble(
    body: &[u8],
    max_chunks: usize,
) -> Result<BundleAssembleRequest, UploadError> {
    let bundle: Bundle = serde_json::from_slice(body)
        .map_err(|e| UploadError::BadRequest(format!("invalid assemble request: {e}")))?;
    if bundle.projects.len() > MAX_DIFS_PER_REQUEST {
        return Err(UploadError::TooLarge("too many projects".into()));
    }
    Ok(BundleAssembleRequest {
        checksum: checked_sum("bundle", &bundle.checksum)?,
        chunks: checked_chunks(bundle.chunks, max_chunks)?,
        projects: bundle.projects.iter().map(|p| truncate(p)).collect(),
        version: bundle.version.map(|v| truncate(&v)),
        dist: bundle.dist.map(|d| truncate(&d)),
    })
}

fn checked_sum(what: &str, checksum: &str) -> Result<String, UploadError> {
    if !is_checksum(checksum) {
        return Err(UploadError::BadRequest(format!(
            "the {what} checksum must be a SHA-1 in hex, not {:?}",
            truncate(checksum)
        )));
    }
    Ok(checksum.to_ascii_lowercase())
}

fn checked_chunks(chunks: Vec<String>, max_chunks: usize) -> Result<Vec<String>, UploadError> {
    if chunks.is_empty() {
        return Err(UploadError::BadRequest(
            "a file needs at least one chunk".into(),
        ));
    }
    if chunks.len() > max_chunks {
        return Err(UploadError::TooLarge(format!(
            "{} chunks: the file would be larger than uploads.max_file_bytes allows \
             ({max_chunks} chunks at most)",
            chunks.len()
        )));
    }
    chunks.iter().map(|c| checked_sum("chunk", c)).collect()
}

/// The last component of a path written on any OS, without control characters, bounded.
fn leaf_name(name: &str) -> String {
    let leaf = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = leaf.chars().filter(|c| !c.is_control()).collect();
    match clean.as_str() {
        "." | ".." => String::new(),
        _ => truncate(&clean),
    }
}

fn truncate(text: &str) -> String {
    let mut end = text.len().min(MAX_NAME_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "8564641af1041f71e487a381594dc1c1be8f5758";
    const B: &str = "6b158f52f1f48a2c11447a8055afb1888ebcf0d6";

    #[test]
    fn dif_requests_as_sentry_cli_sends_them() {
        let body = format!(
            r#"{{"{A}":{{"name":"crash.debug","debug_id":"c0bcc3f1-9827-fe65-3058-404b2831d9e6","chunks":["{A}"]}},
               "{}":{{"name":"C:\\build\\..\\crash.pdb","chunks":["{A}","{B}"]}}}}"#,
            B.to_uppercase()
        );
        let files = parse_dif_assemble(body.as_bytes(), 4).unwrap();
        assert_eq!(files.len(), 2);
        let dwarf = files.iter().find(|f| f.checksum == A).unwrap();
        assert_eq!(dwarf.name, "crash.debug");
        assert_eq!(dwarf.chunks, [A]);
        let pdb = files.iter().find(|f| f.checksum == B).unwrap();
        assert_eq!(pdb.name, "crash.pdb");
        assert_eq!(pdb.debug_id, None);
    }

    #[test]
    fn bundle_requests_with_and_without_release() {
        let plain = format!(r#"{{"checksum":"{B}","chunks":["{B}"],"projects":["web"]}}"#);
        let bundle = parse_bundle_assemble(plain.as_bytes(), 1).unwrap();
        assert_eq!(bundle.projects, ["web"]);
        assert_eq!((bundle.version, bundle.dist), (None, None));
        let release = format!(
            r#"{{"checksum":"{B}","chunks":["{B}"],"projects":["web"],"version":"app@1.2.3","dist":"d1"}}"#
        );
        let bundle = parse_bundle_assemble(release.as_bytes(), 1).unwrap();
        assert_eq!(bundle.version.as_deref(), Some("app@1.2.3"));
        assert_eq!(bundle.dist.as_deref(), Some("d1"));
    }

    #[test]
    fn bad_requests_are_refused() {
        let too_many = format!(r#"{{"checksum":"{B}","chunks":["{A}","{B}"]}}"#);
        assert!(matches!(
            parse_bundle_assemble(too_many.as_bytes(), 1),
            Err(UploadError::TooLarge(_))
        ));
        for body in [
            r#"{"checksum":"nope","chunks":[]}"#.to_owned(),
            format!(r#"{{"checksum":"{B}","chunks":[]}}"#),
            format!(r#"{{"checksum":"{B}","chunks":["../x"]}}"#),
            "[]".to_owned(),
        ] {
            assert!(
                matches!(
                    parse_bundle_assemble(body.as_bytes(), 4),
                    Err(UploadError::BadRequest(_))
                ),
                "{body}"
            );
        }
        let name = format!(r#"{{"{A}":{{"name":"..","chunks":["{A}"]}}}}"#);
        assert_eq!(parse_dif_assemble(name.as_bytes(), 1).unwrap()[0].name, A);
        assert!(parse_dif_assemble(br#"{"x":{"chunks":[]}}"#, 1).is_err());
    }
}
