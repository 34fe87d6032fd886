//! Published host ports: which container holds which host `ip:port/proto`, in
//! `<root>/networks/ports.json` under an OFD lock, so two containers never get the same one;
//! ephemeral ports for `-P` and `-p 0` from the kernel's local port range, round robin.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{read_json, replace_json, Durability, FileLock};

/// The file of published ports, in `<root>/networks`.
pub const PORTS_FILE: &str = "ports.json";
/// Its lock.
const PORTS_LOCK: &str = "ports.lock";
/// Where the kernel keeps the ephemeral range.
const LOCAL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";
/// Docker's range when the kernel's cannot be read.
pub const FALLBACK_RANGE: RangeInclusive<u16> = 49153..=65535;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

impl FromStr for Protocol {
    type Err = Error;

    fn from_str(text: &str) -> Result<Protocol> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(Error::Invalid(format!("invalid proto: {text}"))),
        }
    }
}

/// A port to publish: `host_port` 0 asks for an ephemeral one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Protocol,
    /// `0.0.0.0` or `::` for every address of that family.
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

/// A published port and the container holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_id: String,
    pub proto: Protocol,
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
}

impl PublishedPort {
    /// Whether this binding and `(proto, ip, port)` cannot both exist: same protocol and
    /// port, same address family, and the same address or an unspecified one.
    fn clashes(&self, proto: Protocol, ip: IpAddr, port: u16) -> bool {
        self.proto == proto
            && self.host_port == port
            && self.host_ip.is_ipv4() == ip.is_ipv4()
            && (self.host_ip == ip || self.host_ip.is_unspecified() || ip.is_unspecified())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PortsFile {
    ports: Vec<PublishedPort>,
    /// The last ephemeral port handed out per protocol (the next search starts after it).
    #[serde(default)]
    last: BTreeMap<Protocol, u16>,
}

/// The host ports published under one root.
#[derive(Debug, Clone)]
pub struct HostPorts {
    file: PathBuf,
    lock: PathBuf,
    range: RangeInclusive<u16>,
}

/// The kernel's ephemeral port range, or Docker's fallback 49153-65535.
pub fn ephemeral_range() -> RangeInclusive<u16> {
    std::fs::read_to_string(LOCAL_PORT_RANGE)
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(FALLBACK_RANGE)
}

fn parse_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (fields.next()?.ok()?, fields.next()?.ok()?);
    (low > 0 && low <= high).then_some(low..=high)
}

impl HostPorts {
    /// The ports of `root` (`<root>/networks`), ephemeral ones from the kernel's range.
    pub fn open(root: &Path) -> Result<HostPorts> {
        HostPorts::with_range(root, ephemeral_range())
    }

    /// As [`HostPorts::open`] with the given ephemeral range.
    pub fn with_range(root: &Path, range: RangeInclusive<u16>) -> Result<HostPorts> {
        let dir = root.join("networks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(HostPorts {
            file: dir.join(PORTS_FILE),
            lock: dir.join(PORTS_LOCK),
            range,
        })
    }

    fn with_file<T>(&self, change: impl FnOnce(&mut PortsFile) -> Result<T>) -> Result<T> {
        let path = &self.lock;
        let _lock = FileLock::exclusive(path, true)?.ok_or_else(|| {
            Error::io(
                format!("lock {}", path.display()),
                std::io::ErrorKind::NotFound.into(),
            )
        })?;
        let mut file = read_json::<PortsFile>(&self.file)?.unwrap_or_default();
        let out = change(&mut file)?;
        replace_json(&self.file, &file, Durability::Volatile)?;
        Ok(out)
    }

