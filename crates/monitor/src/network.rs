//! The container's bridge networks, as the monitor wires them: per network a lease reserved
//! before the /etc files are written, the bridge (and its firewall rules) made on first use,
//! the veth pair (`eth0`, `eth1`, … in join order) attached between create and start or on
//! `network connect`, and all of it undone when the container ends or disconnects.

use std::collections::BTreeMap;
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
use pelagos_network::{
    EndpointRequest, Lease, MacAddress, NetworkRecord, Networks, IP_FORWARD_FILE,
};

use crate::error::{Error, Result};

/// Held while a network's bridge is set up, so that concurrent first starts make it once.
const BRIDGE_LOCK: &str = "bridge.lock";
/// Written in a network's directory once its bridge, addresses and rules are all made: the
/// bridge's index.
const BRIDGE_READY: &str = "bridge.ready";
/// Docker's MTU option of a network.
const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// A container's lease on one bridge network, and its veth once attached.
pub struct Endpoint {
    /// The engine's root (the host ports' file).
    root: PathBuf,
    networks: Networks,
    network: NetworkRecord,
    /// The network's name: the endpoint's key in `EndpointsConfig`.
    name: String,
    /// The interface inside the container (`eth0`, `eth1`, …).
    ifname: String,
    /// Whether its gateways are the container's default routes (its first network).
    default_route: bool,
    lease: Lease,
    /// The published ports' rules (their rules and host ports to undo).
    published: Option<crate::ports::Published>,
    /// `--dns`: where the network's resolver forwards this container's other queries.
    dns_servers: Vec<IpAddr>,
}

/// The host end of a container's veth pair for its interface `ifname`: `pl` and 10 hex of
/// its id for `eth0`, then `-N` for `ethN` (at most 15 characters; never `pl-…`, the user
/// bridges' names).
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let short: String = container_id.chars().take(10).collect();
    match ifname.strip_prefix("eth") {
        Some("0") | None => format!("pl{short}"),
        Some(n) => format!("pl{short}-{n}"),
    }
}

/// The name of the container's interface number `index`.
pub fn ifname_of(index: usize) -> String {
    format!("eth{index}")
}

/// Leases an address on every bridge network of the record (none for `none`, `host` and
/// `container:`), in the order they were joined: `eth0` (the default route), `eth1`, …
/// `previous` holds the last start's addresses by network name, tried again first. All or
/// nothing: a failure gives back what was taken.
pub fn reserve_all(
    root: &Path,
    record: &ContainerRecord,
    previous: &BTreeMap<String, Ipv4Addr>,
) -> Result<Vec<Endpoint>> {
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (index, name) in record.networks_in_order().into_iter().enumerate() {
        let Some(settings) = record.networking.endpoints_config.get(name) else {
            continue;
        };
        let wanted = Wanted {
            name,
            settings,
            ifname: ifname_of(index),
            default_route: index == 0,
        };
        match reserve(root, record, &wanted, previous.get(name).copied()) {
            Ok(e) => endpoints.push(e),
            Err(e) => {
                for taken in endpoints {
                    // Best effort: the error that matters is the one that stopped the start.
                    let _ = taken.release();
                }
                return Err(e);
            }
        }
    }
    Ok(endpoints)
}

/// One network a container joins, and as which interface.
pub struct Wanted<'a> {
    /// The network's name (its key in `EndpointsConfig`).
    pub name: &'a str,
    pub settings: &'a EndpointSettings,
    pub ifname: String,
    pub default_route: bool,
}

/// Leases an address for the container on the network `wanted` names: the asked one, else
/// `previous` (the last start's) when still free, else the first free one. No network
/// namespace is needed yet.
pub fn reserve(
    root: &Path,
    record: &ContainerRecord,
    wanted: &Wanted<'_>,
    previous: Option<Ipv4Addr>,
) -> Result<Endpoint> {
    let settings = wanted.settings;
    let networks = Networks::open(root)?;
    let network = networks.get(&settings.network_id)?;
    let request = endpoint_request(record, settings, wanted.default_route)?;
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
    Ok(Endpoint {
        root: root.to_path_buf(),
        networks,
        network,
        name: wanted.name.to_string(),
        ifname: wanted.ifname.clone(),
        default_route: wanted.default_route,
        lease,
        published: None,
        dns_servers: crate::dns::own_servers(record),
    })
}

