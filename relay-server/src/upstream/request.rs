//! The request an envelope is forwarded with: URL, headers and (compressed) body.

use std::io::Write;

use relay_core::config::UpstreamCompression;

use crate::managed::RequestMeta;

/// The header lines of a forwarded envelope, besides the body's `Content-Encoding`.
pub fn headers(meta: &RequestMeta, forward_client_ip: bool) -> Vec<(&'static str, String)> {
    let mut auth = format!("Sentry sentry_key={}, sentry_version=7", meta.public_key);
    if let Some(client) = &meta.sdk.client {
        auth.push_str(", sentry_client=");
        auth.push_str(client);
    }
    let mut headers = vec![
        ("x-sentry-auth", auth),
        ("content-type", "application/x-sentry-envelope".to_owned()),
    ];
    if let (true, Some(ip)) = (forward_client_ip, meta.client_ip) {
        headers.push(("x-forwarded-for", ip.to_string()));
    }
    for name in crate::spool::entry::SdkHeaders::FORWARDED {
        if let Some((_, value)) = meta.sdk.headers.iter().find(|(n, _)| n == name) {
            headers.push((name, value.clone()));
        }
    }
    if !headers.iter().any(|(name, _)| *name == "user-agent") {
        headers.push((
            "user-agent",
            concat!("relay/", env!("CARGO_PKG_VERSION")).to_owned(),
        ));
    }
    headers
}

/// The envelope endpoint of project `project_id` under `base` (no trailing slash).
pub fn envelope_url(base: &str, project_id: u64) -> String {
    format!("{base}/api/{project_id}/envelope/")
}

/// Compresses `body`; returns it with its `Content-Encoding` (none when uncompressed).
pub fn compress(
    body: Vec<u8>,
    compression: UpstreamCompression,
) -> std::io::Result<(Vec<u8>, Option<&'static str>)> {
    match compression {
        UpstreamCompression::None => Ok((body, None)),
        // Level 3, zstd's default: most of the ratio for a fraction of the higher levels' CPU.
        UpstreamCompression::Zstd => Ok((zstd::bulk::compress(&body, 3)?, Some("zstd"))),
        UpstreamCompression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            encoder.write_all(&body)?;
            Ok((encoder.finish()?, Some("gzip")))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::spool::entry::SdkHeaders;

    fn meta() -> RequestMeta {
        RequestMeta {
            public_key: "abc123def456abc123def456abc123de".into(),
            client_ip: Some("203.0.113.7".parse().unwrap()),
            sdk: SdkHeaders {
                client: Some("sentry.python/2.75.0".into()),
                headers: vec![
                    ("user-agent".into(), "sentry.python/2.75.0".into()),
                    ("origin".into(), "https://app.example".into()),
                ],
            },
            ..RequestMeta::for_test(42)
        }
    }

    fn value<'a>(headers: &'a [(&str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_sdk_key_client_address_and_headers_go_upstream() {
        let headers = headers(&meta(), true);
        assert_eq!(
            value(&headers, "x-sentry-auth"),
            Some("Sentry sentry_key=abc123def456abc123def456abc123de, sentry_version=7, sentry_client=sentry.python/2.75.0")
        );
        assert_eq!(value(&headers, "x-forwarded-for"), Some("203.0.113.7"));
        assert_eq!(value(&headers, "user-agent"), Some("sentry.python/2.75.0"));
        assert_eq!(value(&headers, "origin"), Some("https://app.example"));
        assert_eq!(value(&headers, "referer"), None);

        let scrubbed = super::headers(&meta(), false);
        assert_eq!(value(&scrubbed, "x-forwarded-for"), None);
        let bare = super::headers(&RequestMeta::for_test(1), true);
        assert!(value(&bare, "user-agent").unwrap().starts_with("relay/"));
        assert_eq!(value(&bare, "x-forwarded-for"), None, "no address known");
    }

    #[test]
    fn bodies_compress_and_decompress_to_the_same_bytes() {
        let body = b"{}\n{\"type\":\"event\"}\n{\"message\":\"hello hello hello\"}\n".repeat(50);
        let (zstd_body, encoding) = compress(body.clone(), UpstreamCompression::Zstd).unwrap();
        assert_eq!(encoding, Some("zstd"));
        assert!(zstd_body.len() < body.len() / 5);
        assert_eq!(zstd::decode_all(&zstd_body[..]).unwrap(), body);
        let (gzip_body, encoding) = compress(body.clone(), UpstreamCompression::Gzip).unwrap();
        assert_eq!(encoding, Some("gzip"));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip_body[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
        assert_eq!(
            compress(body.clone(), UpstreamCompression::None).unwrap(),
            (body, None)
        );
        assert_eq!(
            envelope_url("http://core:3000", 42),
            "http://core:3000/api/42/envelope/"
        );
    }
}
