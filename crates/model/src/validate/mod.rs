//! Every check of a container's typed config that can be made before anything exists, with
//! Docker's rules and words; shared by the CLI and the daemon (whose request bodies never
//! pass through [`crate::flags`]). Errors name the flag and the API field.

use crate::config::{ContainerConfig, HealthConfig, HostConfig, LogConfig};
use crate::error::{Error, Result};
use crate::mounts::{check_mount, check_target, clean, parse_bind};
use crate::security::{capability_name, is_all, parse_bool, security_options};

mod namespaces;
mod resources;

pub use namespaces::{
    cgroupns_mode, ipc_mode, is_namespaced_sysctl, joined_container, network_mode, pid_mode,
    uts_mode, IpcMode, NamespaceMode, NetworkMode,
};
pub use namespaces::{check_endpoint, check_endpoints, CONFLICT_MAC, DEFAULT_BRIDGE_NETWORK};
pub use resources::{check_resources, host_cpus, parse_cpu_list, HostCpus, MIN_MEMORY};

/// Docker's minimum health-check interval, timeout and start period (1 ms).
pub const MIN_HEALTH_DURATION: i64 = 1_000_000;
/// Log drivers pelagos has.
pub const LOG_DRIVERS: [&str; 3] = ["json-file", "local", "none"];
/// `--ulimit` names.
pub const ULIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("invalid {field}: {why}"))
}

fn unsupported(field: &str) -> Error {
    Error::Invalid(format!("{field} is not supported yet"))
}

/// Checks a container's config (Docker's `verifyContainerSettings` and the CLI's checks).
/// Reads the host only to count CPUs and NUMA nodes and to see that bind sources of
/// `Mounts` exist.
pub fn validate(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    check_process(config)?;
    if let Some(h) = &config.healthcheck {
        check_health(h)?;
    }
    check_restart(host)?;
    check_log_config(&host.log_config)?;
    check_mounts(config, host)?;
    check_ulimits(host)?;
    for c in host.cap_add.iter().chain(&host.cap_drop) {
        if !is_all(c) {
            capability_name(c)?;
        }
    }
    security_options(&host.security_opt)?;
    check_resources(host, &host_cpus())?;
    let network = network_mode(config, host)?;
    namespaces::check_namespaces(config, host)?;
    namespaces::check_sysctls(host, &network)?;
    namespaces::check_container_network(config, host, &network)?;
    namespaces::check_network_files(host, &network)?;
    check_devices(host)?;
    check_unsupported(host)
}

/// `HostConfig.Devices`: absolute paths, the container's under /dev (the runtime makes device
/// nodes only there; Docker allows any path), permissions of `rwm` ("" is `rwm`).
fn check_devices(host: &HostConfig) -> Result<()> {
    const FIELD: &str = "--device (HostConfig.Devices)";
    for d in &host.devices {
        let under_dev = d
            .path_in_container
            .strip_prefix("/dev/")
            .is_some_and(|rest| !rest.is_empty() && !rest.split('/').any(|c| c == ".."));
        let why = if !d.path_on_host.starts_with('/') {
            format!("{:?} is not an absolute path", d.path_on_host)
        } else if !under_dev {
            format!(
                "{:?}: the container path must be under /dev",
                d.path_in_container
            )
        } else if !d.cgroup_permissions.is_empty()
            && !crate::flags::is_device_mode(&d.cgroup_permissions)
        {
            format!("bad mode specified: {}", d.cgroup_permissions)
        } else {
            continue;
        };
        return Err(Error::Invalid(format!("invalid {FIELD}: {why}")));
    }
    Ok(())
}

/// Docker's warnings for settings accepted but discarded (cgroup v2 has no such knob).
pub fn warnings(config: &ContainerConfig, host: &HostConfig) -> Vec<String> {
    let mut out = Vec::new();
    if host.oom_kill_disable == Some(true) {
        out.push(
            "Your kernel does not support OomKillDisable (cgroup v2). OomKillDisable discarded."
                .into(),
        );
    }
    if host.memory_swappiness.is_some_and(|s| s != -1) {
        out.push(
            "Your kernel does not support memory swappiness (cgroup v2). Memory swappiness \
             discarded."
                .into(),
        );
    }
    if host.kernel_memory != 0 || host.kernel_memory_tcp != 0 {
        out.push("cgroup v2 has no kernel memory limit: KernelMemory discarded.".into());
    }
    if matches!(network_mode(config, host), Ok(NetworkMode::Host)) && !host.port_bindings.is_empty()
    {
        out.push("Published ports are discarded when using host network mode".into());
    }
    out
}

