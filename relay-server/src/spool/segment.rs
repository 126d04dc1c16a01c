//! Segment files: the on-disk record format of the spool.
//!
//! A segment is a sequence of records, each `[len: u32 LE][crc32: u32 LE][payload: len bytes]`.
//! Segments are named by a sequence number (`00000000000000000042.seg`); next to each lives an
//! `.acks` file listing the offsets of released records (u64 LE each), so a restart does not
//! replay what Kafka already has. Losing an `.acks` file only causes duplicates.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bytes before each record's payload.
pub const RECORD_HEADER_LEN: u64 = 8;

/// No record is larger than this; a larger length field means corruption.
pub const MAX_RECORD_LEN: u32 = 512 * 1024 * 1024;

/// The path of segment `seq` in `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

/// The path of the release list of segment `seq` in `dir`.
pub fn acks_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.acks"))
}

/// Sequence numbers of the segments in `dir`, ascending.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(seq) = name.strip_suffix(".seg").and_then(|s| s.parse().ok()) {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

/// Appends one record to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len =
        u32::try_from(payload.len()).expect("spool records are bounded by the envelope limit");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// One step of reading a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// A valid record starting at `offset`.
    Record {
        /// Where the record starts.
        offset: u64,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Nothing more up to the given end.
    End,
    /// The bytes at `offset` are not a valid record: a write torn by a crash, or corruption.
    Torn {
        /// Where the invalid record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
        /// Where the next record starts, when only the payload is damaged (its length is
        /// plausible and it fits): the reader has moved there and can go on.
        skip_to: Option<u64>,
    },
}

/// Reads the records of one segment, sequentially.
pub struct SegmentReader {
    file: BufReader<File>,
    offset: u64,
}

impl SegmentReader {
    /// Opens `path` at `offset`.
    pub fn open(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentReader {
            file: BufReader::with_capacity(256 * 1024, file),
            offset,
        })
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record if it ends at or before `end` (the committed length).
    pub fn next(&mut self, end: u64) -> io::Result<ReadStep> {
        if self.offset + RECORD_HEADER_LEN > end {
            return Ok(if self.offset == end {
                ReadStep::End
            } else {
                self.torn("incomplete record header")
            });
        }
        let mut header = [0u8; RECORD_HEADER_LEN as usize];
        if let Err(e) = self.file.read_exact(&mut header) {
            return self.unexpected_eof(e, "record header");
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_RECORD_LEN {
            return Ok(self.torn(&format!("record length {len} is impossible")));
        }
        if self.offset + RECORD_HEADER_LEN + u64::from(len) > end {
            return Ok(self.torn("record runs past the end of the segment"));
        }
        let mut payload = vec![0u8; len as usize];
        if let Err(e) = self.file.read_exact(&mut payload) {
            return self.unexpected_eof(e, "record payload");
        }
        if crc32fast::hash(&payload) != crc {
            let offset = self.offset;
            self.offset += RECORD_HEADER_LEN + u64::from(len);
            return Ok(ReadStep::Torn {
                offset,
                reason: "checksum mismatch".to_owned(),
                skip_to: Some(self.offset),
            });
        }
        let offset = self.offset;
        self.offset += RECORD_HEADER_LEN + u64::from(len);
        Ok(ReadStep::Record { offset, payload })
    }

    fn torn(&self, reason: &str) -> ReadStep {
        ReadStep::Torn {
            offset: self.offset,
            reason: reason.to_owned(),
            skip_to: None,
        }
    }

    fn unexpected_eof(&self, error: io::Error, what: &str) -> io::Result<ReadStep> {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            Ok(self.torn(&format!("file ends inside the {what}")))
        } else {
            Err(error)
        }
    }
}

/// Reads the released offsets of a segment (a torn last entry is ignored).
pub fn read_acks(path: &Path) -> io::Result<Vec<u64>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory removed when the guard drops, even when the test fails.
    fn temp_dir() -> (tempfile::TempDir, PathBuf) {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path().to_path_buf();
        (guard, dir)
    }

    #[test]
    fn records_round_trip_and_torn_tails_are_detected() {
        let (_guard, dir) = temp_dir();
        let path = segment_path(&dir, 7);
        let mut bytes = Vec::new();
        encode_record(b"first", &mut bytes);
        encode_record(b"second record", &mut bytes);
        let good_len = bytes.len() as u64;
        encode_record(b"torn by a crash", &mut bytes);
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();

        let mut reader = SegmentReader::open(&path, 0).unwrap();
        let end = bytes.len() as u64;
        assert_eq!(
            reader.next(end).unwrap(),
            ReadStep::Record {
                offset: 0,
                payload: b"first".to_vec()
            }
        );
        assert_eq!(
            reader.next(end).unwrap(),
            ReadStep::Record {
                offset: 13,
                payload: b"second record".to_vec()
            }
        );
        assert!(
            matches!(reader.next(end).unwrap(), ReadStep::Torn { offset, .. } if offset == good_len)
        );

        // Up to the committed end the same file reads cleanly.
        let mut reader = SegmentReader::open(&path, 0).unwrap();
        reader.next(good_len).unwrap();
        reader.next(good_len).unwrap();
        assert_eq!(reader.next(good_len).unwrap(), ReadStep::End);
        assert_eq!(list_segments(&dir).unwrap(), vec![7]);
    }

    #[test]
    fn flipped_bits_fail_the_checksum() {
        let (_guard, dir) = temp_dir();
        let path = segment_path(&dir, 1);
        let mut bytes = Vec::new();
        encode_record(b"payload", &mut bytes);
        bytes[10] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let step = SegmentReader::open(&path, 0)
            .unwrap()
            .next(bytes.len() as u64)
            .unwrap();
        assert!(matches!(step, ReadStep::Torn { reason, .. } if reason == "checksum mismatch"));
    }

    #[test]
    fn acks_round_trip() {
        let (_guard, dir) = temp_dir();
        let path = acks_path(&dir, 3);
        assert!(read_acks(&path).unwrap().is_empty());
        let mut bytes = Vec::new();
        for offset in [0u64, 4096] {
            bytes.extend_from_slice(&offset.to_le_bytes());
        }
        bytes.extend_from_slice(&[1, 2, 3]); // a torn last entry is ignored
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(read_acks(&path).unwrap(), vec![0, 4096]);
    }
}
