//! The lookup table built from a names file: name → addresses (all entries sharing the
//! name), address → the name a PTR query answers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::names::Names;

/// What a name resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// A records.
    pub v4: Vec<Ipv4Addr>,
    /// AAAA records.
    pub v6: Vec<Ipv6Addr>,
}

/// The resolver's view of one names file.
#[derive(Debug, Default)]
pub struct Records {
    by_name: HashMap<String, Addresses>,
    by_addr: HashMap<IpAddr, String>,
    /// A container's address → its own upstream servers (`--dns`).
    upstreams: HashMap<IpAddr, Vec<IpAddr>>,
    domain: Option<String>,
    entries: usize,
}

impl Records {
    /// Index `names`.
    pub fn new(names: &Names) -> Records {
        let domain = names
            .domain
            .as_deref()
            .map(normalize)
            .filter(|d| !d.is_empty());
        let mut records = Records {
            domain,
            entries: names.entries.len(),
            ..Records::default()
        };
        for entry in &names.entries {
            for name in &entry.names {
                let found = records.by_name.entry(normalize(name)).or_default();
                push_new(&mut found.v4, &entry.v4);
                push_new(&mut found.v6, &entry.v6);
            }
            let Some(first) = entry.names.first() else {
                continue;
            };
            let fqdn = records.fqdn(first);
            let addrs = entry.v4.iter().map(|a| IpAddr::from(*a));
            for addr in addrs.chain(entry.v6.iter().map(|a| IpAddr::from(*a))) {
                records.by_addr.entry(addr).or_insert_with(|| fqdn.clone());
                if !entry.dns.is_empty() {
                    records.upstreams.insert(addr, entry.dns.clone());
                }
            }
        }
        records
    }

    /// Whether the file had no entries (the network has no containers).
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The addresses of `qname`: any case, with or without the trailing dot and the
    /// network's domain.
    pub fn lookup(&self, qname: &str) -> Option<&Addresses> {
        let name = normalize(qname);
        if let Some(found) = self.by_name.get(&name) {
            return Some(found);
        }
        let domain = self.domain.as_deref()?;
        let short = name.strip_suffix(domain)?.strip_suffix('.')?;
        self.by_name.get(short)
    }

    /// The fully qualified name of the container with address `addr` (PTR).
    pub fn reverse(&self, addr: IpAddr) -> Option<&str> {
        self.by_addr.get(&addr).map(String::as_str)
    }

    /// The upstream servers of the container at `client` (`--dns`); empty: the host's.
    pub fn upstreams_of(&self, client: IpAddr) -> &[IpAddr] {
        self.upstreams.get(&client).map_or(&[], Vec::as_slice)
    }

    /// `name` with the network's domain and the root's dot.
    fn fqdn(&self, name: &str) -> String {
        match &self.domain {
            Some(domain) => format!("{}.{domain}.", normalize(name)),
            None => format!("{}.", normalize(name)),
        }
    }
}

/// Lower case, no trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Append the addresses of `from` not yet in `to` (a shared alias lists each address once).
fn push_new<T: PartialEq + Copy>(to: &mut Vec<T>, from: &[T]) {
    for addr in from {
        if !to.contains(addr) {
            to.push(*addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Entry;

    fn names() -> Names {
        let one = Entry::container(
            "0123456789abcdef",
            "web",
            &["front".into()],
            vec![Ipv4Addr::new(10, 0, 0, 2)],
            vec!["fd00::2".parse().unwrap()],
        );
        let two = Entry::container(
            "fedcba9876543210",
            "Web2",
            &["front".into()],
            vec![Ipv4Addr::new(10, 0, 0, 3)],
            vec![],
        );
        Names {
            domain: Some("Dns.Pelagos.".into()),
            entries: vec![one, two],
        }
    }

    #[test]
    fn names_match_in_any_case_with_or_without_dot_and_domain() {
        let records = Records::new(&names());
        for q in [
            "web",
            "WEB.",
            "web.dns.pelagos",
            "Web.DNS.pelagos.",
            "0123456789AB",
        ] {
            assert_eq!(
                records.lookup(q).unwrap().v4,
                [Ipv4Addr::new(10, 0, 0, 2)],
                "{q}"
            );
        }
        assert_eq!(records.lookup("web2").unwrap().v6, Vec::<Ipv6Addr>::new());
        assert!(records.lookup("web.other").is_none());
        assert!(records.lookup("dns.pelagos").is_none());
        assert!(records.lookup("0123456789abc").is_none());
    }

    #[test]
    fn a_shared_alias_answers_every_address() {
        let records = Records::new(&names());
        assert_eq!(
            records.lookup("front").unwrap().v4,
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
        );
    }

    #[test]
    fn reverse_gives_the_first_name_in_the_domain() {
        let records = Records::new(&names());
        assert_eq!(
            records.reverse("10.0.0.3".parse().unwrap()),
            Some("web2.dns.pelagos.")
        );
        assert_eq!(
            records.reverse("fd00::2".parse().unwrap()),
            Some("web.dns.pelagos.")
        );
        assert_eq!(records.reverse("10.0.0.9".parse().unwrap()), None);
        assert!(!records.is_empty());
        assert!(Records::new(&Names::default()).is_empty());
    }

    #[test]
    fn a_container_s_own_upstreams_go_with_its_addresses() {
        let mut names = names();
        let own: IpAddr = "9.9.9.9".parse().unwrap();
        names.entries[1].dns = vec![own];
        let records = Records::new(&names);
        assert_eq!(records.upstreams_of("10.0.0.3".parse().unwrap()), [own]);
        assert!(records.upstreams_of("10.0.0.2".parse().unwrap()).is_empty());
        assert!(records.upstreams_of("fd00::2".parse().unwrap()).is_empty());
    }
}