fn check_process(config: &ContainerConfig) -> Result<()> {
    for e in &config.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(invalid(
                "-e, --env (Config.Env)",
                format!("invalid environment variable: {e}"),
            ));
        }
    }
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(invalid(
            "-w, --workdir (Config.WorkingDir)",
            format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            ),
        ));
    }
    if !config.hostname.is_empty() && !valid_hostname(&config.hostname) {
        return Err(invalid(
            "-h, --hostname (Config.Hostname)",
            format!("invalid hostname format: {}", config.hostname),
        ));
    }
    if config.domainname.len() > 64 {
        return Err(invalid(
            "--domainname (Config.Domainname)",
            "longer than 64 bytes",
        ));
    }
    if config.user.split(':').count() > 2 || config.user.starts_with(':') {
        return Err(invalid(
            "-u, --user (Config.User)",
            format!("{:?}: expected name|uid[:group|gid]", config.user),
        ));
    }
    if config.labels.keys().any(|k| k.is_empty()) {
        return Err(invalid("-l, --label (Config.Labels)", "empty name"));
    }
    if let Some(s) = &config.stop_signal {
        pelagos_container::signal::parse_signal(s).map_err(|_| {
            invalid(
                "--stop-signal (Config.StopSignal)",
                format!("invalid signal: {s}"),
            )
        })?;
    }
    if config.stop_timeout.is_some_and(|t| t < -1) {
        return Err(invalid(
            "--stop-timeout (Config.StopTimeout)",
            "must be -1 (wait forever) or more",
        ));
    }
    Ok(())
}

