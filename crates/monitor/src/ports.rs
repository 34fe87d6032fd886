//! A container's published ports (`-p`, `-P`), as the monitor sets them up after attach:
//! host ports taken in the root's `ports.json` (a port without a host address on both
//! `0.0.0.0` and `::` when the container has an IPv6 address), then one nf_tables netlink
//! transaction of DNAT rules; undone at the container's end by the handle it returned.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use pelagos_firewall::{Firewall, PortRule, Proto, PublishedRules};
use pelagos_model::config::{PortBinding, PortMap};
use pelagos_model::record::ContainerRecord;
use pelagos_network::{HostPorts, Protocol, PublishedPort};

use crate::error::{Error, Result};

/// One thing to publish: a container port, the host addresses it is published on (one, or
/// `0.0.0.0` and `::` with one host port for both) and the host ports it may take (in order
/// of preference; one, or each port of a `-p 8000-8010:80` range, or 0 for an ephemeral one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub proto: Protocol,
    pub host_ips: Vec<IpAddr>,
    pub host_ports: Vec<u16>,
    pub container_port: u16,
}

/// The container's addresses on its network, which its ports are DNAT'd to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerAddrs {
    pub v4: Ipv4Addr,
    /// Only on a network created with `--ipv6`.
    pub v6: Option<Ipv6Addr>,
}

/// What the container publishes: its `PortBindings`, then with `-P` every exposed port
/// (its own `ExposedPorts` and the image's `image_exposed`) not bound already. A binding
/// without a host address is published on `0.0.0.0`, and on `::` too when the container
/// has an IPv6 address (`has_v6`); an IPv6 host address needs one.
pub fn wanted(
    record: &ContainerRecord,
    image_exposed: &[String],
    has_v6: bool,
) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for (key, bindings) in &record.host_config.port_bindings {
        let (container_port, proto) = port_key(key)?;
        for binding in bindings {
            out.push(Wanted {
                proto,
                host_ips: host_ips(&binding.host_ip, has_v6)?,
                host_ports: host_ports(&binding.host_port)?,
                container_port,
            });
        }
    }
    if record.host_config.publish_all_ports {
        for key in exposed_keys(record, image_exposed) {
            if record.host_config.port_bindings.contains_key(&key) {
                continue;
            }
            let (container_port, proto) = port_key(&key)?;
            out.push(Wanted {
                proto,
                host_ips: host_ips("", has_v6)?,
                host_ports: vec![0],
                container_port,
            });
        }
    }
    Ok(out)
}

/// The exposed ports' keys (`"80/tcp"`): the container's `ExposedPorts` and the image's.
fn exposed_keys(record: &ContainerRecord, image_exposed: &[String]) -> BTreeSet<String> {
    let own = record.config.exposed_ports.iter().flat_map(|m| m.keys());
    own.chain(image_exposed)
        .map(|key| match key.contains('/') {
            true => key.clone(),
            false => format!("{key}/tcp"),
        })
        .collect()
}

/// Docker's `NetworkSettings.Ports`: `published`, and each exposed port that is not
/// published with no host address (inspect's `"80/tcp": null`).
pub fn with_exposed(
    mut published: PortMap,
    record: &ContainerRecord,
    image_exposed: &[String],
) -> PortMap {
    for key in exposed_keys(record, image_exposed) {
        published.entry(key).or_default();
    }
    published
}

/// `"80/tcp"` (or `"80"`) → the port and its protocol.
fn port_key(key: &str) -> Result<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::Invalid(format!("invalid port: {key}")))?;
    Ok((port, proto.parse()?))
}

