//! The [`SymbolStore`]: sources in order, plus the derived caches (SymCache and indexed
//! Breakpad text) on disk and the modules loaded in memory.
//!
//! For each module the richest debug file wins for symbolication (line info over symbol tables,
//! native formats over Breakpad), and the best file with unwind information provides CFI.
//! Derived files are built once per debug file and kept under the cache directory:
//!
//! ```text
//! <cache_dir>/symcache/<DEBUG_ID>/<key>.symcache   symbolic SymCache (native debug files'
//!                                                  symbols)
//! <cache_dir>/cfi/<DEBUG_ID>/<key>.cfi             an address index of Breakpad text (see
//!                                                  `cfi/`): a native file's CFI text and
//!                                                  its index, or the index of a Breakpad
//!                                                  file, whose text stays in the `.sym`
//! ```
//!
//! `key` hashes the debug file's path, size, modification time, object index and the format
//! version, so a replaced debug file or a new SymCache version gets a fresh entry. Reading a
//! cache file back renews its modification time, so [`evict_to_size`], which bounds the whole
//! cache directory (downloads included), deletes the least recently used derived files first.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use minidump_unwind::SymbolFile;
use symbolic::cfi::AsciiCfiWriter;
use symbolic::common::{ByteView, CodeId, DebugId};
use symbolic::debuginfo::{Archive, FileFormat, Object};
use symbolic::symcache::{SymCache, SymCacheConverter, SYMCACHE_VERSION};

use super::cfi::{self, has_stack_records, Cfi, Index, TextAt};
use super::downloads::DownloadedFiles;
use super::sources::{DebugFile, ModuleRef, SymbolSource};

mod disk;
mod loaded;

pub use disk::{evict_to_size, Eviction, Fnv64};
use disk::{touch, write_atomically};
use loaded::Indexed;
pub(crate) use loaded::{LoadError, Loaded, ModuleSymbols, SymCacheBytes, Symbols};

/// Version of our indexed cache files (`cfi/`); bump when the extraction or the file layout
/// changes. Version 3 added the address index and a binary footer (`cfi/format.rs`); version 4 keeps
/// Breakpad files whole, with `FILE` and `INLINE_ORIGIN` tables, for symbol lookups; version 5
/// leaves a Breakpad file's text in the `.sym` file instead of copying it.
const CFI_CACHE_VERSION: u32 = 5;

/// How many modules [`SymbolStore`] keeps loaded in memory (the oldest are dropped first).
const MAX_LOADED_MODULES: usize = 256;

/// Counters of the store's work, for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// SymCaches built from a (native) debug file.
    pub symcaches_built: u64,
    /// SymCaches read back from the cache directory.
    pub symcaches_from_disk: u64,
    /// Indexed files built from a debug file: a native file's CFI, or a Breakpad file's
    /// symbols and CFI (one file for both).
    pub cfi_built: u64,
    /// Indexed files read back from the cache directory.
    pub cfi_from_disk: u64,
    /// Module lookups answered from memory.
    pub memory_hits: u64,
}

#[derive(Default)]
struct Counters {
    symcaches_built: AtomicU64,
    symcaches_from_disk: AtomicU64,
    cfi_built: AtomicU64,
    cfi_from_disk: AtomicU64,
    memory_hits: AtomicU64,
}

/// Debug files for native symbolication: ordered sources and the derived-file caches.
///
/// Shared by all symbolication threads (`Sync`); loading happens outside the lock, so two
/// threads may build the same SymCache at once, and the last rename wins with equal content.
pub struct SymbolStore {
    sources: Vec<Box<dyn SymbolSource>>,
    downloads: DownloadedFiles,
    uploads: DownloadedFiles,
    cache_dir: Option<PathBuf>,
    loaded: Mutex<LoadedModules>,
    counters: Counters,
}

impl fmt::Debug for SymbolStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymbolStore")
            .field("sources", &self.sources)
            .field("downloads", &self.downloads)
            .field("uploads", &self.uploads)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

#[derive(Default)]
struct LoadedModules {
    map: HashMap<ModuleRef, Arc<ModuleSymbols>>,
    order: VecDeque<ModuleRef>,
}

