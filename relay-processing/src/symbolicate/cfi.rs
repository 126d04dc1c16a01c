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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use minidump_unwind::{FrameSymbolizer, FrameWalker, SymbolFile};
use symbolic::common::ByteView;

/// Last bytes of every cache file (version 5): the text's length and where the text is (u64,
/// little endian, each), then this magic. Cache files are not synced to disk, so one cut short
/// by a crash lacks it and is rebuilt; older versions (`RLYCFI3`, `RLYCFI4`) are refused and
/// rebuilt too.
const MAGIC: &[u8; 8] = b"RLYCFI5\n";
const FOOTER_LEN: usize = 24;
/// The footer's "where": the text starts the cache file, or it is the debug file itself.
const TEXT_IN_CACHE_FILE: u64 = 1;
const TEXT_IN_DEBUG_FILE: u64 = 0;
/// Bytes of one index entry: start, end (inclusive), text offset, text length; u64 each.
const ENTRY_LEN: usize = 32;
/// Tables in the index, in file order.
const TABLES: usize = 7;
const FRAME_DATA: usize = 0;
const FPO: usize = 1;
const CFI: usize = 2;
const FUNC: usize = 3;
const PUBLIC: usize = 4;
/// `FILE` and `INLINE_ORIGIN` records, by id (`start` and `end` are the id).
const FILES: usize = 5;
const ORIGINS: usize = 6;
/// The index's first byte: whether there is an index at all.
const HAS_INDEX: u8 = 1;
const NO_INDEX: u8 = 0;

/// One record of the text: the address range it covers and where its lines are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    start: u64,
    /// Inclusive; for `PUBLIC` records the same as `start`.
    end: u64,
    offset: u64,
    len: u64,
}

/// The address index of a CFI text: per table, the kept records sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    tables: [Vec<Entry>; TABLES],
    /// Whether the text has `STACK` records (else it provides no unwind information): kept so
    /// that a load need not scan the whole text for them.
    has_stack: bool,
}

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
        let text_len = text_len.min(data.len());
        Cfi::Lazy(LazyCfi {
            data,
            text_len,
            index,
            parsed: Mutex::new(HashMap::new()),
        })
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

/// An indexed CFI cache file: lookups parse only the records at the address.
pub(crate) struct LazyCfi {
    data: ByteView<'static>,
    text_len: usize,
    index: Index,
    /// Parsed records, by the entries they were made of.
    parsed: Mutex<HashMap<[u32; 6], Option<Arc<SymbolFile>>>>,
}

impl LazyCfi {
    /// The records that decide a lookup at `addr` (module-relative), parsed; `None` when there
    /// are none.
    fn records_at(&self, addr: u64) -> Option<Arc<SymbolFile>> {
        let key = self.index.records_at(addr);
        if key.iter().all(|&i| i == NONE) {
            return None;
        }
        if let Some(found) = self.parsed.lock().unwrap().get(&key) {
            return found.clone();
        }
        let text = self.index.mini_text(&self.data[..self.text_len], &key)?;
        let parsed = SymbolFile::from_bytes(&text).ok().map(Arc::new);
        if parsed.is_none() {
            tracing::debug!(addr, "cannot parse indexed cfi records");
        }
        self.parsed.lock().unwrap().insert(key, parsed.clone());
        parsed
    }
}

const NONE: u32 = u32::MAX;

impl Index {
    /// Entries deciding a lookup at `addr`: frame data, FPO, CFI, the `FUNC` at the address
    /// (or the one before it), and the first and last `PUBLIC` of those nearest below it.
    fn records_at(&self, addr: u64) -> [u32; 6] {
        let covering = |table: &[Entry]| -> u32 {
            let i = table.partition_point(|e| e.start <= addr);
            match i.checked_sub(1) {
                Some(i) if table[i].end >= addr => i as u32,
                _ => NONE,
            }
        };
        let funcs = &self.tables[FUNC];
        let mut func = covering(funcs);
        let mut publics = (NONE, NONE);
        if func == NONE {
            // The nearest `PUBLIC` at or below the address applies unless a `FUNC` starts
            // after it (breakpad-symbols compares with the `FUNC` before the address).
            let table = &self.tables[PUBLIC];
            let last = table.partition_point(|e| e.start <= addr);
            if let Some(last) = last.checked_sub(1) {
                let address = table[last].start;
                let first = table[..last].partition_point(|e| e.start < address);
                publics = (first as u32, last as u32);
            }
            let before = funcs.partition_point(|e| e.start < addr);
            func = before.checked_sub(1).map_or(NONE, |i| i as u32);
        }
        [
            covering(&self.tables[FRAME_DATA]),
            covering(&self.tables[FPO]),
            covering(&self.tables[CFI]),
            func,
            publics.0,
            publics.1,
        ]
    }

    /// The text of the records `key` names, as one small Breakpad file.
    fn mini_text(&self, text: &[u8], key: &[u32; 6]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut add = |table: usize, index: u32| -> Option<()> {
            let entry = self.tables[table].get(index as usize)?;
            let start = usize::try_from(entry.offset).ok()?;
            let end = start.checked_add(usize::try_from(entry.len).ok()?)?;
            out.extend_from_slice(text.get(start..end)?);
            Some(())
        };
        for (table, &index) in [FRAME_DATA, FPO, CFI, FUNC].iter().zip(key) {
            if index != NONE {
                add(*table, index)?;
            }
        }
        if key[4] != NONE {
            for index in key[4]..=key[5] {
                add(PUBLIC, index)?;
            }
        }
        // The names the `FUNC`'s lines refer to, after it: a definition further down the file
        // wins in the parser's maps, and so does the last one in this text (an
        // `INLINE_ORIGIN` among the `FUNC`'s own lines comes before it).
        if let Some(func) = self.tables[FUNC].get(key[3] as usize) {
            let start = usize::try_from(func.offset).ok()?;
            let end = start.checked_add(usize::try_from(func.len).ok()?)?;
            let (files, origins) = func_references(text.get(start..end)?);
            for (table, ids) in [(FILES, files), (ORIGINS, origins)] {
                for id in ids {
                    if let Ok(index) = self.tables[table].binary_search_by_key(&id, |e| e.start) {
                        add(table, index as u32)?;
                    }
                }
            }
        }
        Some(out)
    }

