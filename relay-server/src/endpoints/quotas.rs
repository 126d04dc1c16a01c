//! Intake-side accounting: quotas (checked with the shared [`RateLimiter`] service), client
//! reports and the `invalid` outcomes of refused requests.
//!
//! [`RateLimiter`]: crate::ratelimit::RateLimiter

use std::time::Instant;

use chrono::Utc;
use relay_core::{DataCategory, Envelope, ItemType, Outcome};
use serde::Deserialize;

use super::error::ApiError;
use crate::actors::outcomes::TrackOutcome;
use crate::managed::Scoping;
use crate::ratelimit::{rate_limits_header, ActiveLimit};
use crate::state::RequestState;

/// Who a request counts against, from its project and key.
pub fn scoping(
    state: &RequestState,
    project_id: u64,
    public_key: &str,
    client_ip: Option<std::net::IpAddr>,
) -> Scoping {
    Scoping {
        project_id,
        public_key: public_key.to_owned(),
        organization: state.settings.projects.organization(project_id),
        client_ip,
    }
}

/// Refuses a sender under a limit covering every category, before its body is read.
pub fn refuse_if_fully_limited(state: &RequestState, scoping: &Scoping) -> Result<(), ApiError> {
    let now = state.settings.rate_limiter.now();
    let Some(limit) = state.settings.rate_limiter.limit_on_everything(scoping) else {
        return Ok(());
    };
    // The body is not read, so its items are unknown: counted as one `default` unit.
    state.outcomes.track_item(
        (scoping.project_id, Some(&scoping.public_key)),
        &[(DataCategory::Default, 1)],
        Outcome::RateLimited,
        limit.reason.as_deref(),
    );
    Err(too_many_requests(&[limit], now))
}

/// Applies quotas to the envelope: removes limited items (an event's attachments go with it)
/// and records their `rate_limited` outcomes.
///
/// Returns the `X-Sentry-Rate-Limits` value when something was limited; fails with 429 when
/// nothing is left.
pub async fn enforce_quotas(
    state: &RequestState,
    scoping: &Scoping,
    envelope: &mut Envelope,
) -> Result<Option<String>, ApiError> {
    // Most projects have no quotas: their envelopes skip the item walk, unless a limit
    // announced by the upstream (forward mode) is in force.
    let upstream_limited = || {
        state.settings.config.forwards()
            && state
                .settings
                .rate_limiter
                .applies_to_project(scoping.project_id)
    };
    if !state.settings.projects.has_quotas(scoping.project_id) && !upstream_limited() {
        return Ok(None);
    }
    let items: Vec<_> = envelope
        .items
        .iter()
        .map(|item| DataCategory::for_item(item.ty(), item.payload.len()))
        .collect();
    let decision = match &state.settings.redis_quotas {
        Some(redis) => {
            redis
                .check(&state.settings.rate_limiter, scoping, &items)
                .await
        }
        None => state.settings.rate_limiter.check(scoping, &items),
    };
    if decision.limits.is_empty() {
        return Ok(None);
    }
    let now = state.settings.rate_limiter.now();
    let event_limited = envelope
        .items
        .iter()
        .zip(&decision.limited)
        .any(|(item, limited)| item.ty().is_event() && *limited);
    let mut kept = Vec::with_capacity(envelope.items.len());
    for ((item, categories), limited) in envelope.items.drain(..).zip(&items).zip(&decision.limited)
    {
        let dropped = *limited || (event_limited && item.ty() == &ItemType::Attachment);
        if !dropped {
            kept.push(item);
            continue;
        }
        let reason = categories
            .iter()
            .find_map(|(category, _)| {
                decision
                    .limits
                    .iter()
                    .find(|l| l.categories.is_empty() || l.categories.contains(category))
            })
            .and_then(|limit| limit.reason.as_deref())
            .unwrap_or("quota");
        state.outcomes.track_item(
            (scoping.project_id, Some(&scoping.public_key)),
            categories,
            Outcome::RateLimited,
            Some(reason),
        );
    }
    envelope.items = kept;
    if envelope.items.is_empty() {
        return Err(too_many_requests(&decision.limits, now));
    }
    Ok(Some(rate_limits_header(&decision.limits, now)))
}

fn too_many_requests(limits: &[ActiveLimit], now: Instant) -> ApiError {
    let header = rate_limits_header(limits, now);
    ApiError::TooManyRequests {
        detail: format!("rate limited: {header}"),
        retry_after_secs: limits
            .iter()
            .map(|l| l.retry_after_secs(now))
            .max()
            .unwrap_or(1),
        rate_limits: Some(header),
    }
}

/// A client report: what the SDK discarded itself, and why.
#[derive(Deserialize)]
struct ClientReport {
    #[serde(default)]
    discarded_events: Vec<DiscardedEvents>,
}

#[derive(Deserialize)]
struct DiscardedEvents {
    reason: String,
    category: String,
    quantity: u64,
}

/// Records the `client_discard` outcomes of the envelope's client reports.
pub fn track_client_reports(state: &RequestState, scoping: &Scoping, envelope: &Envelope) {
    let timestamp = Utc::now();
    for item in envelope
        .items
        .iter()
        .filter(|i| i.ty() == &ItemType::ClientReport)
    {
        let Ok(report) = serde_json::from_slice::<ClientReport>(&item.payload) else {
            tracing::debug!("ignoring a malformed client report");
            continue;
        };
        for discarded in report.discarded_events {
            // A category this relay does not know still counts, as `default`.
            let category = discarded.category.parse().unwrap_or(DataCategory::Default);
            state.outcomes.track(TrackOutcome {
                project_id: scoping.project_id,
                key: Some(scoping.public_key.clone()),
                category,
                outcome: Outcome::ClientDiscard,
                reason: Some(discarded.reason),
                quantity: discarded.quantity,
                timestamp,
            });
        }
    }
}

/// Passes `result` on, recording an `invalid` outcome first when it is a refusal of the
/// request's content (its sender was admitted, so the outcome has a scope).
pub fn tracked<T>(
    state: &RequestState,
    scoping: &Scoping,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    if let Err(error) = &result {
        track_invalid(state, scoping, error);
    }
    result
}

/// Records an `invalid` outcome for a request refused for its content.
pub fn track_invalid(state: &RequestState, scoping: &Scoping, error: &ApiError) {
    if let Some(reason) = error.invalid_reason() {
        state.outcomes.track_item(
            (scoping.project_id, Some(&scoping.public_key)),
            &[(DataCategory::Default, 1)],
            Outcome::Invalid,
            Some(reason),
        );
    }
}
