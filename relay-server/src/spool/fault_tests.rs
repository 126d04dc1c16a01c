//! The spool under disk faults, one test each: a full disk, failing release records, `EIO` on
//! write and on sync, a read-only disk, the directory deleted, a segment truncated or
//! corrupted while running. Faults come from [`FaultyDisk`], which fails on demand.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_core::config::{FsyncPolicy, SpoolConfig};

use super::disk::{Disk, OsDisk, Target, WriteFault, RESERVE_BYTES};
use super::segment::{acks_path, list_segments, read_acks, segment_path};
use super::*;

/// An operation [`FaultyDisk`] can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Create(Target),
    Write(Target),
    Sync(Target),
}

/// The real disk, except for the operations told to fail, and optionally a filesystem of
/// `capacity` bytes (the files in the spool directory): writes beyond it are cut short
/// with `ENOSPC`, as a full disk does.
struct FaultyDisk {
    dir: PathBuf,
    failures: Mutex<HashMap<Op, i32>>,
    capacity: Mutex<Option<u64>>,
}

impl FaultyDisk {
    fn new(dir: &Path) -> Arc<Self> {
        Arc::new(FaultyDisk {
            dir: dir.to_owned(),
            failures: Mutex::new(HashMap::new()),
            capacity: Mutex::new(None),
        })
    }

    fn fail(&self, op: Op, errno: i32) {
        self.failures.lock().unwrap().insert(op, errno);
    }

    fn heal(&self) {
        self.failures.lock().unwrap().clear();
    }

    fn set_capacity(&self, capacity: Option<u64>) {
        *self.capacity.lock().unwrap() = capacity;
    }