impl SymbolStore {
    /// A store over `sources` (tried in order; the richest file among all of them wins, the
    /// earlier source on a tie) with derived files cached under `cache_dir`, or only in memory
    /// when it is `None`. Files added at runtime to [`SymbolStore::downloads`] and then to
    /// [`SymbolStore::uploads`] come last.
    pub fn new(sources: Vec<Box<dyn SymbolSource>>, cache_dir: Option<PathBuf>) -> Self {
        SymbolStore {
            sources,
            downloads: DownloadedFiles::default(),
            uploads: DownloadedFiles::new("uploads"),
            cache_dir,
            loaded: Mutex::new(LoadedModules::default()),
            counters: Counters::default(),
        }
    }

    /// A store without any source: every module ends up `missing`.
    pub fn empty() -> Self {
        Self::new(Vec::new(), None)
    }

    /// The configured sources, in order.
    pub fn sources(&self) -> &[Box<dyn SymbolSource>] {
        &self.sources
    }

    /// The source of files added while running (downloads), consulted after [`Self::sources`].
    /// After adding files for a module, call [`Self::forget`] for it.
    pub fn downloads(&self) -> &DownloadedFiles {
        &self.downloads
    }

    /// The debug files uploaded to the project (the upload API), consulted after the
    /// downloads. After adding files, call [`Self::forget_ids`] for their ids.
    pub fn uploads(&self) -> &DownloadedFiles {
        &self.uploads
    }

    /// Drops what is loaded in memory for every module with this debug id or code id,
    /// including remembered misses: call it after a debug file with these ids was added.
    pub fn forget_ids(&self, debug_id: Option<DebugId>, code_id: Option<&CodeId>) {
        let matches = |module: &ModuleRef| {
            (debug_id.is_some() && module.debug_id == debug_id)
                || (code_id.is_some() && module.code_id.as_ref() == code_id)
        };
        let mut cache = self.loaded.lock().unwrap();
        cache.map.retain(|module, _| !matches(module));
        cache.order.retain(|module| !matches(module));
    }

