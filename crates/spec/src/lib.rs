//! pelagos-spec: the OCI runtime spec Docker would hand runc for a container, built by a
//! pure function of the image's config and the typed Docker config (`pelagos_model::config`).
//!
//! The caller (the container's monitor) prepares what needs the host first: the root
//! filesystem, the user resolved inside it ([`user`]), volumes resolved to directories, the
//! /etc files ([`etc`]). [`build`] then only computes. [`validate`] adds to the model's checks
//! those that need this crate (capabilities, compiling a seccomp profile). It does not create,
//! mount or start anything.

pub mod caps;
pub mod devices;
pub mod etc;
pub mod input;
pub mod mounts;
pub mod process;
pub mod resources;
pub mod seccomp;
pub mod user;

use oci_spec::runtime::Spec;
use pelagos_model::config::{ContainerConfig, HostConfig};
use pelagos_model::security::{security_options, SecurityOptions};
use pelagos_model::validate::{
    cgroupns_mode, ipc_mode, network_mode, pid_mode, uts_mode, IpcMode, NamespaceMode, NetworkMode,
};
use pelagos_model::{Error, Result};
use serde_json::{json, Value};

pub use caps::{capabilities, DEFAULT_CAPABILITIES};
pub use input::{EtcFiles, SpecInput};
pub use process::{
    command_line, environment, hostname, process_args, stop_signal, stop_timeout, working_dir,
    DEFAULT_PATH, INIT_PATH,
};
pub use user::ResolvedUser;

/// Docker's masked paths.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The container's namespace modes, checked.
struct Namespaces {
    network: NetworkMode,
    pid: NamespaceMode,
    ipc: IpcMode,
    uts: NamespaceMode,
    cgroup: NamespaceMode,
}

impl Namespaces {
    fn of(config: &ContainerConfig, host: &HostConfig) -> Result<Namespaces> {
        Ok(Namespaces {
            network: network_mode(config, host)?,
            pid: pid_mode(host)?,
            ipc: ipc_mode(host)?,
            uts: uts_mode(host)?,
            cgroup: cgroupns_mode(host)?,
        })
    }

    /// `linux.namespaces`: new ones for all but those shared with the host, joined by path
    /// for another container's.
    fn to_json(&self, input: &SpecInput<'_>) -> Result<Vec<Value>> {
        let shared = |m: NamespaceMode| match m {
            NamespaceMode::Private => Some(false),
            NamespaceMode::Host => None,
            NamespaceMode::Container => Some(true),
        };
        let ipc = match self.ipc {
            IpcMode::Private | IpcMode::None => Some(false),
            IpcMode::Host => None,
            IpcMode::Container => Some(true),
        };
        let network = match self.network {
            NetworkMode::Host => None,
            NetworkMode::Container(_) => Some(true),
            NetworkMode::Default | NetworkMode::None | NetworkMode::Bridge(_) => Some(false),
        };
        let mut out = Vec::new();
        for (kind, mode) in [
            ("pid", shared(self.pid)),
            ("ipc", ipc),
            ("uts", shared(self.uts)),
            ("mount", Some(false)),
            ("cgroup", shared(self.cgroup)),
            ("network", network),
        ] {
            match mode {
                None => {}
                Some(false) => out.push(json!({ "type": kind })),
                Some(true) => out.push(json!({ "type": kind, "path": joined(input, kind)? })),
            }
        }
        Ok(out)
    }
}

/// The path of the `kind` namespace the caller found for a `container:` mode.
fn joined<'a>(input: &'a SpecInput<'_>, kind: &str) -> Result<&'a std::path::Path> {
    input
        .joined_namespaces
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, p)| p.as_path())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "the {kind} namespace of another container was not found"
            ))
        })
}

