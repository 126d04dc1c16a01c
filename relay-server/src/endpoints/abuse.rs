//! Abuse protection in front of the intake: a per-client-IP request rate and a bound on
//! concurrent requests.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use relay_core::config::Limits;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Checks taken between sweeps of idle per-IP entries.
const SWEEP_EVERY: u64 = 10_000;

/// Per-IP rate and concurrency bound; see the module docs.
pub struct AbuseGuard {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    concurrent: Arc<Semaphore>,
    checks: AtomicU64,
    clock: DefaultClock,
}

impl AbuseGuard {
    /// Builds the guard from `limits.per_ip_requests_per_second` and
    /// `limits.max_concurrent_requests`.
    pub fn new(limits: &Limits) -> Self {
        let per_ip = NonZeroU32::new(limits.per_ip_requests_per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        AbuseGuard {
            per_ip,
            concurrent: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// Admits a request from `ip`; the permit bounds concurrency until it is dropped.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<OwnedSemaphorePermit, ApiError> {
        if let (Some(limiter), Some(ip)) = (&self.per_ip, ip) {
            if self
                .checks
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(SWEEP_EVERY)
            {
                limiter.retain_recent();
            }
            if let Err(not_until) = limiter.check_key(&ip) {
                // No project is known yet, so this counts as a rejection, not an outcome.
                crate::metrics::count_rejection("per_ip");
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(ApiError::TooManyRequests {
                    detail: format!("too many requests from {ip}; slow down"),
                    retry_after_secs: wait.as_millis().div_ceil(1000).max(1) as u64,
                    rate_limits: None,
                });
            }
        }
        self.concurrent.clone().try_acquire_owned().map_err(|_| {
            crate::metrics::count_rejection("concurrency");
            ApiError::Overloaded {
                detail: "too many concurrent requests; retry later".to_owned(),
                retry_after_secs: 1,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_leaves_other_clients_alone() {
        let guard = AbuseGuard::new(&Limits {
            per_ip_requests_per_second: 5,
            ..Limits::default()
        });
        let flooder: IpAddr = "127.0.0.2".parse().unwrap();
        let admitted = (0..100)
            .filter(|_| guard.admit(Some(flooder)).is_ok())
            .count();
        assert_eq!(admitted, 10, "a burst of twice the rate");
        let refused = guard.admit(Some(flooder)).unwrap_err();
        assert!(matches!(
            refused,
            ApiError::TooManyRequests {
                retry_after_secs: 1,
                ..
            }
        ));
        assert!(guard.admit(Some("127.0.0.3".parse().unwrap())).is_ok());
    }

    #[test]
    fn concurrency_is_bounded() {
        let guard = AbuseGuard::new(&Limits {
            max_concurrent_requests: 2,
            ..Limits::default()
        });
        let a = guard.admit(None).unwrap();
        let _b = guard.admit(None).unwrap();
        assert!(matches!(
            guard.admit(None),
            Err(ApiError::Overloaded { .. })
        ));
        drop(a);
        assert!(guard.admit(None).is_ok());
    }
}
