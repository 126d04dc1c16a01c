//! Inbound filter settings of a project (`projects[].filters`); the filters themselves are
//! in `relay_processing::filter`. Globs and IP ranges are compiled as the file is parsed, so
//! an invalid one is an error that names its key.

use std::net::IpAddr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The inbound filters of one project. Every filter is off by default: nothing is dropped
/// unless the operator asks for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Drop events from a local machine: `user.ip_address` is a loopback address or the
    /// `request.url` host is `localhost`/loopback. Defaults to false.
    pub localhost: bool,
    /// Drop errors caused by browser extensions. Defaults to false.
    pub browser_extensions: bool,
    /// Drop events from legacy browsers (Internet Explorer, EdgeHTML, Presto Opera < 15,
    /// Opera Mini < 8, Safari < 6, Android browser < 4). Defaults to false.
    pub legacy_browsers: bool,
    /// Drop events from known web crawlers and bots, by user agent. Defaults to false.
    pub web_crawlers: bool,
    /// Drop errors whose message matches one of these globs (case-insensitive; `*` matches
    /// anything, `?` one character), e.g. `"*ResizeObserver loop*"`. Defaults to none.
    pub error_messages: GlobPatterns,
    /// Drop events whose `release` matches one of these globs, e.g. `"*-beta*"`. Defaults to
    /// none.
    pub releases: GlobPatterns,
    /// Drop events sent from these client addresses: single IPs or CIDR ranges, e.g.
    /// `"10.0.0.0/8"`. Defaults to none.
    pub client_ips: IpFilterList,
}

/// A list of case-insensitive globs, compiled when the configuration is read (an invalid
/// pattern is a configuration error). Written in configuration as a list of strings.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct GlobPatterns {
    patterns: Vec<String>,
    set: GlobSet,
}

impl GlobPatterns {
    /// Compiles `patterns`; `*` matches any text (also `/` and line breaks), `?` one
    /// character, `[abc]` and `{a,b}` as usual.
    pub fn new(patterns: Vec<String>) -> Result<Self, globset::Error> {
        let mut builder = GlobSetBuilder::new();
        for pattern in &patterns {
            builder.add(
                GlobBuilder::new(pattern)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()?,
            );
        }
        Ok(GlobPatterns {
            set: builder.build()?,
            patterns,
        })
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `text` matches any pattern.
    pub fn is_match(&self, text: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(text)
    }
}

impl PartialEq for GlobPatterns {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl TryFrom<Vec<String>> for GlobPatterns {
    type Error = globset::Error;

    fn try_from(patterns: Vec<String>) -> Result<Self, Self::Error> {
        GlobPatterns::new(patterns)
    }
}

impl From<GlobPatterns> for Vec<String> {
    fn from(globs: GlobPatterns) -> Self {
        globs.patterns
    }
}

/// A deny list of addresses and ranges, parsed when the configuration is read. Written in
/// configuration as a list of strings (`"192.0.2.7"`, `"10.0.0.0/8"`, `"2001:db8::/32"`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct IpFilterList {
    entries: Vec<String>,
    nets: Vec<IpNet>,
}

/// An entry that is neither an IP address nor a CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range")]
pub struct InvalidIpEntry(pub String);

impl IpFilterList {
    /// Parses the entries.
    pub fn new(entries: Vec<String>) -> Result<Self, InvalidIpEntry> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidIpEntry(entry.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(IpFilterList { entries, nets })
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is in one of the ranges. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

impl TryFrom<Vec<String>> for IpFilterList {
    type Error = InvalidIpEntry;

    fn try_from(entries: Vec<String>) -> Result<Self, Self::Error> {
        IpFilterList::new(entries)
    }
}

impl From<IpFilterList> for Vec<String> {
    fn from(list: IpFilterList) -> Self {
        list.entries
    }
}
