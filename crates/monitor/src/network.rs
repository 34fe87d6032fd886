//! The container's bridge network, as the monitor wires it: a lease reserved before the /etc
//! files are written, the bridge (and its firewall rules) made on first use, the veth pair
//! attached between create and start, and all of it undone when the container ends.

use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use nix::fcntl::{Flock, FlockArg};
use pelagos_firewall::{Firewall, NetworkRules};
use pelagos_model::config::{EndpointSettings, PortMap};
use pelagos_model::record::ContainerRecord;
use pelagos_netlink::{Attachment, Netlink};
use pelagos_network::{EndpointRequest, Lease, MacAddress, NetworkRecord, Networks};

use crate::error::{Error, Result};

/// The interface's name inside the container.
pub const CONTAINER_IFNAME: &str = "eth0";
/// Held while a network's bridge is set up, so that concurrent first starts make it once.
const BRIDGE_LOCK: &str = "bridge.lock";
/// Written in a network's directory when pelagos turned IP forwarding on (the values before).
pub const IP_FORWARD_FILE: &str = "ip_forward.enabled";
/// Docker's MTU option of a network.
const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// A container's lease on its bridge network, and its veth once attached.
pub struct Endpoint {
    /// The engine's root (the host ports' file).
    root: PathBuf,
    networks: Networks,
    network: NetworkRecord,
    lease: Lease,
    /// The host end's name, once the pair exists.
    host_veth: Option<String>,
    /// Whether ports were published (their rules and host ports to undo).
    published: bool,
}

/// The host end of a container's veth pair: `pl` and 10 hex of its id (12 characters, apart
/// from user bridges' `pl-…`).
pub fn host_veth_name(container_id: &str) -> String {
    let short: String = container_id.chars().take(10).collect();
    format!("pl{short}")
}

/// Leases an address for the container on the bridge network its record names (none for
/// `none` and `host`): the asked one, else `previous` (the last start's) when still free,
/// else the first free one. No network namespace is needed yet.
pub fn reserve(
    root: &Path,
    record: &ContainerRecord,
    previous: Option<Ipv4Addr>,
) -> Result<Option<Endpoint>> {
    let Some(settings) = record.networking.endpoints_config.values().next() else {
        return Ok(None);
    };
    let networks = Networks::open(root)?;
    let network = networks.get(&settings.network_id)?;
    let request = endpoint_request(record, settings)?;
    let lease = match (request.ipv4, previous) {
        (None, Some(ip)) => {
            let again = EndpointRequest {
                ipv4: Some(ip),
                ..request.clone()
            };
            match networks.allocate(&network, &again) {
                Ok(lease) => lease,
                Err(_) => networks.allocate(&network, &request)?,
            }
        }
        _ => networks.allocate(&network, &request)?,
    };
    Ok(Some(Endpoint {
        root: root.to_path_buf(),
        networks,
        network,
        lease,
        host_veth: None,
        published: false,
    }))
}

/// What the container asks of the network: its name, `--network-alias`, `--ip`, `--ip6`,
/// `--mac-address` (kept in `Config.MacAddress`, the endpoint's being the last one given).
fn endpoint_request(record: &ContainerRecord, e: &EndpointSettings) -> Result<EndpointRequest> {
    let ipam = e.ipam_config.clone().unwrap_or_default();
    let parse = |text: &str, what: &str| -> Result<Option<IpAddr>> {
        match text {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|_| Error::Invalid(format!("invalid {what} address: {t}"))),
        }
    };
    let ipv4 = match parse(&ipam.ipv4_address, "IPv4")? {
        Some(IpAddr::V4(a)) => Some(a),
        Some(IpAddr::V6(_)) => return Err(Error::Invalid("--ip takes an IPv4 address".into())),
        None => None,
    };
    let ipv6 = match parse(&ipam.ipv6_address, "IPv6")? {
        Some(IpAddr::V6(a)) => Some(a),
        Some(IpAddr::V4(_)) => return Err(Error::Invalid("--ip6 takes an IPv6 address".into())),
        None => None,
    };
    let mac = match record.config.mac_address.as_deref() {
        Some(m) if !m.is_empty() => Some(m.parse::<MacAddress>()?),
        _ => None,
    };
    Ok(EndpointRequest {
        container_id: record.id.to_string(),
        name: record.name.trim_start_matches('/').to_string(),
        aliases: e.aliases.clone().unwrap_or_default(),
        ipv4,
        ipv6,
        mac,
    })
}

