//! `network create`'s flags → the API's request, as Docker's CLI builds it: `--subnet`,
//! `--ip-range`, `--gateway` and `--aux-address` paired by containment (docker/cli's
//! `createIPAMConfig`), with its words for what does not pair.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::Result;
use ipnet::IpNet;
use pelagos_network::create::{IpamConfigRequest, IpamRequest, NetworkCreateRequest};

use crate::cli::NetworkCreateArgs;
use crate::failure::Plain;

/// The request the flags describe; Docker's CLI-side errors as plain text, exit 1.
pub fn request(a: &NetworkCreateArgs) -> Result<NetworkCreateRequest> {
    for label in &a.labels {
        check_label(label)?;
    }
    let config = ipam_config(
        &split_list(&a.subnets),
        &split_list(&a.ip_ranges),
        &split_list(&a.gateways),
        &key_values(&a.aux_addresses),
    )
    .map_err(|text| Plain::new(text, 1))?;
    Ok(NetworkCreateRequest {
        name: a.name.clone(),
        check_duplicate: true,
        driver: a.driver.clone(),
        internal: a.internal,
        attachable: a.attachable,
        ingress: false,
        ipam: IpamRequest {
            driver: a.ipam_driver.clone(),
            config,
            options: key_values(&a.ipam_opts),
        },
        enable_ipv6: a.ipv6,
        options: key_values(&a.opts),
        labels: key_values(&a.labels),
    })
}

/// docker/cli's `ValidateLabel`: a label needs a name.
fn check_label(label: &str) -> Result<()> {
    let key = label.split('=').next().unwrap_or_default();
    if key.trim().is_empty() {
        return Err(pelagos_model::Error::FlagValue {
            flag: "--label".into(),
            value: label.into(),
            why: format!("invalid label '{label}': empty name"),
        }
        .into());
    }
    Ok(())
}

/// pflag's `strings` flags: each value a comma-separated list.
fn split_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::to_string)
        .collect()
}

/// `KEY=VALUE` values as a map (`KEY` alone: an empty value), as Docker's map options.
fn key_values(values: &[String]) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (v.clone(), String::new()),
        })
        .collect()
}

