//! The spool: a durable, append-only log of accepted envelopes under `data_dir/spool`.
//!
//! The intake appends each accepted envelope and answers `200` only after the append is
//! written (and, with `fsync: always`, synced). The [`SpoolReader`](crate::actors::spool_reader)
//! feeds the pipeline from it at the pace the bounded mailboxes allow, and releases an entry
//! once every Kafka message made from it is delivered. A segment whose entries are all released
//! is deleted. On start, unreleased entries are replayed; a torn last record (a write cut by a
//! crash) fails its checksum and is cut off with a log line.
//!
//! - [`entry`]: what a record holds.
//! - [`segment`]: the record format and segment files.
//! - [`writer`]: the writer thread, with group commit.

pub mod disk;
pub mod entry;
mod fault;
pub mod segment;
mod writer;

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use relay_core::config::SpoolConfig;
use tokio::sync::{oneshot, watch};

use disk::{Disk, OsDisk, Reserve, Target, WriteFault};
use fault::FaultLog;
use segment::{acks_path, list_segments, read_acks, segment_path, ReadStep, SegmentReader};

/// Where a record lives: its segment and its offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    /// Segment sequence number.
    pub segment: u64,
    /// Byte offset of the record in the segment.
    pub offset: u64,
}

/// How far the writer has written: the active segment and its committed length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Committed {
    /// The segment being appended to.
    pub segment: u64,
    /// Bytes of it that are written (and synced, per the fsync policy).
    pub len: u64,
}

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The spool reached its disk quota.
    #[error("the spool is full ({0} bytes); retry later")]
    Full(u64),
    /// The writer has more appends waiting than it queues.
    #[error("the spool writer is at capacity; retry later")]
    Busy,
    /// Writing failed or is failing (disk full, I/O error, directory gone); nothing of the
    /// append is kept.
    #[error("cannot write to the spool ({reason}): {detail}; retry later")]
    Unwritable {
        /// The kind of failure.
        reason: WriteFault,
        /// The error, or why the append was not tried.
        detail: String,
    },
    /// The spool is shutting down.
    #[error("the spool is shutting down")]
    Closed,
}

/// A segment's release list as open for appending.
struct AcksFile {
    file: File,
    /// Bytes of whole records in it.
    len: u64,
}

struct SegmentState {
    entries: u64,
    released: u64,
    bytes: u64,
    sealed: bool,
    /// Offsets released in an earlier run, skipped on replay.
    released_before: HashSet<u64>,
    /// The release list, opened at the first write.
    acks: Option<AcksFile>,
    /// Release records not yet written (u64 LE offsets): written in batches of
    /// [`RELEASE_BATCH`], and kept here while they cannot be written.
    pending_acks: Vec<u8>,
    /// Where the segment was found damaged on disk: nothing from there on is read.
    cut: Option<u64>,
}

/// Release records buffered before one write to a segment's release list (one system call per
/// release was about 3 % of the pipeline's CPU). A crash loses at most this many records per
/// segment, and those entries are published again after the restart: fewer than the entries
/// it re-publishes anyway, those delivered and not yet released (up to the delivery window).
/// The buffers are also written when a spool reader has caught up, and by [`Spool::close`].
const RELEASE_BATCH: usize = 64;

impl SegmentState {
    fn new() -> Self {
        SegmentState {
            entries: 0,
            released: 0,
            bytes: 0,
            sealed: false,
            released_before: HashSet::new(),
            acks: None,
            pending_acks: Vec::new(),
            cut: None,
        }
    }
}

/// Per-segment accounting of what is written and what is released.
#[derive(Default)]
struct Index {
    segments: BTreeMap<u64, SegmentState>,
    total_bytes: u64,
}