    /// Whether the index keeps exactly the records breakpad-symbols kept when parsing the
    /// same text (tests only: building no longer parses the whole text to check).
    #[cfg(test)]
    pub(crate) fn agrees_with(&self, parsed: &SymbolFile) -> bool {
        macro_rules! ranges {
            ($map:expr) => {
                $map.ranges_values()
                    .map(|(r, _)| (r.start, r.end))
                    .collect::<Vec<_>>()
            };
        }
        let ids =
            |table: usize| -> Vec<u64> { self.tables[table].iter().map(|e| e.start).collect() };
        let sorted_keys = |keys: std::collections::hash_map::Keys<'_, u32, String>| {
            let mut keys = keys.map(|&k| u64::from(k)).collect::<Vec<_>>();
            keys.sort_unstable();
            keys
        };
        let ours = |table: usize| -> Vec<(u64, u64)> {
            self.tables[table]
                .iter()
                .map(|e| (e.start, e.end))
                .collect()
        };
        ours(FRAME_DATA) == ranges!(parsed.win_stack_framedata_info)
            && ours(FPO) == ranges!(parsed.win_stack_fpo_info)
            && ours(CFI) == ranges!(parsed.cfi_stack_info)
            && ours(FUNC) == ranges!(parsed.functions)
            && self.tables[PUBLIC]
                .iter()
                .map(|e| e.start)
                .eq(parsed.publics.iter().map(|p| p.address))
            && ids(FILES) == sorted_keys(parsed.files.keys())
            && ids(ORIGINS) == sorted_keys(parsed.inline_origins.keys())
    }

    /// Indexes Breakpad text the way breakpad-symbols' parser keeps its records; `None` for
    /// text the parser would reject or that the index cannot describe (a line it does not
    /// know, a malformed record, text not ending in a newline), which is then parsed whole.
    ///
    /// Line records (most of a symbol file) are checked field by field but not kept: they
    /// only extend the byte range of their `FUNC`.
    pub(crate) fn build(text: &[u8]) -> Option<Index> {
        if text.last().is_some_and(|&b| b != b'\n') {
            return None;
        }
        let mut builder = Builder::default();
        let mut pos = 0;
        while pos < text.len() {
            let line_end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i + 1);
            builder.line(&text[pos..line_end], pos as u64)?;
            pos = line_end;
        }
        Some(builder.finish())
    }

    /// Whether the text has `STACK` records.
    pub(crate) fn has_stack(&self) -> bool {
        self.has_stack
    }

    /// The index as stored after the text.
    fn encode(&self) -> Vec<u8> {
        let count: usize = self.tables.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(2 + TABLES * 8 + count * ENTRY_LEN);
        out.push(HAS_INDEX);
        out.push(u8::from(self.has_stack));
        for table in &self.tables {
            out.extend_from_slice(&(table.len() as u64).to_le_bytes());
        }
        for entry in self.tables.iter().flatten() {
            for value in [entry.start, entry.end, entry.offset, entry.len] {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    /// Reads an index written by [`Index::encode`] for a text of `text_len` bytes, checking
    /// every entry: within the text, ranges ordered and not overlapping.
    fn decode(data: &[u8], text_len: u64) -> Option<Index> {
        let (&has_stack, data) = data.split_first()?;
        if has_stack > 1 {
            return None;
        }
        let mut reader = Reader(data);
        let mut counts = [0usize; TABLES];
        for count in &mut counts {
            *count = usize::try_from(reader.u64()?).ok()?;
        }
        let total = counts.iter().try_fold(0usize, |a, &c| a.checked_add(c))?;
        if total.checked_mul(ENTRY_LEN)? != reader.0.len() {
            return None;
        }
        let mut index = Index {
            has_stack: has_stack == 1,
            ..Index::default()
        };
        for (table, count) in counts.into_iter().enumerate() {
            let entries = &mut index.tables[table];
            entries.reserve_exact(count);
            for _ in 0..count {
                let entry = Entry {
                    start: reader.u64()?,
                    end: reader.u64()?,
                    offset: reader.u64()?,
                    len: reader.u64()?,
                };
                let in_text = entry
                    .offset
                    .checked_add(entry.len)
                    .is_some_and(|end| end <= text_len);
                let ordered = match entries.last() {
                    None => true,
                    Some(last) if table == PUBLIC => last.start <= entry.start,
                    Some(last) => last.end < entry.start,
                };
                let valid_range = match table {
                    PUBLIC | FILES | ORIGINS => entry.start == entry.end,
                    _ => entry.start <= entry.end,
                };
                if !in_text || !ordered || !valid_range || entry.len == 0 {
                    return None;
                }
                entries.push(entry);
            }
        }
        Some(index)
    }
}

/// breakpad-symbols' range of a record: none for size 0 or past the end of the address space.
fn range_end(address: u64, size: u64) -> Option<u64> {
    if size == 0 {
        return None;
    }
    Some(address.checked_add(size)? - 1)
}

/// breakpad-symbols' `insert_win_stack_info`, on ranges (`entry.end` is inclusive).
fn insert_win(table: &mut Vec<Entry>, entry: Entry) {
    if let Some(last) = table.last_mut() {
        let intersects = last.start <= entry.end && entry.start <= last.end;
        if intersects {
            if entry.start > last.start {
                // The later record ends the earlier one.
                last.end = entry.start - 1;
            } else if (last.start, last.end) != (entry.start, entry.end) {
                return;
            }
        }
    }
    table.push(entry);
}

/// breakpad-symbols' `into_rangemap_safe`, on ranges: sorted by range (ties in file order),
/// each record kept only if it starts after the last kept one ends.
fn keep_first(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by_key(|e| (e.start, e.end));
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        if kept.last().is_none_or(|last| entry.start > last.end) {
            kept.push(entry);
        }
    }
    kept
}

/// A record whose following lines belong to it (`STACK CFI INIT` rules, `FUNC` line records
/// and `INLINE` records), and whether it has a range (the parser drops one without, sublines
/// included).
enum Open {
    Nothing,
    Cfi(Entry, bool),
    Func(Entry, bool),
}

/// [`Index::build`]'s state, one line at a time.
struct Builder {
    win: [Vec<Entry>; 2],
    cfi: Vec<Entry>,
    funcs: Vec<Entry>,
    publics: Vec<Entry>,
    /// `FILE` and `INLINE_ORIGIN` records by id (`start`), in file order.
    files: Vec<Entry>,
    origins: Vec<Entry>,
    open: Open,
    /// Whether a `STACK` record was seen.
    has_stack: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            win: Default::default(),
            cfi: Vec::new(),
            funcs: Vec::new(),
            publics: Vec::new(),
            files: Vec::new(),
            origins: Vec::new(),
            open: Open::Nothing,
            has_stack: false,
        }
    }
}