impl Endpoint {
    /// The container's IPv4 address (for its /etc/hosts).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.lease.ipv4
    }

    /// Connects the network namespace of the container's init `pid` to the bridge (made
    /// first if missing): veth pair, `eth0` with the lease's addresses and MAC, default
    /// routes through the gateways, hairpin mode on the host end.
    pub fn attach(&mut self, pid: i32) -> Result<()> {
        let bridge = self.bridge()?.to_string();
        let mut netlink = Netlink::open()?;
        if netlink.link_index(&bridge)?.is_none() {
            self.set_up_bridge(&mut netlink, &bridge)?;
        }
        let netns_path = format!("/proc/{pid}/ns/net");
        let netns =
            File::open(&netns_path).map_err(|e| Error::io(format!("open {netns_path}"), e))?;
        let host_veth = host_veth_name(&self.lease.container_id);
        let attachment = self.attachment(bridge, host_veth.clone());
        netlink.attach_container(netns.as_fd(), &attachment)?;
        self.host_veth = Some(host_veth.clone());
        // Best effort: only a container reaching its own published ports needs it.
        let hairpin = format!("/sys/class/net/{host_veth}/brport/hairpin_mode");
        let _ = fs::write(hairpin, "1");
        Ok(())
    }

    /// Publishes the container's ports (`-p`, `-P` with the image's `image_exposed`) to its
    /// address, once attached; returns Docker's `NetworkSettings.Ports` of them.
    pub fn publish(
        &mut self,
        record: &ContainerRecord,
        image_exposed: &[String],
    ) -> Result<PortMap> {
        let bridge = self.bridge()?.to_string();
        let ip = IpAddr::V4(self.lease.ipv4);
        let map =
            crate::ports::publish(&self.root, record, image_exposed, &bridge, ip).map_err(|e| {
                match e {
                    // Docker's words for a taken port.
                    Error::Network(pelagos_network::Error::PortAllocated { .. }) => {
                        Error::Conflict(format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {e}",
                        record.name.trim_start_matches('/'),
                        self.lease.endpoint_id
                    ))
                    }
                    e => e,
                }
            })?;
        self.published = !map.is_empty();
        Ok(map)
    }

    fn bridge(&self) -> Result<&str> {
        self.network
            .bridge
            .as_deref()
            .ok_or_else(|| Error::Invalid(format!("network {} has no bridge", self.network.name)))
    }

    /// The network's bridge with the gateways' addresses, its firewall rules and, for a
    /// network that is not `--internal`, IP forwarding (recorded when pelagos turned it on).
    /// Under the network's bridge lock: concurrent first starts make it once.
    fn set_up_bridge(&self, netlink: &mut Netlink, bridge: &str) -> Result<()> {
        let dir = self.networks.dir_of(&self.network);
        let _lock = lock(&dir.join(BRIDGE_LOCK))?;
        let index = netlink.ensure_bridge(bridge, self.mtu())?;
        for pool in &self.network.ipam.config {
            let address = IpNet::new(pool.gateway, pool.subnet.prefix_len())
                .map_err(|e| Error::Invalid(format!("gateway {}: {e}", pool.gateway)))?;
            netlink.add_address(index, address)?;
        }
        let rules = NetworkRules {
            bridge: bridge.to_string(),
            subnets: self.network.ipam.config.iter().map(|p| p.subnet).collect(),
            internal: self.network.internal,
        };
        Firewall::new().ensure_network(&rules)?;
        if !self.network.internal {
            let before = pelagos_firewall::enable_ip_forward()?;
            if !before.v4 {
                let text = format!("v4={} v6={}\n", before.v4, before.v6);
                let path = dir.join(IP_FORWARD_FILE);
                fs::write(&path, text)
                    .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
            }
        }
        Ok(())
    }

    fn mtu(&self) -> Option<u32> {
        self.network
            .options
            .get(MTU_OPTION)
            .and_then(|m| m.parse().ok())
    }

    fn attachment(&self, bridge: String, host_veth_name: String) -> Attachment {
        let mut addrs = Vec::new();
        let mut gateways = Vec::new();
        let ips = [IpAddr::V4(self.lease.ipv4)]
            .into_iter()
            .chain(self.lease.ipv6.map(IpAddr::V6));
        for ip in ips {
            let pool = match ip {
                IpAddr::V4(_) => self.network.ipv4_pool(),
                IpAddr::V6(_) => self.network.ipv6_pool(),
            };
            if let Some(pool) = pool {
                if let Ok(net) = IpNet::new(ip, pool.subnet.prefix_len()) {
                    addrs.push(net);
                    gateways.push(pool.gateway);
                }
            }
        }
        // An internal network has no way out: no default route either (Docker sets no
        // gateway on its endpoints), so even the host's own other addresses are unreachable.
        if self.network.internal {
            gateways.clear();
        }
        Attachment {
            bridge,
            host_veth_name,
            container_ifname: CONTAINER_IFNAME.to_string(),
            mac: Some(self.lease.mac.0),
            addrs,
            gateways,
            mtu: self.mtu(),
        }
    }

    /// The endpoint as inspect shows it: `settings` (what was asked) with what was leased.
    pub fn fill(&self, settings: &mut EndpointSettings) {
        let v4 = self.network.ipv4_pool();
        let v6 = self.network.ipv6_pool();
        settings.network_id = self.network.id.clone();
        settings.endpoint_id = self.lease.endpoint_id.clone();
        settings.ip_address = self.lease.ipv4.to_string();
        settings.ip_prefix_len = v4.map_or(0, |p| p.subnet.prefix_len());
        settings.gateway = v4.map(|p| p.gateway.to_string()).unwrap_or_default();
        if let (Some(ip), Some(pool)) = (self.lease.ipv6, v6) {
            settings.global_ipv6_address = ip.to_string();
            settings.global_ipv6_prefix_len = pool.subnet.prefix_len();
            settings.ipv6_gateway = pool.gateway.to_string();
        }
        settings.mac_address = self.lease.mac.to_string();
    }

    /// Undoes the endpoint: the veth pair deleted (usually gone with the namespace already),
    /// the lease freed. Best effort: the first failure is returned, the rest still done.
    pub fn release(self) -> Result<()> {
        let unpublished = match self.published {
            true => crate::ports::unpublish(&self.root, &self.lease.container_id),
            false => Ok(()),
        };
        let detached = match &self.host_veth {
            Some(name) => Netlink::open().and_then(|mut n| n.detach_container(name)),
            None => Ok(()),
        };
        let released = self
            .networks
            .release(&self.network, &self.lease.container_id);
        unpublished?;
        detached?;
        released?;
        Ok(())
    }
}

/// An exclusive flock on `path` (created), held until dropped.
fn lock(path: &Path) -> Result<Flock<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::sys(format!("lock {}", path.display()), errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_the_kernel_and_differ_from_bridges() {
        let name = host_veth_name("0123456789abcdef0123456789abcdef");
        assert_eq!(name, "pl0123456789");
        assert!(name.len() <= pelagos_netlink::MAX_IFNAME_LEN);
        assert!(!name.starts_with("pl-"));
    }
}