/// docker/cli's `createIPAMConfig`: one config per subnet, each range, gateway and aux
/// address given to the subnet that contains it.
fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &BTreeMap<String, String>,
) -> Result<Vec<IpamConfigRequest>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    let mut configs: Vec<IpamConfigRequest> = Vec::new();
    for s in subnets {
        for c in &configs {
            if subnet_matches(s, &c.subnet)? || subnet_matches(&c.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        configs.push(IpamConfigRequest {
            subnet: s.clone(),
            ..Default::default()
        });
    }
    for r in ranges {
        assign(&mut configs, r, &RANGE)?;
    }
    for g in gateways {
        assign(&mut configs, g, &GATEWAY)?;
    }
    for (key, address) in aux {
        let mut matched = false;
        for c in configs.iter_mut() {
            if subnet_matches(&c.subnet, address)? {
                c.aux_addresses.insert(key.clone(), address.clone());
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {address}"));
        }
    }
    Ok(configs)
}

/// Which field of a subnet's config a value goes to, and how Docker's CLI words it.
struct Slot {
    what: &'static str,
    plural: &'static str,
    preposition: &'static str,
    /// Ranges are always CIDRs; gateways are addresses (a CIDR's address counts).
    always_cidr: bool,
    field: fn(&mut IpamConfigRequest) -> &mut String,
}

const RANGE: Slot = Slot {
    what: "range",
    plural: "ranges",
    preposition: "on",
    always_cidr: true,
    field: |c| &mut c.ip_range,
};

const GATEWAY: Slot = Slot {
    what: "gateway",
    plural: "gateways",
    preposition: "for",
    always_cidr: false,
    field: |c| &mut c.gateway,
};

/// Gives `value` to every subnet containing it; one per subnet.
fn assign(configs: &mut [IpamConfigRequest], value: &str, slot: &Slot) -> Result<(), String> {
    let mut matched = false;
    for c in configs.iter_mut() {
        let holds = match slot.always_cidr {
            true => range_matches(&c.subnet, value)?,
            false => subnet_matches(&c.subnet, value)?,
        };
        if !holds {
            continue;
        }
        let subnet = c.subnet.clone();
        let current = (slot.field)(c);
        if !current.is_empty() {
            return Err(format!(
                "cannot configure multiple {} ({value}, {current}) {} the same subnet ({subnet})",
                slot.plural, slot.preposition
            ));
        }
        *current = value.to_string();
        matched = true;
    }
    if !matched {
        return Err(format!("no matching subnet for {} {value}", slot.what));
    }
    Ok(())
}

/// Whether `subnet` holds the address of the CIDR `range`.
fn range_matches(subnet: &str, range: &str) -> Result<bool, String> {
    let net = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    Ok(net.trunc().contains(&parse_cidr(range)?.addr()))
}

/// docker/cli's `subnetMatches`: whether `subnet` holds `data` (an address, or the address
/// part of a CIDR); an address that does not parse is held by none.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, String> {
    let net = parse_cidr(subnet).map_err(|e| format!("invalid subnet: {e}"))?;
    let ip = match data.contains('/') {
        true => Some(parse_cidr(data)?.addr()),
        false => data.parse::<IpAddr>().ok(),
    };
    Ok(ip.is_some_and(|ip| net.trunc().contains(&ip)))
}

/// Go's `net.ParseCIDR` (the address kept as written).
fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .map_err(|_| format!("invalid CIDR address: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn config(
        s: &[&str],
        r: &[&str],
        g: &[&str],
        aux: &[(&str, &str)],
    ) -> Result<Vec<IpamConfigRequest>, String> {
        let aux = aux
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ipam_config(&strings(s), &strings(r), &strings(g), &aux)
    }

    #[test]
    fn pairs_by_containment() {
        let c = config(
            &["10.1.0.0/16", "fd00::/64"],
            &["10.1.2.0/24"],
            &["fd00::1", "10.1.0.254"],
            &[("router", "10.1.0.2")],
        )
        .unwrap();
        assert_eq!(c[0].ip_range, "10.1.2.0/24");
        assert_eq!(c[0].gateway, "10.1.0.254");
        assert_eq!(c[0].aux_addresses["router"], "10.1.0.2");
        assert_eq!(
            (c[1].subnet.as_str(), c[1].gateway.as_str()),
            ("fd00::/64", "fd00::1")
        );
        assert!(config(&[], &[], &[], &[]).unwrap().is_empty());
    }

    #[test]
    fn errors_are_docker_clis() {
        let e = |s: &[&str], r: &[&str], g: &[&str], aux: &[(&str, &str)]| {
            config(s, r, g, aux).unwrap_err()
        };
        let pair = "every ip-range or gateway must have a corresponding subnet";
        assert_eq!(e(&[], &[], &["10.0.0.1"], &[]), pair);
        assert_eq!(
            e(&["10.0.0.0/8"], &[], &["10.0.0.1", "10.0.0.2"], &[]),
            pair
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &[], &["11.0.0.1"], &[]),
            "no matching subnet for gateway 11.0.0.1"
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &["11.0.0.0/24"], &[], &[]),
            "no matching subnet for range 11.0.0.0/24"
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &["nope"], &[], &[]),
            "invalid CIDR address: nope"
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &["10.1.0.0"], &[], &[]),
            "invalid CIDR address: 10.1.0.0"
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &[], &[], &[("x", "nope/8")]),
            "invalid CIDR address: nope/8"
        );
        assert_eq!(
            e(&["nope"], &["10.0.0.0/8"], &[], &[]),
            "invalid subnet: invalid CIDR address: nope"
        );
        assert_eq!(
            e(&["10.0.0.0/8", "10.0.0.0/16"], &[], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            e(&["10.0.0.0/8", "11.0.0.0/8"], &["10.1.0.0/16", "10.2.0.0/16"], &[], &[]),
            "cannot configure multiple ranges (10.2.0.0/16, 10.1.0.0/16) on the same subnet (10.0.0.0/8)"
        );
        assert_eq!(
            e(&["10.0.0.0/8"], &[], &[], &[("x", "")]),
            "no matching subnet for aux-address "
        );
    }

    #[test]
    fn lists_and_maps_as_pflag() {
        assert_eq!(split_list(&strings(&["a,b", "c"])), ["a", "b", "c"]);
        let m = key_values(&strings(&["a=b=c", "d"]));
        assert_eq!((m["a"].as_str(), m["d"].as_str()), ("b=c", ""));
        assert!(check_label("=x").is_err());
        assert!(check_label("x").is_ok());
    }
}