    /// Where derived files are cached, if anywhere.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache_dir.as_deref()
    }

    /// What the store has done so far.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            symcaches_built: c.symcaches_built.load(Ordering::Relaxed),
            symcaches_from_disk: c.symcaches_from_disk.load(Ordering::Relaxed),
            cfi_built: c.cfi_built.load(Ordering::Relaxed),
            cfi_from_disk: c.cfi_from_disk.load(Ordering::Relaxed),
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
        }
    }

    /// Drops what is loaded in memory for `module`, including a remembered miss: call it after a
    /// source gained files for the module (a finished download).
    pub fn forget(&self, module: &ModuleRef) {
        let mut cache = self.loaded.lock().unwrap();
        if cache.map.remove(module).is_some() {
            cache.order.retain(|m| m != module);
        }
    }

    /// All debug files the sources offer for `module`, best source first; the downloads
    /// source has index `sources().len()`, the uploads one the next.
    pub fn candidates(&self, module: &ModuleRef) -> Vec<(usize, DebugFile)> {
        let mut out = Vec::new();
        let sources = self.sources.iter().map(|s| s.as_ref()).chain([
            &self.downloads as &dyn SymbolSource,
            &self.uploads as &dyn SymbolSource,
        ]);
        for (index, source) in sources.enumerate() {
            for file in source.candidates(module) {
                if !out.iter().any(|(_, f): &(usize, DebugFile)| *f == file) {
                    out.push((index, file));
                }
            }
        }
        out
    }

    /// Loads symbols and CFI for a module; past the deadline nothing new is loaded and the
    /// module is reported as `timeout`.
    pub(crate) fn load(&self, module: &ModuleRef, deadline: Option<Instant>) -> Arc<ModuleSymbols> {
        if let Some(found) = self.loaded.lock().unwrap().map.get(module) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return found.clone();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Arc::new(ModuleSymbols::timed_out());
        }
        let loaded = Arc::new(self.load_uncached(module));
        let mut cache = self.loaded.lock().unwrap();
        if cache.map.insert(module.clone(), loaded.clone()).is_none() {
            cache.order.push_back(module.clone());
        }
        while cache.order.len() > MAX_LOADED_MODULES {
            if let Some(old) = cache.order.pop_front() {
                cache.map.remove(&old);
            }
        }
        loaded
    }

    fn load_uncached(&self, module: &ModuleRef) -> ModuleSymbols {
        let candidates = self.candidates(module);

        let debug = ranked(&candidates, DebugFile::debug_rank);
        let mut symbols = Loaded::missing();
        // A Breakpad debug file serves symbols and unwinding from one indexed cache file: when
        // it is also the best unwind file, it is loaded once (`None`: it failed to load).
        let mut breakpad: Option<(&DebugFile, Option<Indexed>)> = None;
        for file in debug {
            let loaded = if file.format == FileFormat::Breakpad {
                let indexed = self.indexed_for(file, true).and_then(|indexed| {
                    // Never `None` when asked for symbols.
                    indexed.ok_or_else(|| LoadError::Cfi("no indexed text".into()))
                });
                breakpad = Some((file, indexed.as_ref().ok().cloned()));
                indexed.map(|indexed| Symbols::Breakpad(indexed.cfi))
            } else {
                self.symcache_for(file).map(Symbols::SymCache)
            };
            match loaded {
                Ok(data) => {
                    symbols = Loaded::found(file.clone(), data);
                    break;
                }
                Err(error) => {
                    tracing::debug!(path = %file.path.display(), %error, "cannot load symbols");
                    symbols = Loaded::malformed(file.clone());
                }
            }
        }

        let unwind = ranked(&candidates, DebugFile::unwind_rank);
        let mut cfi = Loaded::missing();
        for file in unwind {
            let loaded = match &breakpad {
                Some((same, Some(indexed))) if *same == file => {
                    Ok(indexed.has_stack.then(|| indexed.cfi.clone()))
                }
                Some((same, None)) if *same == file => {
                    Err(LoadError::Cfi("the debug file failed to load".into()))
                }
                _ => self.cfi_for(file),
            };
            match loaded {
                Ok(Some(data)) => {
                    cfi = Loaded::found(file.clone(), data);
                    break;
                }
                // Unwind info that yields no usable rows: try the next file.
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(path = %file.path.display(), %error, "cannot extract cfi");
                    cfi = Loaded::malformed(file.clone());
                }
            }
        }
        ModuleSymbols { symbols, cfi }
    }

    fn symcache_for(&self, file: &DebugFile) -> Result<SymCacheBytes, LoadError> {
        let cache_path = self.cache_path(file, "symcache", SYMCACHE_VERSION, "symcache");
        if let Some(path) = &cache_path {
            if let Ok(view) = ByteView::open(path) {
                if SymCache::parse(&view).is_ok_and(|c| c.is_latest()) {
                    touch(path);
                    self.counters
                        .symcaches_from_disk
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(SymCacheBytes(view));
                }
            }
        }
        let view = ByteView::open(&file.path)?;
        let archive = Archive::parse(&view)?;
        let object = archive
            .object_by_index(file.object_index)?
            .ok_or(LoadError::ObjectGone)?;
        let mut converter = SymCacheConverter::new();
        converter.process_object(&object)?;
        let mut buffer = Vec::new();
        converter.serialize(&mut buffer)?;
        SymCache::parse(&buffer)?;
        self.counters
            .symcaches_built
            .fetch_add(1, Ordering::Relaxed);
        // Map the written file rather than keep the buffer on the heap.
        if let Some(path) = &cache_path {
            if write_atomically(path, &[&buffer]) {
                if let Ok(view) = ByteView::open(path) {
                    return Ok(SymCacheBytes(view));
                }
            }
        }
        Ok(SymCacheBytes(ByteView::from_vec(buffer)))
    }

    /// CFI for the walker from `file`; `None` when it has no `STACK` records.
    fn cfi_for(&self, file: &DebugFile) -> Result<Option<Arc<Cfi>>, LoadError> {
        let indexed = self.indexed_for(file, false)?;
        Ok(indexed.filter(|i| i.has_stack).map(|i| i.cfi))
    }

    /// The indexed Breakpad text of `file` (`cfi/`), read back from the cache directory or
    /// built and written there. `None` when the text has no `STACK` records and
    /// `for_symbols` is false: it is then not parsed at all.
    ///
    /// Building checks the text as it indexes it; there is no full parse to cross-check the
    /// index (that parse took longer than the rest of a cold run): the differential tests in
    /// `cfi/tests.rs` and `provider.rs` compare lookups with breakpad-symbols' full parse instead.
    /// Text the index refuses is parsed whole, and is malformed if that fails too.
    fn indexed_for(
        &self,
        file: &DebugFile,
        for_symbols: bool,
    ) -> Result<Option<Indexed>, LoadError> {
        let cache_path = self.cache_path(file, "cfi", CFI_CACHE_VERSION, "cfi");
        // A file cut short, of an older version or corrupt fails the checks and is rebuilt.
        let cached = cache_path
            .as_deref()
            .and_then(|p| ByteView::open(p).ok())
            .and_then(|data| cfi::read_cache_file(data, || ByteView::open(&file.path).ok()));
        if let Some(cached) = cached {
            if let Some(path) = &cache_path {
                touch(path);
            }
            self.counters.cfi_from_disk.fetch_add(1, Ordering::Relaxed);
            let has_stack = cached.has_stack();
            if !has_stack && !for_symbols {
                return Ok(None);
            }
            let cfi = cached.into_cfi().map_err(LoadError::Cfi)?;
            return Ok(Some(Indexed::new(cfi, has_stack)));
        }

        let view = ByteView::open(&file.path)?;
        let text = indexed_text(file, &view)?;
        self.counters.cfi_built.fetch_add(1, Ordering::Relaxed);
        let index = Index::build(&text);
        let has_stack = index
            .as_ref()
            .map_or_else(|| has_stack_records(&text), Index::has_stack);
        let text_len = text.len();
        // A Breakpad file indexed as it is stays where it is: the cache file holds only the
        // index (no copy of a file that can be hundreds of megabytes).
        let at = match &text {
            Cow::Borrowed(_) => TextAt::DebugFile,
            Cow::Owned(_) => TextAt::CacheFile,
        };
        let written = cache_path.filter(|path| {
            let [index, footer] = cfi::cache_file_parts(&text, index.as_ref(), at);
            match at {
                TextAt::CacheFile => write_atomically(path, &[&text, &index, &footer]),
                TextAt::DebugFile => write_atomically(path, &[&index, &footer]),
            }
        });
        if !has_stack && !for_symbols {
            return Ok(None);
        }
        let Some(index) = index else {
            let symbols =
                SymbolFile::from_bytes(&text).map_err(|e| LoadError::Cfi(e.to_string()))?;
            return Ok(Some(Indexed::new(Cfi::Parsed(symbols), has_stack)));
        };
        let cfi = match text {
            Cow::Borrowed(_) => Cfi::indexed(view, text_len, index),
            Cow::Owned(text) => {
                // Map the written file rather than keep the text on the heap.
                let data = written
                    .and_then(|path| ByteView::open(path).ok())
                    .filter(|data| data.len() > text_len)
                    .unwrap_or_else(|| ByteView::from_vec(text));
                Cfi::indexed(data, text_len, index)
            }
        };
        Ok(Some(Indexed::new(cfi, has_stack)))
    }

    fn cache_path(&self, file: &DebugFile, kind: &str, version: u32, ext: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let meta = std::fs::metadata(&file.path).ok()?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let mut hash = Fnv64::default();
        hash.write(file.path.as_os_str().as_encoded_bytes());
        hash.write(&meta.len().to_le_bytes());
        hash.write(&mtime.to_le_bytes());
        hash.write(&(file.object_index as u64).to_le_bytes());
        hash.write(&version.to_le_bytes());
        let name = format!("{:016x}.{ext}", hash.0);
        Some(
            dir.join(kind)
                .join(file.debug_id.breakpad().to_string())
                .join(name),
        )
    }
}

