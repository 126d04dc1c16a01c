use std::path::PathBuf;
use std::time::{Duration, Instant};

use relay_core::config::{FsyncPolicy, SpoolConfig};

use super::segment::{list_segments, segment_path};
use super::*;

/// A directory removed when the guard drops, even when the test fails.
fn temp_dir() -> (tempfile::TempDir, PathBuf) {
    let guard = tempfile::tempdir().unwrap();
    let dir = guard.path().to_path_buf();
    (guard, dir)
}

fn config(max_disk_bytes: u64, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig {
        max_disk_bytes,
        segment_bytes,
        fsync: FsyncPolicy::Always,
        ..SpoolConfig::default()
    }
}

fn drain(cursor: &mut SpoolCursor) -> Vec<(EntryId, Vec<u8>)> {
    let mut entries = Vec::new();
    while let Some(entry) = cursor.next_entry().unwrap() {
        entries.push(entry);
    }
    entries
}

#[actix_web::test]
async fn appended_entries_are_read_in_order_and_released_segments_deleted() {
    let (_guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(1 << 20, 100)).unwrap();
    let mut ids = Vec::new();
    for i in 0..10u8 {
        ids.push(spool.append(vec![i; 40]).await.unwrap());
    }
    let entries = drain(&mut spool.reader());
    assert_eq!(entries.len(), 10);
    for (i, (id, payload)) in entries.iter().enumerate() {
        assert_eq!(*id, ids[i]);
        assert_eq!(payload, &vec![i as u8; 40]);
    }
    // 48-byte records in 100-byte segments: several segments were sealed.
    assert!(list_segments(&dir).unwrap().len() >= 4);
    assert_eq!(spool.pending_entries(), 10);

    for id in &ids {
        spool.release(*id);
    }
    assert_eq!(spool.pending_entries(), 0);
    // Only the active segment is left.
    assert_eq!(list_segments(&dir).unwrap().len(), 1);
    spool.close();
}

#[actix_web::test]
async fn segments_released_around_their_sealing_are_deleted() {
    let (_guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(1 << 20, 100)).unwrap();
    // A 100-byte record fills its segment: the writer seals it right after answering.
    // Sealed, then released: the release deletes it.
    let id = spool.append(vec![1; 92]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !spool.lock().segments[&id.segment].sealed && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    spool.release(id);
    assert_eq!(list_segments(&dir).unwrap(), vec![id.segment + 1]);
    // Released right after the append, mostly before the writer seals the segment: the
    // writer deletes it when it seals it.
    for i in 0..20u8 {
        let id = spool.append(vec![i; 92]).await.unwrap();
        spool.release(id);
    }
    let left = wait_for_segments(&dir, |segments| segments.len() == 1).await;
    assert_eq!(left.len(), 1, "only the active segment is left: {left:?}");
    assert_eq!(spool.pending_entries(), 0);
    spool.close();
}

/// The spool's segments once `done` holds for them, or after 5 s.
async fn wait_for_segments(dir: &std::path::Path, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let segments = list_segments(dir).unwrap();
        if done(&segments) || Instant::now() > deadline {
            return segments;
        }
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn quota_refuses_appends_until_space_is_freed() {
    let (_guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(500, 100)).unwrap();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        match spool.append(vec![7; 92]).await {
            Ok(id) => accepted.push(id),
            Err(AppendError::Full(500)) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        accepted.len(),
        5,
        "five 100-byte records fit a 500-byte quota"
    );
    assert_eq!(refused, 15);
    assert!(spool.is_full());

    for id in accepted {
        spool.release(id);
    }
    assert!(!spool.is_full());
    spool
        .append(vec![7; 92])
        .await
        .expect("room again after releases");
    spool.close();
}

/// A spool in a new directory with `count` entries appended: entry `i` is ten bytes `i`.
async fn spool_with_entries(count: u8) -> (tempfile::TempDir, PathBuf, Arc<Spool>, Vec<EntryId>) {
    let (guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(1 << 20, 1 << 20)).unwrap();
    let mut ids = Vec::new();
    for i in 0..count {
        ids.push(spool.append(vec![i; 10]).await.unwrap());
    }
    (guard, dir, spool, ids)
}

/// The first byte of every entry `spool` reads, in order.
fn first_bytes(spool: &Arc<Spool>) -> Vec<u8> {
    drain(&mut spool.reader())
        .into_iter()
        .map(|(_, p)| p[0])
        .collect()
}

#[actix_web::test]
async fn restart_replays_unreleased_entries_only() {
    let (_guard, dir, spool, ids) = spool_with_entries(6).await;
    spool.release(ids[0]);
    spool.release(ids[3]);
    // Still open after `close`: the release records are written by `close`, not by a drop.
    spool.close();

    let reopened = Spool::open(&dir, config(1 << 20, 1 << 20)).unwrap();
    assert_eq!(reopened.pending_entries(), 4);
    assert_eq!(first_bytes(&reopened), vec![1, 2, 4, 5]);

    // New appends after a restart come after the replayed ones.
    reopened.append(vec![9; 10]).await.unwrap();
    assert_eq!(first_bytes(&reopened), vec![1, 2, 4, 5, 9]);
    reopened.close();
    drop(spool);
}

#[actix_web::test]
async fn written_releases_survive_a_crash() {
    let (_guard, dir, spool, ids) = spool_with_entries(4).await;
    spool.release(ids[1]);
    spool.release(ids[2]);
    // What a spool reader does when it has caught up; then the process dies without `close`
    // (the open spool is left as it is while a second one recovers the directory).
    spool.write_releases();

    let recovered = Spool::open(&dir, config(1 << 20, 1 << 20)).unwrap();
    assert_eq!(first_bytes(&recovered), vec![0, 3]);
    recovered.close();
    spool.close();
}

#[actix_web::test]
async fn torn_last_record_is_cut_off_on_restart() {
    let (_guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(1 << 20, 1 << 20)).unwrap();
    let first = spool.append(b"kept".to_vec()).await.unwrap();
    spool.append(b"also kept".to_vec()).await.unwrap();
    spool.close();
    drop(spool);

    // A crash in the middle of a write leaves half a record behind.
    let path = segment_path(&dir, first.segment);
    let mut bytes = std::fs::read(&path).unwrap();
    let intact = bytes.len() as u64;
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2]);
    std::fs::write(&path, bytes).unwrap();

    let reopened = Spool::open(&dir, config(1 << 20, 1 << 20)).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), intact);
    let replayed: Vec<Vec<u8>> = drain(&mut reopened.reader())
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(replayed, vec![b"kept".to_vec(), b"also kept".to_vec()]);
    reopened.close();
}

#[actix_web::test]
async fn reader_follows_the_writer() {
    let (_guard, dir) = temp_dir();
    let spool = Spool::open(&dir, config(1 << 20, 64)).unwrap();
    let mut cursor = spool.reader();
    let mut committed = spool.committed();
    assert!(cursor.next_entry().unwrap().is_none());
    for round in 0..5u8 {
        spool.append(vec![round; 30]).await.unwrap();
        committed.changed().await.unwrap();
        let (_, payload) = cursor.next_entry().unwrap().expect("the new entry");
        assert_eq!(payload[0], round);
        assert!(cursor.next_entry().unwrap().is_none());
    }
    spool.close();
}
