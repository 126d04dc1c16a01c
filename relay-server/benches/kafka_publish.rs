//! Kafka publish benchmark (issue 8, item 2): the relay's publish stage against a bare
//! librdkafka producer, the same messages to the same broker with the same settings.
//!
//! ```text
//! cargo bench -p relay-server --bench kafka_publish -- \
//!     --brokers 127.0.0.1:9092 --capture tests/fixtures/sdk/python/0002_event \
//!     [--count 50000] [--reps 3] [--json-out FILE]          # or: bench/run.sh kafka
//!     [--lanes N] [--in-flight N] [--window-bytes N]        # experiments: pipeline settings
//! ```
//!
//! Both sides publish `count` copies of a real SDK capture's event, each with its own event
//! id, to the events topic (`relay.events`, which must exist):
//!
//! - **relay**: the `KafkaProducer` actors as `relay run` starts them: one per pipeline lane
//!   (`--lanes`, default one per core as in `relay run`), each on its lane's arbiter
//!   (`start_bounded_in`, the default mailbox capacity), all sharing one rdkafka producer
//!   (`kafka::create_producer`). Each is fed `ProduceEnvelope` messages from its own arbiter,
//!   as a lane's spool reader feeds it: at most its share of `pipeline.max_in_flight`
//!   (default) envelopes not yet queued in librdkafka (the reader's slot travels with the
//!   envelope), at most `pipeline.delivery_window_bytes` (default, shared by the lanes) of
//!   envelope bytes not yet answered, `try_send`, waiting while the mailbox is full; the lanes
//!   split the messages evenly and start together. Timed: building each message
//!   (`build_messages`: the event's JSON serialization), producing it, awaiting its delivery
//!   report, and the verdict reaching the sender. The envelopes were parsed, normalized, scrubbed and grouped beforehand, outside
//!   the timing (that is the pipeline, measured by the drain and intake benchmarks).
//! - **bare**: an rdkafka `BaseProducer` (the same librdkafka build) with the relay's settings
//!   (`kafka::producer_config`), producing the finished messages (built beforehand by
//!   `build_messages` from the same envelopes: same keys, same bytes) as fast as librdkafka's
//!   queue takes them, counting delivery reports in its context.
//!
//! Each side: one warm-up message first (connection, metadata, idempotent producer id), then
//! messages per second from the first send to the last delivery report. The sides alternate
//! within each repetition, and the order flips every repetition. Prints one JSON object.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::{Arbiter, SendError};
use bytes::Bytes;
use chrono::Utc;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use relay_core::config::{KafkaConfig, PipelineConfig};
use relay_core::{Envelope, EventId, ItemType};
use relay_processing::decode::{decode_bounded, ContentEncoding};
use relay_processing::grouping::fingerprint;
use relay_processing::normalize::{normalize_event_full, NormalizeContext, NormalizeOptions};
use relay_processing::pii::PiiScrubber;
use relay_server::actors::kafka_producer::{KafkaProducer, ProduceEnvelope};
use relay_server::actors::spool_reader::{share, window_cost, window_permits};
use relay_server::actors::{start_bounded_in, Mailbox};
use relay_server::kafka::messages::events::build_messages;
use relay_server::kafka::{create_producer, producer_config};
use relay_server::managed::{ManagedEnvelope, RequestMeta, Verdict};
use relay_server::service::lane_count;
use serde_json::Value;
use tokio::sync::{oneshot, Semaphore};

struct Args {
    brokers: String,
    capture: PathBuf,
    count: usize,
    reps: usize,
    json_out: Option<PathBuf>,
    /// Overrides `pipeline.max_in_flight` and `pipeline.mailbox_capacity` (experiments).
    in_flight: Option<usize>,
    /// Pipeline lanes; 0 means one per core, as `relay run`'s default.
    lanes: usize,
    /// Overrides `pipeline.delivery_window_bytes` (experiments).
    window_bytes: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        brokers: String::new(),
        capture: PathBuf::new(),
        count: 50_000,
        reps: 3,
        json_out: None,
        in_flight: None,
        lanes: 0,
        window_bytes: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--brokers" => args.brokers = value(),
            "--capture" => args.capture = value().into(),
            "--count" => args.count = value().parse().expect("--count is a number"),
            "--reps" => args.reps = value().parse().expect("--reps is a number"),
            "--json-out" => args.json_out = Some(value().into()),
            "--in-flight" => {
                args.in_flight = Some(value().parse().expect("--in-flight is a number"))
            }
            "--lanes" => args.lanes = value().parse().expect("--lanes is a number"),
            "--window-bytes" => {
                args.window_bytes = Some(value().parse().expect("--window-bytes is a number"))
            }
            // `cargo bench` passes `--bench` to harness-less benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        !args.brokers.is_empty(),
        "--brokers HOST:PORT is required (bench/run.sh kafka starts a broker)"
    );
    args
}