/// The usable candidates, best first: by `rank` (higher first), then the earlier source, then
/// the larger file.
fn ranked(
    candidates: &[(usize, DebugFile)],
    rank: fn(&DebugFile) -> Option<u8>,
) -> Vec<&DebugFile> {
    let mut usable = candidates
        .iter()
        .filter_map(|(source, file)| rank(file).map(|r| (r, *source, file)))
        .collect::<Vec<_>>();
    usable.sort_by(|a, b| {
        (b.0.cmp(&a.0))
            .then(a.1.cmp(&b.1))
            .then(b.2.size.cmp(&a.2.size))
    });
    usable.into_iter().map(|(_, _, file)| file).collect()
}

/// The Breakpad text to index for a debug file (`view` is its content).
///
/// A Breakpad file is kept whole: its `FUNC` records with their line and `INLINE` records,
/// `FILE`, `INLINE_ORIGIN` and `PUBLIC` records answer symbol lookups, its `STACK` records
/// unwinding. A final newline is added when missing (the parser ignores a last line without
/// one). Native files go through symbolic-cfi (ELF/Mach-O `.eh_frame`/`.debug_frame`,
/// compact unwind, PE unwind info, PDB frame data); their symbols come from a SymCache.
pub(crate) fn indexed_text<'a>(
    file: &DebugFile,
    view: &'a ByteView<'_>,
) -> Result<Cow<'a, [u8]>, LoadError> {
    if file.format == FileFormat::Breakpad {
        let data: &[u8] = view;
        return Ok(match data.last() {
            Some(b'\n') | None => Cow::Borrowed(data),
            Some(_) => Cow::Owned([data, b"\n"].concat()),
        });
    }
    let archive = Archive::parse(view)?;
    let object: Object<'_> = archive
        .object_by_index(file.object_index)?
        .ok_or(LoadError::ObjectGone)?;
    AsciiCfiWriter::<Vec<u8>>::transform(&object)
        .map(Cow::Owned)
        .map_err(|e| LoadError::Cfi(e.to_string()))
}

