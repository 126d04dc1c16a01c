//! Bounded decompression.
//!
//! Every decoder writes into a buffer that may not grow past a limit: a decompression bomb
//! fails with [`DecodeError::TooLarge`] after producing at most `limit + 1` bytes, so memory
//! per request stays bounded no matter what the client sends.

use std::io::{self, Read};

/// A `Content-Encoding` the intake understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No compression.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// zlib-wrapped deflate (RFC 1950), or raw deflate as some clients send it.
    Deflate,
    /// Brotli.
    Brotli,
    /// Zstandard.
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The `Content-Encoding` is not one we decode.
    #[error("unsupported content encoding {0:?}; use identity, gzip, deflate, br or zstd")]
    Unsupported(String),
    /// Decompressing would exceed the limit.
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller's budget could not cover the output as it grew (see
    /// [`decode_bounded_metered`]).
    #[error("no room for the decompressed body now; retry later")]
    OverBudget,
    /// The compressed data is corrupt.
    #[error("body is not valid {encoding}: {source}")]
    Corrupt {
        /// The encoding that failed.
        encoding: &'static str,
        /// The decoder's error.
        source: io::Error,
    },
}

impl ContentEncoding {
    /// Parses a `Content-Encoding` header value (case-insensitive; absent means identity).
    pub fn from_header(value: Option<&str>) -> Result<Self, DecodeError> {
        let value = value.map(str::trim).unwrap_or("");
        Ok(match value.to_ascii_lowercase().as_str() {
            "" | "identity" => ContentEncoding::Identity,
            "gzip" | "x-gzip" => ContentEncoding::Gzip,
            "deflate" => ContentEncoding::Deflate,
            "br" => ContentEncoding::Brotli,
            "zstd" => ContentEncoding::Zstd,
            _ => return Err(DecodeError::Unsupported(value.to_owned())),
        })
    }

    fn name(self) -> &'static str {
        match self {
            ContentEncoding::Identity => "identity",
            ContentEncoding::Gzip => "gzip",
            ContentEncoding::Deflate => "deflate",
            ContentEncoding::Brotli => "br",
            ContentEncoding::Zstd => "zstd",
        }
    }
}

/// Decodes `body` with `encoding`, failing once the output would exceed `limit` bytes.
pub fn decode_bounded(
    encoding: ContentEncoding,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeError> {
    decode_bounded_metered(encoding, body, limit, &mut |_| true)
}

/// [`decode_bounded`], asking `reserve(n)` before the output takes `n` more bytes of memory;
/// a `false` stops decoding with [`DecodeError::OverBudget`]. The caller's budget then covers
/// the output as it grows, not only after it is complete.
pub fn decode_bounded_metered(
    encoding: ContentEncoding,
    body: &[u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let result = match encoding {
        ContentEncoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge { limit });
            }
            if !reserve(body.len()) {
                return Err(DecodeError::OverBudget);
            }
            return Ok(body.to_vec());
        }
        ContentEncoding::Gzip => {
            read_bounded(flate2::bufread::MultiGzDecoder::new(body), limit, reserve)
        }
        ContentEncoding::Deflate => decode_deflate(body, limit, reserve),
        ContentEncoding::Brotli => {
            read_bounded(brotli::Decompressor::new(body, 64 * 1024), limit, reserve)
        }
        ContentEncoding::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(body).map_err(|source| DecodeError::Corrupt {
                    encoding: "zstd",
                    source,
                })?;
            read_bounded(decoder, limit, reserve)
        }
    };
    result.map_err(|e| e.with_encoding(encoding.name()))
}

/// HTTP's "deflate" is meant to be zlib-wrapped, but some clients send raw deflate.
fn decode_deflate(
    body: &[u8],
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let zlib_header = body.len() >= 2
        && body[0] & 0x0f == 8
        && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
    if zlib_header {
        read_bounded(flate2::bufread::ZlibDecoder::new(body), limit, reserve)
    } else {
        read_bounded(flate2::bufread::DeflateDecoder::new(body), limit, reserve)
    }
}

/// A compression container recognised by its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// gzip: `1f 8b`.
    Gzip,
    /// Zstandard: `28 b5 2f fd`.
    Zstd,
    /// xz: `fd 37 7a 58 5a 00`.
    Xz,
    /// bzip2: `BZh`.
    Bzip2,
}

