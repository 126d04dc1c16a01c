//! The composition root: starts every actor in dependency order and serves HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use rdkafka::producer::FutureProducer;
use relay_core::Config;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::actors::aggregator::Aggregator;
use crate::actors::kafka_producer::KafkaProducer;
use crate::actors::normalizer::Normalizer;
use crate::actors::rate_limiter::RateLimiter;
use crate::actors::symbolicator::SymbolicatorGate;
use crate::actors::{start_bounded, Mailbox};
use crate::kafka::embedded::EmbeddedBroker;
use crate::projects::{ensure_default_project, Projects};
use crate::{endpoints, kafka, metrics};

/// Name of the intake's in-flight gate in metrics.
pub const INTAKE_GATE: &str = "intake";

/// What the HTTP handlers share: configuration, projects and the pipeline's entry.
pub struct ServiceState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Keys and projects allowed to send.
    pub projects: Projects,
    /// The first pipeline stage.
    pub pipeline: Mailbox<RateLimiter>,
    /// The symbolicator gate, for its depth metric.
    pub symbolicator: SymbolicatorGate,
    in_flight: Arc<Semaphore>,
    ready: AtomicBool,
}

impl ServiceState {
    /// Starts the pipeline, each async actor on its own arbiter (thread), the Symbolicator on a
    /// `SyncArbiter`. Must run inside an actix `System`.
    pub fn start(config: Config, producer: FutureProducer) -> Self {
        let capacity = config.pipeline.mailbox_capacity;
        let kafka_config = config.kafka.clone();
        let producer = start_bounded(KafkaProducer::MAILBOX, capacity, move || {
            KafkaProducer::new(producer, &kafka_config)
        });
        let aggregator = start_bounded(Aggregator::MAILBOX, capacity, move || {
            Aggregator::new(producer)
        });
        let threads = match config.pipeline.symbolicator_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let symbolicator =
            SymbolicatorGate::start(threads, config.pipeline.symbolicator_queue, aggregator);
        let gate = symbolicator.clone();
        let normalizer =
            start_bounded(Normalizer::MAILBOX, capacity, move || Normalizer::new(gate));
        let pipeline = start_bounded(RateLimiter::MAILBOX, capacity, move || {
            RateLimiter::new(normalizer)
        });
        metrics::set_mailbox_capacity(INTAKE_GATE, config.pipeline.max_in_flight);
        ServiceState {
            projects: Projects::new(&config.projects),
            in_flight: Arc::new(Semaphore::new(config.pipeline.max_in_flight)),
            config: Arc::new(config),
            pipeline,
            symbolicator,
            ready: AtomicBool::new(false),
        }
    }

    /// Admits one more envelope into the pipeline, or `None` when `max_in_flight` are in it.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.in_flight.clone().try_acquire_owned().ok()
    }

    /// Updates the gauges that are read off semaphores rather than counted.
    pub fn publish_gate_depths(&self) {
        let in_use = self.config.pipeline.max_in_flight - self.in_flight.available_permits();
        metrics::mailbox_depth(INTAKE_GATE).set(in_use as i64);
        self.symbolicator.publish_depth();
    }

    /// Whether the relay accepts requests.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Marks the relay as accepting (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

/// `relay run`: prepares the data directory and Kafka, then serves until stopped.
pub fn run(mut config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
    })?;
    ensure_default_project(&mut config).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the default project in {}: {e}",
            config.data_dir.display()
        )
    })?;
    actix_web::rt::System::new().block_on(serve(config))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // The embedded broker lives as long as this function, i.e. until the server stops.
    let embedded = match &config.kafka.brokers {
        Some(_) => None,
        None => Some(EmbeddedBroker::start(&config.kafka)?),
    };
    let brokers = match (&config.kafka.brokers, &embedded) {
        (Some(brokers), _) => brokers.clone(),
        (None, Some(broker)) => broker.bootstrap_servers(),
        (None, None) => unreachable!("an embedded broker is started when none is configured"),
    };
    let producer = kafka::create_producer(&brokers, &config.kafka)?;
    let listen = config.listen.clone();
    let shutdown_timeout = config.pipeline.timeout_secs;
    let state = web::Data::new(ServiceState::start(config, producer));

    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .configure(endpoints::configure)
    })
    .bind(&listen)
    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?
    .shutdown_timeout(shutdown_timeout)
    .run();

    print_banner(&state, &listen, &brokers, embedded.is_some());
    state.set_ready(true);
    server.await?;
    state.set_ready(false);
    // Give in-flight delivery reports a moment; the producer flushes when dropped.
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    drop(embedded);
    Ok(())
}

fn print_banner(state: &ServiceState, listen: &str, brokers: &str, embedded: bool) {
    println!(
        "relay {} listening on http://{listen}",
        env!("CARGO_PKG_VERSION")
    );
    for project in &state.config.projects {
        if let Some(key) = project.keys.iter().find(|k| !k.disabled()) {
            println!(
                "project {} DSN: http://{}@{listen}/{}",
                project.id,
                key.key(),
                project.id
            );
        }
    }
    if embedded {
        println!(
            "kafka: embedded broker at {brokers} (in memory; consume with e.g. `kcat -b {brokers} -C -t {}`)",
            state.config.kafka.topics.events
        );
    } else {
        println!("kafka: brokers {brokers}");
    }
}
