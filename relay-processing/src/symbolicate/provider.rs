//! rust-minidump's `SymbolProvider`, backed by the [`SymbolStore`]: SymCache lookups (with
//! inline frames and demangling) for symbols, Breakpad CFI for unwinding.
//!
//! One provider lives for one minidump; it remembers which modules the walk touched and what
//! loading them gave, which becomes the per-module status of the result.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use minidump::Module;
use minidump_unwind::{
    FileError, FileKind, FillSymbolError, FrameSymbolizer, FrameWalker, SymbolProvider,
};
use symbolic::common::{Language, Name, NameMangling};
use symbolic::demangle::{Demangle, DemangleOptions};

use super::cache::{ModuleSymbols, SymbolStore};
use super::sources::ModuleRef;

/// The store seen through one minidump.
pub(crate) struct StoreProvider<'a> {
    store: &'a SymbolStore,
    deadline: Option<Instant>,
    /// Modules touched by the walk, by base address.
    touched: Mutex<HashMap<u64, Arc<ModuleSymbols>>>,
}

impl<'a> StoreProvider<'a> {
    pub(crate) fn new(store: &'a SymbolStore, deadline: Option<Instant>) -> Self {
        StoreProvider {
            store,
            deadline,
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// What loading the module at `base` gave, if the walk touched it.
    pub(crate) fn touched(&self, base: u64) -> Option<Arc<ModuleSymbols>> {
        self.touched.lock().unwrap().get(&base).cloned()
    }

    fn symbols(&self, module: &dyn Module) -> Arc<ModuleSymbols> {
        let base = module.base_address();
        if let Some(found) = self.touched(base) {
            return found;
        }
        let loaded = self
            .store
            .load(&ModuleRef::from_module(module), self.deadline);
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
        let symbols = self.symbols(module);
        // An error tells the walker "no symbols for this module", so stack scanning stays
        // permissive there; Ok with no function rejects a scanned candidate.
        let symcache = symbols
            .symcache
            .data
            .as_ref()
            .and_then(|bytes| bytes.parse())
            .ok_or(FillSymbolError {})?;
        let base = module.base_address();
        let Some(addr) = frame.get_instruction().checked_sub(base) else {
            return Ok(());
        };
        // Innermost first: the inlined callees, then the function the code physically sits in.
        let locations = symcache.lookup(addr).collect::<Vec<_>>();
        let Some((outer, inlined)) = locations.split_last() else {
            return Ok(());
        };
        let function = outer.function();
        if function.name().is_empty() || function.name() == "?" {
            return Ok(());
        }
        let parameter_size = symbols
            .cfi
            .data
            .as_ref()
            .and_then(|cfi| {
                let mut probe = ParameterSizeProbe::new(frame.get_instruction());
                cfi.fill_symbol(module, &mut probe);
                probe.parameter_size
            })
            .unwrap_or(0);
        let entry = base + u64::from(function.entry_pc());
        frame.set_function(
            &demangle(function.name(), function.language()),
            entry,
            parameter_size,
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
        Ok(())
    }

    async fn walk_frame(
        &self,
        module: &(dyn Module + Sync),
        walker: &mut (dyn FrameWalker + Send),
    ) -> Option<()> {
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
