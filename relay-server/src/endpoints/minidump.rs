//! `POST /api/{project_id}/minidump/`: crash uploads from Breakpad, Crashpad and friends.
//!
//! Multipart with the dump in `upload_file_minidump`; a `sentry` field holds event JSON and
//! `sentry[a][b]=v` fields set single event values; other files become attachments and other
//! text fields go to the event's `extra`. A raw `application/octet-stream` body is the dump
//! itself. The dump may be wrapped in gzip, zstd, xz or bzip2. The answer is the event id as
//! text, which crash uploaders log as the report id.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, EventId, Item, ItemHeaders, ItemType};
use relay_processing::minidump::unwrap_minidump;
use serde_json::{json, Map, Value};

use super::body::{decode_body, read_body, BodyRules};
use super::budget::{Charge, CHUNK_WAIT};
use super::common::{accept, admit_sender, client_ip, request_auth};
use super::error::ApiError;
use super::quotas::track_invalid;
use crate::managed::Scoping;
use crate::state::ServiceState;

/// The multipart field that holds the minidump.
const MINIDUMP_FIELD: &str = "upload_file_minidump";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/{project_id}/minidump/", web::post().to(handle));
}

async fn handle(
    state: web::Data<ServiceState>,
    req: HttpRequest,
    project_id: web::Path<u64>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let _permit = state.abuse.admit(client_ip(&req))?;
    let project_id = project_id.into_inner();
    let key = request_auth(&req)?.map(|a| a.public_key);
    let scoping = match admit_sender(&state, &req, project_id, key) {
        Ok(scoping) => scoping,
        // Crash handlers retry on 429 and would resend the dump; the outcome is recorded.
        Err(ApiError::TooManyRequests { .. }) => return Ok(event_id_response(EventId::new())),
        Err(error) => return Err(error),
    };
    let result = receive(&state, &req, payload, &scoping).await;
    if let Err(error) = &result {
        track_invalid(&state, &scoping, error);
    }
    result
}

async fn receive(
    state: &ServiceState,
    req: &HttpRequest,
    payload: web::Payload,
    scoping: &Scoping,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.config.limits;
    // A minidump can be larger than an ordinary request; it is bounded as an attachment.
    let request_limit = limits.max_request_size.max(limits.max_attachment_size);
    // Holds the body's bytes in the in-flight budget until the envelope is spooled.
    let mut charge = state.budget.charge();
    let rules = BodyRules::new(limits, request_limit);
    let body = read_body(req, payload, rules, &mut charge).await?;
    let body = decode_body(req, body, limits.max_envelope_size, &mut charge).await?;

    let mut upload = match multipart_boundary(req)? {
        Some(boundary) => parse_multipart(body, boundary, &mut charge).await?,
        None => Upload {
            minidump: Some(FileField {
                filename: None,
                content_type: None,
                data: body,
            }),
            ..Upload::default()
        },
    };
    let mut minidump = upload.minidump.take().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "missing minidump: send the dump in the {MINIDUMP_FIELD:?} field"
        ))
    })?;
    minidump.data = unwrap(minidump.data, limits.max_attachment_size).await?;

    let (envelope, event_id) = build_envelope(upload, minidump)?;
    match accept(state, scoping, envelope, None, &mut charge).await {
        // Limited dumps are answered as usual (see `handle`); the outcome is recorded.
        Ok(_) | Err(ApiError::TooManyRequests { .. }) => Ok(event_id_response(event_id)),
        Err(error) => Err(error),
    }
}

/// The answer crash uploaders expect: the event id as text.
fn event_id_response(event_id: EventId) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(event_id.hyphenated())
}

/// A file part of the upload.
struct FileField {
    filename: Option<String>,
    content_type: Option<String>,
    data: Bytes,
}

/// The parts of a minidump upload.
#[derive(Default)]
struct Upload {
    minidump: Option<FileField>,
    attachments: Vec<FileField>,
    event: Map<String, Value>,
}

fn multipart_boundary(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(content_type) = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return Ok(None);
    }
    multer::parse_boundary(content_type)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("invalid multipart content type: {e}")))
}

/// Splits the body into its fields, each a slice of one buffer: a large file is not copied
/// again.
///
/// multer copies the body into its buffer once (charged while both exist); the fields are
/// slices of that buffer, so afterwards the request holds the body's size once.
async fn parse_multipart(
    body: Bytes,
    boundary: String,
    charge: &mut Charge,
) -> Result<Upload, ApiError> {
    let held_before = charge.held();
    charge.grow(body.len(), CHUNK_WAIT).await?;
    // One item: multer then holds the whole body in one buffer and every field is one slice.
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let bad = |e: multer::Error| ApiError::BadRequest(format!("invalid multipart body: {e}"));
    let mut upload = Upload::default();
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let data = field_bytes(&mut field).await.map_err(bad)?;
        if name == MINIDUMP_FIELD {
            upload.minidump = Some(FileField {
                filename,
                content_type,
                data,
            });
        } else if filename.is_some() {
            upload.attachments.push(FileField {
                filename: filename.or(Some(name)),
                content_type,
                data,
            });
        } else {
            let text = String::from_utf8(data.to_vec()).map_err(|_| {
                ApiError::BadRequest(format!("form field {name:?} is not UTF-8 text"))
            })?;
            merge_form_field(&mut upload.event, &name, text)?;
        }
    }
    // The body was handed to multer and is gone; multer's buffer, which the fields slice,
    // takes its place.
    charge.shrink_to(held_before);
    Ok(upload)
}