impl Builder {
    /// Reads one line (with its newline) that starts at `offset` in the text.
    fn line(&mut self, line: &[u8], offset: u64) -> Option<()> {
        let content = trim_cr(line.strip_suffix(b"\n").unwrap_or(line));
        let here = |start: u64, end: u64| Entry {
            start,
            end,
            offset,
            len: line.len() as u64,
        };
        let line_end = offset + line.len() as u64;
        // Sublines of the open record first, as the parser tries them.
        match &mut self.open {
            Open::Cfi(entry, _) if is_cfi_rule(content)? => {
                entry.len = line_end - entry.offset;
                return Some(());
            }
            Open::Func(entry, _) => {
                if let Some(origin) = func_subline(content)? {
                    entry.len = line_end - entry.offset;
                    if let Some(id) = origin {
                        self.origins.push(here(id, id));
                    }
                    return Some(());
                }
            }
            _ => {}
        }
        self.close();

        if content.is_empty() {
            // Nothing to index.
        } else if let Some(rest) = content.strip_prefix(b"MODULE") {
            // The parser wants it as the very first line.
            if offset != 0 {
                return None;
            }
            module_fields(rest)?;
        } else if let Some(rest) = content.strip_prefix(b"INFO") {
            Fields::new(rest)?.rest()?;
        } else if let Some(rest) = content.strip_prefix(b"FILE") {
            let id = id_line(rest)?;
            self.files.push(here(id, id));
        } else if let Some(rest) = content.strip_prefix(b"INLINE_ORIGIN") {
            let id = id_line(rest)?;
            self.origins.push(here(id, id));
        } else if let Some(rest) = content.strip_prefix(b"STACK CFI INIT") {
            let mut fields = Fields::new(rest)?;
            let address = fields.hex(16)?;
            let size = fields.hex(8)?;
            fields.rest()?;
            let end = range_end(address, size);
            self.open = Open::Cfi(here(address, end.unwrap_or(address)), end.is_some());
            self.has_stack = true;
        } else if let Some(rest) = content.strip_prefix(b"STACK WIN") {
            let mut fields = Fields::new(rest)?;
            let ty = fields.byte(u8::is_ascii_hexdigit)?;
            let address = fields.hex(16)?;
            let size = fields.hex(8)?;
            for _ in 0..6 {
                fields.hex(8)?;
            }
            let has_program_string = fields.byte(u8::is_ascii_digit)? == b'1';
            fields.rest()?;
            self.has_stack = true;
            let table = match ty {
                b'4' if has_program_string => &mut self.win[0],
                b'0' if !has_program_string => &mut self.win[1],
                _ => return Some(()),
            };
            if let Some(end) = range_end(address, size) {
                insert_win(table, here(address, end));
            }
        } else if let Some(rest) = content.strip_prefix(b"FUNC") {
            let mut fields = Fields::new(rest)?;
            fields.multiple();
            let address = fields.hex(16)?;
            let size = fields.hex(8)?;
            fields.hex(8)?;
            fields.rest()?;
            let end = range_end(address, size);
            self.open = Open::Func(here(address, end.unwrap_or(address)), end.is_some());
        } else if let Some(rest) = content.strip_prefix(b"PUBLIC") {
            let mut fields = Fields::new(rest)?;
            fields.multiple();
            let address = fields.hex(16)?;
            fields.hex(8)?;
            fields.rest()?;
            self.publics.push(here(address, address));
        } else {
            // Line records or `INLINE` outside a `FUNC`, unknown records: the parser fails.
            return None;
        }
        Some(())
    }

    /// Ends the open record, keeping it if it has a range.
    fn close(&mut self) {
        match std::mem::replace(&mut self.open, Open::Nothing) {
            Open::Cfi(entry, true) => self.cfi.push(entry),
            Open::Func(entry, true) => self.funcs.push(entry),
            _ => {}
        }
    }

    fn finish(mut self) -> Index {
        self.close();
        let [frame_data, fpo] = self.win;
        self.publics.sort_by_key(|e| e.start);
        Index {
            has_stack: self.has_stack,
            tables: [
                keep_first(frame_data),
                keep_first(fpo),
                keep_first(self.cfi),
                keep_first(self.funcs),
                self.publics,
                keep_last_by_id(self.files),
                keep_last_by_id(self.origins),
            ],
        }
    }
}

/// Whether a line is a `STACK CFI` rule (`Some(false)` for anything else); `None` for a
/// malformed rule, which the parser rejects.
fn is_cfi_rule(content: &[u8]) -> Option<bool> {
    let Some(rest) = content.strip_prefix(b"STACK CFI") else {
        return Some(false);
    };
    let Some(mut fields) = Fields::new(rest) else {
        return Some(false);
    };
    // `STACK CFI INIT` starts the next record (`I` is no hex digit).
    if fields.0.first().is_none_or(|b| !b.is_ascii_hexdigit()) {
        return Some(false);
    }
    fields.hex(16)?;
    fields.rest()?;
    Some(true)
}

/// What a line after a `FUNC` is to the parser: `Some(Some(id))` an `INLINE_ORIGIN` (which
/// also defines an origin), `Some(None)` a line record or an `INLINE`, `None` not a subline
/// (it ends the `FUNC`). The outer `Option` is `None` for a malformed `INLINE`/`INLINE_ORIGIN`
/// subline, which makes the parser reject the file.
#[allow(clippy::option_option)]
fn func_subline(content: &[u8]) -> Option<Option<Option<u64>>> {
    // Line records start with a hex digit, and are most lines: test them first.
    if content.first().is_some_and(u8::is_ascii_hexdigit) {
        return Some(is_line_record(content).then_some(None));
    }
    // The parser looks for the keyword and one space; the fields read from the space on.
    if content.starts_with(b"INLINE_ORIGIN ") {
        return Some(Some(Some(id_line(&content[b"INLINE_ORIGIN".len()..])?)));
    }
    if content.starts_with(b"INLINE ") {
        inline_fields(&content[b"INLINE".len()..])?;
        return Some(Some(None));
    }
    Some(None)
}

/// A line record: `<address> <size> <line> <file id>`, nothing after (the parser's
/// `func_line_data`).
fn is_line_record(content: &[u8]) -> bool {
    let mut fields = Fields(content);
    fields.hex(16).is_some()
        && fields.hex(8).is_some()
        && fields.decimal().is_some()
        && fields.last_decimal().is_some()
}

