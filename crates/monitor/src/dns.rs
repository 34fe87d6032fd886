//! A user network's resolver as the monitor keeps it (the contract of `pelagos_dns`): the
//! container's names added under the names lock when it attaches, `pelagos-dns` started
//! when none runs, and the names removed when it ends (the resolver then exits by itself).

use std::fs::File;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pelagos_dns::pidfile::{self, Status};
use pelagos_dns::{names, Entry};
use pelagos_model::record::ContainerRecord;
use pelagos_network::{Lease, NetworkRecord};

use crate::error::{Error, Result};

/// Names the resolver program (else `pelagos-dns` beside the monitor, else under
/// /usr/libexec/pelagos), as `PELAGOS_MONITOR` names the monitor.
pub const PROGRAM_ENV: &str = "PELAGOS_DNS";
/// The resolver's program name.
const PROGRAM: &str = "pelagos-dns";
/// Where the resolver's messages go, in the network's resolver directory.
pub const LOG_FILE: &str = "dns.log";
/// How long a start waits for a new resolver to bind before it fails.
const READY_WAIT: Duration = Duration::from_secs(2);
/// How often the pid file is looked at meanwhile.
const READY_POLL: Duration = Duration::from_millis(1);

/// The resolvers this monitor started, reaped once they exit (they outlive a container only
/// while other containers of its network run; a monitor that restarts its container may
/// start several over its life).
static STARTED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

/// Whether containers on `network` find each other by name: user networks, not the default
/// `bridge` (as Docker's).
pub fn resolves(network: &NetworkRecord) -> bool {
    !network.is_predefined()
}

/// The resolver's directory of the network directory `network_dir`.
pub fn dir_of(network_dir: &Path) -> PathBuf {
    network_dir.join(pelagos_dns::DIR_NAME)
}

/// The addresses the resolver of `network` listens on, which the containers' resolv.conf
/// names: its gateways (podman's way; Docker's 127.0.0.11 needs DNAT rules in every
/// container). Empty for a network without names.
pub fn nameservers(network: &NetworkRecord) -> Vec<IpAddr> {
    match resolves(network) {
        true => network.ipam.config.iter().map(|p| p.gateway).collect(),
        false => Vec::new(),
    }
}

/// The container's `--dns` servers, which its resolver forwards its other queries to.
pub fn own_servers(record: &ContainerRecord) -> Vec<IpAddr> {
    let dns = &record.host_config.dns;
    dns.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Adds the container of `lease` to the names of `network` (in `network_dir`) and starts the
/// network's resolver if none runs; returns once it answers. Nothing for the default bridge.
pub fn register(
    network_dir: &Path,
    network: &NetworkRecord,
    lease: &Lease,
    own_servers: &[IpAddr],
) -> Result<()> {
    if !resolves(network) {
        return Ok(());
    }
    reap_exited();
    let dir = dir_of(network_dir);
    let mut entry = Entry::container(
        &lease.container_id,
        &lease.name,
        &lease.aliases,
        vec![lease.ipv4],
        lease.ipv6.into_iter().collect(),
    );
    entry.dns = own_servers.to_vec();
    let pid_file = dir.join(pelagos_dns::PID_FILE_NAME);
    let started = {
        let locked = names::lock(&dir)?;
        let mut names = locked.read()?;
        names.entries.retain(|e| e.id != entry.id);
        names.entries.push(entry);
        locked.write(&names)?;
        match pidfile::status(&pid_file)? {
            Status::NotRunning => Some(spawn(&dir, &nameservers(network))?),
            Status::Starting | Status::Running(_) => None,
        }
    };
    wait_until_running(&dir, &pid_file, started)
}

/// Removes the container `container_id` from the names of the network in `network_dir`
/// (the resolver exits when it was the last one).
pub fn unregister(network_dir: &Path, container_id: &str) -> Result<()> {
    reap_exited();
    names::forget(&dir_of(network_dir), container_id)?;
    Ok(())
}

/// Starts `pelagos-dns` for the names in `dir`, listening on `listen`, in a process group
/// of its own (a terminal's signals to the monitor's group do not reach it), stdout and
/// stderr to its log.
fn spawn(dir: &Path, listen: &[IpAddr]) -> Result<Child> {
    let program = program()?;
    let log_path = dir.join(LOG_FILE);
    let log = File::create(&log_path)
        .map_err(|e| Error::io(format!("create {}", log_path.display()), e))?;
    let log_too = log
        .try_clone()
        .map_err(|e| Error::io(format!("duplicate {}", log_path.display()), e))?;
    let addresses: Vec<String> = listen.iter().map(ToString::to_string).collect();
    Command::new(&program)
        .arg("--listen")
        .arg(addresses.join(","))
        .arg("--names")
        .arg(names::path(dir))
        .arg("--upstream-from")
        .arg(pelagos_dns::upstream::host_resolv_conf())
        .arg("--pidfile")
        .arg(dir.join(pelagos_dns::PID_FILE_NAME))
        .arg("--exit-when-empty")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_too)
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(format!("start {}", program.display()), e))
}

