//! The files of the upload API on disk: chunks until their file is assembled, then the file.
//!
//! - Bounded: every byte written (chunks, assembled files) is reserved against
//!   `uploads.max_disk_bytes` first, and an assembled file may not pass
//!   `uploads.max_file_bytes`; over either, the request is refused and nothing is written.
//! - Never half-stored: files are written under `tmp/`, checked (SHA-1, content), synced and
//!   only then renamed into place; a crash leaves at most a `tmp/` file, removed at start.
//! - Idempotent: a file whose place is taken is answered as stored, without its chunks.
//! - Stale chunks (older than `uploads.chunk_ttl_secs`) are deleted by [`Storage::sweep`].

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use relay_core::config::UploadsConfig;
use relay_processing::uploads::{Chunk, FileHasher, CHUNK_SIZE};

/// Why a chunk or file was not stored.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Storing it would pass `uploads.max_disk_bytes`.
    #[error("upload storage is full: {needed} more bytes would pass uploads.max_disk_bytes ({limit} bytes, {used} in use)")]
    DiskFull {
        /// Bytes wanted.
        needed: u64,
        /// Bytes in use.
        used: u64,
        /// The bound.
        limit: u64,
    },
    /// The assembled file would pass `uploads.max_file_bytes`.
    #[error("the file is {size} bytes, over uploads.max_file_bytes ({limit} bytes)")]
    FileTooLarge {
        /// Its size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// The assembled bytes do not have the file's SHA-1.
    #[error(
        "the assembled file has SHA-1 {actual}, not {expected}: a chunk is corrupt or missing"
    )]
    ChecksumMismatch {
        /// The SHA-1 the client named.
        expected: String,
        /// The SHA-1 of the assembled bytes.
        actual: String,
    },
    /// The content is not what the endpoint stores.
    #[error("{0}")]
    Invalid(String),
    /// The disk failed.
    #[error("upload storage: {0}")]
    Io(#[from] io::Error),
}

/// What an assemble call did.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    /// The file was already stored.
    Existed,
    /// These chunks have not been uploaded yet.
    Missing(Vec<String>),
    /// The file was assembled and stored now.
    Stored,
}

/// The upload files under one root; see the module docs.
pub struct Storage {
    root: PathBuf,
    max_file_bytes: u64,
    max_disk_bytes: u64,
    chunk_ttl: Duration,
    used: AtomicU64,
    /// One assembly at a time: two calls for the same file must not both take its chunks.
    assembling: Mutex<()>,
}

