//! Per-interface and forwarding sysctls, written under `/proc/sys/net`. That tree shows the
//! network namespace of the thread that opens a file in it, so these act on the calling
//! thread's namespace.

use std::fs;
use std::path::PathBuf;

use crate::error::Error;
use crate::name::check_ifname;

/// The IP version a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// `net.ipv4`.
    V4,
    /// `net.ipv6`.
    V6,
}

impl IpFamily {
    fn dir(self) -> &'static str {
        match self {
            IpFamily::V4 => "ipv4",
            IpFamily::V6 => "ipv6",
        }
    }
}

/// Sets `net.<family>.conf.<ifname>.<key>` to `value`; `ifname` may also be `all` or
/// `default` (the template of interfaces created later). Writes only when the value differs:
/// some keys (forwarding) reset other settings on every write.
pub fn set_interface(family: IpFamily, ifname: &str, key: &str, value: &str) -> Result<(), Error> {
    check_ifname(ifname)?;
    if key.is_empty() || key.contains('/') || key.starts_with('.') {
        return Err(Error::InvalidSysctlKey {
            key: key.to_owned(),
        });
    }
    let path: PathBuf = ["/proc/sys/net", family.dir(), "conf", ifname, key]
        .iter()
        .collect();
    write_if_different(&path, value)
}

/// `route_localnet`: lets packets to 127.0.0.0/8 be routed out of `ifname`, which DNAT of
/// published ports from the host's loopback needs on a bridge.
pub fn set_route_localnet(ifname: &str, enabled: bool) -> Result<(), Error> {
    set_interface(IpFamily::V4, ifname, "route_localnet", flag(enabled))
}

/// `disable_ipv6` of `ifname` (or `all`, `default`).
pub fn set_ipv6_disabled(ifname: &str, disabled: bool) -> Result<(), Error> {
    set_interface(IpFamily::V6, ifname, "disable_ipv6", flag(disabled))
}

/// `accept_ra` of `ifname` (or `all`, `default`): 0 keeps router advertisements from adding
/// addresses and routes next to static ones.
pub fn set_accept_ra(ifname: &str, value: u8) -> Result<(), Error> {
    set_interface(IpFamily::V6, ifname, "accept_ra", &value.to_string())
}

/// Forwarding between interfaces for the whole namespace: `net.ipv4.ip_forward`, or
/// `net.ipv6.conf.all.forwarding`.
pub fn set_forwarding(family: IpFamily, enabled: bool) -> Result<(), Error> {
    match family {
        IpFamily::V4 => write_if_different(
            &PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
            flag(enabled),
        ),
        IpFamily::V6 => set_interface(IpFamily::V6, "all", "forwarding", flag(enabled)),
    }
}

/// Reads `net.<family>.conf.<ifname>.<key>`, trimmed.
pub fn get_interface(family: IpFamily, ifname: &str, key: &str) -> Result<String, Error> {
    check_ifname(ifname)?;
    let path: PathBuf = ["/proc/sys/net", family.dir(), "conf", ifname, key]
        .iter()
        .collect();
    fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .map_err(|e| Error::io(format!("read {}", path.display()), e))
}

fn flag(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

fn write_if_different(path: &PathBuf, value: &str) -> Result<(), Error> {
    let current =
        fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    if current.trim() == value {
        return Ok(());
    }
    fs::write(path, value).map_err(|e| Error::io(format!("write {value} to {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_names_cannot_leave_the_interface_directory() {
        assert!(set_interface(IpFamily::V4, "lo", "../../ip_forward", "1").is_err());
        assert!(set_interface(IpFamily::V4, "..", "forwarding", "1").is_err());
        assert!(set_interface(IpFamily::V4, "lo", "", "1").is_err());
    }

    #[test]
    fn reads_a_real_interface_sysctl() {
        let value = get_interface(IpFamily::V4, "lo", "forwarding").unwrap();
        assert!(value == "0" || value == "1", "{value}");
    }
}
