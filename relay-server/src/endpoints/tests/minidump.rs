//! `POST /api/{project_id}/minidump/`: multipart uploads become an event and attachment chunks.

use super::*;

#[actix_web::test]
async fn minidump_upload_becomes_event_and_attachment_chunks() {
    let (config, _data_dir) = test_config();
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

    let raw = post_raw_minidump(dump.clone());
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