/// The capture's envelope and its event as the pipeline leaves it: normalized, scrubbed and
/// grouped (event id, group id).
struct Template {
    envelope: Envelope,
    meta: RequestMeta,
    event: Value,
    group_id: String,
}

fn load_template(capture: &Path) -> Template {
    let body = std::fs::read(capture.join("body.bin")).expect("capture body.bin");
    let headers = std::fs::read_to_string(capture.join("headers.json")).expect("headers.json");
    let gzip = headers.to_ascii_lowercase().contains("\"gzip\"");
    let encoding = if gzip {
        ContentEncoding::Gzip
    } else {
        ContentEncoding::Identity
    };
    let raw = decode_bounded(encoding, &body, 100 << 20).expect("capture decodes");
    let envelope = Envelope::parse(Bytes::from(raw)).expect("capture parses");
    let item = envelope.event_item().expect("capture has an event");
    let is_transaction = item.ty() == &ItemType::Transaction;
    let mut event: Value = serde_json::from_slice(&item.payload).expect("event is JSON");
    let meta = RequestMeta {
        project_id: 42,
        public_key: "abc123def456abc123def456abc123de".to_owned(),
        received: Utc::now(),
        client_ip: None,
        sent_at: None,
        sdk: Default::default(),
    };
    let ctx = NormalizeContext {
        received: meta.received,
        envelope_event_id: envelope.headers.event_id,
        is_transaction,
    };
    normalize_event_full(&mut event, &ctx, &NormalizeOptions::default()).expect("normalizes");
    PiiScrubber::default().scrub(&mut event);
    let group_id = fingerprint(&event).hash;
    Template {
        envelope,
        meta,
        event,
        group_id,
    }
}

/// `count` processed envelopes, each with a fresh event id, and their verdict receivers.
fn envelopes(
    template: &Template,
    count: usize,
) -> Vec<(ManagedEnvelope, oneshot::Receiver<Verdict>)> {
    (0..count)
        .map(|_| {
            let id = EventId::new();
            let mut envelope = template.envelope.clone();
            envelope.headers.event_id = Some(id);
            let mut event = template.event.clone();
            event["event_id"] = Value::String(id.to_string());
            let (mut managed, verdict) =
                ManagedEnvelope::new(envelope, template.meta.clone(), Some(event), 0);
            managed.event_id = Some(id);
            managed.group_id = Some(template.group_id.clone());
            (managed, verdict)
        })
        .collect()
}

/// The relay's Kafka settings, plus `KAFKA_PRODUCER` overrides (`key=value,...`) for
/// experiments; both sides use the result.
fn kafka_config() -> KafkaConfig {
    let mut config = KafkaConfig::default();
    for pair in std::env::var("KAFKA_PRODUCER")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((key, value)) = pair.split_once('=') {
            config.producer.insert(key.to_owned(), value.to_owned());
        }
    }
    config
}