/// The host addresses of a binding: the one given, else `0.0.0.0` (and `::` with `has_v6`).
fn host_ips(text: &str, has_v6: bool) -> Result<Vec<IpAddr>> {
    let ip = match text.trim_start_matches('[').trim_end_matches(']') {
        "" if has_v6 => {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ])
        }
        "" => return Ok(vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]),
        t => t
            .parse::<IpAddr>()
            .map_err(|_| Error::Invalid(format!("invalid IP address: {t}")))?,
    };
    if ip.is_ipv6() && !has_v6 {
        return Err(Error::Invalid(format!(
            "cannot publish on {ip}: the container has no IPv6 address (its network was not \
             created with --ipv6)"
        )));
    }
    Ok(vec![ip])
}

/// `""` → ephemeral (0), `"8080"`, `"8000-8010"` → each port of the range.
fn host_ports(text: &str) -> Result<Vec<u16>> {
    if text.is_empty() {
        return Ok(vec![0]);
    }
    let bad = || Error::Invalid(format!("invalid hostPort: {text}"));
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let (first, last) = (
        first.parse::<u16>().map_err(|_| bad())?,
        last.parse::<u16>().map_err(|_| bad())?,
    );
    if first > last {
        return Err(bad());
    }
    Ok((first..=last).collect())
}

/// Takes the host ports of `wanted` for the container (all or none): a range's first free
/// port, Docker's `Bind for IP:PORT failed: port is already allocated` when none is.
pub fn take(
    ports: &HostPorts,
    container_id: &str,
    wanted: &[Wanted],
) -> Result<Vec<PublishedPort>> {
    let mut taken = Vec::new();
    for w in wanted {
        match take_one(ports, container_id, w) {
            Ok(p) => taken.extend(p),
            Err(e) => {
                // Best effort: the error that matters is the allocation's.
                let _ = ports.release(container_id);
                return Err(e);
            }
        }
    }
    Ok(taken)
}

