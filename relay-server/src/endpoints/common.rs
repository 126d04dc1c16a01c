//! Steps shared by the intake endpoints: authentication, item checks, quotas, and appending
//! the envelope to the spool (body reading and decoding: [`super::body`]).

use std::net::IpAddr;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use chrono::Utc;
use relay_core::{Auth, Envelope, EventId};
use relay_processing::intake;
use serde_json::json;

use super::budget::{Charge, CHUNK_WAIT};
use super::error::ApiError;
use super::error::RATE_LIMITS_HEADER;
use super::quotas;
use crate::managed::Scoping;
use crate::projects::{is_well_formed_key, AccessError};
use crate::spool::entry::{self, EntryMeta, SdkHeaders};
use crate::state::RequestState;

/// Credentials from the `X-Sentry-Auth` or `Authorization` header or the query string.
pub fn request_auth(req: &HttpRequest) -> Result<Option<Auth>, ApiError> {
    let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    Ok(intake::auth::request_auth(header, req.query_string())?)
}

/// The public key the request itself carries (header or query string), if any.
pub fn request_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    Ok(request_auth(req)?.map(|auth| auth.public_key))
}

/// The public key from an envelope's `dsn` header, when the request itself carried none.
pub fn envelope_dsn_key(envelope: &Envelope) -> Result<Option<String>, ApiError> {
    Ok(intake::auth::envelope_dsn_key(envelope)?)
}

/// Checks that `public_key` (if any) may send to `project_id`, and returns it.
pub fn authorize(
    state: &RequestState,
    project_id: u64,
    public_key: Option<String>,
) -> Result<String, ApiError> {
    let public_key = public_key.ok_or(AccessError::MissingKey)?;
    state
        .key_refusals
        .check(project_id, &public_key, Instant::now())?;
    match state.settings.projects.check(project_id, &public_key) {
        Ok(()) => Ok(public_key),
        // Forward mode may leave the decision to the upstream (`accept_unknown_keys`); its
        // refusals come back through the key refusals above.
        Err(AccessError::UnknownKey(_))
            if accepts_unknown_keys(state) && is_well_formed_key(&public_key) =>
        {
            Ok(public_key)
        }
        Err(error) => Err(error.into()),
    }
}

fn accepts_unknown_keys(state: &RequestState) -> bool {
    state
        .settings
        .config
        .upstream
        .as_ref()
        .is_some_and(|upstream| upstream.accept_unknown_keys)
}

/// What the intake did with an accepted request.
pub struct Accepted {
    /// The event id answered to the client.
    pub event_id: Option<EventId>,
    /// `X-Sentry-Rate-Limits` when some items were limited.
    pub rate_limits: Option<String>,
}

impl Accepted {
    /// `200 {"id": ...}` (or `{}`), with `X-Sentry-Rate-Limits` when items were limited.
    pub fn json_response(&self) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        if let Some(rate_limits) = &self.rate_limits {
            response.insert_header((RATE_LIMITS_HEADER, rate_limits.as_str()));
        }
        match self.event_id {
            Some(id) => response.json(json!({ "id": id })),
            None => response.json(json!({})),
        }
    }
}

/// The client's IP address, for the per-IP limit, IP filters and the spool record: the peer,
/// or, when the peer is one of `limits.trusted_proxies`, the address it forwards for.
pub fn client_ip(state: &RequestState, req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = &state.settings.config.limits.trusted_proxies;
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok());
    Some(forwarded_client(forwarded, trusted).unwrap_or(peer))
}

/// The client named by `X-Forwarded-For` values (in header order): the rightmost address
/// that is not a trusted proxy, since each proxy appends the address it received from. None
/// when the header names no address, or only trusted ones.
fn forwarded_client<'a>(
    values: impl Iterator<Item = &'a str>,
    trusted: &relay_core::config::IpFilterList,
) -> Option<IpAddr> {
    let addresses: Vec<IpAddr> = values
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        // A malformed header is the client's text: trust none of it.
        .ok()?;
    addresses
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(*ip))
}

/// Authorizes the key and refuses a sender under a limit covering everything.
pub fn admit_sender(
    state: &RequestState,
    req: &HttpRequest,
    project_id: u64,
    public_key: Option<String>,
) -> Result<Scoping, ApiError> {
    let public_key = authorize(state, project_id, public_key)?;
    let scoping = quotas::scoping(state, project_id, &public_key, client_ip(state, req));
    quotas::refuse_if_fully_limited(state, &scoping)?;
    Ok(scoping)
}

