//! The scrubbing rules: which keys are secret, and which patterns inside strings are.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::{Captures, Regex};

use super::{PiiConfig, FILTERED};

/// Default key-name words (normalized: lowercase, `_` for `-`).
const SENSITIVE_WORDS: [&str; 19] = [
    "password",
    "passwd",
    "passphrase",
    "mysql_pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "privatekey",
    "auth",
    "credentials",
    "cookie",
    "sessionid",
    "session_id",
    "session_key",
    "csrf",
    "xsrf",
];

/// Keys that carry the client's address (normalized).
const IP_KEYS: [&str; 8] = [
    "remote_addr",
    "x_forwarded_for",
    "x_real_ip",
    "forwarded",
    "cf_connecting_ip",
    "true_client_ip",
    "x_client_ip",
    "ip_address",
];

/// The fewest digits [`CARD`] matches: a network digit, three more, then at least nine.
const CARD_MIN_DIGITS: usize = 13;
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[2-6]\d{3}(?:[ -]?\d){9,15}\b").expect("valid regex"));
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*").expect("valid regex"));
static URL_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*):([^/?#@\s]+)@").expect("valid regex")
});

/// The key rules of one configuration.
#[derive(Clone, Debug)]
pub(crate) struct KeyRules {
    /// Finds any sensitive word inside a normalized key; `None` when there are no words.
    words: Option<AhoCorasick>,
    safe: Vec<String>,
    ip: bool,
}

/// Keys up to this length are normalized on the stack; longer ones allocate.
const KEY_BUFFER: usize = 64;

impl KeyRules {
    pub fn new(config: &PiiConfig) -> Self {
        let mut words: Vec<String> = if config.sensitive_keys {
            SENSITIVE_WORDS.iter().map(|w| (*w).to_owned()).collect()
        } else {
            Vec::new()
        };
        words.extend(config.extra_fields.iter().map(|w| normalize_key(w)));
        words.retain(|w| !w.is_empty());
        let words = (!words.is_empty())
            .then(|| AhoCorasick::new(&words).expect("plain words build an automaton"));
        KeyRules {
            words,
            safe: config
                .safe_fields
                .iter()
                .map(|w| normalize_key(w))
                .collect(),
            ip: config.ip_addresses,
        }
    }

    /// Whether the value under `key` is scrubbed as a whole.
    ///
    /// Called for every key of every object scrubbed, so the common short key is normalized
    /// into a stack buffer instead of a new `String`.
    pub fn is_sensitive(&self, key: &str) -> bool {
        let trimmed = key.trim();
        if trimmed.len() > KEY_BUFFER {
            return self.is_sensitive_normalized(normalize_key(key).as_bytes());
        }
        let mut buffer = [0u8; KEY_BUFFER];
        let normalized = &mut buffer[..trimmed.len()];
        for (out, byte) in normalized.iter_mut().zip(trimmed.bytes()) {
            *out = normalize_byte(byte);
        }
        self.is_sensitive_normalized(normalized)
    }

    fn is_sensitive_normalized(&self, key: &[u8]) -> bool {
        if self.safe.iter().any(|safe| safe.as_bytes() == key) {
            return false;
        }
        self.words.as_ref().is_some_and(|words| words.is_match(key))
            || (self.ip && IP_KEYS.iter().any(|ip| ip.as_bytes() == key))
    }
}

/// One byte of [`normalize_key`]: ASCII lowercase, `-` and space to `_`. Bytes of multi-byte
/// UTF-8 characters are all ≥ 0x80 and pass through unchanged, so the result stays UTF-8.
fn normalize_byte(byte: u8) -> u8 {
    match byte {
        b'-' | b' ' => b'_',
        other => other.to_ascii_lowercase(),
    }
}

fn normalize_key(key: &str) -> String {
    key.trim().to_ascii_lowercase().replace(['-', ' '], "_")
}