#[cfg(test)]
mod tests {
    use symbolic::common::{Arch, DebugId};
    use symbolic::debuginfo::ObjectKind;

    use super::*;
    use crate::symbolicate::Features;

    fn file(name: &str, format: FileFormat, kind: ObjectKind, features: Features) -> DebugFile {
        DebugFile {
            path: PathBuf::from(name),
            size: 100,
            object_index: 0,
            format,
            kind,
            arch: Arch::Amd64,
            debug_id: DebugId::default(),
            code_id: None,
            features,
        }
    }

    const DEBUG: Features = Features {
        has_debug_info: true,
        has_symbols: true,
        has_unwind_info: false,
    };
    const SYMBOLS_AND_CFI: Features = Features {
        has_debug_info: false,
        has_symbols: true,
        has_unwind_info: true,
    };

    #[test]
    fn store_is_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SymbolStore>();
    }

    #[test]
    fn richest_file_wins() {
        let candidates = vec![
            (
                0,
                file(
                    "publics.sym",
                    FileFormat::Breakpad,
                    ObjectKind::Debug,
                    SYMBOLS_AND_CFI,
                ),
            ),
            (
                0,
                file("lines.sym", FileFormat::Breakpad, ObjectKind::Debug, DEBUG),
            ),
            (
                1,
                file(
                    "crash",
                    FileFormat::Elf,
                    ObjectKind::Executable,
                    SYMBOLS_AND_CFI,
                ),
            ),
            (
                1,
                file("crash.debug", FileFormat::Elf, ObjectKind::Debug, DEBUG),
            ),
        ];
        let names = |files: Vec<&DebugFile>| {
            files
                .into_iter()
                .map(|f| f.path.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(ranked(&candidates, DebugFile::debug_rank)),
            ["crash.debug", "lines.sym", "crash", "publics.sym"]
        );
        assert_eq!(
            names(ranked(&candidates, DebugFile::unwind_rank)),
            ["crash", "publics.sym"]
        );

        // On a tie the earlier source wins, then the larger file.
        let mut big = file("big.sym", FileFormat::Breakpad, ObjectKind::Debug, DEBUG);
        big.size = 1000;
        let tie = vec![
            (
                1,
                file("later.sym", FileFormat::Breakpad, ObjectKind::Debug, DEBUG),
            ),
            (
                0,
                file("small.sym", FileFormat::Breakpad, ObjectKind::Debug, DEBUG),
            ),
            (0, big),
        ];
        assert_eq!(
            names(ranked(&tie, DebugFile::debug_rank)),
            ["big.sym", "small.sym", "later.sym"]
        );
    }

    #[test]
    fn breakpad_files_are_indexed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sym");
        let content = "MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test_app.pdb\r\n\
             FILE 1 a.cc\r\nFUNC 1000 10 4 f\r\n1000 10 58 1\r\nPUBLIC 2000 0 g\r\n\
             STACK WIN 4 1000 10 0 0 4 0 0 0 1 $eip 4";
        std::fs::write(&path, content).unwrap();
        let mut debug_file = file("x.sym", FileFormat::Breakpad, ObjectKind::Debug, DEBUG);
        debug_file.path = path;
        let view = ByteView::open(&debug_file.path).unwrap();
        let text = indexed_text(&debug_file, &view).unwrap();
        // Kept as it is, with the missing final newline added.
        assert_eq!(&text[..], format!("{content}\n").as_bytes());
        assert!(Index::build(&text).is_some());
        SymbolFile::from_bytes(&text).unwrap();
    }
}
