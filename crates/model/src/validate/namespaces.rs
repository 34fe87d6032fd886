//! Namespace modes (`NetworkMode`, `PidMode`, `IpcMode`, `UTSMode`, `CgroupnsMode`) and the
//! checks that depend on them: sysctls, /etc/hosts and resolv.conf entries, published ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{ContainerConfig, EndpointSettings, HostConfig, NetworkingConfig};
use crate::error::{Error, Result};

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("invalid {field}: {why}"))
}

/// The network a container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// Not said (`""`, or Docker's `default`): the engine's configured default network,
    /// put in its place at create. Checks that depend on the network wait until then.
    #[default]
    Default,
    /// A new network namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
    /// A new network namespace on the bridge network of that name (`bridge` for Docker's
    /// default network); whether it exists is the engine's to check.
    Bridge(String),
    /// Another container's network namespace (`container:NAME|ID`): joined by the path
    /// `/proc/<its init pid>/ns/net` at start, with its /etc files; no endpoint of its own.
    Container(String),
}

impl NetworkMode {
    /// The network's name, for a bridge network.
    pub fn bridge_network(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge(name) => Some(name),
            NetworkMode::Default
            | NetworkMode::None
            | NetworkMode::Host
            | NetworkMode::Container(_) => None,
        }
    }
}

/// The default bridge network's name.
pub const DEFAULT_BRIDGE_NETWORK: &str = "bridge";

/// `HostConfig.NetworkMode` (and `Config.NetworkDisabled`): "" or "default" (the engine's
/// configured default network, `bridge` unless told otherwise, which the engine puts in their
/// place at create), "none", "host", "bridge", `container:NAME|ID` or a user network's name.
pub fn network_mode(config: &ContainerConfig, host: &HostConfig) -> Result<NetworkMode> {
    const FIELD: &str = "--network (HostConfig.NetworkMode)";
    if config.network_disabled == Some(true) {
        return Ok(NetworkMode::None);
    }
    let mode = host.network_mode.as_str();
    match mode {
        "" | "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        DEFAULT_BRIDGE_NETWORK => Ok(NetworkMode::Bridge(DEFAULT_BRIDGE_NETWORK.into())),
        m if m.starts_with("container:") => match joined_container(m) {
            Some(name) => Ok(NetworkMode::Container(name.to_string())),
            None => Err(invalid(FIELD, "container: needs a container name or id")),
        },
        m if m.trim().is_empty() || m.contains('/') => {
            Err(invalid(FIELD, format!("{m:?} is not a network name")))
        }
        m => Ok(NetworkMode::Bridge(m.to_string())),
    }
}

/// `NetworkingConfig.EndpointsConfig` against the network mode: at most the one network the
/// container joins; `--ip`, `--ip6`, `--network-alias` and `--mac-address` only where Docker
/// takes them (addresses and aliases on user networks, a MAC on any bridge network).
pub fn check_endpoints(network: &NetworkMode, networking: &NetworkingConfig) -> Result<()> {
    const FIELD: &str = "--network (NetworkingConfig.EndpointsConfig)";
    let endpoints = &networking.endpoints_config;
    if *network == NetworkMode::Default {
        // Checked again once the engine has put its default network in.
        return Ok(());
    }
    let Some(name) = network.bridge_network() else {
        let in_container = matches!(network, NetworkMode::Container(_));
        if in_container && endpoints.values().any(|e| !e.mac_address.is_empty()) {
            return Err(Error::Invalid(CONFLICT_MAC.into()));
        }
        return match endpoints.values().any(asks_anything) {
            true if in_container => Err(Error::Invalid(
                "conflicting options: network-scoped aliases and addresses and the container \
                 type network mode"
                    .into(),
            )),
            true => Err(invalid(
                FIELD,
                "--ip, --ip6, --network-alias and --mac-address need a bridge network",
            )),
            false => Ok(()),
        };
    };
    if let Some(other) = endpoints.keys().find(|k| !same_network(k, name)) {
        return Err(invalid(
            FIELD,
            format!("container cannot be connected to network endpoints: {name}, {other}"),
        ));
    }
    for endpoint in endpoints.values() {
        check_endpoint(name, endpoint)?;
    }
    Ok(())
}

