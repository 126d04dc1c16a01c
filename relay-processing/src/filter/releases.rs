//! Release filter (`release-version`): drops events whose `release` matches a glob.

use serde_json::Value;

use super::{FilterReason, GlobPatterns};

/// `Err(ReleaseVersion)` when the event's `release` matches one of `patterns`.
pub fn should_filter(event: &Value, patterns: &GlobPatterns) -> Result<(), FilterReason> {
    if patterns.is_empty() {
        return Ok(());
    }
    let release = match event.get("release") {
        Some(Value::String(release)) => release.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Ok(()),
    };
    if patterns.is_match(&release) {
        return Err(FilterReason::ReleaseVersion);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matching_releases_are_filtered() {
        let globs = GlobPatterns::new(vec!["*-beta*".into(), "1.0.?".into()]).unwrap();
        for release in [json!("app@2.0-BETA.1"), json!("1.0.3")] {
            let event = json!({"release": release});
            assert_eq!(
                should_filter(&event, &globs),
                Err(FilterReason::ReleaseVersion)
            );
        }
        for event in [
            json!({"release": "1.0.30"}),
            json!({"release": "capture-test@1.0.0"}),
            json!({}),
        ] {
            assert_eq!(should_filter(&event, &globs), Ok(()));
        }
    }
}
