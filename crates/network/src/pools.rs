//! Subnets chosen for networks that name none: Docker's default address pools
//! (172.17-31.0.0/16, then 192.168.0.0/16 in /20s) and RFC 4193 unique-local IPv6 /64s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};

/// The default network's subnet when nothing is taken.
pub const DEFAULT_BRIDGE_SUBNET: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(172, 17, 0, 0), 16);

/// Docker's default address pools, in the order Docker hands them out.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let big = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let small = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    big.chain(small)
}

/// Whether two subnets share an address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first default pool overlapping none of `used` (other networks' subnets, the host's
/// routes), skipping 172.17.0.0/16 when `reserve_default` (kept for the default network).
pub fn pick_v4(used: &[IpNet], reserve_default: bool) -> Result<Ipv4Net> {
    default_pools()
        .filter(|p| !(reserve_default && *p == DEFAULT_BRIDGE_SUBNET))
        .find(|p| !used.iter().any(|u| overlaps(&IpNet::V4(*p), u)))
        .ok_or(Error::NoFreePool)
}

/// A unique-local /64 (RFC 4193: `fd` and a random 40-bit global id, subnet id 0) that
/// overlaps none of `used`.
pub fn pick_ula(used: &[IpNet]) -> Result<Ipv6Net> {
    loop {
        let mut bytes = [0u8; 16];
        bytes[0] = 0xfd;
        fill_random(&mut bytes[1..6])?;
        let net =
            Ipv6Net::new(Ipv6Addr::from(bytes), 64).map_err(|e| Error::Invalid(e.to_string()))?;
        if !used.iter().any(|u| overlaps(&IpNet::V6(net), u)) {
            return Ok(net);
        }
    }
}

/// The first host address of a subnet: Docker's default gateway.
pub fn first_host(subnet: &IpNet) -> IpAddr {
    match subnet {
        IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()).wrapping_add(1))),
        IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).wrapping_add(1))),
    }
}

fn fill_random(buf: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("getrandom", e.into())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn pools_in_dockers_order() {
        let all: Vec<Ipv4Net> = default_pools().collect();
        assert_eq!(all.len(), 31);
        assert_eq!(all[0].to_string(), "172.17.0.0/16");
        assert_eq!(all[14].to_string(), "172.31.0.0/16");
        assert_eq!(all[15].to_string(), "192.168.0.0/20");
        assert_eq!(all[30].to_string(), "192.168.240.0/20");
    }

    #[test]
    fn picks_skip_used_and_taken() {
        assert_eq!(pick_v4(&[], false).unwrap().to_string(), "172.17.0.0/16");
        assert_eq!(pick_v4(&[], true).unwrap().to_string(), "172.18.0.0/16");
        let used = [net("172.17.5.0/24"), net("172.16.0.0/12")];
        assert_eq!(pick_v4(&used, false).unwrap().to_string(), "192.168.0.0/20");
        let used = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert!(matches!(pick_v4(&used, false), Err(Error::NoFreePool)));
    }

    #[test]
    fn ula_is_fd_slash_64() {
        let a = pick_ula(&[]).unwrap();
        assert_eq!(a.prefix_len(), 64);
        assert_eq!(a.network().octets()[0], 0xfd);
        assert_eq!(a.network(), a.addr());
        assert!(!overlaps(&IpNet::V6(a), &net("fc00::/8")));
        assert_eq!(first_host(&net("10.1.0.0/16")).to_string(), "10.1.0.1");
        assert_eq!(first_host(&net("fd00:1::/64")).to_string(), "fd00:1::1");
    }
}
