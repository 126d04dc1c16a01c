//! The security endpoint's body: Content Security Policy violation reports as browsers send
//! them, one `security` envelope item per report.
//!
//! Browsers use two wire forms (W3C CSP Level 2/3 and the Reporting API):
//!
//! - `report-uri`: one JSON object `{"csp-report": {...}}`, content type
//!   `application/csp-report` (some browsers: `application/json`);
//! - `report-to` (the Reporting API): a JSON array of reports
//!   `[{"type": "csp-violation", "url": ..., "body": {...}}, ...]`, content type
//!   `application/reports+json`. The API batches every report type of a page to one endpoint,
//!   so reports of other types (`deprecation`, `intervention`, ...) can share the batch.
//!
//! The body's shape decides the form; the content type is only recorded on the item (browsers
//! have not always agreed on it). A report that is not a CSP violation, or is malformed, is
//! skipped on its own and named in [`SecurityReports::skipped`], so the rest of the batch is
//! kept.

use bytes::Bytes;
use relay_core::{Envelope, EnvelopeHeaders, Item, ItemHeaders, ItemType};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::IntakeError;

/// Content type of a `report-uri` item.
pub const CSP_REPORT_CONTENT_TYPE: &str = "application/csp-report";
/// Content type of a `report-to` (Reporting API) item.
pub const REPORTS_CONTENT_TYPE: &str = "application/reports+json";
/// Reports kept from one Reporting API batch; the rest are skipped. Browsers send far fewer
/// (Chromium caps its queue at 100 reports per profile).
pub const MAX_REPORTS_PER_BATCH: usize = 100;

/// The reports of one request.
#[derive(Debug)]
pub struct SecurityReports {
    /// One `security` item per CSP report; never empty.
    pub envelope: Envelope,
    /// Why each skipped report of a batch was left out, one entry per report.
    pub skipped: Vec<SkipReason>,
}

/// Why one report of a Reporting API batch was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A report type other than `csp-violation`.
    NotCsp,
    /// Not an object, or a CSP violation without a `body` object.
    Malformed,
    /// Past [`MAX_REPORTS_PER_BATCH`].
    TooMany,
}

impl SkipReason {
    /// The outcome reason it is counted under.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotCsp => "unsupported_report_type",
            SkipReason::Malformed => "invalid_security_report",
            SkipReason::TooMany => "too_many_reports",
        }
    }
}

/// Splits a security endpoint body into one `security` item per CSP report.
///
/// Fails (400) when the body is not JSON, has neither form, or holds no CSP report at all.
pub fn envelope_from_reports(body: Bytes) -> Result<SecurityReports, IntakeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'{') => legacy_report(body),
        Some(b'[') => report_batch(&body),
        _ => Err(IntakeError::BadRequest(
            "a security report must be a JSON object ({\"csp-report\": ...}) or a JSON array \
             of Reporting API reports"
                .to_owned(),
        )),
    }
}

/// A `report-uri` body: kept as sent, as one item.
fn legacy_report(body: Bytes) -> Result<SecurityReports, IntakeError> {
    let report: Value = serde_json::from_slice(&body)
        .map_err(|e| IntakeError::BadRequest(format!("security report is not valid JSON: {e}")))?;
    if !report.get("csp-report").is_some_and(Value::is_object) {
        return Err(IntakeError::BadRequest(
            "security report has no \"csp-report\" object (only CSP reports are accepted)"
                .to_owned(),
        ));
    }
    Ok(SecurityReports {
        envelope: envelope_of(vec![item(body, CSP_REPORT_CONTENT_TYPE)]),
        skipped: Vec::new(),
    })
}

/// A Reporting API batch: each CSP violation becomes an item holding that report's JSON text.
fn report_batch(body: &[u8]) -> Result<SecurityReports, IntakeError> {
    let reports: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        IntakeError::BadRequest(format!("security report batch is not valid JSON: {e}"))
    })?;
    let total = reports.len();
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for report in reports {
        if items.len() == MAX_REPORTS_PER_BATCH {
            skipped.push(SkipReason::TooMany);
            continue;
        }
        match check_batch_report(report) {
            Ok(()) => items.push(item(
                Bytes::copy_from_slice(report.get().as_bytes()),
                REPORTS_CONTENT_TYPE,
            )),
            Err(reason) => skipped.push(reason),
        }
    }
    if items.is_empty() {
        return Err(IntakeError::BadRequest(format!(
            "security report batch holds no CSP violation report ({total} reports of other \
             types or malformed)"
        )));
    }
    Ok(SecurityReports {
        envelope: envelope_of(items),
        skipped,
    })
}

