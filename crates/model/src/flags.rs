//! `docker run` flag values → the typed config, parsed at the edge with Docker's syntaxes
//! (sizes, CPUs, Go durations, `-v`, `--mount`, `--tmpfs`, `--ulimit`, `--restart`,
//! `--log-opt`, health flags, `-e`/`--env-file`, labels, `-p`) and Docker's CLI error form:
//! `invalid argument "64x" for "-m, --memory" flag: invalid size: '64x'`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{
    BindOptions, DeviceMapping, Driver, HealthConfig, LogConfig, Mount, PortBinding, RestartPolicy,
    TmpfsOptions, Ulimit, VolumeOptions,
};
use crate::error::{Error, Result};
use crate::mounts::{parse_bind, PROPAGATIONS};
use crate::security::parse_bool;

pub use crate::units::{parse_duration, parse_size};

/// Docker's CLI error for a flag's value.
fn bad(flag: &str, value: &str, why: impl std::fmt::Display) -> Error {
    Error::FlagValue {
        flag: flag.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

/// A size flag (`--shm-size`, `--memory-reservation`, …): never negative.
pub fn bytes(flag: &str, value: &str) -> Result<i64> {
    parse_size(value).ok_or_else(|| bad(flag, value, format!("invalid size: '{value}'")))
}

/// `-m, --memory`.
pub fn memory(value: &str) -> Result<i64> {
    bytes("-m, --memory", value)
}

/// `--memory-swap`: a size, or `-1` for unlimited swap.
pub fn memory_swap(value: &str) -> Result<i64> {
    if value == "-1" {
        return Ok(-1);
    }
    bytes("--memory-swap", value)
}

/// `--cpus 1.5` → `NanoCpus` (exact: at most nine decimals).
pub fn cpus(value: &str) -> Result<i64> {
    const FLAG: &str = "--cpus";
    let not_rational = || {
        bad(
            FLAG,
            value,
            format!("failed to parse {value} as a rational number"),
        )
    };
    let (negative, digits) = match value.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, value.strip_prefix('+').unwrap_or(value)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_rational());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 9 {
        return Err(bad(FLAG, value, "value is too precise"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| not_rational())?
    };
    let nanos: i64 = format!("{fraction:0<9}")
        .parse()
        .map_err(|_| not_rational())?;
    let total = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(not_rational)?;
    Ok(if negative { -total } else { total })
}

/// What one `-v` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeFlag {
    /// A `HostConfig.Binds` entry (`./x` sources made absolute).
    Bind(String),
    /// `-v /dst`: an anonymous volume, a `Config.Volumes` key.
    Anonymous(String),
}

/// `-v, --volume SRC:DST[:OPTS]` or `-v DST`, checked as the daemon will (mode, volume name,
/// absolute target) before anything exists. A source of `.` or `./…` is taken relative to
/// `cwd`, as Docker's CLI does; any other relative source is a volume name.
pub fn volume(value: &str, cwd: &Path) -> Result<VolumeFlag> {
    const FLAG: &str = "-v, --volume";
    let resolved = match value.split_once(':') {
        Some((src, rest)) if src == "." || src.starts_with("./") => {
            let abs = crate::mounts::clean(&cwd.join(src).to_string_lossy());
            format!("{abs}:{rest}")
        }
        _ => value.to_string(),
    };
    let planned = parse_bind(&resolved).map_err(|e| bad(FLAG, value, e))?;
    if planned.mount.kind == "volume" && planned.mount.source.is_empty() {
        return Ok(VolumeFlag::Anonymous(planned.mount.target));
    }
    Ok(VolumeFlag::Bind(resolved))
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…` with Docker's field names
/// (`src`, `dst`/`destination`, `ro`, `bind-propagation`, `bind-nonrecursive`,
/// `volume-nocopy`, `volume-label`, `volume-driver`, `volume-opt`, `tmpfs-size`,
/// `tmpfs-mode`, `consistency`). A bind's source must exist: [`crate::validate`] checks.
pub fn mount(value: &str) -> Result<Mount> {
    const FLAG: &str = "--mount";
    let err = |why: String| bad(FLAG, value, why);
    let mut m = Mount {
        kind: "volume".into(),
        ..Default::default()
    };
    let (mut bind, mut vol, mut tmpfs) = (None::<BindOptions>, None::<VolumeOptions>, None);
    for field in value.split(',') {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let flag_value = |v: Option<&str>| -> Result<bool> {
            v.map_or(Some(true), parse_bool)
                .ok_or_else(|| err(format!("invalid value for {key}: {}", v.unwrap_or(""))))
        };
        let text =
            || val.ok_or_else(|| err(format!("invalid field '{field}' must be a key=value pair")));
        match key.as_str() {
            "readonly" | "ro" => m.read_only = flag_value(val)?,
            "bind-nonrecursive" => {
                bind.get_or_insert_with(Default::default).non_recursive = flag_value(val)?
            }
            "volume-nocopy" => vol.get_or_insert_with(Default::default).no_copy = flag_value(val)?,
            "type" => m.kind = text()?.to_string(),
            "source" | "src" => m.source = text()?.to_string(),
            "target" | "dst" | "destination" => m.target = text()?.to_string(),
            "consistency" => m.consistency = text()?.to_string(),
            "bind-propagation" => {
                let p = text()?;
                if !PROPAGATIONS.contains(&p) {
                    return Err(err(format!("invalid propagation mode: {p}")));
                }
                bind.get_or_insert_with(Default::default).propagation = p.to_string();
            }
            "volume-label" | "volume-opt" => {
                let (k, v) = text()?.split_once('=').unwrap_or((text()?, ""));
                let v_opts = vol.get_or_insert_with(Default::default);
                let map = if key == "volume-label" {
                    &mut v_opts.labels
                } else {
                    &mut v_opts
                        .driver_config
                        .get_or_insert_with(Default::default)
                        .options
                };
                map.insert(k.to_string(), v.to_string());
            }
            "volume-driver" => {
                let v_opts = vol.get_or_insert_with(Default::default);
                v_opts
                    .driver_config
                    .get_or_insert_with(Driver::default)
                    .name = text()?.to_string();
            }
            "tmpfs-size" => {
                let size = parse_size(text()?)
                    .ok_or_else(|| err(format!("invalid size: '{}'", text().unwrap_or(""))))?;
                tmpfs.get_or_insert_with(TmpfsOptions::default).size_bytes = size;
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(text()?, 8)
                    .map_err(|_| err(format!("invalid tmpfs-mode: {}", text().unwrap_or(""))))?;
                tmpfs.get_or_insert_with(TmpfsOptions::default).mode = mode;
            }
            _ => return Err(err(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    if m.target.is_empty() {
        return Err(err("target is required".into()));
    }
    for (prefix, given, kind) in [
        ("bind", bind.is_some(), "bind"),
        ("volume", vol.is_some(), "volume"),
        ("tmpfs", tmpfs.is_some(), "tmpfs"),
    ] {
        if given && m.kind != kind {
            return Err(err(format!(
                "cannot mix '{prefix}-*' options with mount type '{}'",
                m.kind
            )));
        }
    }
    (m.bind_options, m.volume_options, m.tmpfs_options) = (bind, vol, tmpfs);
    crate::mounts::check_mount(&m, false).map_err(err)?;
    Ok(m)
}

/// `--tmpfs DST[:OPTS]` → a `HostConfig.Tmpfs` entry.
pub fn tmpfs(value: &str) -> Result<(String, String)> {
    let (target, options) = value.split_once(':').unwrap_or((value, ""));
    crate::mounts::check_target(target).map_err(|e| bad("--tmpfs", value, e))?;
    crate::validate::check_tmpfs_options(options).map_err(|e| bad("--tmpfs", value, e))?;
    Ok((target.to_string(), options.to_string()))
}

/// `--ulimit NAME=SOFT[:HARD]` (`-1` or `unlimited`: no limit).
pub fn ulimit(value: &str) -> Result<Ulimit> {
    const FLAG: &str = "--ulimit";
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| bad(FLAG, value, format!("invalid ulimit argument: {value}")))?;
    if !crate::validate::ULIMITS.contains(&name) {
        return Err(bad(FLAG, value, format!("invalid ulimit type: {name}")));
    }
    let number = |s: &str| -> Result<i64> {
        match s {
            "unlimited" | "-1" => Ok(-1),
            s => s
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| bad(FLAG, value, format!("invalid ulimit value: {s}"))),
        }
    };
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts[..] {
        [one] => (number(one)?, number(one)?),
        [s, h] => (number(s)?, number(h)?),
        _ => {
            return Err(bad(
                FLAG,
                value,
                format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ),
            ))
        }
    };
    let as_limit = |v: i64| if v == -1 { u64::MAX } else { v as u64 };
    if as_limit(soft) > as_limit(hard) {
        return Err(bad(
            FLAG,
            value,
            format!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"),
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--restart no|always|unless-stopped|on-failure[:N]`.
pub fn restart(value: &str) -> Result<RestartPolicy> {
    const FLAG: &str = "--restart";
    let (name, count) = value.split_once(':').unwrap_or((value, ""));
    let mut policy = RestartPolicy {
        name: name.to_string(),
        maximum_retry_count: 0,
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if !count.is_empty() => Err(bad(
            FLAG,
            value,
            format!("maximum retry count cannot be used with restart policy '{name}'"),
        )),
        "" | "no" | "always" | "unless-stopped" => Ok(policy),
        "on-failure" => {
            if !count.is_empty() {
                policy.maximum_retry_count = count.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    bad(
                        FLAG,
                        value,
                        "invalid restart policy format: maximum retry count must be a non-negative integer",
                    )
                })?;
            }
            Ok(policy)
        }
        other => Err(bad(
            FLAG,
            value,
            format!(
                "invalid restart policy '{other}'; use one of 'no', 'always', 'on-failure', or \
                 'unless-stopped'"
            ),
        )),
    }
}