/// Replaces secrets inside `text` and returns how many it replaced.
pub(crate) fn scrub_text(text: &mut String, config: &PiiConfig) -> usize {
    let mut count = 0;
    if config.url_auth && text.contains("://") {
        replace(
            text,
            &URL_AUTH,
            |caps: &Captures| {
                if &caps[2] == FILTERED {
                    None
                } else {
                    Some(format!("{}:{FILTERED}@", &caps[1]))
                }
            },
            &mut count,
        );
    }
    if config.bearer_tokens {
        replace(
            text,
            &BEARER,
            |caps: &Captures| Some(format!("{}{}{FILTERED}", &caps[1], &caps[2])),
            &mut count,
        );
    }
    // A card number has at least 13 digits: most strings are passed over without the regex.
    if config.credit_cards && text.bytes().filter(u8::is_ascii_digit).count() >= CARD_MIN_DIGITS {
        replace(
            text,
            &CARD,
            |caps: &Captures| is_card_number(&caps[0]).then(|| FILTERED.to_owned()),
            &mut count,
        );
    }
    count
}

/// Replaces matches of `re` for which `f` gives a replacement; counts the replacements.
fn replace(
    text: &mut String,
    re: &Regex,
    f: impl Fn(&Captures) -> Option<String>,
    count: &mut usize,
) {
    if !re.is_match(text) {
        return;
    }
    let mut replaced = 0;
    let new = re.replace_all(text, |caps: &Captures| match f(caps) {
        Some(replacement) => {
            replaced += 1;
            replacement
        }
        None => caps[0].to_owned(),
    });
    if replaced > 0 {
        *text = new.into_owned();
        *count += replaced;
    }
}

