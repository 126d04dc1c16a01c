//! `POST /api/{project_id}/envelope/`: SDK captures, auth forms, content encodings, bad input.

use super::*;

#[actix_web::test]
async fn sdk_captures_are_accepted_and_published() {
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let mut expected_ids = Vec::new();
    let mut published_items = 0;
    for sdk in ["python", "node"] {
        let dir = fixtures().join("sdk").join(sdk);
        let mut captures: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        captures.sort();
        for capture in captures {
            let meta: Value =
                serde_json::from_slice(&std::fs::read(capture.join("headers.json")).unwrap())
                    .unwrap();
            let path = format!(
                "{}?{}",
                meta["path"].as_str().unwrap(),
                meta["query"].as_str().unwrap()
            );
            let mut req = test::TestRequest::post().uri(&path);
            for pair in meta["headers"].as_array().unwrap() {
                let (name, value) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
                // The test client frames the body itself.
                if !["host", "content-length", "transfer-encoding", "connection"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    req = req.insert_header((name, value));
                }
            }
            let body = std::fs::read(capture.join("body.bin")).unwrap();
            let response = test::call_service(&app, req.set_payload(body).to_request()).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", capture.display());
            let answer = body_json(response).await;
            let decoded = std::fs::read_to_string(capture.join("decoded.txt")).unwrap();
            published_items += decoded
                .lines()
                .filter(|l| l.starts_with("# ITEM") && l.contains("header"))
                .count()
                - decoded
                    .lines()
                    .filter(|l| l.starts_with("# ITEM") && l.contains("\"type\":\"attachment\""))
                    .count();
            if let Some(id) = answer["id"].as_str() {
                expected_ids.push(id.to_owned());
            }
        }
    }
    assert!(
        expected_ids.len() >= 12,
        "captures with events: {}",
        expected_ids.len()
    );

    let messages = consume(&cluster, "relay.events", published_items).await;
    assert_eq!(messages.len(), published_items);
    for id in &expected_ids {
        let published: Vec<_> = messages
            .iter()
            .filter(|(_, m)| m["event_id"] == json!(id))
            .collect();
        assert!(!published.is_empty(), "nothing published for {id}");
        for (key, message) in published {
            assert_eq!(key, id);
            assert_eq!(message["project_id"], 42);
            if let Some(event) = message.get("event") {
                assert_eq!(event["event_id"], json!(id));
                assert!(event["timestamp"].is_f64());
                assert!(event["level"].is_string());
            }
        }
    }
    let types: Vec<_> = messages
        .iter()
        .map(|(_, m)| m["type"].as_str().unwrap().to_owned())
        .collect();
    for ty in ["event", "transaction", "session", "span", "log", "check_in"] {
        assert!(
            types.iter().any(|t| t == ty),
            "no {ty} message in {types:?}"
        );
    }
    let attachments = consume(&cluster, "relay.attachments", 4).await;
    let names: Vec<_> = attachments
        .iter()
        .map(|(_, m)| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"hello.bin".to_owned()), "{names:?}");
}

#[actix_web::test]
async fn every_auth_form_is_accepted_and_bad_keys_are_refused() {
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let id = "9ec79c33ec9942ab8353589fcb2e04dc";
    let path = "/api/42/envelope/";

    let by_header = post(path, envelope(id, "a"));
    let by_authorization = test::TestRequest::post()
        .uri(path)
        .insert_header(("Authorization", format!("Sentry sentry_key={KEY}")))
        .set_payload(envelope(id, "b"));
    let by_query = test::TestRequest::post()
        .uri(&format!("{path}?sentry_key={KEY}&sentry_version=7"))
        .set_payload(envelope(id, "c"));
    let by_dsn = test::TestRequest::post().uri(path).set_payload(format!(
        "{{\"event_id\":\"{id}\",\"dsn\":\"http://{KEY}@127.0.0.1:3000/42\"}}\n{{\"type\":\"event\"}}\n{{}}\n"
    ));
    for req in [by_header, by_authorization, by_query, by_dsn] {
        assert_eq!(
            status_and_detail(&app, req).await,
            (StatusCode::OK, String::new())
        );
    }

    let cases = [
        (
            test::TestRequest::post()
                .uri(path)
                .set_payload(envelope(id, "x")),
            StatusCode::UNAUTHORIZED,
            "missing authentication",
        ),
        (
            test::TestRequest::post()
                .uri(&format!(
                    "{path}?sentry_key=ffffffffffffffffffffffffffffffff"
                ))
                .set_payload(envelope(id, "x")),
            StatusCode::UNAUTHORIZED,
            "unknown public key",
        ),
        (
            test::TestRequest::post()
                .uri(&format!("{path}?sentry_key={DISABLED_KEY}"))
                .set_payload(envelope(id, "x")),
            StatusCode::FORBIDDEN,
            "disabled",
        ),
        (
            test::TestRequest::post()
                .uri(&format!("{path}?sentry_key={OTHER_PROJECT_KEY}"))
                .set_payload(envelope(id, "x")),
            StatusCode::FORBIDDEN,
            "does not belong to project 42",
        ),
        (
            post("/api/42/envelope/", envelope(id, "x"))
                .insert_header(("X-Sentry-Auth", "Sentry sentry_version=7")),
            StatusCode::BAD_REQUEST,
            "sentry_key",
        ),
    ];
    for (req, status, detail) in cases {
        let (got_status, got_detail) = status_and_detail(&app, req).await;
        assert_eq!(got_status, status, "{got_detail}");
        assert!(
            got_detail.contains(detail),
            "{got_detail:?} should mention {detail:?}"
        );
    }
}

