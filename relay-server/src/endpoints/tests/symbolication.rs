//! Symbolication behind the intake: minidumps with the project's debug files or an HTTP
//! symbol server, JavaScript frames through the project's source maps.

use super::*;

#[actix_web::test]
async fn minidump_is_symbolicated_with_the_projects_debug_files() {
    let native = fixtures().join("native/linux-x86_64");
    let (mut config, _data_dir) = test_config();
    config.projects[0].native_symbols = vec![native.clone()];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let dump = std::fs::read(native.join("linux.dmp")).unwrap();
    let req = post_raw_minidump(dump);
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

#[actix_web::test]
async fn javascript_frames_are_resolved_through_the_projects_source_maps() {
    let (mut config, _data_dir) = test_config();
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
    let body = event_envelope(&event);
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
async fn minidump_is_symbolicated_with_symbols_from_an_http_server() {
    use crate::actors::symbol_fetcher::tests::{Behaviour, TestServer};
    let native = fixtures().join("native/rust-minidump");
    // The Windows XP dump's symbols only on a Breakpad symbol server, nothing local.
    let server = TestServer::start(Behaviour::Files(native.clone()));
    let (mut config, _data_dir) = test_config();
    config.symbolication.http_sources =
        vec![serde_json::from_value(json!({ "url": server.url("symbols") })).unwrap()];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let dump = std::fs::read(native.join("test.dmp")).unwrap();
    let req = post_raw_minidump(dump);
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
