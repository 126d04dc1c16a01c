//! `envelope`, `intake` and `multipart`: what the intake endpoints parse before the spool.

use bytes::Bytes;
use relay_core::config::Limits;
use relay_core::Envelope;

use crate::intake::items::check_items;
use crate::intake::multipart::{build_envelope, multipart_boundary, parse_multipart};
use crate::intake::request::{check_request, IntakeRequest};
use crate::minidump::unwrap_minidump;

/// Limits small enough that the fuzzer reaches them, as an operator could set them.
fn fuzz_limits() -> Limits {
    Limits {
        max_request_size: 1 << 20,
        max_envelope_size: 1 << 20,
        max_event_size: 64 << 10,
        max_attachment_size: 1 << 20,
        ..Limits::default()
    }
}

/// Envelope parsing; what parses must write out and parse back to the same envelope.
pub fn envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = check_items(&envelope, &fuzz_limits());
    let written = envelope.to_vec();
    let reparsed = Envelope::parse(Bytes::from(written)).expect("a written envelope parses");
    assert_eq!(reparsed.items.len(), envelope.items.len());
    for (a, b) in reparsed.items.iter().zip(&envelope.items) {
        assert_eq!(a.ty(), b.ty());
        assert_eq!(a.payload, b.payload);
    }
    assert_eq!(reparsed.headers.event_id, envelope.headers.event_id);
}

/// One request, framed as text: the path (with `?query`) on the first line, then `Name: value`
/// header lines, an empty line, and the body, e.g.
///
/// ```text
/// /api/42/envelope/?sentry_key=...
/// Content-Encoding: gzip
///
/// <body bytes>
/// ```
pub fn intake(data: &[u8]) {
    let Some(request) = parse_framed_request(data) else {
        return;
    };
    let Ok(checked) = check_request(&request, &fuzz_limits()) else {
        return;
    };
    // What passed the checks is what gets spooled: its wire form must parse again.
    let written = checked.envelope.to_vec();
    Envelope::parse(Bytes::from(written)).expect("a checked envelope writes out parseable");
}

/// The request in `data`, framed as [`intake`] describes; `None` without a head.
pub fn parse_framed_request(data: &[u8]) -> Option<IntakeRequest> {
    let (head, body) = match memchr::memmem::find(data, b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let target = std::str::from_utf8(lines.next()?)
        .ok()?
        .trim_end_matches('\r');
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = lines
        .filter_map(|line| {
            let colon = memchr::memchr(b':', line)?;
            let name = std::str::from_utf8(&line[..colon]).ok()?.trim().to_owned();
            let value = line[colon + 1..].trim_ascii().to_vec();
            Some((name, value))
        })
        .collect();
    Some(IntakeRequest {
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

/// A minidump upload's form: the boundary is the input's first line (after `--`), as in a
/// real form body; the dump found in it is unwrapped (nested compression included).
pub fn multipart(data: &[u8]) {
    let Some(rest) = data.strip_prefix(b"--") else {
        return;
    };
    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
    let Ok(boundary) = std::str::from_utf8(&rest[..end]) else {
        return;
    };
    let boundary = boundary.trim_end_matches('\r').replace('"', "");
    let content_type = format!("multipart/form-data; boundary=\"{boundary}\"");
    let Ok(Some(boundary)) = multipart_boundary(Some(&content_type)) else {
        return;
    };
    let Ok(mut upload) = parse_multipart(Bytes::copy_from_slice(data), boundary) else {
        return;
    };
    let Some(mut minidump) = upload.minidump.take() else {
        return;
    };
    let limits = fuzz_limits();
    match unwrap_minidump(&minidump.data, limits.max_attachment_size) {
        Ok(Some(unwrapped)) => minidump.data = unwrapped.into(),
        Ok(None) => {}
        Err(_) => return,
    }
    if let Ok((envelope, _)) = build_envelope(upload, minidump) {
        let _ = check_items(&envelope, &limits);
    }
}