/// Waits (bounded) until the resolver has bound its sockets, so that the container's first
/// query is answered; a resolver we `started` that exits meanwhile fails with its message.
fn wait_until_running(dir: &Path, pid_file: &Path, started: Option<Child>) -> Result<()> {
    let deadline = Instant::now() + READY_WAIT;
    let mut child = started;
    loop {
        if let Status::Running(_) = pidfile::status(pid_file)? {
            break;
        }
        let exited = match child.as_mut() {
            Some(c) => c
                .try_wait()
                .map_err(|e| Error::io("wait for pelagos-dns", e))?,
            None => None,
        };
        if exited.is_some() || Instant::now() >= deadline {
            return Err(not_started(dir, exited.is_some()));
        }
        std::thread::sleep(READY_POLL);
    }
    if let Some(child) = child {
        keep(child);
    }
    Ok(())
}

/// The error of a resolver that exited or did not bind in time, with what it said.
fn not_started(dir: &Path, exited: bool) -> Error {
    let log = std::fs::read_to_string(dir.join(LOG_FILE)).unwrap_or_default();
    let said = log.lines().last().unwrap_or("no message").to_string();
    let what = match exited {
        true => "exited",
        false => "did not answer within 2 s",
    };
    Error::Internal(format!(
        "the network's resolver ({PROGRAM}) {what}: {said} (log: {})",
        dir.join(LOG_FILE).display()
    ))
}

/// Keeps a running resolver's handle, to reap it once it exits.
fn keep(child: Child) {
    let mut started = match STARTED.lock() {
        Ok(started) => started,
        Err(poisoned) => poisoned.into_inner(),
    };
    started.push(child);
}

/// Reaps the resolvers this monitor started that have exited (no zombie stays for long).
fn reap_exited() {
    let mut started = match STARTED.lock() {
        Ok(started) => started,
        Err(poisoned) => poisoned.into_inner(),
    };
    started.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

/// `$PELAGOS_DNS`, else `pelagos-dns` beside this program, else under /usr/libexec/pelagos.
fn program() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(PROGRAM_ENV) {
        return Ok(PathBuf::from(path));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(PROGRAM)));
    beside
        .into_iter()
        .chain([Path::new("/usr/libexec/pelagos").join(PROGRAM)])
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Internal(format!(
                "cannot find {PROGRAM}: install it next to pelagos-monitor or set {PROGRAM_ENV}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(name: &str) -> NetworkRecord {
        serde_json::from_value(serde_json::json!({
            "Name": name, "Id": "0".repeat(64), "Created": "", "Scope": "local",
            "Driver": "bridge", "EnableIPv6": false, "Internal": false, "Attachable": false,
            "Ingress": false, "Options": {}, "Labels": {},
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": "10.9.0.0/24", "Gateway": "10.9.0.1"}]}
        }))
        .unwrap()
    }

    #[test]
    fn user_networks_resolve_on_their_gateway_and_the_default_bridge_does_not() {
        assert_eq!(
            nameservers(&network("app")),
            ["10.9.0.1".parse::<IpAddr>().unwrap()]
        );
        assert!(nameservers(&network("bridge")).is_empty());
    }
}
