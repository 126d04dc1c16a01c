//! Helpers shared by the crate's unit tests.

use std::path::{Path, PathBuf};

/// The repository's fixtures (`tests/fixtures`, see its README for their origins).
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}
