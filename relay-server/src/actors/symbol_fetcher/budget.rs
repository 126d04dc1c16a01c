//! Disk space for downloads: bytes count against `symbolication.max_cache_bytes` as they are
//! written, not once a file is complete, so downloads in progress can never take the cache
//! past its bound.
//!
//! [`CacheBudget`] estimates the bytes below the cache roots: the size the last size check
//! measured, plus what downloads reserved since, minus what they gave back. Each download
//! holds a [`Reservation`], which also enforces `symbolication.max_download_bytes` per file
//! and gives its bytes back when it is dropped (the download failed and its files were
//! deleted) unless the file is kept. SymCaches and CFI caches written by the Symbolicator are
//! only seen by the next size check.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Why a reservation could not grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    /// The file would pass `max_download_bytes`.
    #[error("larger than max_download_bytes ({0} bytes)")]
    FileTooLarge(u64),
    /// The cache and the downloads in progress would pass `max_cache_bytes`.
    #[error("the symbol cache has no room for it (max_cache_bytes {0})")]
    CacheFull(u64),
}

/// The cache's estimated size against its bound; shared by the downloads (unpacking runs on
/// the blocking pool, hence atomics).
#[derive(Debug)]
pub(super) struct CacheBudget {
    max_bytes: u64,
    max_file_bytes: u64,
    /// Estimated bytes below the cache roots, partial downloads included.
    used: AtomicU64,
    /// Ever reserved and ever given back, to reconcile a size check that ran meanwhile.
    reserved_total: AtomicU64,
    released_total: AtomicU64,
    /// `reserved_total` when the last size check started.
    reserved_at_check: AtomicU64,
    /// A reservation was refused: the actor should check the size now, not at the next tick.
    refused: AtomicBool,
}

/// A size check that started: how far to evict, and the totals to reconcile its result with
/// (see [`CacheBudget::measured`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct CheckStart {
    /// Evict once the cache is larger than this: the bound; after a download was refused for
    /// lack of room, the target (so the room gets made).
    pub(super) trigger: u64,
    /// Evict down to this size: 90 % of the bound; after a refusal, low enough for one
    /// full-size download.
    pub(super) target: u64,
    reserved: u64,
    released: u64,
}

impl CacheBudget {
    /// A budget of `max_bytes` (`max_cache_bytes`) for files of at most `max_file_bytes`
    /// (`max_download_bytes`) each.
    pub(super) fn new(max_bytes: u64, max_file_bytes: u64) -> Self {
        CacheBudget {
            max_bytes,
            max_file_bytes,
            used: AtomicU64::new(0),
            reserved_total: AtomicU64::new(0),
            released_total: AtomicU64::new(0),
            reserved_at_check: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        }
    }

    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The estimated size of the cache (for tests: the fetcher itself only asks whether
    /// bytes fit).
    #[cfg(test)]
    pub(super) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `n` bytes if they fit under the bound.
    fn try_reserve(&self, n: u64) -> bool {
        let fits = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.max_bytes)
            })
            .is_ok();
        if fits {
            self.reserved_total.fetch_add(n, Ordering::AcqRel);
        } else {
            self.refused.store(true, Ordering::Release);
        }
        fits
    }

    /// Gives back `n` bytes whose files were deleted.
    fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
        self.released_total.fetch_add(n, Ordering::AcqRel);
    }

    /// Whether a size check is due before the next tick: a reservation was refused, or
    /// downloads took a tenth of the bound since the last check.
    pub(super) fn check_due(&self) -> bool {
        let since = self
            .reserved_total
            .load(Ordering::Acquire)
            .saturating_sub(self.reserved_at_check.load(Ordering::Acquire));
        self.refused.load(Ordering::Acquire) || since > self.max_bytes / 10
    }

    /// Call when a size check starts.
    pub(super) fn check_started(&self) -> CheckStart {
        let refused = self.refused.swap(false, Ordering::AcqRel);
        let reserved = self.reserved_total.load(Ordering::Acquire);
        self.reserved_at_check.store(reserved, Ordering::Release);
        let (trigger, target) = if refused {
            let room = self.room_for_one_download();
            (room, room)
        } else {
            (self.max_bytes, self.max_bytes / 10 * 9)
        };
        CheckStart {
            trigger,
            target,
            reserved,
            released: self.released_total.load(Ordering::Acquire),
        }
    }

    /// Takes the size a check measured (after its evictions) as the estimate, with what
    /// downloads reserved and gave back while it ran. Bytes the check already saw are counted
    /// twice until the next check: the estimate errs on the full side.
    pub(super) fn measured(&self, start: CheckStart, bytes: u64) {
        let reserved = self.reserved_total.load(Ordering::Acquire) - start.reserved;
        let released = self.released_total.load(Ordering::Acquire) - start.released;
        let used = bytes.saturating_add(reserved).saturating_sub(released);
        self.used.store(used, Ordering::Release);
    }

    /// The size at which one download of `max_file_bytes` fits, at most 90 % of the bound but
    /// never below half of it (a download limit near the cache bound must not empty the
    /// cache).
    fn room_for_one_download(&self) -> u64 {
        (self.max_bytes / 10 * 9)
            .min(self.max_bytes.saturating_sub(self.max_file_bytes))
            .max(self.max_bytes / 2)
    }
}

