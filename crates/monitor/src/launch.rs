//! One start of the container, in order: the overlay root filesystem, a bridge network's
//! lease, the /etc files, the volumes (first start only), the user and working directory, the
//! spec, create with the monitor's pipes (or a pty) as stdio, the network attached, start.

use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use pelagos_container::{CgroupManager, CreateOptions, Created, Runtime};
use pelagos_model::launch::LaunchPlan;
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;
use pelagos_model::store::Containers;
use pelagos_model::validate::joined_container;
use pelagos_spec::etc;

use crate::error::{Error, Result};
use crate::network::{self, Endpoint};
use crate::spec_adapter::{self, EtcPaths, SpecRequest};
use crate::stdio::StdioSwap;
use crate::{mounts, overlay, shm, sys};

/// What a start needs besides the record.
pub struct Launcher<'a> {
    pub store: &'a Containers,
    pub runtime: &'a Runtime,
    pub plan: &'a LaunchPlan,
    /// The container's directory (the bundle).
    pub dir: &'a Path,
    /// The engine's root (the network store).
    pub root: &'a Path,
    /// The address of the last start, tried first on a bridge network.
    pub previous_ipv4: Option<Ipv4Addr>,
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
    /// Its bridge network's endpoint, released when it ends.
    pub network: Option<Endpoint>,
}

/// The root filesystem's mount point.
pub fn rootfs_of(dir: &Path) -> PathBuf {
    dir.join("rootfs")
}

impl Launcher<'_> {
    /// Starts the container of `record` (updated with what the first start resolves). A
    /// bridge network's lease is taken before the /etc files are written and given back if
    /// the start fails.
    pub fn launch(&self, record: &mut ContainerRecord) -> Result<Launched> {
        let joined_namespaces = self.joined_namespaces(record)?;
        let shm = self.dev_shm(record)?;
        let devices = pelagos_spec::devices::host_devices(&record.host_config)?;
        let rootfs = rootfs_of(self.dir);
        self.mount_rootfs(&rootfs, record.host_config.auto_remove)?;
        let mut endpoint = network::reserve(self.root, record, self.previous_ipv4)?;
        let prepared = Prepared {
            rootfs,
            joined_namespaces,
            shm,
            devices,
        };
        match self.launch_prepared(record, &prepared, endpoint.as_mut()) {
            Ok(mut launched) => {
                launched.network = endpoint;
                Ok(launched)
            }
            Err(e) => {
                if let Some(endpoint) = endpoint {
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
        endpoint: Option<&mut Endpoint>,
    ) -> Result<Launched> {
        let rootfs = &prepared.rootfs;
        let host_net = spec_adapter::host_network(record)?;
        let hostname = hostname(record, host_net);
        let own_address = endpoint.as_ref().map(|e| e.ipv4());
        let etc = self.write_etc_files(record, &hostname, host_net, own_address)?;
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
        let mut launched = self.create(record, spec)?;
        let attached = match endpoint {
            Some(e) => self.attach_network(&launched.created, record, e),
            None => Ok(()),
        };
        if let Err(e) =
            attached.and_then(|()| Ok(self.runtime.start_created(&mut launched.created)?))
        {
            let _ = self.runtime.delete_created(launched.created);
            return Err(e);
        }
        Ok(launched)
    }

    /// Where the container's network is attached: after create (its namespaces exist, its
    /// process is parked), before start; the record's endpoint then shows what it got.
    fn attach_network(
        &self,
        created: &Created,
        record: &mut ContainerRecord,
        endpoint: &mut Endpoint,
    ) -> Result<()> {
        endpoint.attach(created.pid)?;
        let image_exposed = self
            .plan
            .image_config
            .as_ref()
            .and_then(|c| c.exposed_ports().clone())
            .unwrap_or_default();
        let published = endpoint.publish(record, &image_exposed)?;
        let ports = crate::ports::with_exposed(published, record, &image_exposed);
        *record = self.store.modify(&record.id, |r| {
            if let Some(settings) = r.networking.endpoints_config.values_mut().next() {
                endpoint.fill(settings);
            }
            r.ports = ports;
        })?;
        Ok(())
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
        ];
        let mut joined = Vec::new();
        for (kind, mode) in modes {
            let Some(name) = joined_container(mode) else {
                continue;
            };
            let other = self.store.get(name)?;
            let running = matches!(other.state.status, Status::Running | Status::Paused);
            if !running || other.state.pid <= 0 || other.id == record.id {
                return Err(Error::Conflict(format!(
                    "cannot join {} of a non running container: {name}",
                    kind.to_uppercase()
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
            joined.push((
                kind,
                PathBuf::from(format!("/proc/{}/ns/{kind}", other.state.pid)),
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
    /// with `--add-host` and `--dns*` ([`pelagos_spec::etc`]).
    fn write_etc_files(
        &self,
        record: &ContainerRecord,
        hostname: &str,
        host_net: bool,
        own_address: Option<Ipv4Addr>,
    ) -> Result<[PathBuf; 3]> {
        let paths = [
            self.dir.join("hosts"),
            self.dir.join("hostname"),
            self.dir.join("resolv.conf"),
        ];
        let host_hosts = host_net
            .then(|| fs::read_to_string("/etc/hosts").ok())
            .flatten();
        let mut hosts = etc::hosts_file(&record.host_config, host_hosts.as_deref());
        if let Some(address) = own_address {
            // Docker's line for the container's own address on its network.
            hosts.push_str(&format!("{address}\t{hostname}\n"));
        }
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = etc::resolv_conf(&record.host_config, &host_resolv);
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

    /// Creates the container with its stdio: pipes to the monitor, or a pty.
    fn create(&self, record: &ContainerRecord, spec: oci_spec::runtime::Spec) -> Result<Launched> {
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
            self.runtime.create_with_spec(&opts, spec, true)?
        };
        drop(ends.container);
        let mut created = created;
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
        Ok(Launched {
            created,
            pid,
            pidfd,
            stdin: ends.stdin,
            stdout: ends.stdout,
            stderr: ends.stderr,
            pty,
            network: None,
        })
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
