//! The default network's settings from the `[network]` table of `/etc/pelagos/config.toml`
//! (Docker's `bip`, `bridge` and `mtu` of daemon.json, spelt out).
//!
//! ```toml
//! [network]
//! # The network of a container created without --network (Docker's: `bridge`): `bridge`,
//! # `none`, `host` or a user network's name.
//! default_network = "bridge"
//! # The default network `bridge`: its IPv4 subnet (default 172.17.0.0/16, or the next free
//! # default pool when a network has that), its gateway (default the subnet's first address),
//! # its bridge interface and MTU.
//! subnet = "172.17.0.0/16"
//! gateway = "172.17.0.1"
//! bridge = "pelagos0"
//! mtu = 1500
//! ```
//!
//! Other tables belong to other parts of pelagos; unknown keys inside `[network]` are errors.

use std::net::Ipv4Addr;
use std::path::Path;

use ipnet::Ipv4Net;
use pelagos_model::config::{ContainerConfig, HostConfig};
use pelagos_model::validate::DEFAULT_BRIDGE_NETWORK;
use pelagos_network::DefaultBridge;

use crate::error::{Error, Result};

const KNOWN_KEYS: &str = "default_network, subnet, gateway, bridge, mtu";

/// The `[network]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// `default_network`: the `HostConfig.NetworkMode` of a container created without one.
    pub default_network: String,
    /// The default network `bridge`'s settings.
    pub default_bridge: DefaultBridge,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            default_network: DEFAULT_BRIDGE_NETWORK.to_string(),
            default_bridge: DefaultBridge::default(),
        }
    }
}

/// Reads the `[network]` table of the configuration file at `path` (missing file or table:
/// the defaults).
pub fn load(path: &Path) -> Result<NetworkSettings> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|m| Error::Invalid(format!("{}: {m}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NetworkSettings::default()),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// Parses configuration text (the whole file; only `[network]` is looked at).
pub fn parse(text: &str) -> Result<NetworkSettings, String> {
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.to_string().trim()))?;
    let mut settings = NetworkSettings::default();
    let Some(section) = doc.get("network") else {
        return Ok(settings);
    };
    let toml::Value::Table(section) = section else {
        return Err(format!(
            "network: expected a table, found {}",
            section.type_str()
        ));
    };
    for (key, value) in section {
        apply(&mut settings, key, value)?;
    }
    check_gateway(&settings.default_bridge)?;
    Ok(settings)
}

/// Sets one key of the table.
fn apply(all: &mut NetworkSettings, key: &str, value: &toml::Value) -> Result<(), String> {
    let settings = &mut all.default_bridge;
    let text = || match value {
        toml::Value::String(s) => Ok(s.as_str()),
        other => Err(format!(
            "network.{key}: expected a string, found {}",
            other.type_str()
        )),
    };
    match key {
        "default_network" => all.default_network = parse_default_network(text()?)?,
        "subnet" => settings.subnet = Some(parse_subnet(text()?)?),
        "gateway" => {
            let ip = text()?;
            let gateway = ip
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("network.gateway: {ip:?} is not an IPv4 address"))?;
            settings.gateway = Some(gateway);
        }
        "bridge" => {
            let name = text()?;
            pelagos_network::record::check_bridge_name(name)
                .map_err(|e| format!("network.bridge: {e}"))?;
            settings.bridge = name.to_string();
        }
        "mtu" => {
            settings.mtu = value
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (68..=65535).contains(n))
                .ok_or_else(|| {
                    format!("network.mtu: expected an integer from 68 to 65535, found {value:?}")
                })?;
        }
        other => {
            return Err(format!(
                "network.{other}: unknown key (known keys: {KNOWN_KEYS})"
            ))
        }
    }
    Ok(())
}

/// `default_network`: a mode Docker's `--network` takes, checked as `--network` would be.
fn parse_default_network(text: &str) -> Result<String, String> {
    let host = HostConfig {
        network_mode: text.to_string(),
        ..HostConfig::default()
    };
    if text.is_empty() || text.starts_with("container:") {
        return Err(format!(
            "network.default_network: {text:?} is not bridge, none, host or a network's name"
        ));
    }
    pelagos_model::validate::network_mode(&ContainerConfig::default(), &host)
        .map_err(|e| format!("network.default_network: {e}"))?;
    Ok(text.to_string())
}