fn take_one(ports: &HostPorts, container_id: &str, w: &Wanted) -> Result<Vec<PublishedPort>> {
    let mut last_error = None;
    for &host_port in &w.host_ports {
        let taken = ports.publish_on_each(
            container_id,
            w.proto,
            &w.host_ips,
            host_port,
            w.container_port,
        );
        match taken {
            Ok(published) if !published.is_empty() => return Ok(published),
            Ok(_) => {}
            Err(e @ pelagos_network::Error::PortAllocated { .. }) => last_error = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last_error.map_or_else(
        || Error::Invalid(format!("no host port for {}", w.container_port)),
        Error::from,
    ))
}

/// The firewall's rules for the taken ports, to the container's address of the host
/// address's family.
pub fn rules(taken: &[PublishedPort], addrs: ContainerAddrs) -> Result<Vec<PortRule>> {
    taken
        .iter()
        .map(|p| {
            let container_ip = match p.host_ip {
                IpAddr::V4(_) => IpAddr::V4(addrs.v4),
                IpAddr::V6(_) => addrs.v6.map(IpAddr::V6).ok_or_else(|| {
                    Error::Invalid(format!(
                        "cannot publish [{}]:{}: the container has no IPv6 address",
                        p.host_ip, p.host_port
                    ))
                })?,
            };
            Ok(PortRule {
                host_ip: Some(p.host_ip),
                host_port: p.host_port,
                host_port_end: p.host_port,
                container_ip,
                container_port: p.container_port,
                proto: match p.proto {
                    Protocol::Tcp => Proto::Tcp,
                    Protocol::Udp => Proto::Udp,
                    Protocol::Sctp => Proto::Sctp,
                },
            })
        })
        .collect()
}

/// Docker's `NetworkSettings.Ports` of the taken ports.
pub fn port_map(taken: &[PublishedPort]) -> PortMap {
    let mut map = PortMap::new();
    for p in taken {
        map.entry(format!("{}/{}", p.container_port, p.proto))
            .or_default()
            .push(PortBinding {
                host_ip: p.host_ip.to_string(),
                host_port: p.host_port.to_string(),
            });
    }
    map
}

/// A container's port rules: what removes them, and the firewall handle whose netlink
/// socket wrote them, kept to delete them without opening another.
#[derive(Debug)]
pub struct Published {
    firewall: Firewall,
    rules: PublishedRules,
}

impl Published {
    /// The firewall handle, to be dropped (its socket closed) once nothing waits on it:
    /// closing a socket that deleted rules makes the kernel wait for an RCU grace period
    /// (≈ 12 ms measured).
    pub fn into_firewall(self) -> Firewall {
        self.firewall
    }
}

/// Publishes the container's ports to its addresses `addrs` behind `bridge`: host ports
/// taken, `route_localnet` on the bridge (127.0.0.1 reaches them), one netlink
/// transaction. On failure nothing is left. Returns the published ones of
/// `NetworkSettings.Ports`, and the rules' handle (none for no ports).
pub fn publish(
    root: &Path,
    record: &ContainerRecord,
    image_exposed: &[String],
    bridge: &str,
    addrs: ContainerAddrs,
) -> Result<(PortMap, Option<Published>)> {
    let wanted = wanted(record, image_exposed, addrs.v6.is_some())?;
    if wanted.is_empty() {
        return Ok((PortMap::new(), None));
    }
    let id = record.id.as_str();
    let ports = HostPorts::open(root)?;
    let taken = take(&ports, id, &wanted)?;
    let firewall = Firewall::new();
    let programmed = rules(&taken, addrs).and_then(|rules| {
        if rules.iter().any(|r| r.container_ip.is_ipv4()) {
            pelagos_firewall::enable_route_localnet(bridge)?;
        }
        Ok(firewall.add_ports(id, &rules)?)
    });
    match programmed {
        Ok(rules) => Ok((port_map(&taken), Some(Published { firewall, rules }))),
        Err(e) => {
            let _ = unpublish(root, id, None);
            Err(e)
        }
    }
}

/// Removes a container's port rules (by `published`'s handle, else found in a listing)
/// and then frees its host ports (none is no error). Both are tried; the first failure is
/// returned.
pub fn unpublish(root: &Path, container_id: &str, published: Option<&Published>) -> Result<()> {
    let rules = match published {
        Some(p) => p.firewall.remove_ports_known(container_id, &p.rules),
        None => Firewall::new().remove_ports(container_id),
    };
    let freed = HostPorts::open(root).and_then(|p| p.release(container_id));
    rules?;
    freed?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bindings: &[(&str, &str, &str)], all: bool, exposed: &[&str]) -> ContainerRecord {
        let mut r = ContainerRecord {
            name: "/web".into(),
            ..ContainerRecord::new(pelagos_model::names::new_container_id().unwrap(), "busybox")
        };
        for (key, ip, port) in bindings {
            r.host_config
                .port_bindings
                .entry(key.to_string())
                .or_default()
                .push(PortBinding {
                    host_ip: ip.to_string(),
                    host_port: port.to_string(),
                });
        }
        r.host_config.publish_all_ports = all;
        if !exposed.is_empty() {
            r.config.exposed_ports = Some(
                exposed
                    .iter()
                    .map(|e| (e.to_string(), serde_json::json!({})))
                    .collect(),
            );
        }
        r
    }

    #[test]
    fn bindings_and_publish_all_become_wanted_ports() {
        let r = record(
            &[
                ("80/tcp", "", "8080"),
                ("53/udp", "127.0.0.1", ""),
                ("81/tcp", "", "9000-9002"),
            ],
            true,
            &["80/tcp", "443/tcp"],
        );
        let w = wanted(&r, &["8443/tcp".to_string()], false).unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let summary: Vec<_> = w
            .iter()
            .map(|w| {
                (
                    w.container_port,
                    w.proto,
                    w.host_ips[0],
                    w.host_ports.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (53, Protocol::Udp, "127.0.0.1".parse().unwrap(), vec![0]),
                (80, Protocol::Tcp, any, vec![8080]),
                (81, Protocol::Tcp, any, vec![9000, 9001, 9002]),
                (443, Protocol::Tcp, any, vec![0]),
                (8443, Protocol::Tcp, any, vec![0]),
            ]
        );
        assert!(w.iter().all(|w| w.host_ips.len() == 1));
        assert!(wanted(&record(&[], false, &["80/tcp"]), &[], false)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn with_ipv6_a_port_without_host_address_is_published_on_both_families() {
        let r = record(
            &[
                ("80/tcp", "", "8080"),
                ("81/tcp", "::1", ""),
                ("82/tcp", "0.0.0.0", ""),
            ],
            true,
            &["443"],
        );
        let w = wanted(&r, &[], true).unwrap();
        let ips =
            |i: usize| -> Vec<String> { w[i].host_ips.iter().map(|ip| ip.to_string()).collect() };
        assert_eq!(ips(0), ["0.0.0.0", "::"]);
        assert_eq!(ips(1), ["::1"]);
        assert_eq!(ips(2), ["0.0.0.0"]);
        assert_eq!(
            (w[3].container_port, ips(3)),
            (443, vec!["0.0.0.0".into(), "::".into()])
        );
        let v6_only = record(&[("80/tcp", "[2001:db8::1]", "8080")], false, &[]);
        let e = wanted(&v6_only, &[], false).unwrap_err();
        assert!(e.to_string().contains("no IPv6 address"), "{e}");
    }

    #[test]
    fn exposed_ports_without_a_host_port_show_empty() {
        let r = record(&[], false, &["80/tcp", "53/udp"]);
        let taken = PortMap::from([(
            "53/udp".to_string(),
            vec![PortBinding {
                host_ip: "0.0.0.0".into(),
                host_port: "5353".into(),
            }],
        )]);
        let map = with_exposed(taken, &r, &["8080".to_string()]);
        let shown = serde_json::to_value(&map).unwrap();
        assert_eq!(
            shown,
            serde_json::json!({
                "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
                "80/tcp": [],
                "8080/tcp": []
            })
        );
    }

    #[test]
    fn a_range_takes_its_first_free_port_and_failure_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let ports = HostPorts::with_range(d.path(), 40000..=40001).unwrap();
        let r = record(&[("80/tcp", "", "9000-9001")], false, &[]);
        let w = wanted(&r, &[], false).unwrap();
        let a = take(&ports, "a", &w).unwrap();
        let b = take(&ports, "b", &w).unwrap();
        assert_eq!((a[0].host_port, b[0].host_port), (9000, 9001));
        let e = take(&ports, "c", &w).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:9001 failed: port is already allocated"
        );
        let both = record(&[("81/tcp", "", ""), ("82/tcp", "", "9000")], false, &[]);
        assert!(take(&ports, "d", &wanted(&both, &[], false).unwrap()).is_err());
        assert!(ports.list().unwrap().iter().all(|p| p.container_id != "d"));
    }

    #[test]
    fn taken_ports_show_as_docker_shows_them() {
        let taken = vec![PublishedPort {
            container_id: "a".into(),
            proto: Protocol::Tcp,
            host_ip: "0.0.0.0".parse().unwrap(),
            host_port: 8080,
            container_port: 80,
        }];
        let map = serde_json::to_value(port_map(&taken)).unwrap();
        assert_eq!(
            map,
            serde_json::json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
        );
        let v4_only = ContainerAddrs {
            v4: "172.17.0.2".parse().unwrap(),
            v6: None,
        };
        let rules = rules(&taken, v4_only).unwrap();
        assert_eq!((rules[0].host_port, rules[0].container_port), (8080, 80));
        let v6_taken = vec![PublishedPort {
            host_ip: "::".parse().unwrap(),
            ..taken[0].clone()
        }];
        assert!(super::rules(&v6_taken, v4_only).is_err());
        let dual = ContainerAddrs {
            v6: Some("fd00::2".parse().unwrap()),
            ..v4_only
        };
        let v6_rules = super::rules(&v6_taken, dual).unwrap();
        assert_eq!(
            v6_rules[0].container_ip,
            "fd00::2".parse::<IpAddr>().unwrap()
        );
    }
}
