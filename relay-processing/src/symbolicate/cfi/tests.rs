use std::path::PathBuf;

use minidump_unwind::SymbolFile;
use symbolic::common::ByteView;

use super::format::{ENTRY_LEN, FOOTER_LEN, MAGIC};
use super::index::TABLES;
use super::probe::{lazy_at, outcome, record_addresses};
use super::*;
use crate::symbolicate::cache::indexed_text;
use crate::symbolicate::sources::LocalDirectory;
use crate::test_rng::TestRng;

fn lazy(text: &[u8], index: &Index) -> Cfi {
    lazy_at(text, index, TextAt::CacheFile)
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
