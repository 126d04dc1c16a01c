//! The spool's file I/O, behind [`Disk`] so tests can make any operation fail on demand, and
//! the disk reserve that keeps room for rotation and release records on a full disk.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What a write is for; lets a test fail only segment appends, or only release records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// A segment's records.
    Segment,
    /// A segment's release list.
    Releases,
    /// The reserve file.
    Reserve,
}

/// The file operations the spool performs after it has opened its directory.
pub trait Disk: Send + Sync + 'static {
    /// Creates (or opens) `path` for appending.
    fn create(&self, target: Target, path: &Path) -> io::Result<File>;
    /// Creates `dir` and its parents.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Writes all of `buf` at the end of `file`.
    fn write(&self, target: Target, file: &mut File, buf: &[u8]) -> io::Result<()>;
    /// Makes `file`'s data durable.
    fn sync(&self, target: Target, file: &File) -> io::Result<()>;
    /// Cuts `file` back to `len` bytes.
    fn set_len(&self, file: &File, len: u64) -> io::Result<()>;
    /// Bytes an unprivileged writer can still use on the filesystem holding `dir`.
    fn available(&self, dir: &Path) -> io::Result<u64>;
}

/// The real filesystem.
pub struct OsDisk;

impl Disk for OsDisk {
    fn create(&self, _: Target, path: &Path) -> io::Result<File> {
        OpenOptions::new().create(true).append(true).open(path)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn write(&self, _: Target, file: &mut File, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)
    }

    fn sync(&self, _: Target, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn available(&self, dir: &Path) -> io::Result<u64> {
        statvfs_available(dir)
    }
}

// The field types of `statvfs` differ between targets.
#[allow(clippy::unnecessary_cast)]
fn statvfs_available(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `stat` is a valid out-pointer for `statvfs`.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `statvfs` returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Why the spool cannot write: the `reason` label of `relay_spool_write_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// No space left on the device (or the user's disk quota is exhausted).
    NoSpace,
    /// The filesystem is read-only or the spool directory is not writable.
    ReadOnly,
    /// The spool directory or the active segment was deleted.
    Missing,
    /// The active segment was truncated or overwritten by something else.
    Damaged,
    /// Any other I/O error (`EIO` and the like).
    Io,
}

impl WriteFault {
    /// Classifies an I/O error.
    pub fn of(error: &io::Error) -> Self {
        match error.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => WriteFault::NoSpace,
            Some(libc::EROFS | libc::EACCES | libc::EPERM) => WriteFault::ReadOnly,
            Some(libc::ENOENT) => WriteFault::Missing,
            _ => WriteFault::Io,
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteFault::NoSpace => "no_space",
            WriteFault::ReadOnly => "read_only",
            WriteFault::Missing => "missing",
            WriteFault::Damaged => "damaged",
            WriteFault::Io => "io",
        }
    }
}

impl fmt::Display for WriteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes held back in `data_dir/spool/reserve`: given back when rotation or release records
/// hit `ENOSPC`, taken again before appends resume. 256 KiB is 32,768 release records, or
/// many new segment files.
pub const RESERVE_BYTES: u64 = 256 * 1024;

/// The reserve file; see [`RESERVE_BYTES`].
pub struct Reserve {
    path: PathBuf,
    held: bool,
}

impl Reserve {
    /// The reserve of the spool in `dir`; held if a complete one is left from an earlier run.
    pub fn new(dir: &Path) -> Self {
        let path = dir.join("reserve");
        let held = std::fs::metadata(&path).is_ok_and(|m| m.len() >= RESERVE_BYTES);
        Reserve { path, held }
    }

    /// Whether the reserve file is on disk.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Notices a reserve file deleted by something else (with the spool directory, say).
    pub fn refresh(&mut self) {
        self.held = std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= RESERVE_BYTES);
    }

    /// Writes the reserve file (real blocks, not a sparse file) unless it is held.
    pub fn take(&mut self, disk: &dyn Disk) -> io::Result<()> {
        if self.held {
            return Ok(());
        }
        let result = self.write_file(disk);
        if result.is_err() {
            // A partial reserve would only take space that appends could use.
            let _ = std::fs::remove_file(&self.path);
        }
        self.held = result.is_ok();
        result
    }

    fn write_file(&self, disk: &dyn Disk) -> io::Result<()> {
        let _ = std::fs::remove_file(&self.path);
        let mut file = disk.create(Target::Reserve, &self.path)?;
        let block = vec![0u8; 64 * 1024];
        let mut left = RESERVE_BYTES;
        while left > 0 {
            let n = left.min(block.len() as u64);
            disk.write(Target::Reserve, &mut file, &block[..n as usize])?;
            left -= n;
        }
        disk.sync(Target::Reserve, &file)
    }

    /// Deletes the reserve file, freeing its space for what needs it; true if it was held.
    pub fn give_back(&mut self) -> bool {
        if !self.held {
            return false;
        }
        self.held = false;
        match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, path = %self.path.display(), "spool: cannot delete the disk reserve");
                false
            }
        }
    }
}