/// The OCI spec Docker would hand runc for the same image and config.
pub fn build(input: &SpecInput<'_>, config: &ContainerConfig, host: &HostConfig) -> Result<Spec> {
    if host.init == Some(true) && input.init.is_none() {
        return Err(Error::Invalid(
            "--init (HostConfig.Init): no init program is configured on this host".into(),
        ));
    }
    let caps = capabilities(host)?;
    let security = security_options(&host.security_opt)?;
    let ns = Namespaces::of(config, host)?;
    let mut spec = json!({
        "ociVersion": pelagos_container::OCI_VERSION,
        "process": process_json(input, config, host, &caps, &security)?,
        "root": {"path": input.rootfs, "readonly": host.readonly_rootfs},
        "mounts": mounts::mounts(input, host, ns.ipc),
        "linux": linux_json(input, host, &ns, &security)?,
        "annotations": annotations(input, host),
    });
    if ns.uts == NamespaceMode::Private {
        spec["hostname"] = input.hostname.into();
        if !config.domainname.is_empty() {
            spec["domainname"] = config.domainname.clone().into();
        }
    }
    let mut spec: Spec = serde_json::from_value(spec)
        .map_err(|e| Error::Invalid(format!("building the container spec: {e}")))?;
    if let Some(profile) = seccomp::seccomp(host, &security, &caps)? {
        if let Some(linux) = spec.linux_mut() {
            linux.set_seccomp(Some(profile));
        }
    }
    Ok(spec)
}

fn process_json(
    input: &SpecInput<'_>,
    config: &ContainerConfig,
    host: &HostConfig,
    caps: &[String],
    security: &SecurityOptions,
) -> Result<Value> {
    let mut process = json!({
        "terminal": config.tty,
        "user": {
            "uid": input.user.uid,
            "gid": input.user.gid,
            "additionalGids": input.user.additional_gids,
        },
        "args": process_args(input.image, config, host)?,
        "env": environment(input.image, config, input.hostname),
        "cwd": input.cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": security.no_new_privileges,
        "rlimits": resources::rlimits(host),
    });
    if host.oom_score_adj != 0 {
        process["oomScoreAdj"] = host.oom_score_adj.into();
    }
    if let Some(profile) = security.apparmor.as_ref().filter(|_| !host.privileged) {
        process["apparmorProfile"] = profile.clone().into();
    }
    Ok(process)
}

/// The /proc and /sys paths a container gets masked and made read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPaths {
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
}

/// What the container's spec masks and makes read-only: the config's lists, else Docker's;
/// `None` (nothing) for a privileged container or with `systempaths=unconfined`.
pub fn system_paths(host: &HostConfig, security: &SecurityOptions) -> Option<SystemPaths> {
    if host.privileged || security.systempaths_unconfined {
        return None;
    }
    let defaults = |d: &[&str]| d.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    Some(SystemPaths {
        masked: (host.masked_paths.clone()).unwrap_or_else(|| defaults(&MASKED_PATHS)),
        readonly: (host.readonly_paths.clone()).unwrap_or_else(|| defaults(&READONLY_PATHS)),
    })
}

fn linux_json(
    input: &SpecInput<'_>,
    host: &HostConfig,
    ns: &Namespaces,
    security: &SecurityOptions,
) -> Result<Value> {
    let mut resources = resources::resources(host);
    let all_devices = host.privileged;
    let mut rules = vec![json!({"allow": all_devices, "access": "rwm"})];
    rules.extend(devices::cgroup_rules(input.devices));
    resources.insert("devices".into(), rules.into());
    let mut linux = json!({
        "namespaces": ns.to_json(input)?,
        "cgroupsPath": input.cgroups_path,
        "resources": resources,
    });
    if let Some(paths) = system_paths(host, security) {
        linux["maskedPaths"] = json!(paths.masked);
        linux["readonlyPaths"] = json!(paths.readonly);
    }
    if !host.sysctls.is_empty() {
        linux["sysctl"] = json!(host.sysctls);
    }
    if !input.devices.is_empty() {
        linux["devices"] = devices::device_nodes(input.devices).into();
    }
    Ok(linux)
}

/// `HostConfig.Annotations`, then the caller's (which win).
fn annotations(input: &SpecInput<'_>, host: &HostConfig) -> Value {
    let mut all: serde_json::Map<String, Value> = host
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    all.extend(input.annotations.clone());
    Value::Object(all)
}

/// The model's checks ([`pelagos_model::validate::validate`]) and those that need this crate:
/// capability arithmetic and compiling a seccomp profile. Nothing is created.
pub fn validate(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    pelagos_model::validate::validate(config, host)?;
    let caps = capabilities(host)?;
    let security = security_options(&host.security_opt)?;
    seccomp::check(host, &security, &caps)
}

#[cfg(test)]
mod tests;
