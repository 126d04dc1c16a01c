//! HTTP endpoints: the intake (where the pipeline starts) and the operational endpoints.
//!
//! | route | module |
//! |---|---|
//! | `POST /api/{project_id}/envelope/` | [`envelope`] |
//! | `POST /api/{project_id}/store/` | [`store`] |
//! | `POST /api/{project_id}/minidump/` | [`minidump`] |
//! | `POST /api/{project_id}/security/` | [`security`] |
//! | `GET /healthz/{live,ready}`, `GET /api/relay/healthcheck/{live,ready}/` | [`health`] |
//! | `GET /metrics` | [`metrics`] |
//! | `/api/0/…` (sentry-cli's upload API) | [`uploads`] |
//!
//! Every intake route also answers CORS preflights and carries CORS headers ([`cors`]).

pub mod abuse;
mod body;
pub mod budget;
mod common;
mod cors;
mod envelope;
mod error;
mod health;
mod metrics;
mod minidump;
mod quotas;
pub mod reload;
mod security;
mod store;
mod uploads;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{web, HttpRequest, HttpResponse};
use futures::future::{ready, Either};

use self::error::ApiError;

/// Registers every route; shared by the server and the HTTP tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            // The extractors' own refusals answer plain text; ours answer JSON.
            .app_data(path_config())
            .default_service(web::to(no_route))
            // Inside the counting below, so preflights and origin refusals are counted too;
            // around the routing, so an `OPTIONS` is answered before it meets the 404.
            .wrap_fn(|req, srv| {
                let cors = cors::Cors::for_request(&req);
                let call = match cors.as_ref().and_then(|cors| cors.answer_early(&req)) {
                    Some(answer) => Either::Left(ready(Ok(req.into_response(answer)))),
                    None => Either::Right(srv.call(req)),
                };
                async move {
                    let mut response: ServiceResponse = call.await?;
                    if let Some(cors) = cors {
                        cors.decorate(response.headers_mut());
                    }
                    Ok(response)
                }
            })
            .wrap_fn(|req, srv| {
                let response = srv.call(req);
                async move {
                    let response: ServiceResponse = response.await?;
                    count(&response);
                    Ok(response)
                }
            })
            .configure(envelope::configure)
            .configure(store::configure)
            .configure(minidump::configure)
            .configure(security::configure)
            .configure(health::configure)
            .configure(metrics::configure)
            .configure(uploads::configure),
    );
}

/// A path segment that does not parse (a project id that is not a number, or overflows u64)
/// is a bad request with a JSON reason, not actix's plain-text 404.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, req| {
        ApiError::BadRequest(format!(
            "invalid project id in {}: {error} (expected a number from 0 to {})",
            shown_path(req),
            u64::MAX
        ))
        .into()
    })
}

/// Requests no route takes (an unknown path, or the wrong method) get a JSON reason too.
async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no endpoint for {} {}",
        req.method(),
        shown_path(&req)
    )))
}

/// The request path for a refusal, cut to 200 bytes: it is the client's text.
fn shown_path(req: &HttpRequest) -> String {
    let path = req.path();
    match path.char_indices().nth(200) {
        None => path.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &path[..end], path.len()),
    }
}

fn count(response: &ServiceResponse) {
    let endpoint = response.request().match_pattern();
    let endpoint = endpoint.as_deref().unwrap_or("unmatched");
    crate::metrics::count_request(endpoint, response.status().as_u16());
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod refusal_tests {
    use actix_web::http::StatusCode;
    use actix_web::{test, App};
    use serde_json::Value;

    use super::*;

    async fn answer(method: &str, uri: &str) -> (StatusCode, String) {
        let app = test::init_service(
            App::new().service(
                web::scope("")
                    .app_data(path_config())
                    .default_service(web::to(no_route))
                    .route(
                        "/api/{project_id}/envelope/",
                        web::post().to(|id: web::Path<u64>| async move {
                            HttpResponse::Ok().body(id.to_string())
                        }),
                    ),
            ),
        )
        .await;
        let req = test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri)
            .to_request();
        let response = test::call_service(&app, req).await;
        let status = response.status();
        let body = test::read_body(response).await;
        let detail = match serde_json::from_slice::<Value>(&body) {
            Ok(json) => json["detail"].as_str().unwrap_or_default().to_owned(),
            Err(_) => panic!("not JSON: {body:?}"),
        };
        (status, detail)
    }

    #[actix_web::test]
    async fn unparsable_paths_and_unknown_routes_answer_json() {
        let (status, detail) = answer("POST", "/api/18446744073709551616/envelope/").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(detail.contains("invalid project id"), "{detail}");
        assert!(detail.contains("18446744073709551615"), "{detail}");
        let (status, detail) = answer("POST", "/api/nope/envelope/").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{detail}");

        let (status, detail) = answer("GET", "/api/42/envelope/").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(detail, "no endpoint for GET /api/42/envelope/");
        let long = format!("/{}", "x".repeat(5000));
        let (status, detail) = answer("GET", &long).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            detail.ends_with("... (5001 bytes)") && detail.len() < 300,
            "{detail}"
        );
    }
}
