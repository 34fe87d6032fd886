//! Temporary bridge to today's engine: the record's typed Docker config turned into the
//! engine's `SpecOptions` for its spec builder, its user resolution and its volume store.
//! Replaced as a whole by calls to `pelagos-spec` and the model's volumes once they land;
//! nothing else in the monitor names `pelagos_engine`.

use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Spec;
use pelagos_engine::flags::Limits;
use pelagos_engine::spec::{self as engine_spec, EtcFiles, NetworkMode, SpecInput, SpecOptions};
use pelagos_model::config::{HostConfig, Mount};
use pelagos_model::record::{ContainerRecord, MountPoint};

use crate::error::{Error, Result};

/// The uid, gid and supplementary groups a process runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

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
    /// `--init`: the spec crate will bind-mount it; today's builder has no such option.
    pub init_path: Option<&'a Path>,
}

/// Engine errors as the monitor's.
fn adapt(e: pelagos_engine::Error) -> Error {
    match e {
        pelagos_engine::Error::InvalidOption(m) | pelagos_engine::Error::Spec(m) => {
            Error::Invalid(m)
        }
        pelagos_engine::Error::TooManyLayers(_) => Error::Invalid(e.to_string()),
        pelagos_engine::Error::Runtime(r) => Error::Runtime(r),
        pelagos_engine::Error::Io { what, source } => Error::Io { what, source },
        other => Error::Internal(other.to_string()),
    }
}

/// Resolves Docker's user syntax inside `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<User> {
    let u = pelagos_engine::user::resolve(rootfs, spec).map_err(adapt)?;
    Ok(User {
        uid: u.uid,
        gid: u.gid,
        additional_gids: u.additional_gids,
    })
}

/// Creates a missing working directory owned by root, as dockerd does.
pub fn ensure_workdir(rootfs: &Path, dir: &str) -> Result<()> {
    pelagos_engine::user::ensure_workdir(rootfs, dir, &Default::default()).map_err(adapt)
}

/// Every capability (an `exec --privileged`).
pub fn all_capabilities() -> Vec<String> {
    let privileged = SpecOptions {
        privileged: true,
        ..Default::default()
    };
    engine_spec::capabilities(&privileged).unwrap_or_default()
}

/// The OCI spec of one start.
pub fn build(req: &SpecRequest<'_>) -> Result<Spec> {
    let _ = req.init_path;
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "io.pelagos.container.name".into(),
        req.record.name.clone().into(),
    );
    annotations.insert(
        "io.pelagos.image".into(),
        req.record.image_id.clone().into(),
    );
    let user = pelagos_engine::user::ResolvedUser {
        uid: req.user.uid,
        gid: req.user.gid,
        additional_gids: req.user.additional_gids.clone(),
    };
    let input = SpecInput {
        rootfs: req.rootfs,
        image: req.image,
        user: &user,
        hostname: req.hostname,
        cwd: req.cwd,
        etc: EtcFiles {
            hosts: req.etc.hosts,
            hostname: req.etc.hostname,
            resolv_conf: req.etc.resolv_conf,
        },
        cgroups_path: req.cgroups_path,
        annotations,
    };
    engine_spec::build(&input, &options(req.record)?).map_err(adapt)
}

/// Whether the container shares the host's network namespace.
pub fn host_network(host: &HostConfig) -> Result<bool> {
    Ok(network(host)? == NetworkMode::Host)
}

fn network(host: &HostConfig) -> Result<NetworkMode> {
    match host.network_mode.as_str() {
        "host" => Ok(NetworkMode::Host),
        // Until networks exist, the default network is an empty namespace.
        "" | "none" | "default" | "bridge" => Ok(NetworkMode::None),
        other => Err(Error::Invalid(format!(
            "network mode {other:?} is not supported yet (none, host and bridge are)"
        ))),
    }
}

fn options(r: &ContainerRecord) -> Result<SpecOptions> {
    let h = &r.host_config;
    Ok(SpecOptions {
        cmd: r.command.clone(),
        // The record's command is already resolved against the image's entrypoint.
        entrypoint: Some(String::new()),
        env: r.config.env.clone(),
        read_only: h.readonly_rootfs,
        cap_add: h.cap_add.clone(),
        cap_drop: h.cap_drop.clone(),
        security_opt: h.security_opt.clone(),
        network: network(h)?,
        tty: r.config.tty,
        privileged: h.privileged,
        volumes: r.mounts.iter().map(volume_flag).collect(),
        mounts: h.mounts.iter().filter_map(tmpfs_mount_flag).collect(),
        tmpfs: h
            .tmpfs
            .iter()
            .map(|(dst, o)| match o.is_empty() {
                true => dst.clone(),
                false => format!("{dst}:{o}"),
            })
            .collect(),
        ulimits: h
            .ulimits
            .iter()
            .map(|u| format!("{}={}:{}", u.name, u.soft, u.hard))
            .collect(),
        shm_size: (h.shm_size > 0).then(|| h.shm_size.to_string()),
        limits: limits(h),
        ..Default::default()
    })
}