/// The durable spool; see the module docs.
pub struct Spool {
    dir: PathBuf,
    config: SpoolConfig,
    disk: Arc<dyn Disk>,
    /// Lock order: `index`, then `releases`, then `reserve`.
    index: Mutex<Index>,
    full: AtomicBool,
    /// False while appends fail (no space, I/O error): readiness is false meanwhile.
    writable: AtomicBool,
    reserve: Mutex<Reserve>,
    releases: Mutex<FaultLog>,
    /// Set when the active segment was found damaged: the writer starts a new one.
    rotate_requested: AtomicBool,
    committed: watch::Sender<Committed>,
    appends: Mutex<Option<mpsc::SyncSender<writer::AppendRequest>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovers its segments and starts the writer.
    pub fn open(dir: &Path, config: SpoolConfig) -> io::Result<Arc<Self>> {
        Self::open_with(dir, config, Arc::new(OsDisk))
    }

    /// [`Spool::open`], writing through `disk` (tests pass one that fails on demand).
    pub fn open_with(
        dir: &Path,
        config: SpoolConfig,
        disk: Arc<dyn Disk>,
    ) -> io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        let mut index = Index::default();
        for seq in list_segments(dir)? {
            let state = recover_segment(dir, seq)?;
            index.total_bytes += state.bytes;
            index.segments.insert(seq, state);
        }
        let active = index.segments.keys().next_back().map_or(0, |last| last + 1);
        index.segments.insert(active, SegmentState::new());
        let recovered: u64 = index
            .segments
            .values()
            .map(|s| s.entries - s.released)
            .sum();
        if recovered > 0 {
            tracing::info!(entries = recovered, "spool: replaying unreleased entries");
        }

