//! Helpers shared by the crate's unit tests.

use std::path::{Path, PathBuf};

/// The shared fixtures' root: `FIXTURES_DIR`, or `../shared/fixtures` next to the repository.
pub(crate) fn fixtures() -> PathBuf {
    std::env::var_os("FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}
