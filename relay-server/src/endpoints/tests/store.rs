//! `POST /api/{project_id}/store/`.

use super::*;

#[actix_web::test]
async fn store_endpoint_publishes_the_event() {
    let (config, _data_dir) = test_config();
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