/// `INLINE` after its keyword: depth, call line, call file id, origin id, then one or more
/// `<address> <size>` pairs. Returns the call file id and the origin id.
fn inline_fields(rest: &[u8]) -> Option<(u32, u32)> {
    let mut fields = Fields::new(rest)?;
    fields.decimal()?;
    fields.decimal()?;
    let file = fields.decimal()?;
    let origin = fields.decimal()?;
    loop {
        fields.hex(16)?;
        fields.last_hex(8)?;
        if fields.0.is_empty() {
            return Some((file, origin));
        }
        fields.spaces()?;
    }
}

/// `FILE` and `INLINE_ORIGIN` after their keyword: an id, then a name.
fn id_line(rest: &[u8]) -> Option<u64> {
    let mut fields = Fields::new(rest)?;
    let id = fields.decimal()?;
    fields.rest()?;
    Some(u64::from(id))
}

/// `MODULE` after its keyword: OS, CPU, debug id (hex), name.
fn module_fields(rest: &[u8]) -> Option<()> {
    let mut fields = Fields::new(rest)?;
    fields.word()?;
    fields.word()?;
    let digits = fields
        .0
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if digits == 0 {
        return None;
    }
    fields.0 = &fields.0[digits..];
    fields.spaces()?;
    fields.rest()
}

/// `FILE` and `INLINE_ORIGIN` records by id: the parser keeps them in a map, so the last
/// definition of an id wins.
fn keep_last_by_id(mut entries: Vec<Entry>) -> Vec<Entry> {
    // Stable: equal ids stay in file order, and the last one is kept.
    entries.sort_by_key(|e| e.start);
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match kept.last_mut() {
            Some(last) if last.start == entry.start => *last = entry,
            _ => kept.push(entry),
        }
    }
    kept
}

/// The `FILE` and `INLINE_ORIGIN` ids a `FUNC` record's lines refer to, sorted and without
/// duplicates. Lines that do not read as references are skipped (the index checked them).
fn func_references(block: &[u8]) -> (Vec<u64>, Vec<u64>) {
    let mut files = Vec::new();
    let mut origins = Vec::new();
    for line in block.split(|&b| b == b'\n').skip(1) {
        let content = trim_cr(line);
        if content.first().is_some_and(u8::is_ascii_hexdigit) {
            let mut fields = Fields(content);
            let file = (|| {
                fields.hex(16)?;
                fields.hex(8)?;
                fields.decimal()?;
                fields.last_decimal()
            })();
            files.extend(file.map(u64::from));
        } else if content.starts_with(b"INLINE ") {
            if let Some((file, origin)) = inline_fields(&content[b"INLINE".len()..]) {
                files.push(u64::from(file));
                origins.push(u64::from(origin));
            }
        }
    }
    for ids in [&mut files, &mut origins] {
        ids.sort_unstable();
        ids.dedup();
    }
    (files, origins)
}

fn trim_cr(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

/// The space-separated fields of a record line, read as breakpad-symbols' parser reads them.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    /// After the record's keyword: at least one space.
    fn new(rest: &'a [u8]) -> Option<Self> {
        let mut fields = Fields(rest);
        fields.spaces()?;
        Some(fields)
    }

    fn spaces(&mut self) -> Option<()> {
        let n = self
            .0
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if n == 0 {
            return None;
        }
        self.0 = &self.0[n..];
        Some(())
    }

    /// A hex number of at most `digits` digits, then spaces.
    fn hex(&mut self, digits: usize) -> Option<u64> {
        let value = self.last_hex(digits)?;
        self.spaces()?;
        Some(value)
    }

    /// A hex number of at most `digits` digits (the parser's `hex_str`), with nothing after
    /// it read.
    fn last_hex(&mut self, digits: usize) -> Option<u64> {
        let mut value = 0u64;
        let mut n = 0;
        for &b in self.0.iter().take(digits) {
            let Some(digit) = (b as char).to_digit(16) else {
                break;
            };
            value = (value << 4) | u64::from(digit);
            n += 1;
        }
        if n == 0 {
            return None;
        }
        self.0 = &self.0[n..];
        Some(value)
    }

    /// A decimal `u32` of at most 10 digits (the parser's `decimal_u32`), then spaces.
    fn decimal(&mut self) -> Option<u32> {
        let value = self.number()?;
        self.spaces()?;
        Some(value)
    }

    /// A decimal `u32` that ends the line.
    fn last_decimal(&mut self) -> Option<u32> {
        let value = self.number()?;
        self.0.is_empty().then_some(value)
    }

    fn number(&mut self) -> Option<u32> {
        let mut value = 0u64;
        let mut n = 0;
        for &b in self.0.iter().take(10) {
            if !b.is_ascii_digit() {
                break;
            }
            value = value * 10 + u64::from(b - b'0');
            n += 1;
        }
        if n == 0 {
            return None;
        }
        self.0 = &self.0[n..];
        u32::try_from(value).ok()
    }

    /// Bytes up to the next space (the parser's `non_space`), then spaces.
    fn word(&mut self) -> Option<()> {
        let n = self.0.iter().take_while(|&&b| b != b' ').count();
        std::str::from_utf8(&self.0[..n]).ok()?;
        self.0 = &self.0[n..];
        self.spaces()
    }

    /// One byte that `is` accepts (a digit of `STACK WIN`'s type or program-string flag),
    /// then spaces.
    fn byte(&mut self, is: fn(&u8) -> bool) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        if !is(&b) {
            return None;
        }
        self.0 = rest;
        self.spaces()?;
        Some(b)
    }

    /// The optional `m` flag of `FUNC` and `PUBLIC`.
    fn multiple(&mut self) {
        if let Some(rest) = self.0.strip_prefix(b"m") {
            let mut after = Fields(rest);
            if after.spaces().is_some() {
                *self = after;
            }
        }
    }

    /// The rest of the line (a name, rules or a program string) must be UTF-8, and the
    /// parser ends it at the first `\r` (the line's trailing ones are trimmed already).
    fn rest(&mut self) -> Option<()> {
        if memchr::memchr(b'\r', self.0).is_some() {
            return None;
        }
        std::str::from_utf8(self.0).ok().map(|_| ())
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> Option<u64> {
        let (bytes, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*bytes))
    }
}

