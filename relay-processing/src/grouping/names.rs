//! Function, module and file names without what changes between builds.

use std::sync::LazyLock;

use regex::Regex;

static RUST_HASH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"::h[0-9a-f]{16}$").unwrap());
static OFFSET: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\+\s*0x[0-9a-fA-F]+$").unwrap());
static CLONE_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\.(cold|part|isra|constprop|lto_priv|clone|llvm)(\.\d+)*)+$").unwrap()
});
static ANON_NAMESPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(anonymous namespace\)::|`anonymous namespace'::").unwrap());
static CPP_LAMBDA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{lambda\([^{}]*\)#\d+\}").unwrap());
static JS_ALIAS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\[as [^\]]*\]$").unwrap());
static NUMBERED_SUFFIX: LazyLock<Regex> = LazyLock::new(|| {
    // Java `lambda$main$0` / `Foo$1`, Go `main.func1.2`, C# `<Main>b__0_0`, JVM
    // `$$Lambda$123/0x0000000800c02460`.
    Regex::new(r"\$\$Lambda\$\d+(/0x[0-9a-fA-F]+)?|\$\d+|\.func\d+(\.\d+)*|b__\d+(_\d+)?").unwrap()
});
static HEX_RUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b[0-9a-fA-F]{8,}\b").unwrap());
static SO_VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\.so)(\.\d+)+$").unwrap());

/// A function name without what changes between builds: Rust hashes (`::h0123…`),
/// symbol offsets (`+0x1a`), compiler clone suffixes (`.cold`, `.isra.0`), anonymous
/// namespaces, lambda numbering, parameter lists and JavaScript `[as alias]` notes.
/// `None` for names that say nothing (`?`, `<anonymous>`, `<unknown>`).
pub fn normalize_function(name: &str) -> Option<String> {
    let name = name.trim();
    if says_nothing(name) {
        return None;
    }
    if is_plain_function(name) {
        return Some(name.to_owned());
    }
    normalize_function_text(name)
}

/// A trimmed function name that names no function.
fn says_nothing(name: &str) -> bool {
    matches!(
        name,
        "" | "?" | "<unknown>" | "<anonymous>" | "unknown" | "<redacted>"
    )
}

/// Whether none of [`normalize_function`]'s rules can change `name`, told without running
/// them: most names (`handle_request`, `<module>`, `Foo.bar`, `Object.?`) are plain, and the
/// rules cost several regex searches each. Every rule needs a character outside
/// `[A-Za-z0-9_<>.?]`, except `b__1` and `.func1` numbering and the clone suffixes, which are
/// checked here.
fn is_plain_function(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'<' | b'>' | b'.' | b'?'))
        && !name.contains("b__")
        && !name.contains(".func")
        && (!name.contains('.') || !CLONE_SUFFIX.is_match(name))
}

/// [`normalize_function`]'s rules, on a trimmed, meaningful name.
fn normalize_function_text(name: &str) -> Option<String> {
    let name = RUST_HASH.replace(name, "");
    let name = OFFSET.replace(&name, "");
    let name = CLONE_SUFFIX.replace(&name, "");
    let name = ANON_NAMESPACE.replace_all(&name, "");
    let name = CPP_LAMBDA.replace_all(&name, "{lambda}");
    let name = JS_ALIAS.replace(&name, "");
    let name = strip_parameters(&name);
    let name = NUMBERED_SUFFIX.replace_all(name, |caps: &regex::Captures| {
        let matched = &caps[0];
        if matched.starts_with("$$Lambda") {
            "$$Lambda".to_owned()
        } else if matched.starts_with('$') {
            "$?".to_owned()
        } else if matched.starts_with(".func") {
            ".func?".to_owned()
        } else {
            "b__?".to_owned()
        }
    });
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

/// `ns::f(int, char const*) const` → `ns::f`: cuts the last balanced parameter list.
fn strip_parameters(name: &str) -> &str {
    let trimmed = name
        .trim_end()
        .trim_end_matches(" const")
        .trim_end_matches(" &&")
        .trim_end_matches(" &")
        .trim_end();
    if !trimmed.ends_with(')') || trimmed.starts_with('(') {
        return name;
    }
    let mut depth = 0usize;
    for (index, c) in trimmed.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let head = trimmed[..index].trim_end();
                    return if head.is_empty() { name } else { head };
                }
            }
            _ => {}
        }
    }
    name
}

/// A module name without generated parts: long hex runs (bundle hashes) and numbered
/// anonymous classes.
pub fn normalize_module(module: &str) -> String {
    let module = module.trim();
    if is_plain_module(module) {
        return module.to_owned();
    }
    normalize_module_text(module)
}

/// Whether [`normalize_module`]'s rules cannot change `module`: it has no run of eight hex
/// digits and none of the numbering patterns (`$1`, `.func1`, `b__1`).
fn is_plain_module(module: &str) -> bool {
    let mut hex_run = 0;
    for b in module.bytes() {
        hex_run = if b.is_ascii_hexdigit() {
            hex_run + 1
        } else {
            0
        };
        if hex_run == 8 {
            return false;
        }
    }
    !module.contains('$') && !module.contains(".func") && !module.contains("b__")
}

/// [`normalize_module`]'s rules, on a trimmed name.
fn normalize_module_text(module: &str) -> String {
    let module = HEX_RUN.replace_all(module, "<hex>");
    NUMBERED_SUFFIX
        .replace_all(&module, |caps: &regex::Captures| {
            if caps[0].starts_with("$$Lambda") {
                "$$Lambda"
            } else {
                "$?"
            }
            .to_owned()
        })
        .into_owned()
}

/// A file or native module path reduced to what is stable: its base name without a
/// bundle hash or shared-library version.
pub(super) fn normalize_file(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    let base = SO_VERSION.replace(base, "$1");
    HEX_RUN.replace_all(&base, "<hex>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::TestRng;

    /// Names built from pieces that each rule reacts to, and pieces that are plain, joined in
    /// every order a small generator produces.
    fn generated_names() -> Vec<String> {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "9",
            "_",
            "<",
            ">",
            ".",
            "main",
            "<module>",
            "Foo.bar",
            "b__",
            "b__1",
            "b__0_0",
            ".func",
            ".func1",
            ".func2.3",
            "$",
            "$1",
            "$$Lambda$12/0x0000000800c02460",
            ".cold",
            ".isra.0",
            ".part.1",
            ".clone",
            ".llvm.123",
            ".constprop.2",
            "::",
            "::h0123456789abcdef",
            " + 0x1a",
            "+0x2",
            "(anonymous namespace)::",
            "`anonymous namespace'::",
            "{lambda(int)#1}",
            " [as foo]",
            "(int, char)",
            "()",
            " const",
            " &",
            "deadbeef12",
            "0123456",
            "abcdef01",
            " ",
            "\t",
            "é",
            "?",
            "Object.?",
        ];
        let mut names: Vec<String> = PIECES.iter().map(|p| p.to_string()).collect();
        let mut rng = TestRng::new(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut name = String::new();
            for _ in 0..=rng.below(8) {
                name.push_str(PIECES[rng.below(PIECES.len())]);
            }
            names.push(name);
        }
        names
    }

    #[test]
    fn plain_name_shortcuts_agree_with_the_rules() {
        let mut plain = (0, 0);
        for name in generated_names() {
            let trimmed = name.trim();
            if !says_nothing(trimmed) {
                let full = normalize_function_text(trimmed);
                assert_eq!(normalize_function(&name), full, "function {name:?}");
                plain.0 += usize::from(is_plain_function(trimmed));
            }
            assert_eq!(
                normalize_module(&name),
                normalize_module_text(trimmed),
                "module {name:?}"
            );
            plain.1 += usize::from(is_plain_module(trimmed));
        }
        // Both shortcuts are taken often enough for the comparison to mean something.
        assert!(plain.0 > 1_000 && plain.1 > 1_000, "{plain:?}");
    }

    #[test]
    fn function_names_lose_generated_parts() {
        let cases = [
            ("app::main::h0123456789abcdef", "app::main"),
            ("crash_fn+0x1a", "crash_fn"),
            ("compute.cold", "compute"),
            ("compute.isra.0.part.1", "compute"),
            (
                "(anonymous namespace)::Worker::run(int, char const*) const",
                "Worker::run",
            ),
            ("`anonymous namespace'::helper(void)", "helper"),
            (
                "std::thread::_State_impl<{lambda(int)#1}>::_M_run()",
                "std::thread::_State_impl<{lambda}>::_M_run",
            ),
            ("Foo::operator()(int)", "Foo::operator()"),
            ("lambda$main$0", "lambda$main$?"),
            ("com.example.Foo$1.run", "com.example.Foo$?.run"),
            ("main.main.func1.2", "main.main.func?"),
            ("<Main>b__0_0", "<Main>b__?"),
            (
                "Function.executeUserEntryPoint [as runMain]",
                "Function.executeUserEntryPoint",
            ),
            (
                "-[AppDelegate application:didFinishLaunchingWithOptions:]",
                "-[AppDelegate application:didFinishLaunchingWithOptions:]",
            ),
            ("<module>", "<module>"),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_function(raw).as_deref(), Some(expected), "{raw}");
        }
        for unknown in ["?", "<anonymous>", "", "  "] {
            assert_eq!(normalize_function(unknown), None);
        }
        assert_eq!(
            normalize_module("static/js/main.3f9a8b7c"),
            "static/js/main.<hex>"
        );
        assert_eq!(
            normalize_module("com.example.Foo$$Lambda$123/0x0000000800c02460"),
            "com.example.Foo$$Lambda"
        );
    }
}
