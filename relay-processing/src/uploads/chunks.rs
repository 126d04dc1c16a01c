//! The chunk upload form: `multipart/form-data` with one file part per chunk, named `file`
//! (raw bytes) or `file_gzip` (gzip-compressed), whose filename is the SHA-1 of the
//! uncompressed chunk.

use bytes::Bytes;

use super::{is_checksum, sha1_hex, UploadError, CHUNK_SIZE, MAX_CHUNKS_PER_REQUEST};
use crate::decode::{decode_bounded_metered, ContentEncoding, DecodeError};

/// One received chunk, its SHA-1 checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The SHA-1 of `data`, lower-case hex.
    pub checksum: String,
    /// The uncompressed bytes, at most [`CHUNK_SIZE`].
    pub data: Vec<u8>,
}

/// Splits a chunk upload body (the boundary from its content type) into checked chunks.
/// Any part that is not a chunk, too many parts, a chunk over [`CHUNK_SIZE`] or a chunk whose
/// bytes do not have its name's SHA-1 refuses the whole request, so nothing of a corrupt
/// upload is kept. `reserve(n)` is asked before the decoded chunks take `n` more bytes of
/// memory (the caller's in-flight budget); `false` refuses with [`UploadError::OverBudget`].
pub fn parse_chunk_form(
    body: Bytes,
    boundary: String,
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<Chunk>, UploadError> {
    // The body is ready at once, so the parser never waits and `block_on` never blocks.
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    futures_executor::block_on(async {
        let mut chunks = Vec::new();
        while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
            if chunks.len() == MAX_CHUNKS_PER_REQUEST {
                return Err(UploadError::TooLarge(format!(
                    "more than {MAX_CHUNKS_PER_REQUEST} chunks in one request"
                )));
            }
            let encoding = match field.name() {
                Some("file") => ContentEncoding::Identity,
                Some("file_gzip") => ContentEncoding::Gzip,
                other => {
                    return Err(UploadError::BadRequest(format!(
                        "unexpected form field {other:?}: chunks are sent as `file` or `file_gzip`"
                    )))
                }
            };
            let name = field.file_name().unwrap_or_default().to_ascii_lowercase();
            if !is_checksum(&name) {
                return Err(UploadError::BadRequest(format!(
                    "a chunk's filename must be its SHA-1 in hex, not {:?}",
                    shorten(&name)
                )));
            }
            let mut raw = Vec::new();
            while let Some(piece) = field.chunk().await.map_err(bad_form)? {
                // Compressed data larger than the chunk bound is refused before decoding.
                if raw.len() + piece.len() > CHUNK_SIZE + 1024 {
                    return Err(too_large_chunk());
                }
                raw.extend_from_slice(&piece);
            }
            chunks.push(check_chunk(name, encoding, &raw, reserve)?);
        }
        if chunks.is_empty() {
            return Err(UploadError::BadRequest("the form holds no chunk".into()));
        }
        Ok(chunks)
    })
}

/// Decodes one chunk (bounded) and checks its SHA-1 against its name.
fn check_chunk(
    checksum: String,
    encoding: ContentEncoding,
    raw: &[u8],
    reserve: &mut dyn FnMut(usize) -> bool,
) -> Result<Chunk, UploadError> {
    let decoded = decode_bounded_metered(encoding, raw, CHUNK_SIZE, reserve);
    let data = decoded.map_err(|error| match error {
        DecodeError::TooLarge { .. } => too_large_chunk(),
        DecodeError::OverBudget => UploadError::OverBudget,
        other => UploadError::BadRequest(format!("chunk {checksum}: {other}")),
    })?;
    let actual = sha1_hex(&data);
    if actual != checksum {
        return Err(UploadError::ChecksumMismatch {
            what: "chunk",
            expected: checksum,
            actual,
        });
    }
    Ok(Chunk { checksum, data })
}

fn too_large_chunk() -> UploadError {
    UploadError::TooLarge(format!("a chunk is larger than {CHUNK_SIZE} bytes"))
}

