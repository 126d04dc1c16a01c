//! What a walk and a symbol lookup do with some CFI, as text: the oracle of the differential
//! tests (lookups through the index against the full parse) and of the `breakpad` fuzz target.

use minidump_unwind::{FrameSymbolizer, FrameWalker};
use symbolic::common::{ByteView, DebugId};

use super::{cache_file_parts, read_cache_file, Cfi, Index, TextAt};

/// Everything a walk or a symbol lookup did, as text.
#[derive(Default)]
pub(crate) struct Log(pub(crate) Vec<String>);

pub(crate) struct Walker {
    pub(crate) instruction: u64,
    pub(crate) log: Log,
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
pub(crate) fn outcome(cfi: &Cfi, addr: u64) -> (Option<()>, Vec<String>, Vec<String>) {
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
pub(crate) fn lazy_at(text: &[u8], index: &Index, at: TextAt) -> Cfi {
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

/// Addresses around every record of the text: first, last and one past the last byte,
/// and the byte before.
pub(crate) fn record_addresses(text: &[u8]) -> Vec<u64> {
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
