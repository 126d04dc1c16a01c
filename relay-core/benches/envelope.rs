//! Criterion benchmark of envelope parsing (issue 8, item 6), on real SDK captures.
//!
//! ```text
//! cargo bench -p relay-core --bench envelope        # or: bench/run.sh micro
//! ```
//!
//! Reads `body.decompressed.bin` (or the plain `body.bin`) of a few captures from
//! `$FIXTURES` (default the repository's `tests/fixtures/sdk`) and measures
//! [`Envelope::parse`] on each; a missing capture is an error.

use std::path::PathBuf;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use relay_core::Envelope;

/// Captures covering the item shapes the relay sees most: errors, a transaction, attachments,
/// a session, a large event, and @sentry/node's uncompressed envelopes.
const CAPTURES: &[&str] = &[
    "python/0002_event",
    "python/0003_transaction",
    "python/0004_event+attachment+attachment",
    "python/0006_session",
    "python/0010_event",
    "node/0002_event",
    "node/0005_event+attachment+attachment",
];

fn fixtures() -> PathBuf {
    std::env::var_os("FIXTURES").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sdk"),
        PathBuf::from,
    )
}

/// The capture's envelope as the intake parses it: after decompression.
fn envelope_bytes(capture: &str) -> Option<Bytes> {
    let dir = fixtures().join(capture);
    let body = std::fs::read(dir.join("body.decompressed.bin"))
        .or_else(|_| std::fs::read(dir.join("body.bin")))
        .ok()?;
    Some(Bytes::from(body))
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope_parse");
    for capture in CAPTURES {
        let Some(body) = envelope_bytes(capture) else {
            panic!("capture {capture} not found under {}", fixtures().display());
        };
        Envelope::parse(body.clone()).expect("the capture parses");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*capture, |b| {
            b.iter(|| Envelope::parse(black_box(body.clone())).expect("parses"))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