/// The relay side: a KafkaProducer actor per lane, each fed like a lane's spool reader feeds
/// its pipeline, from the same arbiter (thread) as in `relay run`, so verdicts come back
/// without a thread hop. Messages per second from the common start to the last verdict.
fn relay_side(
    brokers: &str,
    template: &Arc<Template>,
    count: usize,
    pipeline: PipelineConfig,
) -> f64 {
    let lanes = lane_count(&pipeline);
    let kafka = kafka_config();
    let producer = create_producer(brokers, &kafka).expect("producer");
    let template = template.clone();
    actix_rt::System::new().block_on(async move {
        let window = Window::new(pipeline.delivery_window_bytes);
        let mut arbiters = Vec::new();
        let (mut ready, mut go, mut done) = (Vec::new(), Vec::new(), Vec::new());
        for lane in 0..lanes {
            let arbiter = Arbiter::new();
            let (config, producer) = (kafka.clone(), producer.clone());
            let mailbox = start_bounded_in(
                &arbiter.handle(),
                KafkaProducer::MAILBOX,
                pipeline.mailbox_capacity,
                move || KafkaProducer::new(producer, &config),
            );
            let feeder = LaneFeeder {
                mailbox,
                slots: Arc::new(Semaphore::new(share(pipeline.max_in_flight, lanes, lane))),
                window: window.clone(),
            };
            let (ready_tx, ready_rx) = oneshot::channel();
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let (done_tx, done_rx) = oneshot::channel();
            let (template, messages) = (template.clone(), share(count, lanes, lane));
            arbiter.spawn(async move {
                // Built on the lane's thread, outside the timing: in `relay run` the events
                // are parsed and freed on the same (lane) thread, and freeing memory another
                // thread allocated is slower.
                let warmup = envelopes(&template, 1);
                let batch = envelopes(&template, messages);
                feeder.warm_up(warmup).await;
                let _ = ready_tx.send(());
                go_rx.await.expect("the start signal");
                let _ = done_tx.send(feeder.feed(batch).await);
            });
            arbiters.push(arbiter);
            ready.push(ready_rx);
            go.push(go_tx);
            done.push(done_rx);
        }
        for lane in ready {
            lane.await.expect("the lane warmed up");
        }
        let start = Instant::now();
        for lane in go {
            lane.send(()).expect("the lane waits for the start");
        }
        let mut end = start;
        for lane in done {
            end = end.max(lane.await.expect("the lane reports its end"));
        }
        count as f64 / (end - start).as_secs_f64()
    })
}

/// The delivery window shared by the lanes.
#[derive(Clone)]
struct Window {
    permits: Arc<Semaphore>,
    size: usize,
}

impl Window {
    fn new(delivery_window_bytes: usize) -> Self {
        let size = window_permits(delivery_window_bytes);
        Window {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }
}

/// Feeds one lane's producer within the spool reader's bounds: the lane's share of the
/// `max_in_flight` slots (released by the producer once the messages are queued) and the
/// shared delivery window (released with the verdict).
struct LaneFeeder {
    mailbox: Mailbox<KafkaProducer>,
    slots: Arc<Semaphore>,
    window: Window,
}

impl LaneFeeder {
    async fn send(&self, managed: ManagedEnvelope) {
        let mut message = ProduceEnvelope(managed);
        loop {
            match self.mailbox.try_send(message) {
                Ok(()) => return,
                Err(SendError::Full(back)) => {
                    message = back;
                    actix_rt::time::sleep(Duration::from_micros(200)).await;
                }
                Err(SendError::Closed(_)) => panic!("producer stopped"),
            }
        }
    }

    /// Connection, metadata and the producer id, outside the timing.
    async fn warm_up(&self, warmup: Vec<(ManagedEnvelope, oneshot::Receiver<Verdict>)>) {
        for (managed, verdict) in warmup {
            self.send(managed).await;
            assert!(matches!(verdict.await, Ok(Verdict::Accepted)), "warm-up");
        }
    }

