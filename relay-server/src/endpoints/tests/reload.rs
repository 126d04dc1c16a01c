//! Config reload: new settings for new requests only, and `POST /api/relay/reload/` on the
//! admin listener refusing a broken file.

use std::sync::Arc;

use super::*;
use crate::endpoints::reload::configure_admin;
use crate::reload::{ConfigSource, Reloader};
use crate::state::RequestState;

const NEW_KEY: &str = "0123456789abcdef0123456789abcdef";

/// `config` with project 42's keys replaced by `keys`.
fn with_keys(config: &Config, keys: &[&str]) -> Config {
    let mut config = config.clone();
    config.projects[0].keys = keys.iter().map(|k| KeyConfig::Plain((*k).into())).collect();
    config
}

#[actix_web::test]
async fn a_reload_changes_keys_for_new_requests_only() {
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config.clone(), &cluster);
    let app = app!(state);
    let in_flight = RequestState::new((*state).clone());

    let not_applied = state.reload(with_keys(&config, &[NEW_KEY])).unwrap();
    assert!(not_applied.is_empty(), "{not_applied:?}");

    // A request that started before the reload finishes with the keys it started with.
    assert!(in_flight.settings.projects.check(42, KEY).is_ok());
    assert!(in_flight.settings.projects.check(42, NEW_KEY).is_err());
    let now = RequestState::new((*state).clone());
    assert!(now.settings.projects.check(42, NEW_KEY).is_ok());

    let old = post(
        "/api/42/envelope/",
        envelope("9ec79c33ec9942ab8353589fcb2e04dc", "a"),
    );
    assert_eq!(
        status_and_detail(&app, old).await.0,
        StatusCode::UNAUTHORIZED
    );
    let new = test::TestRequest::post()
        .uri("/api/42/envelope/")
        .insert_header(("X-Sentry-Auth", format!("Sentry sentry_key={NEW_KEY}")))
        .set_payload(envelope("9ec79c33ec9942ab8353589fcb2e04dd", "b"));
    assert_eq!(
        status_and_detail(&app, new).await,
        (StatusCode::OK, String::new())
    );
}

#[actix_web::test]
async fn the_admin_route_reloads_the_file_and_refuses_a_broken_one() {
    let (config, data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config.clone(), &cluster);
    let file = data_dir.path().join("relay.yaml");
    let source = ConfigSource {
        path: Some(file.clone()),
        overrides: Default::default(),
    };
    let reloader: Arc<Reloader> = Reloader::new(source, (*state).clone());
    let admin = test::init_service(
        App::new()
            .app_data(web::Data::new(reloader))
            .configure(configure_admin),
    )
    .await;
    let reload = || test::TestRequest::post().uri("/api/relay/reload/");

    let mut changed = with_keys(&config, &[KEY, NEW_KEY]);
    changed.listen = "127.0.0.1:3999".into();
    std::fs::write(&file, serde_yaml::to_string(&changed).unwrap()).unwrap();
    let answer = test::call_service(&admin, reload().to_request()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = test::read_body_json(answer).await;
    assert_eq!(body, json!({"reloaded": true, "not_applied": ["listen"]}));
    assert!(state.settings().projects.check(42, NEW_KEY).is_ok());
    assert_eq!(
        state.settings().config.listen,
        config.listen,
        "kept until a restart"
    );

    std::fs::write(&file, "projects:\n  - id: forty-two\n").unwrap();
    let (status, detail) = status_and_detail(&admin, reload()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail.contains("projects[0].id"), "{detail}");
    assert!(
        state.settings().projects.check(42, NEW_KEY).is_ok(),
        "the settings in force stay"
    );
}

#[actix_web::test]
async fn a_reload_in_forward_mode_puts_keys_and_quotas_in_force() {
    let (mut config, _data_dir) = test_config();
    // Nothing answers there: the test looks at the intake's answers only.
    config.upstream = Some(serde_json::from_value(json!({"url": "http://127.0.0.1:9"})).unwrap());
    let spool =
        crate::spool::Spool::open(&config.data_dir.join("spool"), config.spool.clone()).unwrap();
    let state = crate::service::start_forwarding(config.clone(), spool).unwrap();
    let state = TestRelay(web::Data::new(state));
    state.set_accepting(true);
    let app = app!(state);
    let send = |key: &str, id: &str| {
        test::TestRequest::post()
            .uri("/api/42/envelope/")
            .insert_header(("X-Sentry-Auth", format!("Sentry sentry_key={key}")))
            .set_payload(envelope(id, "edge"))
    };
    let unknown = send(NEW_KEY, "9ec79c33ec9942ab8353589fcb2e04d0");
    assert_eq!(
        status_and_detail(&app, unknown).await.0,
        StatusCode::UNAUTHORIZED
    );

    let mut changed = with_keys(&config, &[KEY, NEW_KEY]);
    changed.projects[0].quotas = vec![QuotaConfig {
        id: "no-errors".into(),
        categories: vec![DataCategory::Error],
        scope: QuotaScope::Key,
        limit: 0,
        window: 60,
        reason: Some("closed".into()),
    }];
    let not_applied = state.reload(changed).unwrap();
    assert!(not_applied.is_empty(), "{not_applied:?}");

    let (status, _) =
        status_and_detail(&app, send(NEW_KEY, "9ec79c33ec9942ab8353589fcb2e04d1")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the new key, under the new quota"
    );
}

/// The crashing thread's frames of the event on the events topic whose key is not in `seen`
/// (the topic's partitions keep no order between them), and its key.
async fn new_crash_frames(cluster: &Cluster, seen: &[String]) -> (String, Vec<Value>) {
    let events = consume(cluster, "relay.events", seen.len() + 1).await;
    let (key, message) = events
        .into_iter()
        .find(|(key, _)| !seen.contains(key))
        .expect("a new event");
    let frames = message["event"]["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    (key, frames)
}

#[actix_web::test]
async fn a_reload_gives_a_project_its_new_symbol_directory() {
    let native = fixtures().join("native/linux-x86_64");
    let (config, _data_dir) = test_config();
    let cluster = start_cluster(&config);
    let state = start_relay(config.clone(), &cluster);
    let app = app!(state);
    let dump = std::fs::read(native.join("linux.dmp")).unwrap();
    let send = || post_raw_minidump(dump.clone()).to_request();
    assert_eq!(
        test::call_service(&app, send()).await.status(),
        StatusCode::OK
    );
    let (first, before) = new_crash_frames(&cluster, &[]).await;
    assert!(
        !before.iter().any(|f| f["status"] == "symbolicated"),
        "{before:?}"
    );

    let mut with_symbols = config.clone();
    with_symbols.projects[0].native_symbols = vec![native.clone()];
    assert!(state.reload(with_symbols).unwrap().is_empty());
    assert_eq!(
        test::call_service(&app, send()).await.status(),
        StatusCode::OK
    );
    let (_, after) = new_crash_frames(&cluster, &[first]).await;
    let main = after
        .iter()
        .find(|f| f["function"] == "main")
        .unwrap_or_else(|| panic!("main is symbolicated: {after:?}"));
    assert_eq!(main["status"], "symbolicated");
}
