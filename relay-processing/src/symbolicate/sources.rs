//! Where debug files come from: the [`SymbolSource`] trait and the local-directory source.
//!
//! A source answers "which debug files on this machine may belong to this module?". It never
//! touches the network: remote sources (HTTP symbol servers, S3) are downloaded by async actors
//! in the server into a directory first, and are then offered here as local files. The
//! minidump's module list ([`super::referenced_modules`]) tells those actors what to fetch.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use symbolic::common::{Arch, ByteView, CodeId, DebugId};
use symbolic::debuginfo::{Archive, FileFormat, ObjectKind};

/// The file layout of a symbol server (the configuration's `layout`).
pub use relay_core::config::SymbolServerLayout as ServerLayout;

/// How deep [`LocalDirectory::scan`] descends below its root.
const MAX_SCAN_DEPTH: usize = 16;

/// The identity of a module loaded in the crashed process, as the minidump names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModuleRef {
    /// Path of the executable or library in the crashed process.
    pub code_file: String,
    /// Code identifier (PE timestamp+size, ELF build id, Mach-O UUID), if known.
    pub code_id: Option<CodeId>,
    /// Name of the debug companion (PDB name, or the code file name elsewhere).
    pub debug_file: Option<String>,
    /// Debug identifier, if known.
    pub debug_id: Option<DebugId>,
}

impl ModuleRef {
    /// Builds the reference from a module of a parsed minidump.
    pub fn from_module(module: &dyn minidump::Module) -> Self {
        ModuleRef {
            code_file: module.code_file().into_owned(),
            code_id: module
                .code_identifier()
                .filter(|id| !id.is_nil())
                .map(|id| CodeId::new(id.as_str().to_owned())),
            debug_file: module.debug_file().map(|f| f.into_owned()),
            debug_id: module.debug_identifier().filter(|id| !id.is_nil()),
        }
    }

    /// Where symbol servers keep this module's files, relative to the server's root, in all
    /// layouts: Breakpad's native layout, Microsoft's symstore (plain and `_` compressed; PE by
    /// code id, PDB by debug id) and debuginfod (by ELF build id). Tests compare it with
    /// known server paths.
    #[cfg(test)]
    fn server_paths(&self) -> Vec<String> {
        [
            ServerLayout::Breakpad,
            ServerLayout::Symstore,
            ServerLayout::Debuginfod,
        ]
        .into_iter()
        .flat_map(|layout| self.server_files(layout))
        .map(|file| file.path)
        .collect()
    }

