//! The composition root: starts every actor in dependency order, builds the handlers' shared
//! [`ServiceState`] from their addresses, and serves HTTP.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter, ArbiterHandle};
use actix_web::{web, App, HttpServer};
use rdkafka::producer::Producer as _;
use relay_core::config::PipelineConfig;
use relay_core::Config;

use crate::actors::event_processor::{EventProcessor, FlushWindows, SharedWindows};
use crate::actors::kafka_producer::{Barrier, KafkaProducer};
use crate::actors::normalizer::Normalizer;
use crate::actors::outcomes::{OutcomeAggregator, Outcomes};
use crate::actors::spool_reader::{Entrance, Gates, ReaderSettings, SpoolReader, MAX_BACKOFF};
use crate::actors::symbol_fetcher::SymbolFetcher;
use crate::actors::symbolicator::{LaneExits, SymbolicatorGate};
use crate::actors::upstream_forwarder::UpstreamForwarder;
use crate::actors::{start_bounded_in, Mailbox};
use crate::kafka::embedded::EmbeddedBroker;
use crate::processing::{LiveProcessing, ProcessingSettings};
use crate::projects::ensure_default_project;
use crate::reload::{reload_on_sighup, ConfigSource, Reloader};
use crate::spool::Spool;
use crate::state::ServiceState;
use crate::symbols::{LiveSymbols, ProjectSymbolStores};
use crate::tls::ReloadableCert;
use crate::uploads::Uploads;
use crate::upstream::{UpstreamClient, UpstreamMemory};
use crate::{endpoints, kafka, metrics};

/// Starts the pipeline: one or more lanes, each a thread (arbiter) with its own spool
/// reader, Normalizer, EventProcessor and KafkaProducer; the SymbolFetcher and the
/// OutcomeAggregator on the first lane; the Symbolicator on a `SyncArbiter`. Must run
/// inside an actix `System`.
///
/// The stages of a lane share its thread because each does microseconds of work per
/// envelope: on threads of their own, every hand-over woke a sleeping thread, and those
/// context switches cost more CPU than the stages' work (`docs/benchmarks.md`). Lanes, not
/// stages, spread the work over the cores: an envelope stays on the lane that read it.
pub fn start(
    config: Config,
    producer: kafka::Producer,
    spool: Arc<Spool>,
    symbols: LiveSymbols,
) -> ServiceState {
    start_pipeline(config, producer, spool, symbols).0
}