/// `--log-driver` and `--log-opt KEY=VALUE` → `LogConfig`, checked.
pub fn log_config(driver: Option<&str>, options: &[String]) -> Result<LogConfig> {
    let mut config = BTreeMap::new();
    for o in options {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
        config.insert(k.to_string(), v.to_string());
    }
    let log = LogConfig {
        kind: driver.unwrap_or_default().to_string(),
        config,
    };
    crate::validate::check_log_config(&log)?;
    Ok(log)
}

/// The health flags of `docker run`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthFlags {
    /// `--health-cmd` (run with the container's shell).
    pub cmd: Option<String>,
    /// `--health-interval` (Go duration).
    pub interval: Option<String>,
    /// `--health-timeout`.
    pub timeout: Option<String>,
    /// `--health-start-period`.
    pub start_period: Option<String>,
    /// `--health-retries`.
    pub retries: Option<i64>,
    /// `--no-healthcheck`.
    pub no_healthcheck: bool,
}

/// Health flags → `Config.Healthcheck` (`None`: the image's).
pub fn healthcheck(f: &HealthFlags) -> Result<Option<HealthConfig>> {
    let any_set = f.cmd.is_some()
        || f.interval.is_some()
        || f.timeout.is_some()
        || f.start_period.is_some()
        || f.retries.is_some();
    if f.no_healthcheck {
        if any_set {
            return Err(Error::Invalid(
                "--no-healthcheck conflicts with --health-* options".into(),
            ));
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if !any_set {
        return Ok(None);
    }
    let duration = |flag: &str, v: &Option<String>| -> Result<i64> {
        let Some(text) = v else { return Ok(0) };
        let d = parse_duration(text)
            .ok_or_else(|| bad(flag, text, format!("time: invalid duration {text:?}")))?;
        if d < 0 {
            return Err(Error::Invalid(format!("{flag} cannot be negative")));
        }
        Ok(d)
    };
    let retries = f.retries.unwrap_or(0);
    if retries < 0 {
        return Err(Error::Invalid("--health-retries cannot be negative".into()));
    }
    let health = HealthConfig {
        test: f
            .cmd
            .iter()
            .flat_map(|c| ["CMD-SHELL".to_string(), c.clone()])
            .collect(),
        interval: duration("--health-interval", &f.interval)?,
        timeout: duration("--health-timeout", &f.timeout)?,
        start_period: duration("--health-start-period", &f.start_period)?,
        retries,
    };
    crate::validate::check_health(&health)?;
    Ok(Some(health))
}

/// `--stop-signal` (a name, `SIG` optional, or a number), kept as written.
pub fn stop_signal(value: &str) -> Result<String> {
    pelagos_container::signal::parse_signal(value)
        .map_err(|_| bad("--stop-signal", value, format!("invalid signal: {value}")))?;
    Ok(value.to_string())
}

/// `--cap-add`/`--cap-drop`: `ALL` or a known capability, kept as written.
pub fn capability(flag: &str, value: &str) -> Result<String> {
    if !crate::security::is_all(value) {
        crate::security::capability_name(value).map_err(|e| bad(flag, value, e))?;
    }
    Ok(value.to_string())
}

/// `--security-opt`; `seccomp=FILE` becomes `seccomp=<the file's JSON>`, as Docker's CLI
/// sends it (so the daemon and the spec never read the client's files).
pub fn security_opt(value: &str) -> Result<String> {
    const FLAG: &str = "--security-opt";
    let opt = value.trim();
    let path = opt
        .strip_prefix("seccomp=")
        .or_else(|| opt.strip_prefix("seccomp:"))
        .filter(|p| *p != "unconfined" && !p.starts_with('{'));
    let out = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                bad(
                    FLAG,
                    value,
                    format!("opening seccomp profile ({path}) failed: {e}"),
                )
            })?;
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                bad(
                    FLAG,
                    value,
                    format!("compacting json for seccomp profile ({path}) failed: {e}"),
                )
            })?;
            format!("seccomp={json}")
        }
        None => opt.to_string(),
    };
    crate::security::security_options(std::slice::from_ref(&out))
        .map_err(|e| bad(FLAG, value, e))?;
    Ok(out)
}

