//! The spool writer: one thread that owns the active segment file.
//!
//! Appends queue in a bounded channel. The writer takes everything waiting (group commit),
//! writes it with one `write`, syncs once per the fsync policy, publishes the new committed
//! length for the reader, and only then acknowledges each append.
//!
//! When a write fails (disk full, `EIO`, the directory gone), the batch is answered with an
//! error (the intake answers 503) and the writer stops trying: appends are refused at once
//! and readiness is false until a probe, every [`PROBE_EVERY`], finds the fault cleared (the
//! directory exists, a fresh segment can be created, the disk reserve is held and there is
//! [`RESUME_HEADROOM`] of free space); then the next batch is written for real. Between
//! batches (and every [`TICK`] when idle) it also starts a new segment when the active one is
//! fully delivered and space is short, so a full disk frees itself as Kafka catches up.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use relay_core::config::FsyncPolicy;
use tokio::sync::oneshot;

use super::disk::{Target, WriteFault, RESERVE_BYTES};
use super::fault::FaultLog;
use super::segment::{encode_record, segment_path, RECORD_HEADER_LEN};
use super::{AppendError, Committed, EntryId, SegmentState, Spool};

/// Bytes after which a batch takes no more appends, and the most its buffer keeps between
/// batches: 512 typical events fit, while large attachments are copied one or two at a time.
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Appends taken in one group commit at most.
const MAX_BATCH: usize = 512;

/// How long the writer waits for appends before doing its upkeep anyway.
const TICK: Duration = Duration::from_millis(200);

/// How often a failing writer checks whether the fault has cleared.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Free space (beyond the reserve) needed before appends resume after a fault: with less, a
/// full disk would take a few appends and fail again, over and over.
pub const RESUME_HEADROOM: u64 = RESERVE_BYTES;

/// A delivered active segment at least this large is replaced when the writer is idle, so
/// its space comes back without waiting for `segment_bytes`.
const IDLE_ROTATE_BYTES: u64 = 1024 * 1024;

/// One append waiting for the writer.
pub struct AppendRequest {
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<Result<EntryId, AppendError>>,
}

/// The step of a batch that failed.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Write,
    Sync,
}

struct Writer {
    spool: Arc<Spool>,
    segment: u64,
    file: File,
    len: u64,
    last_sync: Instant,
    buffer: Vec<u8>,
    appends: FaultLog,
    rotations: FaultLog,
    /// While appends fail: the next batch may be tried (a probe found the fault cleared).
    trial: bool,
    last_probe: Instant,
    last_release_retry: Instant,
    /// The active segment is not to be trusted (a failed sync, a write that could not be cut
    /// back, damage by something else): appends go to a new segment first.
    needs_new_segment: bool,
}

/// Starts the writer thread on segment `active`.
pub fn start(
    spool: Arc<Spool>,
    active: u64,
    appends: mpsc::Receiver<AppendRequest>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let file = create_segment(&spool, active)?;
    let mut writer = Writer {
        spool,
        segment: active,
        file,
        len: 0,
        last_sync: Instant::now(),
        buffer: Vec::new(),
        appends: FaultLog::new(
            "append",
            "intake answers 503 and readiness is false until appends succeed again",
        ),
        rotations: FaultLog::new(
            "rotate",
            "appends go on in the current segment while it is sound",
        ),
        trial: false,
        last_probe: Instant::now(),
        last_release_retry: Instant::now(),
        needs_new_segment: false,
    };
    writer.take_reserve_at_start();
    std::thread::Builder::new()
        .name("spool-writer".to_owned())
        .spawn(move || writer.run(appends))
}

/// Creates segment `seq`; on `ENOSPC`, gives back the disk reserve and tries once more.
fn create_segment(spool: &Spool, seq: u64) -> io::Result<File> {
    let result = try_create_segment(spool, seq);
    match result {
        Err(error)
            if WriteFault::of(&error) == WriteFault::NoSpace
                && spool.reserve.lock().expect("spool lock").give_back() =>
        {
            tracing::warn!(%error, "spool: the disk is full; gave back the disk reserve to start a new segment");
            try_create_segment(spool, seq)
        }
        result => result,
    }
}

