//! What loading a module yields: its symbols and CFI, each with the status the frames report.

use std::sync::Arc;

use symbolic::common::ByteView;
use symbolic::symcache::SymCache;

use super::super::cfi::Cfi;
use super::super::sources::DebugFile;
use super::super::ImageStatus;

/// Why a debug file could not be turned into a SymCache or CFI.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("cannot read debug file: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot parse debug file: {0}")]
    Object(#[from] symbolic::debuginfo::ObjectError),
    #[error("cannot build symcache: {0}")]
    SymCache(#[from] symbolic::symcache::Error),
    #[error("cannot extract unwind information: {0}")]
    Cfi(String),
    #[error("the object is no longer in the debug file")]
    ObjectGone,
}

/// A SymCache in memory (read from the cache directory or freshly built).
pub(crate) struct SymCacheBytes(pub(super) ByteView<'static>);

impl SymCacheBytes {
    pub(crate) fn parse(&self) -> Option<SymCache<'_>> {
        SymCache::parse(&self.0).ok()
    }
}

/// The outcome of loading one kind of data (symbols or CFI) for a module.
pub(crate) struct Loaded<T> {
    pub(crate) status: ImageStatus,
    pub(crate) file: Option<DebugFile>,
    pub(crate) data: Option<T>,
}

impl<T> Loaded<T> {
    pub(super) fn missing() -> Self {
        Loaded {
            status: ImageStatus::Missing,
            file: None,
            data: None,
        }
    }

    pub(super) fn malformed(file: DebugFile) -> Self {
        Loaded {
            status: ImageStatus::Malformed,
            file: Some(file),
            data: None,
        }
    }

    pub(super) fn found(file: DebugFile, data: T) -> Self {
        Loaded {
            status: ImageStatus::Found,
            file: Some(file),
            data: Some(data),
        }
    }

    pub(super) fn timed_out() -> Self {
        Loaded {
            status: ImageStatus::Timeout,
            file: None,
            data: None,
        }
    }
}

/// Where a module's symbols come from.
pub(crate) enum Symbols {
    /// A SymCache of a native debug file (ELF, Mach-O, PDB, PE).
    SymCache(SymCacheBytes),
    /// The indexed text of a Breakpad file, looked up with breakpad-symbols (the same `Arc`
    /// as [`ModuleSymbols::cfi`]'s when the file also provides unwinding).
    Breakpad(Arc<Cfi>),
}

/// An indexed text loaded, and whether it has `STACK` records (else it provides no CFI).
#[derive(Clone)]
pub(super) struct Indexed {
    pub(super) cfi: Arc<Cfi>,
    pub(super) has_stack: bool,
}

impl Indexed {
    pub(super) fn new(cfi: Cfi, has_stack: bool) -> Self {
        Indexed {
            cfi: Arc::new(cfi),
            has_stack,
        }
    }
}

/// Everything loaded for one module.
pub(crate) struct ModuleSymbols {
    pub(crate) symbols: Loaded<Symbols>,
    pub(crate) cfi: Loaded<Arc<Cfi>>,
}

impl ModuleSymbols {
    pub(super) fn timed_out() -> Self {
        ModuleSymbols {
            symbols: Loaded::timed_out(),
            cfi: Loaded::timed_out(),
        }
    }
}
