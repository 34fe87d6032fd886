//! What [`crate::build`] takes besides the config: paths and values the caller (the
//! container's monitor) prepared on the host.

use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use pelagos_model::record::MountPoint;
use serde_json::Value;

use crate::devices::HostDevice;
use crate::user::ResolvedUser;

/// Files the monitor writes for the container and binds over its /etc.
#[derive(Debug, Clone)]
pub struct EtcFiles<'a> {
    /// `/etc/hosts`.
    pub hosts: &'a Path,
    /// `/etc/hostname`.
    pub hostname: &'a Path,
    /// `/etc/resolv.conf`.
    pub resolv_conf: &'a Path,
}

/// Everything [`crate::build`] needs besides the config, prepared on the host by the caller.
pub struct SpecInput<'a> {
    /// The container's root filesystem (the overlay mount point).
    pub rootfs: &'a Path,
    /// The image's config, if the image has one.
    pub image: Option<&'a ImageConfig>,
    /// The user the process runs as ([`crate::user::resolve_with_groups`]).
    pub user: &'a ResolvedUser,
    /// The hostname ([`crate::hostname`]).
    pub hostname: &'a str,
    /// The working directory ([`crate::working_dir`], already created in the rootfs).
    pub cwd: &'a str,
    /// Host files for /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc: EtcFiles<'a>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: &'a str,
    /// Annotations to record (they win over `HostConfig.Annotations` of the same key).
    pub annotations: serde_json::Map<String, Value>,
    /// Binds with volumes already resolved to host directories (the monitor resolves them).
    pub mounts: &'a [MountPoint],
    /// Host path of the init program when `HostConfig.Init` (bind-mounted read-only at
    /// /sbin/docker-init and made the process's `argv[0]` with "--" before the command).
    pub init: Option<&'a Path>,
    /// Namespaces of `container:NAME|ID` modes, by OCI type (`pid`, `ipc`, `uts`): the
    /// other container's `/proc/<init pid>/ns/<type>` (the monitor finds it running).
    pub joined_namespaces: &'a [(&'static str, PathBuf)],
    /// `HostConfig.Devices` looked up on the host ([`crate::devices::host_devices`]).
    pub devices: &'a [HostDevice],
    /// A /dev/shm mounted on the host's side to bind in place of a tmpfs of the container's
    /// own: a shareable container's, or its IPC donor's (Docker's `mounts/shm`).
    pub shm: Option<&'a Path>,
}