/// The bytes one download holds: its partial file, or its packed and unpacked files while a
/// cabinet is unpacked. Dropped, it gives them back.
#[derive(Debug)]
pub(super) struct Reservation {
    budget: Arc<CacheBudget>,
    max_file_bytes: u64,
    bytes: u64,
}

impl Reservation {
    pub(super) fn new(budget: Arc<CacheBudget>) -> Self {
        Reservation {
            max_file_bytes: budget.max_file_bytes,
            budget,
            bytes: 0,
        }
    }

    /// The bytes held.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds at least `total` bytes, or says why it cannot (holding what it had).
    pub(super) fn cover(&mut self, total: u64) -> Result<(), Refusal> {
        if total <= self.bytes {
            return Ok(());
        }
        if total > self.max_file_bytes {
            return Err(Refusal::FileTooLarge(self.max_file_bytes));
        }
        if !self.budget.try_reserve(total - self.bytes) {
            return Err(Refusal::CacheFull(self.budget.max_bytes()));
        }
        self.bytes = total;
        Ok(())
    }

    /// Gives back `n` of the bytes held (a file was deleted).
    pub(super) fn give_back(&mut self, n: u64) {
        let n = n.min(self.bytes);
        self.budget.release(n);
        self.bytes -= n;
    }

    /// The file stays in the cache: its bytes stay counted until a size check measures them.
    pub(super) fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_as_they_grow_and_give_back_when_dropped() {
        let budget = Arc::new(CacheBudget::new(1000, 600));
        let mut a = Reservation::new(budget.clone());
        a.cover(100).unwrap();
        a.cover(50).unwrap();
        assert_eq!((a.bytes(), budget.used()), (100, 100));
        assert_eq!(a.cover(601), Err(Refusal::FileTooLarge(600)));
        a.cover(600).unwrap();
        let mut b = Reservation::new(budget.clone());
        // 600 held by `a`: 401 more would pass the bound.
        assert_eq!(b.cover(401), Err(Refusal::CacheFull(1000)));
        assert!(budget.check_due());
        b.cover(400).unwrap();
        assert_eq!(budget.used(), 1000);
        drop(a);
        assert_eq!(budget.used(), 400);
        b.give_back(150);
        assert_eq!((b.bytes(), budget.used()), (250, 250));
        b.keep();
        assert_eq!(budget.used(), 250);
    }

    #[test]
    fn a_size_check_replaces_the_estimate_keeping_what_changed_meanwhile() {
        let budget = Arc::new(CacheBudget::new(1000, 1000));
        let mut early = Reservation::new(budget.clone());
        early.cover(300).unwrap();
        let start = budget.check_started();
        assert!(!budget.check_due());
        // While the check runs, one download grows and another gives bytes back.
        let mut late = Reservation::new(budget.clone());
        late.cover(200).unwrap();
        early.give_back(100);
        // The check measured 700 (the files it found, `early`'s partial file among them).
        budget.measured(start, 700);
        assert_eq!(budget.used(), 800);
        late.keep();
        assert_eq!(budget.used(), 800);
    }

    #[test]
    fn a_tenth_of_the_bound_downloaded_makes_a_check_due() {
        let budget = Arc::new(CacheBudget::new(1000, 1000));
        budget.check_started();
        let mut file = Reservation::new(budget.clone());
        file.cover(100).unwrap();
        assert!(!budget.check_due());
        file.cover(101).unwrap();
        assert!(budget.check_due());
        budget.check_started();
        assert!(!budget.check_due());
    }

    #[test]
    fn a_refusal_makes_the_next_check_evict_to_room_for_one_download() {
        let budget = Arc::new(CacheBudget::new(1000, 300));
        let check = budget.check_started();
        assert_eq!((check.trigger, check.target), (1000, 900));
        budget.measured(check, 950);
        assert_eq!(
            Reservation::new(budget.clone()).cover(100),
            Err(Refusal::CacheFull(1000))
        );
        let check = budget.check_started();
        assert_eq!((check.trigger, check.target), (700, 700));
        // Refusals are forgotten once a check has run.
        assert_eq!(budget.check_started().trigger, 1000);
    }

    #[test]
    fn after_a_refusal_eviction_leaves_room_for_one_full_download_but_keeps_half() {
        let target = |file| {
            let budget = Arc::new(CacheBudget::new(1000, file));
            budget.measured(budget.check_started(), 1000);
            let refused = Reservation::new(budget.clone()).cover(1);
            assert_eq!(refused, Err(Refusal::CacheFull(1000)));
            budget.check_started().target
        };
        assert_eq!(target(50), 900);
        assert_eq!(target(300), 700);
        assert_eq!(target(5000), 500);
    }
}
