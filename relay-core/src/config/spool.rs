//! The `spool` section: the durable spool between intake and pipeline.

use serde::{Deserialize, Serialize};

/// When the spool makes appended data durable.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Sync before answering 200 (one sync per group of concurrent appends). Survives power loss.
    Always,
    /// Sync at most every `fsync_interval_ms`; answers before the sync. Survives a process
    /// crash; a power loss may lose the last interval.
    Interval,
    /// Leave syncing to the OS. Survives a process crash only.
    Never,
}

/// The durable spool under `data_dir/spool`; see `docs/guarantees.md`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Disk quota of all segments, in bytes. When full, intake answers 503 and readiness is
    /// false until delivered entries free space. Defaults to 1 GiB.
    pub max_disk_bytes: u64,
    /// A segment is sealed and a new one started beyond this size, in bytes. Defaults to 16 MiB.
    pub segment_bytes: u64,
    /// When appends are synced to disk. Defaults to `always`.
    pub fsync: FsyncPolicy,
    /// Sync interval for `fsync: interval`, in milliseconds. Defaults to 100.
    pub fsync_interval_ms: u64,
    /// Appends waiting for the writer at most; beyond, intake answers 503. Defaults to 4096.
    pub write_queue: usize,
    /// An entry older than this when read from the spool is dropped with an `expired` count
    /// and a log line instead of being published, in seconds. Defaults to 7 days.
    pub max_entry_age_secs: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_disk_bytes: 1024 * 1024 * 1024,
            segment_bytes: 16 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 100,
            write_queue: 4096,
            max_entry_age_secs: 7 * 24 * 3600,
        }
    }
}
