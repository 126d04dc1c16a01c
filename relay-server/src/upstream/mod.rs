//! Forward mode: how an edge relay sends its spooled envelopes to the upstream.
//!
//! - [`UpstreamClient`]: one keep-alive pool, at most `upstream.max_concurrent` requests at
//!   once; forwards one envelope and gives its verdict;
//! - [`request`]: the URL, headers (the SDK's key, `sentry_client`, `User-Agent`, `Origin`,
//!   `Referer`, the client's address in `X-Forwarded-For`) and the compressed body;
//! - [`answer`]: what the upstream's answer means (release, retry, drop);
//! - [`refusals`]: keys the upstream refused, refused at the edge for a while;
//! - [`scrub`]: `upstream.process: scrub`, filters and PII rules before the envelope leaves.
//!
//! The upstream's rate limits (a `429`, or `X-Sentry-Rate-Limits` on any answer) are kept in
//! the intake's [`RateLimiter`] as active limits: the intake answers the SDKs with them.

pub mod answer;
pub mod refusals;
pub mod request;
pub mod scrub;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use relay_core::config::{UpstreamConfig, UpstreamProcessing};
use tokio::sync::Semaphore;

use self::answer::{Answer, RawAnswer};
use self::refusals::KeyRefusals;
use crate::managed::{ManagedEnvelope, Rejection, Scoping};
use crate::metrics;
use crate::processing::LiveProcessing;
use crate::ratelimit::RateLimiter;

/// Bytes of an answer's body read at most (for its reason); the rest is discarded.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Bodies larger than this are compressed on a blocking thread, not on the forwarder's.
const COMPRESS_INLINE_BYTES: usize = 256 * 1024;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `upstream.ca_file` could not be read or holds no PEM certificate.
    #[error("upstream.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// reqwest refused the settings (e.g. no TLS roots could be loaded).
    #[error("cannot build the upstream HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// What the forwarder shares with the intake: where the upstream's answers are remembered.
#[derive(Clone)]
pub struct UpstreamMemory {
    /// The intake's limiter, to which the upstream's limits are added.
    pub rate_limiter: Arc<RateLimiter>,
    /// Keys the upstream refused.
    pub key_refusals: Arc<KeyRefusals>,
}

impl UpstreamMemory {
    /// The intake's limiter for `config`'s quotas, and an empty refusal cache keeping entries
    /// for `upstream.key_refusal_secs` (a minute when not forwarding; then it stays empty).
    pub fn new(config: &relay_core::Config) -> Self {
        let ttl = config
            .upstream
            .as_ref()
            .map_or(60, |upstream| upstream.key_refusal_secs);
        UpstreamMemory {
            rate_limiter: Arc::new(RateLimiter::new(&config.projects)),
            key_refusals: Arc::new(KeyRefusals::new(Duration::from_secs(ttl))),
        }
    }
}

/// Sends envelopes to the upstream; see the module docs.
pub struct UpstreamClient {
    http: reqwest::Client,
    config: UpstreamConfig,
    permits: Arc<Semaphore>,
    memory: UpstreamMemory,
    /// The projects' filters and PII rules in force (replaced by a reload), with
    /// `process: scrub`.
    scrub: Option<LiveProcessing>,
    /// Whether the last request got an answer other than 5xx: an outage is logged when it
    /// starts and when it ends, not once per retried entry.
    reachable: AtomicBool,
}

