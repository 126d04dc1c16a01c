//! The minidump endpoint's multipart form: the dump, other files, and event fields.
//!
//! The dump is in `upload_file_minidump`; a `sentry` field holds event JSON and `sentry[a][b]=v`
//! fields set single event values; other files become attachments and other text fields go to
//! the event's `extra`.

use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, EventId, Item, ItemHeaders, ItemType};
use serde_json::{json, Map, Value};

use super::IntakeError;

/// The multipart field that holds the minidump.
pub const MINIDUMP_FIELD: &str = "upload_file_minidump";

/// Fields one form may have. Crash reporters send a few dozen annotations; a form with more is
/// refused rather than folded into an event of unbounded breadth.
pub const MAX_FORM_FIELDS: usize = 1000;

/// Levels of `sentry[a][b]...` a form field name may address.
pub const MAX_FIELD_PATH_DEPTH: usize = 16;

/// A file part of the upload.
#[derive(Debug)]
pub struct FileField {
    /// The part's file name, if it had one.
    pub filename: Option<String>,
    /// The part's content type, if it had one.
    pub content_type: Option<String>,
    /// The file's bytes: a slice of the body when the part came whole.
    pub data: Bytes,
}

/// The parts of a minidump upload.
#[derive(Debug, Default)]
pub struct Upload {
    /// The `upload_file_minidump` part.
    pub minidump: Option<FileField>,
    /// Every other file part.
    pub attachments: Vec<FileField>,
    /// The event built from the text fields.
    pub event: Map<String, Value>,
}

impl Upload {
    /// An upload that is the dump itself, sent as the whole body without a form.
    pub fn raw_dump(data: Bytes) -> Upload {
        Upload {
            minidump: Some(FileField {
                filename: None,
                content_type: None,
                data,
            }),
            ..Upload::default()
        }
    }

    /// Takes the dump out of the upload; a form without one is refused.
    pub fn take_minidump(&mut self) -> Result<FileField, IntakeError> {
        self.minidump.take().ok_or_else(|| {
            IntakeError::BadRequest(format!(
                "missing minidump: send the dump in the {MINIDUMP_FIELD:?} field"
            ))
        })
    }
}

/// The boundary of a `multipart/*` content type; `None` for any other content type (the body
/// is then the dump itself).
pub fn multipart_boundary(content_type: Option<&str>) -> Result<Option<String>, IntakeError> {
    let Some(content_type) = content_type else {
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
        .map_err(|e| IntakeError::BadRequest(format!("invalid multipart content type: {e}")))
}

/// Splits `body` into its fields, each a slice of one buffer: a large file is not copied
/// again. multer copies the body into its buffer once; the fields are slices of that buffer.
pub fn parse_multipart(body: Bytes, boundary: String) -> Result<Upload, IntakeError> {
    // One item: multer then holds the whole body in one buffer and every field is one slice.
    // The stream is ready at once, so the parser never waits and `block_on` never blocks.
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    futures_executor::block_on(async {
        let mut upload = Upload::default();
        let mut fields = 0usize;
        while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
            fields += 1;
            if fields > MAX_FORM_FIELDS {
                return Err(IntakeError::TooLarge(format!(
                    "the form has more than {MAX_FORM_FIELDS} fields"
                )));
            }
            let name = field.name().unwrap_or_default().to_owned();
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(|m| m.to_string());
            let data = field_bytes(&mut field).await.map_err(bad_multipart)?;
            add_field(&mut upload, name, filename, content_type, data)?;
        }
        Ok(upload)
    })
}

fn bad_multipart(error: multer::Error) -> IntakeError {
    IntakeError::BadRequest(format!("invalid multipart body: {error}"))
}

/// Files the part as the dump, an attachment, or an event field.
fn add_field(
    upload: &mut Upload,
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Bytes,
) -> Result<(), IntakeError> {
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
            IntakeError::BadRequest(format!("form field {name:?} is not UTF-8 text"))
        })?;
        merge_form_field(&mut upload.event, &name, text)?;
    }
    Ok(())
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
pub fn merge_form_field(
    event: &mut Map<String, Value>,
    name: &str,
    text: String,
) -> Result<(), IntakeError> {
    if name == "sentry" {
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            IntakeError::BadRequest(format!("the sentry field is not valid JSON: {e}"))
        })?;
        let Value::Object(fields) = value else {
            return Err(IntakeError::BadRequest(
                "the sentry field must be a JSON object".to_owned(),
            ));
        };
        merge_objects(event, fields);
    } else if let Some(path) = bracket_path(name) {
        if path.len() > MAX_FIELD_PATH_DEPTH {
            return Err(IntakeError::BadRequest(format!(
                "form field name {:?}… addresses more than {MAX_FIELD_PATH_DEPTH} levels",
                name.chars().take(64).collect::<String>()
            )));
        }
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
///
/// Recursion is bounded: the `sentry` field's JSON is at most serde_json's nesting limit (128)
/// deep.
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

/// The event (with native defaults), the minidump and the other files as one envelope, and
/// the event id answered to the uploader.
pub fn build_envelope(
    upload: Upload,
    minidump: FileField,
) -> Result<(Envelope, EventId), IntakeError> {
    let mut event = upload.event;
    let event_id = match event.get("event_id").and_then(Value::as_str) {
        Some(id) => id
            .parse()
            .map_err(|e| IntakeError::BadRequest(format!("sentry event_id: {e}")))?,
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
        merge_form_field(&mut event, "sentry", r#"{"tags":{"c":{"d":1}}}"#.into()).unwrap();
        assert_eq!(
            Value::Object(event),
            json!({"release": "app@1", "tags": {"a": "1", "b": "2", "c": {"d": 1}}, "user": {"id": "u1"}, "extra": {"prod": "Crashpad"}})
        );
    }

    #[test]
    fn bad_sentry_field_is_refused() {
        let mut event = Map::new();
        assert!(merge_form_field(&mut event, "sentry", "not json".into()).is_err());
        assert!(merge_form_field(&mut event, "sentry", "[1]".into()).is_err());
        assert_eq!(bracket_path("sentry[]"), None);
        assert_eq!(bracket_path("sentry[a][b]"), Some(vec!["a", "b"]));
        let deep = format!("sentry{}", "[a]".repeat(MAX_FIELD_PATH_DEPTH + 1));
        assert!(merge_form_field(&mut event, &deep, "x".into()).is_err());
    }

    fn form(fields: usize) -> Bytes {
        let mut body = String::new();
        for i in 0..fields {
            body.push_str(&format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"
            ));
        }
        body.push_str("--XyZ--\r\n");
        body.into()
    }

    #[test]
    fn field_count_is_bounded() {
        let upload = parse_multipart(form(MAX_FORM_FIELDS), "XyZ".into()).unwrap();
        assert_eq!(
            upload.event["extra"].as_object().unwrap().len(),
            MAX_FORM_FIELDS
        );
        let err = parse_multipart(form(MAX_FORM_FIELDS + 1), "XyZ".into()).unwrap_err();
        assert!(matches!(err, IntakeError::TooLarge(_)), "{err}");
    }

    #[test]
    fn boundaries() {
        assert_eq!(multipart_boundary(None).unwrap(), None);
        assert_eq!(
            multipart_boundary(Some("application/octet-stream")).unwrap(),
            None
        );
        let ct = "multipart/form-data; boundary=abc";
        assert_eq!(
            multipart_boundary(Some(ct)).unwrap().as_deref(),
            Some("abc")
        );
        assert!(multipart_boundary(Some("multipart/form-data")).is_err());
    }
}