/// RFC 1123 labels, at most 64 bytes (the kernel's HOST_NAME_MAX), as Docker's CLI checks.
fn valid_hostname(name: &str) -> bool {
    name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Checks a health check: its test's form and its durations.
pub fn check_health(h: &HealthConfig) -> Result<()> {
    const TEST: &str = "--health-cmd (Healthcheck.Test)";
    match h.test.first().map(String::as_str) {
        None => {}
        Some("NONE") if h.test.len() == 1 => {}
        Some("CMD") if h.test.len() >= 2 => {}
        Some("CMD-SHELL") if h.test.len() == 2 && !h.test[1].is_empty() => {}
        Some(_) => {
            return Err(invalid(
                TEST,
                format!(
                    "{:?}: expected [], [\"NONE\"], [\"CMD\", program, args…] or \
                     [\"CMD-SHELL\", command]",
                    h.test
                ),
            ))
        }
    }
    let durations = [
        (
            "--health-interval (Healthcheck.Interval)",
            "Interval",
            h.interval,
        ),
        (
            "--health-timeout (Healthcheck.Timeout)",
            "Timeout",
            h.timeout,
        ),
        (
            "--health-start-period (Healthcheck.StartPeriod)",
            "StartPeriod",
            h.start_period,
        ),
    ];
    for (field, name, value) in durations {
        if value < 0 {
            return Err(invalid(field, "cannot be negative"));
        }
        if value != 0 && value < MIN_HEALTH_DURATION {
            return Err(invalid(
                field,
                format!("{name} in Healthcheck cannot be less than 1ms"),
            ));
        }
    }
    if h.retries < 0 {
        return Err(invalid(
            "--health-retries (Healthcheck.Retries)",
            "cannot be negative",
        ));
    }
    Ok(())
}

fn check_restart(host: &HostConfig) -> Result<()> {
    const FIELD: &str = "--restart (HostConfig.RestartPolicy)";
    let p = &host.restart_policy;
    match p.name.as_str() {
        "" => {}
        "no" | "always" | "unless-stopped" if p.maximum_retry_count != 0 => {
            return Err(invalid(
                FIELD,
                "maximum retry count can only be used with 'on-failure'",
            ))
        }
        "no" | "always" | "unless-stopped" => {}
        "on-failure" if p.maximum_retry_count < 0 => {
            return Err(invalid(FIELD, "maximum retry count cannot be negative"))
        }
        "on-failure" => {}
        other => {
            return Err(invalid(
                FIELD,
                format!(
                    "unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or \
                     'unless-stopped'"
                ),
            ))
        }
    }
    if host.auto_remove && !p.is_none() {
        return Err(Error::Invalid(
            "Conflicting options: --restart and --rm (HostConfig.RestartPolicy and AutoRemove)"
                .into(),
        ));
    }
    Ok(())
}

/// Checks a log driver and its options (`--log-driver`, `--log-opt`).
pub fn check_log_config(log: &LogConfig) -> Result<()> {
    const FIELD: &str = "--log-opt (HostConfig.LogConfig.Config)";
    let driver = match log.kind.as_str() {
        "" => "json-file",
        d if LOG_DRIVERS.contains(&d) => d,
        other => {
            return Err(invalid(
                "--log-driver (HostConfig.LogConfig.Type)",
                format!(
                    "logger: no log driver named '{other}' is registered (pelagos has {})",
                    LOG_DRIVERS.join(", ")
                ),
            ))
        }
    };
    if driver == "none" && !log.config.is_empty() {
        return Err(invalid(FIELD, "invalid logging opts for driver none"));
    }
    for (key, value) in &log.config {
        match key.as_str() {
            "max-size" => match crate::units::parse_size(value) {
                Some(n) if n > 0 => {}
                _ => {
                    return Err(invalid(
                        FIELD,
                        "max-size must be a positive size such as 10m",
                    ))
                }
            },
            "max-file" => match value.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                _ => return Err(invalid(FIELD, "max-file cannot be less than 1")),
            },
            "compress" => match parse_bool(value) {
                Some(false) => {}
                Some(true) => {
                    return Err(invalid(
                        FIELD,
                        "compress=true is not supported yet (compress=false is)",
                    ))
                }
                None => return Err(invalid(FIELD, format!("compress={value}: not a boolean"))),
            },
            "labels" | "env" if driver == "json-file" => {}
            other => {
                return Err(invalid(
                    FIELD,
                    format!(
                        "unknown log opt '{other}' for {driver} log driver (pelagos has \
                         max-size, max-file, compress=false, and labels and env for json-file)"
                    ),
                ))
            }
        }
    }
    Ok(())
}

