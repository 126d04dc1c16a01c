//! The `limits` section: sizes and request rates the intake accepts.

use serde::{Deserialize, Serialize};

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
        }
    }
}