/// Whether an endpoint's key names the network: `default` is whichever the engine made the
/// default.
fn same_network(key: &str, name: &str) -> bool {
    key == name || key == "default"
}

fn asks_anything(e: &EndpointSettings) -> bool {
    e.ipam_config.is_some()
        || e.aliases.as_ref().is_some_and(|a| !a.is_empty())
        || !e.mac_address.is_empty()
}

/// One endpoint's asked addresses, aliases and MAC on the bridge network `network` (also
/// what `network connect` asks).
pub fn check_endpoint(network: &str, e: &EndpointSettings) -> Result<()> {
    const FIELD: &str = "--network (NetworkingConfig.EndpointsConfig)";
    let user_network = network != DEFAULT_BRIDGE_NETWORK;
    if let Some(ipam) = &e.ipam_config {
        let v4 = &ipam.ipv4_address;
        let v6 = &ipam.ipv6_address;
        if !v4.is_empty() && v4.parse::<Ipv4Addr>().is_err() {
            return Err(invalid("--ip", format!("invalid IPv4 address: {v4}")));
        }
        if !v6.is_empty() && v6.parse::<Ipv6Addr>().is_err() {
            return Err(invalid("--ip6", format!("invalid IPv6 address: {v6}")));
        }
        let asks_address = !v4.is_empty() || !v6.is_empty();
        if asks_address && !user_network {
            return Err(invalid(
                FIELD,
                "user specified IP address is supported on user defined networks only",
            ));
        }
    }
    if !user_network && e.aliases.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(invalid(
            FIELD,
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if !e.mac_address.is_empty() {
        crate::flags::mac_address(&e.mac_address)?;
    }
    Ok(())
}

/// A namespace a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamespaceMode {
    /// Its own.
    #[default]
    Private,
    /// The host's.
    Host,
    /// Another container's (`container:NAME|ID`, [`joined_container`]): joined by the path
    /// `/proc/<its init pid>/ns/…` when this one starts; it must be running then.
    Container,
}

/// `NAME|ID` of a `container:NAME|ID` mode, if the mode is one.
pub fn joined_container(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:").filter(|n| !n.is_empty())
}

/// `--ipc`: Docker's modes; `none` is a private namespace without /dev/shm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpcMode {
    /// Its own (also "shareable": nothing joins it yet).
    #[default]
    Private,
    /// Its own, without /dev/shm.
    None,
    /// The host's (and the host's /dev/shm).
    Host,
    /// Another container's ([`joined_container`]), with a /dev/shm of its own.
    Container,
}

/// `HostConfig.PidMode`: "", "host" or "container:NAME|ID".
pub fn pid_mode(host: &HostConfig) -> Result<NamespaceMode> {
    with_container("--pid (HostConfig.PidMode)", "PID", &host.pid_mode, |v| {
        simple_mode("--pid (HostConfig.PidMode)", "PID", v, &[""])
    })
}

/// `HostConfig.UTSMode`: "", "host" or "container:NAME|ID".
pub fn uts_mode(host: &HostConfig) -> Result<NamespaceMode> {
    with_container("--uts (HostConfig.UTSMode)", "UTS", &host.uts_mode, |v| {
        simple_mode("--uts (HostConfig.UTSMode)", "UTS", v, &[""])
    })
}

/// `container:NAME|ID` as [`NamespaceMode::Container`], else `other`.
fn with_container(
    field: &str,
    what: &str,
    value: &str,
    other: impl Fn(&str) -> Result<NamespaceMode>,
) -> Result<NamespaceMode> {
    match value.strip_prefix("container:") {
        Some("") => Err(invalid(field, format!("invalid {what} mode: {value}"))),
        Some(_) => Ok(NamespaceMode::Container),
        None => other(value),
    }
}

