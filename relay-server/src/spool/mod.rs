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

pub mod entry;
pub mod segment;
mod writer;

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use relay_core::config::SpoolConfig;
use tokio::sync::{oneshot, watch};

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
    /// Writing failed (disk full, I/O error).
    #[error("cannot write to the spool: {0}")]
    Io(String),
    /// The spool is shutting down.
    #[error("the spool is shutting down")]
    Closed,
}

struct SegmentState {
    entries: u64,
    released: u64,
    bytes: u64,
    sealed: bool,
    /// Offsets released in an earlier run, skipped on replay.
    released_before: HashSet<u64>,
    /// The release list, written in batches of [`RELEASE_BATCH`] records.
    acks: Option<BufWriter<File>>,
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
    index: Mutex<Index>,
    full: AtomicBool,
    committed: watch::Sender<Committed>,
    appends: Mutex<Option<mpsc::SyncSender<writer::AppendRequest>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, recovers its segments and starts the writer.
    pub fn open(dir: &Path, config: SpoolConfig) -> io::Result<Arc<Self>> {
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
            index: Mutex::new(index),
            full: AtomicBool::new(false),
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
        if segment.acks.is_none() {
            let path = acks_path(&self.dir, id.segment);
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(file) => segment.acks = Some(BufWriter::with_capacity(RELEASE_BATCH * 8, file)),
                // Only costs a duplicate after a restart.
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "spool: cannot open the release list")
                }
            }
        }
        if let Some(acks) = segment.acks.as_mut() {
            if let Err(error) = acks.write_all(&id.offset.to_le_bytes()) {
                tracing::warn!(%error, "spool: cannot record a release");
            }
        }
        let finished = segment.sealed && segment.released >= segment.entries;
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
        }
    }

    /// Stops taking appends, waits for the writer to flush and sync, writes the buffered
    /// release records, and returns.
    pub fn close(&self) {
        self.appends.lock().expect("spool lock").take();
        if let Some(handle) = self.writer.lock().expect("spool lock").take() {
            let _ = handle.join();
        }
        self.write_releases();
    }

    /// Writes the buffered release records to the release lists (not synced: they only save
    /// duplicates after a restart).
    pub fn write_releases(&self) {
        for segment in self.lock().segments.values_mut() {
            if let Some(Err(error)) = segment.acks.as_mut().map(BufWriter::flush) {
                tracing::warn!(%error, "spool: cannot record releases");
            }
        }
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
            ReadStep::Torn { offset, reason } => {
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
    })
}

/// Reads unreleased entries in order, following the writer.
pub struct SpoolCursor {
    spool: Arc<Spool>,
    segment: u64,
    reader: Option<SegmentReader>,
}

impl SpoolCursor {
    /// The next unreleased entry, or `None` when the reader has caught up with the writer.
    pub fn next_entry(&mut self) -> io::Result<Option<(EntryId, Vec<u8>)>> {
        loop {
            let committed = *self.spool.committed.borrow();
            let end = if self.segment == committed.segment {
                committed.len
            } else {
                match self.spool.lock().segments.get(&self.segment) {
                    Some(state) => state.bytes,
                    None => 0,
                }
            };
            if self.reader.is_none() {
                let path = segment_path(&self.spool.dir, self.segment);
                if end == 0 && !path.exists() {
                    if !self.advance(committed) {
                        return Ok(None);
                    }
                    continue;
                }
                self.reader = Some(SegmentReader::open(&path, 0)?);
            }
            let reader = self.reader.as_mut().expect("opened above");
            match reader.next(end)? {
                ReadStep::Record { offset, payload } => {
                    if self.was_released_before(offset) {
                        continue;
                    }
                    let id = EntryId {
                        segment: self.segment,
                        offset,
                    };
                    return Ok(Some((id, payload)));
                }
                ReadStep::End | ReadStep::Torn { .. } => {
                    if !self.advance(committed) {
                        return Ok(None);
                    }
                }
            }
        }
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
mod tests;
