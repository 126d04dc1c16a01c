//! rust-minidump's `SymbolProvider`, backed by the [`SymbolStore`]: symbols from a SymCache
//! (native debug files) or from a Breakpad file's indexed text (breakpad-symbols' lookup), with
//! inline frames and demangling either way; Breakpad CFI for unwinding.
//!
//! One provider lives for one minidump; it remembers which modules the walk touched and what
//! loading them gave, which becomes the per-module status of the result. It also holds the
//! dump's [`WalkBudget`] and stops the walk once a bound is hit (see `walk`).

use async_trait::async_trait;
use minidump::Module;
use minidump_unwind::{
    FileError, FileKind, FillSymbolError, FrameSymbolizer, FrameWalker, SymbolProvider,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use symbolic::common::{clean_path, Language, Name, NameMangling};
use symbolic::demangle::{Demangle, DemangleOptions};
use symbolic::symcache::SymCache;

use super::budget::{CutOff, WalkBudget};
use super::cache::{ModuleSymbols, SymbolStore, Symbols};
use super::cfi::Cfi;
use super::sources::ModuleRef;

/// The store seen through one minidump.
pub(crate) struct StoreProvider<'a> {
    store: &'a SymbolStore,
    budget: WalkBudget,
    /// Modules touched by the walk, by base address.
    touched: Mutex<HashMap<u64, Arc<ModuleSymbols>>>,
}

