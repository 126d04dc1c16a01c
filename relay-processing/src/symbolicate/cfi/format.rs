//! The cache file: the text (unless it stays in the debug file), the encoded index and a
//! footer, written in that order; everything read back is bounds-checked.

use minidump_unwind::SymbolFile;
use symbolic::common::ByteView;

use super::index::{has_stack_records, Entry, Index, FILES, ORIGINS, PUBLIC, TABLES};
use super::lookup::LazyCfi;
use super::Cfi;

/// Last bytes of every cache file (version 5): the text's length and where the text is (u64,
/// little endian, each), then this magic. Cache files are not synced to disk, so one cut short
/// by a crash lacks it and is rebuilt; older versions (`RLYCFI3`, `RLYCFI4`) are refused and
/// rebuilt too.
pub(super) const MAGIC: &[u8; 8] = b"RLYCFI5\n";
pub(super) const FOOTER_LEN: usize = 24;
/// The footer's "where": the text starts the cache file, or it is the debug file itself.
const TEXT_IN_CACHE_FILE: u64 = 1;
const TEXT_IN_DEBUG_FILE: u64 = 0;
/// Bytes of one index entry: start, end (inclusive), text offset, text length; u64 each.
pub(super) const ENTRY_LEN: usize = 32;
/// The index's first byte: whether there is an index at all.
const HAS_INDEX: u8 = 1;
const NO_INDEX: u8 = 0;

impl Index {
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

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u64(&mut self) -> Option<u64> {
        let (bytes, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(u64::from_le_bytes(*bytes))
    }
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

/// The parts of a CFI cache file, to be written one after the other: the text, the index (or
/// a marker for none) and the footer.
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
    pub(super) index: Option<Index>,
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
            Some(index) => Ok(Cfi::Lazy(LazyCfi::new(self.data, self.text_len, index))),
            None => SymbolFile::from_bytes(self.text())
                .map(Cfi::Parsed)
                .map_err(|e| e.to_string()),
        }
    }
}