#[actix_web::test]
async fn every_content_encoding_is_decoded() {
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let body = envelope("9ec79c33ec9942ab8353589fcb2e04dc", "encoded");
    let deflate = {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        encoder.finish().unwrap()
    };
    let brotli = {
        let mut out = Vec::new();
        brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
            .write_all(&body)
            .unwrap();
        out
    };
    for (encoding, payload) in [
        ("identity", body.clone()),
        ("gzip", gzip(&body)),
        ("deflate", deflate),
        ("br", brotli),
        ("zstd", zstd::encode_all(&body[..], 3).unwrap()),
    ] {
        let req = post("/api/42/envelope/", payload).insert_header(("Content-Encoding", encoding));
        assert_eq!(
            status_and_detail(&app, req).await,
            (StatusCode::OK, String::new()),
            "{encoding}"
        );
    }
    let req = post("/api/42/envelope/", body).insert_header(("Content-Encoding", "compress"));
    let (status, detail) = status_and_detail(&app, req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(detail.contains("compress"), "{detail}");
}

#[actix_web::test]
async fn bad_input_gets_a_reason_and_good_input_still_passes() {
    let (mut config, _data_dir) = test_config();
    config.limits.max_event_size = 64 * 1024;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let id = "9ec79c33ec9942ab8353589fcb2e04dc";

    // 64 MiB of zeros against an 8 MiB envelope limit: a bomb, scaled for a unit test.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let big_event = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{{\"message\":\"{}\"}}\n",
        "x".repeat(100 * 1024)
    );
    let cases: Vec<(&str, test::TestRequest, StatusCode, &str)> = vec![
        (
            "garbage",
            post("/api/42/envelope/", "\u{1}\u{2}garbage"),
            StatusCode::BAD_REQUEST,
            "invalid envelope header",
        ),
        (
            "empty",
            post("/api/42/envelope/", ""),
            StatusCode::BAD_REQUEST,
            "empty envelope",
        ),
        (
            "truncated",
            post(
                "/api/42/envelope/",
                "{}\n{\"type\":\"event\",\"length\":500}\n{\"message\":\"cut",
            ),
            StatusCode::BAD_REQUEST,
            "declares length 500",
        ),
        (
            "wrong length",
            post(
                "/api/42/envelope/",
                "{}\n{\"type\":\"event\",\"length\":5}\n{\"message\":\"longer\"}\n",
            ),
            StatusCode::BAD_REQUEST,
            "wrong length",
        ),
        (
            "bad JSON event",
            post(
                "/api/42/envelope/",
                "{}\n{\"type\":\"event\"}\n{\"message\": oops}\n",
            ),
            StatusCode::BAD_REQUEST,
            "not valid JSON",
        ),
        (
            "bad event id",
            post(
                "/api/42/envelope/",
                "{}\n{\"type\":\"event\"}\n{\"event_id\":\"nope\"}\n",
            ),
            StatusCode::BAD_REQUEST,
            "invalid event id",
        ),
        (
            "oversize event",
            post("/api/42/envelope/", big_event),
            StatusCode::PAYLOAD_TOO_LARGE,
            "the limit is 65536",
        ),
        (
            "gzip bomb",
            post("/api/42/envelope/", bomb).insert_header(("Content-Encoding", "gzip")),
            StatusCode::PAYLOAD_TOO_LARGE,
            "exceeds the limit",
        ),
        (
            "corrupt gzip",
            post("/api/42/envelope/", "\u{1f}not gzip").insert_header(("Content-Encoding", "gzip")),
            StatusCode::BAD_REQUEST,
            "not valid gzip",
        ),
        (
            "store: not an object",
            post("/api/42/store/", "[1,2]"),
            StatusCode::BAD_REQUEST,
            "JSON object",
        ),
        (
            "minidump: not a dump",
            post("/api/42/minidump/", "%PDF-1.4")
                .insert_header(("Content-Type", "application/octet-stream")),
            StatusCode::BAD_REQUEST,
            "not a minidump",
        ),
    ];
    for (name, req, status, detail) in cases {
        let (got_status, got_detail) = status_and_detail(&app, req).await;
        assert_eq!(got_status, status, "{name}: {got_detail}");
        assert!(
            got_detail.contains(detail),
            "{name}: {got_detail:?} should mention {detail:?}"
        );
        let good = post("/api/42/envelope/", envelope(id, name));
        assert_eq!(
            status_and_detail(&app, good).await.0,
            StatusCode::OK,
            "good request after {name}"
        );
    }
}