fn try_create_segment(spool: &Spool, seq: u64) -> io::Result<File> {
    let file = spool
        .disk
        .create(Target::Segment, &segment_path(&spool.dir, seq))?;
    // Make the new file's directory entry durable too.
    spool.disk.sync_dir(&spool.dir)?;
    Ok(file)
}

impl Writer {
    fn run(&mut self, appends: mpsc::Receiver<AppendRequest>) {
        loop {
            match appends.recv_timeout(TICK) {
                Ok(first) => {
                    let mut bytes = first.payload.len();
                    let mut batch = vec![first];
                    // Bounded in bytes too: the batch is copied into one buffer, and a few
                    // large attachments would otherwise be copied together.
                    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                        match appends.try_recv() {
                            Ok(request) => {
                                bytes += request.payload.len();
                                batch.push(request);
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                    self.release_large_buffer();
                    self.upkeep(false);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.upkeep(true),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // The spool is closing: make everything written durable.
        if let Err(error) = self.spool.disk.sync(Target::Segment, &self.file) {
            tracing::error!(%error, "spool: final sync failed");
        }
    }

    /// Without the reserve on disk, or without room beyond it (a restart on a full disk), the
    /// writer starts as failing: appends and readiness wait for a probe to find room.
    fn take_reserve_at_start(&mut self) {
        let taken = self
            .spool
            .reserve
            .lock()
            .expect("spool lock")
            .take(&*self.spool.disk);
        if let Err(error) = taken {
            let detail = format!("cannot write the disk reserve: {error}");
            self.fail(WriteFault::of(&error), &detail);
            return;
        }
        match self.spool.disk.available(&self.spool.dir) {
            Ok(bytes) if bytes < RESUME_HEADROOM => {
                let detail = format!("only {bytes} bytes free on the spool's filesystem");
                self.fail(WriteFault::NoSpace, &detail);
            }
            _ => {}
        }
    }

    /// Frees the batch buffer after a batch of large records (a 60 MB attachment): kept, it
    /// would hold that memory until the process ends.
    fn release_large_buffer(&mut self) {
        if self.buffer.capacity() > MAX_BATCH_BYTES {
            self.buffer = Vec::new();
        }
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
        if let Err(reason) = self.ready_to_write() {
            self.appends.refused(batch.len() as u64);
            let detail = "writes are failing; waiting for the fault to clear";
            refuse(batch, reason, detail);
            return;
        }
        if let Err((reason, detail)) = self.check_active() {
            self.needs_new_segment = true;
            self.fail(reason, &detail);
            refuse(batch, reason, &detail);
            return;
        }
        self.buffer.clear();
        let mut accepted = Vec::with_capacity(batch.len());
        let quota = self.spool.config.max_disk_bytes;
        let total = self.spool.lock().total_bytes;
        for request in batch {
            let record_len = RECORD_HEADER_LEN + request.payload.len() as u64;
            if total + self.buffer.len() as u64 + record_len > quota {
                self.spool.full.store(true, Ordering::Relaxed);
                let _ = request.reply.send(Err(AppendError::Full(quota)));
                continue;
            }
            let id = EntryId {
                segment: self.segment,
                offset: self.len + self.buffer.len() as u64,
            };
            encode_record(&request.payload, &mut self.buffer);
            accepted.push((id, request.reply));
        }
        if accepted.is_empty() {
            return;
        }
        if let Err((stage, error)) = self.write_buffer() {
            let reason = WriteFault::of(&error);
            let detail = format!("{stage:?} failed: {error}");
            self.fail(reason, &detail);
            refuse(accepted.into_iter().map(|(_, r)| r), reason, &detail);
            return;
        }
        if !self.publish(accepted.len() as u64) {
            let detail = "the active segment was damaged on disk during the write";
            self.needs_new_segment = true;
            refuse(
                accepted.into_iter().map(|(_, r)| r),
                WriteFault::Damaged,
                detail,
            );
            return;
        }
        self.appends.succeeded();
        self.set_writable(true);
        for (id, reply) in accepted {
            let _ = reply.send(Ok(id));
        }
        if self.len >= self.spool.config.segment_bytes {
            self.rotate();
        }
    }

    /// Whether a batch may be written now; the fault's reason if not.
    fn ready_to_write(&mut self) -> Result<(), WriteFault> {
        if let Some(reason) = self.appends.reason() {
            // One batch is tried after each successful probe.
            return if std::mem::take(&mut self.trial) {
                Ok(())
            } else {
                Err(reason)
            };
        }
        if self.needs_new_segment && !self.rotate() {
            let reason = self.rotations.reason().unwrap_or(WriteFault::Io);
            self.fail(reason, "cannot start a new segment");
            return Err(reason);
        }
        if !self.spool.reserve.lock().expect("spool lock").is_held() {
            // The reserve was given back to a full disk: keep its space for rotation and
            // release records until a probe can take it again.
            let reason = WriteFault::NoSpace;
            self.fail(reason, "the disk reserve was given back");
            return Err(reason);
        }
        Ok(())
    }

    /// Checks that the active segment is still the file the writer wrote: not deleted, and
    /// exactly as long as written (`O_APPEND` writes would land elsewhere otherwise).
    fn check_active(&self) -> Result<(), (WriteFault, String)> {
        if self.spool.rotate_requested.swap(false, Ordering::Relaxed) {
            let detail = "the active segment was found damaged by the reader".to_owned();
            return Err((WriteFault::Damaged, detail));
        }
        let meta = self
            .file
            .metadata()
            .map_err(|e| (WriteFault::of(&e), e.to_string()))?;
        if meta.nlink() == 0 {
            let detail = "the active segment file (or the spool directory) was deleted".to_owned();
            return Err((WriteFault::Missing, detail));
        }
        if meta.len() != self.len {
            let detail = format!(
                "the active segment is {} bytes long, {} were written",
                meta.len(),
                self.len
            );
            return Err((WriteFault::Damaged, detail));
        }
        Ok(())
    }

    /// Marks appends as failing (logged once by the fault log).
    fn fail(&mut self, reason: WriteFault, detail: &str) {
        self.appends.failed(reason, detail);
        self.trial = false;
        self.last_probe = Instant::now();
        self.set_writable(false);
    }

    fn set_writable(&self, writable: bool) {
        if self.spool.writable.swap(writable, Ordering::Relaxed) != writable {
            crate::metrics::set_spool_writable(writable);
        }
    }

    /// Accounts the written buffer to the active segment and publishes the new length; false
    /// if the segment was cut (damaged) meanwhile, so the batch must not be acknowledged.
    fn publish(&mut self, entries: u64) -> bool {
        let written = self.buffer.len() as u64;
        {
            let mut index = self.spool.lock();
            let state = index
                .segments
                .entry(self.segment)
                .or_insert_with(SegmentState::new);
            if state.cut.is_some() {
                return false;
            }
            state.entries += entries;
            state.bytes = self.len + written;
            index.total_bytes += written;
            crate::metrics::set_spool_bytes(index.total_bytes);
        }
        self.len += written;
        self.spool.committed.send_replace(Committed {
            segment: self.segment,
            len: self.len,
        });
        true
    }

    /// Writes the buffer and syncs per the policy; on failure the segment is cut back.
    ///
    /// After a failed sync the kernel may have dropped the batch's pages and a later sync
    /// would not say so: the batch is refused and the segment is not written to again.
    fn write_buffer(&mut self) -> Result<(), (Stage, io::Error)> {
        let disk = self.spool.disk.clone();
        let result = disk
            .write(Target::Segment, &mut self.file, &self.buffer)
            .map_err(|e| (Stage::Write, e))
            .and_then(|()| self.sync_per_policy().map_err(|e| (Stage::Sync, e)));
        if let Err((stage, error)) = &result {
            // Do not leave half a batch behind for the reader or the next restart.
            let cut_back = disk.set_len(&self.file, self.len).is_ok();
            if matches!(stage, Stage::Sync)
                || !cut_back
                || WriteFault::of(error) != WriteFault::NoSpace
            {
                self.needs_new_segment = true;
            }
        }
        result
    }

    fn sync_per_policy(&mut self) -> io::Result<()> {
        let due = match self.spool.config.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => {
                self.last_sync.elapsed()
                    >= Duration::from_millis(self.spool.config.fsync_interval_ms)
            }
            FsyncPolicy::Never => false,
        };
        if due {
            self.spool.disk.sync(Target::Segment, &self.file)?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Upkeep between batches: notice damage while idle, free a delivered active segment,
    /// probe a failing disk, retry release records, log summaries.
    fn upkeep(&mut self, idle: bool) {
        if idle && self.appends.reason().is_none() {
            if let Err((reason, detail)) = self.check_active() {
                self.needs_new_segment = true;
                self.fail(reason, &detail);
            }
        }
        self.rotate_if_delivered(idle);
        if self.appends.reason().is_some() && self.last_probe.elapsed() >= PROBE_EVERY {
            self.probe();
        }
        if self.last_release_retry.elapsed() >= PROBE_EVERY && self.spool.releases_failing() {
            self.last_release_retry = Instant::now();
            self.spool.flush_releases(true);
        }
        self.appends.summarize_if_due();
        self.rotations.summarize_if_due();
        self.spool
            .releases
            .lock()
            .expect("spool lock")
            .summarize_if_due();
    }

    /// Starts a new segment when the active one is fully delivered and its space is wanted:
    /// appends are failing, the quota is reached, or the writer is idle with a large segment.
    fn rotate_if_delivered(&mut self, idle: bool) {
        if self.len == 0 {
            return;
        }
        let pressed = self.appends.reason().is_some()
            || self.spool.is_full()
            || (idle && self.len >= IDLE_ROTATE_BYTES.min(self.spool.config.segment_bytes));
        if !pressed {
            return;
        }
        let delivered = self
            .spool
            .lock()
            .segments
            .get(&self.segment)
            .is_some_and(|s| s.released >= s.entries);
        if delivered {
            self.rotate();
        }
    }

    /// Checks whether the fault has cleared; if so, lets the next batch be tried.
    fn probe(&mut self) {
        self.last_probe = Instant::now();
        // A deleted spool directory is created again (its entries are gone with it).
        if self.spool.disk.create_dir(&self.spool.dir).is_err() {
            return;
        }
        if self.needs_new_segment && !self.rotate() {
            return;
        }
        {
            let mut reserve = self.spool.reserve.lock().expect("spool lock");
            reserve.refresh();
            if reserve.take(&*self.spool.disk).is_err() {
                return;
            }
        }
        let room = self.spool.disk.available(&self.spool.dir);
        if room.is_ok_and(|bytes| bytes >= RESUME_HEADROOM) {
            // Readiness turns true now: a load balancer that sends nothing to an unready relay
            // would otherwise never let the trial happen. The recovery is logged when an
            // append succeeds; if it fails, readiness is false again until the next probe.
            self.trial = true;
            self.set_writable(true);
        }
    }

    /// Seals the active segment and starts the next one; false if it cannot be created.
    fn rotate(&mut self) -> bool {
        // A suspect file's committed entries were synced per the policy already; syncing
        // it again would only fail again.
        if !self.needs_new_segment {
            if let Err(error) = self.spool.disk.sync(Target::Segment, &self.file) {
                tracing::error!(%error, "spool: sync before rotation failed");
            }
        }
        let next = self.segment + 1;
        let file = match create_segment(&self.spool, next) {
            Ok(file) => file,
            Err(error) => {
                // Appends go on into the current segment, if it is sound.
                self.rotations
                    .failed(WriteFault::of(&error), &error.to_string());
                return false;
            }
        };
        self.rotations.succeeded();
        {
            let mut index = self.spool.lock();
            if let Some(state) = index.segments.get_mut(&self.segment) {
                state.sealed = true;
            }
            index.segments.insert(next, SegmentState::new());
        }
        self.segment = next;
        self.file = file;
        self.len = 0;
        self.needs_new_segment = false;
        self.spool.committed.send_replace(Committed {
            segment: next,
            len: 0,
        });
        self.spool.delete_released_segments();
        true
    }
}

/// Answers every append of a batch with an [`AppendError::Unwritable`].
fn refuse<R>(replies: impl IntoIterator<Item = R>, reason: WriteFault, detail: &str)
where
    R: IntoReply,
{
    for reply in replies {
        reply.refuse(AppendError::Unwritable {
            reason,
            detail: detail.to_owned(),
        });
    }
}

/// Something an append's error can be sent to: a request, or its reply channel.
trait IntoReply {
    fn refuse(self, error: AppendError);
}

impl IntoReply for AppendRequest {
    fn refuse(self, error: AppendError) {
        let _ = self.reply.send(Err(error));
    }
}

impl IntoReply for oneshot::Sender<Result<EntryId, AppendError>> {
    fn refuse(self, error: AppendError) {
        let _ = self.send(Err(error));
    }
}
