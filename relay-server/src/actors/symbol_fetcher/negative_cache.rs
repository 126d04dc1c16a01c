//! The negative cache: files not to ask a symbol server for again yet.
//!
//! In memory, every miss and failure until its expiry ([`NegativeCache`]); on disk, an empty
//! `<file>.missing` marker beside where the download would be, for 404/410 only, so a restart
//! does not ask again (losing a marker costs one request, so writing it is best effort). A
//! file too large gets no marker, so a raised `max_download_bytes` applies after a restart.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long a failed download (timeout, 5xx, connection error) is not retried, at most.
pub const FAILURE_TTL: Duration = Duration::from_secs(300);

/// Misses remembered in memory; beyond, expired ones are dropped, then all.
const MAX_NEGATIVE_ENTRIES: usize = 100_000;

/// Why a file is remembered as not available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Miss {
    /// The server does not have it (404/410), it is no debug file, or it is larger than
    /// `max_download_bytes`: for the full period.
    Missing,
    /// Timeout, server error, network error: for at most [`FAILURE_TTL`].
    Failed,
}

/// Misses and failures by key, each until the instant it may be asked for again.
pub(super) struct NegativeCache<K> {
    ttl: Duration,
    until: HashMap<K, Instant>,
}

impl<K: Hash + Eq> NegativeCache<K> {
    /// A cache remembering misses for `ttl` (`symbolication.negative_cache_secs`).
    pub(super) fn new(ttl: Duration) -> Self {
        NegativeCache {
            ttl,
            until: HashMap::new(),
        }
    }

    /// How long a missing file is remembered (in memory and by its marker).
    pub(super) fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether `key` is remembered and not yet expired.
    pub(super) fn contains(&self, key: &K) -> bool {
        self.until
            .get(key)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Remembers `key` for as long as `miss` warrants.
    pub(super) fn remember(&mut self, key: K, miss: Miss) {
        let ttl = match miss {
            Miss::Missing => self.ttl,
            Miss::Failed => self.ttl.min(FAILURE_TTL),
        };
        if self.until.len() >= MAX_NEGATIVE_ENTRIES {
            let now = Instant::now();
            self.until.retain(|_, until| *until > now);
            if self.until.len() >= MAX_NEGATIVE_ENTRIES {
                self.until.clear();
            }
        }
        self.until.insert(key, Instant::now() + ttl);
    }
}

/// The marker path of the download cache file `local`.
pub(super) fn missing_marker(local: &Path) -> PathBuf {
    let mut name = local.file_name().unwrap_or_default().to_owned();
    name.push(".missing");
    local.with_file_name(name)
}

/// Whether `local` has a marker younger than `ttl`.
pub(super) fn has_fresh_marker(local: &Path, ttl: Duration) -> bool {
    std::fs::metadata(missing_marker(local))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < ttl)
}

/// Writes the marker of `local` (blocking; best effort).
pub(super) fn write_marker(local: &Path) {
    let marker = missing_marker(local);
    if let Some(dir) = marker.parent() {
        if std::fs::create_dir_all(dir).is_ok() {
            let _ = std::fs::write(&marker, b"");
        }
    }
}

/// Removes the marker of `local`, which was found after all (blocking; best effort).
pub(super) fn remove_marker(local: &Path) {
    let _ = std::fs::remove_file(missing_marker(local));
}