/// A bind or volume mount point as `-v SOURCE:DEST[:OPTIONS]`.
fn volume_flag(m: &MountPoint) -> String {
    let mut opts = Vec::new();
    if !m.rw {
        opts.push("ro");
    }
    if !m.propagation.is_empty() {
        opts.push(m.propagation.as_str());
    }
    match opts.is_empty() {
        true => format!("{}:{}", m.source, m.destination),
        false => format!("{}:{}:{}", m.source, m.destination, opts.join(",")),
    }
}

/// A `--mount type=tmpfs` (binds and volumes are in the record's mount points).
fn tmpfs_mount_flag(m: &Mount) -> Option<String> {
    if m.kind != "tmpfs" {
        return None;
    }
    let mut s = format!("type=tmpfs,target={}", m.target);
    if let Some(t) = &m.tmpfs_options {
        if t.size_bytes > 0 {
            s.push_str(&format!(",tmpfs-size={}", t.size_bytes));
        }
        if t.mode != 0 {
            s.push_str(&format!(",tmpfs-mode={:o}", t.mode));
        }
    }
    if m.read_only {
        s.push_str(",readonly");
    }
    Some(s)
}

fn limits(h: &HostConfig) -> Limits {
    let positive = |n: i64| (n > 0).then(|| n.to_string());
    let cpus = if h.nano_cpus > 0 {
        Some(format!("{}", h.nano_cpus as f64 / 1e9))
    } else if h.cpu_quota > 0 {
        let period = if h.cpu_period > 0 {
            h.cpu_period
        } else {
            100_000
        };
        Some(format!("{}", h.cpu_quota as f64 / period as f64))
    } else {
        None
    };
    Limits {
        memory: positive(h.memory),
        memory_swap: match h.memory_swap {
            -1 => Some("-1".into()),
            n => positive(n),
        },
        cpus,
        cpu_shares: u64::try_from(h.cpu_shares).ok().filter(|s| *s > 0),
        cpuset_cpus: Some(h.cpuset_cpus.clone()).filter(|c| !c.is_empty()),
        pids_limit: h.pids_limit,
    }
}

/// A volume as made or found.
#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub mountpoint: PathBuf,
    pub anonymous: bool,
    /// Made just now (so it gets the image's files).
    pub new: bool,
}

/// The volume store.
pub struct VolumeStore(pelagos_engine::volumes::Volumes);

impl VolumeStore {
    pub fn open(dir: &Path) -> Result<VolumeStore> {
        Ok(VolumeStore(
            pelagos_engine::volumes::Volumes::open(dir).map_err(adapt)?,
        ))
    }

    /// The volume `name` (made when missing), or a new anonymous one.
    pub fn create(&self, name: Option<&str>) -> Result<Volume> {
        let (v, new) = self.0.create(name, Default::default()).map_err(adapt)?;
        Ok(Volume {
            anonymous: v.is_anonymous(),
            name: v.name,
            mountpoint: v.mountpoint,
            new,
        })
    }

    /// Removes a volume (anonymous ones of a removed container).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.0.remove(name, true, &|_| false).map_err(adapt)
    }
}

/// Docker's copy-up of the image's files at `dest` into a new volume's directory.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<()> {
    pelagos_engine::volumes::copy_up(rootfs, dest, data).map_err(adapt)
}

/// Checks a volume name (Docker's rule).
pub fn validate_volume_name(name: &str) -> Result<()> {
    pelagos_engine::volumes::validate_name(name).map_err(adapt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::{TmpfsOptions, Ulimit};

    #[test]
    fn typed_config_becomes_spec_options() {
        let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "a".repeat(64), "name": "x", "created": "", "image": "i", "image_id": "sha256:1",
            "command": ["sh", "-c", "true"], "config": {}, "host_config": {},
            "state": {"status": "created"}
        }))
        .unwrap();
        r.host_config.memory = 64 << 20;
        r.host_config.memory_swap = -1;
        r.host_config.nano_cpus = 1_500_000_000;
        r.host_config.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 20,
        }];
        r.host_config.mounts = vec![Mount {
            target: "/t".into(),
            kind: "tmpfs".into(),
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: 1024,
                mode: 0o1777,
            }),
            ..Default::default()
        }];
        r.mounts = vec![MountPoint {
            kind: "bind".into(),
            source: "/h".into(),
            destination: "/c".into(),
            rw: false,
            propagation: "rprivate".into(),
            ..Default::default()
        }];
        let o = options(&r).unwrap();
        assert_eq!(o.cmd, vec!["sh", "-c", "true"]);
        assert_eq!(o.volumes, vec!["/h:/c:ro,rprivate"]);
        assert_eq!(
            o.mounts,
            vec!["type=tmpfs,target=/t,tmpfs-size=1024,tmpfs-mode=1777"]
        );
        assert_eq!(o.ulimits, vec!["nofile=10:20"]);
        assert_eq!(o.limits.memory.as_deref(), Some("67108864"));
        assert_eq!(o.limits.memory_swap.as_deref(), Some("-1"));
        assert_eq!(o.limits.cpus.as_deref(), Some("1.5"));
        r.host_config.network_mode = "container:x".into();
        assert!(options(&r).is_err());
        assert_eq!(all_capabilities().len(), 41);
    }
}
