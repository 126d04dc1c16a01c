//! Abuse protection in front of the intake: a per-client-IP request rate, a bound on
//! concurrent requests, and a bound on concurrent requests per client IP (so that one address,
//! say with a thousand bodies trickling in a byte a second, cannot hold every request slot).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use relay_core::config::Limits;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// Checks taken between sweeps of idle per-IP entries.
const SWEEP_EVERY: u64 = 10_000;

/// Per-IP rate and concurrency bounds; see the module docs.
pub struct AbuseGuard {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    concurrent: Arc<Semaphore>,
    per_ip_active: Arc<IpSlots>,
    checks: AtomicU64,
    clock: DefaultClock,
}

/// Requests in progress per client IP; an address leaves the map with its last request.
struct IpSlots {
    active: Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// A request's place under the bounds; dropping it frees the slots.
#[derive(Debug)]
pub struct Admission {
    _global: OwnedSemaphorePermit,
    _ip: Option<IpSlot>,
}

/// One request's slot of its address.
#[derive(Debug)]
struct IpSlot {
    slots: Arc<IpSlots>,
    ip: IpAddr,
}

impl std::fmt::Debug for IpSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpSlots").field("max", &self.max).finish()
    }
}

impl IpSlots {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut active = self.active.lock().expect("ip slots lock");
        let count = active.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            slots: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut active = self.slots.active.lock().expect("ip slots lock");
        if let Some(count) = active.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                active.remove(&self.ip);
            }
        }
    }
}

impl AbuseGuard {
    /// Builds the guard from `limits.per_ip_requests_per_second`,
    /// `limits.max_concurrent_requests` and `limits.max_concurrent_requests_per_ip`.
    pub fn new(limits: &Limits) -> Self {
        let per_ip = NonZeroU32::new(limits.per_ip_requests_per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        AbuseGuard {
            per_ip,
            concurrent: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            per_ip_active: Arc::new(IpSlots {
                active: Mutex::new(HashMap::new()),
                max: limits.max_concurrent_requests_per_ip,
            }),
            checks: AtomicU64::new(0),
            clock: DefaultClock::default(),
        }
    }

    /// Admits a request from `ip`; the admission bounds concurrency until it is dropped.
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Admission, ApiError> {
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
        // The address's own bound first: a flood from one address must not take global slots.
        let ip_slot = match ip.filter(|_| self.per_ip_active.max > 0) {
            Some(ip) => Some(self.per_ip_active.take(ip).ok_or_else(|| {
                crate::metrics::count_rejection("per_ip_concurrency");
                ApiError::Overloaded {
                    detail: format!("too many concurrent requests from {ip}; retry later"),
                    retry_after_secs: 1,
                }
            })?),
            None => None,
        };
        let global = self.concurrent.clone().try_acquire_owned().map_err(|_| {
            crate::metrics::count_rejection("concurrency");
            ApiError::Overloaded {
                detail: "too many concurrent requests; retry later".to_owned(),
                retry_after_secs: 1,
            }
        })?;
        Ok(Admission {
            _global: global,
            _ip: ip_slot,
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

    #[test]
    fn one_address_cannot_take_every_slot() {
        let guard = AbuseGuard::new(&Limits {
            max_concurrent_requests: 10,
            max_concurrent_requests_per_ip: 3,
            ..Limits::default()
        });
        let flooder: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| guard.admit(Some(flooder)).unwrap())
            .collect();
        for _ in 0..20 {
            assert!(matches!(
                guard.admit(Some(flooder)),
                Err(ApiError::Overloaded {
                    retry_after_secs: 1,
                    ..
                })
            ));
        }
        // Refusals of the address took no global slot: 7 remain for everyone else.
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let others: Vec<_> = (0..3).map(|_| guard.admit(Some(other)).unwrap()).collect();
        assert_eq!(guard.concurrent.available_permits(), 4);
        drop(held);
        assert!(guard.admit(Some(flooder)).is_ok());
        drop(others);
        assert!(guard.per_ip_active.active.lock().unwrap().is_empty());

        let unlimited = AbuseGuard::new(&Limits {
            max_concurrent_requests_per_ip: 0,
            ..Limits::default()
        });
        let all: Vec<_> = (0..100).map(|_| unlimited.admit(Some(flooder))).collect();
        assert!(
            all.iter().all(Result::is_ok),
            "0 turns the per-IP bound off"
        );
    }
}
