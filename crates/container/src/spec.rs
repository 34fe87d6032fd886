//! Loading config.json from a bundle and checking every field before anything is created: a
//! config pelagos cannot honour is refused here with one line naming the field.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};
use crate::namespaces::NamespacePlan;

/// A parsed, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute, symlink-free root filesystem path.
    pub rootfs: PathBuf,
    pub spec: Spec,
    pub namespaces: NamespacePlan,
    /// `process.capabilities` as kernel masks, parsed once here for the init.
    pub capabilities: crate::capabilities::CapabilitySets,
    /// What the init applies, parsed here once (validation), never again in the child:
    /// each `mounts[]` entry's options, in order; `linux.rootfsPropagation`'s flags;
    /// `linux.personality`'s persona.
    pub parsed: Parsed,
    /// config.json as read, when loaded from a file (saved as the frozen copy verbatim).
    pub raw_config: Option<Vec<u8>>,
}

impl Bundle {
    /// Load `config` (default `<dir>/config.json`) and validate it.
    pub fn load(dir: &Path, config: Option<&Path>) -> Result<Bundle> {
        let dir = std::path::absolute(dir).map_err(|e| Error::Io {
            what: format!("bundle {}", dir.display()),
            source: e,
        })?;
        let config_path = match config {
            Some(c) if c.is_absolute() => c.to_path_buf(),
            Some(c) => dir.join(c),
            None => dir.join("config.json"),
        };
        let data = std::fs::read(&config_path).map_err(|e| Error::InvalidConfig {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        let spec = parse_config(&data).map_err(|e| Error::InvalidConfig {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        let mut bundle = Bundle::from_spec(dir, spec)?;
        bundle.raw_config = Some(data);
        Ok(bundle)
    }

    pub fn from_spec(dir: PathBuf, spec: Spec) -> Result<Bundle> {
        validate_version(spec.version())?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::Spec("root.path is required".into()))?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| Error::Spec(format!("root.path {}: {e}", rootfs.display())))?;
        if !rootfs.is_dir() {
            return Err(Error::Spec(format!(
                "root.path {} is not a directory",
                rootfs.display()
            )));
        }
        let linux = spec.linux().clone().unwrap_or_default();
        let namespaces = NamespacePlan::from_spec(linux.namespaces().as_deref().unwrap_or(&[]))?;
        let capabilities = spec
            .process()
            .as_ref()
            .map(crate::capabilities::CapabilitySets::of)
            .unwrap_or_default();
        let parsed = Parsed::of(&spec)?;
        let bundle = Bundle {
            dir,
            rootfs,
            parsed,
            spec,
            namespaces,
            capabilities,
            raw_config: None,
        };
        bundle.validate()?;
        Ok(bundle)
    }

    fn validate(&self) -> Result<()> {
        let spec = &self.spec;
        let ns = &self.namespaces;
        if let Some(process) = spec.process() {
            validate_process(process)?;
        }
        // runc's rule: a uts namespace of the container's own, new or joined (then the
        // names are set in the joined one).
        if spec.hostname().as_deref().is_some_and(|h| !h.is_empty())
            && !ns.has(LinuxNamespaceType::Uts)
        {
            return Err(Error::Spec(
                "hostname is set but the container has no uts namespace (new or joined)".into(),
            ));
        }
        if spec.domainname().as_deref().is_some_and(|h| !h.is_empty())
            && !ns.has(LinuxNamespaceType::Uts)
        {
            return Err(Error::Spec(
                "domainname is set but the container has no uts namespace (new or joined)".into(),
            ));
        }
        for m in spec.mounts().as_deref().unwrap_or(&[]) {
            if !m.destination().is_absolute() {
                return Err(Error::Spec(format!(
                    "mount destination {} must be an absolute path",
                    m.destination().display()
                )));
            }
            if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
                return Err(Error::Unsupported(
                    "mounts[].uidMappings",
                    format!("id-mapped mount at {}", m.destination().display()),
                ));
            }
        }
        let Some(linux) = spec.linux() else {
            return Ok(());
        };
        // Without a mount namespace runc leaves root and mounts alone and runs the process
        // in the runtime's filesystem, but refuses what it could not hide.
        let restricts = linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty())
            || linux
                .readonly_paths()
                .as_ref()
                .is_some_and(|p| !p.is_empty());
        if restricts && !ns.has(LinuxNamespaceType::Mount) {
            return Err(Error::Spec(
                "linux.maskedPaths/readonlyPaths need a mount namespace (new or joined)".into(),
            ));
        }
        let user_ns = ns.has(LinuxNamespaceType::User);
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if has_maps && !user_ns {
            return Err(Error::Spec(
                "linux.uidMappings/gidMappings are set but no user namespace is requested".into(),
            ));
        }
        if ns.creates(LinuxNamespaceType::User)
            && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
                || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
        {
            return Err(Error::Spec(
                "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
            ));
        }
        if let Some(sysctl) = linux.sysctl() {
            for key in sysctl.keys() {
                validate_sysctl(key, ns)?;
            }
        }
        if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            return Err(Error::Unsupported(
                "linux.netDevices",
                "moving host interfaces into the container".into(),
            ));
        }
        if linux.intel_rdt().is_some() {
            return Err(Error::Unsupported(
                "linux.intelRdt",
                "this host has no resctrl filesystem".into(),
            ));
        }
        // rootfsPropagation, personality and mount options are checked by `Parsed::of`.
        if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
            && !ns.creates(LinuxNamespaceType::Time)
        {
            return Err(Error::Spec(
                "linux.timeOffsets need a new time namespace".into(),
            ));
        }
        if let Some(devices) = linux.devices() {
            for d in devices {
                let escapes = d
                    .path()
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir));
                if !d.path().is_absolute() || !d.path().starts_with("/dev") || escapes {
                    return Err(Error::Spec(format!(
                        "linux.devices path {} must be under /dev (without \"..\")",
                        d.path().display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// runtime-spec's names of the `process.scheduler.flags` that oci-spec-rs spells otherwise,
/// with oci-spec-rs's spelling.
const SCHED_FLAG_RESPELLINGS: [(&str, &str); 2] = [
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Parse config.json. oci-spec-rs 0.10 accepts only its own spelling of two scheduler flags
/// (`SCHED_RESET_ON_FORK`, `SCHED_FLAG_D_L_OVERRUN`); the spec's (`SCHED_FLAG_RESET_ON_FORK`,
/// `SCHED_FLAG_DL_OVERRUN`) are what runc, crun and their callers write. Both are accepted:
/// when the plain parse fails, the flags are respelled and the parse is tried again, so a
/// config without them costs nothing extra. Used for the bundle and the frozen copy alike.
pub fn parse_config(data: &[u8]) -> serde_json::Result<Spec> {
    match serde_json::from_slice(data) {
        Ok(spec) => Ok(spec),
        Err(first) => {
            let mut value: serde_json::Value = serde_json::from_slice(data)?;
            if !respell_sched_flags(value.pointer_mut("/process/scheduler/flags")) {
                return Err(first);
            }
            serde_json::from_value(value)
        }
    }
}

/// The same for a `Process` alone (`exec --process`).
pub fn parse_process(data: &[u8]) -> serde_json::Result<oci_spec::runtime::Process> {
    match serde_json::from_slice(data) {
        Ok(process) => Ok(process),
        Err(first) => {
            let mut value: serde_json::Value = serde_json::from_slice(data)?;
            if !respell_sched_flags(value.pointer_mut("/scheduler/flags")) {
                return Err(first);
            }
            serde_json::from_value(value)
        }
    }
}

/// Rewrite the spec's flag names in a `scheduler.flags` array; whether anything changed.
fn respell_sched_flags(flags: Option<&mut serde_json::Value>) -> bool {
    let Some(serde_json::Value::Array(flags)) = flags else {
        return false;
    };
    let mut changed = false;
    for flag in flags.iter_mut() {
        let Some(name) = flag.as_str() else { continue };
        if let Some((_, ours)) = SCHED_FLAG_RESPELLINGS
            .iter()
            .find(|(spec, _)| *spec == name)
        {
            *flag = serde_json::Value::String((*ours).to_string());
            changed = true;
        }
    }
    changed
}

fn validate_version(version: &str) -> Result<()> {
    let major = version.split('.').next().unwrap_or("");
    if major != "1" {
        return Err(Error::Spec(format!(
            "unsupported ociVersion {version:?}: pelagos implements runtime-spec 1.x"
        )));
    }
    Ok(())
}

fn validate_process(process: &oci_spec::runtime::Process) -> Result<()> {
    if !process.cwd().is_absolute() {
        return Err(Error::Spec(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        )));
    }
    if process.args().as_ref().is_none_or(|a| a.is_empty()) && process.command_line().is_none() {
        return Err(Error::Spec("process.args must not be empty".into()));
    }
    if process
        .apparmor_profile()
        .as_deref()
        .is_some_and(|p| !p.is_empty())
        && !apparmor_enabled()
    {
        return Err(Error::Unsupported(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host".into(),
        ));
    }
    if let Some(rlimits) = process.rlimits() {
        for r in rlimits {
            if r.soft() > r.hard() {
                return Err(Error::Spec(format!(
                    "process.rlimits {:?}: soft limit {} exceeds hard limit {}",
                    r.typ(),
                    r.soft(),
                    r.hard()
                )));
            }
        }
    }
    if let Some(score) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&score) {
            return Err(Error::Spec(format!(
                "process.oomScoreAdj {score} is outside -1000..1000"
            )));
        }
    }
    if let Some(prio) = process.io_priority() {
        if !(0..=7).contains(&prio.priority()) {
            return Err(Error::Spec(format!(
                "process.ioPriority.priority {} is outside 0..7",
                prio.priority()
            )));
        }
    }
    Ok(())
}

pub(crate) fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Only namespaced sysctls may be set, and only when the container has that namespace.
pub(crate) fn validate_sysctl(key: &str, ns: &NamespacePlan) -> Result<()> {
    let key_dots = key.replace('/', ".");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if ipc.contains(&key_dots.as_str()) || key_dots.starts_with("fs.mqueue.") {
        LinuxNamespaceType::Ipc
    } else if key_dots.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if let Some(field) = match key_dots.as_str() {
        "kernel.hostname" => Some("hostname"),
        "kernel.domainname" => Some("domainname"),
        _ => None,
    } {
        // Namespaced, but the config has a field of its own for it: two sources for one value
        // would be ambiguous (runc refuses kernel.hostname the same way).
        return Err(Error::Spec(format!(
            "sysctl {key:?} is not allowed: it conflicts with the config's {field:?} field; set {field} instead"
        )));
    } else {
        return Err(Error::Spec(format!(
            "sysctl {key:?} is not namespaced and cannot be set for a container"
        )));
    };
    if key_dots.contains("..") || key_dots.starts_with('.') {
        return Err(Error::Spec(format!("sysctl {key:?} is not a valid name")));
    }
    if !ns.creates(needs) {
        return Err(Error::Spec(format!(
            "sysctl {key:?} needs a new {needs} namespace"
        )));
    }
    Ok(())
}

/// The personality(2) value for `linux.personality` (flags are not defined by the spec yet).
/// The parts of a config the init applies, parsed once in the runtime.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// `mounts[i]`'s options, for every i.
    pub mount_options: Vec<crate::mount_opts::MountOptions>,
    pub rootfs_propagation: Option<nix::mount::MsFlags>,
    pub personality: Option<libc::c_ulong>,
}

impl Parsed {
    fn of(spec: &Spec) -> Result<Parsed> {
        let mount_options = spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| crate::mount_opts::MountOptions::parse(m.options().as_deref().unwrap_or(&[])))
            .collect::<Result<Vec<_>>>()?;
        let linux = spec.linux().as_ref();
        let rootfs_propagation = linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .map(crate::rootfs::propagation_flags)
            .transpose()?;
        let personality = linux
            .and_then(|l| l.personality().as_ref())
            .map(personality_value)
            .transpose()?;
        Ok(Parsed {
            mount_options,
            rootfs_propagation,
            personality,
        })
    }
}

pub fn personality_value(p: &oci_spec::runtime::LinuxPersonality) -> Result<libc::c_ulong> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(Error::Unsupported(
            "linux.personality.flags",
            format!("{:?}", p.flags()),
        ));
    }
    Ok(match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxNamespace;

    fn plan(types: &[LinuxNamespaceType]) -> NamespacePlan {
        let v: Vec<LinuxNamespace> = types
            .iter()
            .map(|t| {
                let mut n = LinuxNamespace::default();
                n.set_typ(*t);
                n
            })
            .collect();
        NamespacePlan::from_spec(&v).unwrap()
    }

    #[test]
    fn sysctl_rules() {
        let p = plan(&[LinuxNamespaceType::Network, LinuxNamespaceType::Ipc]);
        assert!(validate_sysctl("net.ipv4.ip_forward", &p).is_ok());
        assert!(validate_sysctl("kernel.shmmax", &p).is_ok());
        assert!(validate_sysctl("fs.mqueue.msg_max", &p).is_ok());
        let err = validate_sysctl("kernel.panic", &p).unwrap_err().to_string();
        assert!(err.contains("not namespaced"), "{err}");
        let uts = plan(&[LinuxNamespaceType::Uts]);
        for key in ["kernel.hostname", "kernel/domainname"] {
            let err = validate_sysctl(key, &uts).unwrap_err().to_string();
            assert!(err.contains("conflicts"), "{err}");
        }
        let p = plan(&[LinuxNamespaceType::Ipc]);
        assert!(validate_sysctl("net.core.somaxconn", &p).is_err());
    }

    #[test]
    fn scheduler_flags_in_the_spec_spelling_and_in_oci_spec_rs_spelling() {
        use oci_spec::runtime::LinuxSchedulerFlag as F;
        let config = |flags: &str| {
            format!(
                r#"{{"ociVersion":"1.2.0","process":{{"cwd":"/","args":["true"],"user":{{"uid":0,"gid":0}},"scheduler":{{"policy":"SCHED_OTHER","flags":[{flags}]}}}}}}"#
            )
        };
        let flags_of = |text: String| {
            parse_config(text.as_bytes())
                .unwrap()
                .process()
                .as_ref()
                .and_then(|p| p.scheduler().clone())
                .and_then(|s| s.flags().clone())
                .unwrap()
        };
        let spec_names = r#""SCHED_FLAG_RESET_ON_FORK","SCHED_FLAG_RECLAIM","SCHED_FLAG_DL_OVERRUN","SCHED_FLAG_KEEP_POLICY","SCHED_FLAG_KEEP_PARAMS","SCHED_FLAG_UTIL_CLAMP_MIN","SCHED_FLAG_UTIL_CLAMP_MAX""#;
        let all = vec![
            F::SchedResetOnFork,
            F::SchedFlagReclaim,
            F::SchedFlagDLOverrun,
            F::SchedFlagKeepPolicy,
            F::SchedFlagKeepParams,
            F::SchedFlagUtilClampMin,
            F::SchedFlagUtilClampMax,
        ];
        assert_eq!(flags_of(config(spec_names)), all);
        assert_eq!(
            flags_of(config(r#""SCHED_RESET_ON_FORK","SCHED_FLAG_D_L_OVERRUN""#)),
            [F::SchedResetOnFork, F::SchedFlagDLOverrun]
        );
        let err = parse_config(config(r#""SCHED_FLAG_BOGUS""#).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("SCHED_FLAG_BOGUS"), "{err}");
        let process = parse_process(
            br#"{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0},"scheduler":{"policy":"SCHED_OTHER","flags":["SCHED_FLAG_RESET_ON_FORK"]}}"#,
        )
        .unwrap();
        assert_eq!(
            process.scheduler().as_ref().and_then(|s| s.flags().clone()),
            Some(vec![F::SchedResetOnFork])
        );
    }

    #[test]
    fn version_rules() {
        assert!(validate_version("1.2.0").is_ok());
        assert!(validate_version("1.0.2-dev").is_ok());
        assert!(validate_version("2.0.0").is_err());
        assert!(validate_version("").is_err());
    }

    fn bundle_with(config: &str) -> Result<Bundle> {
        let dir = std::env::temp_dir().join(format!(
            "pelagos-spec-{}-{}",
            std::process::id(),
            config.len()
        ));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        let r = Bundle::load(&dir, None);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn config_errors_name_the_problem() {
        let err = bundle_with("{").unwrap_err().to_string();
        assert!(err.contains("invalid config.json"), "{err}");
        let err = bundle_with(r#"{"ociVersion":"1.2.0","root":{"path":"nope"}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("root.path"), "{err}");
        let bad_cap = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"cwd":"/","args":["true"],"user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_FROB"]}}}"#;
        let err = bundle_with(bad_cap).unwrap_err().to_string();
        assert!(err.contains("CAP_FROB") || err.contains("FROB"), "{err}");
        let relcwd = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"process":{"cwd":"tmp","args":["true"],"user":{"uid":0,"gid":0}}}"#;
        let err = bundle_with(relcwd).unwrap_err().to_string();
        assert!(err.contains("process.cwd"), "{err}");
        let host = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"hostname":"x","linux":{"namespaces":[{"type":"pid"}]}}"#;
        let err = bundle_with(host).unwrap_err().to_string();
        assert!(err.contains("uts"), "{err}");
        let joined_uts = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"hostname":"x","linux":{"namespaces":[{"type":"uts","path":"/proc/self/ns/uts"}]}}"#;
        assert!(bundle_with(joined_uts).is_ok());
        let no_mnt = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}]}}"#;
        assert!(bundle_with(no_mnt).is_ok());
        let masked = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"}],"maskedPaths":["/proc/kcore"]}}"#;
        let err = bundle_with(masked).unwrap_err().to_string();
        assert!(
            err.contains("maskedPaths") && err.contains("mount namespace"),
            "{err}"
        );
        let ok = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"}]}}"#;
        assert!(bundle_with(ok).is_ok());
    }
}