impl UpstreamClient {
    /// A client for `config`'s upstream, remembering its answers in `memory`; `processing`
    /// is used when the configuration says `process: scrub`.
    pub fn new(
        config: &UpstreamConfig,
        memory: UpstreamMemory,
        processing: LiveProcessing,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .pool_max_idle_per_host(config.max_concurrent)
            .pool_idle_timeout(Duration::from_secs(60))
            // The upstream's redirect would lose the POST body's meaning; refuse to follow.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &config.ca_file {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(UpstreamClient {
            http: builder.build()?,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            config: config.clone(),
            memory,
            scrub: (config.process == UpstreamProcessing::Scrub).then_some(processing),
            reachable: AtomicBool::new(true),
        })
    }

    /// Forwards the envelope and ends its journey: accepted on 2xx, rejected otherwise (the
    /// spool reader retries, or drops and counts, by the rejection).
    pub async fn forward(&self, mut envelope: ManagedEnvelope) {
        let forward_client_ip = match &self.scrub {
            Some(settings) => match scrub::scrub(&mut envelope, &settings.current()) {
                Ok(scrubbed) => scrubbed.forward_client_ip,
                Err(rejection) => return envelope.reject(rejection),
            },
            None => true,
        };
        let body = envelope.envelope.to_vec();
        let (body, encoding) = match self.compress(body).await {
            Ok(compressed) => compressed,
            Err(error) => {
                return envelope.reject(Rejection::Upstream(format!("compression: {error}")))
            }
        };
        let url = request::envelope_url(self.config.base_url(), envelope.meta.project_id);
        let mut builder = self.http.post(&url).body(body);
        for (name, value) in request::headers(&envelope.meta, forward_client_ip) {
            builder = builder.header(name, value);
        }
        if let Some(encoding) = encoding {
            builder = builder.header("content-encoding", encoding);
        }
        // Closed only if the client is dropped, which ends the forwarder too.
        let Ok(_permit) = self.permits.acquire().await else {
            return envelope.reject(Rejection::Internal("upstream client stopped"));
        };
        let started = Instant::now();
        let answer = send(builder).await;
        let seconds = started.elapsed().as_secs_f64();
        match answer {
            Ok(answer) => {
                metrics::count_upstream_request(answer.metric_label(), seconds);
                match &answer {
                    Answer::Failed { status, reason } => {
                        self.note_outage(&format!("{status}: {reason}"))
                    }
                    _ => self.note_answer(),
                }
                self.conclude(envelope, answer);
            }
            Err(error) => {
                metrics::count_upstream_request("error", seconds);
                self.note_outage(&error);
                envelope.reject(Rejection::Upstream(error));
            }
        }
    }

    /// Logs the start of an outage (once; the entries are retried meanwhile).
    fn note_outage(&self, error: &str) {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                upstream = self.config.base_url(),
                %error,
                "upstream unavailable; entries stay in the spool and are retried with backoff"
            );
        }
    }

    /// Logs the end of an outage.
    fn note_answer(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(
                upstream = self.config.base_url(),
                "upstream answering again"
            );
        }
    }

    async fn compress(&self, body: Vec<u8>) -> std::io::Result<(Vec<u8>, Option<&'static str>)> {
        let compression = self.config.compression;
        if body.len() <= COMPRESS_INLINE_BYTES {
            return request::compress(body, compression);
        }
        actix_web::rt::task::spawn_blocking(move || request::compress(body, compression))
            .await
            .map_err(std::io::Error::other)?
    }

    /// Remembers what the answer says for later requests and gives the envelope its verdict.
    fn conclude(&self, envelope: ManagedEnvelope, answer: Answer) {
        let scoping = Scoping {
            project_id: envelope.meta.project_id,
            public_key: envelope.meta.public_key.clone(),
            organization: None,
            client_ip: None,
        };
        match answer {
            Answer::Accepted { limits } => {
                for limit in limits {
                    self.memory
                        .rate_limiter
                        .remember_upstream_limit(&scoping, limit);
                }
                envelope.accept();
            }
            Answer::RateLimited { limits, reason } => {
                for limit in limits {
                    self.memory
                        .rate_limiter
                        .remember_upstream_limit(&scoping, limit);
                }
                envelope.reject(Rejection::RateLimited(reason));
            }
            Answer::KeyRefused { status, reason } => {
                self.memory.key_refusals.remember(
                    scoping.project_id,
                    &scoping.public_key,
                    status,
                    &reason,
                    Instant::now(),
                );
                envelope.reject(Rejection::UpstreamRefused(format!("{status}: {reason}")));
            }
            Answer::Refused { status, reason } => {
                envelope.reject(Rejection::UpstreamRefused(format!("{status}: {reason}")));
            }
            Answer::Failed { status, reason } => {
                envelope.reject(Rejection::Upstream(format!("{status}: {reason}")));
            }
        }
    }
}

/// Sends the request and reads the answer (its body up to [`MAX_ANSWER_BYTES`], so that the
/// connection goes back to the pool); an error is a failure to get an answer at all.
async fn send(builder: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut response = builder.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let rate_limits = header("x-sentry-rate-limits");
    let retry_after = header("retry-after");
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() < MAX_ANSWER_BYTES {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - body.len())]);
        }
    }
    let raw = RawAnswer {
        status,
        rate_limits: rate_limits.as_deref(),
        retry_after: retry_after.as_deref(),
        body: &body,
    };
    Ok(Answer::classify(&raw, Instant::now()))
}

/// reqwest's error with its causes (the top level alone says only "error sending request").
fn describe(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let error = |reason: String| ClientError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no PEM certificate in the file".to_owned()));
    }
    Ok(certificates)
}
