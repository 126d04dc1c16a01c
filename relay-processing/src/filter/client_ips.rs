//! Client IP filter (`ip-address`): drops events sent from denied addresses.
//!
//! The address checked is the request's client address (the SDK's host as the relay sees
//! it), not `user.ip_address`. Entries are single addresses or CIDR ranges, IPv4 or IPv6.

use std::net::IpAddr;

use super::FilterReason;
/// The deny list is part of the configuration schema, in relay-core.
pub use relay_core::config::{InvalidIpEntry, IpFilterList};

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