impl<'a> StoreProvider<'a> {
    pub(crate) fn new(store: &'a SymbolStore, budget: WalkBudget) -> Self {
        StoreProvider {
            store,
            budget,
            touched: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn budget(&self) -> &WalkBudget {
        &self.budget
    }

    /// Whether the walk must stop here. Past the deadline the module still counts as touched
    /// (with a timeout status, nothing is loaded then), so that its frames say `timeout`.
    fn must_stop(&self, module: &dyn Module) -> bool {
        match self.budget.check() {
            None => false,
            Some(cut) => {
                if cut == CutOff::Deadline {
                    self.symbols(module);
                }
                true
            }
        }
    }

    /// What loading the module at `base` gave, if the walk touched it.
    pub(crate) fn touched(&self, base: u64) -> Option<Arc<ModuleSymbols>> {
        self.touched.lock().unwrap().get(&base).cloned()
    }

    pub(crate) fn symbols(&self, module: &dyn Module) -> Arc<ModuleSymbols> {
        let base = module.base_address();
        if let Some(found) = self.touched(base) {
            return found;
        }
        let loaded = self.store.load(
            &ModuleRef::from_module(module),
            self.budget.limits().deadline,
        );
        self.touched
            .lock()
            .unwrap()
            .entry(base)
            .or_insert(loaded)
            .clone()
    }
}

/// Demangles a function name from a SymCache into the form Sentry shows: qualified name with
/// parameter types, without return type (`(anonymous namespace)::crash()`, `core::panicking::panic`).
pub(crate) fn demangle(name: &str, language: Language) -> String {
    let name = Name::new(name, NameMangling::Unknown, language);
    name.try_demangle(DemangleOptions::name_only().parameters(true))
        .into_owned()
}

#[async_trait]
impl SymbolProvider for StoreProvider<'_> {
    async fn fill_symbol(
        &self,
        module: &(dyn Module + Sync),
        frame: &mut (dyn FrameSymbolizer + Send),
    ) -> Result<(), FillSymbolError> {
        if self.must_stop(module) {
            // Never completes: the walk is dropped here, keeping the frames found so far.
            return std::future::pending().await;
        }
        let symbols = self.symbols(module);
        // An error tells the walker "no symbols for this module", so stack scanning stays
        // permissive there; Ok with no function rejects a scanned candidate.
        let cfi = symbols.cfi.data.as_deref();
        match symbols.symbols.data.as_ref().ok_or(FillSymbolError {})? {
            Symbols::SymCache(bytes) => {
                let symcache = bytes.parse().ok_or(FillSymbolError {})?;
                fill_from_symcache(&symcache, cfi, module, frame);
            }
            Symbols::Breakpad(breakpad) => fill_from_breakpad(breakpad, cfi, module, frame),
        }
        Ok(())
    }

    async fn walk_frame(
        &self,
        module: &(dyn Module + Sync),
        walker: &mut (dyn FrameWalker + Send),
    ) -> Option<()> {
        if self.must_stop(module) {
            return std::future::pending().await;
        }
        let symbols = self.symbols(module);
        symbols.cfi.data.as_ref()?.walk_frame(module, walker)
    }

    async fn get_file_path(
        &self,
        _module: &(dyn Module + Sync),
        _file_kind: FileKind,
    ) -> Result<PathBuf, FileError> {
        // Only used for disassembly of the crashing instruction, which we do not enable.
        Err(FileError::NotFound)
    }
}

/// Symbols from a SymCache (native debug files), the parameter size from `cfi`.
pub(crate) fn fill_from_symcache(
    symcache: &SymCache<'_>,
    cfi: Option<&Cfi>,
    module: &dyn Module,
    frame: &mut dyn FrameSymbolizer,
) {
    let base = module.base_address();
    let Some(addr) = frame.get_instruction().checked_sub(base) else {
        return;
    };
    // Innermost first: the inlined callees, then the function the code physically sits in.
    let locations = symcache.lookup(addr).collect::<Vec<_>>();
    let Some((outer, inlined)) = locations.split_last() else {
        return;
    };
    let function = outer.function();
    if function.name().is_empty() || function.name() == "?" {
        return;
    }
    let entry = base + u64::from(function.entry_pc());
    frame.set_function(
        &demangle(function.name(), function.language()),
        entry,
        parameter_size(cfi, module, frame.get_instruction()),
    );
    if let Some(file) = outer.file() {
        frame.set_source_file(&file.full_path(), outer.line(), entry);
    }
    // The walker wants inline frames from the outside in.
    for location in inlined.iter().rev() {
        let function = location.function();
        let file = location.file().map(|f| f.full_path());
        let line = Some(location.line()).filter(|&l| l > 0);
        frame.add_inline_frame(
            &demangle(function.name(), function.language()),
            file.as_deref(),
            line,
        );
    }
}

/// Symbols from a Breakpad file's indexed text, with breakpad-symbols' lookup (the one
/// minidump-stackwalk uses), shaped like [`fill_from_symcache`]'s: the same demangling, paths
/// cleaned the same way (`a/../b` is `b`), no function for an empty or `?` name, the
/// function's entry as the source line's base, and the parameter size from `cfi` (which is
/// the same text when the file also unwinds).
pub(crate) fn fill_from_breakpad(
    breakpad: &Arc<Cfi>,
    cfi: Option<&Cfi>,
    module: &dyn Module,
    frame: &mut dyn FrameSymbolizer,
) {
    let mut found = FoundSymbol::new(frame.get_instruction());
    breakpad.fill_symbol(module, &mut found);
    let Some((name, entry, parameter_size_here)) = found.function else {
        return;
    };
    if name.is_empty() || name == "?" {
        return;
    }
    let parameter_size = match cfi {
        Some(cfi) if std::ptr::eq(cfi, breakpad.as_ref()) => parameter_size_here,
        other => parameter_size(other, module, frame.get_instruction()),
    };
    frame.set_function(&demangle(&name, Language::Unknown), entry, parameter_size);
    if let Some((file, line)) = &found.file {
        frame.set_source_file(&clean_path(file), *line, entry);
    }
    for (name, file, line) in &found.inlines {
        let file = file.as_deref().map(clean_path);
        frame.add_inline_frame(&demangle(name, Language::Unknown), file.as_deref(), *line);
    }
}

/// The parameter size Breakpad CFI knows at `instruction` (`STACK WIN` unwinding of the
/// caller needs it); 0 without.
fn parameter_size(cfi: Option<&Cfi>, module: &dyn Module, instruction: u64) -> u32 {
    cfi.and_then(|cfi| {
        let mut probe = ParameterSizeProbe::new(instruction);
        cfi.fill_symbol(module, &mut probe);
        probe.parameter_size
    })
    .unwrap_or(0)
}

/// What breakpad-symbols' lookup says about an address, kept aside so that names can be
/// demangled before they reach the real frame.
struct FoundSymbol {
    instruction: u64,
    /// Name, entry address, parameter size.
    function: Option<(String, u64, u32)>,
    /// File and line of the outermost frame (the call site when code is inlined).
    file: Option<(String, u32)>,
    /// Inlined calls from the outside in: name, file, line.
    inlines: Vec<(String, Option<String>, Option<u32>)>,
}

impl FoundSymbol {
    fn new(instruction: u64) -> Self {
        FoundSymbol {
            instruction,
            function: None,
            file: None,
            inlines: Vec::new(),
        }
    }
}

impl FrameSymbolizer for FoundSymbol {
    fn get_instruction(&self) -> u64 {
        self.instruction
    }

    fn set_function(&mut self, name: &str, base: u64, parameter_size: u32) {
        self.function = Some((name.to_owned(), base, parameter_size));
    }

    fn set_source_file(&mut self, file: &str, line: u32, _base: u64) {
        self.file = Some((file.to_owned(), line));
    }

