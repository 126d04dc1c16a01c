//! HTTP endpoints: the intake (where the pipeline starts) and the operational endpoints.
//!
//! | route | module |
//! |---|---|
//! | `POST /api/{project_id}/envelope/` | [`envelope`] |
//! | `POST /api/{project_id}/store/` | [`store`] |
//! | `POST /api/{project_id}/minidump/` | [`minidump`] |
//! | `GET /healthz/{live,ready}`, `GET /api/relay/healthcheck/{live,ready}/` | [`health`] |
//! | `GET /metrics` | [`metrics`] |

pub mod abuse;
mod body;
pub mod budget;
mod common;
mod envelope;
mod error;
mod health;
mod metrics;
mod minidump;
mod quotas;
mod store;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::web;

/// Registers every route; shared by the server and the HTTP tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
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
            .configure(health::configure)
            .configure(metrics::configure),
    );
}

fn count(response: &ServiceResponse) {
    let endpoint = response.request().match_pattern();
    let endpoint = endpoint.as_deref().unwrap_or("unmatched");
    crate::metrics::count_request(endpoint, response.status().as_u16());
}

#[cfg(test)]
mod tests;