/// A field's data: its one slice of multer's buffer when it came whole (always, as the body
/// is given in one piece), else the pieces joined.
async fn field_bytes(field: &mut multer::Field<'_>) -> Result<Bytes, multer::Error> {
    let mut pieces = Vec::new();
    while let Some(piece) = field.chunk().await? {
        pieces.push(piece);
    }
    if pieces.len() <= 1 {
        return Ok(pieces.pop().unwrap_or_default());
    }
    Ok(pieces.concat().into())
}

/// Folds one text field into the event: `sentry` (JSON), `sentry[a][b]`, or `extra`.
fn merge_form_field(
    event: &mut Map<String, Value>,
    name: &str,
    text: String,
) -> Result<(), ApiError> {
    if name == "sentry" {
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            ApiError::BadRequest(format!("the sentry field is not valid JSON: {e}"))
        })?;
        let Value::Object(fields) = value else {
            return Err(ApiError::BadRequest(
                "the sentry field must be a JSON object".to_owned(),
            ));
        };
        merge_objects(event, fields);
    } else if let Some(path) = bracket_path(name) {
        set_path(event, &path, Value::String(text));
    } else {
        let extra = object_at(event, "extra");
        extra.insert(name.to_owned(), Value::String(text));
    }
    Ok(())
}

/// `sentry[tags][foo]` -> `["tags", "foo"]`; other names -> `None`.
fn bracket_path(name: &str) -> Option<Vec<&str>> {
    let rest = name.strip_prefix("sentry[")?.strip_suffix(']')?;
    let path: Vec<&str> = rest.split("][").collect();
    path.iter()
        .all(|segment| !segment.is_empty())
        .then_some(path)
}

fn set_path(event: &mut Map<String, Value>, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("bracket paths are non-empty");
    let mut target = event;
    for segment in parents {
        target = object_at(target, segment);
    }
    target.insert((*last).to_owned(), value);
}

/// The object under `key`, replacing any non-object value there.
fn object_at<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// Deep-merges `from` into `into`; objects merge, other values replace.
fn merge_objects(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_objects(existing, incoming)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

async fn unwrap(data: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let unwrapped = web::block({
        let data = data.clone();
        move || unwrap_minidump(&data, limit)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("minidump unwrapping failed: {e}")))??;
    Ok(unwrapped.map(Bytes::from).unwrap_or(data))
}

/// The event (with native defaults), the minidump and the other files as one envelope.
fn build_envelope(upload: Upload, minidump: FileField) -> Result<(Envelope, EventId), ApiError> {
    let mut event = upload.event;
    let event_id = match event.get("event_id").and_then(Value::as_str) {
        Some(id) => id
            .parse()
            .map_err(|e| ApiError::BadRequest(format!("sentry event_id: {e}")))?,
        None => EventId::new(),
    };
    event.insert("event_id".to_owned(), json!(event_id.to_string()));
    event.entry("platform").or_insert_with(|| json!("native"));
    event.entry("level").or_insert_with(|| json!("fatal"));
    let event = Value::Object(event);

    let mut items = vec![Item::new(
        ItemHeaders::new(ItemType::Event),
        serde_json::to_vec(&event).expect("JSON values serialize"),
    )];
    items.push(attachment(minidump, "event.minidump", "minidump.dmp"));
    items.extend(
        upload
            .attachments
            .into_iter()
            .map(|f| attachment(f, "event.attachment", "attachment")),
    );
    let envelope = Envelope {
        headers: EnvelopeHeaders {
            event_id: Some(event_id),
            ..EnvelopeHeaders::default()
        },
        items,
    };
    Ok((envelope, event_id))
}

fn attachment(file: FileField, attachment_type: &str, default_name: &str) -> Item {
    let mut headers = ItemHeaders::new(ItemType::Attachment);
    headers.filename = Some(file.filename.unwrap_or_else(|| default_name.to_owned()));
    headers.content_type = file.content_type;
    headers.attachment_type = Some(attachment_type.to_owned());
    Item::new(headers, file.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_fold_into_the_event() {
        let mut event = Map::new();
        merge_form_field(
            &mut event,
            "sentry",
            r#"{"release":"app@1","tags":{"a":"1"}}"#.into(),
        )
        .unwrap();
        merge_form_field(&mut event, "sentry[tags][b]", "2".into()).unwrap();
        merge_form_field(&mut event, "sentry[user][id]", "u1".into()).unwrap();
        merge_form_field(&mut event, "prod", "Crashpad".into()).unwrap();
        assert_eq!(
            Value::Object(event),
            json!({"release": "app@1", "tags": {"a": "1", "b": "2"}, "user": {"id": "u1"}, "extra": {"prod": "Crashpad"}})
        );
    }

    #[test]
    fn bad_sentry_field_is_refused() {
        let mut event = Map::new();
        assert!(merge_form_field(&mut event, "sentry", "not json".into()).is_err());
        assert!(merge_form_field(&mut event, "sentry", "[1]".into()).is_err());
        assert_eq!(bracket_path("sentry[]"), None);
        assert_eq!(bracket_path("sentry[a][b]"), Some(vec!["a", "b"]));
    }
}
