//! Breakpad lines read field by field, as breakpad-symbols' parser reads them, without
//! keeping what they say.

/// Whether a line is a `STACK CFI` rule (`Some(false)` for anything else); `None` for a
/// malformed rule, which the parser rejects.
pub(super) fn is_cfi_rule(content: &[u8]) -> Option<bool> {
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
pub(super) fn func_subline(content: &[u8]) -> Option<Option<Option<u64>>> {
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
pub(super) fn is_line_record(content: &[u8]) -> bool {
    let mut fields = Fields(content);
    fields.hex(16).is_some()
        && fields.hex(8).is_some()
        && fields.decimal().is_some()
        && fields.last_decimal().is_some()
}

/// `INLINE` after its keyword: depth, call line, call file id, origin id, then one or more
/// `<address> <size>` pairs. Returns the call file id and the origin id.
pub(super) fn inline_fields(rest: &[u8]) -> Option<(u32, u32)> {
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
pub(super) fn id_line(rest: &[u8]) -> Option<u64> {
    let mut fields = Fields::new(rest)?;
    let id = fields.decimal()?;
    fields.rest()?;
    Some(u64::from(id))
}

/// `MODULE` after its keyword: OS, CPU, debug id (hex), name.
pub(super) fn module_fields(rest: &[u8]) -> Option<()> {
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

/// The `FILE` and `INLINE_ORIGIN` ids a `FUNC` record's lines refer to, sorted and without
/// duplicates. Lines that do not read as references are skipped (the index checked them).
pub(super) fn func_references(block: &[u8]) -> (Vec<u64>, Vec<u64>) {
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

pub(super) fn trim_cr(mut line: &[u8]) -> &[u8] {
    while let Some(rest) = line.strip_suffix(b"\r") {
        line = rest;
    }
    line
}

/// The space-separated fields of a record line, read as breakpad-symbols' parser reads them.
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl<'a> Fields<'a> {
    /// After the record's keyword: at least one space.
    pub(super) fn new(rest: &'a [u8]) -> Option<Self> {
        let mut fields = Fields(rest);
        fields.spaces()?;
        Some(fields)
    }

    pub(super) fn spaces(&mut self) -> Option<()> {
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
    pub(super) fn hex(&mut self, digits: usize) -> Option<u64> {
        let value = self.last_hex(digits)?;
        self.spaces()?;
        Some(value)
    }

    /// A hex number of at most `digits` digits (the parser's `hex_str`), with nothing after
    /// it read.
    pub(super) fn last_hex(&mut self, digits: usize) -> Option<u64> {
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
    pub(super) fn decimal(&mut self) -> Option<u32> {
        let value = self.number()?;
        self.spaces()?;
        Some(value)
    }

    /// A decimal `u32` that ends the line.
    pub(super) fn last_decimal(&mut self) -> Option<u32> {
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
    pub(super) fn word(&mut self) -> Option<()> {
        let n = self.0.iter().take_while(|&&b| b != b' ').count();
        std::str::from_utf8(&self.0[..n]).ok()?;
        self.0 = &self.0[n..];
        self.spaces()
    }

    /// One byte that `is` accepts (a digit of `STACK WIN`'s type or program-string flag),
    /// then spaces.
    pub(super) fn byte(&mut self, is: fn(&u8) -> bool) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        if !is(&b) {
            return None;
        }
        self.0 = rest;
        self.spaces()?;
        Some(b)
    }

    /// The optional `m` flag of `FUNC` and `PUBLIC`.
    pub(super) fn multiple(&mut self) {
        if let Some(rest) = self.0.strip_prefix(b"m") {
            let mut after = Fields(rest);
            if after.spaces().is_some() {
                *self = after;
            }
        }
    }

    /// The rest of the line (a name, rules or a program string) must be UTF-8, and the
    /// parser ends it at the first `\r` (the line's trailing ones are trimmed already).
    pub(super) fn rest(&mut self) -> Option<()> {
        if memchr::memchr(b'\r', self.0).is_some() {
            return None;
        }
        std::str::from_utf8(self.0).ok().map(|_| ())
    }
}
