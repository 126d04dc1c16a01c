//! Localhost filter (`localhost`): drops events from a developer's own machine.
//!
//! An event is from localhost when `user.ip_address` is a loopback address (`127.0.0.0/8`,
//! `::1`; `{{auto}}` stands for the request's client address), or when the host of
//! `request.url` is `localhost`, a `*.localhost` name or a loopback address.

use std::net::IpAddr;

use serde_json::Value;

use super::{FilterContext, FilterReason};

/// `Err(Localhost)` when `enabled` and the event comes from localhost.
pub fn should_filter(
    event: &Value,
    ctx: &FilterContext,
    enabled: bool,
) -> Result<(), FilterReason> {
    if enabled && (user_ip_is_local(event, ctx) || url_is_local(event)) {
        return Err(FilterReason::Localhost);
    }
    Ok(())
}

fn user_ip_is_local(event: &Value, ctx: &FilterContext) -> bool {
    let ip = match event
        .get("user")
        .and_then(|u| u.get("ip_address"))
        .and_then(Value::as_str)
    {
        Some("{{auto}}") => ctx.client_ip,
        Some(ip) => ip.trim().parse().ok(),
        None => None,
    };
    ip.is_some_and(is_loopback)
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        v4 => v4.is_loopback(),
    }
}

fn url_is_local(event: &Value) -> bool {
    let Some(url) = event
        .get("request")
        .and_then(|r| r.get("url"))
        .and_then(Value::as_str)
    else {
        return false;
    };
    let Some(host) = url_host(url) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// The host of an absolute URL, without userinfo, port or IPv6 brackets.
pub(crate) fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(bracketed) = host_port.strip_prefix('[') {
        return bracketed.split_once(']').map(|(host, _)| host);
    }
    Some(host_port.split(':').next().unwrap_or(host_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(event: Value) -> Result<(), FilterReason> {
        should_filter(&event, &FilterContext::default(), true)
    }

    #[test]
    fn loopback_user_addresses_are_filtered() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(
                check(json!({"user": {"ip_address": ip}})),
                Err(FilterReason::Localhost),
                "{ip}"
            );
        }
        assert_eq!(check(json!({"user": {"ip_address": "192.0.2.1"}})), Ok(()));
    }

    #[test]
    fn auto_means_the_client_address() {
        let event = json!({"user": {"ip_address": "{{auto}}"}});
        let local = FilterContext {
            client_ip: Some("127.0.0.1".parse().unwrap()),
        };
        let remote = FilterContext {
            client_ip: Some("203.0.113.9".parse().unwrap()),
        };
        assert_eq!(
            should_filter(&event, &local, true),
            Err(FilterReason::Localhost)
        );
        assert_eq!(should_filter(&event, &remote, true), Ok(()));
    }

    #[test]
    fn local_urls_are_filtered() {
        for url in [
            "http://localhost:3000/checkout",
            "https://user:pw@LOCALHOST/",
            "http://app.localhost/x",
            "http://127.0.0.1:8000",
            "http://[::1]:8080/path",
        ] {
            assert_eq!(
                check(json!({"request": {"url": url}})),
                Err(FilterReason::Localhost),
                "{url}"
            );
        }
        for url in [
            "https://example.com/localhost",
            "http://localhost.example.com/",
            "/relative",
        ] {
            assert_eq!(check(json!({"request": {"url": url}})), Ok(()), "{url}");
        }
    }

    #[test]
    fn disabled_filters_nothing() {
        let event = json!({"user": {"ip_address": "127.0.0.1"}});
        assert_eq!(
            should_filter(&event, &FilterContext::default(), false),
            Ok(())
        );
    }
}