/// [`start`], also returning the stages that [`Statistics::flush`] empties at shutdown.
fn start_pipeline(
    config: Config,
    producer: kafka::Producer,
    spool: Arc<Spool>,
    symbols: LiveSymbols,
) -> (ServiceState, Statistics) {
    let capacity = config.pipeline.mailbox_capacity;
    // Checked when the configuration was loaded (`config::load`).
    let processing = LiveProcessing::new(ProcessingSettings::new(&config));
    let windows = SharedWindows::new(&processing.current());
    let instance_id: Arc<str> = crate::config::instance_id(&config).into();
    let lanes: Vec<LaneTail> = (0..lane_count(&config.pipeline))
        .map(|_| LaneTail::start(&config, &producer, &processing, &windows, &instance_id))
        .collect();
    let first = &lanes[0];

    // The Symbolicator's threads serve every lane and send each envelope back to the
    // EventProcessor of the lane that read it.
    let symbolicator = SymbolicatorGate::start(
        per_core(config.pipeline.symbolicator_threads),
        config.pipeline.symbolicator_queue,
        symbols.clone(),
        LaneExits::event_processors(lanes.iter().map(|lane| lane.event_processor.clone())),
    );
    let (gate, fetcher_symbols) = (symbolicator.clone(), symbols.clone());
    let fetcher_config = config.clone();
    let fetcher = start_bounded_in(
        &first.arbiter,
        SymbolFetcher::MAILBOX,
        capacity,
        move || SymbolFetcher::new(&fetcher_config, fetcher_symbols, gate),
    );
    let outcomes_config = config.outcomes.clone();
    let outcome_producer = first.producer.clone();
    let outcomes = Outcomes::new(start_bounded_in(
        &first.arbiter,
        OutcomeAggregator::MAILBOX,
        capacity * 16,
        move || OutcomeAggregator::new(outcomes_config, Some(outcome_producer), instance_id),
    ));

    let normalizers: Vec<Mailbox<Normalizer>> = lanes
        .iter()
        .map(|lane| {
            let gate = symbolicator.clone();
            let (settings, fetcher) = (processing.clone(), fetcher.clone());
            start_bounded_in(&lane.arbiter, Normalizer::MAILBOX, capacity, move || {
                Normalizer::new(settings, fetcher, gate)
            })
        })
        .collect();
    let reader_gates = start_readers(&config, &spool, &outcomes, &lanes, normalizers);
    // The lanes' mailboxes of one stage share its gauges: the depth is their sum, and so
    // is the capacity.
    for stage in [
        Normalizer::MAILBOX,
        EventProcessor::MAILBOX,
        KafkaProducer::MAILBOX,
    ] {
        metrics::set_mailbox_capacity(stage, capacity * lanes.len());
    }
    metrics::set_spool_capacity(config.spool.max_disk_bytes);
    let statistics = Statistics {
        event_processor: first.event_processor.clone(),
        outcomes: outcomes.clone(),
        producer: first.producer.clone(),
    };
    let memory = UpstreamMemory::new(&config);
    let state = ServiceState::new(
        config,
        processing,
        outcomes,
        spool,
        Some((symbolicator, symbols)),
        reader_gates,
        memory,
    );
    (state, statistics)
}

/// Forward mode: one thread (arbiter) with the spool reader, the UpstreamForwarder and the
/// OutcomeAggregator; no processing pipeline and no Kafka. The forwarder's work is waiting
/// for the upstream, so one thread serves it (and `upstream.max_concurrent` bounds it).
pub(crate) fn start_forwarding(config: Config, spool: Arc<Spool>) -> anyhow::Result<ServiceState> {
    let upstream = config
        .upstream
        .clone()
        .ok_or_else(|| anyhow::anyhow!("forward mode needs the upstream section"))?;
    let capacity = config.pipeline.mailbox_capacity;
    let memory = UpstreamMemory::new(&config);
    // The forwarder scrubs with the settings in force; a reload replaces them.
    let processing = LiveProcessing::new(ProcessingSettings::new(&config));
    let client = UpstreamClient::new(&upstream, memory.clone(), processing.clone())?;
    let arbiter = Arbiter::new().handle();
    let forwarder = start_bounded_in(&arbiter, UpstreamForwarder::MAILBOX, capacity, move || {
        UpstreamForwarder::new(client)
    });
    let outcomes_config = config.outcomes.clone();
    let instance_id: Arc<str> = crate::config::instance_id(&config).into();
    let outcomes = Outcomes::new(start_bounded_in(
        &arbiter,
        OutcomeAggregator::MAILBOX,
        capacity * 16,
        move || OutcomeAggregator::new(outcomes_config, None, instance_id),
    ));
    let settings = ReaderSettings {
        lanes: 1,
        max_backoff: Duration::from_secs(upstream.max_backoff_secs),
        ..reader_settings(&config, 1)
    };
    let reader = SpoolReader::new(
        spool.clone(),
        Entrance::Forward(forwarder),
        outcomes.clone(),
        settings,
    );
    let gates = reader.gates();
    SpoolReader::start_in_arbiter(&arbiter, move |_| reader);
    metrics::set_spool_capacity(config.spool.max_disk_bytes);
    let state = ServiceState::new(config, processing, outcomes, spool, None, gates, memory);
    Ok(state)
}

