//! Debug files that arrive while the relay runs: [`DownloadedFiles`], the source every
//! [`super::SymbolStore`] consults after its configured ones, and the file handling a download
//! needs ([`unpack_cab`] for symstore's compressed files).
//!
//! The downloads themselves (HTTP, timeouts, negative caching) are the server's job, on async
//! actors; this module only indexes and unpacks files that are already on disk.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;
use std::sync::RwLock;

use super::sources::{FileIndex, ModuleRef, SymbolSource};
use super::DebugFile;

/// Debug files added at runtime (finished downloads), indexed by debug id and code id.
///
/// Thread-safe: the download actor adds and removes files while symbolication threads look
/// modules up. After adding files for a module, call [`super::SymbolStore::forget`] so a miss
/// remembered in memory is dropped.
pub struct DownloadedFiles {
    name: String,
    index: RwLock<FileIndex>,
}

impl fmt::Debug for DownloadedFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadedFiles")
            .field("name", &self.name)
            .field("files", &self.len())
            .finish()
    }
}

impl Default for DownloadedFiles {
    fn default() -> Self {
        Self::new("downloads")
    }
}

impl DownloadedFiles {
    /// An empty source called `name` in logs.
    pub fn new(name: impl Into<String>) -> Self {
        DownloadedFiles {
            name: name.into(),
            index: RwLock::new(FileIndex::default()),
        }
    }

    /// Adds objects identified with [`super::sources::identify`]; objects of a path that is
    /// already indexed are not added twice.
    pub fn add_files(&self, files: Vec<DebugFile>) {
        let mut index = self.index.write().unwrap();
        for file in files {
            if !index.files().contains(&file) {
                index.push(file);
            }
        }
    }

    /// Identifies the file at `path` and indexes its objects; returns how many it has (0 for a
    /// file that is no debug file, which is not indexed).
    #[cfg(test)]
    fn add_path(&self, path: &Path) -> usize {
        let files = super::sources::identify(path);
        let count = files.len();
        self.add_files(files);
        count
    }

    /// Whether objects of the file at `path` are indexed.
    #[cfg(test)]
    fn contains(&self, path: &Path) -> bool {
        self.index
            .read()
            .unwrap()
            .files()
            .iter()
            .any(|f| f.path == path)
    }

    /// Forgets the file at `path` (it was evicted from the cache); returns whether it was
    /// indexed.
    pub fn remove(&self, path: &Path) -> bool {
        self.index.write().unwrap().remove_path(path)
    }

    /// Number of indexed objects.
    pub fn len(&self) -> usize {
        self.index.read().unwrap().files().len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SymbolSource for DownloadedFiles {
    fn name(&self) -> &str {
        &self.name
    }

    fn candidates(&self, module: &ModuleRef) -> Vec<DebugFile> {
        self.index.read().unwrap().candidates(module)
    }
}

/// Whether `head` (the first bytes of a file) starts a Microsoft cabinet.
pub fn is_cab(head: &[u8]) -> bool {
    head.starts_with(b"MSCF")
}

/// Why [`unpack_cab`] failed.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// Reading the cabinet or writing the output failed, or the cabinet is corrupt.
    #[error("cannot unpack cabinet: {0}")]
    Io(#[from] std::io::Error),
    /// The cabinet holds no file.
    #[error("the cabinet is empty")]
    Empty,
    /// The unpacked file would be larger than allowed.
    #[error("the unpacked file is larger than {0} bytes")]
    TooLarge(u64),
}

/// The size the first (in symstore, only) file of the cabinet `src` says it unpacks to, so a
/// caller can reserve the space before unpacking.
pub fn unpacked_cab_size(src: &Path) -> Result<u64, UnpackError> {
    let cabinet = cab::Cabinet::new(BufReader::new(File::open(src)?))?;
    first_file(&cabinet).map(|(_, size)| size)
}

/// Unpacks the first (in symstore, only) file of the cabinet `src` into `dest`, writing at
/// most `max_bytes`: a cabinet whose file says or turns out to be larger is refused (rather
/// than cut short, which could leave a plausible but truncated debug file). Symstore's `_`
/// files (`crash.pd_`) are such cabinets, MSZIP or LZX compressed.
pub fn unpack_cab(src: &Path, dest: &Path, max_bytes: u64) -> Result<(), UnpackError> {
    let mut cabinet = cab::Cabinet::new(BufReader::new(File::open(src)?))?;
    let (name, size) = first_file(&cabinet)?;
    if size > max_bytes {
        return Err(UnpackError::TooLarge(max_bytes));
    }
    let mut reader = cabinet.read_file(&name)?.take(max_bytes.saturating_add(1));
    let mut out = std::io::BufWriter::new(File::create(dest)?);
    let written = std::io::copy(&mut reader, &mut out)?;
    if written > max_bytes {
        return Err(UnpackError::TooLarge(max_bytes));
    }
    out.flush()?;
    Ok(())
}

/// Name and unpacked size of the cabinet's first file.
fn first_file<R: Read + std::io::Seek>(
    cabinet: &cab::Cabinet<R>,
) -> Result<(String, u64), UnpackError> {
    cabinet
        .folder_entries()
        .flat_map(|folder| folder.file_entries())
        .map(|file| (file.name().to_owned(), u64::from(file.uncompressed_size())))
        .next()
        .ok_or(UnpackError::Empty)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::path::PathBuf;

    use super::*;

    fn xp_sym() -> PathBuf {
        crate::test_support::fixtures().join("native").join(
            "rust-minidump/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym",
        )
    }

    fn xp_module() -> ModuleRef {
        ModuleRef {
            code_file: r"c:\test_app.exe".into(),
            code_id: None,
            debug_file: Some("test_app.pdb".into()),
            debug_id: Some("5a9832e5-2872-41c1-838e-d98914e9b7ff-1".parse().unwrap()),
        }
    }

    #[test]
    fn downloaded_files_are_found_and_forgotten() {
        let downloads = DownloadedFiles::default();
        assert!(downloads.candidates(&xp_module()).is_empty());
        assert_eq!(downloads.add_path(&xp_sym()), 1);
        // Adding the same file again does not duplicate it.
        downloads.add_path(&xp_sym());
        assert_eq!(downloads.len(), 1);
        assert!(downloads.contains(&xp_sym()));
        let found = downloads.candidates(&xp_module());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, xp_sym());
        assert!(downloads.remove(&xp_sym()));
        assert!(!downloads.remove(&xp_sym()));
        assert!(downloads.candidates(&xp_module()).is_empty());
    }

    #[test]
    fn cabinets_unpack() {
        let data = std::fs::read(xp_sym()).unwrap();
        let mut builder = cab::CabinetBuilder::new();
        builder
            .add_folder(cab::CompressionType::MsZip)
            .add_file("test_app.sym");
        let mut writer = builder.build(Cursor::new(Vec::new())).unwrap();
        while let Some(mut file) = writer.next_file().unwrap() {
            file.write_all(&data).unwrap();
        }
        let packed = writer.finish().unwrap().into_inner();
        assert!(is_cab(&packed));

        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("test_app.sy_");
        std::fs::write(&src, &packed).unwrap();
        let dest = dir.path().join("test_app.sym");
        unpack_cab(&src, &dest, u64::MAX).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        assert_eq!(unpacked_cab_size(&src).unwrap(), data.len() as u64);

        assert!(matches!(
            unpack_cab(&src, &dest, 10),
            Err(UnpackError::TooLarge(10))
        ));
        std::fs::write(&src, b"MSCF but not really").unwrap();
        assert!(unpack_cab(&src, &dest, u64::MAX).is_err());
    }
}
