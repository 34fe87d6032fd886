//! A network's record on disk, in the Docker Engine API's `Network` shape (plus the bridge
//! interface pelagos resolved), and the inspect view with its `Containers`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The default network's name.
pub const DEFAULT_NETWORK: &str = "bridge";
/// The default network's bridge interface.
pub const DEFAULT_BRIDGE: &str = "pelagos0";
/// The driver option naming a network's bridge interface.
pub const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// The predefined networks: Docker's `bridge`, `host` and `none`.
pub const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];
/// The longest interface name the kernel takes (`IFNAMSIZ` - 1).
pub const MAX_IFNAME: usize = 15;
/// Prefix of the bridges of user networks (`pl-` and 12 hex of the id: 15 characters).
const USER_BRIDGE_PREFIX: &str = "pl-";

/// A network as stored under `<root>/networks/<id>/network.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkRecord {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// Always `local`.
    pub scope: String,
    /// `bridge`, or `host`/`null` for the predefined ones.
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The bridge interface pelagos made for it (`None` for `host` and `none`).
    #[serde(
        rename = "PelagosBridge",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bridge: Option<String>,
}

/// Docker's `IPAM` object of a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    /// Always `default`.
    pub driver: String,
    pub config: Vec<IpamPool>,
    pub options: BTreeMap<String, String>,
}

/// One subnet of a network (Docker's `IPAMConfig`), resolved: the gateway is always known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamPool {
    #[serde(rename = "Subnet")]
    pub subnet: IpNet,
    /// Where container addresses are taken from (the whole subnet when absent).
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNet>,
    #[serde(rename = "Gateway")]
    pub gateway: IpAddr,
    /// Addresses reserved for other devices, never leased.
    #[serde(
        rename = "AuxiliaryAddresses",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl IpamPool {
    /// Where container addresses come from: the range, else the subnet.
    pub fn pool(&self) -> IpNet {
        self.ip_range.unwrap_or(self.subnet)
    }
}

/// Docker's `NetworkContainer`: one endpoint as `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    /// `172.19.0.2/16`.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// `fd12::2/64`, or empty.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// Docker's `ConfigFrom` (always empty: pelagos has no config-only networks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReference {
    #[serde(rename = "Network")]
    pub network: String,
}

/// `network inspect`'s view: Docker's `NetworkResource`, keys in Docker's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkResource {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    /// Endpoints by container id.
    pub containers: BTreeMap<String, NetworkContainer>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    /// Whether this is `bridge`, `host` or `none`.
    pub fn is_predefined(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }

    /// The IPv4 subnet's pool, if the network has addresses.
    pub fn ipv4_pool(&self) -> Option<&IpamPool> {
        self.ipam.config.iter().find(|p| p.subnet.addr().is_ipv4())
    }

    /// The IPv6 subnet's pool, if the network has one.
    pub fn ipv6_pool(&self) -> Option<&IpamPool> {
        self.ipam.config.iter().find(|p| p.subnet.addr().is_ipv6())
    }

    /// The first 12 characters of the id, as Docker shows ids.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// The inspect view with these endpoints.
    pub fn resource(&self, containers: BTreeMap<String, NetworkContainer>) -> NetworkResource {
        NetworkResource {
            name: self.name.clone(),
            id: self.id.clone(),
            created: self.created.clone(),
            scope: self.scope.clone(),
            driver: self.driver.clone(),
            enable_ipv6: self.enable_ipv6,
            ipam: self.ipam.clone(),
            internal: self.internal,
            attachable: self.attachable,
            ingress: self.ingress,
            config_from: ConfigReference::default(),
            config_only: false,
            containers,
            options: self.options.clone(),
            labels: self.labels.clone(),
        }
    }
}

/// The bridge interface of a user network: the one its options name, else `pl-` and the
/// first 12 hex of its id.
pub fn user_bridge_name(id: &str, options: &BTreeMap<String, String>) -> Result<String> {
    match options.get(BRIDGE_NAME_OPTION) {
        Some(name) => {
            check_bridge_name(name)?;
            Ok(name.clone())
        }
        None => Ok(format!(
            "{USER_BRIDGE_PREFIX}{}",
            id.get(..12).unwrap_or(id)
        )),
    }
}

/// The kernel's rule for interface names: 1 to 15 bytes, no `/`, `:` or white space, not
/// `.` or `..`.
pub fn check_bridge_name(name: &str) -> Result<()> {
    let bad_char = name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if name.is_empty() || name.len() > MAX_IFNAME || bad_char || name == "." || name == ".." {
        return Err(Error::Invalid(format!(
            "invalid bridge name {name:?} ({BRIDGE_NAME_OPTION}): an interface name has 1 to \
             {MAX_IFNAME} characters, none of them '/', ':' or white space"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_follow_the_kernels_rule() {
        let id = "0123456789abcdef".repeat(4);
        let none = BTreeMap::new();
        assert_eq!(user_bridge_name(&id, &none).unwrap(), "pl-0123456789ab");
        assert_eq!(user_bridge_name(&id, &none).unwrap().len(), MAX_IFNAME);
        let named = BTreeMap::from([(BRIDGE_NAME_OPTION.to_string(), "br-app".to_string())]);
        assert_eq!(user_bridge_name(&id, &named).unwrap(), "br-app");
        for bad in ["", "a/b", "a b", "a:1", ".", "..", "sixteen-chars-xx"] {
            assert!(check_bridge_name(bad).is_err(), "{bad}");
        }
        assert!(check_bridge_name("fifteen-chars-x").is_ok());
    }

    #[test]
    fn pools_serialize_in_dockers_shape() {
        let pool = IpamPool {
            subnet: "172.18.0.0/16".parse().unwrap(),
            ip_range: None,
            gateway: "172.18.0.1".parse().unwrap(),
            aux_addresses: BTreeMap::new(),
        };
        let text = serde_json::to_string(&pool).unwrap();
        assert_eq!(text, r#"{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}"#);
        assert_eq!(serde_json::from_str::<IpamPool>(&text).unwrap(), pool);
    }
}