        let (committed, _) = watch::channel(Committed {
            segment: active,
            len: 0,
        });
        let (tx, rx) = mpsc::sync_channel(config.write_queue);
        let spool = Arc::new(Spool {
            dir: dir.to_owned(),
            config,
            disk,
            index: Mutex::new(index),
            full: AtomicBool::new(false),
            writable: AtomicBool::new(true),
            reserve: Mutex::new(Reserve::new(dir)),
            releases: Mutex::new(FaultLog::new(
                "release",
                "release records are kept in memory and retried; a crash would publish those entries again",
            )),
            rotate_requested: AtomicBool::new(false),
            committed,
            appends: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
        });
        spool.delete_released_segments();
        let handle = writer::start(spool.clone(), active, rx)?;
        *spool.writer.lock().expect("spool lock") = Some(handle);
        crate::metrics::set_spool_bytes(spool.total_bytes());
        Ok(spool)
    }

    /// Appends `payload`; resolves once it is durable per the fsync policy.
    pub async fn append(&self, payload: Vec<u8>) -> Result<EntryId, AppendError> {
        let (reply, done) = oneshot::channel();
        {
            let appends = self.appends.lock().expect("spool lock");
            let sender = appends.as_ref().ok_or(AppendError::Closed)?;
            sender
                .try_send(writer::AppendRequest { payload, reply })
                .map_err(|e| match e {
                    mpsc::TrySendError::Full(_) => AppendError::Busy,
                    mpsc::TrySendError::Disconnected(_) => AppendError::Closed,
                })?;
        }
        done.await.unwrap_or(Err(AppendError::Closed))
    }

    /// Marks an entry as delivered; deletes its segment once all of it is released.
    pub fn release(&self, id: EntryId) {
        let mut index = self.lock();
        let Some(segment) = index.segments.get_mut(&id.segment) else {
            tracing::error!(?id, "spool: release of an entry in an unknown segment");
            return;
        };
        segment.released += 1;
        segment
            .pending_acks
            .extend_from_slice(&id.offset.to_le_bytes());
        let finished = segment.sealed && segment.released >= segment.entries;
        // A finished segment is deleted with its release list; while release records fail,
        // the writer retries them (not every release: thousands a second would each fail).
        if !finished && segment.pending_acks.len() >= RELEASE_BATCH * 8 && !self.releases_failing()
        {
            self.write_acks(id.segment, segment);
        }
        drop(index);
        // Only this entry's segment can have become deletable here; a segment released in full
        // before it was sealed is deleted by the writer when it seals it.
        if finished {
            self.delete_released_segments();
        }
    }

    /// Whether the last append was refused for the quota (and nothing was freed since).
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Whether appends succeed: false while they fail for lack of space or an I/O error,
    /// until a probe of the disk and an append succeed again.
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Relaxed)
    }

    /// Bytes of all segments on disk.
    pub fn total_bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// Entries written and not yet released.
    pub fn pending_entries(&self) -> u64 {
        self.lock()
            .segments
            .values()
            .map(|s| s.entries - s.released)
            .sum()
    }

    /// Watches the writer's progress.
    pub fn committed(&self) -> watch::Receiver<Committed> {
        self.committed.subscribe()
    }

    /// A reader over every unreleased entry, from the oldest segment on.
    pub fn reader(self: &Arc<Self>) -> SpoolCursor {
        let first = self.lock().segments.keys().next().copied().unwrap_or(0);
        SpoolCursor {
            spool: self.clone(),
            segment: first,
            reader: None,
            read_in_segment: 0,
        }
    }

    /// Stops taking appends, waits for the writer to flush and sync, writes the buffered
    /// release records, and returns.
    pub fn close(&self) {
        self.appends.lock().expect("spool lock").take();
        if let Some(handle) = self.writer.lock().expect("spool lock").take() {
            let _ = handle.join();
        }
        self.flush_releases(true);
    }

    /// Writes the buffered release records to the release lists (not synced: they only save
    /// duplicates after a restart). While they fail, only the writer retries them.
    pub fn write_releases(&self) {
        self.flush_releases(false);
    }

    /// Writes every segment's buffered release records; `retry`: even while they fail.
    fn flush_releases(&self, retry: bool) {
        if !retry && self.releases_failing() {
            return;
        }
        let mut index = self.lock();
        for (seq, segment) in index.segments.iter_mut() {
            if !segment.pending_acks.is_empty() {
                self.write_acks(*seq, segment);
            }
        }
    }

    fn releases_failing(&self) -> bool {
        self.releases.lock().expect("spool lock").reason().is_some()
    }

    /// Writes `state`'s pending release records; on `ENOSPC` gives back the disk reserve and
    /// tries once more. What cannot be written stays pending.
    fn write_acks(&self, seq: u64, state: &mut SegmentState) {
        let mut result = self.try_write_acks(seq, state);
        if matches!(&result, Err(e) if WriteFault::of(e) == WriteFault::NoSpace)
            && self.reserve.lock().expect("spool lock").give_back()
        {
            tracing::warn!(
                "spool: the disk is full; gave back the disk reserve to write release records"
            );
            result = self.try_write_acks(seq, state);
        }
        let mut log = self.releases.lock().expect("spool lock");
        match result {
            Ok(()) => log.succeeded(),
            Err(error) => log.failed(WriteFault::of(&error), &error.to_string()),
        }
    }

    fn try_write_acks(&self, seq: u64, state: &mut SegmentState) -> io::Result<()> {
        if state.acks.is_none() {
            state.acks = Some(open_acks(&*self.disk, &acks_path(&self.dir, seq))?);
        }
        let acks = state.acks.as_mut().expect("opened above");
        if let Err(error) = self
            .disk
            .write(Target::Releases, &mut acks.file, &state.pending_acks)
        {
            // A partial record would shift every later one: cut back to whole records (or
            // reopen, which cuts back, next time).
            if self.disk.set_len(&acks.file, acks.len).is_err() {
                state.acks = None;
            }
            return Err(error);
        }
        acks.len += state.pending_acks.len() as u64;
        state.pending_acks.clear();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().expect("spool index lock poisoned")
    }

    fn delete_released_segments(&self) {
        let mut index = self.lock();
        let done: Vec<u64> = index
            .segments
            .iter()
            .filter(|(_, s)| s.sealed && s.released >= s.entries)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in done {
            let state = index.segments.remove(&seq).expect("listed above");
            index.total_bytes -= state.bytes;
            for path in [segment_path(&self.dir, seq), acks_path(&self.dir, seq)] {
                if let Err(error) = std::fs::remove_file(&path) {
                    if error.kind() != io::ErrorKind::NotFound {
                        tracing::warn!(%error, path = %path.display(), "spool: cannot delete a released segment");
                    }
                }
            }
            self.full.store(false, Ordering::Relaxed);
        }
        crate::metrics::set_spool_bytes(index.total_bytes);
    }

    /// Gives up the entries of segment `seq` from offset `at` on: the file was truncated,
    /// deleted or overwritten there by something else. `read`: records the cursor took from
    /// it before `at`. The entries are counted as lost; a damaged active segment is replaced.
    fn cut_segment(&self, seq: u64, at: u64, read: u64, reason: &str) {
        let mut index = self.lock();
        let Some(state) = index.segments.get_mut(&seq) else {
            return;
        };
        if state.cut.is_some_and(|cut| cut <= at) {
            return;
        }
        let unread = state.entries.saturating_sub(read);
        let released_after = state.released_before.iter().filter(|o| **o >= at).count() as u64;
        state.entries -= unread;
        state.released = state.released.saturating_sub(released_after);
        state.cut = Some(at);
        let lost = unread.saturating_sub(released_after);
        let sealed = state.sealed;
        let finished = sealed && state.released >= state.entries;
        drop(index);
        tracing::error!(
            segment = seq,
            offset = at,
            reason,
            lost,
            "spool: a segment was damaged on disk by something else; its entries from this offset on are lost"
        );
        for _ in 0..lost {
            crate::metrics::count_spool_dropped("lost");
        }
        if !sealed {
            self.rotate_requested.store(true, Ordering::Relaxed);
        }
        if finished {
            self.delete_released_segments();
        }
    }
}

