//! One start of the container, in order: the overlay root filesystem, its bridge networks'
//! leases, the /etc files, the volumes (first start only), the user and working directory, the
//! spec, create with the monitor's pipes (or a pty) as stdio, the network attached, start.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use pelagos_container::{CgroupManager, CreateOptions, Created, Runtime};
use pelagos_model::config::PortMap;
use pelagos_model::launch::LaunchPlan;
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;
use pelagos_model::store::Containers;
use pelagos_model::validate::{joined_container, network_mode, NetworkMode};
use pelagos_spec::etc;

use crate::error::{Error, Result};
use crate::network::{self, Endpoint};
use crate::spec_adapter::{self, EtcPaths, SpecRequest};
use crate::stdio::StdioSwap;
use crate::{mounts, overlay, shm, sys};

/// The longest chain of `--network container:` joins followed to the owner of the files.
const MAX_JOIN_CHAIN: usize = 16;

/// What a start needs besides the record.
pub struct Launcher<'a> {
    pub store: &'a Containers,
    pub runtime: &'a Runtime,
    pub plan: &'a LaunchPlan,
    /// The container's directory (the bundle).
    pub dir: &'a Path,
    /// The engine's root (the network store).
    pub root: &'a Path,
    /// The addresses of the last start by network name, tried first again.
    pub previous_ipv4: &'a BTreeMap<String, Ipv4Addr>,
}

/// What a start resolves before the network's lease is taken.
struct Prepared {
    rootfs: PathBuf,
    joined_namespaces: Vec<(&'static str, PathBuf)>,
    shm: Option<PathBuf>,
    devices: Vec<pelagos_spec::devices::HostDevice>,
}

/// A started container and the monitor's ends of its stdio.
pub struct Launched {
    pub created: Created,
    pub pid: i32,
    /// Readable when the container's init has exited.
    pub pidfd: OwnedFd,
    /// Write end of its stdin (`OpenStdin` without a tty).
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The terminal's master (`Tty`).
    pub pty: Option<OwnedFd>,
    /// Its bridge networks' endpoints in join order (`eth0` first), released when it ends.
    pub networks: Vec<Endpoint>,
    /// Its ports as `NetworkSettings.Ports` shows them (published and exposed), for the
    /// record's write that marks it running (one write, not two, on a network's start).
    pub ports: PortMap,
}

/// The root filesystem's mount point.
pub fn rootfs_of(dir: &Path) -> PathBuf {
    dir.join("rootfs")
}

impl Launcher<'_> {
    /// Starts the container of `record` (updated with what the first start resolves). The
    /// bridge networks' leases are taken before the /etc files are written and given back if
    /// the start fails.
    pub fn launch(&self, record: &mut ContainerRecord) -> Result<Launched> {
        let joined_namespaces = self.joined_namespaces(record)?;
        let shm = self.dev_shm(record)?;
        let devices = pelagos_spec::devices::host_devices(&record.host_config)?;
        let rootfs = rootfs_of(self.dir);
        self.mount_rootfs(&rootfs, record.host_config.auto_remove)?;
        let mut endpoints = network::reserve_all(self.root, record, self.previous_ipv4)?;
        let prepared = Prepared {
            rootfs,
            joined_namespaces,
            shm,
            devices,
        };
        match self.launch_prepared(record, &prepared, &mut endpoints) {
            Ok(mut launched) => {
                launched.networks = endpoints;
                Ok(launched)
            }
            Err(e) => {
                for endpoint in endpoints {
                    // Best effort: the error that matters is the one that stopped the start.
                    let _ = endpoint.release();
                }
                Err(e)
            }
        }
    }

