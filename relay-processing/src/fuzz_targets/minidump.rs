//! `minidump`: stack walk and symbolication of a fuzzed dump with the fixtures' debug files,
//! through the same store and provider the server uses.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::symbolicate::sources::LocalDirectory;
use crate::symbolicate::{apply_to_event, symbolicate_minidump, SymbolStore};

/// The symbolication budget per dump: well inside the fuzzer's 1 s per input.
const BUDGET: Duration = Duration::from_millis(300);

/// The fixtures' debug files (every native set), indexed once per process.
fn store() -> &'static SymbolStore {
    static STORE: OnceLock<SymbolStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let native = super::fixtures().join("native");
        let source = LocalDirectory::scan(&native).expect("the native fixtures are readable");
        SymbolStore::new(vec![Box::new(source)], None)
    })
}

pub fn minidump(data: &[u8]) {
    let deadline = Instant::now() + BUDGET;
    let Ok(crash) = symbolicate_minidump(data, store(), Some(deadline)) else {
        return;
    };
    let mut event = serde_json::json!({ "platform": "native" });
    apply_to_event(&crash, &mut event);
    serde_json::to_vec(&event).expect("a symbolicated event serializes");
}