/// `--cpuset-cpus`/`--cpuset-mems`: a list such as `0-3,5` (availability is checked by
/// [`crate::validate`]).
pub fn cpuset(flag: &str, value: &str) -> Result<String> {
    crate::validate::parse_cpu_list(value)
        .ok_or_else(|| bad(flag, value, format!("invalid cpuset list: {value}")))?;
    Ok(value.to_string())
}

/// `-l, --label KEY=VALUE` (or `KEY`: empty value) → `Config.Labels`.
pub fn labels(values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
        if k.trim().is_empty() {
            return Err(bad(
                "-l, --label",
                v,
                format!("invalid label '{v}': empty name"),
            ));
        }
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// `--sysctl KEY=VALUE` → `HostConfig.Sysctls`: only sysctls of the container's own
/// namespaces, refused in Docker's words (`sysctl 'vm.swappiness=1' is not allowed`).
pub fn sysctls(values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let (k, val) = v
            .split_once('=')
            .filter(|(k, _)| crate::validate::is_namespaced_sysctl(k))
            .ok_or_else(|| bad("--sysctl", v, format!("sysctl '{v}' is not allowed")))?;
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// `-e KEY=VALUE` kept; `-e KEY` takes the value `lookup` gives (the CLI's environment), or
/// stays a bare `KEY`, which removes the variable in the container (Docker's rule).
pub fn env(values: &[String], lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
    values
        .iter()
        .map(|v| {
            let key = v.split('=').next().unwrap_or_default();
            if key.is_empty() {
                return Err(bad(
                    "-e, --env",
                    v,
                    format!("invalid environment variable: {v}"),
                ));
            }
            Ok(match (v.contains('='), lookup(key)) {
                (false, Some(found)) => format!("{key}={found}"),
                _ => v.clone(),
            })
        })
        .collect()
}

/// The lines of an `--env-file` (Docker's format: `KEY=VALUE` verbatim, `KEY` from `lookup`
/// or dropped, `#` comments and blank lines skipped, leading blanks and a BOM ignored).
/// `name` names the file in errors; reading it is the caller's.
pub fn env_file(
    name: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line.trim_end(), None),
        };
        let bad_line =
            |why: String| Error::Invalid(format!("invalid env file {name}, line {}: {why}", n + 1));
        if key.is_empty() {
            return Err(bad_line(format!("no variable name on line '{line}'")));
        }
        if key.contains(char::is_whitespace) {
            return Err(bad_line(format!("variable '{key}' contains whitespaces")));
        }
        match value {
            Some(v) => out.push(format!("{key}={v}")),
            None => out.extend(lookup(key).map(|v| format!("{key}={v}"))),
        }
    }
    Ok(out)
}

