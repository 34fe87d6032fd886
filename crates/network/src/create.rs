//! `network create`: the API's request body as sent (`NetworkCreateRequest`), checked once at
//! the edge into [`NetworkCreate`] with Docker's rules and words; what needs the other
//! networks (names, overlaps, chosen subnets) is the store's.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::record::{check_bridge_name, BRIDGE_NAME_OPTION, PREDEFINED};

/// The body of `POST /networks/create`, field names as the API's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    pub name: String,
    #[serde(default)]
    pub check_duplicate: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub ingress: bool,
    #[serde(rename = "IPAM", default, deserialize_with = "nullable")]
    pub ipam: IpamRequest,
    #[serde(rename = "EnableIPv6", default)]
    pub enable_ipv6: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// The request's `IPAM`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub driver: String,
    #[serde(default, deserialize_with = "nullable")]
    pub config: Vec<IpamConfigRequest>,
    #[serde(default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

/// One `IPAMConfig` of the request, as strings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IpamConfigRequest {
    #[serde(rename = "Subnet", default, deserialize_with = "nullable")]
    pub subnet: String,
    #[serde(rename = "IPRange", default, deserialize_with = "nullable")]
    pub ip_range: String,
    #[serde(rename = "Gateway", default, deserialize_with = "nullable")]
    pub gateway: String,
    #[serde(rename = "AuxiliaryAddresses", default, deserialize_with = "nullable")]
    pub aux_addresses: BTreeMap<String, String>,
}

/// A checked subnet request: everything inside the subnet, subnet in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRequest {
    pub subnet: IpNet,
    pub ip_range: Option<IpNet>,
    pub gateway: Option<IpAddr>,
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

/// A checked `network create` (driver `bridge`, IPAM `default`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkCreate {
    pub name: String,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
    /// The IPv4 subnet asked for (`None`: one of the default pools).
    pub ipv4: Option<PoolRequest>,
    /// The IPv6 subnet asked for (`None` with `enable_ipv6`: a unique-local /64).
    pub ipv6: Option<PoolRequest>,
    pub ipam_options: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// `null` in JSON read as the type's default (Docker's clients send `"Options": null`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl NetworkCreate {
    /// Parses a JSON request body and checks it.
    pub fn from_json(body: &[u8]) -> Result<NetworkCreate> {
        let request: NetworkCreateRequest = serde_json::from_slice(body)
            .map_err(|e| Error::Invalid(format!("invalid network create request: {e}")))?;
        NetworkCreate::parse(request)
    }

    /// Checks a request with Docker's rules.
    pub fn parse(request: NetworkCreateRequest) -> Result<NetworkCreate> {
        check_network_name(&request.name)?;
        check_driver(&request.driver)?;
        if request.ingress {
            return Err(Error::Invalid(
                "ingress networks exist only in swarm mode, which pelagos does not have".into(),
            ));
        }
        check_ipam_driver(&request.ipam.driver)?;
        if let Some(bridge) = request.options.get(BRIDGE_NAME_OPTION) {
            check_bridge_name(bridge)?;
        }
        let (ipv4, ipv6) = split_families(&request.ipam.config)?;
        if let (Some(v6), false) = (&ipv6, request.enable_ipv6) {
            return Err(Error::Invalid(format!(
                "IPv6 subnet {} given to a network without IPv6: add --ipv6",
                v6.subnet
            )));
        }
        Ok(NetworkCreate {
            name: request.name,
            internal: request.internal,
            attachable: request.attachable,
            enable_ipv6: request.enable_ipv6,
            ipv4,
            ipv6,
            ipam_options: request.ipam.options,
            options: request.options,
            labels: request.labels,
        })
    }
}