/// The spool readers' settings from the configuration, for `lanes` lanes.
fn reader_settings(config: &Config, lanes: usize) -> ReaderSettings {
    ReaderSettings {
        max_in_flight: config.pipeline.max_in_flight,
        delivery_window_bytes: config.pipeline.delivery_window_bytes,
        lanes,
        retry_backoff: Duration::from_millis(config.pipeline.retry_backoff_ms),
        max_backoff: MAX_BACKOFF,
        max_entry_age: Duration::from_secs(config.spool.max_entry_age_secs),
    }
}

/// The stages that hold statistics in memory (the issue windows, the outcome counts) and the
/// producer they publish through (the first lane's).
struct Statistics {
    event_processor: Mailbox<EventProcessor>,
    outcomes: Outcomes,
    producer: Mailbox<KafkaProducer>,
}

impl Statistics {
    /// Publishes the open issue windows and the outcome counts, and waits until the producer
    /// has handed them to librdkafka. At shutdown, before librdkafka is flushed: once the
    /// arbiters stop, the producer is gone and they would be dropped.
    async fn flush(&self) {
        // The windows are shared by the lanes: one EventProcessor flushes them all.
        if self.event_processor.send(FlushWindows).await.is_err() {
            tracing::debug!("the event processor stopped before the final flush");
        }
        self.outcomes.flush().await;
        // Mailboxes are FIFO: once the barrier is handled, so are the records before it.
        if self.producer.send(Barrier).await.is_err() {
            tracing::debug!("the producer stopped before the final flush");
        }
    }
}

/// The end of one pipeline lane: its thread, KafkaProducer and EventProcessor. (Its Normalizer
/// and spool reader are started once the stages shared by all lanes exist.)
struct LaneTail {
    arbiter: ArbiterHandle,
    producer: Mailbox<KafkaProducer>,
    event_processor: Mailbox<EventProcessor>,
}

impl LaneTail {
    fn start(
        config: &Config,
        producer: &kafka::Producer,
        processing: &LiveProcessing,
        windows: &SharedWindows,
        instance_id: &Arc<str>,
    ) -> Self {
        let capacity = config.pipeline.mailbox_capacity;
        let arbiter = Arbiter::new().handle();
        // Clones of one rdkafka producer: one client, one connection per broker.
        let (kafka_producer, kafka_config) = (producer.clone(), config.kafka.clone());
        let producer = start_bounded_in(&arbiter, KafkaProducer::MAILBOX, capacity, move || {
            KafkaProducer::new(kafka_producer, &kafka_config)
        });
        let (settings, windows, next) = (processing.clone(), windows.clone(), producer.clone());
        let instance_id = instance_id.clone();
        let event_processor =
            start_bounded_in(&arbiter, EventProcessor::MAILBOX, capacity, move || {
                EventProcessor::new(settings, windows, next, instance_id)
            });
        LaneTail {
            arbiter,
            producer,
            event_processor,
        }
    }
}

/// Starts one spool reader per lane, each feeding its lane's Normalizer (`normalizers`, in
/// lane order); returns their shared bounds.
fn start_readers(
    config: &Config,
    spool: &Arc<Spool>,
    outcomes: &Outcomes,
    lanes: &[LaneTail],
    normalizers: Vec<Mailbox<Normalizer>>,
) -> Gates {
    let settings = reader_settings(config, lanes.len());
    let first = SpoolReader::new(
        spool.clone(),
        Entrance::Process(normalizers[0].clone()),
        outcomes.clone(),
        settings,
    );
    // The readers take no messages; each runs its feed loop next to the stages it feeds.
    for (index, (lane, normalizer)) in lanes.iter().zip(normalizers).enumerate() {
        let reader = first.for_lane(index, Entrance::Process(normalizer));
        SpoolReader::start_in_arbiter(&lane.arbiter, move |_| reader);
    }
    first.gates()
}