/// `--network NAME` (`--net`): kept as written; [`crate::validate::network_mode`] says
/// which are supported.
pub fn network(value: &str) -> Result<String> {
    if value.trim().is_empty() {
        return Err(bad("--network", value, "a network name is required"));
    }
    Ok(value.to_string())
}

/// A port or a range (`8000-8010`).
fn port_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some((a, b))
}

/// `-p, --publish [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` (ranges allowed) →
/// `PortBindings` entries keyed `"80/tcp"`.
pub fn publish(value: &str) -> Result<Vec<(String, PortBinding)>> {
    const FLAG: &str = "-p, --publish";
    let err = |why: String| bad(FLAG, value, why);
    let (rest, proto) = value.rsplit_once('/').unwrap_or((value, "tcp"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(err(format!("invalid proto: {proto}")));
    }
    let (ip, ports) = match rest.strip_prefix('[') {
        Some(r) => {
            let (ip, after) = r
                .split_once("]:")
                .ok_or_else(|| err("invalid IPv6 address".into()))?;
            (ip, after)
        }
        None => match rest.matches(':').count() {
            0 | 1 => ("", rest),
            2 => rest.split_once(':').unwrap_or(("", rest)),
            _ => return Err(err(format!("invalid port format: {value}"))),
        },
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(err(format!("invalid IP address: {ip}")));
    }
    let (host, container) = ports.split_once(':').unwrap_or(("", ports));
    let (c0, c1) = port_range(container)
        .filter(|(a, _)| *a > 0)
        .ok_or_else(|| err(format!("invalid containerPort: {container}")))?;
    let host_range = match host {
        "" => None,
        h => Some(port_range(h).ok_or_else(|| err(format!("invalid hostPort: {h}")))?),
    };
    let host_port = |i: u16| match host_range {
        None => String::new(),
        Some((h0, h1)) if h1 - h0 != c1 - c0 => format!("{h0}-{h1}"),
        Some((h0, _)) => (h0 + i).to_string(),
    };
    if let Some((h0, h1)) = host_range {
        if h1 - h0 != c1 - c0 && c0 != c1 {
            return Err(err(format!(
                "invalid ranges specified for container and host Ports: {container} and {host}"
            )));
        }
    }
    Ok((0..=c1 - c0)
        .map(|i| {
            (
                format!("{}/{proto}", c0 + i),
                PortBinding {
                    host_ip: ip.to_string(),
                    host_port: host_port(i),
                },
            )
        })
        .collect())
}

/// `--expose PORT[-END][/PROTO]` → the `ExposedPorts` keys it adds (`"80/tcp"`), with
/// Docker's CLI errors.
pub fn expose(value: &str) -> Result<Vec<String>> {
    const FLAG: &str = "--expose";
    if value.contains(':') {
        return Err(bad(
            FLAG,
            value,
            format!("invalid port format for --expose: {value}"),
        ));
    }
    let (ports, proto) = value.rsplit_once('/').unwrap_or((value, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad(FLAG, value, format!("invalid proto: {proto}")));
    }
    let (first, last) = port_range(ports).ok_or_else(|| {
        bad(
            FLAG,
            value,
            format!("invalid range format for --expose: {value}, error: invalid port {ports}"),
        )
    })?;
    Ok((first..=last).map(|p| format!("{p}/{proto}")).collect())
}

/// `--add-host NAME:IP` (also `NAME=IP`, Docker 25+): checked, kept as Docker stores it
/// (`NAME:IP`). `host-gateway` passes here; [`crate::validate`] refuses it until there is a
/// bridge.
pub fn add_host(value: &str) -> Result<String> {
    const FLAG: &str = "--add-host";
    let (name, ip) = value
        .split_once('=')
        .or_else(|| value.split_once(':'))
        .filter(|(name, _)| !name.is_empty() && !name.contains(':'))
        .ok_or_else(|| bad(FLAG, value, format!("bad format for add-host: {value:?}")))?;
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && bare.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            FLAG,
            value,
            format!("invalid IP address in add-host: {ip:?}"),
        ));
    }
    Ok(format!("{name}:{bare}"))
}