/// Room for a spool record's metadata line, charged with the envelope bytes.
const META_BYTES: usize = 512;

/// Checks the envelope, counts its client reports, applies quotas and spools what is left.
///
/// `original` is the envelope's wire form, spooled as is when no item was removed. `charge`
/// holds the request's bytes: the spool record is charged before it is built (it is a second
/// copy of the envelope for a moment), then only the record stays charged until it is
/// written.
pub async fn accept(
    state: &RequestState,
    req: &HttpRequest,
    scoping: &Scoping,
    mut envelope: Envelope,
    original: Option<Bytes>,
    charge: &mut Charge,
) -> Result<Accepted, ApiError> {
    let event_id = intake::items::check_items(&envelope, &state.settings.config.limits)?;
    quotas::track_client_reports(state, scoping, &envelope);
    let rate_limits = quotas::enforce_quotas(state, scoping, &mut envelope).await?;
    let mut meta = entry_meta(scoping, event_id);
    if state.settings.config.forwards() {
        meta.sdk = sdk_headers(req);
    }
    let record = match original {
        Some(original) if rate_limits.is_none() => {
            charge.grow(original.len() + META_BYTES, CHUNK_WAIT).await?;
            entry::encode(&meta, &original)
        }
        _ => {
            let size = envelope.wire_size_hint() + META_BYTES;
            charge.grow(size, CHUNK_WAIT).await?;
            entry::encode_envelope(&meta, &envelope)
        }
    };
    // The envelope (and the body it points into) is gone: only the record is held now.
    drop(envelope);
    charge.shrink_to(record.capacity());
    spool(state, record).await?;
    Ok(Accepted {
        event_id,
        rate_limits,
    })
}

fn entry_meta(scoping: &Scoping, event_id: Option<EventId>) -> EntryMeta {
    EntryMeta {
        project_id: scoping.project_id,
        public_key: scoping.public_key.clone(),
        received: Utc::now(),
        event_id,
        client_ip: scoping.client_ip,
        sdk: SdkHeaders::default(),
    }
}

/// What forward mode sends upstream about the SDK: its `sentry_client` and the request
/// headers in [`SdkHeaders::FORWARDED`]. Values that are not visible ASCII are left out.
pub fn sdk_headers(req: &HttpRequest) -> SdkHeaders {
    let client = request_auth(req)
        .ok()
        .flatten()
        .and_then(|auth| auth.client);
    let headers = SdkHeaders::FORWARDED
        .iter()
        .filter_map(|name| {
            let value = req.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    SdkHeaders { client, headers }
}

/// Appends the record to the spool; once this returns, the envelope will reach Kafka.
///
/// A full spool, a writer with too many appends waiting, or a disk that cannot be written
/// (full, failing, directory gone) answers 503 with `Retry-After`.
async fn spool(state: &RequestState, record: Vec<u8>) -> Result<(), ApiError> {
    state
        .spool
        .append(record)
        .await
        .map(|_| ())
        .map_err(|error| {
            crate::metrics::count_rejection("spool");
            ApiError::Overloaded {
                detail: error.to_string(),
                retry_after_secs: state.settings.config.pipeline.retry_after_secs,
            }
        })
}

#[cfg(test)]
mod tests {
    use relay_core::config::IpFilterList;

    use super::forwarded_client;

    #[test]
    fn the_client_is_the_rightmost_address_a_trusted_proxy_did_not_add() {
        let trusted = IpFilterList::new(vec!["10.0.0.0/8".into(), "127.0.0.1".into()]).unwrap();
        let client = |values: &[&str]| forwarded_client(values.iter().copied(), &trusted);
        assert_eq!(
            client(&["203.0.113.7"]),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            client(&["198.51.100.1, 203.0.113.7, 10.1.2.3"]),
            Some("203.0.113.7".parse().unwrap()),
            "what the client wrote itself is left of the proxies' entries"
        );
        assert_eq!(
            client(&["198.51.100.1", "10.1.2.3"]),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(client(&["10.1.2.3, 127.0.0.1"]), None);
        assert_eq!(client(&["203.0.113.7, nonsense"]), None);
        assert_eq!(client(&[]), None);
    }
}