impl Container {
    /// Recognises a container from the first bytes of `data`.
    pub fn sniff(data: &[u8]) -> Option<Self> {
        if data.starts_with(&[0x1f, 0x8b]) {
            Some(Container::Gzip)
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Container::Zstd)
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Some(Container::Xz)
        } else if data.starts_with(b"BZh") {
            Some(Container::Bzip2)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Container::Gzip => "gzip",
            Container::Zstd => "zstd",
            Container::Xz => "xz",
            Container::Bzip2 => "bzip2",
        }
    }

    /// Unwraps `data`, failing once the output would exceed `limit` bytes.
    pub fn decode_bounded(self, data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let unmetered = &mut |_| true;
        let result = match self {
            Container::Gzip => {
                read_bounded(flate2::bufread::MultiGzDecoder::new(data), limit, unmetered)
            }
            Container::Zstd => zstd::stream::read::Decoder::new(data)
                .map_err(|source| DecodeError::Corrupt {
                    encoding: "zstd",
                    source,
                })
                .and_then(|decoder| read_bounded(decoder, limit, unmetered)),
            Container::Xz => read_bounded(
                xz2::read::XzDecoder::new_multi_decoder(data),
                limit,
                unmetered,
            ),
            Container::Bzip2 => {
                read_bounded(bzip2::read::MultiBzDecoder::new(data), limit, unmetered)
            }
        };
        result.map_err(|e| e.with_encoding(self.name()))
    }
}

impl DecodeError {
    /// Names the encoding in corruption errors raised by the shared reader.
    fn with_encoding(self, name: &'static str) -> Self {
        match self {
            DecodeError::Corrupt { source, .. } => DecodeError::Corrupt {
                encoding: name,
                source,
            },
            other => other,
        }
    }
}

/// Reads `reader` to the end into a buffer of at most `limit` bytes.
///
/// The gzip, zlib and deflate decoders read the body slice directly (`flate2::bufread`): the
/// `read` variants put a 32 KiB buffer in front, which cost more than inflating a typical
/// event.
///
/// `reserve` is asked before each chunk is allocated, and for the joined output when there
/// is more than one chunk.
fn read_bounded(
    reader: impl Read,
    limit: usize,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    // Reading one byte past the limit tells "exactly at the limit" from "over it".
    let mut reader = reader.take(limit as u64 + 1);
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut total = 0usize;
    let mut chunk_size = FIRST_CHUNK;
    loop {
        if !reserve(chunk_size) {
            return Err(DecodeError::OverBudget);
        }
        let mut chunk = Vec::with_capacity(chunk_size);
        let read = (&mut reader)
            .take(chunk_size as u64)
            .read_to_end(&mut chunk)
            .map_err(|source| DecodeError::Corrupt {
                encoding: "",
                source,
            })?;
        total += read;
        if total > limit {
            return Err(DecodeError::TooLarge { limit });
        }
        let full = read == chunk_size;
        chunks.push(chunk);
        if !full {
            break;
        }
        chunk_size = (chunk_size * 2).min(MAX_CHUNK);
    }
    if chunks.len() > 1 && !reserve(total) {
        return Err(DecodeError::OverBudget);
    }
    Ok(join_chunks(chunks, total))
}

/// The first chunk [`read_bounded`] fills: most request bodies fit in it, and are returned
/// without a copy.
const FIRST_CHUNK: usize = 64 * 1024;
/// The largest chunk: output grows in chunks of at most this size instead of one doubling
/// buffer, so a decompression bomb cut off at the limit never holds more than the limit plus
/// one chunk (a growing `Vec` briefly holds its old and new buffers: 1.5× the limit).
const MAX_CHUNK: usize = 8 * 1024 * 1024;