    fn add_inline_frame(&mut self, name: &str, file: Option<&str>, line: Option<u32>) {
        self.inlines
            .push((name.to_owned(), file.map(str::to_owned), line));
    }
}

/// Captures the parameter size Breakpad data knows for an address (`STACK WIN` unwinding of
/// the caller needs it), without touching the real frame.
struct ParameterSizeProbe {
    instruction: u64,
    parameter_size: Option<u32>,
}

impl ParameterSizeProbe {
    fn new(instruction: u64) -> Self {
        ParameterSizeProbe {
            instruction,
            parameter_size: None,
        }
    }
}

impl FrameSymbolizer for ParameterSizeProbe {
    fn get_instruction(&self) -> u64 {
        self.instruction
    }

    fn set_function(&mut self, _name: &str, _base: u64, parameter_size: u32) {
        self.parameter_size = Some(parameter_size);
    }

    fn set_source_file(&mut self, _file: &str, _line: u32, _base: u64) {}
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use minidump_unwind::SymbolFile;
    use symbolic::common::{ByteView, DebugId};
    use symbolic::debuginfo::{Archive, FileFormat};
    use symbolic::symcache::SymCacheConverter;

    use super::*;
    use crate::symbolicate::cache::indexed_text;
    use crate::symbolicate::cfi::probe::Symbolizer;
    use crate::symbolicate::cfi::tests::native_dir;
    use crate::symbolicate::cfi::{cache_file_parts, read_cache_file, Index, TextAt};
    use crate::symbolicate::sources::LocalDirectory;

    fn lookup(fill: impl FnOnce(&mut Symbolizer), addr: u64) -> Vec<String> {
        let mut symbolizer = Symbolizer {
            instruction: addr,
            log: Vec::new(),
        };
        fill(&mut symbolizer);
        symbolizer.log
    }