fn bad_form(error: multer::Error) -> UploadError {
    UploadError::BadRequest(format!("invalid multipart body: {error}"))
}

/// At most 64 characters of client text for an error message.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn form(parts: &[(&str, &str, &[u8])]) -> Bytes {
        let mut body = Vec::new();
        for (field, filename, data) in parts {
            write!(
                body,
                "--XyZ\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .unwrap();
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        body.into()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn plain_and_gzip_chunks_are_checked_by_their_sha1() {
        let a = b"first chunk".as_slice();
        let b = vec![7u8; 100_000];
        let body = form(&[
            ("file", &sha1_hex(a), a),
            ("file_gzip", &sha1_hex(&b).to_uppercase(), &gzip(&b)),
        ]);
        let chunks = parse_chunk_form(body, "XyZ".into(), &mut |_| true).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].data, a);
        assert_eq!(chunks[1].data, b);
        assert_eq!(chunks[1].checksum, sha1_hex(&b));
    }

    #[test]
    fn the_fuzz_seeds_are_accepted_forms() {
        // fuzz/seeds/upload/chunk-form-3: boundary, NUL, a form as sentry-cli sends it.
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/upload/chunk-form-3");
        let data = std::fs::read(seed).unwrap();
        let at = data.iter().position(|&b| b == 0).unwrap();
        let boundary = String::from_utf8(data[..at].to_vec()).unwrap();
        let body = Bytes::copy_from_slice(&data[at + 1..]);
        let chunks = parse_chunk_form(body, boundary, &mut |_| true).unwrap();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[2].data, b"plain chunk");
    }

    #[test]
    fn a_corrupt_chunk_refuses_the_request() {
        let good = b"good".as_slice();
        let named = sha1_hex(b"what it should have been");
        let body = form(&[
            ("file", &sha1_hex(good), good),
            ("file", &named, b"tampered"),
        ]);
        let error = parse_chunk_form(body, "XyZ".into(), &mut |_| true).unwrap_err();
        assert!(
            matches!(&error, UploadError::ChecksumMismatch { expected, .. } if *expected == named),
            "{error}"
        );
        assert!(error.to_string().contains("corrupt"), "{error}");
    }

    #[test]
    fn bounds_and_names_are_enforced() {
        let bomb = gzip(&vec![0u8; CHUNK_SIZE + 1]);
        let error = parse_chunk_form(
            form(&[("file_gzip", &sha1_hex(b"x"), &bomb)]),
            "XyZ".into(),
            &mut |_| true,
        )
        .unwrap_err();
        assert!(matches!(error, UploadError::TooLarge(_)), "{error}");

        let name = sha1_hex(b"x");
        let many: Vec<(&str, &str, &[u8])> = (0..=MAX_CHUNKS_PER_REQUEST)
            .map(|_| ("file", name.as_str(), b"x".as_slice()))
            .collect();
        let error = parse_chunk_form(form(&many), "XyZ".into(), &mut |_| true).unwrap_err();
        assert!(matches!(error, UploadError::TooLarge(_)), "{error}");

        for (field, filename) in [("other", name.as_str()), ("file", "../../etc/passwd")] {
            let error =
                parse_chunk_form(form(&[(field, filename, b"x")]), "XyZ".into(), &mut |_| {
                    true
                })
                .unwrap_err();
            assert!(matches!(error, UploadError::BadRequest(_)), "{error}");
        }
        assert!(parse_chunk_form(form(&[]), "XyZ".into(), &mut |_| true).is_err());

        // the caller's budget refuses the decoded bytes
        let data = vec![1u8; 4096];
        let body = form(&[("file_gzip", &sha1_hex(&data), &gzip(&data))]);
        let mut room = 1000;
        let mut reserve = |n: usize| {
            let fits = n <= room;
            room = room.saturating_sub(n);
            fits
        };
        let error = parse_chunk_form(body, "XyZ".into(), &mut reserve).unwrap_err();
        assert_eq!(error, UploadError::OverBudget);
    }
}
