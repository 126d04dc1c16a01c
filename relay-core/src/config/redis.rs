//! The `redis` section: where quotas are counted when several relays share them.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// A Redis server (or cluster) shared by every relay of a fleet to count quotas in.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]` or `rediss://...` (TLS) for one server, or a list of such URLs
    /// for the nodes of a Redis Cluster.
    pub url: RedisUrl,
    /// How long one quota check may take before the relay counts on its own (the local
    /// limiter) instead, in milliseconds. Defaults to 100.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    100
}

/// One server's URL, or the nodes of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RedisUrl {
    /// A single server.
    Single(String),
    /// The nodes of a Redis Cluster (any reachable subset; the others are discovered).
    Cluster(Vec<String>),
}

impl RedisUrl {
    /// Every URL given.
    pub fn urls(&self) -> Vec<&str> {
        match self {
            RedisUrl::Single(url) => vec![url.as_str()],
            RedisUrl::Cluster(urls) => urls.iter().map(String::as_str).collect(),
        }
    }
}

impl RedisConfig {
    /// Checks the URLs' schemes and the timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("redis.timeout_ms", "must be at least 1"));
        }
        let urls = self.url.urls();
        if urls.is_empty() {
            return Err(ConfigError::new("redis.url", "names no server"));
        }
        for (index, url) in urls.iter().enumerate() {
            let key = match self.url {
                RedisUrl::Single(_) => "redis.url".to_owned(),
                RedisUrl::Cluster(_) => format!("redis.url[{index}]"),
            };
            let Some((scheme, rest)) = url.split_once("://") else {
                return Err(ConfigError::new(key, format!("{url:?} is not a URL")));
            };
            if scheme != "redis" && scheme != "rediss" {
                return Err(ConfigError::new(
                    key,
                    format!("scheme {scheme:?} is neither redis nor rediss"),
                ));
            }
            if rest.is_empty() || rest.starts_with('/') {
                return Err(ConfigError::new(key, format!("{url:?} names no host")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: serde_json::Value) -> RedisConfig {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn single_url_and_cluster_list() {
        let single = parse(serde_json::json!({"url": "redis://127.0.0.1:6379"}));
        assert_eq!(single.url.urls(), ["redis://127.0.0.1:6379"]);
        assert_eq!(single.timeout_ms, 100);
        single.validate().unwrap();

        let cluster = parse(serde_json::json!({
            "url": ["rediss://a:7000", "rediss://b:7000"], "timeout_ms": 50}));
        assert_eq!(cluster.url.urls().len(), 2);
        cluster.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let key = |value| parse(value).validate().unwrap_err().key;
        assert_eq!(key(serde_json::json!({"url": "http://x:1"})), "redis.url");
        assert_eq!(key(serde_json::json!({"url": "redis:///0"})), "redis.url");
        assert_eq!(
            key(serde_json::json!({"url": ["redis://a:1", "b:2"]})),
            "redis.url[1]"
        );
        assert_eq!(key(serde_json::json!({"url": []})), "redis.url");
        assert_eq!(
            key(serde_json::json!({"url": "redis://a:1", "timeout_ms": 0})),
            "redis.timeout_ms"
        );
    }
}
