//! The in-flight byte budget: one bound on the request body bytes held across all requests,
//! from the first byte read until the envelope is spooled (or refused).
//!
//! Without it, each request is bounded but their sum is not: 40 parallel 60 MB uploads held
//! several GB. A request reserves what it will hold before holding it: its declared
//! `Content-Length` at once (refused before its body is read when that does not fit), a
//! chunked body chunk by chunk, decompressed output as it grows, and the spool record before
//! it is built. Everything is given back when the request's [`Charge`] is dropped, on success
//! and on every error path alike.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{AcquireError, Semaphore, TryAcquireError};

/// How long a chunk of a streaming body may wait for budget before the request is refused:
/// long enough to ride out a burst ending, short enough that requests waiting on each other
/// give their bytes back quickly.
pub const CHUNK_WAIT: Duration = Duration::from_secs(1);

/// Seconds a client refused for lack of budget is asked to wait.
pub(super) const RETRY_AFTER_SECS: u64 = 1;

/// The shared budget; cheap to clone.
#[derive(Clone, Debug)]
pub struct InflightBudget {
    permits: Arc<Semaphore>,
    capacity: usize,
}

/// Why bytes could not be reserved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    /// More than the whole budget: this can never fit.
    #[error("{wanted} bytes exceed the in-flight budget of {capacity} bytes")]
    NeverFits {
        /// Bytes asked for, in total for the request.
        wanted: usize,
        /// The whole budget.
        capacity: usize,
    },
    /// Not available now (or not within the wait).
    #[error("the relay holds too many request bytes; retry later")]
    Exhausted,
}

impl InflightBudget {
    /// A budget of `bytes` (capped at what a semaphore can count).
    pub fn new(bytes: usize) -> Self {
        let capacity = bytes.min(Semaphore::MAX_PERMITS);
        InflightBudget {
            permits: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// An empty charge for one request.
    pub fn charge(&self) -> Charge {
        Charge {
            budget: self.clone(),
            held: 0,
        }
    }

    /// Bytes not held by any request.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// The whole budget.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// The bytes one request holds; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: InflightBudget,
    held: usize,
}

impl Charge {
    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Takes `bytes` more if they are available now.
    pub fn try_grow(&mut self, bytes: usize) -> Result<(), BudgetError> {
        let permits = self.permits_for(bytes)?;
        match self.budget.permits.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                return Err(BudgetError::Exhausted)
            }
        }
        self.held += bytes;
        Ok(())
    }

    /// Takes `bytes` more, waiting up to `wait` for them.
    pub async fn grow(&mut self, bytes: usize, wait: Duration) -> Result<(), BudgetError> {
        // Nearly always there is room: no timer then.
        match self.try_grow(bytes) {
            Err(BudgetError::Exhausted) => {}
            done => return done,
        }
        let permits = self.permits_for(bytes)?;
        let acquire = self.budget.permits.acquire_many(permits);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(permit)) => permit.forget(),
            Ok(Err(AcquireError { .. })) | Err(_) => return Err(BudgetError::Exhausted),
        }
        self.held += bytes;
        Ok(())
    }

    /// Moves what this charge holds into a new one (to hand it to another thread), leaving
    /// this one empty.
    pub fn take(&mut self) -> Charge {
        let held = std::mem::take(&mut self.held);
        Charge {
            budget: self.budget.clone(),
            held,
        }
    }

    /// Gives back all but `bytes`: what the request no longer holds.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes < self.held {
            self.budget.permits.add_permits(self.held - bytes);
            self.held = bytes;
        }
    }

    /// Checks that the request's total stays within the whole budget.
    fn permits_for(&self, bytes: usize) -> Result<u32, BudgetError> {
        let wanted = self.held.saturating_add(bytes);
        let never_fits = BudgetError::NeverFits {
            wanted,
            capacity: self.budget.capacity,
        };
        if wanted > self.budget.capacity {
            return Err(never_fits);
        }
        u32::try_from(bytes).map_err(|_| never_fits)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_gives_everything_back_when_dropped() {
        let budget = InflightBudget::new(1000);
        let mut charge = budget.charge();
        charge.try_grow(300).unwrap();
        charge.try_grow(200).unwrap();
        assert_eq!(budget.available(), 500);
        charge.shrink_to(100);
        assert_eq!(budget.available(), 900);
        drop(charge);
        assert_eq!(budget.available(), 1000);
    }

    #[test]
    fn what_does_not_fit_now_is_refused_and_what_never_fits_says_so() {
        let budget = InflightBudget::new(1000);
        let mut first = budget.charge();
        first.try_grow(800).unwrap();
        let mut second = budget.charge();
        assert_eq!(second.try_grow(300), Err(BudgetError::Exhausted));
        assert_eq!(second.held(), 0);
        assert!(matches!(
            second.try_grow(1001),
            Err(BudgetError::NeverFits { wanted: 1001, .. })
        ));
        second.try_grow(200).unwrap();
        drop((first, second));
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_charge_gets_bytes_given_back_meanwhile_or_gives_up() {
        let budget = InflightBudget::new(1000);
        let mut holder = budget.charge();
        holder.try_grow(1000).unwrap();
        let mut waiter = budget.charge();
        // Paused time: the wait elapses without a real second passing.
        assert_eq!(
            waiter.grow(10, CHUNK_WAIT).await,
            Err(BudgetError::Exhausted)
        );
        let give_back = async {
            tokio::task::yield_now().await;
            holder.shrink_to(0);
        };
        let (got, ()) = tokio::join!(waiter.grow(10, CHUNK_WAIT), give_back);
        assert_eq!(got, Ok(()));
        assert_eq!(budget.available(), 990);
    }
}
