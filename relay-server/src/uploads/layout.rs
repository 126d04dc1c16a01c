//! Where uploaded files live below `data_dir/uploads` (see `docs/uploads.md`). Kept apart
//! from the upload API so that the symbol stores, which read these directories at start and
//! on reload, need nothing else of it.
//!
//! The tree:
//!
//! ```text
//! chunks/<sha1>                                    a chunk waiting for its assemble call
//! tmp/                                             files being written (renamed when whole)
//! projects/<id>/debug-files/<sha1>/<name>          an assembled debug file
//! projects/<id>/artifact-bundles/<sha1>.zip        an assembled artifact bundle
//! projects/<id>/artifact-bundles/<sha1>.json       its release, dist and upload time
//! ```

use std::path::{Path, PathBuf};

use relay_core::Config;

/// The uploads root below `data_dir`.
pub fn uploads_root(config: &Config) -> PathBuf {
    config.data_dir.join("uploads")
}

/// Where a project's uploaded debug files are kept.
pub fn debug_files_dir(root: &Path, project_id: u64) -> PathBuf {
    root.join("projects")
        .join(project_id.to_string())
        .join("debug-files")
}

/// Where a project's uploaded artifact bundles are kept.
pub fn bundles_dir(root: &Path, project_id: u64) -> PathBuf {
    root.join("projects")
        .join(project_id.to_string())
        .join("artifact-bundles")
}