/// How many lanes to run: `pipeline.lanes`, or one per CPU core; at most one per reader slot,
/// as each lane needs one.
pub fn lane_count(config: &PipelineConfig) -> usize {
    per_core(config.lanes).min(config.max_in_flight)
}

/// `n`, or the number of CPU cores when `n` is 0.
fn per_core(n: usize) -> usize {
    match n {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// `relay run`: prepares the data directory and Kafka, then serves until stopped. `source`
/// is where `config` came from, read again on reload.
pub fn run(mut config: Config, source: ConfigSource) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        anyhow::anyhow!("cannot create data_dir {}: {e}", config.data_dir.display())
    })?;
    ensure_default_project(&mut config).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the default project in {}: {e}",
            config.data_dir.display()
        )
    })?;
    let spool_dir = config.data_dir.join("spool");
    let spool = Spool::open(&spool_dir, config.spool.clone())
        .map_err(|e| anyhow::anyhow!("cannot open the spool in {}: {e}", spool_dir.display()))?;
    let symbols = LiveSymbols::new(ProjectSymbolStores::load(&config)?);
    let uploads = open_uploads(&config, &symbols)?;
    raise_open_files_limit();
    let result = actix_web::rt::System::new().block_on(serve(
        config,
        source,
        spool.clone(),
        symbols,
        uploads,
    ));
    // Everything answered 200 is written; make it durable before exiting.
    spool.close();
    result
}

/// The upload API's state, when organizations are configured (`docs/uploads.md`).
fn open_uploads(
    config: &Config,
    symbols: &LiveSymbols,
) -> anyhow::Result<Option<web::Data<Uploads>>> {
    if config.organizations.is_empty() {
        return Ok(None);
    }
    let uploads = Uploads::open(config, symbols.upload_targets()).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the upload storage in {}: {e}",
            crate::uploads::uploads_root(config).display()
        )
    })?;
    Ok(Some(web::Data::new(uploads)))
}

async fn serve(
    config: Config,
    source: ConfigSource,
    spool: Arc<Spool>,
    symbols: LiveSymbols,
    uploads: Option<web::Data<Uploads>>,
) -> anyhow::Result<()> {
    if config.forwards() {
        return serve_forwarding(config, source, spool).await;
    }
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
    let (producer, producer_closed) =
        kafka::create_watched_producer(&brokers, &config.kafka, Some(spool.clone()))?;
    let listen = config.listen.clone();
    let admin_listen = config.admin.listen.clone();
    let shutdown_timeout = config.pipeline.shutdown_timeout_secs;
    let (state, statistics) = start_pipeline(config, producer.clone(), spool, symbols);
    let state = web::Data::new(state);

    if let Some(uploads) = &uploads {
        uploads.clone().into_inner().spawn_sweeper();
    }
    let server = http_server(&state, uploads, &listen, shutdown_timeout)?;
    let admin = spawn_controls(&server, &state, source, admin_listen.as_deref())?;

    print_banner(&state, &listen);
    print_kafka(&state, &brokers, embedded.is_some());
    state.set_accepting(true);
    // On SIGTERM/SIGINT the server stops accepting, then lets in-flight requests finish (each
    // ends with its spool append) for up to the shutdown timeout.
    serve_until_stopped(server, admin).await?;
    state.set_accepting(false);
    statistics.flush().await;
    close_producer(producer, producer_closed).await;
    tracing::info!(
        pending = state.spool.pending_entries(),
        "stopped; unreleased spool entries are published after the next start"
    );
    // Only now: with the producer gone, nothing is left to report the broker down.
    drop(embedded);
    Ok(())
}

