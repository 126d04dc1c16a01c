//! Client IP filter (`ip-address`): drops events sent from denied addresses.
//!
//! The address checked is the request's client address (the SDK's host as the relay sees
//! it), not `user.ip_address`. Entries are single addresses or CIDR ranges, IPv4 or IPv6.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::FilterReason;

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

/// `Err(ClientIp)` when `client_ip` is on the deny list.
pub fn should_filter(client_ip: Option<IpAddr>, list: &IpFilterList) -> Result<(), FilterReason> {
    match client_ip {
        Some(ip) if list.contains(ip) => Err(FilterReason::ClientIp),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> IpFilterList {
        IpFilterList::new(entries.iter().map(|e| (*e).to_owned()).collect()).unwrap()
    }

    #[test]
    fn single_addresses_and_ranges() {
        let list = list(&["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]);
        for denied in ["192.0.2.7", "10.20.30.40", "2001:db8::5", "::ffff:10.1.1.1"] {
            assert_eq!(
                should_filter(Some(denied.parse().unwrap()), &list),
                Err(FilterReason::ClientIp),
                "{denied}"
            );
        }
        for allowed in ["192.0.2.8", "11.0.0.1", "2001:db9::1"] {
            assert_eq!(
                should_filter(Some(allowed.parse().unwrap()), &list),
                Ok(()),
                "{allowed}"
            );
        }
        assert_eq!(should_filter(None, &list), Ok(()));
    }

    #[test]
    fn empty_list_filters_nothing_and_bad_entries_are_refused() {
        assert_eq!(
            should_filter(Some("10.0.0.1".parse().unwrap()), &IpFilterList::default()),
            Ok(())
        );
        assert!(IpFilterList::new(vec!["10.0.0.0/99".into()]).is_err());
        assert!(IpFilterList::new(vec!["localhost".into()]).is_err());
    }
}