/// 13 to 19 digits, a card network's prefix, and a valid Luhn check digit.
pub(crate) fn is_card_number(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let prefix2 = digits[0] * 10 + digits[1];
    let prefix4 = prefix2 * 100 + digits[2] * 10 + digits[3];
    let network = digits[0] == 4 // Visa
        || (51..=55).contains(&prefix2) || (2221..=2720).contains(&prefix4) // Mastercard
        || prefix2 == 34 || prefix2 == 37 // Amex
        || prefix2 == 36 || prefix2 == 38 || (3000..=3059).contains(&prefix4) // Diners
        || prefix2 == 35 // JCB
        || prefix4 == 6011 || prefix2 == 65 || (6440..=6499).contains(&prefix4) // Discover
        || prefix2 == 62 // UnionPay
        || prefix2 == 50 || (56..=69).contains(&prefix2); // Maestro
    network && luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                *d
            }
        })
        .sum();
    // The check digit makes the sum a multiple of ten.
    let remainder = sum % 10;
    remainder == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as documented, written the slow way: normalize into a `String`, then compare.
    fn reference_is_sensitive(config: &PiiConfig, key: &str) -> bool {
        let key = normalize_key(key);
        let safe = config.safe_fields.iter().map(|w| normalize_key(w));
        if safe.into_iter().any(|w| w == key) {
            return false;
        }
        let mut words: Vec<String> = Vec::new();
        if config.sensitive_keys {
            words.extend(SENSITIVE_WORDS.iter().map(|w| (*w).to_owned()));
        }
        words.extend(config.extra_fields.iter().map(|w| normalize_key(w)));
        words
            .iter()
            .any(|w| !w.is_empty() && key.contains(w.as_str()))
            || (config.ip_addresses && IP_KEYS.contains(&key.as_str()))
    }

    #[test]
    fn key_rules_agree_with_the_reference_on_short_long_and_unicode_keys() {
        let long = format!("{}-Pass Word-{}", "x".repeat(70), "y".repeat(10));
        let keys = [
            "password",
            " Password ",
            "X-CSRF-Token",
            "session id",
            "author",
            "Authority",
            "remote-addr",
            "REMOTE_ADDR",
            "ip",
            "",
            "  ",
            "clé_secret",
            "ÄPI-KEY",
            "apikey",
            "safe_password",
            "passwd_hint",
            "customer-iban",
            &long,
            &"a".repeat(200),
            &format!("{}token", "ü".repeat(40)),
        ];
        let configs = [
            PiiConfig::default(),
            PiiConfig {
                extra_fields: vec!["IBAN".to_owned(), "pass word".to_owned(), String::new()],
                safe_fields: vec!["Safe-Password".to_owned()],
                ip_addresses: false,
                ..PiiConfig::default()
            },
            PiiConfig {
                sensitive_keys: false,
                ..PiiConfig::default()
            },
        ];
        for config in &configs {
            let rules = KeyRules::new(config);
            for key in keys {
                assert_eq!(
                    rules.is_sensitive(key),
                    reference_is_sensitive(config, key),
                    "{key:?}"
                );
            }
        }
    }

    fn scrub(text: &str) -> (String, usize) {
        let mut text = text.to_owned();
        let count = scrub_text(&mut text, &PiiConfig::default());
        (text, count)
    }

    #[test]
    fn credit_cards_are_replaced() {
        assert_eq!(
            scrub("charge 4111 1111 1111 1111 failed"),
            ("charge [Filtered] failed".to_owned(), 1)
        );
        assert_eq!(
            scrub("cards: 5555-5555-5555-4444, 378282246310005"),
            ("cards: [Filtered], [Filtered]".to_owned(), 2)
        );
        // Luhn fails, no network prefix, or too short: left alone.
        for text in [
            "4111 1111 1111 1112",
            "1795632950895",
            "order 123456789012",
            "id 4111111",
        ] {
            assert_eq!(scrub(text), (text.to_owned(), 0), "{text}");
        }
    }

    #[test]
    fn bearer_tokens_are_replaced() {
        assert_eq!(
            scrub("Authorization failed for Bearer eyJhbGciOi.J9.abc-_~+/=="),
            ("Authorization failed for Bearer [Filtered]".to_owned(), 1)
        );
        assert_eq!(
            scrub("bearer [Filtered]"),
            ("bearer [Filtered]".to_owned(), 0)
        );
    }

    #[test]
    fn url_passwords_are_replaced() {
        assert_eq!(
            scrub("connect postgres://app:hunter2@db.internal:5432/x and https://a.example/"),
            (
                "connect postgres://app:[Filtered]@db.internal:5432/x and https://a.example/"
                    .to_owned(),
                1
            )
        );
        assert_eq!(
            scrub("https://app:[Filtered]@h/"),
            ("https://app:[Filtered]@h/".to_owned(), 0)
        );
        assert_eq!(
            scrub("git@github.com:org/repo"),
            ("git@github.com:org/repo".to_owned(), 0)
        );
    }

    #[test]
    fn rules_can_be_switched_off() {
        let config = PiiConfig {
            credit_cards: false,
            bearer_tokens: false,
            url_auth: false,
            ..Default::default()
        };
        let mut text = "4111111111111111 Bearer abc https://u:p@h/".to_owned();
        assert_eq!(scrub_text(&mut text, &config), 0);
    }

    #[test]
    fn keys_match_by_word_with_safe_and_extra_lists() {
        let rules = KeyRules::new(&PiiConfig::default());
        for key in [
            "password",
            "DB_PASSWORD",
            "X-Auth-Token",
            "Authorization",
            "api-key",
            "Cookie",
            "set-cookie",
            "client_secret",
            "csrftoken",
            "sessionid",
        ] {
            assert!(rules.is_sensitive(key), "{key}");
        }
        for key in [
            "user",
            "local_var",
            "__name__",
            "trace_id",
            "span_id",
            "app_memory",
            "REMOTE_ADDR",
        ] {
            assert!(!rules.is_sensitive(key), "{key}");
        }
        let rules = KeyRules::new(&PiiConfig {
            extra_fields: vec!["IBAN".into()],
            safe_fields: vec!["author".into()],
            ip_addresses: true,
            ..Default::default()
        });
        assert!(rules.is_sensitive("customer_iban"));
        assert!(!rules.is_sensitive("Author"));
        assert!(rules.is_sensitive("authority"));
        assert!(rules.is_sensitive("REMOTE_ADDR"));
        assert!(rules.is_sensitive("X-Forwarded-For"));
    }
}
