//! Criterion benchmarks of the intake's CPU work (issue 8, item 6), on real SDK captures:
//!
//! - `decode_bounded`: [`decode_bounded`] of the captured (compressed) request bodies with the
//!   relay's default envelope limit (100 MiB);
//! - `normalize_event`: [`normalize_event`] of each capture's event, as the Normalizer runs it
//!   (the JSON parse and the clone per iteration are outside the measurement);
//! - `fingerprint`: [`fingerprint`] (grouping) of each capture's normalized event.
//!
//! ```text
//! cargo bench -p relay-processing --bench processing      # or: bench/run.sh micro
//! ```
//!
//! Reads the captures from `$FIXTURES` (default the repository's `tests/fixtures/sdk`); a missing
//! capture is an error.

use std::path::PathBuf;

use bytes::Bytes;
use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use relay_core::{Envelope, ItemType};
use relay_processing::decode::{decode_bounded, ContentEncoding};
use relay_processing::grouping::fingerprint;
use relay_processing::normalize::{normalize_event, NormalizeContext};
use serde_json::Value;

/// The relay's default `limits.max_envelope_size`.
const ENVELOPE_LIMIT: usize = 100 * 1024 * 1024;

/// Compressed bodies: gzip (python compresses every envelope; node only large ones), brotli.
const COMPRESSED: &[&str] = &[
    "python/0002_event",
    "python/0003_transaction",
    "python/0010_event",
    "python/0011_event",
    "node/0006_event",
];

/// Events and transactions, as the Normalizer gets them.
const EVENTS: &[&str] = &[
    "python/0002_event",
    "python/0003_transaction",
    "python/0010_event",
    "node/0002_event",
    "node/0008_transaction",
];

fn fixtures() -> PathBuf {
    std::env::var_os("FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sdk"),
        PathBuf::from,
    )
}

fn read(capture: &str, file: &str) -> Option<Vec<u8>> {
    std::fs::read(fixtures().join(capture).join(file)).ok()
}

/// The capture's `Content-Encoding`, from its headers.json.
fn content_encoding(capture: &str) -> Option<String> {
    let headers: Value = serde_json::from_slice(&read(capture, "headers.json")?).ok()?;
    headers["headers"].as_array()?.iter().find_map(|pair| {
        let name = pair[0].as_str()?;
        name.eq_ignore_ascii_case("content-encoding")
            .then(|| pair[1].as_str().map(str::to_owned))?
    })
}

fn missing(capture: &str) -> ! {
    panic!("capture {capture} not found under {}", fixtures().display());
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_bounded");
    for capture in COMPRESSED {
        let (Some(body), Some(encoding)) = (read(capture, "body.bin"), content_encoding(capture))
        else {
            missing(capture);
        };
        let encoding = ContentEncoding::from_header(Some(&encoding)).expect("known encoding");
        let plain = decode_bounded(encoding, &body, ENVELOPE_LIMIT).expect("the capture decodes");
        // Throughput in decompressed bytes, what the limit counts.
        group.throughput(Throughput::Bytes(plain.len() as u64));
        group.bench_function(*capture, |b| {
            b.iter(|| decode_bounded(encoding, black_box(&body), ENVELOPE_LIMIT).expect("decodes"))
        });
    }
    group.finish();
}

/// The capture's event payload, parsed, and whether it is a transaction.
fn event(capture: &str) -> Option<(Value, Option<relay_core::EventId>, bool)> {
    let body = read(capture, "body.decompressed.bin").or_else(|| read(capture, "body.bin"))?;
    let envelope = Envelope::parse(Bytes::from(body)).expect("the capture parses");
    let item = envelope.event_item()?;
    let value = serde_json::from_slice(&item.payload).expect("the event is JSON");
    Some((
        value,
        envelope.headers.event_id,
        item.ty() == &ItemType::Transaction,
    ))
}

/// The capture's event, parsed, its context, and the event normalized.
fn normalized_event(capture: &str) -> Option<(Value, NormalizeContext, Value)> {
    let (value, envelope_event_id, is_transaction) = event(capture)?;
    let ctx = NormalizeContext {
        received: Utc::now(),
        envelope_event_id,
        is_transaction,
    };
    let mut normalized = value.clone();
    normalize_event(&mut normalized, &ctx).expect("the capture normalizes");
    Some((value, ctx, normalized))
}

fn normalize(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_event");
    for capture in EVENTS {
        let Some((value, ctx, _)) = normalized_event(capture) else {
            missing(capture);
        };
        group.throughput(Throughput::Elements(1));
        group.bench_function(*capture, |b| {
            b.iter_batched(
                || value.clone(),
                |mut event| {
                    normalize_event(&mut event, &ctx).expect("normalizes");
                    event
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn group(c: &mut Criterion) {
    let mut group = c.benchmark_group("fingerprint");
    for capture in EVENTS {
        let Some((_, _, normalized)) = normalized_event(capture) else {
            missing(capture);
        };
        group.throughput(Throughput::Elements(1));
        group.bench_function(*capture, |b| b.iter(|| fingerprint(black_box(&normalized))));
    }
    group.finish();
}

criterion_group!(benches, decode, normalize, group);
criterion_main!(benches);