    /// The rest of a start, once the root filesystem is mounted and the lease taken.
    fn launch_prepared(
        &self,
        record: &mut ContainerRecord,
        prepared: &Prepared,
        endpoints: &mut [Endpoint],
    ) -> Result<Launched> {
        let rootfs = &prepared.rootfs;
        let host_net = spec_adapter::host_network(record)?;
        let (hostname, etc) = self.etc_files(record, host_net, endpoints)?;
        if !record.volumes_prepared {
            self.prepare_volumes(record, rootfs)?;
        }
        let image = self.plan.image_config.as_ref();
        let user_spec = match record.config.user.as_str() {
            "" => image.and_then(|c| c.user().clone()).unwrap_or_default(),
            u => u.to_string(),
        };
        let user = spec_adapter::resolve_user(rootfs, &user_spec, &record.host_config.group_add)?;
        let cwd = working_dir(record, image);
        spec_adapter::ensure_workdir(rootfs, &cwd)?;
        let cgroups_path = format!(
            "{}/{}",
            self.plan.cgroup_parent.trim_end_matches('/'),
            record.id
        );
        let paths = EtcPaths {
            hosts: &etc[0],
            hostname: &etc[1],
            resolv_conf: &etc[2],
        };
        let request = SpecRequest {
            record,
            image,
            rootfs,
            user: &user,
            hostname: &hostname,
            cwd: &cwd,
            etc: paths,
            cgroups_path: &cgroups_path,
            init_path: self.plan.init_path.as_deref(),
            joined_namespaces: &prepared.joined_namespaces,
            devices: &prepared.devices,
            shm: prepared.shm.as_deref(),
        };
        let spec = spec_adapter::build(&request)?;
        // The networks are attached and the ports published while the init builds its root
        // filesystem (both only need its namespaces), not after it.
        let (mut launched, attached) = self.create(record, spec, |pid| {
            self.attach_networks(pid, record, endpoints)
        })?;
        match attached
            .and_then(|ports| Ok((ports, self.runtime.start_created(&mut launched.created)?)))
        {
            Ok((ports, ())) => {
                launched.ports = ports;
                Ok(launched)
            }
            Err(e) => {
                let _ = self.runtime.delete_created(launched.created);
                Err(e)
            }
        }
    }

    /// Where the container's networks are attached: during create, once its init `pid` has
    /// its namespaces (the user's program starts only after, at start), in join order;
    /// ports are published on the first. Returns the ports for the record (written with the
    /// running state, see `Launched`).
    fn attach_networks(
        &self,
        pid: i32,
        record: &ContainerRecord,
        endpoints: &mut [Endpoint],
    ) -> Result<PortMap> {
        if endpoints.is_empty() {
            return Ok(PortMap::default());
        }
        for endpoint in endpoints.iter_mut() {
            endpoint.attach(pid)?;
        }
        let image_exposed = self
            .plan
            .image_config
            .as_ref()
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        let published = match endpoints.first_mut() {
            Some(first) => first.publish(record, &image_exposed)?,
            None => Default::default(),
        };
        Ok(crate::ports::with_exposed(
            published,
            record,
            &image_exposed,
        ))
    }

    /// The hostname and the /etc files of this start: the network donor's for
    /// `--network container:`, else written for the container with its addresses.
    fn etc_files(
        &self,
        record: &ContainerRecord,
        host_net: bool,
        endpoints: &[Endpoint],
    ) -> Result<(String, [PathBuf; 3])> {
        if let Some(donor) = self.network_donor(record)? {
            return Ok(donor_etc_files(&self.store.dir_of(&donor.id)));
        }
        let hostname = hostname(record, host_net);
        let etc = self.write_etc_files(record, &hostname, host_net, endpoints)?;
        Ok((hostname, etc))
    }

    /// The container whose /etc files `--network container:NAME|ID` uses, if any: the one
    /// named, or the one it joined in turn (a chain of joins shares one namespace).
    fn network_donor(&self, record: &ContainerRecord) -> Result<Option<ContainerRecord>> {
        let mut donor = None;
        let mut current = record.clone();
        // Bounded: a chain this long is a loop of joins, not a network.
        for _ in 0..MAX_JOIN_CHAIN {
            match network_mode(&current.config, &current.host_config)? {
                NetworkMode::Container(name) => {
                    current = self.store.get(&name)?;
                    donor = Some(current.clone());
                }
                _ => return Ok(donor),
            }
        }
        Err(Error::Invalid(format!(
            "--network container: more than {MAX_JOIN_CHAIN} containers join each other's network"
        )))
    }