    /// The files a symbol server in `layout` may have for this module, in the order to try
    /// them. Paths are relative to the server's root; their components never contain `/`,
    /// `\`, `.` or `..` alone, so they are safe to join to a local cache directory too.
    pub fn server_files(&self, layout: ServerLayout) -> Vec<ServerFile> {
        let mut files = Vec::new();
        let code_name = leaf_name(&self.code_file);
        let debug_name = self
            .debug_file
            .as_deref()
            .map(leaf_name)
            .unwrap_or(code_name);
        let debug_name = Some(debug_name).filter(|n| is_safe_component(n));
        let code_name = Some(code_name).filter(|n| is_safe_component(n));
        let breakpad_id = self.debug_id.map(|id| id.breakpad().to_string());
        let code_id = self
            .code_id
            .as_ref()
            .map(|id| id.as_str())
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()));
        // PE code ids are timestamp + image size (at most 16 hex digits); ELF build ids are
        // longer; a Mach-O code id is its UUID, the debug id without the age.
        let is_pe_code_id = code_id.is_some_and(|id| id.len() <= 24);
        let is_build_id = code_id.is_some_and(|id| {
            !is_pe_code_id
                && self
                    .debug_id
                    .is_none_or(|d| d.uuid().simple().to_string() != id)
        });
        let file = |role, path: String, compressed| ServerFile {
            role,
            path,
            compressed,
        };
        match layout {
            ServerLayout::Breakpad => {
                if let (Some(name), Some(id)) = (debug_name, &breakpad_id) {
                    let stem = name.strip_suffix(".pdb").unwrap_or(name);
                    files.push(file(
                        FileRole::Debug,
                        format!("{name}/{id}/{stem}.sym"),
                        false,
                    ));
                }
            }
            ServerLayout::Symstore => {
                if let (Some(name), Some(id)) = (debug_name, &breakpad_id) {
                    files.push(file(FileRole::Debug, format!("{name}/{id}/{name}"), false));
                    let packed = compressed_name(name);
                    files.push(file(FileRole::Debug, format!("{name}/{id}/{packed}"), true));
                }
                if let (Some(name), Some(id), true) = (code_name, code_id, is_pe_code_id) {
                    // Upper-case in symstore paths.
                    let id = id.to_ascii_uppercase();
                    files.push(file(FileRole::Code, format!("{name}/{id}/{name}"), false));
                    let packed = compressed_name(name);
                    files.push(file(FileRole::Code, format!("{name}/{id}/{packed}"), true));
                }
            }
            ServerLayout::Debuginfod => {
                if let (Some(id), true) = (code_id, is_build_id) {
                    let id = id.to_ascii_lowercase();
                    files.push(file(
                        FileRole::Debug,
                        format!("buildid/{id}/debuginfo"),
                        false,
                    ));
                    files.push(file(
                        FileRole::Code,
                        format!("buildid/{id}/executable"),
                        false,
                    ));
                }
            }
        }
        files
    }
}

/// What a file on a symbol server is fetched for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileRole {
    /// Symbols (a PDB, a Breakpad `.sym`, separate ELF debug info); Breakpad files also carry
    /// unwind information.
    Debug,
    /// The code file itself (PE, ELF executable), for its unwind tables and symbol table.
    Code,
}

/// One file a symbol server may hold for a module.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerFile {
    /// What the file is fetched for.
    pub role: FileRole,
    /// Path relative to the server's root, `/`-separated.
    pub path: String,
    /// Whether the server keeps it as a cabinet (symstore's `_` names); see
    /// [`super::downloads::unpack_cab`].
    pub compressed: bool,
}

/// Whether a file name from a minidump is safe as one path component, locally and in a URL.
fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// The file name of a path written on any OS.
fn leaf_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Symstore's compressed name: the last character of the extension becomes `_`.
fn compressed_name(name: &str) -> String {
    let mut out = name.to_owned();
    out.pop();
    out.push('_');
    out
}

/// What a debug file offers, as symbolic reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// Functions with file and line information (DWARF, PDB, Breakpad `FUNC` records).
    pub has_debug_info: bool,
    /// A symbol table (ELF/Mach-O symbols, PE exports, Breakpad `PUBLIC` records).
    pub has_symbols: bool,
    /// Call frame information for stack walking.
    pub has_unwind_info: bool,
}

/// One object inside a debug file on disk that matches a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugFile {
    /// The file on disk.
    pub path: PathBuf,
    /// Size of the file in bytes; among equally ranked files the larger (richer) one wins.
    pub size: u64,
    /// Index of the object within the file (fat Mach-O files hold several).
    pub object_index: usize,
    /// Container format (ELF, Mach-O, PDB, PE, Breakpad, ...).
    pub format: FileFormat,
    /// Executable, library, debug companion, ...
    pub kind: ObjectKind,
    /// CPU architecture of the object.
    pub arch: Arch,
    /// Debug identifier of the object.
    pub debug_id: DebugId,
    /// Code identifier of the object, if it has one.
    pub code_id: Option<CodeId>,
    /// What the object can be used for.
    pub features: Features,
}

impl DebugFile {
    /// Ranking for symbolication: line info first, then native formats (which carry inline
    /// functions and full names) over Breakpad, then symbol tables. Higher is better.
    pub(crate) fn debug_rank(&self) -> Option<u8> {
        let f = self.features;
        if !f.has_debug_info && !f.has_symbols {
            return None;
        }
        let native = self.format != FileFormat::Breakpad;
        Some(u8::from(f.has_debug_info) * 4 + u8::from(native) * 2 + u8::from(f.has_symbols))
    }

