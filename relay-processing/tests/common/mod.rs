//! What the integration tests share: where the fixtures are.

use std::path::{Path, PathBuf};

/// `sub` (`native`, `js`, `sdk`) below the repository's `tests/fixtures` (see its README).
pub fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(sub)
}
