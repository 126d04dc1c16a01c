//! The spool writer: one thread that owns the active segment file.
//!
//! Appends queue in a bounded channel. The writer takes everything waiting (group commit),
//! writes it with one `write`, syncs once per the fsync policy, publishes the new committed
//! length for the reader, and only then acknowledges each append.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use relay_core::config::FsyncPolicy;
use tokio::sync::oneshot;

use super::segment::{encode_record, segment_path, RECORD_HEADER_LEN};
use super::{AppendError, Committed, EntryId, SegmentState, Spool};

/// Appends taken in one group commit at most.
const MAX_BATCH: usize = 512;

/// One append waiting for the writer.
pub struct AppendRequest {
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<Result<EntryId, AppendError>>,
}

struct Writer {
    spool: Arc<Spool>,
    segment: u64,
    file: File,
    len: u64,
    last_sync: Instant,
    buffer: Vec<u8>,
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
    };
    std::thread::Builder::new()
        .name("spool-writer".to_owned())
        .spawn(move || writer.run(appends))
}

fn create_segment(spool: &Spool, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(&spool.dir, seq))?;
    // Make the new file's directory entry durable too.
    File::open(&spool.dir)?.sync_all()?;
    Ok(file)
}

impl Writer {
    fn run(&mut self, appends: mpsc::Receiver<AppendRequest>) {
        while let Ok(first) = appends.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match appends.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        // The spool is closing: make everything written durable.
        if let Err(error) = self.file.sync_data() {
            tracing::error!(%error, "spool: final sync failed");
        }
    }

    fn commit(&mut self, batch: Vec<AppendRequest>) {
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
        if let Err(error) = self.write_buffer() {
            tracing::error!(%error, "spool: append failed");
            for (_, reply) in accepted {
                let _ = reply.send(Err(AppendError::Io(error.to_string())));
            }
            return;
        }
        let written = self.buffer.len() as u64;
        self.len += written;
        {
            let mut index = self.spool.lock();
            index.total_bytes += written;
            let state = index
                .segments
                .entry(self.segment)
                .or_insert_with(SegmentState::new);
            state.entries += accepted.len() as u64;
            state.bytes = self.len;
            crate::metrics::set_spool_bytes(index.total_bytes);
        }
        self.spool.committed.send_replace(Committed {
            segment: self.segment,
            len: self.len,
        });
        for (id, reply) in accepted {
            let _ = reply.send(Ok(id));
        }
        if self.len >= self.spool.config.segment_bytes {
            self.rotate();
        }
    }

    /// Writes the buffer and syncs per the policy; on failure the segment is cut back.
    fn write_buffer(&mut self) -> io::Result<()> {
        let result = self
            .file
            .write_all(&self.buffer)
            .and_then(|()| self.sync_per_policy());
        if result.is_err() {
            // Do not leave half a batch behind for the reader or the next restart.
            let _ = self.file.set_len(self.len);
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
            self.file.sync_data()?;
            self.last_sync = Instant::now();
        }
        Ok(())
    }

    /// Seals the active segment and starts the next one.
    fn rotate(&mut self) {
        if let Err(error) = self.file.sync_data() {
            tracing::error!(%error, "spool: sync before rotation failed");
        }
        let next = self.segment + 1;
        let file = match create_segment(&self.spool, next) {
            Ok(file) => file,
            Err(error) => {
                // Keep appending to the current segment; rotation is retried next commit.
                tracing::error!(%error, "spool: cannot create the next segment");
                return;
            }
        };
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
        self.spool.committed.send_replace(Committed {
            segment: next,
            len: 0,
        });
        self.spool.delete_released_segments();
    }
}