    /// Ranking for unwind information: native unwind tables of the code file first (they are
    /// what the compiler emitted for the running binary), then native debug companions, then
    /// Breakpad `STACK` records. Higher is better.
    pub(crate) fn unwind_rank(&self) -> Option<u8> {
        if !self.features.has_unwind_info {
            return None;
        }
        Some(match (self.format, self.kind) {
            (FileFormat::Breakpad, _) => 1,
            (_, ObjectKind::Executable | ObjectKind::Library) => 3,
            _ => 2,
        })
    }
}

/// A place to find debug files for a module. Implementations do no network I/O.
pub trait SymbolSource: Send + Sync + fmt::Debug {
    /// A short name for logs and module statuses, such as `local:/srv/symbols`.
    fn name(&self) -> &str;

    /// Debug files this source holds that belong to `module`, by debug id or code id.
    fn candidates(&self, module: &ModuleRef) -> Vec<DebugFile>;
}

/// Debug files indexed by debug id and code id; what [`LocalDirectory`] and
/// [`super::DownloadedFiles`] look modules up in.
#[derive(Default)]
pub(crate) struct FileIndex {
    files: Vec<DebugFile>,
    by_debug_id: HashMap<DebugId, Vec<usize>>,
    by_code_id: HashMap<CodeId, Vec<usize>>,
}

impl FileIndex {
    pub(crate) fn files(&self) -> &[DebugFile] {
        &self.files
    }

    pub(crate) fn push(&mut self, file: DebugFile) {
        let index = self.files.len();
        if !file.debug_id.is_nil() {
            self.by_debug_id
                .entry(file.debug_id)
                .or_default()
                .push(index);
        }
        if let Some(code_id) = &file.code_id {
            self.by_code_id
                .entry(code_id.clone())
                .or_default()
                .push(index);
        }
        self.files.push(file);
    }

    /// Drops every object of the file at `path`; returns whether there was one.
    pub(crate) fn remove_path(&mut self, path: &Path) -> bool {
        if !self.files.iter().any(|f| f.path == path) {
            return false;
        }
        let files = std::mem::take(&mut self.files);
        *self = FileIndex::default();
        for file in files.into_iter().filter(|f| f.path != path) {
            self.push(file);
        }
        true
    }

    pub(crate) fn candidates(&self, module: &ModuleRef) -> Vec<DebugFile> {
        let by_debug_id = module
            .debug_id
            .and_then(|id| self.by_debug_id.get(&id))
            .into_iter()
            .flatten();
        // A code id match counts unless the file names a different build by its debug id
        // (the age may differ between a PE and its PDB, the UUID may not).
        let by_code_id = module
            .code_id
            .as_ref()
            .and_then(|id| self.by_code_id.get(id))
            .into_iter()
            .flatten()
            .filter(|&&i| match module.debug_id {
                Some(id) => {
                    self.files[i].debug_id.is_nil() || self.files[i].debug_id.uuid() == id.uuid()
                }
                None => true,
            });
        let mut indices = by_debug_id.chain(by_code_id).copied().collect::<Vec<_>>();
        indices.sort_unstable();
        indices.dedup();
        indices.into_iter().map(|i| self.files[i].clone()).collect()
    }
}

/// A directory of debug files in any layout, indexed once by debug id and code id.
///
/// Breakpad symbol trees (`<debug_file>/<DEBUG_ID>/<name>.sym`), symstore trees, dSYM bundles
/// or a flat folder of binaries all work: every file is identified by its content. Files that
/// are no debug files (minidumps, text, ...) are skipped.
pub struct LocalDirectory {
    name: String,
    index: FileIndex,
}

impl fmt::Debug for LocalDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDirectory")
            .field("name", &self.name)
            .field("files", &self.index.files().len())
            .finish()
    }
}

