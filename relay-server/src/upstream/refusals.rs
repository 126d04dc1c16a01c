//! [`KeyRefusals`]: keys the upstream refused (`401`/`403`), remembered for a while so that a
//! revoked key is refused at the edge instead of being spooled and forwarded again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::projects::AccessError;

/// Keys remembered at most; beyond, a new refusal is not remembered until old ones expire
/// (the upstream then refuses again, as it would without the cache).
pub const MAX_REFUSED_KEYS: usize = 10_000;

/// One remembered refusal.
#[derive(Clone, Debug)]
struct Refusal {
    until: Instant,
    status: u16,
    reason: String,
}

/// The negative cache of (project, key) pairs the upstream refused.
#[derive(Debug)]
pub struct KeyRefusals {
    ttl: Duration,
    refused: Mutex<HashMap<(u64, String), Refusal>>,
}

impl KeyRefusals {
    /// A cache keeping each refusal for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        KeyRefusals {
            ttl,
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers that the upstream answered `status` (401 or 403) with `reason` for this key,
    /// as of `now`.
    pub fn remember(&self, project_id: u64, key: &str, status: u16, reason: &str, now: Instant) {
        let mut refused = self.lock();
        if refused.len() >= MAX_REFUSED_KEYS {
            refused.retain(|_, refusal| refusal.until > now);
            if refused.len() >= MAX_REFUSED_KEYS {
                return;
            }
        }
        let refusal = Refusal {
            until: now + self.ttl,
            status,
            reason: reason.chars().take(200).collect(),
        };
        refused.insert((project_id, key.to_ascii_lowercase()), refusal);
    }

    /// The refusal to answer for this key at `now`, if the upstream refused it recently.
    pub fn check(&self, project_id: u64, key: &str, now: Instant) -> Result<(), AccessError> {
        let refused = self.lock();
        match refused.get(&(project_id, key.to_ascii_lowercase())) {
            Some(refusal) if refusal.until > now => Err(AccessError::RefusedUpstream {
                key: crate::projects::shown_key(key),
                unauthorized: refusal.status == 401,
                reason: refusal.reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, String), Refusal>> {
        // Inserting and reading leave the map consistent even if a holder panicked.
        self.refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abc123def456abc123def456abc123de";

    #[test]
    fn a_refused_key_is_refused_until_the_entry_expires() {
        let refusals = KeyRefusals::new(Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(refusals.check(42, KEY, now), Ok(()));
        refusals.remember(42, KEY, 401, "unknown public key", now);
        let Err(AccessError::RefusedUpstream {
            unauthorized,
            reason,
            ..
        }) = refusals.check(42, &KEY.to_uppercase(), now)
        else {
            panic!("the key was refused upstream");
        };
        assert!(unauthorized);
        assert_eq!(reason, "unknown public key");
        assert_eq!(refusals.check(43, KEY, now), Ok(()), "another project");
        assert_eq!(
            refusals.check(42, KEY, now + Duration::from_secs(61)),
            Ok(()),
            "expired"
        );
        refusals.remember(42, KEY, 403, "disabled", now);
        assert!(matches!(
            refusals.check(42, KEY, now),
            Err(AccessError::RefusedUpstream {
                unauthorized: false,
                ..
            })
        ));
    }

    #[test]
    fn the_cache_is_bounded() {
        let refusals = KeyRefusals::new(Duration::from_secs(60));
        let now = Instant::now();
        for i in 0..MAX_REFUSED_KEYS + 10 {
            refusals.remember(1, &format!("{i:032x}"), 403, "no", now);
        }
        assert_eq!(refusals.lock().len(), MAX_REFUSED_KEYS);
        // Once the old ones expire, new refusals are remembered again.
        let later = now + Duration::from_secs(61);
        refusals.remember(1, KEY, 403, "no", later);
        assert!(refusals.check(1, KEY, later).is_err());
        assert_eq!(refusals.lock().len(), 1);
    }
}
