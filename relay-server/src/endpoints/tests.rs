//! HTTP-level tests: the real endpoints and actors, publishing to librdkafka's mock cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use base64::Engine;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use relay_core::config::{KeyConfig, ProjectConfig, QuotaConfig, QuotaScope};
use relay_core::{Config, DataCategory};
use serde_json::{json, Value};

use super::configure;
use crate::actors::spool_reader::ReaderUse;
use crate::metrics;
use crate::state::ServiceState;
use crate::test_support::fixtures;

const KEY: &str = "abc123def456abc123def456abc123de";
const DISABLED_KEY: &str = "00000000000000000000000000000001";
const OTHER_PROJECT_KEY: &str = "00000000000000000000000000000007";
const PARTITIONS: i32 = 3;

type Cluster = MockCluster<'static, DefaultProducerContext>;

fn test_config() -> Config {
    let mut config = Config {
        projects: vec![
            ProjectConfig::new(
                42,
                vec![
                    KeyConfig::Plain(KEY.into()),
                    KeyConfig::Detailed {
                        key: DISABLED_KEY.into(),
                        disabled: true,
                    },
                ],
            ),
            ProjectConfig::new(7, vec![KeyConfig::Plain(OTHER_PROJECT_KEY.into())]),
        ],
        ..Config::default()
    };
    config.limits.max_envelope_size = 8 << 20;
    config.kafka.attachment_chunk_size = 64 * 1024;
    config.pipeline.retry_backoff_ms = 50;
    config.data_dir = std::env::temp_dir().join(format!("relay-test-{}", uuid::Uuid::new_v4()));
    config.pipeline.retry_after_secs = 3;
    config
}

fn start_cluster(config: &Config) -> Cluster {
    let cluster = MockCluster::new(1).unwrap();
    for (_, topic) in config.kafka.topics.all() {
        cluster.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    cluster
}

fn start_relay(config: Config, cluster: &Cluster) -> web::Data<ServiceState> {
    let producer =
        crate::kafka::create_producer(&cluster.bootstrap_servers(), &config.kafka).unwrap();
    let spool =
        crate::spool::Spool::open(&config.data_dir.join("spool"), config.spool.clone()).unwrap();
    let symbols = crate::symbols::ProjectSymbolStores::load(&config).unwrap();
    let state = web::Data::new(crate::service::start(config, producer, spool, symbols));
    state.set_accepting(true);
    state
}

macro_rules! app {
    ($state:expr) => {
        test::init_service(App::new().app_data($state.clone()).configure(configure)).await
    };
}

/// Reads every message of `topic` from the beginning until `count` arrived or 10 s passed.
///
/// Polls on a blocking thread: the test thread is actix's System arbiter, which runs the
/// symbolicator's dispatcher and must keep running.
async fn consume(cluster: &Cluster, topic: &str, count: usize) -> Vec<(String, Value)> {
    let bootstrap = cluster.bootstrap_servers();
    let topic = topic.to_owned();
    actix_web::rt::task::spawn_blocking(move || consume_blocking(&bootstrap, &topic, count))
        .await
        .unwrap()
}

fn consume_blocking(bootstrap: &str, topic: &str, count: usize) -> Vec<(String, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "relay-tests")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions
            .add_partition_offset(topic, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&partitions).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut messages = Vec::new();
    while messages.len() < count && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            messages.push((key, value));
        }
    }
    messages
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn envelope(event_id: &str, message: &str) -> Vec<u8> {
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"{message}\",\"platform\":\"python\"}}\n"
    )
    .into_bytes()
}

fn post(path: &str, body: impl Into<Vec<u8>>) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header((
            "X-Sentry-Auth",
            format!("Sentry sentry_key={KEY}, sentry_version=7"),
        ))
        .set_payload(body.into())
}

async fn body_json(response: actix_web::dev::ServiceResponse) -> Value {
    serde_json::from_slice(&test::read_body(response).await).unwrap()
}