/// Opens a release list for appending; a torn last record (a crash or a failed write) is cut
/// off so the next records stay aligned.
fn open_acks(disk: &dyn Disk, path: &Path) -> io::Result<AcksFile> {
    let file = disk.create(Target::Releases, path)?;
    let len = file.metadata()?.len();
    let whole = len - len % 8;
    if whole != len {
        disk.set_len(&file, whole)?;
    }
    Ok(AcksFile { file, len: whole })
}

/// Scans a segment left by an earlier run: counts valid records, cuts off a torn tail, and
/// loads its release list.
fn recover_segment(dir: &Path, seq: u64) -> io::Result<SegmentState> {
    let path = segment_path(dir, seq);
    let len = std::fs::metadata(&path)?.len();
    let mut reader = SegmentReader::open(&path, 0)?;
    let mut offsets = Vec::new();
    loop {
        match reader.next(len)? {
            ReadStep::Record { offset, .. } => offsets.push(offset),
            ReadStep::End => break,
            // A damaged record with more after it was not torn by a crash (only the last
            // write can be): cutting there would lose every record after it. It is kept as an
            // entry; the cursor drops it when it reads it (logged, counted as corrupt).
            ReadStep::Torn {
                offset,
                reason,
                skip_to: Some(next),
            } if next < len => {
                tracing::warn!(segment = %path.display(), offset, %reason, "spool: a record was damaged on disk; reading on after it");
                offsets.push(offset);
            }
            ReadStep::Torn { offset, reason, .. } => {
                tracing::warn!(segment = %path.display(), offset, %reason, "spool: cutting off a torn record");
                OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(offset)?;
                break;
            }
        }
    }
    let released_before: HashSet<u64> = read_acks(&acks_path(dir, seq))?.into_iter().collect();
    let released = offsets
        .iter()
        .filter(|o| released_before.contains(o))
        .count() as u64;
    Ok(SegmentState {
        entries: offsets.len() as u64,
        released,
        bytes: reader.offset(),
        sealed: true,
        released_before,
        acks: None,
        pending_acks: Vec::new(),
        cut: None,
    })
}

/// Reads unreleased entries in order, following the writer.
pub struct SpoolCursor {
    spool: Arc<Spool>,
    segment: u64,
    reader: Option<SegmentReader>,
    /// Records taken from the current segment (including those released in an earlier run).
    read_in_segment: u64,
}