    /// Publishes all of `requests` for a container or none of them (Docker's
    /// `Bind for IP:PORT failed: port is already allocated` for the first taken one).
    pub fn publish(
        &self,
        container_id: &str,
        requests: &[PortRequest],
    ) -> Result<Vec<PublishedPort>> {
        self.with_file(|file| {
            let mut added = Vec::new();
            for r in requests {
                let port = match r.host_port {
                    0 => self.pick_ephemeral(file, r.proto, &[r.host_ip])?,
                    fixed
                        if file
                            .ports
                            .iter()
                            .any(|p| p.clashes(r.proto, r.host_ip, fixed)) =>
                    {
                        return Err(Error::PortAllocated {
                            ip: r.host_ip,
                            port: fixed,
                        })
                    }
                    fixed => fixed,
                };
                let published = PublishedPort {
                    container_id: container_id.to_string(),
                    proto: r.proto,
                    host_ip: r.host_ip,
                    host_port: port,
                    container_port: r.container_port,
                };
                file.ports.push(published.clone());
                added.push(published);
            }
            Ok(added)
        })
    }

    /// Publishes `container_port` on each of `host_ips` with the same host port (Docker's
    /// dual-stack `-p 8080:80`: `0.0.0.0` and `::`): `host_port`, or for 0 an ephemeral port
    /// free on every one of them. All or none, as [`HostPorts::publish`].
    pub fn publish_on_each(
        &self,
        container_id: &str,
        proto: Protocol,
        host_ips: &[IpAddr],
        host_port: u16,
        container_port: u16,
    ) -> Result<Vec<PublishedPort>> {
        self.with_file(|file| {
            let port = match host_port {
                0 => self.pick_ephemeral(file, proto, host_ips)?,
                fixed => {
                    let taken =
                        |ip: &&IpAddr| file.ports.iter().any(|p| p.clashes(proto, **ip, fixed));
                    if let Some(ip) = host_ips.iter().find(taken) {
                        return Err(Error::PortAllocated {
                            ip: *ip,
                            port: fixed,
                        });
                    }
                    fixed
                }
            };
            let published: Vec<PublishedPort> = (host_ips.iter())
                .map(|ip| PublishedPort {
                    container_id: container_id.to_string(),
                    proto,
                    host_ip: *ip,
                    host_port: port,
                    container_port,
                })
                .collect();
            file.ports.extend(published.iter().cloned());
            Ok(published)
        })
    }

    /// An ephemeral host port for `-P`/`-p 0`, recorded as the container's.
    pub fn allocate_host_port(
        &self,
        container_id: &str,
        proto: Protocol,
        host_ip: IpAddr,
        container_port: u16,
    ) -> Result<u16> {
        let request = PortRequest {
            proto,
            host_ip,
            host_port: 0,
            container_port,
        };
        let published = self.publish(container_id, &[request])?;
        published
            .first()
            .map(|p| p.host_port)
            .ok_or(Error::PortsExhausted)
    }

    /// The next port after the last one handed out (wrapping) that clashes with nothing on
    /// any of `ips`.
    fn pick_ephemeral(&self, file: &mut PortsFile, proto: Protocol, ips: &[IpAddr]) -> Result<u16> {
        let (low, high) = (*self.range.start(), *self.range.end());
        let size = u32::from(high - low) + 1;
        let after = file
            .last
            .get(&proto)
            .copied()
            .filter(|p| self.range.contains(p));
        let first = after.map_or(0, |p| u32::from(p - low) + 1);
        for step in 0..size {
            let offset = (first + step) % size;
            // offset < size <= 65536 - low, so low + offset fits in u16.
            let port = low + offset as u16;
            let clashes = |ip: &IpAddr| file.ports.iter().any(|p| p.clashes(proto, *ip, port));
            if !ips.iter().any(clashes) {
                file.last.insert(proto, port);
                return Ok(port);
            }
        }
        Err(Error::PortsExhausted)
    }

    /// Frees every port of a container; returns them.
    pub fn release(&self, container_id: &str) -> Result<Vec<PublishedPort>> {
        self.reconcile(&|id| id != container_id)
    }

    /// The published ports.
    pub fn list(&self) -> Result<Vec<PublishedPort>> {
        Ok(read_json::<PortsFile>(&self.file)?
            .unwrap_or_default()
            .ports)
    }