    /// The host-side /dev/shm to bind, if any: a shareable container's own (mounted here),
    /// the donor's for `--ipc container:NAME` (or the host's when the donor has the host's
    /// IPC). Otherwise the container gets a tmpfs of its own.
    fn dev_shm(&self, record: &ContainerRecord) -> Result<Option<PathBuf>> {
        let host = &record.host_config;
        if host.ipc_mode == "shareable" {
            return shm::mount_shareable(self.dir, host.shm_size).map(Some);
        }
        let Some(donor) = joined_container(&host.ipc_mode) else {
            return Ok(None);
        };
        let other = self.store.get(donor)?;
        let theirs = shm::path_of(&self.store.dir_of(&other.id));
        Ok(match other.host_config.ipc_mode.as_str() {
            "host" => Some(PathBuf::from("/dev/shm")),
            _ if overlay::is_mounted(&theirs) => Some(theirs),
            _ => None,
        })
    }

    /// The namespaces of `--pid`/`--ipc`/`--uts container:NAME|ID`: the other container's
    /// init's `/proc/<pid>/ns/…`. As in Docker, it must be running (or paused), and its IPC
    /// namespace is joined only when it was made to be shared (`--ipc shareable`).
    fn joined_namespaces(&self, record: &ContainerRecord) -> Result<Vec<(&'static str, PathBuf)>> {
        let host = &record.host_config;
        let modes = [
            ("pid", &host.pid_mode),
            ("ipc", &host.ipc_mode),
            ("uts", &host.uts_mode),
            ("network", &host.network_mode),
        ];
        let mut joined = Vec::new();
        for (kind, mode) in modes {
            let Some(name) = joined_container(mode) else {
                continue;
            };
            let other = self.store.get(name)?;
            let running = matches!(other.state.status, Status::Running | Status::Paused);
            if !running || other.state.pid <= 0 || other.id == record.id {
                // Docker's words: "network", else the namespace's upper-cased kind.
                let what = match kind {
                    "network" => kind.to_string(),
                    _ => kind.to_uppercase(),
                };
                return Err(Error::Conflict(format!(
                    "cannot join {what} of a non running container: {name}"
                )));
            }
            let shareable = matches!(other.host_config.ipc_mode.as_str(), "shareable" | "host")
                || joined_container(&other.host_config.ipc_mode).is_some();
            if kind == "ipc" && !shareable {
                return Err(Error::Invalid(format!(
                    "container {name}: non-shareable IPC (hint: use IpcMode:shareable for the \
                     donor container)"
                )));
            }
            let file = if kind == "network" { "net" } else { kind };
            joined.push((
                kind,
                PathBuf::from(format!("/proc/{}/ns/{file}", other.state.pid)),
            ));
        }
        Ok(joined)
    }

    fn mount_rootfs(&self, rootfs: &Path, volatile: bool) -> Result<()> {
        if overlay::is_mounted(rootfs) {
            return Ok(());
        }
        let (upper, work) = (self.dir.join("upper"), self.dir.join("work"));
        for d in [&upper, &work, &rootfs.to_path_buf()] {
            mkdir(d)?;
        }
        let mut lowers = self.plan.lowerdirs.clone();
        if lowers.is_empty() {
            let empty = self.dir.join("empty");
            mkdir(&empty)?;
            lowers.push(empty.to_string_lossy().into_owned());
        }
        overlay::mount_overlay(
            &self.plan.layers_dir,
            &lowers,
            &upper,
            &work,
            rootfs,
            volatile,
        )
    }

    /// /etc/hosts, /etc/hostname and /etc/resolv.conf of the container, in its directory,
    /// with `--add-host` (`host-gateway`: the default `bridge` network's gateway, as Docker's
    /// default `host-gateway-ip`) and `--dns*` ([`pelagos_spec::etc`]).
    fn write_etc_files(
        &self,
        record: &ContainerRecord,
        hostname: &str,
        host_net: bool,
        endpoints: &[Endpoint],
    ) -> Result<[PathBuf; 3]> {
        let paths = [
            self.dir.join("hosts"),
            self.dir.join("hostname"),
            self.dir.join("resolv.conf"),
        ];
        let host_hosts = host_net
            .then(|| fs::read_to_string("/etc/hosts").ok())
            .flatten();
        let host_config = with_host_gateway(self.root, &record.host_config)?;
        let mut hosts = etc::hosts_file(&host_config, host_hosts.as_deref());
        for endpoint in endpoints {
            // Docker's line for the container's own address on each of its networks.
            hosts.push_str(&own_hosts_line(IpAddr::V4(endpoint.ipv4()), hostname));
        }
        let resolv = resolv_conf(record, host_net, endpoints);
        for (path, text) in paths.iter().zip([hosts, format!("{hostname}\n"), resolv]) {
            fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        }
        Ok(paths)
    }

