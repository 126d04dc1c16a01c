//! Every wire capture of a real SDK (tests/fixtures/sdk) decodes and parses into the items
//! the capture's `decoded.txt` lists, with the same payload sizes and event id.

mod common;

use std::path::PathBuf;

use bytes::Bytes;
use relay_core::Envelope;
use relay_processing::decode::{decode_bounded, ContentEncoding};
use serde_json::Value;

fn captures_dir() -> PathBuf {
    common::fixture_dir("sdk")
}

/// What `decoded.txt` says about a capture.
struct Expected {
    item_types: Vec<String>,
    payload_sizes: Vec<usize>,
}

fn expected(decoded: &str) -> Expected {
    let types_line = decoded
        .lines()
        .find_map(|l| l.strip_prefix("# item types: "))
        .expect("decoded.txt lists item types");
    let item_types = types_line
        .trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|t| t.trim_matches('\'').to_owned())
        .collect();
    let payload_sizes = decoded
        .lines()
        .filter_map(|l| l.split_once(" payload (").map(|(_, rest)| rest))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect();
    Expected {
        item_types,
        payload_sizes,
    }
}

fn content_encoding(headers: &Value) -> Option<String> {
    headers["headers"]
        .as_array()?
        .iter()
        .find(|pair| {
            pair[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("content-encoding"))
        })
        .and_then(|pair| pair[1].as_str().map(str::to_owned))
}

#[test]
fn every_capture_parses_into_its_items() {
    let mut checked = 0;
    for sdk in ["python", "node"] {
        let mut captures: Vec<_> = std::fs::read_dir(captures_dir().join(sdk))
            .expect("fixtures/sdk present")
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        captures.sort();
        for capture in captures {
            let name = capture.display().to_string();
            let headers: Value =
                serde_json::from_slice(&std::fs::read(capture.join("headers.json")).unwrap())
                    .unwrap();
            let body = std::fs::read(capture.join("body.bin")).unwrap();
            let encoding =
                ContentEncoding::from_header(content_encoding(&headers).as_deref()).unwrap();
            let decoded = decode_bounded(encoding, &body, 100 << 20).unwrap();
            if let Ok(reference) = std::fs::read(capture.join("body.decompressed.bin")) {
                assert_eq!(decoded, reference, "{name}: decompression differs");
            }
            let envelope =
                Envelope::parse(Bytes::from(decoded)).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = expected(&std::fs::read_to_string(capture.join("decoded.txt")).unwrap());

            let types: Vec<_> = envelope
                .items
                .iter()
                .map(|i| i.ty().as_str().to_owned())
                .collect();
            assert_eq!(types, expected.item_types, "{name}: item types");
            let sizes: Vec<_> = envelope.items.iter().map(|i| i.payload.len()).collect();
            assert_eq!(sizes, expected.payload_sizes, "{name}: payload sizes");
            if let Some(event) = envelope.event_item() {
                let payload: Value = serde_json::from_slice(&event.payload).unwrap();
                let id_in_event = payload["event_id"].as_str().map(str::to_owned);
                let id_in_header = envelope.headers.event_id.map(|id| id.to_string());
                assert_eq!(
                    id_in_header.or(id_in_event.clone()),
                    id_in_event,
                    "{name}: event id"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "expected all captures, checked {checked}");
}
