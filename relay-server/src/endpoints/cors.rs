//! CORS for the intake endpoints, so that browser SDKs on other origins can send and can read
//! the answer (the rate-limit headers above all).
//!
//! Preflights (`OPTIONS`) are answered here, before routing and without auth: the browser
//! sends no credentials with them. Every other intake answer, refusals included, gets
//! `Access-Control-Allow-Origin` and `Access-Control-Expose-Headers`; without them a browser
//! hides a 429's `Retry-After` from the SDK, which then cannot back off.

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::{web, HttpResponse, ResponseError};

use super::error::ApiError;
use crate::projects::{shown_key, AccessError};
use crate::state::ServiceState;

/// The path segment after `/api/{project_id}/` of each intake endpoint.
const INTAKE_ENDPOINTS: [&str; 4] = ["envelope/", "store/", "minidump/", "security/"];

const ALLOW_METHODS: &str = "GET, POST, OPTIONS";
/// Every header an SDK sends: always the whole list, so a preflight never depends on which
/// of them this particular request asked for.
const ALLOW_HEADERS: &str =
    "content-type, x-sentry-auth, sentry-trace, baggage, authorization, content-encoding";
/// The answer headers SDKs read; browsers hide all but a few simple ones unless listed.
const EXPOSE_HEADERS: &str = "X-Sentry-Error, X-Sentry-Rate-Limits, Retry-After";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "3600";

/// The CORS side of one intake request.
pub struct Cors {
    /// The request's `Origin`, echoed back; `None` answers `*`.
    origin: Option<HeaderValue>,
}

impl Cors {
    /// `None` for requests outside the intake (health, metrics), which get no CORS headers.
    pub fn for_request(req: &ServiceRequest) -> Option<Cors> {
        intake_project(req.path())?;
        Some(Cors {
            origin: req.headers().get(header::ORIGIN).cloned(),
        })
    }

    /// The answer given without calling the endpoint: the preflight, or the refusal of an
    /// origin the project does not allow. `None` lets the request through.
    pub fn answer_early(&self, req: &ServiceRequest) -> Option<HttpResponse> {
        if req.method() == Method::OPTIONS {
            return Some(preflight());
        }
        let origin = self.origin.as_ref()?;
        let project_id = intake_project(req.path())??;
        let settings = req.app_data::<web::Data<ServiceState>>()?.settings();
        let projects = &settings.projects;
        // An origin that is not text cannot match any pattern.
        let origin = origin.to_str().unwrap_or_default();
        if projects.origin_allowed(project_id, origin) {
            return None;
        }
        let refusal = AccessError::OriginNotAllowed {
            origin: shown_key(origin),
            project_id,
        };
        Some(ApiError::from(refusal).error_response())
    }

    /// Adds the headers every intake answer carries.
    pub fn decorate(&self, headers: &mut HeaderMap) {
        let allow_origin = match &self.origin {
            Some(origin) => {
                // The answer differs per origin: caches must not hand it to another one.
                headers.append(header::VARY, HeaderValue::from_static("Origin"));
                origin.clone()
            }
            None => HeaderValue::from_static("*"),
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}

/// `200` with the methods, headers and cache time a browser checks before the real request.
fn preflight() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
        .finish()
}

/// For an intake path `/api/{project_id}/{endpoint}/`: `Some` with the project id, if it is a
/// number (the endpoint refuses it otherwise, and that refusal gets CORS headers too).
fn intake_project(path: &str) -> Option<Option<u64>> {
    let (project_id, endpoint) = path.strip_prefix("/api/")?.split_once('/')?;
    if !INTAKE_ENDPOINTS.contains(&endpoint) {
        return None;
    }
    Some(project_id.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_intake_paths_get_cors() {
        assert_eq!(intake_project("/api/42/envelope/"), Some(Some(42)));
        assert_eq!(intake_project("/api/42/security/"), Some(Some(42)));
        assert_eq!(intake_project("/api/x/store/"), Some(None));
        assert_eq!(intake_project("/api/42/envelope"), None);
        assert_eq!(intake_project("/api/relay/healthcheck/live/"), None);
        assert_eq!(intake_project("/metrics"), None);
    }
}