    /// Resolves the volumes once and records them before anything mounts them (so that a
    /// `volume prune` keeps them).
    fn prepare_volumes(&self, record: &mut ContainerRecord, rootfs: &Path) -> Result<()> {
        let store = pelagos_model::volumes::Volumes::open(&self.plan.volumes_dir)?;
        let image = self.plan.image_config.as_ref();
        let prepared = mounts::prepare(record, image, rootfs, &store)?;
        if prepared.mounts.is_empty() && prepared.anonymous.is_empty() && record.mounts.is_empty() {
            // Nothing to keep from `volume prune`; preparing again is a no-op: no write.
            record.volumes_prepared = true;
            return Ok(());
        }
        let changed = self.store.modify(&record.id, |r| {
            r.mounts = prepared.mounts.clone();
            r.anonymous_volumes = prepared.anonymous.clone();
            r.volumes_prepared = true;
        });
        match changed {
            Ok(r) => {
                *record = r;
                Ok(())
            }
            Err(e) => {
                for v in &prepared.anonymous {
                    let _ = store.remove(v, true, &|_| Vec::new());
                }
                Err(e.into())
            }
        }
    }

    /// Creates the container with its stdio: pipes to the monitor, or a pty; `meanwhile(pid)`
    /// runs as soon as the init has its namespaces, and its result comes back beside it.
    fn create<T>(
        &self,
        record: &ContainerRecord,
        spec: oci_spec::runtime::Spec,
        meanwhile: impl FnOnce(i32) -> T,
    ) -> Result<(Launched, T)> {
        let tty = record.config.tty;
        let ends = StdioEnds::new(tty, record.config.open_stdin)?;
        let opts = CreateOptions {
            cgroup_manager: CgroupManager::Cgroupfs,
            seccomp_cache: Some(self.plan.seccomp_cache.clone()),
            // The container dies with its monitor: nobody else would watch it.
            parent_death_signal: Some(libc::SIGKILL),
            ..CreateOptions::new(record.id.clone(), self.dir)
        };
        let created = {
            let _swap = StdioSwap::install([
                ends.container[0].as_fd(),
                ends.container[1].as_fd(),
                ends.container[2].as_fd(),
            ])?;
            self.runtime
                .create_with_spec_overlapped(&opts, spec, true, meanwhile)?
        };
        drop(ends.container);
        let (mut created, outcome) = created;
        let pid = created.pid;
        let pty = created.pty_master.take();
        let pidfd = match pelagos_container::sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                let _ = self.runtime.delete_created(created);
                return Err(Error::sys("pidfd_open of the container's init", e));
            }
        };
        for fd in [&ends.stdin, &ends.stdout, &ends.stderr, &pty]
            .into_iter()
            .flatten()
        {
            sys::set_nonblocking(fd.as_fd())?;
        }
        let launched = Launched {
            created,
            pid,
            pidfd,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            pty,
            networks: Vec::new(),
            ports: PortMap::default(),
        };
        Ok((launched, outcome))
    }
}