    /// Sends `batch`; returns when the last verdict arrived.
    async fn feed(&self, batch: Vec<(ManagedEnvelope, oneshot::Receiver<Verdict>)>) -> Instant {
        let count = batch.len();
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut waiting = Vec::with_capacity(count);
        for (mut managed, verdict) in batch {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore open");
            // The envelope's bytes stand for the spooled entry's.
            let bytes = managed.envelope.items.iter().map(|item| item.payload.len());
            let bytes = window_cost(bytes.sum(), self.window.size);
            let credit = self
                .window
                .permits
                .clone()
                .acquire_many_owned(bytes)
                .await
                .expect("semaphore open");
            managed.hold_slot(slot);
            self.send(managed).await;
            let accepted = accepted.clone();
            waiting.push(actix_rt::spawn(async move {
                if matches!(verdict.await, Ok(Verdict::Accepted)) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                drop(credit);
            }));
        }
        for task in waiting {
            task.await.expect("verdict task");
        }
        assert_eq!(
            accepted.load(Ordering::Relaxed),
            count,
            "every envelope delivered"
        );
        Instant::now()
    }
}

/// Counts delivery reports of the bare producer.
#[derive(Default)]
struct Counting {
    delivered: AtomicUsize,
    failed: AtomicUsize,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.delivered
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The bare side: finished messages straight into librdkafka.
fn bare_side(brokers: &str, template: &Template, count: usize) -> f64 {
    let kafka = kafka_config();
    let topic = kafka.topics.events.clone();
    let messages: Vec<(String, Vec<u8>)> = envelopes(template, count + 1)
        .into_iter()
        .map(|(managed, _verdict)| {
            let mut built = build_messages(&managed, kafka.attachment_chunk_size, EventId::new);
            // Answer the envelope so that dropping it does not log a missing verdict.
            managed.accept();
            let message = built.pop().expect("an event message");
            (message.key, message.payload)
        })
        .collect();
    let producer: BaseProducer<Counting> = producer_config(brokers, &kafka)
        .create_with_context(Counting::default())
        .expect("bare producer");
    let produce = |key: &str, payload: &[u8]| {
        let mut record = BaseRecord::to(&topic).key(key).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => return,
                Err((error, back)) => {
                    assert!(
                        matches!(
                            error.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "bare produce failed: {error}"
                    );
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    };
    let (warm_key, warm_payload) = &messages[0];
    produce(warm_key, warm_payload);
    producer
        .flush(Duration::from_secs(30))
        .expect("warm-up flush");
    let context = producer.context();
    let base = context.delivered.load(Ordering::Relaxed);

    let start = Instant::now();
    for (key, payload) in &messages[1..] {
        produce(key, payload);
        producer.poll(Duration::ZERO);
    }
    while context.delivered.load(Ordering::Relaxed) + context.failed.load(Ordering::Relaxed)
        < base + count
    {
        producer.poll(Duration::from_millis(1));
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(
        context.failed.load(Ordering::Relaxed),
        0,
        "bare deliveries failed"
    );
    count as f64 / elapsed
}

fn main() {
    let args = parse_args();
    let template = Arc::new(load_template(&args.capture));
    let payload_bytes = {
        let (managed, _verdict) = envelopes(&template, 1).pop().expect("one envelope");
        let size = build_messages(&managed, 1 << 20, EventId::new)[0]
            .payload
            .len();
        managed.accept();
        size
    };
    let mut pipeline = PipelineConfig::default();
    if let Some(n) = args.in_flight {
        pipeline.max_in_flight = n;
        pipeline.mailbox_capacity = n;
    }
    pipeline.lanes = args.lanes;
    if let Some(bytes) = args.window_bytes {
        pipeline.delivery_window_bytes = bytes;
    }
    let mut relay = Vec::new();
    let mut bare = Vec::new();
    for rep in 0..args.reps {
        let run_relay = || relay_side(&args.brokers, &template, args.count, pipeline.clone());
        if rep % 2 == 0 {
            bare.push(bare_side(&args.brokers, &template, args.count));
            relay.push(run_relay());
        } else {
            relay.push(run_relay());
            bare.push(bare_side(&args.brokers, &template, args.count));
        }
        eprintln!(
            "rep {}: relay {:.0} msg/s, bare {:.0} msg/s",
            rep + 1,
            relay[rep],
            bare[rep]
        );
    }
    let result = serde_json::json!({
        "count": args.count,
        "payload_bytes": payload_bytes,
        "max_in_flight": pipeline.max_in_flight,
        "lanes": lane_count(&pipeline),
        "delivery_window_bytes": pipeline.delivery_window_bytes,
        "mailbox_capacity": pipeline.mailbox_capacity,
        "relay_msgs_per_s": relay,
        "bare_msgs_per_s": bare,
    });
    println!("{result}");
    if let Some(path) = &args.json_out {
        std::fs::write(path, result.to_string()).expect("write --json-out");
    }
}
