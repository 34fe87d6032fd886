//! IPAM: each network's leases in `<id>/leases.json`, changed only under the OFD lock on
//! `<id>/leases.lock`; first free address of the range (or subnet), Docker's MAC from the
//! IPv4 address. The resolver's names are not kept here: the monitor writes them
//! (`<id>/dns/names.json`, `pelagos_dns::names`) for user networks only, once attached.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{read_json, replace_json, Durability, FileLock};
use crate::mac::MacAddress;
use crate::record::{IpamPool, NetworkContainer, NetworkRecord};
use crate::store::{Networks, NETWORK_FILE};

/// The leases of a network, inside its directory.
pub const LEASES_FILE: &str = "leases.json";
/// The lock guarding `leases.json`.
pub const LEASES_LOCK: &str = "leases.lock";

/// What a container asks of a network when it joins it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointRequest {
    /// The container's full id.
    pub container_id: String,
    /// The container's name (without Docker's leading `/`).
    pub name: String,
    /// `--network-alias` values.
    pub aliases: Vec<String>,
    /// `--ip`: this address or an error.
    pub ipv4: Option<Ipv4Addr>,
    /// `--ip6`: this address or an error.
    pub ipv6: Option<Ipv6Addr>,
    /// `--mac-address` (default: 02:42 and the IPv4 address).
    pub mac: Option<MacAddress>,
}

/// One container's endpoint on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub container_id: String,
    /// 64 hex, as Docker's `EndpointID`.
    pub endpoint_id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub ipv4: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Addr>,
    pub mac: MacAddress,
}