    /// Addresses that probe every record a lookup can hit: the first and last byte of each
    /// `FUNC`, line record and `INLINE` range, the bytes just outside them, and each `PUBLIC`
    /// with its neighbours.
    fn symbol_addresses(text: &[u8]) -> Vec<u64> {
        let hex = |s: &str| u64::from_str_radix(s, 16).ok();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for line in std::str::from_utf8(text).unwrap().lines() {
            let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "m").collect();
            match fields.as_slice() {
                ["FUNC", a, s, ..] => ranges.extend(hex(a).zip(hex(s))),
                ["PUBLIC", a, ..] => ranges.extend(hex(a).map(|a| (a, 1))),
                ["INLINE", _, _, _, _, pairs @ ..] => {
                    for pair in pairs.chunks(2) {
                        if let [a, s] = pair {
                            ranges.extend(hex(a).zip(hex(s)));
                        }
                    }
                }
                [a, s, _, _]
                    if !line.starts_with(|c: char| {
                        c.is_ascii_uppercase() && !c.is_ascii_hexdigit()
                    }) =>
                {
                    ranges.extend(hex(a).zip(hex(s)));
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (address, size) in ranges {
            let last = address.saturating_add(size.saturating_sub(1));
            out.extend([address.wrapping_sub(1), address, last, last.wrapping_add(1)]);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn symcache_of(path: &Path) -> Vec<u8> {
        let view = ByteView::open(path).unwrap();
        let archive = Archive::parse(&view).unwrap();
        let object = archive.object_by_index(0).unwrap().unwrap();
        let mut converter = SymCacheConverter::new();
        converter.process_object(&object).unwrap();
        let mut buffer = Vec::new();
        converter.serialize(&mut buffer).unwrap();
        buffer
    }

    /// The Breakpad fixtures (every `.sym` file below the fixtures' `native` directory).
    fn breakpad_files() -> Vec<crate::symbolicate::DebugFile> {
        let files = LocalDirectory::scan(native_dir()).unwrap().files().to_vec();
        files
            .into_iter()
            .filter(|f| f.format == FileFormat::Breakpad)
            .collect()
    }

    /// `FUNC` ranges and `PUBLIC` addresses of a Breakpad text, by name.
    #[derive(Default)]
    struct Records {
        funcs: Vec<(String, u64, u64)>,
        publics: Vec<(String, u64)>,
    }

    impl Records {
        fn of(text: &[u8]) -> Self {
            let hex = |s: &str| u64::from_str_radix(s, 16).unwrap();
            let mut records = Records::default();
            for line in std::str::from_utf8(text).unwrap().lines() {
                let line = line.strip_prefix("FUNC m ").map_or(line, |l| l);
                let line = line.strip_prefix("PUBLIC m ").map_or(line, |l| l);
                let fields = line.splitn(5, ' ').collect::<Vec<_>>();
                match fields.as_slice() {
                    ["FUNC", a, s, _, name] => {
                        records.funcs.push((name.to_string(), hex(a), hex(s)))
                    }
                    ["PUBLIC", a, _, name] => records.publics.push((name.to_string(), hex(a))),
                    ["PUBLIC", a, _, n1, n2] => {
                        records.publics.push((format!("{n1} {n2}"), hex(a)))
                    }
                    _ => {}
                }
            }
            records
        }

        fn is_public(&self, name: &str, address: u64) -> bool {
            self.publics.iter().any(|(n, a)| n == name && *a == address)
        }

        fn func_covers(&self, name: &str, entry: u64, address: u64) -> bool {
            self.funcs
                .iter()
                .any(|(n, a, s)| n == name && *a == entry && (*a..a + s).contains(&address))
        }
    }

    /// The function a lookup set: name and entry address.
    fn function_of(log: &[String]) -> Option<(&str, u64)> {
        let rest = log.first()?.strip_prefix("function ")?;
        let mut parts = rest.rsplitn(3, ' ');
        let _parameter_size = parts.next()?;
        let entry = u64::from_str_radix(parts.next()?.strip_prefix("0x")?, 16).ok()?;
        Some((parts.next()?, entry))
    }

    /// Where the SymCache and breakpad-symbols (minidump-stackwalk's lookup, which the new
    /// path follows) are known to differ:
    ///
    /// - No SymCache result, and breakpad-symbols falls back to the nearest `PUBLIC` below the
    ///   address: in the padding after a `FUNC` that contains that `PUBLIC` (a label inside
    ///   the function, such as `__from_strstr_to_strchr` inside `strchr`), and at addresses
    ///   past 4 GiB, which a SymCache cannot hold (no module is that large).
    /// - A `PUBLIC` label inside a `FUNC` (`_NLG_Dispatch2` inside `_NLG_Notify`): the SymCache
    ///   names the label, breakpad-symbols the covering `FUNC`.
    fn accepted_difference(records: &Records, new: &[String], old: &[String]) -> bool {
        let Some((name, entry)) = function_of(new) else {
            return false;
        };
        match function_of(old) {
            None => old.is_empty() && new.len() == 1 && records.is_public(name, entry),
            Some((old_name, old_entry)) => {
                records.is_public(old_name, old_entry)
                    && records.func_covers(name, entry, old_entry)
                    && new.len() == 1
                    && old.len() == 1
            }
        }
    }

    /// The new lookup (indexed text, breakpad-symbols) against today's SymCache lookup at
    /// every probing address of every Breakpad fixture.
    #[test]
    fn breakpad_lookups_match_the_symcache() {
        let files = breakpad_files();
        assert!(files.len() >= 5, "{files:?}");
        let module = ("test", DebugId::default());
        let mut checked = 0;
        let mut differences = Vec::new();
        for file in &files {
            let view = ByteView::open(&file.path).unwrap();
            let text = indexed_text(file, &view).unwrap();
            let index = Index::build(&text).expect("fixture indexed");
            // As the store keeps a Breakpad file: the index only, the text in the .sym file.
            let [index_bytes, footer] = cache_file_parts(&text, Some(&index), TextAt::DebugFile);
            let cache_file = [&index_bytes[..], &footer].concat();
            let lazy = Arc::new(
                read_cache_file(ByteView::from_vec(cache_file), || {
                    Some(ByteView::from_vec(text.to_vec()))
                })
                .unwrap()
                .into_cfi()
                .unwrap(),
            );
            let full = Arc::new(Cfi::Parsed(SymbolFile::from_bytes(&text).unwrap()));
            let symcache_bytes = symcache_of(&file.path);
            let symcache = SymCache::parse(&symcache_bytes).unwrap();
            let records = Records::of(&text);
            for addr in symbol_addresses(&text) {
                let new = lookup(|r| fill_from_breakpad(&lazy, Some(&lazy), &module, r), addr);
                let whole = lookup(|r| fill_from_breakpad(&full, Some(&full), &module, r), addr);
                assert_eq!(new, whole, "{}: at {addr:#x}", file.path.display());
                let old = lookup(
                    |r| fill_from_symcache(&symcache, Some(&lazy), &module, r),
                    addr,
                );
                if new != old {
                    assert!(
                        accepted_difference(&records, &new, &old),
                        "{} at {addr:#x}:\n  new {new:?}\n  old {old:?}",
                        file.path.display()
                    );
                    differences.push(format!(
                        "{} {addr:#x}:\n  new {new:?}\n  old {old:?}",
                        file.path.display()
                    ));
                }
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
        for difference in &differences {
            eprintln!("accepted: {difference}");
        }
        // The accepted differences seen on the fixtures (7 at the time of writing).
        assert!(differences.len() < 20, "{}", differences.len());
    }
}
