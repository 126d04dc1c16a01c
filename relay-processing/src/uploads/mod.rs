//! What the upload API (`docs/uploads.md`) reads from clients, checked before anything is
//! stored: the chunk forms ([`parse_chunk_form`]), the assemble requests
//! ([`parse_dif_assemble`], [`parse_bundle_assemble`]) and what an assembled file is
//! ([`check_upload`]). The storage and the HTTP side are the server's.
//!
//! sentry-cli splits every file into chunks of at most [`CHUNK_SIZE`] bytes, each named by
//! the SHA-1 of its (uncompressed) bytes, and names the whole file by its SHA-1 too; both
//! names are checked here against the bytes.

mod assemble;
mod chunks;

use std::path::Path;

use sha1::{Digest, Sha1};

pub use self::assemble::{
    parse_bundle_assemble, parse_dif_assemble, BundleAssembleRequest, DifAssembleRequest,
    MAX_DIFS_PER_REQUEST,
};
pub use self::chunks::{parse_chunk_form, Chunk};
use crate::sourcemap::bundle::ArtifactBundle;
use crate::symbolicate::sources::{identify, DebugFile};

/// The largest chunk, uncompressed, in bytes (announced to clients as `chunkSize`).
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;
/// Chunks in one upload request at most (announced as `chunksPerRequest`): at most 64 MiB
/// of decoded chunks held by one request.
pub const MAX_CHUNKS_PER_REQUEST: usize = 8;
/// The largest chunk upload request body, in bytes (announced as `maxRequestSize`).
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// Why an upload request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// A size or count bound was passed.
    #[error("{0}")]
    TooLarge(String),
    /// The caller's in-flight byte budget has no room for the decoded chunks now.
    #[error("the relay holds too many upload bytes; retry later")]
    OverBudget,
    /// Bytes do not have the SHA-1 they are named by.
    #[error("{what} {expected} has SHA-1 {actual}: the data is corrupt")]
    ChecksumMismatch {
        /// What was checked (`chunk`, `file`).
        what: &'static str,
        /// The SHA-1 the client named.
        expected: String,
        /// The SHA-1 of the bytes received.
        actual: String,
    },
}

/// The SHA-1 of `data` in lower-case hex, as clients name chunks and files.
pub fn sha1_hex(data: &[u8]) -> String {
    hex_of(&Sha1::digest(data))
}

/// A running SHA-1 for a file assembled piece by piece.
#[derive(Default)]
pub struct FileHasher(Sha1);

impl FileHasher {
    /// Adds the next piece.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The SHA-1 of everything added, in lower-case hex.
    pub fn finish(self) -> String {
        hex_of(&self.0.finalize())
    }
}

fn hex_of(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` is a SHA-1 in hex (40 digits, either case).
pub fn is_checksum(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What an assemble endpoint stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadKind {
    /// A debug file (ELF, Mach-O, PDB, PE, Breakpad, source bundle, ...).
    DebugFile,
    /// A JavaScript artifact bundle.
    ArtifactBundle,
}

/// Checks that the assembled file at `path` is what its endpoint stores, with the parsers
/// the symbolicators use: a debug file with a debug id or code id, or an artifact bundle (a
/// zip, sentry-cli prefixes it with the 8-byte `SYSB` header of source bundles, with a
/// `manifest.json`). The question is asked per kind because the two overlap: an artifact
/// bundle's manifest has a debug id, so symbolic reads it as a source bundle too.
pub fn check_upload(path: &Path, kind: UploadKind) -> Result<Vec<DebugFile>, String> {
    match kind {
        UploadKind::DebugFile => {
            let objects = identify(path);
            if objects.is_empty() {
                return Err("not a debug file with a debug id or code id".into());
            }
            Ok(objects)
        }
        UploadKind::ArtifactBundle => match ArtifactBundle::open(path) {
            Ok(_) => Ok(Vec::new()),
            Err(error) => Err(format!("not an artifact bundle: {error}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_names() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let mut hasher = FileHasher::default();
        hasher.update(b"ab");
        hasher.update(b"c");
        assert_eq!(hasher.finish(), sha1_hex(b"abc"));
        assert!(is_checksum("A9993E364706816ABA3E25717850C26C9CD0D89D"));
        assert!(!is_checksum("a9993e364706816aba3e25717850c26c9cd0d89"));
        assert!(!is_checksum("../../../../../../../../../../etc/passwd"));
    }

    #[test]
    fn uploads_are_checked_by_content() {
        let fixtures = crate::test_support::fixtures();
        let native = fixtures.join("native");
        let objects = check_upload(
            &native.join("linux-x86_64/crash.debug"),
            UploadKind::DebugFile,
        )
        .unwrap();
        assert_eq!(
            objects[0].debug_id.to_string(),
            "c0bcc3f1-9827-fe65-3058-404b2831d9e6"
        );
        let pdb = native.join("windows-x86/crash.pdb");
        assert!(check_upload(&pdb, UploadKind::DebugFile).is_ok());
        assert!(check_upload(&pdb, UploadKind::ArtifactBundle).is_err());
        let dump = native.join("linux-x86_64/linux.dmp");
        assert!(check_upload(&dump, UploadKind::DebugFile).is_err());

        // as sentry-cli writes a bundle: `SYSB`, a version, then the zip
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle");
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("manifest.json", options).unwrap();
        std::io::Write::write_all(
            &mut zip,
            br#"{"files": {}, "debug_id": "fcefffb4-8474-5680-98da-5c841f2cfeda"}"#,
        )
        .unwrap();
        let mut data = b"SYSB\x02\0\0\0".to_vec();
        data.extend(zip.finish().unwrap().into_inner());
        std::fs::write(&path, data).unwrap();
        assert!(check_upload(&path, UploadKind::ArtifactBundle).is_ok());
    }
}
