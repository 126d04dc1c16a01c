//! The `symbolication` section: where debug files and source maps come from, and the
//! symbol cache.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Symbol and source map sources; see `docs/symbolication-native.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SymbolicationConfig {
    /// Directories of native debug files (ELF/DWARF, Mach-O/dSYM, PDB, PE, Breakpad `.sym`) in
    /// any layout, searched in order for every project. Defaults to none.
    pub native_symbols: Vec<PathBuf>,
    /// HTTP symbol servers, tried in order (after the local directories) for the modules of a
    /// minidump that no local debug file covers. Defaults to none: nothing is downloaded.
    pub http_sources: Vec<HttpSymbolSource>,
    /// Directory of JavaScript artifacts (minified files, source maps, Sentry artifact
    /// bundles) for every project without its own `js_artifacts`. Defaults to none.
    pub js_artifacts: Option<PathBuf>,
    /// Where SymCaches, CFI caches and downloaded debug files are kept. Defaults to
    /// `data_dir/symbol-cache`.
    pub cache_dir: Option<PathBuf>,
    /// Size bound of `cache_dir` in bytes (downloads, SymCaches and CFI together); beyond it the
    /// oldest files (by modification time) are deleted. Defaults to 10 GiB.
    pub max_cache_bytes: u64,
    /// Largest debug file one download from `http_sources` may write, in bytes: a larger
    /// `Content-Length` is refused before the body is read, a body is cut off (and its partial
    /// file deleted) the moment it passes this, and a symstore cabinet's packed and unpacked
    /// files count together. A file too large counts as missing for `negative_cache_secs`.
    /// Downloads also count against `max_cache_bytes` as they arrive. Defaults to 256 MiB.
    pub max_download_bytes: u64,
    /// Deadline for symbolicating one event (a minidump's walk, or an event's JavaScript
    /// frames), in seconds; frames not done by then are marked `timeout` and the event goes
    /// on. Defaults to 20.
    pub timeout_secs: u64,
    /// Deadline for downloading one event's debug files from `http_sources`, in seconds; the
    /// event then goes on with what has arrived. Also the longest one download may run (from
    /// its first request), so one still running when its event goes on continues for later
    /// events at most this long, and its partial file is deleted if it does not finish.
    /// Defaults to 30.
    pub fetch_deadline_secs: u64,
    /// How long a file a symbol server does not have (404) is not asked for again, in
    /// seconds; failures (timeouts, 5xx) are retried after at most 5 minutes. Defaults to 3600.
    pub negative_cache_secs: u64,
    /// Threads of one minidump that are walked, the crashing thread first; the others are left
    /// out of the event. Defaults to 1024.
    pub max_threads: usize,
    /// Frames walked per thread, innermost first; the walk of a deeper stack stops there.
    /// Defaults to 1000.
    pub max_frames_per_thread: usize,
    /// Bytes of one thread's stack memory the walker reads, from the stack pointer up (a dump
    /// may give every thread the same huge stack). Defaults to 1 MiB.
    pub max_stack_bytes: u64,
    /// Approximate memory the walked frames of one minidump may take, in bytes; once passed,
    /// the thread being walked stops and no further thread is walked. Defaults to 64 MiB.
    pub max_walk_bytes: u64,
    /// JavaScript frames resolved per event (the innermost of a stack trace first); later
    /// frames keep their minified position with status `frame_limit`. Defaults to 250.
    pub max_js_frames: usize,
    /// Distinct minified files whose source map is looked up per event (and original sources
    /// read for context lines); frames of further files get `sourcemap_limit`. Defaults to 64.
    pub max_js_sourcemaps: usize,
    /// Largest minified file or source map read (plain file or artifact bundle entry), in
    /// bytes; a larger one is not loaded and its frames get `too_large`. Defaults to 64 MiB.
    pub max_sourcemap_bytes: u64,
}

impl Default for SymbolicationConfig {
    fn default() -> Self {
        SymbolicationConfig {
            native_symbols: Vec::new(),
            http_sources: Vec::new(),
            js_artifacts: None,
            cache_dir: None,
            max_cache_bytes: 10 * 1024 * 1024 * 1024,
            max_download_bytes: 256 * 1024 * 1024,
            timeout_secs: 20,
            fetch_deadline_secs: 30,
            negative_cache_secs: 3600,
            max_threads: 1024,
            max_frames_per_thread: 1000,
            max_stack_bytes: 1024 * 1024,
            max_walk_bytes: 64 * 1024 * 1024,
            max_js_frames: 250,
            max_js_sourcemaps: 64,
            max_sourcemap_bytes: 64 * 1024 * 1024,
        }
    }
}

/// An HTTP symbol server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSymbolSource {
    /// Base URL (`http://` or `https://`); file paths of the layout are appended to it.
    pub url: String,
    /// How the server arranges its files. Defaults to `breakpad`.
    #[serde(default)]
    pub layout: SymbolServerLayout,
    /// Longest wait for the connection, the response headers or the next part of the body of
    /// one file, in seconds. Defaults to 10.
    #[serde(default = "default_source_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_source_timeout_secs() -> u64 {
    10
}

/// The file layout of a symbol server.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SymbolServerLayout {
    /// Breakpad's native layout: `<debug_file>/<DEBUG_ID>/<debug_file without .pdb>.sym`.
    #[default]
    Breakpad,
    /// Microsoft's symbol store: `<name>/<ID>/<name>`, or `<name>/<ID>/<nam_>` compressed (a
    /// cabinet); PDBs by debug id, PE files by code id (timestamp and image size).
    Symstore,
    /// debuginfod: `buildid/<build id>/debuginfo` and `buildid/<build id>/executable`.
    Debuginfod,
}

/// Checks one HTTP symbol source; `path` names it in errors (`symbolication.http_sources[0]`).
pub(super) fn validate_http_source(
    path: &str,
    source: &HttpSymbolSource,
) -> Result<(), ConfigError> {
    let rest = source
        .url
        .strip_prefix("http://")
        .or_else(|| source.url.strip_prefix("https://"));
    if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        return Err(ConfigError::new(
            format!("{path}.url"),
            format!("{:?} is not an http:// or https:// URL", source.url),
        ));
    }
    if source.timeout_secs == 0 {
        return Err(ConfigError::new(
            format!("{path}.timeout_secs"),
            "must be at least 1",
        ));
    }
    Ok(())
}

impl SymbolicationConfig {
    /// Checks the section's own values (its sources are checked with the projects' ones).
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("symbolication.max_cache_bytes", self.max_cache_bytes),
            (
                "symbolication.fetch_deadline_secs",
                self.fetch_deadline_secs,
            ),
            ("symbolication.max_download_bytes", self.max_download_bytes),
            ("symbolication.max_threads", self.max_threads as u64),
            (
                "symbolication.max_frames_per_thread",
                self.max_frames_per_thread as u64,
            ),
            ("symbolication.max_stack_bytes", self.max_stack_bytes),
            ("symbolication.max_walk_bytes", self.max_walk_bytes),
            ("symbolication.max_js_frames", self.max_js_frames as u64),
            (
                "symbolication.max_js_sourcemaps",
                self.max_js_sourcemaps as u64,
            ),
            (
                "symbolication.max_sourcemap_bytes",
                self.max_sourcemap_bytes,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
