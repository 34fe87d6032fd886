//! The sysctls bridge networking needs, in the calling thread's network namespace:
//! `route_localnet` on a bridge (DNAT of 127.0.0.1 into it) and IP forwarding.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::types::check_bridge;

/// IPv4 forwarding.
const IPV4_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// IPv6 forwarding (absent when IPv6 is disabled).
const IPV6_FORWARD: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// The forwarding sysctls' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpForward {
    /// `net.ipv4.ip_forward`.
    pub v4: bool,
    /// `net.ipv6.conf.all.forwarding` (false where IPv6 is disabled).
    pub v6: bool,
}

/// The current forwarding settings.
pub fn ip_forward() -> Result<IpForward> {
    Ok(IpForward {
        v4: read_flag(Path::new(IPV4_FORWARD))?,
        v6: read_v6_flag()?,
    })
}

/// Turns IPv4 and IPv6 forwarding on; returns the settings before, for
/// [`set_ip_forward`] to restore. (Turning v6 forwarding on makes the host ignore router
/// advertisements unless `accept_ra` is 2: the caller decides when.)
pub fn enable_ip_forward() -> Result<IpForward> {
    let previous = ip_forward()?;
    set_ip_forward(IpForward { v4: true, v6: true })?;
    Ok(previous)
}

/// Sets forwarding; v6 is left alone where IPv6 is disabled.
pub fn set_ip_forward(values: IpForward) -> Result<()> {
    write_flag(Path::new(IPV4_FORWARD), values.v4)?;
    if Path::new(IPV6_FORWARD).exists() {
        write_flag(Path::new(IPV6_FORWARD), values.v6)?;
    }
    Ok(())
}

/// `net.ipv4.conf.BRIDGE.route_localnet = 1`: lets packets from 127.0.0.0/8 that were
/// DNAT'd to a container leave through the bridge (they are masqueraded there).
pub fn enable_route_localnet(bridge: &str) -> Result<()> {
    check_bridge(bridge)?;
    write_flag(&route_localnet_path(bridge), true)
}

fn route_localnet_path(bridge: &str) -> PathBuf {
    Path::new("/proc/sys/net/ipv4/conf")
        .join(bridge)
        .join("route_localnet")
}

fn read_v6_flag() -> Result<bool> {
    let path = Path::new(IPV6_FORWARD);
    if !path.exists() {
        return Ok(false);
    }
    read_flag(path)
}

fn read_flag(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string(path).map_err(|source| sysctl_error(path, source))?;
    Ok(text.trim() != "0")
}

fn write_flag(path: &Path, on: bool) -> Result<()> {
    std::fs::write(path, if on { "1\n" } else { "0\n" })
        .map_err(|source| sysctl_error(path, source))
}

fn sysctl_error(path: &Path, source: std::io::Error) -> Error {
    Error::Sysctl {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bridge_is_not_found() {
        let err = enable_route_localnet("nosuchbr0").unwrap_err();
        assert_eq!(err.kind(), pelagos_model::ErrorKind::NotFound, "{err}");
        assert!(enable_route_localnet("../all").is_err());
    }

    #[test]
    fn forwarding_can_be_read() {
        ip_forward().unwrap();
    }
}