/// Forward mode's `serve`: the intake and the forwarder, no Kafka.
async fn serve_forwarding(
    config: Config,
    source: ConfigSource,
    spool: Arc<Spool>,
) -> anyhow::Result<()> {
    let listen = config.listen.clone();
    let admin_listen = config.admin.listen.clone();
    let shutdown_timeout = config.pipeline.shutdown_timeout_secs;
    let state = web::Data::new(start_forwarding(config, spool)?);
    // The upload API stores debug files for symbolication, which happens upstream: an edge
    // does not serve it (sentry-cli uploads go to the core).
    let server = http_server(&state, None, &listen, shutdown_timeout)?;
    let admin = spawn_controls(&server, &state, source, admin_listen.as_deref())?;
    print_banner(&state, &listen);
    if let Some(upstream) = &state.settings().config.upstream {
        println!("forwarding to {}", upstream.base_url());
    }
    state.set_accepting(true);
    serve_until_stopped(server, admin).await?;
    state.set_accepting(false);
    state.outcomes.flush().await;
    // Requests still open upstream are abandoned with the arbiter: their entries are not
    // released, so they are forwarded again after the next start.
    crate::managed::pipeline_stopping();
    actix::System::current().stop();
    tracing::info!(
        pending = state.spool.pending_entries(),
        "stopped; unreleased spool entries are forwarded after the next start"
    );
    Ok(())
}

/// What runs beside the intake server in either mode: a graceful stop on SIGTERM/SIGINT, a
/// reload on SIGHUP, and the admin listener when `admin_listen` is set (its handle returned).
fn spawn_controls(
    server: &actix_web::dev::Server,
    state: &web::Data<ServiceState>,
    source: ConfigSource,
    admin_listen: Option<&str>,
) -> anyhow::Result<Option<actix_web::dev::ServerHandle>> {
    actix_web::rt::spawn(stop_on_signal(server.handle()));
    let reloader = Reloader::new(source, state.clone());
    actix_web::rt::spawn(reload_on_sighup(reloader.clone()));
    admin_listen
        .map(|address| serve_admin(address, reloader))
        .transpose()
}

/// Runs the intake server until it has stopped, then stops the admin listener.
async fn serve_until_stopped(
    server: actix_web::dev::Server,
    admin: Option<actix_web::dev::ServerHandle>,
) -> std::io::Result<()> {
    server.await?;
    if let Some(admin) = admin {
        admin.stop(true).await;
    }
    Ok(())
}

/// Starts the admin listener (config reload) on `address`; returns its handle to stop it.
fn serve_admin(
    address: &str,
    reloader: Arc<Reloader>,
) -> anyhow::Result<actix_web::dev::ServerHandle> {
    let reloader = web::Data::new(reloader);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(reloader.clone())
            .configure(endpoints::reload::configure_admin)
    })
    .workers(1)
    .bind(address)
    .map_err(|e| anyhow::anyhow!("cannot listen on {address} (admin.listen): {e}"))?
    .disable_signals()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    tracing::info!(%address, "admin listener: POST /api/relay/reload/");
    Ok(handle)
}

/// The HTTP server on `listen`, serving the endpoints with `state`.
fn http_server(
    state: &web::Data<ServiceState>,
    uploads: Option<web::Data<Uploads>>,
    listen: &str,
    shutdown_timeout: u64,
) -> anyhow::Result<actix_web::dev::Server> {
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        let app = App::new().app_data(app_state.clone());
        match &uploads {
            Some(uploads) => app.app_data(uploads.clone()),
            None => app,
        }
        .configure(endpoints::configure)
    })
    // A client that sends its request head slower than this is answered 408 and disconnected
    // by actix before any handler runs: a slowloris connection holds a socket this long, and
    // never a request slot (`limits.max_concurrent_requests`).
    .client_request_timeout(REQUEST_HEAD_TIMEOUT);
    let settings = state.settings();
    let tls = settings.config.tls.as_ref();
    if tls.is_none_or(|tls| tls.plain) {
        server = server
            .bind(listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    }
    if let Some(tls) = tls {
        let cert = Arc::new(ReloadableCert::load(tls)?);
        let config = crate::tls::server_config(cert.clone())?;
        server = server
            .bind_rustls_0_23(&tls.listen, config)
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (tls.listen): {e}", tls.listen))?;
        actix_web::rt::spawn(crate::tls::reload_on_sighup(cert));
    }
    let server = server
        .shutdown_timeout(shutdown_timeout)
        // actix-server's own signal handling stops the System 300 ms after stopping the server,
        // which stops every arbiter while the statistics are flushed and librdkafka delivers:
        // the signals are handled here instead, and the System is stopped by `close_producer`.
        .disable_signals()
        .run();
    Ok(server)
}

