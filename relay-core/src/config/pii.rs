//! PII scrubbing options of a project (`projects[].pii`), as an operator configures them;
//! the scrubber is `relay_processing::pii`.

use serde::{Deserialize, Serialize};

/// What PII scrubbing removes. Scrubbing is on by default; every rule but IP removal is too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// Scrub at all. Defaults to true.
    pub enabled: bool,
    /// Replace credit card numbers (13 to 19 digits with a card-network prefix, optionally
    /// grouped by spaces or dashes, passing the Luhn check) inside any string. Defaults to
    /// true.
    pub credit_cards: bool,
    /// Replace the values of keys whose name contains one of the default secret words
    /// (`password`, `passwd`, `passphrase`, `mysql_pwd`, `secret`, `token`, `api_key`,
    /// `apikey`, `access_key`, `private_key`, `privatekey`, `auth`, `credentials`,
    /// `cookie`, `sessionid`, `session_id`, `session_key`, `csrf`, `xsrf`; compared
    /// case-insensitively with `-` read as `_`). Defaults to true.
    pub sensitive_keys: bool,
    /// More key-name words to scrub, matched like the defaults (also when
    /// `sensitive_keys` is false), e.g. `["iban", "ssn"]`. Defaults to none.
    pub extra_fields: Vec<String>,
    /// Key names never scrubbed by name (exact, case-insensitive), e.g. `["author"]`.
    /// Values are still checked for card numbers, tokens and URL passwords. Defaults to none.
    pub safe_fields: Vec<String>,
    /// Replace the password in URLs (`scheme://user:password@host`). Defaults to true.
    pub url_auth: bool,
    /// Replace bearer tokens (`Bearer <token>`) inside any string. Defaults to true.
    pub bearer_tokens: bool,
    /// Remove IP addresses: `user.ip_address`, `request.env.REMOTE_ADDR` and the
    /// client-address headers (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`,
    /// `CF-Connecting-IP`, `True-Client-IP`, `X-Client-IP`). Defaults to false.
    pub ip_addresses: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            enabled: true,
            credit_cards: true,
            sensitive_keys: true,
            extra_fields: Vec::new(),
            safe_fields: Vec::new(),
            url_auth: true,
            bearer_tokens: true,
            ip_addresses: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_scrubs_by_default() {
        let config: PiiConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, PiiConfig::default());
        assert!(config.enabled && config.credit_cards && !config.ip_addresses);
        assert!(serde_json::from_str::<PiiConfig>(r#"{"scrub_ip": true}"#).is_err());
    }
}