/// `--mac-address`: six colon-separated hex bytes, not multicast; lower-cased.
pub fn mac_address(value: &str) -> Result<String> {
    let err = || {
        bad(
            "--mac-address",
            value,
            format!("{value} is not a valid mac address"),
        )
    };
    let bytes: Vec<u8> = value
        .split(':')
        .map(|b| match b.len() {
            2 => u8::from_str_radix(b, 16).ok(),
            _ => None,
        })
        .collect::<Option<_>>()
        .ok_or_else(err)?;
    if bytes.len() != 6 || bytes[0] & 1 == 1 {
        return Err(err());
    }
    Ok(value.to_ascii_lowercase())
}

/// `--ip`: an IPv4 address.
pub fn ipv4_address(value: &str) -> Result<String> {
    value
        .parse::<std::net::Ipv4Addr>()
        .map(|a| a.to_string())
        .map_err(|_| bad("--ip", value, format!("invalid IPv4 address: {value}")))
}

/// `--ip6`: an IPv6 address.
pub fn ipv6_address(value: &str) -> Result<String> {
    value
        .parse::<std::net::Ipv6Addr>()
        .map(|a| a.to_string())
        .map_err(|_| bad("--ip6", value, format!("invalid IPv6 address: {value}")))
}

/// `--dns IP`.
pub fn dns(value: &str) -> Result<String> {
    value.trim().parse::<std::net::IpAddr>().map_err(|_| {
        bad(
            "--dns",
            value,
            format!("IP address is not correctly formatted: {value}"),
        )
    })?;
    Ok(value.trim().to_string())
}

/// `--dns-search DOMAIN` (`.` for none), Docker's `ValidateDNSSearch`.
pub fn dns_search(value: &str) -> Result<String> {
    let domain = value.trim_end_matches('.');
    if value == "." {
        return Ok(value.to_string());
    }
    if domain.is_empty() || domain.starts_with('-') || domain.len() > 255 {
        return Err(bad(
            "--dns-search",
            value,
            format!("{value} is not a valid domain"),
        ));
    }
    Ok(value.to_string())
}