impl LocalDirectory {
    /// Scans `root` recursively and indexes every debug file found.
    ///
    /// A missing directory yields an empty source (every module will be `missing`); only an
    /// unreadable root that exists is an error.
    pub fn scan(root: impl AsRef<Path>) -> std::io::Result<Self> {
        let root = root.as_ref();
        let mut source = LocalDirectory {
            name: format!("local:{}", root.display()),
            index: FileIndex::default(),
        };
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => source.scan_dir(root, 0)?,
            Ok(_) => source.add_file(root),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        Ok(source)
    }

    /// All indexed objects, in scan order.
    pub fn files(&self) -> &[DebugFile] {
        self.index.files()
    }

    fn scan_dir(&mut self, dir: &Path, depth: usize) -> std::io::Result<()> {
        let mut entries = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect::<Vec<_>>();
        // Deterministic order, so ties between equally good files resolve the same way.
        entries.sort();
        for path in entries {
            // `metadata` follows symlinks; the depth bound stops symlink loops.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_SCAN_DEPTH {
                    // An unreadable subdirectory is skipped, not fatal.
                    let _ = self.scan_dir(&path, depth + 1);
                }
            } else if meta.is_file() {
                self.add_file(&path);
            }
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) {
        for file in identify(path) {
            self.index.push(file);
        }
    }
}

/// The debug objects in a file (several for a fat Mach-O), or none when the file is no debug
/// file. Other sources (a download cache) use this to index what they fetched.
pub fn identify(path: &Path) -> Vec<DebugFile> {
    if sniff_format(path) == FileFormat::Unknown {
        return Vec::new();
    }
    let Ok(view) = ByteView::open(path) else {
        return Vec::new();
    };
    let size = view.len() as u64;
    let Ok(archive) = Archive::parse(&view) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for (object_index, object) in archive.objects().enumerate() {
        let Ok(object) = object else { continue };
        let debug_id = object.debug_id();
        let code_id = object.code_id().filter(|id| !id.is_nil());
        if debug_id.is_nil() && code_id.is_none() {
            continue;
        }
        let features = match object.file_format() {
            // symbolic walks the records line by line for each question; three byte scans
            // give the same answers several times faster (this runs for every file indexed).
            FileFormat::Breakpad => breakpad_features(&view),
            _ => Features {
                has_debug_info: object.has_debug_info(),
                has_symbols: object.has_symbols(),
                has_unwind_info: object.has_unwind_info(),
            },
        };
        files.push(DebugFile {
            path: path.to_owned(),
            size,
            object_index,
            format: object.file_format(),
            kind: object.kind(),
            arch: object.arch(),
            debug_id,
            code_id,
            features,
        });
    }
    files
}

/// What a Breakpad file offers, with symbolic's answers: `FUNC` records are debug info,
/// `PUBLIC` records before the first `STACK` record are symbols, `STACK WIN` and
/// `STACK CFI INIT` records are unwind info. (The first line is always `MODULE`.)
///
/// One pass over the file: writers put `PUBLIC` records right before the `STACK` records at the
/// end, so the `PUBLIC` search runs backwards from the first `STACK` record.
fn breakpad_features(data: &[u8]) -> Features {
    use memchr::memmem::{find, rfind};
    let first_stack = find(data, b"\nSTACK ");
    Features {
        has_debug_info: find(data, b"\nFUNC ").is_some(),
        has_symbols: rfind(&data[..first_stack.unwrap_or(data.len())], b"\nPUBLIC ").is_some(),
        has_unwind_info: first_stack.is_some_and(|start| {
            let stack = &data[start..];
            find(stack, b"\nSTACK WIN").is_some() || find(stack, b"\nSTACK CFI INIT").is_some()
        }),
    }
}

impl SymbolSource for LocalDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    fn candidates(&self, module: &ModuleRef) -> Vec<DebugFile> {
        self.index.candidates(module)
    }
}

