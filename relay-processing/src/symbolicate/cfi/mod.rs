//! Breakpad text for the stack walker and for symbol lookups, parsed lazily from the cache
//! file.
//!
//! The cache file (`cfi/`, version 5) holds an address index of Breakpad text. For a native
//! debug file the text is symbolic-cfi's CFI (`STACK WIN`, `STACK CFI INIT` with its `STACK
//! CFI` rules), stored in the cache file before the index. A Breakpad file is indexed whole and
//! in place: its cache file holds only the index, and lookups read the `.sym` file itself (the
//! footer records the text's length, checked when it is opened again). So the same index also
//! answers symbol lookups (`FUNC` with its line and `INLINE` records, `FILE`, `INLINE_ORIGIN`,
//! `PUBLIC`) and no SymCache is built for it. The index lists, for each kind of record, the records that win
//! their address range with their byte ranges in the text (a `FUNC`'s range covers its line
//! records), and `FILE`/`INLINE_ORIGIN` records by id. A lookup at an address finds the winning
//! records by binary search and parses only those lines with breakpad-symbols, plus the
//! `FILE`/`INLINE_ORIGIN` lines the `FUNC` refers to, so a walk never parses the whole file.
//!
//! The index reproduces what breakpad-symbols' parser keeps:
//!
//! - `STACK WIN` records, per type (4: frame data, 0: FPO), in file order: a record that starts
//!   inside the previous one and later shortens the previous one to end where it starts; one
//!   that starts at or before the previous one's start and covers another range is dropped.
//! - Then for `STACK WIN`, `STACK CFI INIT` and `FUNC` alike (`into_rangemap_safe`): records
//!   sorted by (start, end), ties in file order; a record is kept if it starts after the end of
//!   the last kept one, otherwise dropped (the first of overlapping records wins).
//! - `PUBLIC` records are all kept, sorted by address; the walker takes the nearest at or
//!   below the address, and the `FUNC` before the address decides whether it still applies.
//!
//! - `FILE` and `INLINE_ORIGIN` records go into maps: the last definition of an id wins.
//!
//! The index is built when the cache file is written, in one pass that checks every line as the
//! parser would (line records, most of a file, field by field without keeping them). Text the
//! parser would reject, or that the index cannot describe, gets no index and is parsed whole.
//! No full parse cross-checks the index at write time (a full parse of a big file costs more
//! than the rest of a cold run); the tests compare lookups through the index with the full
//! parse, and with the SymCache lookups relay used before, on every fixture. Everything read
//! back from a cache file is bounds-checked; a file that fails the checks is rebuilt.
//!
//! The modules, in the order the data flows:
//!
//! - `parse`: reading one Breakpad line as breakpad-symbols' parser reads it;
//! - `index`: building the [`Index`] from the text in one pass;
//! - `format`: the cache file (text, encoded index, footer), written and read back checked;
//! - `lookup`: the records at one address, cut out of the text and parsed.

mod format;
mod index;
mod lookup;
mod parse;
pub(crate) mod probe;
#[cfg(test)]
pub(crate) mod tests;

use minidump_unwind::{FrameSymbolizer, FrameWalker, SymbolFile};
use symbolic::common::ByteView;

pub(crate) use format::{cache_file_parts, read_cache_file, TextAt};
pub(crate) use index::{has_stack_records, Index};
use lookup::LazyCfi;

/// CFI ready for the walker: parsed in full, or indexed and parsed record by record.
pub(crate) enum Cfi {
    /// The whole text parsed by breakpad-symbols.
    Parsed(SymbolFile),
    /// A memory-mapped cache file with an index.
    Lazy(LazyCfi),
}

impl Cfi {
    /// Indexed text just built: `data` starts with the text (`text_len` bytes).
    /// (Lookups stay bounds-checked against the text whatever `text_len` says.)
    pub(crate) fn indexed(data: ByteView<'static>, text_len: usize, index: Index) -> Cfi {
        Cfi::Lazy(LazyCfi::new(data, text_len, index))
    }

    /// Unwinds one frame (breakpad-symbols' `SymbolFile::walk_frame`).
    pub(crate) fn walk_frame(
        &self,
        module: &dyn minidump::Module,
        walker: &mut dyn FrameWalker,
    ) -> Option<()> {
        match self {
            Cfi::Parsed(symbols) => symbols.walk_frame(module, walker),
            Cfi::Lazy(lazy) => {
                let addr = walker
                    .get_instruction()
                    .checked_sub(module.base_address())?;
                lazy.records_at(addr)?.walk_frame(module, walker)
            }
        }
    }

    /// What breakpad-symbols' `SymbolFile::fill_symbol` tells about `frame`'s address.
    pub(crate) fn fill_symbol(
        &self,
        module: &dyn minidump::Module,
        frame: &mut dyn FrameSymbolizer,
    ) {
        match self {
            Cfi::Parsed(symbols) => symbols.fill_symbol(module, frame),
            Cfi::Lazy(lazy) => {
                let Some(addr) = frame.get_instruction().checked_sub(module.base_address()) else {
                    return;
                };
                if let Some(symbols) = lazy.records_at(addr) {
                    symbols.fill_symbol(module, frame);
                }
            }
        }
    }
}
