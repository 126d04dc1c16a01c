//! The ceiling for the intake benchmark: accepts `POST /api/{project_id}/envelope/`, reads the
//! whole body and drops it, answering `200 {"id": ...}` like the relay would. Same actix-web,
//! same worker count (one per core) as the relay; no decoding, no parsing, no spool, no Kafka.
//!
//! usage: noop-server [ADDR]   (default 127.0.0.1:3001)

use actix_web::{web, App, HttpResponse, HttpServer};
use futures_util::StreamExt;

async fn envelope(_project: web::Path<u64>, mut body: web::Payload) -> HttpResponse {
    let mut len = 0usize;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => len += chunk.len(),
            Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
        }
    }
    std::hint::black_box(len);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"id":"8be12c149f1d40de8c80ed204da87a62"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3001".to_owned());
    println!("noop-server listening on http://{addr}");
    HttpServer::new(|| App::new().route("/api/{project_id}/envelope/", web::post().to(envelope)))
        .bind(&addr)?
        .run()
        .await
}
