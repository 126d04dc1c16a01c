//! HTTP-level tests: the real endpoints and actors, publishing to librdkafka's mock cluster.
//!
//! This file holds the helpers; each endpoint's tests are in their own file, the pipeline's
//! behaviour behind the intake in `pipeline.rs` and symbolication in `symbolication.rs`.

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
use tempfile::TempDir;

use super::configure;
use crate::actors::spool_reader::ReaderUse;
use crate::state::ServiceState;
use crate::test_support::fixtures;

const KEY: &str = "abc123def456abc123def456abc123de";

const DISABLED_KEY: &str = "00000000000000000000000000000001";

const OTHER_PROJECT_KEY: &str = "00000000000000000000000000000007";

const PARTITIONS: i32 = 3;

type Cluster = MockCluster<'static, DefaultProducerContext>;

/// A configuration for one test relay, and the guard of its data directory: the directory
/// is removed when the guard drops, also when the test fails, so hold it for the whole test.
fn test_config() -> (Config, TempDir) {
    let data_dir = tempfile::Builder::new()
        .prefix("relay-test-")
        .tempdir()
        .unwrap();
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
    config.data_dir = data_dir.path().to_owned();
    config.pipeline.retry_after_secs = 3;
    (config, data_dir)
}

fn start_cluster(config: &Config) -> Cluster {
    let cluster = MockCluster::new(1).unwrap();
    for (_, topic) in config.kafka.topics.all() {
        cluster.create_topic(topic, PARTITIONS, 1).unwrap();
    }
    cluster
}

fn start_relay(config: Config, cluster: &Cluster) -> TestRelay {
    let producer =
        crate::kafka::create_producer(&cluster.bootstrap_servers(), &config.kafka).unwrap();
    let spool =
        crate::spool::Spool::open(&config.data_dir.join("spool"), config.spool.clone()).unwrap();
    let symbols = crate::symbols::ProjectSymbolStores::load(&config).unwrap();
    let symbols = crate::symbols::LiveSymbols::new(symbols);
    let state = web::Data::new(crate::service::start(config, producer, spool, symbols));
    state.set_accepting(true);
    TestRelay(state)
}

/// A started relay's state. Dropping it closes the spool: its writer thread would otherwise
/// outlive the test and create the spool directory again after the data directory's guard
/// has removed it.
struct TestRelay(web::Data<ServiceState>);

impl std::ops::Deref for TestRelay {
    type Target = web::Data<ServiceState>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.0.spool.close();
    }
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

/// A raw (`application/octet-stream`) minidump upload for project 42.
fn post_raw_minidump(dump: impl Into<Vec<u8>>) -> test::TestRequest {
    post("/api/42/minidump/", dump).insert_header(("Content-Type", "application/octet-stream"))
}

/// An envelope holding `event` as its one item, with an empty envelope header.
fn event_envelope(event: &Value) -> String {
    format!("{{}}\n{{\"type\":\"event\"}}\n{event}\n")
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

mod cors;
mod envelope;
mod minidump;
mod pipeline;
mod quotas;
mod reload;
mod security;
mod store;
mod symbolication;