    fn check(&self, op: Op) -> io::Result<()> {
        match self.failures.lock().unwrap().get(&op) {
            Some(errno) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }

    fn used(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Disk for FaultyDisk {
    fn create(&self, target: Target, path: &Path) -> io::Result<File> {
        self.check(Op::Create(target))?;
        OsDisk.create(target, path)
    }

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.create_dir(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDisk.sync_dir(dir)
    }

    fn write(&self, target: Target, file: &mut File, buf: &[u8]) -> io::Result<()> {
        self.check(Op::Write(target))?;
        if let Some(capacity) = *self.capacity.lock().unwrap() {
            let room = capacity.saturating_sub(self.used()) as usize;
            if buf.len() > room {
                OsDisk.write(target, file, &buf[..room])?;
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        OsDisk.write(target, file, buf)
    }

    fn sync(&self, target: Target, file: &File) -> io::Result<()> {
        self.check(Op::Sync(target))?;
        OsDisk.sync(target, file)
    }

    fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        OsDisk.set_len(file, len)
    }

    fn available(&self, dir: &Path) -> io::Result<u64> {
        match *self.capacity.lock().unwrap() {
            Some(capacity) => Ok(capacity.saturating_sub(self.used())),
            None => OsDisk.available(dir),
        }
    }
}

fn config(fsync: FsyncPolicy) -> SpoolConfig {
    SpoolConfig {
        max_disk_bytes: 1 << 30,
        segment_bytes: 1 << 20,
        fsync,
        ..SpoolConfig::default()
    }
}

/// A spool in a new directory writing through a [`FaultyDisk`].
fn faulty_spool(fsync: FsyncPolicy) -> (tempfile::TempDir, PathBuf, Arc<FaultyDisk>, Arc<Spool>) {
    let guard = tempfile::tempdir().unwrap();
    let dir = guard.path().join("spool");
    std::fs::create_dir(&dir).unwrap();
    let disk = FaultyDisk::new(&dir);
    let spool = Spool::open_with(&dir, config(fsync), disk.clone()).unwrap();
    (guard, dir, disk, spool)
}

fn drain(spool: &Arc<Spool>) -> Vec<(EntryId, Vec<u8>)> {
    drain_cursor(&mut spool.reader())
}

fn drain_cursor(cursor: &mut SpoolCursor) -> Vec<(EntryId, Vec<u8>)> {
    let mut entries = Vec::new();
    while let Some(entry) = cursor.next_entry().unwrap() {
        entries.push(entry);
    }
    entries
}

fn payloads(entries: &[(EntryId, Vec<u8>)]) -> Vec<Vec<u8>> {
    entries.iter().map(|(_, p)| p.clone()).collect()
}

fn unwritable_reason(result: Result<EntryId, AppendError>) -> WriteFault {
    match result {
        Err(AppendError::Unwritable { reason, .. }) => reason,
        other => panic!("expected an unwritable spool, got {other:?}"),
    }
}

/// Appends `payload` until it is accepted (the writer probes a cleared fault every 500 ms),
/// or fails after 10 s.
async fn append_when_healed(spool: &Spool, payload: &[u8]) -> EntryId {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match spool.append(payload.to_vec()).await {
            Ok(id) => return id,
            Err(error) if Instant::now() > deadline => panic!("the spool never recovered: {error}"),
            Err(_) => actix_web::rt::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[actix_web::test]
async fn full_disk_frees_the_delivered_active_segment_and_recovers() {
    let (_guard, dir, disk, spool) = faulty_spool(FsyncPolicy::Never);
    // Room for the reserve, the headroom needed to resume, and a little more.
    disk.set_capacity(Some(2 * RESERVE_BYTES + 20_000));
    let mut accepted = 0;
    let reason = loop {
        match spool.append(vec![7; 1000]).await {
            Ok(_) => accepted += 1,
            Err(error) => break unwritable_reason(Err(error)),
        }
        assert!(accepted < 1000, "the disk never filled");
    };
    assert_eq!(reason, WriteFault::NoSpace);
    assert!(accepted > 200, "only {accepted} appends fit");
    assert!(!spool.is_writable());
    // Refused without trying while the disk is full, however often.
    for _ in 0..50 {
        assert!(spool.append(vec![7; 10]).await.is_err());
    }
    let first_segment = list_segments(&dir).unwrap()[0];

    // Kafka catches up: every entry is delivered and released. Nothing else frees space.
    // One cursor throughout, as the spool reader has: it must move off the deleted segment.
    let mut cursor = spool.reader();
    let entries = drain_cursor(&mut cursor);
    assert_eq!(entries.len(), accepted);
    for (id, _) in &entries {
        spool.release(*id);
    }
    let id = append_when_healed(&spool, b"after").await;
    assert!(spool.is_writable());
    assert!(!list_segments(&dir).unwrap().contains(&first_segment));
    assert!(id.segment > first_segment);
    assert_eq!(
        payloads(&drain_cursor(&mut cursor)),
        vec![b"after".to_vec()]
    );
    assert_eq!(spool.pending_entries(), 1);
    spool.close();
}

#[actix_web::test]
async fn release_records_that_fail_are_kept_and_written_later() {
    let (_guard, dir, disk, spool) = faulty_spool(FsyncPolicy::Never);
    let mut ids = Vec::new();
    for i in 0..100u8 {
        ids.push(spool.append(vec![i; 10]).await.unwrap());
    }
    disk.fail(Op::Write(Target::Releases), libc::EIO);
    for id in &ids[..70] {
        spool.release(*id);
    }
    spool.write_releases();
    let acks = acks_path(&dir, ids[0].segment);
    assert!(read_acks(&acks).unwrap().is_empty());
    // Appends are not affected by failing release records.
    assert!(spool.is_writable());

    disk.heal();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read_acks(&acks).unwrap().len() < 70 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_acks(&acks).unwrap().len(), 70);

    // A crash now replays only the 30 entries never released.
    let recovered = Spool::open(&dir, config(FsyncPolicy::Never)).unwrap();
    let replayed = payloads(&drain(&recovered));
    assert_eq!(replayed.len(), 30);
    assert_eq!(replayed[0], vec![70u8; 10]);
    recovered.close();
    spool.close();
}

#[actix_web::test]
async fn eio_on_write_refuses_the_batch_and_keeps_earlier_entries() {
    let (_guard, _dir, disk, spool) = faulty_spool(FsyncPolicy::Always);
    let first = spool.append(b"one".to_vec()).await.unwrap();
    spool.append(b"two".to_vec()).await.unwrap();
    disk.fail(Op::Write(Target::Segment), libc::EIO);
    let reason = unwritable_reason(spool.append(b"refused".to_vec()).await);
    assert_eq!(reason, WriteFault::Io);
    assert!(!spool.is_writable());

    disk.heal();
    let id = append_when_healed(&spool, b"three").await;
    assert!(spool.is_writable());
    // The failed file is not written again: the next entry starts a new segment.
    assert!(id.segment > first.segment);
    let read = payloads(&drain(&spool));
    assert_eq!(
        read,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    spool.close();
}

#[actix_web::test]
async fn eio_on_sync_answers_the_batch_with_an_error_and_never_publishes_it() {
    let (_guard, dir, disk, spool) = faulty_spool(FsyncPolicy::Always);
    spool.append(b"one".to_vec()).await.unwrap();
    disk.fail(Op::Sync(Target::Segment), libc::EIO);
    let reason = unwritable_reason(spool.append(b"not synced".to_vec()).await);
    assert_eq!(reason, WriteFault::Io);
    disk.heal();
    append_when_healed(&spool, b"two").await;
    let expected = vec![b"one".to_vec(), b"two".to_vec()];
    assert_eq!(payloads(&drain(&spool)), expected);
    spool.close();

    // Nor after a restart: the unsynced batch was cut back.
    let reopened = Spool::open(&dir, config(FsyncPolicy::Always)).unwrap();
    assert_eq!(payloads(&drain(&reopened)), expected);
    reopened.close();
}

#[actix_web::test]
async fn read_only_disk_refuses_appends_until_it_is_writable_again() {
    let (_guard, _dir, disk, spool) = faulty_spool(FsyncPolicy::Always);
    spool.append(b"one".to_vec()).await.unwrap();
    for target in [Target::Segment, Target::Reserve, Target::Releases] {
        disk.fail(Op::Create(target), libc::EROFS);
        disk.fail(Op::Write(target), libc::EROFS);
    }
    let reason = unwritable_reason(spool.append(b"refused".to_vec()).await);
    assert_eq!(reason, WriteFault::ReadOnly);
    assert!(!spool.is_writable());
    disk.heal();
    append_when_healed(&spool, b"two").await;
    assert!(spool.is_writable());
    let expected = vec![b"one".to_vec(), b"two".to_vec()];
    assert_eq!(payloads(&drain(&spool)), expected);
    spool.close();
}

#[actix_web::test]
async fn deleted_spool_directory_is_noticed_and_created_again() {
    let (_guard, dir, _disk, spool) = faulty_spool(FsyncPolicy::Always);
    spool
        .append(b"deleted with the directory".to_vec())
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let reason = unwritable_reason(spool.append(b"refused".to_vec()).await);
    assert_eq!(reason, WriteFault::Missing);
    assert!(!spool.is_writable());

    let id = append_when_healed(&spool, b"after").await;
    assert!(dir.join("reserve").exists(), "the reserve is taken again");
    assert!(segment_path(&dir, id.segment).exists());
    // The deleted entry is given up (counted as lost); reading goes on with the new one.
    let entries = drain(&spool);
    assert_eq!(payloads(&entries), vec![b"after".to_vec()]);
    spool.release(entries[0].0);
    assert_eq!(spool.pending_entries(), 0);
    spool.close();
}

#[actix_web::test]
async fn truncated_active_segment_is_noticed_and_reading_goes_on() {
    let (_guard, dir, _disk, spool) = faulty_spool(FsyncPolicy::Always);
    let mut ids = Vec::new();
    for i in 0..5u8 {
        ids.push(spool.append(vec![i; 10]).await.unwrap());
    }
    // Something cuts the file in the middle of the third record (18 bytes each).
    let path = segment_path(&dir, ids[0].segment);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(45)
        .unwrap();

    let reason = unwritable_reason(spool.append(vec![9; 10]).await);
    assert_eq!(reason, WriteFault::Damaged);
    let id = append_when_healed(&spool, &[5; 10]).await;
    assert!(id.segment > ids[0].segment);

    let entries = drain(&spool);
    let firsts: Vec<u8> = entries.iter().map(|(_, p)| p[0]).collect();
    assert_eq!(
        firsts,
        vec![0, 1, 5],
        "the entries before the cut, then the new one"
    );
    for (id, _) in entries {
        spool.release(id);
    }
    // The three cut off are given up, so nothing is left pending and the segment is deleted.
    assert_eq!(spool.pending_entries(), 0);
    assert!(!path.exists());
    spool.close();
}

#[actix_web::test]
async fn corrupted_record_is_dropped_and_the_others_delivered() {
    let (_guard, dir, _disk, spool) = faulty_spool(FsyncPolicy::Always);
    let mut ids = Vec::new();
    for i in 0..3u8 {
        ids.push(spool.append(vec![i; 10]).await.unwrap());
    }
    // A bit flips in the second record's payload.
    let path = segment_path(&dir, ids[0].segment);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[ids[1].offset as usize + 12] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();

    let entries = drain(&spool);
    let firsts: Vec<u8> = entries.iter().map(|(_, p)| p[0]).collect();
    assert_eq!(firsts, vec![0, 2]);
    // The damaged one is released as dropped; the others wait for delivery.
    assert_eq!(spool.pending_entries(), 2);
    spool.close();
}

#[actix_web::test]
async fn record_corrupted_while_stopped_does_not_cut_off_the_ones_after_it() {
    let (_guard, dir, _disk, spool) = faulty_spool(FsyncPolicy::Always);
    let mut ids = Vec::new();
    for i in 0..4u8 {
        ids.push(spool.append(vec![i; 10]).await.unwrap());
    }
    spool.close();
    let path = segment_path(&dir, ids[0].segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    bytes[ids[1].offset as usize + 12] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();

    let reopened = Spool::open(&dir, config(FsyncPolicy::Always)).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        len as u64,
        "nothing cut off"
    );
    let firsts: Vec<u8> = drain(&reopened).iter().map(|(_, p)| p[0]).collect();
    assert_eq!(firsts, vec![0, 2, 3]);
    assert_eq!(reopened.pending_entries(), 3);
    reopened.close();
}