/// `HostConfig.CgroupnsMode`: "", "private" or "host".
pub fn cgroupns_mode(host: &HostConfig) -> Result<NamespaceMode> {
    simple_mode(
        "--cgroupns (HostConfig.CgroupnsMode)",
        "cgroup namespace",
        &host.cgroupns_mode,
        &["", "private"],
    )
}

fn simple_mode(field: &str, what: &str, value: &str, private: &[&str]) -> Result<NamespaceMode> {
    match value {
        "host" => Ok(NamespaceMode::Host),
        v if private.contains(&v) => Ok(NamespaceMode::Private),
        v => Err(invalid(field, format!("invalid {what} mode: {v}"))),
    }
}

/// `HostConfig.IpcMode`.
pub fn ipc_mode(host: &HostConfig) -> Result<IpcMode> {
    const FIELD: &str = "--ipc (HostConfig.IpcMode)";
    match host.ipc_mode.as_str() {
        "" | "private" | "shareable" => Ok(IpcMode::Private),
        "none" => Ok(IpcMode::None),
        "host" => Ok(IpcMode::Host),
        v if joined_container(v).is_some() => Ok(IpcMode::Container),
        v => Err(invalid(FIELD, format!("invalid IPC mode: {v}"))),
    }
}

pub(super) fn check_namespaces(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    pid_mode(host)?;
    ipc_mode(host)?;
    cgroupns_mode(host)?;
    if uts_mode(host)? != NamespaceMode::Private && !config.hostname.is_empty() {
        return Err(Error::Invalid(
            "Conflicting options: hostname and the UTS mode (--hostname and --uts host)".into(),
        ));
    }
    if !matches!(host.userns_mode.as_str(), "" | "host") {
        return Err(invalid(
            "--userns (HostConfig.UsernsMode)",
            format!(
                "{:?}: user namespace remapping is not supported yet",
                host.userns_mode
            ),
        ));
    }
    Ok(())
}

/// Sysctls of the container's own namespaces (Docker's `ValidateSysctl` list).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

fn is_ipc_sysctl(key: &str) -> bool {
    IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.")
}

fn is_uts_sysctl(key: &str) -> bool {
    matches!(key, "kernel.domainname" | "kernel.hostname")
}

/// Whether `key` belongs to one of the container's own namespaces (IPC, UTS, network): the
/// only sysctls a container may set.
pub fn is_namespaced_sysctl(key: &str) -> bool {
    is_ipc_sysctl(key) || is_uts_sysctl(key) || key.starts_with("net.")
}

pub(super) fn check_sysctls(host: &HostConfig, network: &NetworkMode) -> Result<()> {
    const FIELD: &str = "--sysctl (HostConfig.Sysctls)";
    // A namespace not the container's own (the host's or another container's) is refused.
    let ipc_shared = match ipc_mode(host)? {
        IpcMode::Host => Some("the host's IPC namespace"),
        IpcMode::Container => Some("another container's IPC namespace"),
        IpcMode::Private | IpcMode::None => None,
    };
    let uts_shared = match uts_mode(host)? {
        NamespaceMode::Host => Some("the host's UTS namespace"),
        NamespaceMode::Container => Some("another container's UTS namespace"),
        NamespaceMode::Private => None,
    };
    for key in host.sysctls.keys() {
        let ipc = is_ipc_sysctl(key);
        let uts = is_uts_sysctl(key);
        let net = key.starts_with("net.");
        let refused = if ipc {
            ipc_shared
        } else if uts {
            uts_shared
        } else if net {
            match network {
                NetworkMode::Host => Some("the host's network namespace"),
                NetworkMode::Container(_) => Some("another container's network namespace"),
                NetworkMode::Default | NetworkMode::None | NetworkMode::Bridge(_) => None,
            }
        } else {
            return Err(invalid(
                FIELD,
                format!(
                    "sysctl '{key}' is not allowed: only the container's own namespaces' \
                     (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set"
                ),
            ));
        };
        if let Some(ns) = refused {
            return Err(invalid(
                FIELD,
                format!("sysctl '{key}' not allowed in {ns}"),
            ));
        }
    }
    Ok(())
}

