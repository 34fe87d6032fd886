//! Namespace modes (`NetworkMode`, `PidMode`, `IpcMode`, `UTSMode`, `CgroupnsMode`) and the
//! checks that depend on them: sysctls, /etc/hosts and resolv.conf entries, published ports.

use std::net::IpAddr;

use crate::config::{ContainerConfig, HostConfig};
use crate::error::{Error, Result};

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("invalid {field}: {why}"))
}

/// The network a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A new network namespace with only `lo`.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// `HostConfig.NetworkMode` (and `Config.NetworkDisabled`): "none" (also "", pelagos'
/// default until it has networks) or "host"; Docker's other modes are understood and
/// refused with what to use instead.
pub fn network_mode(config: &ContainerConfig, host: &HostConfig) -> Result<NetworkMode> {
    const FIELD: &str = "--network (HostConfig.NetworkMode)";
    if config.network_disabled == Some(true) {
        return Ok(NetworkMode::None);
    }
    let mode = host.network_mode.as_str();
    match mode {
        "" | "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        "default" | "bridge" => Err(invalid(
            FIELD,
            format!("{mode:?}: bridge networking is not supported yet: use --network none or host"),
        )),
        m if m.starts_with("container:") => {
            if m.len() == "container:".len() {
                return Err(invalid(FIELD, "container: needs a container name or id"));
            }
            Err(invalid(
                FIELD,
                format!("{m:?}: joining another container's network is not supported yet"),
            ))
        }
        m => Err(invalid(
            FIELD,
            format!("{m:?}: user-defined networks are not supported yet: use none or host"),
        )),
    }
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

pub(super) fn check_sysctls(host: &HostConfig, network: NetworkMode) -> Result<()> {
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
            (network == NetworkMode::Host).then_some("the host's network namespace")
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

pub(super) fn check_network_files(host: &HostConfig, network: NetworkMode) -> Result<()> {
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
        if ip == "host-gateway" {
            return Err(invalid(
                "--add-host (HostConfig.ExtraHosts)",
                "host-gateway needs a bridge network: not supported yet",
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
    if network == NetworkMode::None && (!host.port_bindings.is_empty() || host.publish_all_ports) {
        return Err(invalid(
            "-p, --publish (HostConfig.PortBindings)",
            "publishing ports needs a network: not possible with --network none",
        ));
    }
    Ok(())
}