/// How long a client may take to send a request line and headers (actix's default, stated
/// here because the slowloris defence rests on it; docs/security.md, "Hostile traffic").
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Raises the soft limit of open files to the hard limit. Every connection is a file: at the
/// usual soft limit of 1024, a thousand idle or trickling connections would make `accept`
/// fail, and actix-server then stops accepting for half a second at a time, shutting out
/// every other client too. (Go's runtime does the same at start.)
#[cfg(unix)]
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
        tracing::debug!(
            before,
            after = limit.rlim_cur,
            "raised the open files limit"
        );
    } else {
        tracing::warn!(
            limit = before,
            "cannot raise the open files limit; each connection uses one"
        );
    }
}

#[cfg(not(unix))]
fn raise_open_files_limit() {}

/// Waits for SIGTERM or SIGINT, then stops the server gracefully (and only the server).
async fn stop_on_signal(server: actix_web::dev::ServerHandle) {
    let signal = wait_for_signal().await;
    tracing::info!("{signal} received; starting graceful shutdown");
    server.stop(true).await;
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; stop the relay with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    "Ctrl-C"
}

/// How long the shutdown waits for Kafka to confirm what librdkafka holds, and then for the
/// lanes to let go of the producer. Short: an entry not confirmed stays in the spool and is
/// published after the next start, so waiting only saves duplicates.
const PRODUCER_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Lets librdkafka deliver what it holds (the lanes release those spool entries), then stops
/// every arbiter, which drops the actors holding producer clones, and waits until the client
/// is destroyed.
async fn close_producer(producer: kafka::Producer, closed: kafka::context::ProducerClosed) {
    if let Err(error) = producer.flush(PRODUCER_CLOSE_TIMEOUT) {
        tracing::info!(%error, "Kafka did not confirm every message before the stop");
    }
    drop(producer);
    crate::managed::pipeline_stopping();
    actix::System::current().stop();
    if tokio::time::timeout(PRODUCER_CLOSE_TIMEOUT, closed)
        .await
        .is_err()
    {
        tracing::warn!("the Kafka producer was not closed in time");
    }
}

fn print_banner(state: &ServiceState, listen: &str) {
    let settings = state.settings();
    let tls = settings.config.tls.as_ref();
    if tls.is_none_or(|tls| tls.plain) {
        println!(
            "relay {} listening on http://{listen}",
            env!("CARGO_PKG_VERSION")
        );
    }
    if let Some(tls) = tls {
        println!(
            "relay {} listening on https://{} (HTTP/1.1, HTTP/2)",
            env!("CARGO_PKG_VERSION"),
            tls.listen
        );
    }
    for project in &settings.config.projects {
        if let Some(key) = project.keys.iter().find(|k| !k.disabled()) {
            println!(
                "project {} DSN: http://{}@{listen}/{}",
                project.id,
                key.key(),
                project.id
            );
        }
    }
}

fn print_kafka(state: &ServiceState, brokers: &str, embedded: bool) {
    let settings = state.settings();
    if embedded {
        println!(
            "kafka: embedded broker at {brokers} (in memory; consume with e.g. `kcat -b {brokers} -C -t {}`)",
            settings.config.kafka.topics.events
        );
    } else {
        println!("kafka: brokers {brokers}");
    }
}