/// The two sides of the container's stdio.
struct StdioEnds {
    /// What the init gets as 0, 1 and 2.
    container: [OwnedFd; 3],
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl StdioEnds {
    fn new(tty: bool, open_stdin: bool) -> Result<StdioEnds> {
        if tty {
            // The init puts the pty's slave on 0-2 itself.
            let null = || sys::dev_null(true);
            return Ok(StdioEnds {
                container: [null()?, null()?, null()?],
                stdin: None,
                stdout: None,
                stderr: None,
            });
        }
        let (stdin_c, stdin) = match open_stdin {
            true => {
                let (r, w) = sys::pipe()?;
                (r, Some(w))
            }
            false => (sys::dev_null(false)?, None),
        };
        let (out_r, out_w) = sys::pipe()?;
        let (err_r, err_w) = sys::pipe()?;
        Ok(StdioEnds {
            container: [stdin_c, out_w, err_w],
            stdin,
            stdout: Some(out_r),
            stderr: Some(err_r),
        })
    }
}

/// /etc/resolv.conf: with the host's network, the host's file; on user networks, their
/// resolvers (the gateways); else the host's servers that the container's own namespace can
/// reach (Docker's default bridge). systemd-resolved's stub is replaced as Docker does.
fn resolv_conf(record: &ContainerRecord, host_net: bool, endpoints: &[Endpoint]) -> String {
    let host = &record.host_config;
    if host_net {
        return etc::resolv_conf(
            host,
            &fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        );
    }
    let host_file = pelagos_dns::upstream::host_resolv_conf();
    let host_resolv = fs::read_to_string(host_file).unwrap_or_default();
    let resolvers: Vec<IpAddr> = endpoints
        .iter()
        .flat_map(|e| crate::dns::nameservers(e.network()))
        .collect();
    if !resolvers.is_empty() {
        return etc::resolv_conf_via(host, &host_resolv, &resolvers);
    }
    let ipv6 = endpoints.iter().any(|e| e.network().ipv6_pool().is_some());
    etc::resolv_conf(host, &etc::without_loopback(&host_resolv, ipv6))
}

/// The hostname and the /etc files of a container that joins the network of the container
/// in `donor_dir` (Docker binds the donor's files): the donor's, as its last start wrote them.
fn donor_etc_files(donor_dir: &Path) -> (String, [PathBuf; 3]) {
    let paths = [
        donor_dir.join("hosts"),
        donor_dir.join("hostname"),
        donor_dir.join("resolv.conf"),
    ];
    let hostname = fs::read_to_string(&paths[1])
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    (hostname, paths)
}

/// The /etc/hosts line of the container's own `address` on one of its networks.
pub fn own_hosts_line(address: IpAddr, hostname: &str) -> String {
    format!("{address}\t{hostname}\n")
}

/// `host` with each `--add-host NAME:host-gateway` given the default `bridge` network's
/// gateway (its record is made at create when one is asked for).
fn with_host_gateway(
    root: &Path,
    host: &pelagos_model::config::HostConfig,
) -> Result<pelagos_model::config::HostConfig> {
    let wants = |e: &String| e.ends_with(":host-gateway");
    if !host.extra_hosts.iter().any(wants) {
        return Ok(host.clone());
    }
    let networks = pelagos_network::Networks::open(root)?;
    let bridge = networks.get(pelagos_model::validate::DEFAULT_BRIDGE_NETWORK)?;
    let gateway = bridge.ipv4_pool().map(|p| p.gateway).ok_or_else(|| {
        Error::Invalid("host-gateway: the default bridge network has no IPv4 gateway".into())
    })?;
    let mut host = host.clone();
    for entry in host.extra_hosts.iter_mut().filter(|e| wants(e)) {
        if let Some((name, _)) = entry.split_once(':') {
            *entry = format!("{name}:{gateway}");
        }
    }
    Ok(host)
}

/// The hostname: the configured one, the host's with the host's network, else the short id.
fn hostname(record: &ContainerRecord, host_net: bool) -> String {
    if !record.config.hostname.is_empty() {
        return record.config.hostname.clone();
    }
    let short = record.id.get(..12).unwrap_or(&record.id).to_string();
    if host_net {
        return nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or(short);
    }
    short
}

fn working_dir(record: &ContainerRecord, image: Option<&oci_spec::image::Config>) -> String {
    Some(record.config.working_dir.clone())
        .filter(|w| !w.is_empty())
        .or_else(|| image.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

fn mkdir(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(format!("create {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::HostConfig;

    #[test]
    fn host_gateway_is_the_default_bridge_s_gateway() {
        let root = tempfile::tempdir().unwrap();
        let host = HostConfig {
            extra_hosts: vec!["gw:host-gateway".into(), "db:10.0.0.2".into()],
            ..Default::default()
        };
        // No default network record yet: the engine makes it at create.
        assert!(with_host_gateway(root.path(), &host).is_err());
        let networks = pelagos_network::Networks::open(root.path()).unwrap();
        let bridge = networks
            .ensure_default(&pelagos_network::DefaultBridge::default(), &[])
            .unwrap();
        let gateway = bridge.ipv4_pool().unwrap().gateway;
        let resolved = with_host_gateway(root.path(), &host).unwrap();
        assert_eq!(
            resolved.extra_hosts,
            [format!("gw:{gateway}"), "db:10.0.0.2".to_string()]
        );
        let plain = HostConfig::default();
        assert_eq!(with_host_gateway(root.path(), &plain).unwrap(), plain);
    }
}
