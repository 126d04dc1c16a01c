//! Cache files on disk: written atomically, renewed when read, named by a stable hash, and
//! evicted oldest first when the cache directories grow past their bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Writes through a temporary file and a rename, so readers never see half a cache file.
/// A failing cache write only costs a rebuild next time; returns whether the file was written.
/// No fsync: a cache needs no durability (readers detect a file a crash cut short and rebuild
/// it), and a sync costs milliseconds per file.
pub(super) fn write_atomically(path: &Path, parts: &[&[u8]]) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let tmp = dir.join(format!(
            ".tmp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = std::fs::File::create(&tmp)?;
        for part in parts {
            f.write_all(part)?;
        }
        std::fs::rename(&tmp, path)
    });
    match result {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot write symbol cache file");
            false
        }
    }
}

/// Renews a cache file's modification time, so size-bound eviction keeps it longer.
pub(super) fn touch(path: &Path) {
    let renewed = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(error) = renewed {
        tracing::debug!(path = %path.display(), %error, "cannot renew cache file time");
    }
}

/// Temporary files younger than this are left alone by [`evict_to_size`]: a writer may still
/// be on them.
const TMP_GRACE: Duration = Duration::from_secs(3600);

/// How deep [`evict_to_size`] descends below its root.
const MAX_EVICT_DEPTH: usize = 32;

/// What [`evict_to_size`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Bytes of all files below the directory before eviction.
    pub bytes_before: u64,
    /// Bytes left after eviction.
    pub bytes_after: u64,
    /// Files deleted, oldest first.
    pub removed: Vec<PathBuf>,
}

/// Bounds the size of cache directories: when the files below the `roots` add up to more
/// than `max_bytes`, deletes the oldest (by modification time) until at most `target_bytes`
/// are left, and removes directories that became empty (not the roots themselves). Missing
/// roots count as empty.
///
/// For the symbol cache: `<cache_dir>/symcache`, `cfi` and the download cache. Blocking file-system work: call it off the
/// async arbiters' hot path. Files that cannot be deleted are skipped; symlinks are not followed.
/// Deleting a file that a reader has memory-mapped is safe: the mapping stays valid.
pub fn evict_to_size(
    roots: &[PathBuf],
    max_bytes: u64,
    target_bytes: u64,
) -> std::io::Result<Eviction> {
    let mut files = Vec::new();
    for root in roots {
        match collect_files(root, root, 0, &mut files) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            result => result?,
        }
    }
    let bytes_before: u64 = files.iter().map(|(_, size, _, _)| size).sum();
    let mut eviction = Eviction {
        bytes_before,
        bytes_after: bytes_before,
        removed: Vec::new(),
    };
    if bytes_before <= max_bytes {
        return Ok(eviction);
    }
    files.sort();
    let now = SystemTime::now();
    for (mtime, size, path, root) in files {
        if eviction.bytes_after <= target_bytes {
            break;
        }
        let is_tmp = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
        if is_tmp && now.duration_since(mtime).unwrap_or_default() < TMP_GRACE {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            eviction.bytes_after -= size;
            let mut parent = path.parent();
            while let Some(p) = parent.filter(|p| *p != root && p.starts_with(root)) {
                // Fails (and stops) at the first directory that still has entries.
                if std::fs::remove_dir(p).is_err() {
                    break;
                }
                parent = p.parent();
            }
            eviction.removed.push(path);
        }
    }
    Ok(eviction)
}

/// (modification time, size, path, root) of the files below `dir`.
type CacheFile<'a> = (SystemTime, u64, PathBuf, &'a Path);

fn collect_files<'a>(
    root: &'a Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<CacheFile<'a>>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        // `DirEntry::metadata` does not follow symlinks.
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if depth < MAX_EVICT_DEPTH {
                let _ = collect_files(root, &entry.path(), depth + 1, out);
            }
        } else if meta.is_file() {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push((mtime, meta.len(), entry.path(), root));
        }
    }
    Ok(())
}

/// FNV-1a, 64 bit: a hash that stays the same across Rust releases, for cache file and
/// directory names.
pub struct Fnv64(pub u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Adds `bytes` to the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_deletes_oldest_files_down_to_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let old = SystemTime::now() - Duration::from_secs(7200);
        let mut paths = Vec::new();
        for (i, sub) in ["symcache/A", "cfi/B", "downloads/s/x/ID", "symcache/A"]
            .iter()
            .enumerate()
        {
            let path = root.join(sub).join(format!("f{i}"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(old + Duration::from_secs(i as u64 * 60))
                .unwrap();
            paths.push(path);
        }
        // A young temporary file is never deleted.
        let tmp = root.join("symcache/A/.tmp-1-x");
        std::fs::write(&tmp, vec![0u8; 50]).unwrap();
        // Under the bound: nothing happens.
        let roots = [
            root.join("symcache"),
            root.join("cfi"),
            root.join("downloads"),
        ];
        // Files outside the roots do not count and are kept.
        std::fs::create_dir_all(root.join("sourcemaps")).unwrap();
        std::fs::write(root.join("sourcemaps/other"), vec![0u8; 1000]).unwrap();
        let none = evict_to_size(&roots, 450, 200).unwrap();
        assert_eq!((none.bytes_before, none.removed.len()), (450, 0));

        let eviction = evict_to_size(&roots, 400, 260).unwrap();
        assert_eq!(eviction.bytes_before, 450);
        assert_eq!(eviction.removed, paths[..2]);
        assert_eq!(eviction.bytes_after, 250);
        assert!(tmp.exists() && paths[2].exists() && paths[3].exists());
        // The emptied directory went with its last file; the roots stay.
        assert!(!root.join("cfi/B").exists());
        assert!(root.join("cfi").exists());
        assert!(root.join("symcache/A").exists());
        assert!(root.join("sourcemaps/other").exists());
        assert_eq!(
            evict_to_size(&[root.join("missing")], 0, 0).unwrap(),
            Eviction::default()
        );
    }

    #[test]
    fn cache_file_names_are_stable() {
        let mut hash = Fnv64::default();
        hash.write(b"a");
        assert_eq!(hash.0, 0xaf63_dc4c_8601_ec8c);
    }
}
