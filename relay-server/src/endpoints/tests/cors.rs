//! CORS: preflights, the headers on every intake answer, and `allowed_origins`.

use actix_web::dev::ServiceResponse;

use super::*;

const ORIGIN: &str = "https://app.example.com";

fn header<'a>(response: &'a ServiceResponse, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The headers every intake answer carries for a request from `origin` (`None`: no Origin).
fn assert_cors(response: &ServiceResponse, origin: Option<&str>) {
    let status = response.status();
    assert_eq!(
        header(response, "Access-Control-Allow-Origin"),
        Some(origin.unwrap_or("*")),
        "{status}"
    );
    assert_eq!(
        header(response, "Access-Control-Expose-Headers"),
        Some("X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After"),
        "{status}"
    );
    let vary = header(response, "Vary");
    assert_eq!(vary, origin.map(|_| "Origin"), "{status}");
}

fn preflight(path: &str, origin: &str) -> test::TestRequest {
    test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri(path)
        .insert_header(("Origin", origin))
        .insert_header(("Access-Control-Request-Method", "POST"))
        .insert_header((
            "Access-Control-Request-Headers",
            "content-type, x-sentry-auth",
        ))
}

#[actix_web::test]
async fn preflights_are_answered_without_auth_on_every_intake_route() {
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    for endpoint in ["envelope", "store", "minidump", "security"] {
        let path = format!("/api/42/{endpoint}/");
        let response = test::call_service(&app, preflight(&path, ORIGIN).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_cors(&response, Some(ORIGIN));
        assert_eq!(
            header(&response, "Access-Control-Allow-Methods"),
            Some("GET, POST, OPTIONS")
        );
        let allowed = header(&response, "Access-Control-Allow-Headers").unwrap();
        for name in [
            "content-type",
            "x-sentry-auth",
            "sentry-trace",
            "baggage",
            "authorization",
            "content-encoding",
        ] {
            assert!(allowed.contains(name), "{allowed}");
        }
        assert_eq!(header(&response, "Access-Control-Max-Age"), Some("3600"));
    }
    // Operational endpoints are not for browsers: no CORS headers.
    let req = test::TestRequest::get()
        .uri("/healthz/live")
        .insert_header(("Origin", ORIGIN));
    let response = test::call_service(&app, req.to_request()).await;
    assert!(header(&response, "Access-Control-Allow-Origin").is_none());
}

#[actix_web::test]
async fn successes_and_refusals_carry_cors_headers() {
    let (mut config, _data_dir) = test_config();
    // Project 7 takes nothing: every error is over its quota.
    config.projects[1].quotas = vec![QuotaConfig {
        id: "nothing".into(),
        categories: vec![DataCategory::Error],
        scope: QuotaScope::Project,
        limit: 0,
        window: 60,
        reason: None,
    }];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let eid = format!("{:032x}", 0xc0125);

    let req = post("/api/42/envelope/", envelope(&eid, "cors")).insert_header(("Origin", ORIGIN));
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_cors(&response, Some(ORIGIN));
    // Server SDKs send no Origin: the answer allows any.
    let req = post(
        "/api/42/envelope/",
        envelope(&format!("{:032x}", 2), "server"),
    );
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_cors(&response, None);

    let unauthenticated = test::TestRequest::post()
        .uri("/api/42/store/")
        .insert_header(("Origin", ORIGIN))
        .set_payload("{}");
    let response = test::call_service(&app, unauthenticated.to_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_cors(&response, Some(ORIGIN));

    let limited = test::TestRequest::post()
        .uri("/api/7/envelope/")
        .insert_header((
            "X-Sentry-Auth",
            format!("Sentry sentry_key={OTHER_PROJECT_KEY}, sentry_version=7"),
        ))
        .insert_header(("Origin", ORIGIN))
        .set_payload(envelope(&format!("{:032x}", 3), "limited"));
    let response = test::call_service(&app, limited.to_request()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_cors(&response, Some(ORIGIN));
    assert!(header(&response, "Retry-After").is_some());

    // A project id that is not a number: the 400 is readable too.
    let req = post("/api/x/envelope/", "").insert_header(("Origin", ORIGIN));
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_cors(&response, Some(ORIGIN));

    // The browser's event and the server's are published; the limited one is not.
    let published = consume(&cluster, "relay.events", 2).await;
    let keys: Vec<_> = published.iter().map(|(key, _)| key.as_str()).collect();
    assert!(keys.contains(&eid.as_str()), "{keys:?}");
}

#[actix_web::test]
async fn allowed_origins_refuse_other_origins_with_403() {
    let (mut config, _data_dir) = test_config();
    config.projects[0].allowed_origins = vec![ORIGIN.into(), "*.example.org".into()];
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);
    let body = |n: u32| envelope(&format!("{n:032x}"), "origins");

    let req = post("/api/42/envelope/", body(1)).insert_header(("Origin", "https://evil.test"));
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_cors(&response, Some("https://evil.test"));
    assert_eq!(
        body_json(response).await["detail"],
        "origin https://evil.test is not allowed for project 42"
    );

    for origin in [ORIGIN, "https://shop.example.org"] {
        let req = post("/api/42/envelope/", body(2)).insert_header(("Origin", origin));
        let response = test::call_service(&app, req.to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{origin}");
        assert_cors(&response, Some(origin));
    }
    // No Origin (a server SDK) is never refused by allowed_origins.
    let response = test::call_service(&app, post("/api/42/envelope/", body(3)).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Other projects keep allowing every origin.
    let req = test::TestRequest::post()
        .uri("/api/7/envelope/")
        .insert_header((
            "X-Sentry-Auth",
            format!("Sentry sentry_key={OTHER_PROJECT_KEY}, sentry_version=7"),
        ))
        .insert_header(("Origin", "https://evil.test"))
        .set_payload(body(4));
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
}