/// Docker's words for a MAC address with another container's network.
pub const CONFLICT_MAC: &str = "conflicting options: mac-address and the network mode";

/// What `--network container:NAME` cannot go with (Docker's `validateNetContainerMode`): the
/// network, its names and its files are the other container's.
pub(super) fn check_container_network(
    config: &ContainerConfig,
    host: &HostConfig,
    network: &NetworkMode,
) -> Result<()> {
    if !matches!(network, NetworkMode::Container(_)) {
        return Ok(());
    }
    let publishes = !host.port_bindings.is_empty() || host.publish_all_ports;
    let exposes = config.exposed_ports.as_ref().is_some_and(|p| !p.is_empty());
    let dns = !host.dns.is_empty() || !host.dns_search.is_empty() || !host.dns_options.is_empty();
    let conflict = [
        (!config.hostname.is_empty(), "hostname and the network mode"),
        (dns, "dns and the network mode"),
        (
            !host.extra_hosts.is_empty(),
            "custom host-to-IP mapping and the network mode",
        ),
        (
            config.mac_address.as_deref().is_some_and(|m| !m.is_empty()),
            "mac-address and the network mode",
        ),
        (
            publishes,
            "port publishing and the container type network mode",
        ),
        (exposes, "port exposing and the container type network mode"),
    ]
    .into_iter()
    .find(|(asked, _)| *asked);
    match conflict {
        Some((_, what)) => Err(Error::Invalid(format!("conflicting options: {what}"))),
        None => Ok(()),
    }
}

pub(super) fn check_network_files(host: &HostConfig, network: &NetworkMode) -> Result<()> {
    for entry in &host.extra_hosts {
        let (name, ip) = entry.split_once(':').ok_or_else(|| {
            invalid(
                "--add-host (HostConfig.ExtraHosts)",
                format!("invalid IP address in add-host: {entry:?}: expected HOST:IP"),
            )
        })?;
        if name.is_empty() || (ip != "host-gateway" && ip.parse::<IpAddr>().is_err()) {
            return Err(invalid(
                "--add-host (HostConfig.ExtraHosts)",
                format!("invalid IP address in add-host: {ip:?}"),
            ));
        }
    }
    for dns in &host.dns {
        if dns.parse::<IpAddr>().is_err() {
            return Err(invalid(
                "--dns (HostConfig.Dns)",
                format!("{dns} is not an ip address"),
            ));
        }
    }
    if host
        .dns_search
        .iter()
        .any(|d| d.is_empty() || d.len() > 255)
    {
        return Err(invalid(
            "--dns-search (HostConfig.DnsSearch)",
            "empty or too long",
        ));
    }
    let on_v6_loopback = (host.port_bindings.values().flatten())
        .filter_map(|b| b.host_ip.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .any(|ip| ip == IpAddr::V6(Ipv6Addr::LOCALHOST));
    if on_v6_loopback {
        // Docker's docker-proxy listens there; DNAT cannot take a packet out of IPv6's
        // loopback (there is no route_localnet for IPv6).
        return Err(invalid(
            "-p, --publish (HostConfig.PortBindings)",
            "pelagos cannot publish on ::1: it publishes by DNAT, which cannot take a \
             connection out of IPv6's loopback (Docker's userland proxy can); publish on \
             127.0.0.1, ::, or one of the host's other IPv6 addresses",
        ));
    }
    let publishes = !host.port_bindings.is_empty() || host.publish_all_ports;
    match network {
        NetworkMode::None if publishes => Err(invalid(
            "-p, --publish (HostConfig.PortBindings)",
            "publishing ports needs a network, and the container is on --network none: \
             use --network bridge (the default) or --network NAME",
        )),
        _ => Ok(()),
    }
}
