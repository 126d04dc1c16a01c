//! Logging a failing kind of write once: one error when it starts failing, a summary every
//! [`SUMMARY_EVERY`] while it goes on, one line when it succeeds again. A full disk refuses
//! thousands of writes a second; a line for each would bury the one that matters.

use std::time::{Duration, Instant};

use super::disk::WriteFault;

/// How often a summary of continuing failures is logged.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// The failure state of one kind of write (`op`: `append`, `release`, `rotate`).
pub struct FaultLog {
    op: &'static str,
    /// What failing writes of this kind mean, for the first log line.
    effect: &'static str,
    failing: Option<Failing>,
}

struct Failing {
    reason: WriteFault,
    since: Instant,
    /// Writes that failed, and writes refused without trying, since the start.
    failures: u64,
    refused: u64,
    last_error: String,
    last_summary: Instant,
}

impl FaultLog {
    /// A log for writes of kind `op`, not failing; `effect` says what failures mean.
    pub fn new(op: &'static str, effect: &'static str) -> Self {
        FaultLog {
            op,
            effect,
            failing: None,
        }
    }

    /// Why writes are failing, if they are.
    pub fn reason(&self) -> Option<WriteFault> {
        self.failing.as_ref().map(|f| f.reason)
    }

    /// Records a failed write: counted always, logged if it is the first.
    pub fn failed(&mut self, reason: WriteFault, error: &str) {
        crate::metrics::count_spool_write_error(self.op, reason.as_str());
        match &mut self.failing {
            Some(failing) => {
                failing.failures += 1;
                failing.reason = reason;
                error.clone_into(&mut failing.last_error);
            }
            None => {
                tracing::error!(
                    op = self.op,
                    reason = reason.as_str(),
                    error,
                    effect = self.effect,
                    "spool: writes are failing"
                );
                let now = Instant::now();
                self.failing = Some(Failing {
                    reason,
                    since: now,
                    failures: 1,
                    refused: 0,
                    last_error: error.to_owned(),
                    last_summary: now,
                });
            }
        }
    }

    /// Records a write refused without trying, while failing.
    pub fn refused(&mut self, count: u64) {
        if let Some(failing) = &mut self.failing {
            failing.refused += count;
        }
    }

    /// Records a successful write; logs the recovery if writes were failing.
    pub fn succeeded(&mut self) {
        if let Some(failing) = self.failing.take() {
            tracing::info!(
                op = self.op,
                reason = failing.reason.as_str(),
                failures = failing.failures,
                refused = failing.refused,
                secs = failing.since.elapsed().as_secs(),
                "spool: writes succeed again"
            );
        }
    }

    /// Logs a summary if writes are failing and the last one is [`SUMMARY_EVERY`] old.
    pub fn summarize_if_due(&mut self) {
        let Some(failing) = &mut self.failing else {
            return;
        };
        if failing.last_summary.elapsed() < SUMMARY_EVERY {
            return;
        }
        failing.last_summary = Instant::now();
        tracing::warn!(
            op = self.op,
            reason = failing.reason.as_str(),
            failures = failing.failures,
            refused = failing.refused,
            secs = failing.since.elapsed().as_secs(),
            last_error = failing.last_error.as_str(),
            "spool: writes still failing"
        );
    }
}