impl Lease {
    /// The lease's addresses, IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        std::iter::once(IpAddr::V4(self.ipv4))
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseFile {
    leases: Vec<Lease>,
}

/// Takes the lease lock of the network in `dir`; `None` when the network is gone.
pub(crate) fn lock_leases(dir: &Path) -> Result<Option<FileLock>> {
    if !dir.join(NETWORK_FILE).exists() {
        return Ok(None);
    }
    let lock = FileLock::exclusive(&dir.join(LEASES_LOCK), true);
    // Removed while we waited: the directory was renamed away under the lock.
    match lock {
        Ok(Some(l)) if dir.join(NETWORK_FILE).exists() => Ok(Some(l)),
        Ok(_) => Ok(None),
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The leases in `dir` (read under its lock by writers; a snapshot for readers).
pub(crate) fn read_leases(dir: &Path) -> Result<Vec<Lease>> {
    Ok(read_json::<LeaseFile>(&dir.join(LEASES_FILE))?
        .unwrap_or_default()
        .leases)
}

/// Writes the leases.
fn write_leases(dir: &Path, leases: Vec<Lease>) -> Result<()> {
    replace_json(
        &dir.join(LEASES_FILE),
        &LeaseFile { leases },
        Durability::Volatile,
    )
}

impl Networks {
    /// Runs `change` on the network's leases under its lock and writes the result.
    fn with_leases<T>(
        &self,
        network: &NetworkRecord,
        change: impl FnOnce(&mut Vec<Lease>) -> Result<T>,
    ) -> Result<T> {
        let dir = self.dir_of(network);
        let Some(_lock) = lock_leases(&dir)? else {
            return Err(Error::NotFound(network.name.clone()));
        };
        let mut leases = read_leases(&dir)?;
        let before = leases.clone();
        let out = change(&mut leases)?;
        if leases != before {
            write_leases(&dir, leases)?;
        }
        Ok(out)
    }

    /// Leases addresses on `network` for a container: the requested ones if free, else the
    /// first free of the range (never the network, broadcast, gateway or aux addresses).
    pub fn allocate(&self, network: &NetworkRecord, request: &EndpointRequest) -> Result<Lease> {
        let v4_pool = network.ipv4_pool().ok_or_else(|| no_addresses(network))?;
        let endpoint_id =
            pelagos_model::names::new_id().map_err(|e| Error::io("new id", to_io(e)))?;
        self.with_leases(network, |leases| {
            if let Some(l) = leases
                .iter()
                .find(|l| l.container_id == request.container_id)
            {
                return Err(Error::EndpointExists {
                    name: l.name.clone(),
                    network: network.name.clone(),
                });
            }
            let used: HashSet<IpAddr> = leases.iter().flat_map(Lease::addresses).collect();
            let ipv4 = match pick(network, v4_pool, &used, request.ipv4.map(IpAddr::V4))? {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => return Err(no_addresses(network)),
            };
            let ipv6 = match network.ipv6_pool() {
                Some(pool) => match pick(network, pool, &used, request.ipv6.map(IpAddr::V6))? {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                },
                None => None,
            };
            let lease = Lease {
                container_id: request.container_id.clone(),
                endpoint_id,
                name: request.name.clone(),
                aliases: request.aliases.clone(),
                ipv4,
                ipv6,
                mac: request.mac.unwrap_or_else(|| MacAddress::from_ipv4(ipv4)),
            };
            leases.push(lease.clone());
            Ok(lease)
        })
    }

    /// Frees a container's lease on `network` (none: `Ok(None)`).
    pub fn release(&self, network: &NetworkRecord, container_id: &str) -> Result<Option<Lease>> {
        self.with_leases(network, |leases| {
            let at = leases.iter().position(|l| l.container_id == container_id);
            Ok(at.map(|i| leases.remove(i)))
        })
    }

    /// The current leases of `network`.
    pub fn leases(&self, network: &NetworkRecord) -> Result<Vec<Lease>> {
        read_leases(&self.dir_of(network))
    }

    /// Frees the leases of containers `alive` says are gone; returns them.
    pub fn reconcile(
        &self,
        network: &NetworkRecord,
        alive: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Lease>> {
        self.with_leases(network, |leases| {
            let (keep, gone): (Vec<Lease>, Vec<Lease>) =
                leases.drain(..).partition(|l| alive(&l.container_id));
            *leases = keep;
            Ok(gone)
        })
    }

    /// `network inspect`'s `Containers` of `network`, from its leases.
    pub fn endpoints(&self, network: &NetworkRecord) -> Result<BTreeMap<String, NetworkContainer>> {
        let prefix = |pool: Option<&IpamPool>| pool.map_or(0, |p| p.subnet.prefix_len());
        let v4_len = prefix(network.ipv4_pool());
        let v6_len = prefix(network.ipv6_pool());
        Ok(self
            .leases(network)?
            .into_iter()
            .map(|l| {
                let view = NetworkContainer {
                    name: l.name.clone(),
                    endpoint_id: l.endpoint_id.clone(),
                    mac_address: l.mac.to_string(),
                    ipv4_address: format!("{}/{v4_len}", l.ipv4),
                    ipv6_address: l.ipv6.map(|a| format!("{a}/{v6_len}")).unwrap_or_default(),
                };
                (l.container_id, view)
            })
            .collect())
    }
}

fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn no_addresses(network: &NetworkRecord) -> Error {
    Error::Invalid(format!(
        "network {} has no addresses to lease",
        network.name
    ))
}

/// The requested address checked, or the first free one.
fn pick(
    network: &NetworkRecord,
    pool: &IpamPool,
    used: &HashSet<IpAddr>,
    requested: Option<IpAddr>,
) -> Result<IpAddr> {
    let reserved = reserved(pool);
    match requested {
        Some(ip) => check_requested(pool, &reserved, used, ip),
        None => first_free(pool, &reserved, used).ok_or_else(|| Error::Exhausted {
            family: if pool.subnet.addr().is_ipv4() {
                "IPv4"
            } else {
                "IPv6"
            },
            network: network.name.clone(),
            subnet: pool.subnet.to_string(),
        }),
    }
}

/// The subnet's network and (IPv4) broadcast addresses, the gateway and aux addresses.
fn reserved(pool: &IpamPool) -> HashSet<IpAddr> {
    let mut out: HashSet<IpAddr> = pool.aux_addresses.values().copied().collect();
    out.insert(pool.gateway);
    out.insert(pool.subnet.network());
    if pool.subnet.addr().is_ipv4() {
        out.insert(pool.subnet.broadcast());
    }
    out
}

fn check_requested(
    pool: &IpamPool,
    reserved: &HashSet<IpAddr>,
    used: &HashSet<IpAddr>,
    ip: IpAddr,
) -> Result<IpAddr> {
    if !pool.subnet.contains(&ip) {
        return Err(Error::Invalid(format!(
            "Invalid address {ip}: It does not belong to any of this network's subnets"
        )));
    }
    if ip == pool.subnet.network() || (ip.is_ipv4() && ip == pool.subnet.broadcast()) {
        return Err(Error::Invalid(format!(
            "Invalid address {ip}: it is the network or broadcast address of {}",
            pool.subnet
        )));
    }
    if reserved.contains(&ip) || used.contains(&ip) {
        return Err(Error::AddressInUse(ip));
    }
    Ok(ip)
}

/// The lowest address of the pool that is neither reserved nor used. At most
/// `reserved + used + 1` candidates are looked at, however large the pool.
fn first_free(
    pool: &IpamPool,
    reserved: &HashSet<IpAddr>,
    used: &HashSet<IpAddr>,
) -> Option<IpAddr> {
    let range = pool.pool();
    let (start, end) = (to_u128(range.network()), to_u128(range.broadcast()));
    let bound = (reserved.len() + used.len()) as u128;
    (0..=bound)
        .map_while(|offset| start.checked_add(offset).filter(|a| *a <= end))
        .map(|a| from_u128(a, &range))
        .find(|ip| !reserved.contains(ip) && !used.contains(ip))
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(value: u128, family: &IpNet) -> IpAddr {
    match family {
        // Values come from within an IPv4 range, so they fit in 32 bits.
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(subnet: &str, range: Option<&str>, gateway: &str) -> IpamPool {
        IpamPool {
            subnet: subnet.parse().unwrap(),
            ip_range: range.map(|r| r.parse().unwrap()),
            gateway: gateway.parse().unwrap(),
            aux_addresses: BTreeMap::new(),
        }
    }

    fn ips(list: &[&str]) -> HashSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn first_free_skips_reserved_and_used() {
        let p = pool("10.0.0.0/24", None, "10.0.0.1");
        let r = reserved(&p);
        assert_eq!(
            first_free(&p, &r, &ips(&[])).unwrap().to_string(),
            "10.0.0.2"
        );
        let used = ips(&["10.0.0.2", "10.0.0.4"]);
        assert_eq!(first_free(&p, &r, &used).unwrap().to_string(), "10.0.0.3");
        let tiny = pool("10.0.0.0/30", None, "10.0.0.1");
        let r = reserved(&tiny);
        assert_eq!(
            first_free(&tiny, &r, &ips(&[])).unwrap().to_string(),
            "10.0.0.2"
        );
        assert!(first_free(&tiny, &r, &ips(&["10.0.0.2"])).is_none());
    }

    #[test]
    fn ranges_and_ipv6() {
        let p = pool("10.0.0.0/16", Some("10.0.5.0/24"), "10.0.0.1");
        let r = reserved(&p);
        assert_eq!(
            first_free(&p, &r, &ips(&[])).unwrap().to_string(),
            "10.0.5.0"
        );
        let p6 = pool("fd00:1::/64", None, "fd00:1::1");
        let r = reserved(&p6);
        assert_eq!(
            first_free(&p6, &r, &ips(&[])).unwrap().to_string(),
            "fd00:1::2"
        );
    }

    #[test]
    fn requested_addresses_are_checked() {
        let p = pool("10.0.0.0/24", Some("10.0.0.128/25"), "10.0.0.1");
        let r = reserved(&p);
        let used = ips(&["10.0.0.7"]);
        let ask = |s: &str| check_requested(&p, &r, &used, s.parse().unwrap());
        assert_eq!(ask("10.0.0.9").unwrap().to_string(), "10.0.0.9");
        assert!(matches!(ask("10.0.0.7"), Err(Error::AddressInUse(_))));
        assert!(matches!(ask("10.0.0.1"), Err(Error::AddressInUse(_))));
        assert!(ask("10.0.1.1")
            .unwrap_err()
            .to_string()
            .contains("does not belong"));
        assert!(ask("10.0.0.255")
            .unwrap_err()
            .to_string()
            .contains("broadcast"));
    }
}
