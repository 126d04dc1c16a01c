//! The pipeline behind the intake: Kafka outages and the spool, the reader's bounds, lanes,
//! and the processing steps (filters, scrubbing, grouping, issue windows).

use super::*;

#[actix_web::test]
async fn kafka_outage_fills_the_spool_then_intake_answers_503_and_recovers() {
    let (mut config, _data_dir) = test_config();
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
    let (mut config, _data_dir) = test_config();
    config.pipeline.max_in_flight = 2;
    hold_then_deliver(config, 20, |used| {
        used.slots == 0 && used.window_bytes > 2_000
    })
    .await;

    // A 1-byte window: each entry is larger and takes all of it, so one waits for delivery
    // while the reader holds the next entry's slot, waiting for the window.
    // (One lane: the reader of a second lane would hold a slot waiting for the window too.)
    let (mut config, _data_dir) = test_config();
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
    let (mut config, _data_dir) = test_config();
    config.pipeline.lanes = 3;
    config.pipeline.max_in_flight = 3;
    config.pipeline.delivery_window_bytes = 1;
    config.processing.aggregator.window_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

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
    // This relay's own counts: other tests' relays in this process read entries too.
    let reads = state.lane_reads();
    assert_eq!(reads.len(), 3);
    assert_eq!(
        reads.iter().sum::<u64>(),
        120,
        "entries read per lane: {reads:?}"
    );
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
async fn events_are_filtered_scrubbed_grouped_and_counted_as_issues() {
    let (mut config, _data_dir) = test_config();
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
        let body = event_envelope(event);
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

/// An event the intake's quick check lets through (it skips the strings it does not need,
/// and skips nested values without building them) but the pipeline's parser refuses: answered
/// 200, then counted as `invalid`, never dropped silently. The next event is published.
#[actix_web::test]
async fn events_that_do_not_parse_after_the_spool_are_counted_invalid() {
    let (mut config, _data_dir) = test_config();
    config.outcomes.flush_interval_secs = 1;
    let cluster = start_cluster(&config);
    let state = start_relay(config, &cluster);
    let app = app!(state);

    let bad_utf8 = b"{}\n{\"type\":\"event\"}\n{\"message\":\"caf\xe9 \xff\"}\n".to_vec();
    let deep = format!(
        "{{}}\n{{\"type\":\"event\"}}\n{{\"extra\":{{\"deep\":{}{}}}}}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    for body in [bad_utf8, deep.into_bytes()] {
        let response = test::call_service(&app, post("/api/42/envelope/", body).to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let good = event_envelope(&json!({"message": "after the invalid ones"}));
    let response = test::call_service(&app, post("/api/42/envelope/", good).to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);

    let published = consume(&cluster, "relay.events", 1).await;
    assert_eq!(published.len(), 1);
    let expected: BTreeMap<(String, String), u64> =
        [(("error", "accepted"), 1), (("error", "invalid"), 2)]
            .into_iter()
            .map(|((c, o), n)| ((c.to_owned(), o.to_owned()), n))
            .collect();
    assert_eq!(outcome_totals(&cluster, &expected).await, expected);
}
