//! A size-bounded on-disk cache of built artifacts, least recently used evicted first.
//!
//! Each entry is one file `<hash>.<ext>` that starts with a small header holding the full key,
//! so a hash collision is detected and treated as a miss. Recency is the file's mtime: a hit
//! touches it, and when the directory grows past its bound the oldest files are deleted.
//! Entries are written to a temporary file and renamed into place, so readers (which
//! memory-map them) never see a partial file, and several processes may share a directory.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use symbolic::common::ByteView;

const MAGIC: &[u8; 8] = b"RLYCACH1";

/// A directory of cache entries with a total size bound in bytes.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    extension: &'static str,
    max_bytes: u64,
    /// Approximate bytes in the directory; corrected by every eviction scan.
    total: Mutex<u64>,
}

/// A cache hit: the whole file, and where the payload starts (8-byte aligned).
#[derive(Debug)]
pub struct CacheEntry {
    /// The memory-mapped file.
    pub bytes: ByteView<'static>,
    /// Offset of the payload in `bytes`, a multiple of 8.
    pub offset: usize,
}

impl DiskCache {
    /// Opens (creating it if needed) a cache directory whose entries end in `.<extension>`,
    /// bounded to `max_bytes` in total.
    pub fn open(
        dir: impl Into<PathBuf>,
        extension: &'static str,
        max_bytes: u64,
    ) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let cache = Self {
            dir,
            extension,
            max_bytes,
            total: Mutex::new(0),
        };
        let total = cache.entries()?.iter().map(|e| e.size).sum();
        *cache.total.lock().unwrap_or_else(|e| e.into_inner()) = total;
        Ok(cache)
    }

    /// The directory of this cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks an entry up by `key`; a hit refreshes its recency.
    pub fn get(&self, key: &str) -> Option<CacheEntry> {
        let path = self.path_for(key);
        let bytes = ByteView::open(&path).ok()?;
        let Some(offset) = payload_offset(bytes.as_slice(), key) else {
            // A collision or a foreign/corrupt file: leave it to eviction, report a miss.
            return None;
        };
        touch(&path);
        Some(CacheEntry { bytes, offset })
    }

    /// Stores `payload` under `key` and returns the stored entry (memory-mapped), evicting the
    /// least recently used entries if the directory exceeds its bound.
    pub fn put(&self, key: &str, payload: &[u8]) -> io::Result<CacheEntry> {
        let path = self.path_for(key);
        let header = header_for(key);
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&header)?;
            file.write_all(payload)?;
            file.sync_data()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        let size = (header.len() + payload.len()) as u64;
        let over = {
            let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
            *total += size;
            *total > self.max_bytes
        };
        if over {
            self.evict(&path)?;
        }
        let bytes = ByteView::open(&path)?;
        Ok(CacheEntry {
            bytes,
            offset: header.len(),
        })
    }

    /// Deletes the oldest entries until the directory fits its bound; never deletes `keep`.
    fn evict(&self, keep: &Path) -> io::Result<()> {
        let mut entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        entries.sort_by_key(|e| e.modified);
        for entry in entries {
            if total <= self.max_bytes {
                break;
            }
            if entry.path == keep {
                continue;
            }
            if fs::remove_file(&entry.path).is_ok() {
                total -= entry.size;
            }
        }
        *self.total.lock().unwrap_or_else(|e| e.into_inner()) = total;
        Ok(())
    }

    fn entries(&self) -> io::Result<Vec<EntryMeta>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(self.extension) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            out.push(EntryMeta {
                path,
                size: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(out)
    }

    fn path_for(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{:016x}.{}", fnv1a(key.as_bytes()), self.extension))
    }
}

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

struct EntryMeta {
    path: PathBuf,
    size: u64,
    modified: SystemTime,
}

/// `MAGIC`, key length (u32 LE), 4 bytes padding, key, zero padding to a multiple of 8.
fn header_for(key: &str) -> Vec<u8> {
    let mut header = Vec::with_capacity(16 + key.len() + 8);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&(key.len() as u32).to_le_bytes());
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(key.as_bytes());
    header.resize(header.len().next_multiple_of(8), 0);
    header
}

fn payload_offset(bytes: &[u8], key: &str) -> Option<usize> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let stored = bytes.get(16..16 + len)?;
    (stored == key.as_bytes()).then(|| (16 + len).next_multiple_of(8))
}

fn touch(path: &Path) {
    if let Ok(file) = File::options().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// FNV-1a, 64 bit: stable across Rust versions (unlike `DefaultHasher`), enough for file
/// names since the full key is checked on every hit.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn put_get_and_key_check() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), "bin", 1 << 20).unwrap();
        assert!(cache.get("a").is_none());
        let entry = cache.put("a", b"payload!").unwrap();
        assert_eq!(entry.offset % 8, 0);
        assert_eq!(&entry.bytes.as_slice()[entry.offset..], b"payload!");
        let hit = cache.get("a").unwrap();
        assert_eq!(&hit.bytes.as_slice()[hit.offset..], b"payload!");
        // A different key that lands on the same file name is a miss, not a wrong hit.
        let path = cache.path_for("b");
        fs::copy(cache.path_for("a"), &path).unwrap();
        assert!(cache.get("b").is_none());
    }

    #[test]
    fn evicts_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::open(dir.path(), "bin", 250).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        cache.put("one", &[1; 100]).unwrap();
        File::options()
            .write(true)
            .open(cache.path_for("one"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        cache.put("two", &[2; 100]).unwrap();
        File::options()
            .write(true)
            .open(cache.path_for("two"))
            .unwrap()
            .set_modified(old - Duration::from_secs(60))
            .unwrap();
        // A hit makes "two" the most recently used; the next put must evict "one".
        assert!(cache.get("two").is_some());
        cache.put("three", &[3; 100]).unwrap();
        assert!(cache.get("one").is_none());
        assert!(cache.get("two").is_some());
        assert!(cache.get("three").is_some());
        // Reopening counts what is on disk.
        let reopened = DiskCache::open(dir.path(), "bin", 250).unwrap();
        assert!(*reopened.total.lock().unwrap() <= 250);
    }
}