/// Docker's name rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; the predefined names are refused.
pub fn check_network_name(name: &str) -> Result<()> {
    if PREDEFINED.contains(&name) {
        return Err(Error::Predefined(format!(
            "operation is not permitted on predefined {name} network"
        )));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(Error::Invalid(format!(
            "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )));
    }
    Ok(())
}

fn check_driver(driver: &str) -> Result<()> {
    match driver {
        "" | "bridge" => Ok(()),
        "host" | "null" => Err(Error::Invalid(format!(
            "only one instance of {driver:?} network is allowed"
        ))),
        other => Err(Error::NoSuchDriver(other.to_string())),
    }
}

fn check_ipam_driver(driver: &str) -> Result<()> {
    match driver {
        "" | "default" => Ok(()),
        other => Err(Error::NoSuchDriver(other.to_string())),
    }
}

/// At most one subnet per family, each checked.
fn split_families(
    configs: &[IpamConfigRequest],
) -> Result<(Option<PoolRequest>, Option<PoolRequest>)> {
    let (mut v4, mut v6) = (None, None);
    for config in configs {
        let pool = parse_pool(config)?;
        let slot = if pool.subnet.addr().is_ipv4() {
            &mut v4
        } else {
            &mut v6
        };
        if slot.is_some() {
            return Err(Error::Invalid(
                "pelagos supports one IPv4 and one IPv6 subnet per network".into(),
            ));
        }
        *slot = Some(pool);
    }
    Ok((v4, v6))
}

/// One `IPAMConfig`: subnet canonical, range, gateway and aux addresses inside it.
fn parse_pool(config: &IpamConfigRequest) -> Result<PoolRequest> {
    if config.subnet.is_empty() {
        return Err(Error::Invalid(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let subnet = parse_cidr(&config.subnet, "subnet")?;
    let ip_range = match config.ip_range.as_str() {
        "" => None,
        text => Some(parse_cidr(text, "ip-range")?),
    };
    if let Some(range) = ip_range {
        if !subnet.contains(&range) {
            return Err(Error::Invalid(format!(
                "no matching subnet for range {range}"
            )));
        }
    }
    let gateway = match config.gateway.as_str() {
        "" => None,
        text => Some(parse_member(&subnet, text, "gateway")?),
    };
    let mut aux_addresses = BTreeMap::new();
    for (device, text) in &config.aux_addresses {
        aux_addresses.insert(device.clone(), parse_member(&subnet, text, "aux-address")?);
    }
    Ok(PoolRequest {
        subnet,
        ip_range,
        gateway,
        aux_addresses,
    })
}

/// A CIDR in canonical form (`10.1.0.0/16`, not `10.1.2.3/16`).
fn parse_cidr(text: &str, what: &str) -> Result<IpNet> {
    let net: IpNet = text
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid CIDR address: {text}")))?;
    if net.addr() != net.network() {
        return Err(Error::Invalid(format!(
            "invalid {what} {text}: it should be {}",
            net.trunc()
        )));
    }
    Ok(net)
}

/// An address inside `subnet` that a host can hold (not its network or broadcast address).
fn parse_member(subnet: &IpNet, text: &str, what: &str) -> Result<IpAddr> {
    let ip: IpAddr = text
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid {what} address {text}")))?;
    if !subnet.contains(&ip) {
        return Err(Error::Invalid(format!(
            "no matching subnet for {what} {ip}"
        )));
    }
    let is_broadcast = subnet.addr().is_ipv4() && ip == subnet.broadcast();
    if ip == subnet.network() || is_broadcast {
        return Err(Error::Invalid(format!(
            "{what} {ip} is the network or broadcast address of subnet {subnet}"
        )));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, pools: &[(&str, &str, &str)]) -> NetworkCreateRequest {
        let config = pools
            .iter()
            .map(|(s, r, g)| IpamConfigRequest {
                subnet: s.to_string(),
                ip_range: r.to_string(),
                gateway: g.to_string(),
                aux_addresses: BTreeMap::new(),
            })
            .collect();
        NetworkCreateRequest {
            name: name.into(),
            ipam: IpamRequest {
                config,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn error(r: NetworkCreateRequest) -> String {
        NetworkCreate::parse(r).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_apis_json_with_nulls() {
        let body = br#"{"Name":"app","Driver":"bridge","Options":null,"Labels":{"a":"b"},
            "IPAM":{"Driver":"default","Config":[{"Subnet":"10.9.0.0/24","Gateway":"10.9.0.254",
            "IPRange":"10.9.0.128/25"}],"Options":null},"EnableIPv6":false,"Internal":true}"#;
        let c = NetworkCreate::from_json(body).unwrap();
        assert_eq!(c.name, "app");
        assert!(c.internal);
        let v4 = c.ipv4.unwrap();
        assert_eq!(v4.gateway, Some("10.9.0.254".parse().unwrap()));
        assert_eq!(v4.ip_range, Some("10.9.0.128/25".parse().unwrap()));
        assert_eq!(c.labels["a"], "b");
        assert!(c.ipv6.is_none());
    }

    #[test]
    fn names_and_drivers_as_docker() {
        assert!(NetworkCreate::parse(request("a", &[])).is_ok());
        assert_eq!(
            error(request("host", &[])),
            "operation is not permitted on predefined host network"
        );
        assert!(error(request("-x", &[])).contains("invalid network name"));
        assert!(error(request("", &[])).contains("invalid network name"));
        let mut r = request("x", &[]);
        r.driver = "overlay".into();
        assert_eq!(error(r), "plugin \"overlay\" not found");
        let mut r = request("x", &[]);
        r.driver = "host".into();
        assert_eq!(error(r), "only one instance of \"host\" network is allowed");
        let mut r = request("x", &[]);
        r.options
            .insert(BRIDGE_NAME_OPTION.into(), "much-too-long-name".into());
        assert!(error(r).contains("invalid bridge name"));
    }

    #[test]
    fn subnets_gateways_and_ranges_are_consistent() {
        let e = |pools: &[(&str, &str, &str)]| error(request("n", pools));
        assert_eq!(
            e(&[("10.0.0.0/8", "", "11.0.0.1")]),
            "no matching subnet for gateway 11.0.0.1"
        );
        assert_eq!(
            e(&[("10.0.0.0/16", "10.1.0.0/24", "")]),
            "no matching subnet for range 10.1.0.0/24"
        );
        assert_eq!(
            e(&[("10.0.0.1/16", "", "")]),
            "invalid subnet 10.0.0.1/16: it should be 10.0.0.0/16"
        );
        assert_eq!(e(&[("nope", "", "")]), "invalid CIDR address: nope");
        assert_eq!(
            e(&[("", "", "10.0.0.1")]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert!(e(&[("10.0.0.0/24", "", "10.0.0.255")]).contains("broadcast"));
        assert!(e(&[("10.0.0.0/24", "", ""), ("10.1.0.0/24", "", "")]).contains("one IPv4"));
        assert!(e(&[("fd00::/64", "", "")]).contains("add --ipv6"));
        let mut r = request("n", &[("10.0.0.0/24", "", ""), ("fd00:1::/64", "", "")]);
        r.enable_ipv6 = true;
        let c = NetworkCreate::parse(r).unwrap();
        assert_eq!(c.ipv6.unwrap().subnet.to_string(), "fd00:1::/64");
    }
}