/// `HostConfig.NetworkMode` as the engine takes it: `""` and Docker's `default` are the
/// configured default network.
pub fn network_mode_or_default(asked: &str, settings: &NetworkSettings) -> String {
    match asked {
        "" | "default" => settings.default_network.clone(),
        other => other.to_string(),
    }
}

/// An IPv4 subnet in canonical form.
fn parse_subnet(text: &str) -> Result<Ipv4Net, String> {
    let net: Ipv4Net = text
        .parse()
        .map_err(|_| format!("network.subnet: {text:?} is not an IPv4 CIDR"))?;
    if net.addr() != net.network() {
        return Err(format!("network.subnet: {text} should be {}", net.trunc()));
    }
    Ok(net)
}

/// A gateway needs the subnet it is in.
fn check_gateway(settings: &DefaultBridge) -> Result<(), String> {
    match (settings.gateway, settings.subnet) {
        (None, _) => Ok(()),
        (Some(g), None) => Err(format!(
            "network.gateway {g} needs network.subnet (the subnet it belongs to)"
        )),
        (Some(g), Some(s)) if !s.contains(&g) || g == s.network() || g == s.broadcast() => Err(
            format!("network.gateway {g} is not a host address of network.subnet {s}"),
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_the_table() {
        assert_eq!(parse("").unwrap(), NetworkSettings::default());
        assert_eq!(
            parse("[registries]\ninsecure = []\n").unwrap(),
            NetworkSettings::default()
        );
        assert_eq!(NetworkSettings::default().default_network, "bridge");
    }

    #[test]
    fn reads_every_key() {
        let s = parse(
            "[network]\nsubnet = \"10.200.0.0/24\"\ngateway = \"10.200.0.254\"\n\
             bridge = \"br-test\"\nmtu = 1400\ndefault_network = \"none\"\n",
        )
        .unwrap();
        assert_eq!(s.default_network, "none");
        let s = s.default_bridge;
        assert_eq!(s.subnet, Some("10.200.0.0/24".parse().unwrap()));
        assert_eq!(s.gateway, Some("10.200.0.254".parse().unwrap()));
        assert_eq!((s.bridge.as_str(), s.mtu), ("br-test", 1400));
    }

    #[test]
    fn empty_and_default_modes_take_the_configured_network() {
        let none = parse("[network]\ndefault_network = \"none\"\n").unwrap();
        assert_eq!(network_mode_or_default("", &none), "none");
        assert_eq!(network_mode_or_default("default", &none), "none");
        assert_eq!(network_mode_or_default("host", &none), "host");
        let docker = NetworkSettings::default();
        assert_eq!(network_mode_or_default("", &docker), "bridge");
    }

    #[test]
    fn refuses_what_is_wrong() {
        let e = |t: &str| parse(&format!("[network]\n{t}\n")).unwrap_err();
        assert!(e("subnet = \"10.0.0.1/8\"").contains("should be 10.0.0.0/8"));
        assert!(e("subnet = \"nope\"").contains("not an IPv4 CIDR"));
        assert!(e("gateway = \"10.0.0.1\"").contains("needs network.subnet"));
        assert!(e("subnet = \"10.0.0.0/24\"\ngateway = \"10.0.1.1\"").contains("not a host"));
        assert!(e("bridge = \"much-too-long-name\"").contains("invalid bridge name"));
        assert!(e("mtu = 10").contains("68 to 65535"));
        assert!(e("mtu = \"1500\"").contains("network.mtu"));
        assert!(e("bip = \"x\"").contains("unknown key"));
        assert!(e("default_network = \"\"").contains("default_network"));
        assert!(e("default_network = \"container:x\"").contains("default_network"));
        assert!(e("default_network = \"a/b\"").contains("not a network name"));
        assert!(parse("network = 1")
            .unwrap_err()
            .contains("expected a table"));
    }
}
