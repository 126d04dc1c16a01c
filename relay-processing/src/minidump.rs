//! Recognising minidump uploads.

use crate::decode::{Container, DecodeError};

/// Why an upload is not an acceptable minidump.
#[derive(Debug, thiserror::Error)]
pub enum MinidumpError {
    /// The (unwrapped) file does not start with a minidump signature.
    #[error("upload is not a minidump: expected the file to start with MDMP (found {found:?})")]
    BadSignature {
        /// The first bytes found, for the error message.
        found: String,
    },
    /// Unwrapping the compression container failed or exceeded the limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Unwraps an optional gzip/zstd/xz/bzip2 container and checks the minidump signature.
///
/// Returns `None` when `data` is already a bare minidump (so the caller can keep its buffer),
/// or the unwrapped bytes.
pub fn unwrap_minidump(data: &[u8], limit: usize) -> Result<Option<Vec<u8>>, MinidumpError> {
    let unwrapped = match Container::sniff(data) {
        Some(container) => Some(container.decode_bounded(data, limit)?),
        None => None,
    };
    check_signature(unwrapped.as_deref().unwrap_or(data))?;
    Ok(unwrapped)
}

/// Checks for `MDMP` (little-endian writers) or `PMDM` (big-endian writers).
fn check_signature(data: &[u8]) -> Result<(), MinidumpError> {
    if data.starts_with(b"MDMP") || data.starts_with(b"PMDM") {
        return Ok(());
    }
    let found = String::from_utf8_lossy(&data[..data.len().min(4)]).into_owned();
    Err(MinidumpError::BadSignature { found })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn bare_and_wrapped_minidumps() {
        let dump = b"MDMP\x93\xa7\x00\x00rest".to_vec();
        assert!(unwrap_minidump(&dump, 100).unwrap().is_none());
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&dump).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(unwrap_minidump(&gz, 100).unwrap().unwrap(), dump);
        assert!(unwrap_minidump(b"PMDMbig-endian", 100).is_ok());
    }

    #[test]
    fn rejects_other_files() {
        let err = unwrap_minidump(b"%PDF-1.4", 100).unwrap_err();
        assert!(err.to_string().contains("not a minidump"), "{err}");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        assert!(matches!(
            unwrap_minidump(&enc.finish().unwrap(), 100),
            Err(MinidumpError::BadSignature { .. })
        ));
    }
}
