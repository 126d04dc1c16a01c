//! Lookups through the index: the records that decide an address, cut out of the text as a
//! small Breakpad file and parsed by breakpad-symbols (each set once, then kept).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use minidump_unwind::SymbolFile;
use symbolic::common::ByteView;

use super::index::{Entry, Index, CFI, FILES, FPO, FRAME_DATA, FUNC, ORIGINS, PUBLIC};
use super::parse::func_references;

/// An indexed CFI cache file: lookups parse only the records at the address.
pub(crate) struct LazyCfi {
    data: ByteView<'static>,
    text_len: usize,
    index: Index,
    /// Parsed records, by the entries they were made of.
    parsed: Mutex<HashMap<[u32; 6], Option<Arc<SymbolFile>>>>,
}

impl LazyCfi {
    /// Indexed text: `data` starts with the text (`text_len` bytes). Lookups stay
    /// bounds-checked against the text whatever `text_len` says.
    pub(super) fn new(data: ByteView<'static>, text_len: usize, index: Index) -> LazyCfi {
        LazyCfi {
            text_len: text_len.min(data.len()),
            data,
            index,
            parsed: Mutex::new(HashMap::new()),
        }
    }

    /// The records that decide a lookup at `addr` (module-relative), parsed; `None` when there
    /// are none.
    pub(super) fn records_at(&self, addr: u64) -> Option<Arc<SymbolFile>> {
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
}
