//! The monitor's calls into `pelagos-spec` for one start: user resolution in the rootfs, the
//! OCI spec from the record's typed config, and the network mode.

use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Spec;
use pelagos_model::record::ContainerRecord;
use pelagos_model::validate::NetworkMode;
use pelagos_spec::{EtcFiles, ResolvedUser, SpecInput};

use crate::error::Result;

/// The uid, gid and supplementary groups a process runs with.
pub type User = ResolvedUser;

/// Host files bound over the container's /etc.
#[derive(Debug, Clone, Copy)]
pub struct EtcPaths<'a> {
    pub hosts: &'a Path,
    pub hostname: &'a Path,
    pub resolv_conf: &'a Path,
}

/// Everything the spec of one start is made from.
pub struct SpecRequest<'a> {
    pub record: &'a ContainerRecord,
    pub image: Option<&'a ImageConfig>,
    pub rootfs: &'a Path,
    pub user: &'a User,
    pub hostname: &'a str,
    pub cwd: &'a str,
    pub etc: EtcPaths<'a>,
    pub cgroups_path: &'a str,
    pub init_path: Option<&'a Path>,
    /// `container:NAME|ID` namespaces found ([`crate::launch`]).
    pub joined_namespaces: &'a [(&'static str, std::path::PathBuf)],
    /// `--device` nodes looked up on the host.
    pub devices: &'a [pelagos_spec::devices::HostDevice],
    /// A host-side /dev/shm to bind (see `launch`'s `dev_shm`).
    pub shm: Option<&'a std::path::Path>,
}

/// Resolves Docker's user syntax (and `GroupAdd`) inside `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<User> {
    Ok(pelagos_spec::user::resolve_with_groups(
        rootfs, spec, group_add,
    )?)
}

/// Creates a missing working directory owned by root, as dockerd does.
pub fn ensure_workdir(rootfs: &Path, dir: &str) -> Result<()> {
    Ok(pelagos_spec::user::ensure_workdir(
        rootfs,
        dir,
        &ResolvedUser::default(),
    )?)
}

/// Every capability (an `exec --privileged`).
pub fn all_capabilities() -> Vec<String> {
    pelagos_model::security::ALL_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect()
}

/// The OCI spec of one start.
pub fn build(req: &SpecRequest<'_>) -> Result<Spec> {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "io.pelagos.container.name".into(),
        req.record.name.clone().into(),
    );
    annotations.insert(
        "io.pelagos.image".into(),
        req.record.image_id.clone().into(),
    );
    let mut config = req.record.config.clone();
    // The record's command is resolved against the image already.
    config.entrypoint = Some(Vec::new());
    config.cmd = Some(req.record.command.clone());
    let input = SpecInput {
        rootfs: req.rootfs,
        image: req.image,
        user: req.user,
        hostname: req.hostname,
        cwd: req.cwd,
        etc: EtcFiles {
            hosts: req.etc.hosts,
            hostname: req.etc.hostname,
            resolv_conf: req.etc.resolv_conf,
        },
        cgroups_path: req.cgroups_path,
        annotations,
        mounts: &req.record.mounts,
        init: req.init_path,
        joined_namespaces: req.joined_namespaces,
        devices: req.devices,
        shm: req.shm,
    };
    Ok(pelagos_spec::build(
        &input,
        &config,
        &req.record.host_config,
    )?)
}

/// Whether the container shares the host's network namespace.
pub fn host_network(record: &ContainerRecord) -> Result<bool> {
    Ok(
        pelagos_model::validate::network_mode(&record.config, &record.host_config)?
            == NetworkMode::Host,
    )
}
