//! `POST /api/{project_id}/security/`: CSP reports in both wire forms, quotas and outcomes.

use super::*;

const REPORT_URI_BODY: &str = r#"{"csp-report":{"document-uri":"http://127.0.0.1:8000/page","referrer":"","violated-directive":"img-src","effective-directive":"img-src","original-policy":"img-src 'self'; report-uri /api/42/security/","disposition":"enforce","blocked-uri":"http://127.0.0.1:9/x.png","status-code":200}}"#;

/// A Reporting API report of `ty` whose body names `blocked`.
fn batch_report(ty: &str, blocked: &str) -> Value {
    json!({
        "age": 3,
        "type": ty,
        "url": "http://127.0.0.1:8000/page",
        "user_agent": "Mozilla/5.0 Chrome/156",
        "body": {"blockedURL": blocked, "effectiveDirective": "img-src", "disposition": "enforce"},
    })
}

/// A report as a browser posts it: the key in the query, no auth header.
fn post_report(body: impl Into<Vec<u8>>, content_type: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/api/42/security/?sentry_key={KEY}"))
        .insert_header(("Content-Type", content_type))
        .set_payload(body.into())
}

fn totals(entries: &[((&str, &str), u64)]) -> BTreeMap<(String, String), u64> {
    entries
        .iter()
        .map(|((c, o), n)| ((c.to_string(), o.to_string()), *n))
        .collect()
}

#[actix_web::test]
async fn both_report_forms_reach_the_events_topic_as_security_items() {
    let (mut config, _data_dir) = test_config();
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    for content_type in ["application/csp-report", "application/json"] {
        let req = post_report(REPORT_URI_BODY, content_type);
        let response = test::call_service(&app, req.to_request()).await;
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
        assert_eq!(body_json(response).await, json!({}));
    }
    let batch = json!([
        batch_report("csp-violation", "http://127.0.0.1:9/a.png"),
        batch_report("deprecation", "-"),
        batch_report("csp-violation", "inline"),
    ]);
    let req = post_report(batch.to_string(), "application/reports+json");
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let messages = consume(&cluster, "relay.events", 4).await;
    let mut payloads: Vec<(Value, Value)> = messages
        .iter()
        .map(|(_, message)| {
            assert_eq!(message["type"], "security", "{message}");
            assert_eq!(message["project_id"], 42);
            assert_eq!(message["public_key"], KEY);
            (
                message["item_headers"]["content_type"].clone(),
                message["payload"].clone(),
            )
        })
        .collect();
    payloads.sort_by_key(|(content_type, payload)| format!("{content_type}{payload}"));
    let legacy: Value = serde_json::from_str(REPORT_URI_BODY).unwrap();
    assert_eq!(
        payloads,
        [
            (json!("application/csp-report"), legacy.clone()),
            (json!("application/csp-report"), legacy),
            (
                json!("application/reports+json"),
                batch_report("csp-violation", "http://127.0.0.1:9/a.png")
            ),
            (
                json!("application/reports+json"),
                batch_report("csp-violation", "inline")
            ),
        ]
    );
    let expected = totals(&[(("security", "accepted"), 4), (("security", "invalid"), 1)]);
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}

#[actix_web::test]
async fn security_quotas_limit_reports_with_429_and_leave_errors_alone() {
    let (mut config, _data_dir) = test_config();
    config.projects[0].quotas = vec![QuotaConfig {
        id: "csp".into(),
        categories: vec![DataCategory::Security],
        scope: QuotaScope::Project,
        limit: 2,
        window: 60,
        reason: Some("csp_quota".into()),
    }];
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    // A batch of three: two fit, the third is limited and the answer says so.
    let batch = json!([
        batch_report("csp-violation", "a"),
        batch_report("csp-violation", "b"),
        batch_report("csp-violation", "c"),
    ]);
    let req = post_report(batch.to_string(), "application/reports+json");
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let limits = response.headers().get("X-Sentry-Rate-Limits").unwrap();
    assert!(
        limits
            .to_str()
            .unwrap()
            .ends_with(":security:project:csp_quota"),
        "{limits:?}"
    );
    // Nothing left to keep: 429 with Retry-After and a JSON reason.
    let req = post_report(REPORT_URI_BODY, "application/csp-report");
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().get("Retry-After").is_some());
    let detail = body_json(response).await["detail"].clone();
    assert!(
        detail.as_str().unwrap().contains("rate limited"),
        "{detail}"
    );
    // Errors count against their own category.
    let req = post(
        "/api/42/envelope/",
        envelope(&format!("{:032x}", 5), "error"),
    );
    let response = test::call_service(&app, req.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let expected = totals(&[
        (("security", "accepted"), 2),
        (("security", "rate_limited"), 2),
        (("error", "accepted"), 1),
    ]);
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}

#[actix_web::test]
async fn refusals_answer_json_and_count_as_invalid() {
    let (mut config, _data_dir) = test_config();
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let cases = [
        ("{\"csp-report\": \"x\"}", "no \"csp-report\" object"),
        (
            "[{\"type\":\"deprecation\",\"body\":{}}]",
            "no CSP violation report",
        ),
        ("not json", "must be a JSON object"),
    ];
    for (body, expected) in cases {
        let req = post_report(body, "application/csp-report");
        let (status, detail) = status_and_detail(&app, req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(detail.contains(expected), "{body}: {detail}");
    }
    // No key (a browser would send none without the query parameter): 401.
    let req = test::TestRequest::post()
        .uri("/api/42/security/")
        .insert_header(("Content-Type", "application/csp-report"))
        .set_payload(REPORT_URI_BODY);
    let (status, detail) = status_and_detail(&app, req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!detail.is_empty());

    let expected = totals(&[(("default", "invalid"), 3)]);
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}