/// What the container asks of the network: its name, `--network-alias`, `--ip`, `--ip6`,
/// and on its `first` network `--mac-address` (kept in `Config.MacAddress`, the endpoint's
/// being the last one given).
fn endpoint_request(
    record: &ContainerRecord,
    e: &EndpointSettings,
    first: bool,
) -> Result<EndpointRequest> {
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
        Some(m) if first && !m.is_empty() => Some(m.parse::<MacAddress>()?),
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

    /// The network's record.
    pub fn network(&self) -> &NetworkRecord {
        &self.network
    }

    /// The network's name (the endpoint's key in `EndpointsConfig`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface inside the container.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Connects the network namespace of the container's init `pid` to the bridge (made
    /// first if missing): veth pair, the interface with the lease's addresses and MAC, for
    /// the first network default routes through its gateways, hairpin mode on the host end
    /// (set by `attach_container`).
    pub fn attach(&mut self, pid: i32) -> Result<()> {
        let bridge = self.bridge()?.to_string();
        let mut netlink = Netlink::open()?;
        if !self.bridge_ready(&mut netlink, &bridge)? {
            self.set_up_bridge(&mut netlink, &bridge)?;
        }
        let netns_path = format!("/proc/{pid}/ns/net");
        let netns =
            File::open(&netns_path).map_err(|e| Error::io(format!("open {netns_path}"), e))?;
        let host_veth = host_veth_name(&self.lease.container_id, &self.ifname);
        let attachment = self.attachment(bridge, host_veth.clone());
        match netlink.attach_container(netns.as_fd(), &attachment) {
            // The last run's pair, its namespace not yet destroyed by the kernel (see
            // `release`): deleted now, on the rare path, then attached again.
            Err(pelagos_netlink::Error::AlreadyExists { .. }) => {
                netlink.detach_container(&host_veth)?;
                netlink.attach_container(netns.as_fd(), &attachment)?;
            }
            attached => {
                attached?;
            }
        }
        let dir = self.networks.dir_of(&self.network);
        crate::dns::register(&dir, &self.network, &self.lease, &self.dns_servers)
    }

    /// Publishes the container's ports (`-p`, `-P` with the image's `image_exposed`) to its
    /// address, once attached; returns Docker's `NetworkSettings.Ports` of them.
    pub fn publish(
        &mut self,
        record: &ContainerRecord,
        image_exposed: &[String],
    ) -> Result<PortMap> {
        let bridge = self.bridge()?.to_string();
        let addrs = crate::ports::ContainerAddrs {
            v4: self.lease.ipv4,
            v6: self.lease.ipv6,
        };
        let (map, published) =
            crate::ports::publish(&self.root, record, image_exposed, &bridge, addrs).map_err(
                |e| {
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
                },
            )?;
        self.published = published;
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
    /// Under the network's bridge lock: concurrent first starts make it once. Every step is
    /// idempotent, so a set-up cut short (its monitor killed) is simply done again; the ready
    /// file, written last with the bridge's index, says it was finished for that bridge.
    fn set_up_bridge(&self, netlink: &mut Netlink, bridge: &str) -> Result<()> {
        let dir = self.networks.dir_of(&self.network);
        let _lock = lock(&dir.join(BRIDGE_LOCK))?;
        if self.bridge_ready(netlink, bridge)? {
            return Ok(());
        }
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
        let ready = dir.join(BRIDGE_READY);
        fs::write(&ready, index.to_string())
            .map_err(|e| Error::io(format!("write {}", ready.display()), e))
    }

    /// Whether the bridge exists and its set-up was finished (the ready file names its
    /// index: a bridge made again, after a reboot or by hand, is set up again).
    fn bridge_ready(&self, netlink: &mut Netlink, bridge: &str) -> Result<bool> {
        let Some(index) = netlink.link_index(bridge)? else {
            return Ok(false);
        };
        let ready = self.networks.dir_of(&self.network).join(BRIDGE_READY);
        Ok(fs::read_to_string(ready).is_ok_and(|text| text.trim() == index.to_string()))
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
                    if self.default_route {
                        gateways.push(pool.gateway);
                    }
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
            container_ifname: self.ifname.clone(),
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

    /// `network disconnect` of a running container: its veth pair deleted now (its namespace
    /// lives on; a pair never made is not an error), then the rest of [`Endpoint::release`].
    pub fn disconnect(self) -> Result<()> {
        let host_veth = host_veth_name(&self.lease.container_id, &self.ifname);
        let deleted = Netlink::open().and_then(|mut n| n.detach_container(&host_veth));
        let released = self.release();
        deleted?;
        released.map(drop)
    }

    /// Undoes the endpoint of a container that ended: its names forgotten by the resolver,
    /// its published ports (rules first, so nothing is forwarded to an address given away),
    /// then the lease. The veth pair is left to the kernel, which deletes it with the dead
    /// container's network namespace: deleting it here would cost the exit about 20 ms of RCU
    /// grace periods (measured), and a start that finds the pair still there deletes it then.
    /// The address may be leased again before that; the new container's MAC is the same
    /// (derived from the address) and its first frame moves the bridge's forwarding entry to
    /// its own port. Best effort: the first failure is returned, the rest still done.
    ///
    /// Returns the firewall handle that deleted the ports' rules, if any: dropping it closes
    /// its netlink socket, which makes the kernel wait for an RCU grace period (≈ 12 ms
    /// measured), so the exit path drops it only after the exit has been answered.
    pub fn release(self) -> Result<Option<Firewall>> {
        let dir = self.networks.dir_of(&self.network);
        let id = &self.lease.container_id;
        let unnamed = crate::dns::unregister(&dir, id);
        let unpublished = match &self.published {
            Some(published) => crate::ports::unpublish(&self.root, id, Some(published)),
            None => Ok(()),
        };
        let released = self.networks.release(&self.network, id);
        unnamed?;
        unpublished?;
        released?;
        Ok(self.published.map(crate::ports::Published::into_firewall))
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
        let id = "0123456789abcdef0123456789abcdef";
        let name = host_veth_name(id, "eth0");
        assert_eq!(name, "pl0123456789");
        assert!(!name.starts_with("pl-"));
        let second = host_veth_name(id, &ifname_of(12));
        assert_eq!(second, "pl0123456789-12");
        assert!(second.len() <= pelagos_netlink::MAX_IFNAME_LEN);
    }
}