fn join_chunks(mut chunks: Vec<Vec<u8>>, total: usize) -> Vec<u8> {
    if chunks.len() == 1 {
        let mut only = chunks.pop().unwrap_or_default();
        // A 3 kB event should not hold on to 64 KiB while it waits for the spool.
        if only.capacity() > 2 * only.len() {
            only.shrink_to_fit();
        }
        return only;
    }
    let mut out = Vec::with_capacity(total);
    for chunk in chunks {
        out.extend_from_slice(&chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"{\"message\":\"hello\"}".repeat(100);
        let zlib = {
            let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let raw_deflate = {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let br = {
            let mut out = Vec::new();
            brotli::CompressorWriter::new(&mut out, 4096, 5, 22)
                .write_all(&data)
                .unwrap();
            out
        };
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        for (encoding, body) in [
            ("", data.clone()),
            ("gzip", gzip(&data)),
            ("deflate", zlib),
            ("deflate", raw_deflate),
            ("br", br),
            ("zstd", zst),
        ] {
            let enc = ContentEncoding::from_header(Some(encoding)).unwrap();
            assert_eq!(
                decode_bounded(enc, &body, data.len()).unwrap(),
                data,
                "{encoding}"
            );
        }
    }

    #[test]
    fn bomb_stops_at_limit() {
        // 64 MiB of zeros compress to ~64 KiB; a 1 MiB limit must stop it.
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..64 {
            enc.write_all(&zeros).unwrap();
        }
        let bomb = enc.finish().unwrap();
        let err = decode_bounded(ContentEncoding::Gzip, &bomb, 1024 * 1024).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { limit: 1048576 }));
    }

    /// Output crosses chunk boundaries (64 KiB, then doubling up to 8 MiB) intact, and the
    /// limit holds exactly at and around them.
    #[test]
    fn chunked_output_is_intact_around_chunk_boundaries() {
        let sizes = [
            0,
            1,
            FIRST_CHUNK - 1,
            FIRST_CHUNK,
            FIRST_CHUNK + 1,
            3 * FIRST_CHUNK,
            3 * FIRST_CHUNK + 7,
            MAX_CHUNK * 2 + 5,
        ];
        for size in sizes {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let body = gzip(&data);
            let out = decode_bounded(ContentEncoding::Gzip, &body, size).unwrap();
            assert!(out == data, "{size} bytes came back changed");
            if size > 0 {
                assert!(matches!(
                    decode_bounded(ContentEncoding::Gzip, &body, size - 1),
                    Err(DecodeError::TooLarge { .. })
                ));
            }
        }
    }

    #[test]
    fn limit_is_inclusive() {
        let data = vec![7u8; 1000];
        assert!(decode_bounded(ContentEncoding::Gzip, &gzip(&data), 1000).is_ok());
        assert!(decode_bounded(ContentEncoding::Gzip, &gzip(&data), 999).is_err());
        assert!(decode_bounded(ContentEncoding::Identity, &data, 999).is_err());
    }

    #[test]
    fn corrupt_and_unsupported() {
        let err = decode_bounded(ContentEncoding::Gzip, b"\x1f\x8bnot really", 100).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
        assert!(ContentEncoding::from_header(Some("compress")).is_err());
    }

    #[test]
    fn containers_are_sniffed_and_unwrapped() {
        let data = b"MDMP and more".to_vec();
        let xz = {
            let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let bz = {
            let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        for (expected, wrapped) in [
            (Container::Gzip, gzip(&data)),
            (Container::Zstd, zstd::encode_all(&data[..], 1).unwrap()),
            (Container::Xz, xz),
            (Container::Bzip2, bz),
        ] {
            let container = Container::sniff(&wrapped).unwrap();
            assert_eq!(container, expected);
            assert_eq!(container.decode_bounded(&wrapped, 100).unwrap(), data);
            assert!(container.decode_bounded(&wrapped, 5).is_err());
        }
        assert_eq!(Container::sniff(b"MDMP"), None);
    }

    #[test]
    fn metered_decoding_asks_before_it_grows_and_stops_when_refused() {
        let data = vec![b'x'; 1 << 20];
        let body = gzip(&data);
        let mut asked = 0;
        let out = decode_bounded_metered(ContentEncoding::Gzip, &body, 2 << 20, &mut |n| {
            asked += n;
            true
        })
        .unwrap();
        assert_eq!(out, data);
        assert!(asked >= data.len(), "asked for {asked} bytes only");

        // Room for the first 64 KiB chunk only: refused before the output grows past it.
        let mut room = FIRST_CHUNK;
        let refused = decode_bounded_metered(ContentEncoding::Gzip, &body, 2 << 20, &mut |n| {
            let fits = n <= room;
            room = room.saturating_sub(n);
            fits
        });
        assert!(matches!(refused, Err(DecodeError::OverBudget)));
        let identity =
            decode_bounded_metered(ContentEncoding::Identity, &data, 2 << 20, &mut |_| false);
        assert!(matches!(identity, Err(DecodeError::OverBudget)));
    }
}
