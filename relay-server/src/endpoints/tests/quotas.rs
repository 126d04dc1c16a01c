//! Quotas (429s, rate-limit headers, outcomes) and the per-IP abuse limit.

use super::*;

#[actix_web::test]
async fn quotas_limit_items_and_outcomes_add_up() {
    let (mut config, _data_dir) = test_config();
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
    let req = post_raw_minidump(dump);
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
    let (mut config, _data_dir) = test_config();
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