/// Whether `mode` is a device cgroup permission set: one to three of `r`, `w`, `m`, none twice.
pub fn is_device_mode(mode: &str) -> bool {
    let mut seen = String::new();
    !mode.is_empty()
        && mode.chars().all(|c| {
            let fresh = "rwm".contains(c) && !seen.contains(c);
            seen.push(c);
            fresh
        })
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]` (Docker's `parseDevice`): the container path
/// defaults to the host's, the permissions to `rwm`; `HOST:PERMISSIONS` is understood too.
pub fn device(value: &str) -> Result<DeviceMapping> {
    const FLAG: &str = "--device";
    let parts: Vec<&str> = value.split(':').collect();
    let (host, container, permissions) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, m] if is_device_mode(m) => (*h, *h, *m),
        [h, c] => (*h, *c, "rwm"),
        [h, c, m] => (*h, *c, *m),
        _ => return Err(bad(FLAG, value, format!("bad format for path: {value}"))),
    };
    if !is_device_mode(permissions) {
        return Err(bad(
            FLAG,
            value,
            format!("bad mode specified: {permissions}"),
        ));
    }
    for path in [host, container] {
        if !path.starts_with('/') {
            return Err(bad(FLAG, value, format!("{path} is not an absolute path")));
        }
    }
    Ok(DeviceMapping {
        path_on_host: host.to_string(),
        path_in_container: container.to_string(),
        cgroup_permissions: permissions.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_macs_of_run() {
        assert_eq!(
            mac_address("02:42:AC:11:00:09").unwrap(),
            "02:42:ac:11:00:09"
        );
        for bad in [
            "01:00:5e:00:00:01",
            "02:42:ac:11:00",
            "0242ac110009",
            "zz:42:ac:11:00:09",
        ] {
            let e = mac_address(bad).unwrap_err().to_string();
            assert!(e.contains("not a valid mac address"), "{bad}: {e}");
        }
        assert_eq!(ipv4_address("10.1.0.9").unwrap(), "10.1.0.9");
        assert!(ipv4_address("10.1.0.300")
            .unwrap_err()
            .to_string()
            .contains("invalid IPv4"));
        assert!(ipv4_address("fd00::1").is_err());
        assert_eq!(ipv6_address("FD00::1").unwrap(), "fd00::1");
        assert!(ipv6_address("10.0.0.1").is_err());
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn size_flags() {
        let e = memory("64x").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \"64x\" for \"-m, --memory\" flag: invalid size: '64x'"
        );
        assert_eq!(memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(memory_swap("-1").unwrap(), -1);
        assert!(memory_swap("-2").is_err());
        assert!(bytes("--shm-size", "lots")
            .unwrap_err()
            .to_string()
            .contains("--shm-size"));
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(cpus("1.5").unwrap(), 1_500_000_000);
        assert_eq!(cpus("0.01").unwrap(), 10_000_000);
        assert_eq!(cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(cpus(".5").unwrap(), 500_000_000);
        assert!(cpus("0.0000000001")
            .unwrap_err()
            .to_string()
            .contains("too precise"));
        assert!(cpus("lots")
            .unwrap_err()
            .to_string()
            .contains("failed to parse lots as a rational number"));
    }

    #[test]
    fn volumes_are_checked_before_anything_exists() {
        let cwd = Path::new("/work/here");
        let e = volume("relpath:/x:zz", cwd).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \"relpath:/x:zz\" for \"-v, --volume\" flag: invalid mode: zz"
        );
        assert_eq!(
            volume("/h:/c:ro", cwd).unwrap(),
            VolumeFlag::Bind("/h:/c:ro".into())
        );
        assert_eq!(
            volume("./data:/c", cwd).unwrap(),
            VolumeFlag::Bind("/work/here/data:/c".into())
        );
        assert_eq!(
            volume("named:/c", cwd).unwrap(),
            VolumeFlag::Bind("named:/c".into())
        );
        assert_eq!(
            volume("/anon", cwd).unwrap(),
            VolumeFlag::Anonymous("/anon".into())
        );
        assert!(volume("/x:relative", cwd).is_err());
        assert!(volume("../up:/x", cwd).is_err());
    }

    #[test]
    fn mount_flags() {
        let m = mount("type=bind,source=/src,target=/d,readonly,bind-propagation=rslave").unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.read_only),
            ("bind", "/src", true)
        );
        assert_eq!(m.bind_options.unwrap().propagation, "rslave");
        let t = mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        let opts = t.tmpfs_options.unwrap();
        assert_eq!((opts.size_bytes, opts.mode), (1 << 20, 0o1777));
        let v = mount("src=data,target=/v,volume-nocopy,volume-label=a=b").unwrap();
        assert_eq!(v.kind, "volume");
        let vo = v.volume_options.unwrap();
        assert!(vo.no_copy);
        assert_eq!(vo.labels["a"], "b");
        assert!(mount("type=bind,source=/s")
            .unwrap_err()
            .to_string()
            .contains("target is required"));
        assert!(mount("type=tmpfs,target=/t,bind-propagation=rshared")
            .unwrap_err()
            .to_string()
            .contains("cannot mix"));
        assert!(mount("type=bind,src=/s,target=/t,bogus=1")
            .unwrap_err()
            .to_string()
            .contains("unexpected key 'bogus'"));
        assert!(mount("type=tmpfs,target=/t,tmpfs-mode=99x").is_err());
        assert!(mount("type=npipe,target=/t").is_err());
        assert_eq!(
            tmpfs("/run:exec,size=1m").unwrap(),
            ("/run".into(), "exec,size=1m".into())
        );
        assert!(tmpfs("run").is_err());
        assert!(tmpfs("/run:bogus").is_err());
    }

    #[test]
    fn ulimits_and_restart() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(ulimit("core=unlimited").unwrap().hard, -1);
        assert!(ulimit("nofile=4:2")
            .unwrap_err()
            .to_string()
            .contains("4 > 2"));
        assert!(ulimit("bogus=1")
            .unwrap_err()
            .to_string()
            .contains("invalid ulimit type"));
        assert!(ulimit("nofile").is_err());
        assert!(ulimit("nofile=1:2:3").is_err());
        assert_eq!(restart("on-failure:3").unwrap().maximum_retry_count, 3);
        assert_eq!(restart("unless-stopped").unwrap().name, "unless-stopped");
        assert!(restart("always:2")
            .unwrap_err()
            .to_string()
            .contains("cannot be used"));
        assert!(restart("on-failure:x").is_err());
        assert!(restart("sometimes")
            .unwrap_err()
            .to_string()
            .contains("--restart"));
    }

    #[test]
    fn logs_health_and_signals() {
        let log = log_config(Some("local"), &["max-size=10m".into(), "max-file=3".into()]).unwrap();
        assert_eq!(log.config["max-file"], "3");
        assert!(log_config(Some("json-file"), &["compress=true".into()]).is_err());
        assert!(log_config(Some("syslog"), &[]).is_err());
        let h = healthcheck(&HealthFlags {
            cmd: Some("curl -f localhost".into()),
            interval: Some("1m30s".into()),
            retries: Some(3),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(h.interval, 90_000_000_000);
        assert_eq!(healthcheck(&HealthFlags::default()).unwrap(), None);
        let none = healthcheck(&HealthFlags {
            no_healthcheck: true,
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(none.test, ["NONE"]);
        assert!(healthcheck(&HealthFlags {
            no_healthcheck: true,
            retries: Some(1),
            ..Default::default()
        })
        .is_err());
        let e = healthcheck(&HealthFlags {
            timeout: Some("-1s".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("--health-timeout cannot be negative"), "{e}");
        assert!(healthcheck(&HealthFlags {
            interval: Some("10".into()),
            ..Default::default()
        })
        .is_err());
        assert_eq!(stop_signal("SIGUSR1").unwrap(), "SIGUSR1");
        assert!(stop_signal("NOPE").is_err());
    }

    #[test]
    fn env_labels_and_env_files() {
        let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
        assert_eq!(
            env(&["A=1".into(), "HOME".into(), "UNSET".into()], &lookup).unwrap(),
            ["A=1", "HOME=/root", "UNSET"]
        );
        assert!(env(&["=x".into()], &no_env).is_err());
        let text = "\u{feff}# comment\n\n  A=1 \nB= two words\r\nHOME\nUNSET\n";
        assert_eq!(
            env_file("f.env", text, &lookup).unwrap(),
            ["A=1 ", "B= two words", "HOME=/root"]
        );
        let e = env_file("f.env", "A B=1\n", &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f.env, line 1") && e.contains("whitespaces"),
            "{e}"
        );
        assert!(env_file("f.env", "=1\n", &no_env).is_err());
        let l = labels(&["a=b".into(), "flag".into()]).unwrap();
        assert_eq!((l["a"].as_str(), l["flag"].as_str()), ("b", ""));
        assert!(labels(&["=x".into()]).is_err());
        assert!(sysctls(&["net.ipv4.ip_forward=1".into()]).is_ok());
        assert!(sysctls(&["novalue".into()]).is_err());
        assert_eq!(
            sysctls(&["vm.swappiness=1".into()]).unwrap_err().to_string(),
            "invalid argument \"vm.swappiness=1\" for \"--sysctl\" flag: sysctl 'vm.swappiness=1' is not allowed"
        );
    }

    #[test]
    fn devices() {
        let d = device("/dev/null").unwrap();
        assert_eq!(
            (d.path_on_host.as_str(), d.path_in_container.as_str()),
            ("/dev/null", "/dev/null")
        );
        assert_eq!(d.cgroup_permissions, "rwm");
        assert_eq!(
            device("/dev/null:r").unwrap().path_in_container,
            "/dev/null"
        );
        let d = device("/dev/null:/dev/x:rw").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/x", "rw")
        );
        assert_eq!(
            device("/dev/null:/dev/x").unwrap().cgroup_permissions,
            "rwm"
        );
        let e = device("/dev/null:/dev/x:rwx").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \"/dev/null:/dev/x:rwx\" for \"--device\" flag: bad mode specified: rwx"
        );
        assert!(device("/dev/null:/dev/x:rr").is_err());
        assert!(device("a:b:c:d")
            .unwrap_err()
            .to_string()
            .contains("bad format for path"));
        assert!(device("/dev/null:x")
            .unwrap_err()
            .to_string()
            .contains("x is not an absolute path"));
    }

    #[test]
    fn hosts_and_dns() {
        assert_eq!(add_host("db:10.0.0.2").unwrap(), "db:10.0.0.2");
        assert_eq!(add_host("db=10.0.0.2").unwrap(), "db:10.0.0.2");
        assert_eq!(add_host("v6:::1").unwrap(), "v6:::1");
        assert_eq!(add_host("v6=[::1]").unwrap(), "v6:::1");
        assert_eq!(add_host("gw:host-gateway").unwrap(), "gw:host-gateway");
        let e = add_host("db:nope").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid argument \"db:nope\" for \"--add-host\" flag: invalid IP address in add-host: \"nope\""
        );
        assert!(add_host("nocolon").is_err());
        assert!(add_host("a:b=1.2.3.4")
            .unwrap_err()
            .to_string()
            .contains("bad format"));
        assert_eq!(dns("9.9.9.9").unwrap(), "9.9.9.9");
        assert!(dns("nine")
            .unwrap_err()
            .to_string()
            .contains("IP address is not correctly formatted: nine"));
        assert_eq!(dns_search("example.com").unwrap(), "example.com");
        assert_eq!(dns_search(".").unwrap(), ".");
        assert!(dns_search("-bad")
            .unwrap_err()
            .to_string()
            .contains("is not a valid domain"));
    }

    #[test]
    fn security_opts_and_caps() {
        let d = tempfile::tempdir().unwrap();
        let profile = d.path().join("p.json");
        std::fs::write(&profile, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n").unwrap();
        let out = security_opt(&format!("seccomp={}", profile.display())).unwrap();
        assert_eq!(out, r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#);
        let e = security_opt("seccomp=/does/not/exist")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("opening seccomp profile (/does/not/exist) failed"),
            "{e}"
        );
        std::fs::write(&profile, "not json").unwrap();
        assert!(security_opt(&format!("seccomp={}", profile.display()))
            .unwrap_err()
            .to_string()
            .contains("compacting json"));
        assert_eq!(
            security_opt("no-new-privileges").unwrap(),
            "no-new-privileges"
        );
        assert!(security_opt("bogus").is_err());
        assert_eq!(capability("--cap-add", "net_admin").unwrap(), "net_admin");
        assert_eq!(capability("--cap-drop", "ALL").unwrap(), "ALL");
        assert!(capability("--cap-add", "CAP_NOPE").is_err());
    }

    #[test]
    fn ports() {
        let p = publish("127.0.0.1:8080:80").unwrap();
        assert_eq!(
            p,
            [(
                "80/tcp".to_string(),
                PortBinding {
                    host_ip: "127.0.0.1".into(),
                    host_port: "8080".into()
                }
            )]
        );
        assert_eq!(publish("53/udp").unwrap()[0].0, "53/udp");
        assert_eq!(publish("53/udp").unwrap()[0].1.host_port, "");
        let r = publish("8000-8001:80-81").unwrap();
        assert_eq!(
            (r[1].0.as_str(), r[1].1.host_port.as_str()),
            ("81/tcp", "8001")
        );
        assert_eq!(publish("8000-8010:80").unwrap()[0].1.host_port, "8000-8010");
        assert_eq!(publish("[::1]:80:80").unwrap()[0].1.host_ip, "::1");
        let v6 = &publish("[2001:db8::1]:8080:80").unwrap()[0];
        assert_eq!(
            (v6.1.host_ip.as_str(), v6.1.host_port.as_str()),
            ("2001:db8::1", "8080")
        );
        assert!(publish("1.2.3.4::80").unwrap()[0].1.host_port.is_empty());
        assert_eq!(expose("80").unwrap(), ["80/tcp"]);
        assert_eq!(expose("53-54/udp").unwrap(), ["53/udp", "54/udp"]);
        for bad in ["8080:80", "x", "80/icmp", "90-80"] {
            assert!(expose(bad).is_err(), "{bad}");
        }
        for bad in ["80/icmp", "x:80:80", "0", "8000-8001:80-82", "a:b:c:d"] {
            assert!(publish(bad).is_err(), "{bad}");
        }
    }
}
