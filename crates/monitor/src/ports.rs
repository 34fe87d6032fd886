//! A container's published ports (`-p`, `-P`), as the monitor sets them up after attach:
//! host ports taken in the root's `ports.json`, then one `nft` run of DNAT rules; undone at
//! the container's end.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use pelagos_firewall::{Firewall, PortRule, Proto};
use pelagos_model::config::{PortBinding, PortMap};
use pelagos_model::record::ContainerRecord;
use pelagos_network::{HostPorts, PortRequest, Protocol, PublishedPort};

use crate::error::{Error, Result};

/// One thing to publish: a container port and the host ports it may take (in order of
/// preference; one, or each port of a `-p 8000-8010:80` range, or 0 for an ephemeral one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub proto: Protocol,
    pub host_ip: IpAddr,
    pub host_ports: Vec<u16>,
    pub container_port: u16,
}

/// What the container publishes: its `PortBindings`, then with `-P` every exposed port
/// (its own `ExposedPorts` and the image's `image_exposed`) not bound already.
pub fn wanted(record: &ContainerRecord, image_exposed: &[String]) -> Result<Vec<Wanted>> {
    let mut out = Vec::new();
    for (key, bindings) in &record.host_config.port_bindings {
        let (container_port, proto) = port_key(key)?;
        for binding in bindings {
            out.push(Wanted {
                proto,
                host_ip: host_ip(&binding.host_ip)?,
                host_ports: host_ports(&binding.host_port)?,
                container_port,
            });
        }
    }
    if record.host_config.publish_all_ports {
        let own = record.config.exposed_ports.iter().flat_map(|m| m.keys());
        let exposed: BTreeSet<&String> = own.chain(image_exposed).collect();
        for key in exposed {
            if record.host_config.port_bindings.contains_key(key) {
                continue;
            }
            let (container_port, proto) = port_key(key)?;
            out.push(Wanted {
                proto,
                host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                host_ports: vec![0],
                container_port,
            });
        }
    }
    Ok(out)
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

fn host_ip(text: &str) -> Result<IpAddr> {
    match text.trim_start_matches('[').trim_end_matches(']') {
        "" => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        t => t
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid IP address: {t}"))),
    }
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
            Ok(p) => taken.push(p),
            Err(e) => {
                // Best effort: the error that matters is the allocation's.
                let _ = ports.release(container_id);
                return Err(e);
            }
        }
    }
    Ok(taken)
}

fn take_one(ports: &HostPorts, container_id: &str, w: &Wanted) -> Result<PublishedPort> {
    let mut last_error = None;
    for &host_port in &w.host_ports {
        let request = PortRequest {
            proto: w.proto,
            host_ip: w.host_ip,
            host_port,
            container_port: w.container_port,
        };
        match ports.publish(container_id, &[request]) {
            Ok(mut published) if !published.is_empty() => return Ok(published.remove(0)),
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

/// The firewall's rules for the taken ports, to the container's address.
pub fn rules(taken: &[PublishedPort], container_ip: IpAddr) -> Result<Vec<PortRule>> {
    taken
        .iter()
        .map(|p| {
            if p.host_ip.is_ipv4() != container_ip.is_ipv4() {
                return Err(Error::Invalid(format!(
                    "cannot publish {}:{} to the container's {container_ip}",
                    p.host_ip, p.host_port
                )));
            }
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

/// Publishes the container's ports to `container_ip` behind `bridge`: host ports taken,
/// `route_localnet` on the bridge (127.0.0.1 reaches them), one `nft` run. On failure
/// nothing is left. Returns what `NetworkSettings.Ports` shows.
pub fn publish(
    root: &Path,
    record: &ContainerRecord,
    image_exposed: &[String],
    bridge: &str,
    container_ip: IpAddr,
) -> Result<PortMap> {
    let wanted = wanted(record, image_exposed)?;
    if wanted.is_empty() {
        return Ok(PortMap::new());
    }
    let id = record.id.as_str();
    let ports = HostPorts::open(root)?;
    let taken = take(&ports, id, &wanted)?;
    let programmed = rules(&taken, container_ip).and_then(|rules| {
        if container_ip.is_ipv4() {
            pelagos_firewall::enable_route_localnet(bridge)?;
        }
        Ok(Firewall::new().add_ports(id, &rules)?)
    });
    if let Err(e) = programmed {
        let _ = unpublish(root, id);
        return Err(e);
    }
    Ok(port_map(&taken))
}

/// Removes a container's port rules and frees its host ports (none is no error). Both are
/// tried; the first failure is returned.
pub fn unpublish(root: &Path, container_id: &str) -> Result<()> {
    let rules = Firewall::new().remove_ports(container_id);
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
            id: pelagos_model::names::new_container_id().unwrap(),
            name: "/web".into(),
            created: String::new(),
            image: "busybox".into(),
            image_id: String::new(),
            command: Vec::new(),
            config: Default::default(),
            host_config: Default::default(),
            networking: Default::default(),
            state: Default::default(),
            mounts: Vec::new(),
            volumes_prepared: false,
            anonymous_volumes: Vec::new(),
            ports: Default::default(),
            network_order: Vec::new(),
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
        let w = wanted(&r, &["8443/tcp".to_string()]).unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let summary: Vec<_> = w
            .iter()
            .map(|w| (w.container_port, w.proto, w.host_ip, w.host_ports.clone()))
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
        assert!(wanted(&record(&[], false, &["80/tcp"]), &[])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_range_takes_its_first_free_port_and_failure_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let ports = HostPorts::with_range(d.path(), 40000..=40001).unwrap();
        let r = record(&[("80/tcp", "", "9000-9001")], false, &[]);
        let w = wanted(&r, &[]).unwrap();
        let a = take(&ports, "a", &w).unwrap();
        let b = take(&ports, "b", &w).unwrap();
        assert_eq!((a[0].host_port, b[0].host_port), (9000, 9001));
        let e = take(&ports, "c", &w).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:9001 failed: port is already allocated"
        );
        let both = record(&[("81/tcp", "", ""), ("82/tcp", "", "9000")], false, &[]);
        assert!(take(&ports, "d", &wanted(&both, &[]).unwrap()).is_err());
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
        let rules = rules(&taken, "172.17.0.2".parse().unwrap()).unwrap();
        assert_eq!((rules[0].host_port, rules[0].container_port), (8080, 80));
        assert!(super::rules(&taken, "fd00::2".parse().unwrap()).is_err());
    }
}
