//! An OCI runtime spec for a container made from an image, with Docker's defaults: its
//! capabilities, seccomp profile, mounts, masked and read-only paths and a private /dev.

use std::collections::BTreeSet;
use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::user::ResolvedUser;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel headers of this era know (for `--cap-add ALL`).
const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths.
const MASKED_PATHS: [&str; 11] = [
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
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// PATH when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which network namespace the container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new network namespace with only `lo`, up.
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

impl std::str::FromStr for NetworkMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<NetworkMode> {
        match s {
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            other => Err(Error::InvalidOption(format!(
                "--network {other:?}: supported networks are \"none\" and \"host\""
            ))),
        }
    }
}

/// The `docker run` options that shape the spec.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SpecOptions {
    /// Arguments after the image (replace the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint`: `Some("")` clears the image's entrypoint.
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE` or `-e KEY` (taken from our environment when set there).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `--read-only`.
    pub read_only: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--network`.
    pub network: NetworkMode,
    /// `-t`.
    pub tty: bool,
    /// `--privileged`: every capability, no seccomp, no masked paths, host devices.
    pub privileged: bool,
    /// `-v HOST:CONTAINER[:OPTS]`.
    pub volumes: Vec<String>,
    /// `--mount type=bind|tmpfs,...`.
    pub mounts: Vec<String>,
    /// `--tmpfs PATH[:OPTS]`.
    pub tmpfs: Vec<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--shm-size`.
    pub shm_size: Option<String>,
    /// `--memory`, `--cpus`, `--pids-limit`...
    pub limits: crate::flags::Limits,
}

/// The command line of a container: Docker's entrypoint/cmd rules. `--entrypoint` drops
/// the image's Cmd; arguments after the image replace it.
pub fn command_line(image: Option<&ImageConfig>, opts: &SpecOptions) -> Result<Vec<String>> {
    let image_entrypoint = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let entrypoint: Vec<String> = match &opts.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => image_entrypoint,
    };
    let cmd = if !opts.cmd.is_empty() {
        opts.cmd.clone()
    } else if opts.entrypoint.is_some() {
        Vec::new()
    } else {
        image_cmd
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::InvalidOption(
            "no command specified: the image has neither Entrypoint nor Cmd".into(),
        ));
    }
    Ok(args)
}

/// The container's environment: image env, then `-e` (later wins), HOSTNAME, TERM with a tty,
/// PATH when nobody set one.
pub fn environment(image: Option<&ImageConfig>, opts: &SpecOptions, hostname: &str) -> Vec<String> {
    let mut env: Vec<String> = vec![format!("HOSTNAME={hostname}")];
    if opts.tty {
        env.push("TERM=xterm".into());
    }
    let user_env = opts.env.iter().filter_map(|e| {
        if e.contains('=') {
            Some(e.clone())
        } else {
            std::env::var(e).ok().map(|v| format!("{e}={v}"))
        }
    });
    let image_env = image
        .and_then(|c| c.env().clone())
        .unwrap_or_default()
        .into_iter();
    for entry in image_env.chain(user_env) {
        let key = entry.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(entry);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// Normalises a capability name (`net_admin`, `CAP_NET_ADMIN`) or refuses an unknown one.
pub fn capability_name(name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(Error::InvalidOption(format!("unknown capability {name:?}")))
    }
}

/// Docker's capability arithmetic (moby's `TweakCapabilities`): `--cap-add ALL` is every
/// capability except those dropped; else `--cap-drop ALL` keeps only the added ones; else the
/// defaults minus the dropped plus the added (an add wins over a drop of the same one).
pub fn capabilities(opts: &SpecOptions) -> Result<Vec<String>> {
    if opts.privileged {
        return Ok(ALL_CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    let is_all = |c: &&String| c.eq_ignore_ascii_case("all");
    let names = |list: &[String]| -> Result<BTreeSet<String>> {
        list.iter()
            .filter(|c| !is_all(c))
            .map(|c| capability_name(c))
            .collect()
    };
    let drops = names(&opts.cap_drop)?;
    let adds = names(&opts.cap_add)?;
    let set: BTreeSet<String> = if opts.cap_add.iter().any(|c| is_all(&c)) {
        ALL_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    } else if opts.cap_drop.iter().any(|c| is_all(&c)) {
        adds
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .chain(adds)
            .collect()
    };
    Ok(set.into_iter().collect())
}

/// What `--security-opt` asked for.
#[derive(Debug, Default)]
pub struct SecurityOptions {
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `seccomp=FILE`: the profile's text.
    pub seccomp_profile: Option<String>,
}

/// Parses `--security-opt` values (Docker's `key=value` and legacy `key:value` forms).
pub fn security_options(list: &[String]) -> Result<SecurityOptions> {
    let mut out = SecurityOptions::default();
    for opt in list {
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .unwrap_or((opt.as_str(), ""));
        match key {
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "" | "true" => true,
                    "false" => false,
                    v => {
                        return Err(Error::InvalidOption(format!(
                            "--security-opt no-new-privileges={v:?}: expected true or false"
                        )))
                    }
                }
            }
            "seccomp" if value == "unconfined" => out.seccomp_unconfined = true,
            "seccomp" if !value.is_empty() => {
                let text = std::fs::read_to_string(value).map_err(|e| {
                    Error::InvalidOption(format!("--security-opt seccomp={value}: {e}"))
                })?;
                out.seccomp_profile = Some(text);
            }
            "apparmor" | "label" => {
                // No AppArmor or SELinux in pelagos' default confinement: accepted so that
                // scripts written for Docker run, but only "unconfined"/"disable" mean anything.
                if !matches!(value, "unconfined" | "disable") {
                    return Err(Error::InvalidOption(format!(
                        "--security-opt {opt}: pelagos does not apply AppArmor or SELinux labels"
                    )));
                }
            }
            _ => {
                return Err(Error::InvalidOption(format!(
                    "--security-opt {opt:?}: expected no-new-privileges, seccomp=unconfined|FILE"
                )))
            }
        }
    }
    Ok(out)
}

/// Files the engine writes for the container and binds over its /etc.
#[derive(Debug, Clone)]
pub struct EtcFiles<'a> {
    /// `/etc/hosts`.
    pub hosts: &'a Path,
    /// `/etc/hostname`.
    pub hostname: &'a Path,
    /// `/etc/resolv.conf`.
    pub resolv_conf: &'a Path,
}

/// Everything [`build`] needs besides the options.
pub struct SpecInput<'a> {
    /// The container's root filesystem (the overlay mount point).
    pub rootfs: &'a Path,
    /// The image's config, if the image has one.
    pub image: Option<&'a ImageConfig>,
    /// The user the process runs as.
    pub user: &'a ResolvedUser,
    /// The hostname (Docker: the first 12 characters of the id).
    pub hostname: &'a str,
    /// The working directory (already created in the rootfs).
    pub cwd: &'a str,
    /// Host files for /etc/hosts, /etc/hostname, /etc/resolv.conf.
    pub etc: EtcFiles<'a>,
    /// `linux.cgroupsPath`.
    pub cgroups_path: &'a str,
    /// Annotations to record.
    pub annotations: serde_json::Map<String, Value>,
}

/// The OCI spec Docker would hand runc for the same image and flags.
pub fn build(input: &SpecInput<'_>, opts: &SpecOptions) -> Result<Spec> {
    let args = command_line(input.image, opts)?;
    let env = environment(input.image, opts, input.hostname);
    let caps = capabilities(opts)?;
    let security = security_options(&opts.security_opt)?;
    let caps_json = json!(caps);
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if opts.network == NetworkMode::None {
        namespaces.push(json!({"type": "network"}));
    }
    let bind = |dest: &str, src: &Path| {
        json!({"destination": dest, "type": "bind", "source": src,
               "options": ["rbind", "rprivate"]})
    };
    let shm_size = match &opts.shm_size {
        Some(t) => crate::flags::parse_bytes("--shm-size", t)?,
        None => 64 << 20,
    };
    let mut user_mounts = Vec::new();
    for v in &opts.volumes {
        user_mounts.push(crate::flags::volume(v)?);
    }
    for m in &opts.mounts {
        user_mounts.push(crate::flags::mount(m)?);
    }
    for t in &opts.tmpfs {
        user_mounts.push(crate::flags::tmpfs(t)?);
    }
    let rlimits = opts
        .ulimits
        .iter()
        .map(|u| crate::flags::ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let limits = crate::flags::resources(&opts.limits)?;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", if opts.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", if opts.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]}),
        bind("/etc/resolv.conf", input.etc.resolv_conf),
        bind("/etc/hostname", input.etc.hostname),
        bind("/etc/hosts", input.etc.hosts),
    ];
    // A user mount replaces a default one at the same place (Docker: `--tmpfs /dev/shm`,
    // `-v ./hosts:/etc/hosts`).
    mounts.retain(|m| {
        !user_mounts
            .iter()
            .any(|u| u["destination"] == m["destination"])
    });
    mounts.extend(user_mounts);
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": input.cgroups_path,
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
    });
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    } else {
        linux["resources"] = json!({"devices": [{"allow": true, "access": "rwm"}]});
    }
    if let Some(Value::Object(limits)) = limits {
        for (k, v) in limits {
            linux["resources"][k] = v;
        }
    }
    let mut spec = json!({
        "ociVersion": pelagos_container::OCI_VERSION,
        "process": {
            "terminal": opts.tty,
            "user": {
                "uid": input.user.uid,
                "gid": input.user.gid,
                "additionalGids": input.user.additional_gids,
            },
            "args": args,
            "env": env,
            "cwd": input.cwd,
            "capabilities": {
                "bounding": caps_json,
                "effective": caps_json,
                "permitted": caps_json,
            },
            "noNewPrivileges": security.no_new_privileges,
            "rlimits": rlimits,
        },
        "root": {"path": input.rootfs, "readonly": opts.read_only},
        "hostname": input.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": input.annotations,
    });
    let mut spec: Spec =
        serde_json::from_value(spec.take()).map_err(|e| Error::Spec(e.to_string()))?;
    if !opts.privileged && !security.seccomp_unconfined {
        let profile = match &security.seccomp_profile {
            Some(text) => pelagos_seccomp::docker_profile(text, &caps)
                .map_err(|e| Error::InvalidOption(format!("--security-opt seccomp: {e}")))?,
            None => pelagos_seccomp::docker_default(&caps),
        };
        if let Some(linux) = spec.linux_mut() {
            linux.set_seccomp(Some(profile));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        let mut b = ConfigBuilder::default();
        if let Some(e) = entrypoint {
            b = b.entrypoint(e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        if let Some(c) = cmd {
            b = b.cmd(c.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
        b.env(vec!["PATH=/bin".to_string(), "A=image".to_string()])
            .build()
            .unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_follows_docker_rules() {
        let img = image(Some(&["/ep"]), Some(&["a", "b"]));
        let mut o = SpecOptions::default();
        assert_eq!(
            command_line(Some(&img), &o).unwrap(),
            strings(&["/ep", "a", "b"])
        );
        o.cmd = strings(&["x"]);
        assert_eq!(
            command_line(Some(&img), &o).unwrap(),
            strings(&["/ep", "x"])
        );
        o.cmd.clear();
        o.entrypoint = Some("/other".into());
        assert_eq!(command_line(Some(&img), &o).unwrap(), strings(&["/other"]));
        o.entrypoint = Some(String::new());
        o.cmd = strings(&["sh", "-c", "true"]);
        assert_eq!(
            command_line(Some(&img), &o).unwrap(),
            strings(&["sh", "-c", "true"])
        );
        let err = command_line(Some(&image(None, None)), &SpecOptions::default()).unwrap_err();
        assert!(err.to_string().contains("no command specified"), "{err}");
    }

    #[test]
    fn environment_merges_with_user_winning() {
        let img = image(None, Some(&["sh"]));
        let o = SpecOptions {
            env: strings(&["A=user", "B=2"]),
            tty: true,
            ..Default::default()
        };
        let env = environment(Some(&img), &o, "abc");
        assert!(env.contains(&"A=user".to_string()));
        assert!(!env.contains(&"A=image".to_string()));
        assert!(env.contains(&"PATH=/bin".to_string()));
        assert!(env.contains(&"HOSTNAME=abc".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
        let plain = environment(None, &SpecOptions::default(), "h");
        assert!(plain.contains(&format!("PATH={DEFAULT_PATH}")));
    }

    #[test]
    fn capability_arithmetic() {
        let mut o = SpecOptions::default();
        assert_eq!(capabilities(&o).unwrap().len(), 14);
        o.cap_drop = strings(&["ALL"]);
        o.cap_add = strings(&["net_admin", "CAP_CHOWN"]);
        assert_eq!(
            capabilities(&o).unwrap(),
            strings(&["CAP_CHOWN", "CAP_NET_ADMIN"])
        );
        o.cap_add = strings(&["CAP_NOPE"]);
        assert!(capabilities(&o)
            .unwrap_err()
            .to_string()
            .contains("CAP_NOPE"));
        o.cap_drop = strings(&["mknod"]);
        o.cap_add.clear();
        assert!(!capabilities(&o).unwrap().contains(&"CAP_MKNOD".to_string()));
        // With ALL added, drops still apply (Docker's TweakCapabilities).
        o.cap_add = strings(&["ALL"]);
        o.cap_drop = strings(&["sys_admin", "CAP_NET_RAW"]);
        let caps = capabilities(&o).unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 2);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        // An add wins over a drop of the same capability.
        o.cap_add = strings(&["NET_RAW"]);
        o.cap_drop = strings(&["net_raw", "chown"]);
        let caps = capabilities(&o).unwrap();
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        // A bad name in a drop is refused even with ALL added.
        o.cap_add = strings(&["ALL"]);
        o.cap_drop = strings(&["CAP_NOPE"]);
        assert!(capabilities(&o).is_err());
    }

    #[test]
    fn security_options_parse_and_refuse() {
        let s = security_options(&strings(&["no-new-privileges", "seccomp=unconfined"])).unwrap();
        assert!(s.no_new_privileges && s.seccomp_unconfined);
        assert!(security_options(&strings(&["no-new-privileges:false"]))
            .map(|s| !s.no_new_privileges)
            .unwrap());
        assert!(security_options(&strings(&["seccomp=/does/not/exist"]))
            .unwrap_err()
            .to_string()
            .contains("/does/not/exist"));
        assert!(security_options(&strings(&["bogus"])).is_err());
    }

    #[test]
    fn spec_has_docker_defaults() {
        let user = ResolvedUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
        };
        let img = image(None, Some(&["sh"]));
        let p = Path::new("/x");
        let input = SpecInput {
            rootfs: Path::new("/r"),
            image: Some(&img),
            user: &user,
            hostname: "abcdef123456",
            cwd: "/",
            etc: EtcFiles {
                hosts: p,
                hostname: p,
                resolv_conf: p,
            },
            cgroups_path: "/pelagos/abc",
            annotations: Default::default(),
        };
        let spec = build(&input, &SpecOptions::default()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_some());
        assert_eq!(
            linux.masked_paths().as_ref().unwrap().len(),
            MASKED_PATHS.len()
        );
        assert!(linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.user().uid(), 1000);
        assert_eq!(process.args().as_ref().unwrap(), &strings(&["sh"]));
        let host = build(
            &input,
            &SpecOptions {
                network: NetworkMode::Host,
                security_opt: strings(&["seccomp=unconfined"]),
                ..Default::default()
            },
        )
        .unwrap();
        let linux = host.linux().as_ref().unwrap();
        assert!(linux.seccomp().is_none());
        assert!(!linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network));
    }
}