/// The parts of a CFI cache file, to be written one after the other: the text, the index (or
/// a marker for none) and the footer.
/// Whether Breakpad text has any `STACK` record (else it provides no unwind information), for
/// text without an index: one scan of the whole text.
pub(crate) fn has_stack_records(text: &[u8]) -> bool {
    memchr::memmem::find(text, b"STACK ").is_some()
}

/// Where the text of a cache file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextAt {
    /// At the start of the cache file (symbolic-cfi's text of a native file, or a Breakpad
    /// file that needed a final newline).
    CacheFile,
    /// In the debug file the cache file was built from: a Breakpad file as it is, which the
    /// cache then does not copy (the cache key covers the file's path, size and modification
    /// time, and the length is checked again when the file is read back).
    DebugFile,
}

/// The index and footer of a cache file for `text`; with [`TextAt::CacheFile`] the text goes
/// before them.
pub(crate) fn cache_file_parts(text: &[u8], index: Option<&Index>, at: TextAt) -> [Vec<u8>; 2] {
    let index = index.map_or_else(|| vec![NO_INDEX], Index::encode);
    let at = match at {
        TextAt::CacheFile => TEXT_IN_CACHE_FILE,
        TextAt::DebugFile => TEXT_IN_DEBUG_FILE,
    };
    let mut footer = Vec::with_capacity(FOOTER_LEN);
    footer.extend_from_slice(&(text.len() as u64).to_le_bytes());
    footer.extend_from_slice(&at.to_le_bytes());
    footer.extend_from_slice(MAGIC);
    [index, footer]
}

/// A cache file read back: the text, and its index if it has one. `debug_file` opens the debug
/// file the cache file was built from, and is called only when the text is there. `None` for
/// a file that is cut short, of another version or corrupt, or whose debug file is gone or no
/// longer of the text's length (it is then rebuilt).
pub(crate) fn read_cache_file(
    data: ByteView<'static>,
    debug_file: impl FnOnce() -> Option<ByteView<'static>>,
) -> Option<CachedCfi> {
    let len = data.len();
    let footer = data.get(len.checked_sub(FOOTER_LEN)?..)?;
    let (text_len, rest) = footer.split_first_chunk::<8>()?;
    let (at, magic) = rest.split_first_chunk::<8>()?;
    if magic != MAGIC {
        return None;
    }
    let text_len = usize::try_from(u64::from_le_bytes(*text_len)).ok()?;
    let index_start = match u64::from_le_bytes(*at) {
        TEXT_IN_CACHE_FILE => text_len,
        TEXT_IN_DEBUG_FILE => 0,
        _ => return None,
    };
    let index_bytes = data.get(index_start..len - FOOTER_LEN)?;
    let (&flag, index_bytes) = index_bytes.split_first()?;
    let index = match flag {
        HAS_INDEX => Some(Index::decode(index_bytes, text_len as u64)?),
        NO_INDEX if index_bytes.is_empty() => None,
        _ => return None,
    };
    let data = if index_start == 0 {
        // The index is decoded: only the debug file stays mapped.
        debug_file().filter(|text| text.len() == text_len)?
    } else {
        data
    };
    Some(CachedCfi {
        data,
        text_len,
        index,
    })
}

/// A CFI cache file that passed [`read_cache_file`]'s checks.
pub(crate) struct CachedCfi {
    /// Starts with the text: the cache file, or the debug file.
    data: ByteView<'static>,
    text_len: usize,
    index: Option<Index>,
}

impl CachedCfi {
    /// The Breakpad text.
    pub(crate) fn text(&self) -> &[u8] {
        &self.data[..self.text_len]
    }

    /// Whether the text has `STACK` records: from the index when there is one, so that the
    /// pages of a large text are not all read to find out.
    pub(crate) fn has_stack(&self) -> bool {
        match &self.index {
            Some(index) => index.has_stack,
            None => has_stack_records(self.text()),
        }
    }