/// Checks one report of a batch: a `csp-violation` with a `body` object.
fn check_batch_report(report: &RawValue) -> Result<(), SkipReason> {
    /// Only the type and that the body is an object matter here; the rest is kept as sent.
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        ty: Option<String>,
        body: Option<Value>,
    }
    let head: Head = serde_json::from_str(report.get()).map_err(|_| SkipReason::Malformed)?;
    if head.ty.as_deref() != Some("csp-violation") {
        return Err(SkipReason::NotCsp);
    }
    match head.body {
        Some(Value::Object(_)) => Ok(()),
        _ => Err(SkipReason::Malformed),
    }
}

fn item(payload: Bytes, content_type: &str) -> Item {
    let mut headers = ItemHeaders::new(ItemType::Security);
    headers.content_type = Some(content_type.to_owned());
    Item::new(headers, payload)
}

fn envelope_of(items: Vec<Item>) -> Envelope {
    Envelope {
        headers: EnvelopeHeaders::default(),
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEGACY: &str = r#"{"csp-report":{"document-uri":"http://127.0.0.1:8000/","referrer":"","violated-directive":"img-src","effective-directive":"img-src","original-policy":"img-src 'self'; report-uri /csp","disposition":"enforce","blocked-uri":"http://evil.test/x.png","status-code":200}}"#;

    fn batch_report(ty: &str, body: &str) -> String {
        format!(
            r#"{{"age":12,"type":"{ty}","url":"http://127.0.0.1:8000/","user_agent":"Chrome","body":{body}}}"#
        )
    }

    fn reports(body: &str) -> Result<SecurityReports, IntakeError> {
        envelope_from_reports(Bytes::copy_from_slice(body.as_bytes()))
    }

    #[test]
    fn a_report_uri_body_is_one_item_kept_as_sent() {
        let parsed = reports(LEGACY).unwrap();
        assert!(parsed.skipped.is_empty());
        let [item] = parsed.envelope.items.as_slice() else {
            panic!("{:?}", parsed.envelope.items)
        };
        assert_eq!(item.ty(), &ItemType::Security);
        assert_eq!(&item.payload[..], LEGACY.as_bytes());
        assert_eq!(
            item.headers.content_type.as_deref(),
            Some("application/csp-report")
        );
    }

    #[test]
    fn a_batch_keeps_each_csp_violation_and_skips_the_rest_one_by_one() {
        let csp = batch_report(
            "csp-violation",
            r#"{"blockedURL":"inline","effectiveDirective":"script-src-elem"}"#,
        );
        let body = format!(
            "[{csp}, {}, {}, 7, {csp}]",
            batch_report("deprecation", r#"{"id":"x"}"#),
            batch_report("csp-violation", "null"),
        );
        let parsed = reports(&body).unwrap();
        let items = &parsed.envelope.items;
        assert_eq!(items.len(), 2);
        for item in items {
            assert_eq!(item.ty(), &ItemType::Security);
            assert_eq!(&item.payload[..], csp.as_bytes());
            assert_eq!(
                item.headers.content_type.as_deref(),
                Some("application/reports+json")
            );
        }
        assert_eq!(
            parsed.skipped,
            [
                SkipReason::NotCsp,
                SkipReason::Malformed,
                SkipReason::Malformed
            ]
        );
    }

    #[test]
    fn a_batch_past_the_cap_keeps_the_first_reports() {
        let csp = batch_report("csp-violation", "{}");
        let body = format!("[{}]", vec![csp; MAX_REPORTS_PER_BATCH + 3].join(","));
        let parsed = reports(&body).unwrap();
        assert_eq!(parsed.envelope.items.len(), MAX_REPORTS_PER_BATCH);
        assert_eq!(parsed.skipped, [SkipReason::TooMany; 3]);
    }

    #[test]
    fn bodies_without_a_csp_report_are_refused() {
        let cases = [
            ("", "must be a JSON object"),
            ("\"x\"", "must be a JSON object"),
            ("{\"csp-report\": 1}", "no \"csp-report\" object"),
            ("{\"expect-ct-report\": {}}", "no \"csp-report\" object"),
            ("{", "not valid JSON"),
            ("[{]", "batch is not valid JSON"),
            ("[]", "holds no CSP violation report (0 reports"),
            (
                &format!("[{}]", batch_report("deprecation", "{}")),
                "holds no CSP violation report (1 reports",
            ),
        ];
        for (body, expected) in cases {
            let error = reports(body).unwrap_err();
            assert!(matches!(error, IntakeError::BadRequest(_)), "{body}");
            assert!(error.to_string().contains(expected), "{body}: {error}");
        }
    }
}