/// Sends `req` and returns the status and the JSON `detail` (empty for successes).
async fn status_and_detail<S>(app: &S, req: test::TestRequest) -> (StatusCode, String)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let response = test::call_service(app, req.to_request()).await;
    let status = response.status();
    let body = body_json(response).await;
    (
        status,
        body["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

#[actix_web::test]
async fn sdk_captures_are_accepted_and_published() {
    let config = test_config();
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
    let config = test_config();
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
    let config = test_config();
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
    let mut config = test_config();
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

#[actix_web::test]
async fn store_endpoint_publishes_the_event() {
    let config = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let req = post(
        "/api/42/store/",
        r#"{"event_id":"6d3c8b4f-0a5e-4e0c-9a43-2d1f3c2b1a00","message":"from store","level":"warn"}"#,
    );
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(response).await["id"],
        "6d3c8b4f0a5e4e0c9a432d1f3c2b1a00"
    );
    let messages = consume(&cluster, "relay.events", 1).await;
    assert_eq!(messages[0].1["event"]["message"], "from store");
    assert_eq!(messages[0].1["event"]["level"], "warning");
}

#[actix_web::test]
async fn minidump_upload_becomes_event_and_attachment_chunks() {
    let config = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let dump = std::fs::read(fixtures().join("native/linux-x86_64/linux.dmp")).unwrap();

    let boundary = "XyZboundary";
    let mut body = Vec::new();
    let mut part = |headers: &str, data: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"sentry\"",
        br#"{"release":"native@1","tags":{"a":"1"}}"#,
    );
    part(
        "Content-Disposition: form-data; name=\"sentry[tags][foo]\"",
        b"bar",
    );
    part("Content-Disposition: form-data; name=\"guid\"", b"1234");
    part(
        "Content-Disposition: form-data; name=\"upload_file_minidump\"; filename=\"crash.dmp\"\r\nContent-Type: application/octet-stream",
        &gzip(&dump),
    );
    part(
        "Content-Disposition: form-data; name=\"log\"; filename=\"app.log\"",
        b"log line\n",
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());

    let req = post("/api/42/minidump/", body).insert_header((
        "Content-Type",
        format!("multipart/form-data; boundary={boundary}"),
    ));
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let id = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert_eq!(id.len(), 36, "hyphenated event id, got {id:?}");
    let simple_id = id.replace('-', "");

    let events = consume(&cluster, "relay.events", 1).await;
    let event = &events[0].1;
    assert_eq!(event["event_id"], simple_id);
    assert_eq!(event["event"]["platform"], "native");
    assert_eq!(event["event"]["release"], "native@1");
    assert_eq!(event["event"]["tags"], json!({"a": "1", "foo": "bar"}));
    assert_eq!(event["event"]["extra"]["guid"], "1234");
    let refs = event["attachments"].as_array().unwrap();
    assert_eq!(refs[0]["attachment_type"], "event.minidump");
    assert_eq!(refs[0]["size"], dump.len());
    assert_eq!(refs[1]["name"], "app.log");

    let chunk_count = refs[0]["chunks"].as_u64().unwrap() as usize;
    let chunks = consume(&cluster, "relay.attachments", chunk_count + 1).await;
    let mut minidump_chunks: Vec<_> = chunks
        .iter()
        .filter(|(_, c)| c["attachment_id"] == refs[0]["id"])
        .map(|(_, c)| c)
        .collect();
    minidump_chunks.sort_by_key(|c| c["chunk_index"].as_u64());
    let reassembled: Vec<u8> = minidump_chunks
        .iter()
        .flat_map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c["data"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(
        reassembled, dump,
        "minidump chunks reassemble to the upload"
    );
    assert!(chunks.iter().all(|(key, _)| *key == simple_id));

    let raw = post("/api/42/minidump/", dump.clone())
        .insert_header(("Content-Type", "application/octet-stream"));
    assert_eq!(
        test::call_service(&app, raw.to_request()).await.status(),
        StatusCode::OK
    );
    let missing = post("/api/42/minidump/", format!("--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--{boundary}--\r\n"))
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={boundary}")));
    let (status, detail) = status_and_detail(&app, missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail.contains("upload_file_minidump"), "{detail}");
}

#[actix_web::test]
async fn kafka_outage_fills_the_spool_then_intake_answers_503_and_recovers() {
    let mut config = test_config();
    config.spool.max_disk_bytes = 4096;
    config.spool.segment_bytes = 1024;
    let cluster = start_cluster(&config);
    // Kafka is down from the start: nothing can be delivered.
    cluster.broker_down(1).unwrap();
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let mut accepted = Vec::new();
    let mut refusal = None;
    for i in 0..100 {
        let id = format!("{i:032x}");
        let response = test::call_service(
            &app,
            post("/api/42/envelope/", envelope(&id, "outage")).to_request(),
        )
        .await;
        if response.status() == StatusCode::OK {
            accepted.push(id);
            continue;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get("Retry-After").unwrap(), "3");
        refusal = Some(
            body_json(response).await["detail"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        break;
    }
    let refusal = refusal.expect("a 4 KiB spool fills up");
    assert!(refusal.contains("spool is full"), "{refusal}");
    assert!(
        accepted.len() >= 10,
        "the spool took {} envelopes before filling",
        accepted.len()
    );
    let ready = test::call_service(
        &app,
        test::TestRequest::get().uri("/healthz/ready").to_request(),
    )
    .await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Kafka returns: every accepted envelope is published, space frees up, intake accepts again.
    cluster.broker_up(1).unwrap();
    let messages = consume(&cluster, "relay.events", accepted.len()).await;
    let mut published: Vec<_> = messages.iter().map(|(key, _)| key.clone()).collect();
    published.sort();
    published.dedup();
    assert_eq!(published, accepted);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = test::call_service(
            &app,
            post(
                "/api/42/envelope/",
                envelope(&format!("{:032x}", 999), "after"),
            )
            .to_request(),
        )
        .await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "intake did not recover after Kafka came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = test::call_service(
        &app,
        test::TestRequest::get().uri("/healthz/ready").to_request(),
    )
    .await;
    assert_eq!(ready.status(), StatusCode::OK);
}

/// Posts `count` envelopes while the broker is down, waits until the spool reader holds
/// `expected` of its bounds, then brings the broker back and checks that every one arrives.
async fn hold_then_deliver(config: Config, count: usize, expected: impl Fn(ReaderUse) -> bool) {
    let cluster = start_cluster(&config);
    cluster.broker_down(1).unwrap();
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let mut accepted = Vec::new();
    for i in 0..count {
        let id = format!("{i:032x}");
        let request = post("/api/42/envelope/", envelope(&id, "waiting")).to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            StatusCode::OK
        );
        accepted.push(id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !expected(state.reader_use()) {
        assert!(
            Instant::now() < deadline,
            "the reader still holds {:?}",
            state.reader_use()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.broker_up(1).unwrap();
    let messages = consume(&cluster, "relay.events", count).await;
    let mut published: Vec<_> = messages.into_iter().map(|(key, _)| key).collect();
    published.sort();
    published.dedup();
    assert_eq!(published, accepted);
}

#[actix_web::test]
async fn envelopes_awaiting_delivery_hold_window_bytes_not_slots() {
    // Broker down: every envelope is queued in librdkafka and waits for its delivery report.
    // The reader's 2 slots are free again (it read all 20), the window holds their bytes.
    let mut config = test_config();
    config.pipeline.max_in_flight = 2;
    hold_then_deliver(config, 20, |used| {
        used.slots == 0 && used.window_bytes > 2_000
    })
    .await;

    // A 1-byte window: each entry is larger and takes all of it, so one waits for delivery
    // while the reader holds the next entry's slot, waiting for the window.
    // (One lane: the reader of a second lane would hold a slot waiting for the window too.)
    let mut config = test_config();
    config.pipeline.max_in_flight = 2;
    config.pipeline.delivery_window_bytes = 1;
    config.pipeline.lanes = 1;
    hold_then_deliver(config, 5, |used| used.slots == 1 && used.window_bytes == 1).await;
}

#[actix_web::test]
async fn lanes_share_the_spool_reader_and_the_issue_windows() {
    // Three lanes with one reader slot each, and a 1-byte delivery window: each lane's reader
    // holds an entry while it waits for the window, which the waiters get in turn, so every
    // lane reads some. (When entries arrive one by one, one lane may well read them all.)
    // Each entry must be published once, and the events of the one issue counted in one set
    // of windows: one aggregate per window, not one per lane.
    let mut config = test_config();
    config.pipeline.lanes = 3;
    config.pipeline.max_in_flight = 3;
    config.pipeline.delivery_window_bytes = 1;
    config.processing.aggregator.window_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let lane_reads = || (0..3).map(|lane| metrics::lane_entries(lane).get());
    let reads_before: Vec<u64> = lane_reads().collect();

    let ids: Vec<String> = (0..120)
        .map(|i| format!("{:032x}", 0x1a0e_0000 + i))
        .collect();
    let posts = ids.iter().map(|id| {
        let request = post("/api/42/envelope/", envelope(id, "same issue")).to_request();
        test::call_service(&app, request)
    });
    for response in futures::future::join_all(posts).await {
        assert_eq!(response.status(), StatusCode::OK);
    }

    let published = consume_blocking_for(&cluster, "relay.events", Duration::from_secs(1)).await;
    let mut keys: Vec<String> = published.iter().map(|(key, _)| key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ids, "each entry published once");
    let reads: Vec<u64> = lane_reads()
        .zip(&reads_before)
        .map(|(after, before)| after - before)
        .collect();
    assert!(
        reads.iter().all(|&n| n > 0),
        "entries read per lane: {reads:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let issues = loop {
        let issues =
            consume_blocking_for(&cluster, "relay.issues", Duration::from_millis(500)).await;
        let counted: u64 = issues
            .iter()
            .map(|(_, m)| m["count"].as_u64().unwrap())
            .sum();
        if counted == 120 || Instant::now() > deadline {
            break issues;
        }
    };
    let windows: Vec<(String, String)> = issues
        .iter()
        .map(|(_, m)| (m["group_id"].to_string(), m["window_start"].to_string()))
        .collect();
    let distinct: std::collections::BTreeSet<_> = windows.iter().collect();
    assert_eq!(
        distinct.len(),
        windows.len(),
        "one aggregate per window: {windows:?}"
    );
    let counted: u64 = issues
        .iter()
        .map(|(_, m)| m["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 120);
}

#[actix_web::test]
async fn minidump_is_symbolicated_with_the_projects_debug_files() {
    let native = fixtures().join("native/linux-x86_64");
    let mut config = test_config();
    config.projects[0].native_symbols = vec![native.clone()];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let dump = std::fs::read(native.join("linux.dmp")).unwrap();
    let req =
        post("/api/42/minidump/", dump).insert_header(("Content-Type", "application/octet-stream"));
    assert_eq!(
        test::call_service(&app, req.to_request()).await.status(),
        StatusCode::OK
    );

    let events = consume(&cluster, "relay.events", 1).await;
    let event = &events[0].1["event"];
    let exception = &event["exception"]["values"][0];
    assert_eq!(exception["type"], "SIGSEGV", "{exception}");
    // Frames are oldest first in the event; the crash is at the end.
    let frames = exception["stacktrace"]["frames"]
        .as_array()
        .expect("crashing thread's frames");
    let functions: Vec<_> = frames
        .iter()
        .rev()
        .map(|f| f["function"].as_str().unwrap_or("?").to_owned())
        .collect();
    let main = frames
        .iter()
        .find(|f| f["function"] == "main")
        .expect("main is symbolicated");
    assert_eq!(main["lineno"], 35, "{functions:?}");
    assert!(main["filename"].as_str().unwrap().ends_with("main.cpp"));
    assert_eq!(main["status"], "symbolicated");
    assert!(
        functions[0].contains("crash"),
        "innermost frame: {functions:?}"
    );
    let images = event["debug_meta"]["images"].as_array().unwrap();
    assert!(
        images.iter().any(|i| i["debug_status"] == "found"),
        "{images:?}"
    );
}

/// Sums outcome quantities per (category, outcome) until `expected` is reached or 10 s pass.
async fn outcome_totals(
    cluster: &Cluster,
    expected: &BTreeMap<(String, String), u64>,
) -> BTreeMap<(String, String), u64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let messages =
            consume_blocking_for(cluster, "relay.outcomes", Duration::from_millis(500)).await;
        let mut totals = BTreeMap::new();
        for (_, message) in &messages {
            let key = (
                message["category"].as_str().unwrap().to_owned(),
                message["outcome"].as_str().unwrap().to_owned(),
            );
            *totals.entry(key).or_insert(0) += message["quantity"].as_u64().unwrap();
        }
        if &totals == expected || Instant::now() > deadline {
            return totals;
        }
    }
}

/// Everything on `topic` that arrives within `idle` of the previous message.
async fn consume_blocking_for(
    cluster: &Cluster,
    topic: &str,
    idle: Duration,
) -> Vec<(String, Value)> {
    let bootstrap = cluster.bootstrap_servers();
    let topic = topic.to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "relay-tests")
            .create()
            .unwrap();
        let mut partitions = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            partitions
                .add_partition_offset(&topic, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&partitions).unwrap();
        let mut messages = Vec::new();
        // Connecting and fetching the first batch takes longer than the idle gap.
        let mut wait = Duration::from_secs(3);
        while let Some(Ok(message)) = consumer.poll(wait) {
            wait = idle;
            let key = String::from_utf8(message.key().unwrap_or_default().to_vec()).unwrap();
            messages.push((
                key,
                serde_json::from_slice(message.payload().unwrap()).unwrap(),
            ));
        }
        messages
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn quotas_limit_items_and_outcomes_add_up() {
    let mut config = test_config();
    config.projects[0].quotas = vec![QuotaConfig {
        id: "errors-per-key".into(),
        categories: vec![DataCategory::Error],
        scope: QuotaScope::Key,
        limit: 5,
        window: 60,
        reason: Some("key_quota".into()),
    }];
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let mut statuses = Vec::new();
    for i in 0..8 {
        let response = test::call_service(
            &app,
            post("/api/42/envelope/", envelope(&format!("{i:032x}"), "quota")).to_request(),
        )
        .await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry_after: u64 = response
                .headers()
                .get("Retry-After")
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry_after), "{retry_after}");
            let limits = response
                .headers()
                .get("X-Sentry-Rate-Limits")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(limits.ends_with(":error:key:key_quota"), "{limits}");
            assert!(body_json(response).await["detail"]
                .as_str()
                .unwrap()
                .contains("rate limited"));
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);

    // Partly limited: the error goes, the session stays, the answer is 200 with the header.
    let mixed = format!(
        "{{\"event_id\":\"{:032x}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"m\"}}\n{{\"type\":\"session\"}}\n{{\"sid\":\"s1\",\"status\":\"ok\"}}\n\
         {{\"type\":\"client_report\"}}\n{{\"discarded_events\":[{{\"reason\":\"ratelimit_backoff\",\"category\":\"error\",\"quantity\":3}}]}}\n",
        100
    );
    let response = test::call_service(&app, post("/api/42/envelope/", mixed).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("X-Sentry-Rate-Limits").is_some());
    // Other categories and other keys are not limited.
    let transaction =
        "{}\n{\"type\":\"transaction\"}\n{\"type\":\"transaction\",\"transaction\":\"/t\"}\n";
    let response =
        test::call_service(&app, post("/api/42/envelope/", transaction).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("X-Sentry-Rate-Limits").is_none());
    // The minidump endpoint never answers 429; the limited crash is counted, not published.
    let dump = std::fs::read(fixtures().join("native/linux-x86_64/linux.dmp")).unwrap();
    let req =
        post("/api/42/minidump/", dump).insert_header(("Content-Type", "application/octet-stream"));
    assert_eq!(
        test::call_service(&app, req.to_request()).await.status(),
        StatusCode::OK
    );

    let expected: BTreeMap<(String, String), u64> = [
        (("error", "accepted"), 5),
        (("error", "rate_limited"), 5),
        (
            ("attachment", "rate_limited"),
            std::fs::metadata(fixtures().join("native/linux-x86_64/linux.dmp"))
                .unwrap()
                .len(),
        ),
        (("attachment_item", "rate_limited"), 1),
        (("error", "client_discard"), 3),
        (("session", "accepted"), 1),
        (("internal", "accepted"), 1),
        (("transaction", "accepted"), 1),
    ]
    .into_iter()
    .map(|((c, o), n)| ((c.to_owned(), o.to_owned()), n))
    .collect();
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}

#[actix_web::test]
async fn per_ip_limit_answers_429_with_retry_after() {
    let mut config = test_config();
    config.limits.per_ip_requests_per_second = 2;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let mut statuses = Vec::new();
    for i in 0..10 {
        let req = post("/api/42/envelope/", envelope(&format!("{i:032x}"), "ip"))
            .peer_addr("127.0.0.9:5000".parse().unwrap());
        let response = test::call_service(&app, req.to_request()).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().get("Retry-After").is_some());
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        6,
        "{statuses:?}"
    );
    let other = post(
        "/api/42/envelope/",
        envelope(&format!("{:032x}", 77), "other"),
    )
    .peer_addr("127.0.0.10:5000".parse().unwrap());
    assert_eq!(
        test::call_service(&app, other.to_request()).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn javascript_frames_are_resolved_through_the_projects_source_maps() {
    let mut config = test_config();
    config.projects[0].js_artifacts =
        Some(fixtures().join("js/symbolicator/01_sourcemap_expansion"));
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let url = "http://example.com/test.min.js";
    let event = json!({
        "platform": "javascript",
        "exception": {"values": [{"type": "Error", "value": "boom", "stacktrace": {"frames": [
            {"function": "i", "abs_path": url, "filename": "test.min.js", "lineno": 1, "colno": 183},
            {"function": "e", "abs_path": url, "filename": "test.min.js", "lineno": 1, "colno": 64},
        ]}}]},
    });
    let body = format!("{{}}\n{{\"type\":\"event\"}}\n{event}\n");
    assert_eq!(
        test::call_service(&app, post("/api/42/envelope/", body).to_request())
            .await
            .status(),
        StatusCode::OK
    );

    let events = consume(&cluster, "relay.events", 1).await;
    let frames = &events[0].1["event"]["exception"]["values"][0]["stacktrace"]["frames"];
    assert_eq!(frames[0]["function"], "test");
    assert_eq!(frames[0]["abs_path"], "http://example.com/test.js");
    assert_eq!(
        (frames[0]["lineno"].as_u64(), frames[0]["colno"].as_u64()),
        (Some(20), Some(5))
    );
    assert_eq!(frames[1]["function"], "onFailure");
    assert_eq!(
        (frames[1]["lineno"].as_u64(), frames[1]["colno"].as_u64()),
        (Some(5), Some(11))
    );
    assert_eq!(frames[1]["raw_function"], "e", "the minified name is kept");
}

#[actix_web::test]
async fn events_are_filtered_scrubbed_grouped_and_counted_as_issues() {
    let mut config = test_config();
    config.projects[0].filters =
        serde_json::from_value(json!({"localhost": true, "error_messages": ["*ignore me*"]}))
            .unwrap();
    config.processing.aggregator.window_secs = 1;
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let exception = |ty: &str, function: &str, line: u64| {
        json!({"exception": {"values": [{"type": ty, "value": "v", "stacktrace": {"frames": [
            {"function": "main", "module": "app", "lineno": 1, "in_app": true},
            {"function": function, "module": "app.handlers", "lineno": line, "in_app": true},
        ]}}]}, "platform": "python"})
    };
    // Three kinds: two crashes (the first from two "releases" with other line numbers) and a
    // message; 4 events each.
    let mut events = Vec::new();
    for i in 0..4u64 {
        events.push(exception("ZeroDivisionError", "divide", 10 + i));
        events.push(exception("KeyError", "lookup", 20));
        events.push(json!({"message": format!("user {i} logged in"), "logentry": {"message": "user %s logged in", "params": [i]}}));
    }
    // Scrubbed: a password in extra.
    events[0]["extra"] = json!({"db_password": "hunter2"});
    // Filtered: a localhost user and an ignored message.
    let filtered = [
        json!({"message": "m", "user": {"ip_address": "127.0.0.1"}}),
        json!({"message": "please ignore me now"}),
    ];
    for event in events.iter().chain(&filtered) {
        let body = format!("{{}}\n{{\"type\":\"event\"}}\n{event}\n");
        assert_eq!(
            test::call_service(&app, post("/api/42/envelope/", body).to_request())
                .await
                .status(),
            StatusCode::OK
        );
    }

    let published = consume(&cluster, "relay.events", 12).await;
    assert_eq!(
        published.len(),
        12,
        "the two filtered events are not published"
    );
    let group_of = |m: &Value| m["group_id"].as_str().unwrap().to_owned();
    let groups: std::collections::BTreeSet<_> =
        published.iter().map(|(_, m)| group_of(m)).collect();
    assert_eq!(groups.len(), 3, "three kinds make three issues");
    let scrubbed = published
        .iter()
        .find(|(_, m)| m["event"]["extra"].get("db_password").is_some())
        .expect("the event with a password");
    assert_eq!(scrubbed.1["event"]["extra"]["db_password"], "[Filtered]");

    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let issues =
            consume_blocking_for(&cluster, "relay.issues", Duration::from_millis(500)).await;
        let mut counts = BTreeMap::new();
        for (_, issue) in &issues {
            *counts
                .entry(issue["group_id"].as_str().unwrap().to_owned())
                .or_insert(0) += issue["count"].as_u64().unwrap();
        }
        if counts.values().sum::<u64>() == 12 || Instant::now() > deadline {
            break counts;
        }
    };
    assert_eq!(
        counts
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        groups
    );
    assert!(counts.values().all(|&n| n == 4), "{counts:?}");

    let expected: BTreeMap<(String, String), u64> =
        [(("error", "accepted"), 12), (("error", "filtered"), 2)]
            .into_iter()
            .map(|((c, o), n)| ((c.to_owned(), o.to_owned()), n))
            .collect();
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}

#[actix_web::test]
async fn minidump_is_symbolicated_with_symbols_from_an_http_server() {
    use crate::actors::symbol_fetcher::tests::{Behaviour, TestServer};
    let native = fixtures().join("native/rust-minidump");
    // The Windows XP dump's symbols only on a Breakpad symbol server, nothing local.
    let server = TestServer::start(Behaviour::Files(native.clone()));
    let mut config = test_config();
    config.symbolication.http_sources =
        vec![serde_json::from_value(json!({ "url": server.url("symbols") })).unwrap()];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let dump = std::fs::read(native.join("test.dmp")).unwrap();
    let req =
        post("/api/42/minidump/", dump).insert_header(("Content-Type", "application/octet-stream"));
    assert_eq!(
        test::call_service(&app, req.to_request()).await.status(),
        StatusCode::OK
    );

    let events = consume(&cluster, "relay.events", 1).await;
    let exception = &events[0].1["event"]["exception"]["values"][0];
    let frames = exception["stacktrace"]["frames"].as_array().unwrap();
    // Oldest first: the crash is the last frame.
    let crash = frames.last().unwrap();
    assert_eq!(
        crash["function"], "`anonymous namespace'::CrashFunction",
        "{crash}"
    );
    assert_eq!(
        (&crash["filename"], &crash["lineno"]),
        (&json!("test_app.cc"), &json!(58))
    );
    assert_eq!(crash["status"], "symbolicated");
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r == "/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym"),
        "{requests:?}"
    );
}
