//! Building the address index: one pass over Breakpad text that keeps, per kind of record,
//! what breakpad-symbols' parser would keep, and refuses text the parser would reject.

use super::parse::{func_subline, id_line, is_cfi_rule, module_fields, trim_cr, Fields};

/// Tables in the index, in file order.
pub(super) const TABLES: usize = 7;
pub(super) const FRAME_DATA: usize = 0;
pub(super) const FPO: usize = 1;
pub(super) const CFI: usize = 2;
pub(super) const FUNC: usize = 3;
pub(super) const PUBLIC: usize = 4;
/// `FILE` and `INLINE_ORIGIN` records, by id (`start` and `end` are the id).
pub(super) const FILES: usize = 5;
pub(super) const ORIGINS: usize = 6;

/// One record of the text: the address range it covers and where its lines are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) start: u64,
    /// Inclusive; for `PUBLIC` records the same as `start`.
    pub(super) end: u64,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// The address index of a CFI text: per table, the kept records sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(super) tables: [Vec<Entry>; TABLES],
    /// Whether the text has `STACK` records (else it provides no unwind information): kept so
    /// that a load need not scan the whole text for them.
    pub(super) has_stack: bool,
}

impl Index {
    /// Whether the index holds the records breakpad-symbols keeps when it parses the
    /// same text (tests and the `breakpad` fuzz target: building no longer parses the whole
    /// text to check).
    pub(crate) fn agrees_with(&self, parsed: &minidump_unwind::SymbolFile) -> bool {
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
        // Empty text too: breakpad-symbols refuses it (found by the `breakpad` fuzz target).
        if text.last() != Some(&b'\n') {
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

/// Whether Breakpad text has any `STACK` record (else it provides no unwind information), for
/// text without an index: one scan of the whole text for a line starting with `STACK `
/// (a function or file name containing the word is no record: found by the `breakpad` fuzz
/// target).
pub(crate) fn has_stack_records(text: &[u8]) -> bool {
    text.starts_with(b"STACK ") || memchr::memmem::find(text, b"\nSTACK ").is_some()
}