    /// Frees the ports of containers `alive` says are gone; returns them.
    pub fn reconcile(&self, alive: &dyn Fn(&str) -> bool) -> Result<Vec<PublishedPort>> {
        self.with_file(|file| {
            let (keep, gone): (Vec<_>, Vec<_>) =
                file.ports.drain(..).partition(|p| alive(&p.container_id));
            file.ports = keep;
            Ok(gone)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: &str, port: u16) -> PortRequest {
        PortRequest {
            proto: Protocol::Tcp,
            host_ip: ip.parse().unwrap(),
            host_port: port,
            container_port: 80,
        }
    }

    #[test]
    fn reads_the_kernels_range_format() {
        assert_eq!(parse_range("32768\t60999\n"), Some(32768..=60999));
        assert_eq!(parse_range("garbage"), None);
        assert_eq!(parse_range("10 5"), None);
        let r = ephemeral_range();
        assert!(r.start() <= r.end());
    }

    #[test]
    fn fixed_ports_clash_in_dockers_words() {
        let d = tempfile::tempdir().unwrap();
        let p = HostPorts::with_range(d.path(), 40000..=40002).unwrap();
        p.publish("a", &[req("0.0.0.0", 8080)]).unwrap();
        let e = p.publish("b", &[req("127.0.0.1", 8080)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for 127.0.0.1:8080 failed: port is already allocated"
        );
        // Another family, protocol or port is free.
        p.publish("b", &[req("::", 8080)]).unwrap();
        let mut udp = req("0.0.0.0", 8080);
        udp.proto = Protocol::Udp;
        p.publish("b", &[udp]).unwrap();
        let e = p.publish("c", &[req("::", 8080)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for :::8080 failed: port is already allocated"
        );
        // All or nothing.
        assert!(p
            .publish("c", &[req("0.0.0.0", 9000), req("0.0.0.0", 8080)])
            .is_err());
        assert!(p.list().unwrap().iter().all(|x| x.container_id != "c"));
        assert_eq!(p.release("b").unwrap().len(), 2);
        p.publish("c", &[req("::", 8080)]).unwrap();
    }

    #[test]
    fn both_families_get_one_port() {
        let d = tempfile::tempdir().unwrap();
        let p = HostPorts::with_range(d.path(), 40000..=40002).unwrap();
        let both: [IpAddr; 2] = ["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
        // 40000 is taken on v6 only: the pair skips it.
        p.publish("a", &[req("::", 40000)]).unwrap();
        let pair = p.publish_on_each("b", Protocol::Tcp, &both, 0, 80).unwrap();
        let ports: Vec<(IpAddr, u16)> = pair.iter().map(|x| (x.host_ip, x.host_port)).collect();
        assert_eq!(ports, [(both[0], 40001), (both[1], 40001)]);
        let fixed = p
            .publish_on_each("c", Protocol::Tcp, &both, 8080, 80)
            .unwrap();
        assert_eq!(fixed.len(), 2);
        // Taken on one family: refused, nothing kept.
        let e = p
            .publish_on_each("d", Protocol::Tcp, &both, 40000, 80)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Bind for :::40000 failed: port is already allocated"
        );
        assert!(p.list().unwrap().iter().all(|x| x.container_id != "d"));
    }

    #[test]
    fn ephemeral_ports_round_robin_until_exhausted() {
        let d = tempfile::tempdir().unwrap();
        let p = HostPorts::with_range(d.path(), 40000..=40002).unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let a = p.allocate_host_port("a", Protocol::Tcp, any, 80).unwrap();
        let b = p.allocate_host_port("b", Protocol::Tcp, any, 80).unwrap();
        assert_eq!((a, b), (40000, 40001));
        p.release("a").unwrap();
        // Round robin: the freed port is not reused at once.
        assert_eq!(
            p.allocate_host_port("c", Protocol::Tcp, any, 80).unwrap(),
            40002
        );
        assert_eq!(
            p.allocate_host_port("d", Protocol::Tcp, any, 80).unwrap(),
            40000
        );
        let e = p
            .allocate_host_port("e", Protocol::Tcp, any, 80)
            .unwrap_err();
        assert_eq!(e.to_string(), "all ports are allocated");
        let gone = p.reconcile(&|id| id == "b").unwrap();
        assert_eq!(gone.len(), 2);
    }
}