impl SpoolCursor {
    /// The next unreleased entry, or `None` when the reader has caught up with the writer.
    ///
    /// Damage done to a segment by something else (truncated, deleted, overwritten) is logged
    /// and counted once, and reading goes on after it.
    pub fn next_entry(&mut self) -> io::Result<Option<(EntryId, Vec<u8>)>> {
        loop {
            let committed = *self.spool.committed.borrow();
            let Some(end) = self.readable_end(committed) else {
                // Deleted (all released); closing it gives its space back.
                if !self.advance(committed) {
                    return Ok(None);
                }
                continue;
            };
            if self.reader.as_ref().is_some_and(|r| r.offset() >= end) {
                if !self.advance(committed) {
                    return Ok(None);
                }
                continue;
            }
            if self.reader.is_none() {
                let path = segment_path(&self.spool.dir, self.segment);
                if end == 0 && !path.exists() {
                    if !self.advance(committed) {
                        return Ok(None);
                    }
                    continue;
                }
                match SegmentReader::open(&path, 0) {
                    Ok(reader) => self.reader = Some(reader),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        let reason = "the segment file is gone";
                        self.spool.cut_segment(self.segment, 0, 0, reason);
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
            let reader = self.reader.as_mut().expect("opened above");
            match reader.next(end)? {
                ReadStep::Record { offset, payload } => {
                    self.read_in_segment += 1;
                    if self.was_released_before(offset) {
                        continue;
                    }
                    let id = EntryId {
                        segment: self.segment,
                        offset,
                    };
                    return Ok(Some((id, payload)));
                }
                ReadStep::End => {
                    if !self.advance(committed) {
                        return Ok(None);
                    }
                }
                // The writer commits whole records only, so anything invalid before the
                // committed end was damaged on disk after it was written.
                ReadStep::Torn {
                    offset,
                    reason,
                    skip_to: Some(_),
                } => self.skip_corrupt(offset, &reason),
                ReadStep::Torn {
                    offset,
                    reason,
                    skip_to: None,
                } => {
                    let read = self.read_in_segment;
                    self.spool.cut_segment(self.segment, offset, read, &reason);
                }
            }
        }
    }

    /// How far the current segment can be read: its committed length, or where it was cut;
    /// `None` once it is deleted.
    fn readable_end(&self, committed: Committed) -> Option<u64> {
        let index = self.spool.lock();
        let state = index.segments.get(&self.segment);
        let end = if self.segment == committed.segment {
            committed.len
        } else {
            state?.bytes
        };
        Some(match state.and_then(|s| s.cut) {
            Some(cut) => end.min(cut),
            None => end,
        })
    }

    /// Drops one record whose payload fails its checksum (its frame is intact, so reading
    /// goes on after it): logged, counted as `corrupt`, and released.
    fn skip_corrupt(&mut self, offset: u64, reason: &str) {
        self.read_in_segment += 1;
        if self.was_released_before(offset) {
            return;
        }
        tracing::error!(
            segment = self.segment,
            offset,
            reason,
            "spool: dropping a record damaged on disk"
        );
        crate::metrics::count_spool_dropped("corrupt");
        self.spool.release(EntryId {
            segment: self.segment,
            offset,
        });
    }

    /// Moves to the next segment if the current one is finished; false when caught up.
    fn advance(&mut self, committed: Committed) -> bool {
        if self.segment >= committed.segment {
            return false;
        }
        let next = self
            .spool
            .lock()
            .segments
            .range(self.segment + 1..)
            .next()
            .map(|(seq, _)| *seq);
        self.segment = next.unwrap_or(committed.segment);
        self.reader = None;
        self.read_in_segment = 0;
        true
    }

    fn was_released_before(&self, offset: u64) -> bool {
        self.spool
            .lock()
            .segments
            .get(&self.segment)
            .is_some_and(|s| s.released_before.contains(&offset))
    }
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
