//! Errors of JavaScript symbolication.

use std::path::PathBuf;

/// Why a source map could not be found, read, built or used.
///
/// None of these fails an event: [`symbolicate_js_event`](super::symbolicate_js_event) turns
/// them into a per-frame status. They surface as `Err` only from the lower-level APIs.
#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    /// Reading an artifact, a bundle or a cache file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An artifact is larger than the store accepts.
    #[error("{path} is too large ({size} bytes, limit {limit})")]
    TooLarge {
        /// The artifact.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An artifact bundle is not a zip file with a valid `manifest.json`.
    #[error("invalid artifact bundle {path}: {reason}")]
    InvalidBundle {
        /// The bundle file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The source map (or the minified source) is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    NotUtf8 {
        /// Which input ("source map" or "minified source").
        what: &'static str,
    },
    /// The source map could not be decoded (see [`DecodeError`](super::index::DecodeError)).
    #[error("invalid source map: {0}")]
    InvalidSourceMap(String),
    /// A `data:` source map URL could not be decoded.
    #[error("invalid inline source map: {0}")]
    InvalidDataUrl(String),
    /// A built cache file is corrupt or of another version.
    #[error("invalid source map cache: {0}")]
    InvalidCache(String),
}

impl SourceMapError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