    /// Ready for the walker: lazily when the file has an index, else parsed whole.
    pub(crate) fn into_cfi(self) -> Result<Cfi, String> {
        match self.index {
            Some(index) => Ok(Cfi::Lazy(LazyCfi {
                data: self.data,
                text_len: self.text_len,
                index,
                parsed: Mutex::new(HashMap::new()),
            })),
            None => SymbolFile::from_bytes(self.text())
                .map(Cfi::Parsed)
                .map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};

    use symbolic::common::DebugId;

    use super::*;
    use crate::symbolicate::cache::indexed_text;
    use crate::symbolicate::sources::LocalDirectory;
    use crate::test_rng::TestRng;

    /// Everything a walk or a symbol lookup did, as text.
    #[derive(Default)]
    struct Log(Vec<String>);

    struct Walker {
        instruction: u64,
        log: Log,
    }

    impl FrameWalker for Walker {
        fn get_instruction(&self) -> u64 {
            self.instruction
        }
        fn has_grand_callee(&self) -> bool {
            true
        }
        fn get_grand_callee_parameter_size(&self) -> u32 {
            8
        }
        fn get_register_at_address(&self, address: u64) -> Option<u64> {
            Some(address ^ 0x5a5a_5a5a)
        }
        fn get_callee_register(&self, name: &str) -> Option<u64> {
            let sum: u64 = name.bytes().map(u64::from).sum();
            Some(0x7fff_0000 + sum * 16)
        }
        fn set_caller_register(&mut self, name: &str, val: u64) -> Option<()> {
            self.log.0.push(format!("set {name}={val:#x}"));
            Some(())
        }
        fn clear_caller_register(&mut self, name: &str) {
            self.log.0.push(format!("clear {name}"));
        }
        fn set_cfa(&mut self, val: u64) -> Option<()> {
            self.log.0.push(format!("cfa {val:#x}"));
            Some(())
        }
        fn set_ra(&mut self, val: u64) -> Option<()> {
            self.log.0.push(format!("ra {val:#x}"));
            Some(())
        }
        fn set_cfi_rules_start_address(&mut self, addr: Option<u64>) {
            self.log.0.push(format!("rules start {addr:x?}"));
        }
    }

    /// Records what a symbol lookup told the frame, as text (also used by `provider.rs`).
    pub(crate) struct Symbolizer {
        pub(crate) instruction: u64,
        pub(crate) log: Vec<String>,
    }

    impl FrameSymbolizer for Symbolizer {
        fn get_instruction(&self) -> u64 {
            self.instruction
        }
        fn set_function(&mut self, name: &str, base: u64, parameter_size: u32) {
            self.log
                .push(format!("function {name} {base:#x} {parameter_size}"));
        }
        fn set_source_file(&mut self, file: &str, line: u32, base: u64) {
            self.log.push(format!("file {file}:{line} {base:#x}"));
        }
        fn add_inline_frame(&mut self, name: &str, file: Option<&str>, line: Option<u32>) {
            self.log.push(format!("inline {name} {file:?} {line:?}"));
        }
    }

    /// What a walk and a symbol lookup at `addr` do with `cfi`.
    fn outcome(cfi: &Cfi, addr: u64) -> (Option<()>, Vec<String>, Vec<String>) {
        let module = ("test", DebugId::default());
        let mut walker = Walker {
            instruction: addr,
            log: Log::default(),
        };
        let walked = cfi.walk_frame(&module, &mut walker);
        let mut symbolizer = Symbolizer {
            instruction: addr,
            log: Vec::new(),
        };
        cfi.fill_symbol(&module, &mut symbolizer);
        // breakpad-symbols sets the caller's registers in hash map order.
        let mut walk = walker.log.0;
        walk.sort();
        (walked, walk, symbolizer.log)
    }

    /// The text as a cache file, read back (with its index): the text in the cache file, or
    /// only the index in it and the text in the "debug file".
    fn lazy_at(text: &[u8], index: &Index, at: TextAt) -> Cfi {
        let [index, footer] = cache_file_parts(text, Some(index), at);
        let (file, debug_file) = match at {
            TextAt::CacheFile => ([text, &index, &footer].concat(), None),
            TextAt::DebugFile => ([&index[..], &footer].concat(), Some(text.to_vec())),
        };
        let cached = read_cache_file(ByteView::from_vec(file), || {
            debug_file.map(ByteView::from_vec)
        })
        .expect("valid cache file");
        assert!(cached.index.is_some());
        cached.into_cfi().unwrap()
    }

    fn lazy(text: &[u8], index: &Index) -> Cfi {
        lazy_at(text, index, TextAt::CacheFile)
    }

    /// Addresses around every record of the text: first, last and one past the last byte,
    /// and the byte before.
    fn record_addresses(text: &[u8]) -> Vec<u64> {
        let mut out = Vec::new();
        // Lines that do not parse (mutated text) are skipped.
        for line in String::from_utf8_lossy(text).lines() {
            let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "m").collect();
            let (address, size) = match fields.as_slice() {
                ["STACK", "WIN", _, a, s, ..] | ["STACK", "CFI", "INIT", a, s, ..] => (a, Some(s)),
                ["FUNC", a, s, ..] => (a, Some(s)),
                ["STACK", "CFI", a, ..] | ["PUBLIC", a, ..] => (a, None),
                _ => continue,
            };
            let Ok(address) = u64::from_str_radix(address, 16) else {
                continue;
            };
            let Some(size) = size.map_or(Some(1), |s| u64::from_str_radix(s, 16).ok()) else {
                continue;
            };
            let last = address.saturating_add(size.saturating_sub(1));
            out.extend([address.wrapping_sub(1), address, last, last.wrapping_add(1)]);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Builds the index of `text`, checks that it agrees with breakpad-symbols' parse, and
    /// that lookups through it give the same results as the full parse at every address.
    fn assert_lazy_matches_full(name: &str, text: &[u8], extra: &[u64]) -> usize {
        let full = Cfi::Parsed(SymbolFile::from_bytes(text).unwrap());
        let index = Index::build(text).unwrap_or_else(|| panic!("{name}: no index"));
        let Cfi::Parsed(parsed) = &full else {
            unreachable!()
        };
        assert!(index.agrees_with(parsed), "{name}: index disagrees");
        assert_eq!(index.has_stack(), has_stack_records(text), "{name}");
        let mut addresses = record_addresses(text);
        addresses.extend_from_slice(extra);
        for at in [TextAt::CacheFile, TextAt::DebugFile] {
            let lazy = lazy_at(text, &index, at);
            for &addr in &addresses {
                assert_eq!(
                    outcome(&lazy, addr),
                    outcome(&full, addr),
                    "{name}, text in the {at:?}: at {addr:#x}"
                );
            }
        }
        addresses.len()
    }

    pub(crate) fn native_dir() -> PathBuf {
        crate::test_support::fixtures().join("native")
    }

    /// Every debug file of the fixtures with unwind information (Breakpad `.sym` files, and
    /// ELF, Mach-O, PE and PDB files through symbolic-cfi): lazy lookups agree with the full
    /// parse at every record's edges.
    #[test]
    fn lazy_lookups_agree_with_full_parse_on_every_fixture() {
        let files = LocalDirectory::scan(native_dir()).unwrap().files().to_vec();
        let mut checked = Vec::new();
        for file in files.iter().filter(|f| f.features.has_unwind_info) {
            let view = ByteView::open(&file.path).unwrap();
            let text = indexed_text(file, &view).unwrap();
            if memchr::memmem::find(&text, b"STACK ").is_none() {
                continue;
            }
            let name = file.path.display().to_string();
            let addresses = assert_lazy_matches_full(&name, &text, &[]);
            checked.push((name, addresses));
        }
        let formats = files
            .iter()
            .filter(|f| f.features.has_unwind_info)
            .map(|f| f.format)
            .collect::<std::collections::HashSet<_>>();
        assert!(formats.len() >= 4, "{formats:?}");
        assert!(checked.len() >= 6, "{checked:?}");
    }

    #[test]
    fn overlapping_records_resolve_like_breakpad_symbols() {
        let text = b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 test.pdb\n\
            FUNC 1000 20 8 first\n\
            FUNC 1010 20 4 overlaps_first\n\
            FUNC 1021 10 c after_first\n\
            FUNC m 1021 10 c after_first\n\
            FUNC 2000 0 0 empty\n\
            PUBLIC 900 4 before\n\
            PUBLIC 1500 8 zeta\n\
            PUBLIC 1500 c alpha\n\
            PUBLIC m 3000 0 last\n\
            STACK WIN 4 1000 30 1 0 8 4 10 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =\n\
            STACK WIN 4 1004 20 1 0 8 4 10 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 8 + =\n\
            STACK WIN 4 1002 4 1 0 8 4 10 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 c + =\n\
            STACK WIN 4 1004 20 1 0 8 4 10 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 10 + =\n\
            STACK WIN 0 1000 10 1 0 4 4 8 0 0 1\n\
            STACK WIN 0 1000 10 1 0 0 4 8 0 0 0\n\
            STACK WIN 0 1008 0 1 0 0 4 8 0 0 0\n\
            STACK WIN 0 1100 10 1 0 0 4 8 0 1 0\n\
            STACK WIN 2 1200 10 1 0 0 4 8 0 0 0\n\
            STACK CFI INIT 1000 40 .cfa: $esp 4 + .ra: .cfa -4 + ^\n\
            STACK CFI 1001 .cfa: $esp 8 +\n\
            STACK CFI 1003 .cfa: $esp 12 + $ebp: .cfa -8 + ^\n\
            STACK CFI INIT 1010 40 .cfa: $esp 16 + .ra: .cfa -4 + ^\n\
            STACK CFI INIT 1040 8 .cfa: $esp 20 + .ra: .cfa -4 + ^\n\
            STACK CFI 1044 .cfa: $esp 24 +\n\
            STACK CFI INIT 1060 0 .cfa: $esp 4 + .ra: .cfa -4 + ^\n\
            STACK CFI 1060 .cfa: $esp 8 +\n\
            STACK CFI INIT ffffffffffffff00 200 .cfa: $esp 4 + .ra: .cfa -4 + ^\n";
        let extra: Vec<u64> = (0x8f0..0x1080)
            .chain([0x1500, 0x2fff, 0x3000, u64::MAX])
            .collect();
        assert_lazy_matches_full("overlaps", text, &extra);
    }

    #[test]
    fn text_the_index_cannot_describe_is_parsed_whole() {
        // Text breakpad-symbols rejects: the index refuses it too (and the whole parse then
        // makes the file malformed).
        for text in [
            // A line record or an `INLINE` outside a `FUNC`.
            &b"1000 10 1 1\n"[..],
            b"FUNC 1000 10 0 f\n\n1000 10 1 1\n",
            b"INLINE 0 1 1 1 1000 10\n",
            // Malformed line records, `INLINE`, `FILE`, `INLINE_ORIGIN`.
            b"FUNC 1000 10 0 f\n1000 10 x 1\n",
            b"FUNC 1000 10 0 f\n1000 10 1 1 \n",
            b"FUNC 1000 10 0 f\n1000 10 1 99999999999\n",
            b"FUNC 1000 10 0 f\nINLINE 0 1 1 1 1000\n",
            b"FUNC 1000 10 0 f\nINLINE 0 1 1 1 1000 10 \n",
            b"FUNC 1000 10 0 f\nINLINE_ORIGIN x f\n",
            b"FILE 1\n",
            b"FILE x a.cc\n",
            // `MODULE` not first, an unknown record, a `\r` inside a name.
            b"FILE 1 a.cc\nMODULE Linux x86_64 C0BCC3F19827FE653058404B2831D9E60 crash\n",
            b"FROB 1\n",
            b"PUBLIC 1000 0 a\rb\n",
            // A `STACK CFI` rule without its `INIT`.
            b"STACK CFI 1000 .cfa: $esp 4 +\n",
        ] {
            let shown = String::from_utf8_lossy(text);
            assert_eq!(Index::build(text), None, "{shown}");
            assert!(SymbolFile::from_bytes(text).is_err(), "{shown}");
        }
        // No final newline: the index refuses it (the parser would ignore the last line; the
        // store adds the newline first).
        assert_eq!(Index::build(b"STACK CFI INIT 1000 10 .cfa: $esp 4 +"), None);
        // What the parser accepts and the index describes: line records, `INLINE` and
        // `INLINE_ORIGIN` sublines, tabs, `\r\n`.
        let text = b"MODULE Linux x86_64 C0BCC3F19827FE653058404B2831D9E60 crash\r\n\
            FILE 1 a.cc\r\nINLINE_ORIGIN 2 g\nFUNC 1000 10 0 f\n1000 8\t1 1\r\n\
            INLINE 0 5 1 2 1000 4 1008 2\nINLINE_ORIGIN 3 h\n1008 8 2 1\nINFO CODE_ID 1234\n";
        let index = Index::build(text).unwrap();
        assert!(index.agrees_with(&SymbolFile::from_bytes(text).unwrap()));
        let text = b"STACK CFI INIT 1000 10 .cfa: $esp 4 + .ra: .cfa -4 + ^\n";
        let [index, footer] = cache_file_parts(text, None, TextAt::CacheFile);
        let file = [&text[..], &index, &footer].concat();
        let cached = read_cache_file(ByteView::from_vec(file), || None).unwrap();
        assert!(cached.index.is_none());
        assert!(matches!(cached.into_cfi(), Ok(Cfi::Parsed(_))));
    }

    /// A small Breakpad file with every record kind the index describes.
    const EVERY_RECORD: &[u8] = b"MODULE windows x86 5A9832E5287241C1838ED98914E9B7FF1 t.pdb\n\
        INFO CODE_ID 5A9832E5287241C1838ED98914E9B7FF1\n\
        FILE 1 a.cc\nFILE 2 b.h\nINLINE_ORIGIN 1 inner\nINLINE_ORIGIN 2 innermost\n\
        FUNC 1000 30 8 outer\n1000 10 10 1\n1010 10 11 1\n1020 10 12 2\n\
        INLINE 0 11 1 1 1010 10\nINLINE 1 30 2 2 1014 4\n\
        FUNC m 1040 10 4 second\n1040 10 20 2\n\
        PUBLIC 1050 0 label\nPUBLIC 2000 4 far\n\
        STACK WIN 4 1000 30 1 0 8 4 10 0 1 $T0 .raSearch = $eip $T0 ^ = $esp $T0 4 + =\n\
        STACK WIN 0 1040 10 1 0 4 4 8 0 0 1\n\
        STACK CFI INIT 1000 40 .cfa: $esp 4 + .ra: .cfa -4 + ^\n\
        STACK CFI 1001 .cfa: $esp 8 +\n\
        STACK CFI INIT 2000 8 .cfa: $esp 4 + .ra: .cfa -4 + ^\n";

    /// Random edits of valid text (lines dropped, repeated, moved or cut, bytes replaced):
    /// the index never panics, never describes text breakpad-symbols rejects, and where it
    /// describes the text, every lookup through it equals the full parse's.
    #[test]
    fn mutated_text_is_indexed_only_as_the_parser_reads_it() {
        let mut sources = vec![("every record".to_owned(), EVERY_RECORD.to_vec())];
        let small = LocalDirectory::scan(native_dir().join("windows-x86/symbols"))
            .unwrap()
            .files()
            .iter()
            .find(|f| f.format == symbolic::debuginfo::FileFormat::Breakpad)
            .map(|f| std::fs::read(&f.path).unwrap())
            .expect("the windows-x86 fixture has a .sym file");
        sources.push(("windows-x86 .sym".to_owned(), small));

        let mut rng = TestRng::new(0x9e37_79b9_7f4a_7c15);
        let mut random = move |below: usize| rng.below(below);
        let (mut indexed, mut refused) = (0, 0);
        for (name, source) in &sources {
            let rounds = if source.len() > 4096 { 100 } else { 1000 };
            for round in 0..rounds {
                let mut lines: Vec<Vec<u8>> =
                    source.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                lines.pop(); // after the final newline
                for _ in 0..1 + random(3) {
                    let at = random(lines.len());
                    match random(5) {
                        0 => {
                            lines.remove(at);
                        }
                        1 => {
                            let line = lines[random(lines.len())].clone();
                            lines.insert(at, line);
                        }
                        2 => {
                            let line = lines.remove(at);
                            let to = random(lines.len() + 1);
                            lines.insert(to, line);
                        }
                        3 => {
                            let cut = random(lines[at].len() + 1);
                            lines[at].truncate(cut);
                        }
                        _ => {
                            if !lines[at].is_empty() {
                                let i = random(lines[at].len());
                                lines[at][i] = b" \tx0f-\r"[random(7)];
                            }
                        }
                    }
                    if lines.is_empty() {
                        lines.push(b"FUNC 1000 10 0 f".to_vec());
                    }
                }
                let mut text = lines.join(&b'\n');
                text.push(b'\n');
                let label = format!("{name}, round {round}: {}", String::from_utf8_lossy(&text));
                match (Index::build(&text), SymbolFile::from_bytes(&text)) {
                    (Some(index), Ok(parsed)) => {
                        assert!(index.agrees_with(&parsed), "{label}");
                        assert_eq!(index.has_stack(), has_stack_records(&text), "{label}");
                        let lazy = lazy(&text, &index);
                        let full = Cfi::Parsed(parsed);
                        for addr in record_addresses(&text) {
                            assert_eq!(outcome(&lazy, addr), outcome(&full, addr), "{label}");
                        }
                        indexed += 1;
                    }
                    (Some(_), Err(error)) => {
                        panic!("indexed, but the parser says {error}: {label}")
                    }
                    (None, _) => refused += 1,
                }
            }
        }
        // Both kinds of outcome must occur, or the edits test nothing.
        assert!(
            indexed > 50 && refused > 50,
            "indexed {indexed}, refused {refused}"
        );
    }

    #[test]
    fn corrupt_cache_files_are_refused() {
        let text = b"FUNC 1000 10 0 f\nSTACK CFI INIT 1000 10 .cfa: $esp 4 + .ra: .cfa -4 + ^\n\
                     STACK CFI INIT 1010 10 .cfa: $esp 8 + .ra: .cfa -4 + ^\n";
        let index = Index::build(text).unwrap();
        let [index_bytes, footer] = cache_file_parts(text, Some(&index), TextAt::CacheFile);
        let good = [&text[..], &index_bytes, &footer].concat();
        let read = |file: Vec<u8>| read_cache_file(ByteView::from_vec(file), || None);
        assert!(read(good.clone()).is_some());

        let entries_at = text.len() + 2 + TABLES * 8;
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("cut short", good[..good.len() - 3].to_vec()),
            ("index cut short", {
                let mut f = good[..entries_at + 8].to_vec();
                f.extend_from_slice(&footer);
                f
            }),
            // The version 2 format: text and a trailer line.
            ("old version", [&text[..], b"# relay cfi end\n"].concat()),
        ];
        // Versions 3 and 4 (without the `FILE`/`INLINE_ORIGIN` tables, and with a 16-byte
        // footer without the text's place).
        for (name, magic) in [("version 3", b"RLYCFI3\n"), ("version 4", b"RLYCFI4\n")] {
            let mut f = good.clone();
            let at = f.len() - MAGIC.len();
            f[at..].copy_from_slice(magic);
            cases.push((name, f));
        }
        let mut patch = |name, at: usize, bytes: &[u8]| {
            let mut f = good.clone();
            f[at..at + bytes.len()].copy_from_slice(bytes);
            cases.push((name, f));
        };
        let footer_at = good.len() - FOOTER_LEN;
        patch(
            "text length past the end",
            footer_at,
            &u64::MAX.to_le_bytes(),
        );
        patch("unknown text place", footer_at + 8, &7u64.to_le_bytes());
        patch("bad flag", text.len(), &[7]);
        patch("bad stack flag", text.len() + 1, &[7]);
        patch("huge count", text.len() + 2, &(u64::MAX / 2).to_le_bytes());
        // The first CFI entry (after the one FUNC... tables are in order: frame data, FPO,
        // CFI, FUNC, PUBLIC): its text offset past the text, then its range reversed.
        patch(
            "offset past text",
            entries_at + 16,
            &(text.len() as u64).to_le_bytes(),
        );
        patch("reversed range", entries_at, &u64::MAX.to_le_bytes());
        patch(
            "overlapping ranges",
            entries_at + ENTRY_LEN,
            &0x1000u64.to_le_bytes(),
        );
        for (name, file) in cases {
            assert!(read(file).is_none(), "{name} accepted");
        }

        // The text in the debug file: refused when that file is gone or changed length.
        let [index_bytes, footer] = cache_file_parts(text, Some(&index), TextAt::DebugFile);
        let index_only = [&index_bytes[..], &footer].concat();
        let with_debug_file = |debug_file: Option<&[u8]>| {
            read_cache_file(ByteView::from_vec(index_only.clone()), || {
                debug_file.map(|d| ByteView::from_vec(d.to_vec()))
            })
        };
        let cached = with_debug_file(Some(text)).expect("the debug file's text");
        assert_eq!(cached.text(), text);
        assert!(with_debug_file(None).is_none(), "debug file gone");
        let longer = [&text[..], b"PUBLIC 2000 0 g\n"].concat();
        assert!(
            with_debug_file(Some(&longer)).is_none(),
            "debug file longer"
        );
        assert!(
            with_debug_file(Some(&text[..text.len() - 1])).is_none(),
            "debug file shorter"
        );
    }
}