/// Reads the first bytes of a file and asks symbolic what it is, without mapping the file.
fn sniff_format(path: &Path) -> FileFormat {
    let mut head = [0u8; 64];
    let Ok(mut file) = File::open(path) else {
        return FileFormat::Unknown;
    };
    let mut len = 0;
    while len < head.len() {
        match file.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(_) => return FileFormat::Unknown,
        }
    }
    Archive::peek(&head[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_cover_the_common_layouts() {
        let pe = ModuleRef {
            code_file: r"C:\projects\Release\crash.exe".into(),
            code_id: Some(CodeId::new("5ab380779000".into())),
            debug_file: Some(r"C:\projects\Release\crash.pdb".into()),
            debug_id: Some("3249d99d-0c40-4931-8610-f4e4fb0b6936-1".parse().unwrap()),
        };
        assert_eq!(
            pe.server_paths(),
            [
                "crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.sym",
                "crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pdb",
                "crash.pdb/3249D99D0C4049318610F4E4FB0B69361/crash.pd_",
                "crash.exe/5AB380779000/crash.exe",
                "crash.exe/5AB380779000/crash.ex_",
            ]
        );
        let elf = ModuleRef {
            code_file: "/work/linux/build/crash".into(),
            code_id: Some(CodeId::new(
                "f1c3bcc0279865fe3058404b2831d9e64135386c".into(),
            )),
            debug_file: Some("/work/linux/build/crash".into()),
            debug_id: Some("c0bcc3f1-9827-fe65-3058-404b2831d9e6".parse().unwrap()),
        };
        let paths = elf.server_paths();
        assert_eq!(
            paths[0],
            "crash/C0BCC3F19827FE653058404B2831D9E60/crash.sym"
        );
        assert!(
            paths.contains(&"buildid/f1c3bcc0279865fe3058404b2831d9e64135386c/debuginfo".into())
        );
        assert!(
            paths.contains(&"buildid/f1c3bcc0279865fe3058404b2831d9e64135386c/executable".into())
        );
    }

    #[test]
    fn breakpad_features_match_symbolic() {
        let native = crate::test_support::fixtures().join("native");
        let mut files = LocalDirectory::scan(&native).unwrap().files().to_vec();
        files.retain(|f| f.format == FileFormat::Breakpad);
        assert!(files.len() >= 5, "{files:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut paths: Vec<PathBuf> = files.into_iter().map(|f| f.path).collect();
        // Edge cases: PUBLIC only after STACK, STACK CFI without INIT, CRLF line ends.
        for (name, text) in [
            ("a.sym", "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 a\nSTACK CFI 1 .cfa: $rsp 8 +\nPUBLIC 10 0 f\n"),
            ("b.sym", "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 b\r\nPUBLIC 10 0 f\r\nSTACK CFI INIT 10 4 .cfa: $rsp 8 +\r\n"),
            ("c.sym", "MODULE Linux x86_64 0123456789ABCDEF0123456789ABCDEF0 c\nFUNC 10 4 0 f\n10 4 1 1\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            paths.push(path);
        }
        for path in paths {
            let view = ByteView::open(&path).unwrap();
            let archive = Archive::parse(&view).unwrap();
            let object = archive.objects().next().unwrap().unwrap();
            let symbolic = Features {
                has_debug_info: object.has_debug_info(),
                has_symbols: object.has_symbols(),
                has_unwind_info: object.has_unwind_info(),
            };
            assert_eq!(breakpad_features(&view), symbolic, "{}", path.display());
            assert_eq!(identify(&path)[0].features, symbolic);
        }
    }

    #[test]
    fn non_debug_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "MODULE is not at the start").unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        let source = LocalDirectory::scan(dir.path()).unwrap();
        assert!(source.files().is_empty());
        assert!(identify(&dir.path().join("notes.txt")).is_empty());
        assert!(LocalDirectory::scan(dir.path().join("missing"))
            .unwrap()
            .files()
            .is_empty());
    }
}