fn check_mounts(config: &ContainerConfig, host: &HostConfig) -> Result<()> {
    let mut targets = Vec::new();
    for b in &host.binds {
        let p = parse_bind(b)
            .map_err(|e| invalid("-v, --volume (HostConfig.Binds)", format!("{b:?}: {e}")))?;
        targets.push(p.mount.target);
    }
    for m in &host.mounts {
        check_mount(m, m.kind == "bind").map_err(|e| invalid("--mount (HostConfig.Mounts)", e))?;
        if m.kind == "tmpfs" {
            if let Some(t) = &m.tmpfs_options {
                if t.mode > 0o7777 {
                    return Err(invalid(
                        "--mount (HostConfig.Mounts)",
                        format!("tmpfs mode {:o} is not a permission mode", t.mode),
                    ));
                }
            }
        }
        targets.push(m.target.clone());
    }
    for (target, options) in &host.tmpfs {
        check_target(target).map_err(|e| invalid("--tmpfs (HostConfig.Tmpfs)", e))?;
        check_tmpfs_options(options)
            .map_err(|e| invalid("--tmpfs (HostConfig.Tmpfs)", format!("{target}: {e}")))?;
        targets.push(target.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in &targets {
        if !seen.insert(clean(t)) {
            return Err(Error::Invalid(format!("Duplicate mount point: {t}")));
        }
    }
    for v in config.volumes.iter().flat_map(|v| v.keys()) {
        check_target(v).map_err(|e| invalid("-v, --volume (Config.Volumes)", e))?;
    }
    for (field, paths) in [
        ("HostConfig.MaskedPaths", &host.masked_paths),
        ("HostConfig.ReadonlyPaths", &host.readonly_paths),
    ] {
        if let Some(p) = paths.iter().flatten().find(|p| !p.starts_with('/')) {
            return Err(invalid(field, format!("{p:?} is not an absolute path")));
        }
    }
    Ok(())
}

/// Mount flags a tmpfs takes (moby's `ParseTmpfsOptions`).
const TMPFS_FLAGS: [&str; 22] = [
    "ro",
    "rw",
    "exec",
    "noexec",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "sync",
    "async",
    "dirsync",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "tmpcopyup",
];

/// Checks `--tmpfs` options: mount flags a tmpfs accepts and tmpfs's own `size=`, `mode=`,
/// `uid=`, `gid=`, `nr_inodes=`, `nr_blocks=`. The error is the reason.
pub fn check_tmpfs_options(options: &str) -> Result<(), String> {
    for o in options.split(',').filter(|o| !o.is_empty()) {
        let Some((key, value)) = o.split_once('=') else {
            if TMPFS_FLAGS.contains(&o) {
                continue;
            }
            return Err(format!("invalid tmpfs option {o:?}"));
        };
        let ok = match key {
            "size" => value.strip_suffix('%').map_or_else(
                || crate::units::parse_size(value).is_some(),
                |pct| pct.parse::<u32>().is_ok(),
            ),
            "mode" => u32::from_str_radix(value, 8).is_ok_and(|m| m <= 0o7777),
            "uid" | "gid" => value.parse::<u32>().is_ok(),
            "nr_inodes" | "nr_blocks" => crate::units::parse_size(value).is_some(),
            _ => return Err(format!("invalid tmpfs option {o:?}")),
        };
        if !ok {
            return Err(format!("invalid value in tmpfs option {o:?}"));
        }
    }
    Ok(())
}

fn check_ulimits(host: &HostConfig) -> Result<()> {
    const FIELD: &str = "--ulimit (HostConfig.Ulimits)";
    for u in &host.ulimits {
        if !ULIMITS.contains(&u.name.as_str()) {
            return Err(invalid(FIELD, format!("invalid ulimit type: {}", u.name)));
        }
        if u.soft < -1 || u.hard < -1 {
            return Err(invalid(
                FIELD,
                format!("{}: limits are numbers, -1 for unlimited", u.name),
            ));
        }
        let as_limit = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
        if as_limit(u.soft) > as_limit(u.hard) {
            return Err(invalid(
                FIELD,
                format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                ),
            ));
        }
    }
    Ok(())
}

/// Fields that would be silently ignored: refused instead.
fn check_unsupported(host: &HostConfig) -> Result<()> {
    let set = [
        (
            "--device-cgroup-rule (HostConfig.DeviceCgroupRules)",
            !host.device_cgroup_rules.is_empty(),
        ),
        (
            "--gpus (HostConfig.DeviceRequests)",
            !host.device_requests.is_empty(),
        ),
        (
            "--volumes-from (HostConfig.VolumesFrom)",
            !host.volumes_from.is_empty(),
        ),
        ("--link (HostConfig.Links)", !host.links.is_empty()),
        (
            "--storage-opt (HostConfig.StorageOpt)",
            !host.storage_opt.is_empty(),
        ),
        (
            "--blkio-weight-device (HostConfig.BlkioWeightDevice)",
            !host.blkio_weight_device.is_empty(),
        ),
        (
            "--device-read-bps/--device-write-bps/--device-read-iops/--device-write-iops",
            !(host.blkio_device_read_bps.is_empty()
                && host.blkio_device_write_bps.is_empty()
                && host.blkio_device_read_iops.is_empty()
                && host.blkio_device_write_iops.is_empty()),
        ),
        (
            "--cpu-rt-period/--cpu-rt-runtime (cgroup v2 has no real-time CPU limits)",
            host.cpu_realtime_period != 0 || host.cpu_realtime_runtime != 0,
        ),
        (
            "--volume-driver (HostConfig.VolumeDriver) other than local",
            !matches!(host.volume_driver.as_str(), "" | "local"),
        ),
        ("HostConfig.Cgroup", !host.cgroup.is_empty()),
    ];
    if let Some((field, _)) = set.iter().find(|(_, is_set)| *is_set) {
        return Err(unsupported(field));
    }
    if !matches!(host.runtime.as_str(), "" | "runc" | "pelagos") {
        return Err(invalid(
            "--runtime (HostConfig.Runtime)",
            format!("unknown runtime specified {}", host.runtime),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mount, RestartPolicy, Ulimit};

    fn host_with(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    fn err(config: &ContainerConfig, host: &HostConfig) -> String {
        validate(config, host).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        validate(&ContainerConfig::default(), &HostConfig::default()).unwrap();
    }

    #[test]
    fn restart_policies_and_auto_remove() {
        let c = ContainerConfig::default();
        let policy = |name: &str, n: i64| RestartPolicy {
            name: name.into(),
            maximum_retry_count: n,
        };
        for ok in [
            policy("no", 0),
            policy("always", 0),
            policy("on-failure", 3),
        ] {
            validate(&c, &host_with(|h| h.restart_policy = ok)).unwrap();
        }
        let e = err(
            &c,
            &host_with(|h| h.restart_policy = policy("sometimes", 0)),
        );
        assert!(
            e.contains("unknown policy 'sometimes'") && e.contains("--restart"),
            "{e}"
        );
        let e = err(&c, &host_with(|h| h.restart_policy = policy("always", 2)));
        assert!(e.contains("only be used with 'on-failure'"), "{e}");
        let e = err(
            &c,
            &host_with(|h| h.restart_policy = policy("on-failure", -1)),
        );
        assert!(e.contains("cannot be negative"), "{e}");
        let e = err(
            &c,
            &host_with(|h| {
                h.restart_policy = policy("always", 0);
                h.auto_remove = true;
            }),
        );
        assert!(e.contains("Conflicting options: --restart and --rm"), "{e}");
        validate(
            &c,
            &host_with(|h| {
                h.restart_policy = policy("no", 0);
                h.auto_remove = true;
            }),
        )
        .unwrap();
    }

    #[test]
    fn log_configs() {
        let log = |kind: &str, opts: &[(&str, &str)]| LogConfig {
            kind: kind.into(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        check_log_config(&log("", &[])).unwrap();
        check_log_config(&log("local", &[("max-size", "10m"), ("max-file", "3")])).unwrap();
        check_log_config(&log("json-file", &[("compress", "false")])).unwrap();
        let e = check_log_config(&log("syslog", &[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no log driver named 'syslog'"), "{e}");
        assert!(check_log_config(&log("none", &[("max-size", "1m")])).is_err());
        assert!(check_log_config(&log("json-file", &[("max-file", "0")])).is_err());
        assert!(check_log_config(&log("json-file", &[("max-size", "lots")])).is_err());
        assert!(check_log_config(&log("json-file", &[("compress", "true")])).is_err());
        let e = check_log_config(&log("json-file", &[("tag", "x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown log opt 'tag'"), "{e}");
    }

    #[test]
    fn health_checks() {
        let h = |test: &[&str], interval: i64| HealthConfig {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval,
            ..Default::default()
        };
        check_health(&h(&["CMD-SHELL", "true"], 30_000_000_000)).unwrap();
        check_health(&h(&["NONE"], 0)).unwrap();
        check_health(&h(&[], 0)).unwrap();
        check_health(&h(&["CMD", "/bin/check", "-q"], 0)).unwrap();
        for bad in [
            &["CMD"][..],
            &["CMD-SHELL"],
            &["SHELL", "x"],
            &["NONE", "x"],
        ] {
            assert!(check_health(&h(bad, 0)).is_err(), "{bad:?}");
        }
        let e = check_health(&h(&[], -1)).unwrap_err().to_string();
        assert!(
            e.contains("--health-interval") && e.contains("negative"),
            "{e}"
        );
        let e = check_health(&h(&[], 999)).unwrap_err().to_string();
        assert!(e.contains("less than 1ms"), "{e}");
    }

    #[test]
    fn mounts_binds_and_tmpfs() {
        let c = ContainerConfig::default();
        let e = err(&c, &host_with(|h| h.binds = vec!["relpath:/x:zz".into()]));
        assert!(e.contains("invalid mode: zz") && e.contains("-v"), "{e}");
        let e = err(
            &c,
            &host_with(|h| {
                h.mounts = vec![Mount {
                    kind: "bind".into(),
                    source: "/does/not/exist".into(),
                    target: "/x".into(),
                    ..Default::default()
                }]
            }),
        );
        assert!(e.contains("bind source path does not exist"), "{e}");
        let e = err(
            &c,
            &host_with(|h| {
                h.binds = vec!["/a:/x".into()];
                h.tmpfs = [("/x/".to_string(), String::new())].into();
            }),
        );
        assert!(e.contains("Duplicate mount point"), "{e}");
        validate(
            &c,
            &host_with(|h| {
                h.tmpfs = [("/run".to_string(), "rw,noexec,size=64m,mode=1777".into())].into()
            }),
        )
        .unwrap();
        let e = err(
            &c,
            &host_with(|h| h.tmpfs = [("/run".to_string(), "rbind".to_string())].into()),
        );
        assert!(e.contains("invalid tmpfs option \"rbind\""), "{e}");
        assert!(check_tmpfs_options("size=50%,uid=1000").is_ok());
        assert!(check_tmpfs_options("mode=999").is_err());
    }

    #[test]
    fn ulimits_caps_and_security() {
        let c = ContainerConfig::default();
        let u = |name: &str, soft: i64, hard: i64| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        validate(&c, &host_with(|h| h.ulimits = vec![u("nofile", 1024, -1)])).unwrap();
        assert!(err(&c, &host_with(|h| h.ulimits = vec![u("bogus", 1, 1)])).contains("bogus"));
        assert!(err(&c, &host_with(|h| h.ulimits = vec![u("nofile", 4, 2)])).contains("4 > 2"));
        assert!(err(&c, &host_with(|h| h.cap_add = vec!["CAP_NOPE".into()])).contains("CAP_NOPE"));
        validate(&c, &host_with(|h| h.cap_drop = vec!["all".into()])).unwrap();
        assert!(err(&c, &host_with(|h| h.security_opt = vec!["bogus".into()])).contains("bogus"));
    }

    fn device_mapping(host: &str, container: &str) -> crate::config::DeviceMapping {
        crate::config::DeviceMapping {
            path_on_host: host.into(),
            path_in_container: container.into(),
            cgroup_permissions: "rwm".into(),
        }
    }

    #[test]
    fn namespaces_networks_and_sysctls() {
        let c = ContainerConfig::default();
        let host_net = host_with(|h| h.network_mode = "host".into());
        assert_eq!(network_mode(&c, &host_net).unwrap(), NetworkMode::Host);
        assert_eq!(
            network_mode(&c, &HostConfig::default()).unwrap(),
            NetworkMode::Default
        );
        let default = host_with(|h| h.network_mode = "default".into());
        assert_eq!(network_mode(&c, &default).unwrap(), NetworkMode::Default);
        for (mode, network) in [("bridge", "bridge"), ("mynet", "mynet")] {
            let host = host_with(|h| h.network_mode = mode.into());
            validate(&c, &host).unwrap();
            assert_eq!(
                network_mode(&c, &host).unwrap(),
                NetworkMode::Bridge(network.into())
            );
        }
        for (mode, words) in [
            ("container:", "needs a container"),
            ("a/b", "not a network"),
        ] {
            let e = err(&c, &host_with(|h| h.network_mode = mode.into()));
            assert!(e.contains(words) && e.contains("--network"), "{mode}: {e}");
        }
        let joined = host_with(|h| h.network_mode = "container:web".into());
        validate(&c, &joined).unwrap();
        assert_eq!(
            network_mode(&c, &joined).unwrap(),
            NetworkMode::Container("web".into())
        );
        type Change = fn(&mut HostConfig);
        let conflicts: [(Change, &str); 4] = [
            (
                |h| h.dns = vec!["1.1.1.1".into()],
                "dns and the network mode",
            ),
            (|h| h.extra_hosts = vec!["a:1.2.3.4".into()], "host-to-IP"),
            (|h| h.publish_all_ports = true, "port publishing"),
            (
                |h| h.sysctls = [("net.ipv4.ip_forward".into(), "1".into())].into(),
                "another container's network namespace",
            ),
        ];
        for (change, words) in conflicts {
            let e = err(
                &c,
                &host_with(|h| {
                    h.network_mode = "container:web".into();
                    change(h);
                }),
            );
            assert!(e.contains(words), "{e}");
        }
        let named = ContainerConfig {
            hostname: "web".into(),
            ..Default::default()
        };
        assert_eq!(
            err(&named, &joined),
            "conflicting options: hostname and the network mode"
        );
        validate(
            &c,
            &host_with(|h| {
                h.network_mode = "bridge".into();
                h.extra_hosts = vec!["gw:host-gateway".into()];
            }),
        )
        .unwrap();
        let published = host_with(|h| {
            h.network_mode = "bridge".into();
            h.publish_all_ports = true;
        });
        validate(&c, &published).unwrap();
        let on = |ip: &str| {
            host_with(|h| {
                h.network_mode = "bridge".into();
                let binding = crate::config::PortBinding {
                    host_ip: ip.into(),
                    host_port: "8080".into(),
                };
                h.port_bindings.insert("80/tcp".into(), vec![binding]);
            })
        };
        validate(&c, &on("::")).unwrap();
        validate(&c, &on("2001:db8::1")).unwrap();
        let e = err(&c, &on("::1"));
        assert!(
            e.contains("cannot publish on ::1") && e.contains("--publish"),
            "{e}"
        );
        let e = err(&c, &host_with(|h| h.ipc_mode = "weird".into()));
        assert!(e.contains("invalid IPC mode: weird"), "{e}");
        validate(&c, &host_with(|h| h.pid_mode = "host".into())).unwrap();
        let named = ContainerConfig {
            hostname: "web".into(),
            ..Default::default()
        };
        assert!(err(&named, &host_with(|h| h.uts_mode = "host".into())).contains("UTS mode"));
        let sysctl = |k: &str| [(k.to_string(), "1".to_string())].into();
        validate(
            &c,
            &host_with(|h| h.sysctls = sysctl("net.ipv4.ip_forward")),
        )
        .unwrap();
        let e = err(
            &c,
            &host_with(|h| {
                h.network_mode = "host".into();
                h.sysctls = sysctl("net.ipv4.ip_forward");
            }),
        );
        assert!(e.contains("host's network namespace"), "{e}");
        assert!(
            err(&c, &host_with(|h| h.sysctls = sysctl("vm.swappiness"))).contains("not allowed")
        );
        assert!(
            err(&c, &host_with(|h| h.extra_hosts = vec!["db:nope".into()])).contains("add-host")
        );
        validate(
            &c,
            &host_with(|h| h.extra_hosts = vec!["db:10.0.0.2".into()]),
        )
        .unwrap();
        let e = err(&c, &host_with(|h| h.devices = vec![Default::default()]));
        assert!(e.contains("--device") && e.contains("absolute"), "{e}");
        let device = |container: &str| device_mapping("/dev/null", container);
        validate(&c, &host_with(|h| h.devices = vec![device("/dev/x")])).unwrap();
        let e = err(&c, &host_with(|h| h.devices = vec![device("/etc/x")]));
        assert!(e.contains("under /dev"), "{e}");
    }

    #[test]
    fn process_fields() {
        let h = HostConfig::default();
        let with = |f: fn(&mut ContainerConfig)| {
            let mut c = ContainerConfig::default();
            f(&mut c);
            validate(&c, &h)
        };
        assert!(with(|c| c.working_dir = "rel".into()).is_err());
        assert!(with(|c| c.env = vec!["=x".into()]).is_err());
        assert!(with(|c| c.hostname = "bad_name".into()).is_err());
        assert!(with(|c| c.hostname = "a".repeat(65)).is_err());
        with(|c| c.hostname = "web-1.example".into()).unwrap();
        let e = with(|c| c.stop_signal = Some("SIGNOPE".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid signal: SIGNOPE"), "{e}");
        with(|c| c.stop_signal = Some("SIGUSR1".into())).unwrap();
    }

    #[test]
    fn warnings_for_discarded_settings() {
        let h = host_with(|h| {
            h.oom_kill_disable = Some(true);
            h.memory_swappiness = Some(10);
        });
        assert_eq!(warnings(&ContainerConfig::default(), &h).len(), 2);
    }
}
