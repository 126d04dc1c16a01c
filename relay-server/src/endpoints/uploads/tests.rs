//! The upload routes in process, with the storage in a temporary directory: access, the
//! chunk and assemble exchange as sentry-cli runs it, refusals, listings.

use actix_web::http::StatusCode;
use actix_web::{test, web, App};
use relay_core::config::{KeyConfig, OrganizationConfig, ProjectConfig, UploadToken};
use relay_core::Config;
use relay_processing::uploads::sha1_hex;
use serde_json::{json, Value};

use super::configure;
use crate::symbols::UploadTargets;
use crate::uploads::Uploads;

const TOKEN: &str = "unit-test-upload-token-0123456789abcdef";
const OTHER: &str = "unit-test-other-token-0123456789abcdef0";

fn uploads(dir: &std::path::Path) -> web::Data<Uploads> {
    let mut web = ProjectConfig::new(42, vec![KeyConfig::Plain("a".repeat(32))]);
    web.slug = Some("web".into());
    web.organization = Some(7);
    let org = |id, slug: &str, token| OrganizationConfig {
        id,
        slug: slug.into(),
        upload_tokens: vec![UploadToken::new(token)],
    };
    let config = Config {
        data_dir: dir.to_owned(),
        organizations: vec![org(7, "acme", TOKEN), org(8, "other", OTHER)],
        projects: vec![web],
        ..Config::default()
    };
    config.validate().unwrap();
    web::Data::new(Uploads::open(&config, UploadTargets::default()).unwrap())
}

fn sym_file() -> Vec<u8> {
    let path = crate::test_support::fixtures().join(
        "native/rust-minidump/symbols/test_app.pdb/5A9832E5287241C1838ED98914E9B7FF1/test_app.sym",
    );
    std::fs::read(path).unwrap()
}

fn form(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(
            format!(
                "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B--\r\n");
    ("multipart/form-data; boundary=B".into(), body)
}

macro_rules! call {
    ($app:expr, $req:expr) => {{
        let response = test::call_service(&$app, $req.to_request()).await;
        let status = response.status();
        let body = test::read_body(response).await;
        let json: Value =
            serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
        (status, json)
    }};
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

#[actix_web::test]
async fn tokens_decide_access_with_a_json_detail() {
    let dir = tempfile::tempdir().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(uploads(dir.path()))
            .configure(configure),
    )
    .await;
    let path = "/api/0/organizations/acme/chunk-upload/";
    let (status, body) = call!(app, test::TestRequest::get().uri(path));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["detail"].as_str().unwrap().contains("Bearer"),
        "{body}"
    );
    let wrong = test::TestRequest::get()
        .uri(path)
        .insert_header(bearer(&TOKEN.replace('0', "1")));
    let (status, body) = call!(app, wrong);
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid upload token"))
    );
    let foreign = test::TestRequest::get()
        .uri(path)
        .insert_header(bearer(OTHER));
    assert_eq!(call!(app, foreign).0, StatusCode::FORBIDDEN);
    let unknown = test::TestRequest::get()
        .uri("/api/0/organizations/nope/chunk-upload/")
        .insert_header(bearer(TOKEN));
    assert_eq!(call!(app, unknown).0, StatusCode::NOT_FOUND);

    let (status, options) = call!(
        app,
        test::TestRequest::get()
            .uri(path)
            .insert_header(bearer(TOKEN))
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(options["hashAlgorithm"], "sha1");
    assert_eq!(options["compression"], json!(["gzip"]));
    assert!(
        options["url"].as_str().unwrap().ends_with(path),
        "{options}"
    );
    assert!(options["accept"]
        .as_array()
        .unwrap()
        .contains(&json!("artifact_bundles")));
}

#[actix_web::test]
async fn a_debug_file_is_assembled_once_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(uploads(dir.path()))
            .configure(configure),
    )
    .await;
    let data = sym_file();
    let sha1 = sha1_hex(&data);
    let assemble = || {
        test::TestRequest::post()
            .uri("/api/0/projects/acme/web/files/difs/assemble/")
            .insert_header(bearer(TOKEN))
            .set_json(json!({&sha1: {"name": "test_app.sym", "chunks": [&sha1]}}))
    };
    let (status, first) = call!(app, assemble());
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first[&sha1]["state"], "not_found");
    assert_eq!(first[&sha1]["missingChunks"], json!([&sha1]));

    // A corrupt chunk is refused and nothing of the request is kept.
    let (content_type, body) = form(&[(&sha1, b"not the file")]);
    let chunk = |body: Vec<u8>| {
        test::TestRequest::post()
            .uri("/api/0/organizations/acme/chunk-upload/")
            .insert_header(bearer(TOKEN))
            .insert_header(("Content-Type", content_type.clone()))
            .set_payload(body)
    };
    let (status, refused) = call!(app, chunk(body));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["detail"].as_str().unwrap().contains("corrupt"),
        "{refused}"
    );
    assert_eq!(call!(app, assemble()).1[&sha1]["state"], "not_found");

    let (_, body) = form(&[(&sha1, &data)]);
    assert_eq!(call!(app, chunk(body)).0, StatusCode::OK);
    let (_, stored) = call!(app, assemble());
    assert_eq!(stored[&sha1]["state"], "ok", "{stored}");
    assert_eq!(
        stored[&sha1]["dif"]["debugId"],
        "5a9832e5-2872-41c1-838e-d98914e9b7ff-1"
    );
    // Again, without chunks: still stored.
    assert_eq!(call!(app, assemble()).1[&sha1]["state"], "ok");

    let listing = test::TestRequest::get()
        .uri("/api/0/projects/acme/42/files/dsyms/")
        .insert_header(bearer(TOKEN));
    let (status, listed) = call!(app, listing);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["sha1"], sha1.as_str());
    assert_eq!(listed[0]["symbolType"], "breakpad");
    assert_eq!(listed[0]["objectName"], "test_app.sym");
}

#[actix_web::test]
async fn bundles_must_name_known_projects_and_be_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let app = test::init_service(
        App::new()
            .app_data(uploads(dir.path()))
            .configure(configure),
    )
    .await;
    let data = sym_file();
    let sha1 = sha1_hex(&data);
    let assemble = |projects: Value| {
        test::TestRequest::post()
            .uri("/api/0/organizations/acme/artifactbundle/assemble/")
            .insert_header(bearer(TOKEN))
            .set_json(json!({"checksum": &sha1, "chunks": [&sha1], "projects": projects}))
    };
    let (status, body) = call!(app, assemble(json!(["api"])));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("\"api\""),
        "{body}"
    );
    assert_eq!(call!(app, assemble(json!([]))).0, StatusCode::BAD_REQUEST);

    let (content_type, body) = form(&[(&sha1, &data)]);
    let chunk = test::TestRequest::post()
        .uri("/api/0/organizations/acme/chunk-upload/")
        .insert_header(bearer(TOKEN))
        .insert_header(("Content-Type", content_type))
        .set_payload(body);
    assert_eq!(call!(app, chunk).0, StatusCode::OK);
    // A Breakpad file is no artifact bundle: refused, nothing listed.
    let (_, answer) = call!(app, assemble(json!(["web"])));
    assert_eq!(answer["state"], "error");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("not an artifact bundle"),
        "{answer}"
    );
    let listing = test::TestRequest::get()
        .uri("/api/0/projects/acme/web/files/artifact-bundles/")
        .insert_header(bearer(TOKEN));
    assert_eq!(call!(app, listing).1, json!([]));
}