impl Storage {
    /// Opens (creating) the root, removes leftovers of interrupted writes and measures what
    /// is stored.
    pub fn open(root: &Path, config: &UploadsConfig) -> io::Result<Self> {
        fs::create_dir_all(root.join("chunks"))?;
        let tmp = root.join("tmp");
        if tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        fs::create_dir_all(&tmp)?;
        fs::create_dir_all(root.join("projects"))?;
        Ok(Storage {
            used: AtomicU64::new(tree_bytes(root)),
            root: root.to_owned(),
            max_file_bytes: config.max_file_bytes,
            max_disk_bytes: config.max_disk_bytes,
            chunk_ttl: Duration::from_secs(config.chunk_ttl_secs),
            assembling: Mutex::new(()),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How old a chunk gets before it is swept (`uploads.chunk_ttl_secs`).
    pub fn chunk_ttl(&self) -> Duration {
        self.chunk_ttl
    }

    /// The largest file assembled (`uploads.max_file_bytes`).
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Chunks a file may have at most, from `uploads.max_file_bytes`.
    pub fn max_chunks_per_file(&self) -> usize {
        self.max_file_bytes.div_ceil(CHUNK_SIZE as u64) as usize
    }

    /// Bytes stored (chunks and files).
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn chunk_path(&self, checksum: &str) -> PathBuf {
        self.root.join("chunks").join(checksum)
    }

    /// Stores checked chunks (ones already present are kept as they are). All of the
    /// request's new bytes are reserved first, so a refused request writes nothing.
    pub fn save_chunks(&self, chunks: &[Chunk]) -> Result<(), StorageError> {
        let new: Vec<&Chunk> = chunks
            .iter()
            .filter(|c| !self.chunk_path(&c.checksum).exists())
            .collect();
        let bytes = new.iter().map(|c| c.data.len() as u64).sum();
        self.reserve(bytes)?;
        for (i, chunk) in new.iter().enumerate() {
            if let Err(error) = self.write_file(&self.chunk_path(&chunk.checksum), &chunk.data) {
                let unwritten: u64 = new[i..].iter().map(|c| c.data.len() as u64).sum();
                self.release(unwritten);
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// Which of `chunks` are not stored.
    pub fn missing_chunks(&self, chunks: &[String]) -> Vec<String> {
        let mut missing: Vec<String> = chunks
            .iter()
            .filter(|c| !self.chunk_path(c).exists())
            .cloned()
            .collect();
        missing.dedup();
        missing
    }

    /// Assembles `chunks` into the file `checksum` at `dests` (one copy per path), checked by
    /// `check` before it is put in place. Used chunks are deleted once the file is stored, and
    /// also when it is refused (they cannot make a valid file).
    pub fn assemble(
        &self,
        checksum: &str,
        chunks: &[String],
        dests: &[PathBuf],
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Assembled, StorageError> {
        let _one_at_a_time = self.assembling.lock().unwrap_or_else(|e| e.into_inner());
        if !dests.is_empty() && dests.iter().all(|d| d.exists()) {
            return Ok(Assembled::Existed);
        }
        let missing = self.missing_chunks(chunks);
        if !missing.is_empty() {
            return Ok(Assembled::Missing(missing));
        }
        let result = self.assemble_present(checksum, chunks, dests, check);
        self.delete_chunks(chunks);
        result.map(|()| Assembled::Stored)
    }

    fn assemble_present(
        &self,
        checksum: &str,
        chunks: &[String],
        dests: &[PathBuf],
        check: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<(), StorageError> {
        let mut size = 0;
        for chunk in chunks {
            size += fs::metadata(self.chunk_path(chunk))?.len();
        }
        if size > self.max_file_bytes {
            return Err(StorageError::FileTooLarge {
                size,
                limit: self.max_file_bytes,
            });
        }
        let copies = dests.iter().filter(|d| !d.exists()).count() as u64;
        self.reserve(size * copies)?;
        let tmp = self.temp_path();
        let written = self.concatenate(&tmp, chunks, checksum).and_then(|()| {
            check(&tmp).map_err(StorageError::Invalid)?;
            self.put_in_place(&tmp, dests)
        });
        let _ = fs::remove_file(&tmp);
        if written.is_err() {
            self.release(size * copies);
        }
        written
    }

    /// Writes the chunks into `tmp` in order, checking the whole file's SHA-1.
    fn concatenate(
        &self,
        tmp: &Path,
        chunks: &[String],
        checksum: &str,
    ) -> Result<(), StorageError> {
        let mut out = File::create(tmp)?;
        let mut hasher = FileHasher::default();
        let mut buffer = Vec::new();
        for chunk in chunks {
            buffer.clear();
            File::open(self.chunk_path(chunk))?.read_to_end(&mut buffer)?;
            hasher.update(&buffer);
            out.write_all(&buffer)?;
        }
        out.sync_all()?;
        let actual = hasher.finish();
        if actual != checksum {
            return Err(StorageError::ChecksumMismatch {
                expected: checksum.to_owned(),
                actual,
            });
        }
        Ok(())
    }

    /// Copies `tmp` to every destination not yet there: to a temporary name beside it, then
    /// renamed, so a destination is either absent or whole.
    fn put_in_place(&self, tmp: &Path, dests: &[PathBuf]) -> Result<(), StorageError> {
        for dest in dests.iter().filter(|d| !d.exists()) {
            let parent = dest.parent().unwrap_or(&self.root);
            fs::create_dir_all(parent)?;
            let staging = self.temp_path();
            fs::copy(tmp, &staging)?;
            File::open(&staging)?.sync_all()?;
            fs::rename(&staging, dest)?;
        }
        Ok(())
    }

    /// Writes a small file (a chunk, a bundle's description) through `tmp/`.
    pub fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp = self.temp_path();
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(data)?;
            file.sync_all()?;
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn temp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    fn delete_chunks(&self, chunks: &[String]) {
        for chunk in chunks {
            let path = self.chunk_path(chunk);
            if let Ok(meta) = fs::metadata(&path) {
                if fs::remove_file(&path).is_ok() {
                    self.release(meta.len());
                }
            }
        }
    }

    /// Deletes chunks older than `uploads.chunk_ttl_secs`; returns how many.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = fs::read_dir(self.root.join("chunks")) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut deleted = 0;
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|at| now.duration_since(at).ok())
                .unwrap_or_default();
            if age >= self.chunk_ttl && fs::remove_file(entry.path()).is_ok() {
                self.release(meta.len());
                deleted += 1;
            }
        }
        deleted
    }

    fn reserve(&self, bytes: u64) -> Result<(), StorageError> {
        let limit = self.max_disk_bytes;
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes).filter(|total| *total <= limit)
            })
            .map(|_| ())
            .map_err(|used| StorageError::DiskFull {
                needed: bytes,
                used,
                limit,
            })
    }

    fn release(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// Bytes of the files below `root`.
fn tree_bytes(root: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(root) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => tree_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use relay_processing::uploads::sha1_hex;

    use super::*;

    fn chunk(data: &[u8]) -> Chunk {
        Chunk {
            checksum: sha1_hex(data),
            data: data.to_vec(),
        }
    }

    fn storage(dir: &Path, max_file_bytes: u64, max_disk_bytes: u64) -> Storage {
        let config = UploadsConfig {
            max_file_bytes,
            max_disk_bytes,
            chunk_ttl_secs: 3600,
        };
        Storage::open(dir, &config).unwrap()
    }

    fn files_in(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            if entry.path().is_dir() {
                out.extend(files_in(&entry.path()));
            } else {
                out.push(entry.path());
            }
        }
        out
    }

    #[test]
    fn chunks_assemble_once_into_a_checked_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path(), 1000, 10_000);
        let (a, b) = (chunk(b"hello "), chunk(b"world"));
        let file = sha1_hex(b"hello world");
        let names = vec![a.checksum.clone(), b.checksum.clone()];
        let dest = dir.path().join("projects/1/debug-files/x/file");
        let dests = [dest.clone()];
        assert_eq!(
            storage.assemble(&file, &names, &dests, |_| Ok(())).unwrap(),
            Assembled::Missing(names.clone())
        );
        storage.save_chunks(&[a, b]).unwrap();
        assert_eq!(storage.used_bytes(), 11);
        assert_eq!(
            storage.assemble(&file, &names, &dests, |_| Ok(())).unwrap(),
            Assembled::Stored
        );
        assert_eq!(fs::read(&dest).unwrap(), b"hello world");
        // the chunks are gone, the file counts
        assert_eq!(storage.used_bytes(), 11);
        assert_eq!(storage.missing_chunks(&names), names);
        assert_eq!(
            storage.assemble(&file, &names, &dests, |_| Ok(())).unwrap(),
            Assembled::Existed
        );
        // a restart measures the same
        assert_eq!(self::storage(dir.path(), 1000, 10_000).used_bytes(), 11);
    }

    #[test]
    fn refusals_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = storage(dir.path(), 8, 20);
        let projects = dir.path().join("projects");
        let dest = [projects.join("1/f")];

        // over max_file_bytes
        let big = chunk(b"0123456789");
        storage.save_chunks(std::slice::from_ref(&big)).unwrap();
        let error = storage
            .assemble(
                &sha1_hex(b"0123456789"),
                std::slice::from_ref(&big.checksum),
                &dest,
                |_| Ok(()),
            )
            .unwrap_err();
        assert!(
            matches!(error, StorageError::FileTooLarge { size: 10, limit: 8 }),
            "{error}"
        );
        assert!(files_in(&projects).is_empty());
        assert_eq!(storage.used_bytes(), 0);

        // a wrong whole-file SHA-1
        let small = chunk(b"abc");
        storage.save_chunks(std::slice::from_ref(&small)).unwrap();
        let error = storage
            .assemble(
                &sha1_hex(b"abd"),
                std::slice::from_ref(&small.checksum),
                &dest,
                |_| Ok(()),
            )
            .unwrap_err();
        assert!(
            matches!(error, StorageError::ChecksumMismatch { .. }),
            "{error}"
        );
        assert!(files_in(&projects).is_empty());

        // content refused by the check
        storage.save_chunks(std::slice::from_ref(&small)).unwrap();
        let error = storage
            .assemble(
                &small.checksum,
                std::slice::from_ref(&small.checksum),
                &dest,
                |_| Err("not a debug file".into()),
            )
            .unwrap_err();
        assert_eq!(error.to_string(), "not a debug file");
        assert!(files_in(&projects).is_empty());
        assert!(files_in(&dir.path().join("tmp")).is_empty());
        assert_eq!(storage.used_bytes(), 0);

        // past max_disk_bytes: the whole request is refused
        let error = storage
            .save_chunks(&[chunk(&[1; 15]), chunk(&[2; 15])])
            .unwrap_err();
        assert!(matches!(error, StorageError::DiskFull { .. }), "{error}");
        assert!(files_in(&dir.path().join("chunks")).is_empty());
    }

    #[test]
    fn stale_chunks_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let config = UploadsConfig {
            chunk_ttl_secs: 1,
            ..UploadsConfig::default()
        };
        let storage = Storage::open(dir.path(), &config).unwrap();
        storage.save_chunks(&[chunk(b"old")]).unwrap();
        let path = storage.chunk_path(&sha1_hex(b"old"));
        let old = SystemTime::now() - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        storage.save_chunks(&[chunk(b"new")]).unwrap();
        assert_eq!(storage.sweep(), 1);
        assert!(!path.exists());
        assert_eq!(
            storage.missing_chunks(&[sha1_hex(b"new")]),
            Vec::<String>::new()
        );
        assert_eq!(storage.used_bytes(), 3);
    }
}
