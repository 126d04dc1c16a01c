//! The `limits` section: sizes and request rates the intake accepts.

use serde::{Deserialize, Serialize};

use super::IpFilterList;

/// Size limits. A request over a limit is answered 413.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body as received (compressed), in bytes. Defaults to 20 MiB.
    pub max_request_size: usize,
    /// Largest envelope after decompression, in bytes. Defaults to 100 MiB.
    pub max_envelope_size: usize,
    /// Largest event or transaction item, in bytes. Defaults to 1 MiB.
    pub max_event_size: usize,
    /// Largest single attachment (minidumps included), in bytes. Defaults to 100 MiB.
    pub max_attachment_size: usize,
    /// Requests per second allowed from one client IP (with bursts of twice that); beyond,
    /// 429 with `Retry-After`. 0 turns the limit off. Defaults to 1000.
    pub per_ip_requests_per_second: u32,
    /// Intake requests handled at once; beyond, 503 with `Retry-After`. Defaults to 1024.
    pub max_concurrent_requests: usize,
    /// Intake requests handled at once from one client IP; beyond, 503 with `Retry-After`.
    /// Keeps one address (slow or hostile) from holding every request slot. 0 turns the
    /// limit off (load tests from one machine). Defaults to 256.
    pub max_concurrent_requests_per_ip: usize,
    /// Bytes of request bodies held at once across all requests, from the first byte read
    /// until the envelope is spooled: bodies as received, decompressed, and the spool record.
    /// A request that does not fit is answered 503 with `Retry-After`. Must hold the largest
    /// request (`max_request_size`, `max_attachment_size`) twice over, as a record is built
    /// from a held body. Defaults to 256 MiB.
    pub max_inflight_bytes: usize,
    /// Seconds a request body may take to arrive, from the handler's start; a slower body is
    /// answered 408. Defaults to 30.
    pub body_timeout_secs: u64,
    /// Peers whose `X-Forwarded-For` names the client (edge relays, load balancers):
    /// addresses and CIDR ranges. A request from one of them counts against the address it
    /// forwards for (per-IP limits, IP filters, `{{auto}}` user addresses); from any other
    /// peer the header is ignored. Defaults to none.
    pub trusted_proxies: IpFilterList,
}

/// A mebibyte, for byte-sized defaults.
pub(super) const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_size: 20 * MIB,
            max_envelope_size: 100 * MIB,
            max_event_size: MIB,
            max_attachment_size: 100 * MIB,
            per_ip_requests_per_second: 1000,
            max_concurrent_requests: 1024,
            max_concurrent_requests_per_ip: 256,
            max_inflight_bytes: 256 * MIB,
            body_timeout_secs: 30,
            trusted_proxies: IpFilterList::default(),
        }
    }
}

impl Limits {
    /// The largest body one request may hold: as received, or decompressed.
    pub fn largest_body(&self) -> usize {
        self.max_request_size
            .max(self.max_attachment_size)
            .max(self.max_envelope_size)
    }

    /// Checks that the in-flight budget can hold the largest request while its spool record
    /// is built; a smaller budget would refuse such a request forever.
    pub(super) fn validate_budget(&self) -> Result<(), super::ConfigError> {
        let needed = self.largest_body().saturating_mul(2);
        if self.max_inflight_bytes < needed {
            return Err(super::ConfigError::new(
                "limits.max_inflight_bytes",
                format!(
                    "must be at least {needed}: twice the largest of max_request_size, \
                     max_envelope_size and max_attachment_size"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_must_hold_the_largest_request_twice() {
        assert_eq!(Limits::default().validate_budget(), Ok(()));
        let limits = Limits {
            max_attachment_size: 200 * MIB,
            ..Limits::default()
        };
        let error = limits.validate_budget().unwrap_err();
        assert_eq!(error.key, "limits.max_inflight_bytes");
        assert!(error.reason.contains(&(400 * MIB).to_string()), "{error}");
    }
}
