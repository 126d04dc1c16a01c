//! The producer's librdkafka client context: what librdkafka reports about the brokers goes
//! through an [`OutageLog`] instead of straight to the log, one line per failed connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::outage::{OutageLog, Report};
use crate::spool::Spool;

/// How often a lasting outage is summarised in the log.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The producer's client context; see the module documentation.
pub struct KafkaContext {
    outage: Mutex<OutageLog>,
    /// Where the envelopes waiting for Kafka are counted, for the outage summaries.
    spool: Option<Arc<Spool>>,
    /// Told when librdkafka has let go of the context, i.e. the client is destroyed.
    closed: Mutex<Option<oneshot::Sender<()>>>,
}

/// Resolves once the producer's client is destroyed (every clone dropped).
pub type ProducerClosed = oneshot::Receiver<()>;

impl KafkaContext {
    /// A context whose outage summaries count the entries waiting in `spool`.
    /// `reconnect_backoff_max` is librdkafka's `reconnect.backoff.max.ms`: the longest pause
    /// between two connection attempts of a down broker.
    pub fn new(
        spool: Option<Arc<Spool>>,
        reconnect_backoff_max: Duration,
    ) -> (Self, ProducerClosed) {
        let (closed, on_close) = oneshot::channel();
        let context = KafkaContext {
            outage: Mutex::new(OutageLog::new(
                SUMMARY_EVERY,
                quiet_period(reconnect_backoff_max),
            )),
            spool,
            closed: Mutex::new(Some(closed)),
        };
        (context, on_close)
    }

    fn failure(&self, reason: &str) {
        let report = self.lock().failure(Instant::now(), reason);
        self.emit(report);
    }

    fn tick(&self, broker_up: bool) {
        let report = self.lock().tick(Instant::now(), broker_up);
        self.emit(report);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutageLog> {
        // The log is only ever updated whole: a panic elsewhere cannot leave it half-written.
        self.outage.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, report: Option<Report>) {
        let Some(report) = report else { return };
        let waiting = self.spool.as_ref().map(|spool| spool.pending_entries());
        match report {
            Report::Down { reason } => tracing::warn!(
                %reason,
                "Kafka brokers unreachable; envelopes wait in the spool until they return"
            ),
            Report::StillDown {
                down_for,
                failures,
                last_reason,
            } => tracing::warn!(
                down_secs = down_for.as_secs(),
                waiting_in_spool = waiting,
                failures,
                %last_reason,
                "Kafka brokers still unreachable"
            ),
            Report::Up { down_for, failures } => tracing::info!(
                down_secs = down_for.as_secs(),
                waiting_in_spool = waiting,
                failures,
                "Kafka brokers reachable again"
            ),
        }
    }
}

impl Drop for KafkaContext {
    fn drop(&mut self) {
        if let Some(closed) = self.closed.get_mut().ok().and_then(Option::take) {
            let _ = closed.send(());
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if is_connection_failure(level, facility) {
            self.failure(&format!("{facility}: {message}"));
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}")
            }
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<BrokerStates>(statistics) {
            Ok(states) => self.tick(states.any_up()),
            Err(error) => tracing::debug!(%error, "unreadable librdkafka statistics"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if is_unreachable(&error) {
            self.failure(reason);
        } else {
            tracing::error!(%error, reason, "librdkafka error");
        }
    }
}

/// No failure for this long, with a broker connected, ends an outage: longer than the longest
/// pause between two attempts of a down broker (librdkafka stretches the backoff by up to 50 %
/// at random), so a cluster with one broker down does not look recovered between attempts.
fn quiet_period(reconnect_backoff_max: Duration) -> Duration {
    reconnect_backoff_max.mul_f64(1.5) + Duration::from_secs(1)
}

/// A log line about a broker that cannot be reached: librdkafka writes one per failed or closed
/// connection (`FAIL`) and, when a broker stops answering, one per timed-out request batch
/// (`REQTMOUT`), at error or warning level.
fn is_connection_failure(level: RDKafkaLogLevel, facility: &str) -> bool {
    let serious = matches!(
        level,
        RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
    );
    serious && matches!(facility, "FAIL" | "REQTMOUT")
}

/// Errors that mean a broker cannot be reached, as opposed to a misconfiguration or a fatal
/// producer error, which are logged as they come.
pub(crate) fn is_unreachable(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
        )
    )
}

/// The part of librdkafka's statistics read here: each broker's connection state.
#[derive(Deserialize)]
struct BrokerStates {
    #[serde(default)]
    brokers: HashMap<String, BrokerState>,
}

#[derive(Deserialize)]
struct BrokerState {
    state: String,
}

impl BrokerStates {
    fn any_up(&self) -> bool {
        self.brokers.values().any(|broker| broker.state == "UP")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_states_are_read_from_librdkafka_statistics() {
        let stats = br#"{"name":"rdkafka#producer-1","ts":1,"brokers":{
            "127.0.0.1:9092/bootstrap":{"name":"127.0.0.1:9092/bootstrap","nodeid":-1,"state":"DOWN","rtt":{"avg":0}},
            "127.0.0.1:9092/1":{"name":"127.0.0.1:9092/1","nodeid":1,"state":"UP"}},"topics":{}}"#;
        let states: BrokerStates = serde_json::from_slice(stats).unwrap();
        assert!(states.any_up());
        let down = br#"{"brokers":{"a/1":{"state":"CONNECT"},"a/2":{"state":"DOWN"}}}"#;
        assert!(!serde_json::from_slice::<BrokerStates>(down)
            .unwrap()
            .any_up());
    }

    #[test]
    fn only_failed_connections_are_folded() {
        assert!(is_connection_failure(RDKafkaLogLevel::Error, "FAIL"));
        assert!(is_connection_failure(RDKafkaLogLevel::Warning, "FAIL"));
        assert!(is_connection_failure(RDKafkaLogLevel::Warning, "REQTMOUT"));
        assert!(!is_connection_failure(RDKafkaLogLevel::Info, "FAIL"));
        assert!(!is_connection_failure(RDKafkaLogLevel::Error, "CONFWARN"));
        assert!(is_unreachable(&KafkaError::Global(
            RDKafkaErrorCode::AllBrokersDown
        )));
        assert!(!is_unreachable(&KafkaError::Global(
            RDKafkaErrorCode::InvalidArgument
        )));
    }

    #[test]
    fn the_quiet_period_outlasts_a_stretched_backoff() {
        assert_eq!(
            quiet_period(Duration::from_secs(10)),
            Duration::from_secs(16)
        );
    }

    #[test]
    fn dropping_the_context_signals_the_close() {
        let (context, mut closed) = KafkaContext::new(None, Duration::from_secs(10));
        assert!(closed.try_recv().is_err());
        drop(context);
        assert!(closed.try_recv().is_ok());
    }
}
