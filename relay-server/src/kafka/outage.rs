//! Folds a Kafka outage into a few log lines.
//!
//! While no broker can be reached, librdkafka reports every failed connection attempt of every
//! broker (an error event and a log line each, several per second): a 3-minute outage wrote
//! about a thousand lines. [`OutageLog`] turns that stream into one warning when the trouble
//! starts, a summary every `summary_every` while it lasts, and one line when a broker is up
//! again. It is a plain state machine fed with events and the time they happened, so tests
//! drive it without a broker and without sleeping.

use std::time::{Duration, Instant};

/// What to tell the operator, if anything, after an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The first failure after a healthy period.
    Down {
        /// librdkafka's description of the failure.
        reason: String,
    },
    /// The outage goes on.
    StillDown {
        /// Since the first failure.
        down_for: Duration,
        /// Failures folded since the previous line about this outage.
        failures: u64,
        /// The latest failure's description.
        last_reason: String,
    },
    /// A broker is reachable again.
    Up {
        /// From the first failure to the recovery.
        down_for: Duration,
        /// Failures folded during the whole outage.
        failures: u64,
    },
}

/// Tracks whether the brokers are reachable; see the module documentation.
#[derive(Debug)]
pub struct OutageLog {
    summary_every: Duration,
    quiet_for: Duration,
    outage: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    last_failure: Instant,
    last_line: Instant,
    last_reason: String,
    failures_total: u64,
    failures_since_line: u64,
}

impl OutageLog {
    /// `summary_every`: how often a lasting outage is summarised. `quiet_for`: how long no
    /// failure may be reported before a connected broker ends the outage; it must exceed the
    /// longest pause between two reconnection attempts of a down broker, or a cluster with one
    /// broker down would be reported as recovering between its attempts.
    pub fn new(summary_every: Duration, quiet_for: Duration) -> Self {
        OutageLog {
            summary_every,
            quiet_for,
            outage: None,
        }
    }

    /// Whether an outage is going on.
    #[cfg(test)]
    pub fn is_down(&self) -> bool {
        self.outage.is_some()
    }

    /// A broker could not be reached (or a connection to one failed) at `now`.
    pub fn failure(&mut self, now: Instant, reason: &str) -> Option<Report> {
        match &mut self.outage {
            Some(outage) => {
                outage.last_failure = now;
                outage.failures_total += 1;
                outage.failures_since_line += 1;
                reason.clone_into(&mut outage.last_reason);
                None
            }
            None => {
                self.outage = Some(Outage {
                    since: now,
                    last_failure: now,
                    last_line: now,
                    last_reason: reason.to_owned(),
                    failures_total: 1,
                    failures_since_line: 0,
                });
                Some(Report::Down {
                    reason: reason.to_owned(),
                })
            }
        }
    }

    /// A periodic look at the client at `now`; `broker_up` says whether some broker has a
    /// working connection. Ends the outage, summarises it, or says nothing.
    pub fn tick(&mut self, now: Instant, broker_up: bool) -> Option<Report> {
        let outage = self.outage.as_mut()?;
        let down_for = now.saturating_duration_since(outage.since);
        if broker_up && now.saturating_duration_since(outage.last_failure) >= self.quiet_for {
            let failures = outage.failures_total;
            self.outage = None;
            return Some(Report::Up { down_for, failures });
        }
        if now.saturating_duration_since(outage.last_line) < self.summary_every {
            return None;
        }
        outage.last_line = now;
        let failures = std::mem::take(&mut outage.failures_since_line);
        Some(Report::StillDown {
            down_for,
            failures,
            last_reason: outage.last_reason.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: Duration = Duration::from_secs(60);
    const QUIET: Duration = Duration::from_secs(15);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn log() -> OutageLog {
        OutageLog::new(SUMMARY, QUIET)
    }

    #[test]
    fn first_failure_is_one_warning_and_repeats_are_folded() {
        let (mut log, t0) = (log(), Instant::now());
        assert_eq!(
            log.failure(t0, "1/1 brokers are down"),
            Some(Report::Down {
                reason: "1/1 brokers are down".into()
            })
        );
        for i in 1..1000 {
            assert_eq!(log.failure(t0 + Duration::from_millis(i), "again"), None);
            assert_eq!(log.tick(t0 + Duration::from_millis(i), false), None);
        }
        assert!(log.is_down());
    }

    #[test]
    fn lasting_outage_is_summarised_once_per_period() {
        let (mut log, t0) = (log(), Instant::now());
        log.failure(t0, "down");
        log.failure(t0 + secs(10), "connection refused");
        log.failure(t0 + secs(20), "connection refused");
        assert_eq!(log.tick(t0 + secs(59), false), None);
        assert_eq!(
            log.tick(t0 + secs(60), false),
            Some(Report::StillDown {
                down_for: secs(60),
                failures: 2,
                last_reason: "connection refused".into()
            })
        );
        assert_eq!(log.tick(t0 + secs(61), false), None);
        assert_eq!(log.tick(t0 + secs(119), false), None);
        // No failure in the second period: the count starts again from zero.
        assert_eq!(
            log.tick(t0 + secs(120), false),
            Some(Report::StillDown {
                down_for: secs(120),
                failures: 0,
                last_reason: "connection refused".into()
            })
        );
    }

    #[test]
    fn a_broker_up_after_a_quiet_period_ends_the_outage_with_one_line() {
        let (mut log, t0) = (log(), Instant::now());
        log.failure(t0, "down");
        log.failure(t0 + secs(30), "refused");
        // Up, but a failure was reported too recently: a broker may still be down.
        assert_eq!(log.tick(t0 + secs(40), true), None);
        assert_eq!(
            log.tick(t0 + secs(45), true),
            Some(Report::Up {
                down_for: secs(45),
                failures: 2
            })
        );
        assert!(!log.is_down());
        assert_eq!(log.tick(t0 + secs(50), true), None);
        assert_eq!(log.tick(t0 + secs(500), false), None);
    }

    #[test]
    fn no_broker_up_keeps_the_outage_however_quiet() {
        let (mut log, t0) = (log(), Instant::now());
        log.failure(t0, "down");
        assert_eq!(log.tick(t0 + secs(30), false), None);
        assert!(log.is_down());
    }

    #[test]
    fn a_new_outage_after_recovery_warns_again() {
        let (mut log, t0) = (log(), Instant::now());
        log.failure(t0, "first");
        log.tick(t0 + secs(20), true);
        assert_eq!(
            log.failure(t0 + secs(30), "second"),
            Some(Report::Down {
                reason: "second".into()
            })
        );
    }

    #[test]
    fn healthy_ticks_say_nothing() {
        let (mut log, t0) = (log(), Instant::now());
        assert_eq!(log.tick(t0, true), None);
        assert_eq!(log.tick(t0 + secs(3600), false), None);
    }
}
