//! What callers ask for: a network's rules ([`NetworkRules`]) and a container's published
//! ports ([`PortRule`]), with the checks that keep them expressible as nft rules.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// The rules of one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// The bridge's interface name (`pelagos0`, `br-0123456789ab`).
    pub bridge: String,
    /// The network's subnets (v4 and/or v6).
    pub subnets: Vec<IpNet>,
    /// `--internal`: no forwarding in or out of the bridge, no masquerade.
    pub internal: bool,
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Proto {
    /// nft's name of the protocol's header.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// The IP protocol number (`meta l4proto`).
    pub(crate) fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }
}

/// One published port or port range: `[host_ip:]host_port[-host_port_end]/proto` →
/// `container_ip:container_port[-…]`; port `host_port + i` goes to `container_port + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// The host address it is published on; `None` or an unspecified address (`0.0.0.0`,
    /// `::`): every local address of `container_ip`'s family.
    pub host_ip: Option<IpAddr>,
    /// The first host port.
    pub host_port: u16,
    /// The last host port (equal to `host_port` for a single port).
    pub host_port_end: u16,
    /// The container's address on its network.
    pub container_ip: IpAddr,
    /// The container port of `host_port`.
    pub container_port: u16,
    /// The protocol.
    pub proto: Proto,
}

impl PortRule {
    /// The host address to match, if any (unspecified addresses match every address).
    pub(crate) fn matched_host_ip(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }

    /// Checks the rule can be expressed: ports in order and in range, one address family.
    pub(crate) fn check(&self) -> Result<()> {
        let bad = |detail: String| Err(Error::invalid("port rule", detail));
        if self.host_port == 0 || self.container_port == 0 {
            return bad(format!("{self:?}: port 0"));
        }
        if self.host_port_end < self.host_port {
            return bad(format!("{self:?}: range ends before it starts"));
        }
        let span = self.host_port_end - self.host_port;
        if u32::from(self.container_port) + u32::from(span) > u32::from(u16::MAX) {
            return bad(format!("{self:?}: container ports past 65535"));
        }
        match self.host_ip {
            Some(host) if host.is_ipv4() != self.container_ip.is_ipv4() => bad(format!(
                "{self:?}: host and container addresses of different families"
            )),
            _ => Ok(()),
        }
    }
}

/// Checks an interface name: 1 to 15 bytes, no `/`, whitespace or quotes (the kernel's
/// rules plus what keeps it a plain nft string).
pub(crate) fn check_bridge(name: &str) -> Result<()> {
    let bad_char = |c: char| c == '/' || c == '"' || c == '\'' || c == '@' || c.is_whitespace();
    if name.is_empty() || name.len() > 15 || name.contains(bad_char) || name == "." || name == ".."
    {
        return Err(Error::invalid("bridge name", format!("{name:?}")));
    }
    Ok(())
}

/// Checks a container id: 1 to 100 of `[A-Za-z0-9_.-]` (it names a chain and a comment).
pub(crate) fn check_container_id(id: &str) -> Result<()> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    if id.is_empty() || id.len() > 100 || !id.chars().all(ok) {
        return Err(Error::invalid("container id", format!("{id:?}")));
    }
    Ok(())
}

#[cfg(test)]
impl PortRule {
    /// `-p 8080:80` to 10.88.0.2 over TCP: the unit tests' port.
    pub(crate) fn sample() -> PortRule {
        PortRule {
            host_ip: None,
            host_port: 8080,
            host_port_end: 8080,
            container_ip: "10.88.0.2".parse().unwrap(),
            container_port: 80,
            proto: Proto::Tcp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> PortRule {
        PortRule::sample()
    }

    #[test]
    fn port_rules_are_checked() {
        assert!(rule().check().is_ok());
        let backwards = PortRule {
            host_port_end: 8000,
            ..rule()
        };
        assert!(backwards.check().is_err());
        let past_end = PortRule {
            host_port_end: 8090,
            container_port: 65530,
            ..rule()
        };
        assert!(past_end.check().is_err());
        let mixed = PortRule {
            host_ip: Some("::1".parse().unwrap()),
            ..rule()
        };
        assert!(mixed.check().is_err());
        let zero = PortRule {
            host_port: 0,
            ..rule()
        };
        assert!(zero.check().is_err());
    }

    #[test]
    fn unspecified_host_ip_matches_everything() {
        let any = PortRule {
            host_ip: Some("0.0.0.0".parse().unwrap()),
            ..rule()
        };
        assert_eq!(any.matched_host_ip(), None);
        let lo = PortRule {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            ..rule()
        };
        assert_eq!(lo.matched_host_ip(), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_bridge("br-0123456789ab").is_ok());
        assert!(check_bridge("").is_err());
        assert!(check_bridge("a-name-too-long-for-linux").is_err());
        assert!(check_bridge("br\"0").is_err());
        assert!(check_container_id(&"a".repeat(64)).is_ok());
        assert!(check_container_id("x/y").is_err());
        assert!(check_container_id("").is_err());
    }
}
