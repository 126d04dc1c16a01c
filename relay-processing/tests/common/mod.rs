//! What the integration tests share: where the fixtures are.

use std::path::{Path, PathBuf};

/// `sub` (`native`, `js`, `sdk`) below `$FIXTURES_DIR`, by default `../shared/fixtures` beside
/// the repository.
pub fn fixture_dir(sub: &str) -> PathBuf {
    std::env::var_os("FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
        .join(sub)
}
