//! `docker run` flags that become mounts, rlimits and cgroup limits: `-v` (host paths; volume
//! names are turned into their directories by `run.rs` first), `--mount`,
//! `--tmpfs`, `--ulimit`, `--memory`, `--memory-swap`, `--cpus`, `--cpu-shares`,
//! `--cpuset-cpus`, `--pids-limit`, `--shm-size`, parsed with Docker's syntax and errors.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};

fn bad(flag: &str, value: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidOption(format!("invalid {flag} {value:?}: {why}"))
}

/// Docker's byte sizes (`512`, `64m`, `1.5g`; binary units), never negative here.
pub fn parse_bytes(flag: &str, text: &str) -> Result<i64> {
    match pelagos_cgroups::parse_size(text) {
        Some(n) if n >= 0 => Ok(n),
        Some(_) => Err(bad(flag, text, "a size cannot be negative")),
        None => Err(bad(flag, text, "expected a size such as 512, 64m or 1.5g")),
    }
}

const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// A bind mount of the spec, with Docker's defaults (recursive, rprivate).
fn bind(source: &str, destination: &str, readonly: bool, propagation: Option<&str>) -> Value {
    let mut options = vec![
        "rbind".to_string(),
        propagation.unwrap_or("rprivate").to_string(),
    ];
    if readonly {
        options.push("ro".into());
    }
    json!({"destination": destination, "type": "bind", "source": source, "options": options})
}

fn check_destination(flag: &str, value: &str, dest: &str) -> Result<()> {
    if !dest.starts_with('/') {
        return Err(bad(
            flag,
            value,
            format!("the container path {dest:?} must be absolute"),
        ));
    }
    if dest == "/" {
        return Err(bad(flag, value, "cannot mount over the container's root"));
    }
    Ok(())
}

/// `-v /host:/ctr[:opts]`. The host directory is created when missing (Docker's legacy
/// behaviour for `-v`).
pub fn volume(value: &str) -> Result<Value> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, dest, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        [_] => {
            return Err(bad(
                "-v",
                value,
                "expected HOST:CONTAINER (anonymous and named volumes are made by the engine)",
            ))
        }
        _ => return Err(bad("-v", value, "expected HOST:CONTAINER[:OPTIONS]")),
    };
    if !source.starts_with('/') {
        return Err(bad(
            "-v",
            value,
            format!(
                "{source:?} is not an absolute host path (named volumes are not supported yet)"
            ),
        ));
    }
    check_destination("-v", value, dest)?;
    let mut readonly = false;
    let mut propagation = None;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling: no SELinux here.
            "z" | "Z" => {}
            p if PROPAGATIONS.contains(&p) => propagation = Some(p),
            other => return Err(bad("-v", value, format!("unknown option {other:?}"))),
        }
    }
    if !Path::new(source).exists() {
        std::fs::create_dir_all(source)
            .map_err(|e| Error::io(format!("create host directory {source} for -v"), e))?;
    }
    Ok(bind(source, dest, readonly, propagation))
}

/// `--mount type=bind|tmpfs,source=..,target=..,readonly,...`.
pub fn mount(value: &str) -> Result<Value> {
    let mut kind = "volume";
    let (mut source, mut target, mut readonly, mut propagation) = (None, None, false, None);
    let mut tmpfs_size = None;
    let mut tmpfs_mode = None;
    for field in value.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => source = Some(v),
            "target" | "destination" | "dst" => target = Some(v),
            "readonly" | "ro" => readonly = matches!(v, "" | "true" | "1"),
            "bind-propagation" if PROPAGATIONS.contains(&v) => propagation = Some(v),
            "tmpfs-size" => tmpfs_size = Some(parse_bytes("--mount tmpfs-size", v)?),
            "tmpfs-mode" => {
                tmpfs_mode = Some(
                    u32::from_str_radix(v, 8)
                        .map_err(|_| bad("--mount", value, "tmpfs-mode is an octal mode"))?,
                )
            }
            _ => return Err(bad("--mount", value, format!("unknown field {k:?}"))),
        }
    }
    let target = target.ok_or_else(|| bad("--mount", value, "target is required"))?;
    check_destination("--mount", value, target)?;
    match kind {
        "bind" => {
            let source = source.ok_or_else(|| bad("--mount", value, "source is required"))?;
            if !Path::new(source).exists() {
                return Err(bad(
                    "--mount",
                    value,
                    format!("bind source path does not exist: {source}"),
                ));
            }
            Ok(bind(source, target, readonly, propagation))
        }
        "tmpfs" => {
            let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
            if let Some(size) = tmpfs_size {
                options.push(format!("size={size}"));
            }
            if let Some(mode) = tmpfs_mode {
                options.push(format!("mode={mode:o}"));
            }
            if readonly {
                options.push("ro".into());
            }
            Ok(
                json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": options}),
            )
        }
        other => Err(bad(
            "--mount",
            value,
            format!("type {other:?} is not supported yet (bind and tmpfs are)"),
        )),
    }
}

/// `--tmpfs /path[:opts]`, with Docker's defaults `noexec,nosuid,nodev`.
pub fn tmpfs(value: &str) -> Result<Value> {
    let (dest, opts) = value.split_once(':').unwrap_or((value, ""));
    check_destination("--tmpfs", value, dest)?;
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        if let Some(opp) = opposite {
            options.retain(|x| x != opp);
        }
        options.push(o.to_string());
    }
    Ok(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}))
}

/// `--ulimit name=soft[:hard]` → an OCI rlimit.
pub fn ulimit(value: &str) -> Result<Value> {
    let (name, limits) = value
        .split_once('=')
        .ok_or_else(|| bad("--ulimit", value, "expected NAME=SOFT[:HARD]"))?;
    const NAMES: [&str; 16] = [
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
    if !NAMES.contains(&name) {
        return Err(bad("--ulimit", value, format!("unknown resource {name:?}")));
    }
    let parse = |s: &str| -> Result<u64> {
        if s == "-1" || s == "unlimited" {
            return Ok(u64::MAX);
        }
        s.parse()
            .map_err(|_| bad("--ulimit", value, format!("{s:?} is not a number")))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (parse(s)?, parse(h)?),
        None => {
            let v = parse(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(bad(
            "--ulimit",
            value,
            "the soft limit is above the hard limit",
        ));
    }
    Ok(json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()), "soft": soft, "hard": hard}))
}

/// The cgroup limits of `docker run`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// `--memory`.
    pub memory: Option<String>,
    /// `--memory-swap` (memory + swap, `-1` unlimited).
    pub memory_swap: Option<String>,
    /// `--cpus`.
    pub cpus: Option<String>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
}

/// `linux.resources` for the limits (without devices), or `None` when none was asked.
pub fn resources(l: &Limits) -> Result<Option<Value>> {
    let mut res = serde_json::Map::new();
    let mut memory = serde_json::Map::new();
    if let Some(m) = &l.memory {
        let bytes = parse_bytes("--memory", m)?;
        if bytes < 6 << 20 {
            return Err(bad("--memory", m, "the minimum memory limit is 6m"));
        }
        memory.insert("limit".into(), bytes.into());
    }
    if let Some(s) = &l.memory_swap {
        let swap = if s.trim() == "-1" {
            -1
        } else {
            parse_bytes("--memory-swap", s)?
        };
        if l.memory.is_none() {
            return Err(bad("--memory-swap", s, "needs --memory as well"));
        }
        memory.insert("swap".into(), swap.into());
    }
    if !memory.is_empty() {
        res.insert("memory".into(), memory.into());
    }
    let mut cpu = serde_json::Map::new();
    if let Some(c) = &l.cpus {
        let n: f64 = c
            .parse()
            .map_err(|_| bad("--cpus", c, "expected a number of CPUs such as 1.5"))?;
        if !n.is_finite() || n <= 0.0 {
            return Err(bad("--cpus", c, "must be more than 0"));
        }
        cpu.insert("period".into(), 100_000u64.into());
        cpu.insert("quota".into(), ((n * 100_000.0) as i64).into());
    }
    if let Some(s) = l.cpu_shares {
        cpu.insert("shares".into(), s.into());
    }
    if let Some(c) = &l.cpuset_cpus {
        cpu.insert("cpus".into(), c.clone().into());
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = l.pids_limit {
        // Docker: 0 or -1 mean unlimited.
        res.insert("pids".into(), json!({"limit": if p <= 0 { -1 } else { p }}));
    }
    Ok((!res.is_empty()).then_some(Value::Object(res)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("x", "64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("x", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("x", "512").unwrap(), 512);
        assert_eq!(parse_bytes("x", "2kb").unwrap(), 2048);
        assert!(parse_bytes("--memory", "lots")
            .unwrap_err()
            .to_string()
            .contains("--memory"));
    }

    #[test]
    fn volumes_and_mounts() {
        let d = tempfile::tempdir().unwrap();
        let host = d.path().join("made-by-v");
        let v = volume(&format!("{}:/data:ro", host.display())).unwrap();
        assert!(host.is_dir(), "-v creates the host directory");
        assert_eq!(v["options"], json!(["rbind", "rprivate", "ro"]));
        assert!(volume("named:/data")
            .unwrap_err()
            .to_string()
            .contains("named volumes"));
        assert!(volume("/x:relative").is_err());
        assert!(volume("/x:/y:bogus")
            .unwrap_err()
            .to_string()
            .contains("bogus"));
        let m = mount(&format!(
            "type=bind,source={},target=/d,readonly",
            d.path().display()
        ))
        .unwrap();
        assert_eq!(m["options"], json!(["rbind", "rprivate", "ro"]));
        assert!(mount("type=bind,source=/does/not/exist,target=/d")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let t = mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777").unwrap();
        assert_eq!(
            t["options"],
            json!(["nosuid", "nodev", "size=1048576", "mode=1777"])
        );
        assert!(mount("type=volume,target=/v").is_err());
        let t = tmpfs("/run:exec,size=1m").unwrap();
        assert_eq!(t["options"], json!(["nosuid", "nodev", "exec", "size=1m"]));
    }

    #[test]
    fn ulimits_and_limits() {
        assert_eq!(
            ulimit("nofile=1024:2048").unwrap(),
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048})
        );
        assert!(ulimit("nofile=4:2").is_err());
        assert!(ulimit("bogus=1").is_err());
        let r = resources(&Limits {
            memory: Some("64m".into()),
            cpus: Some("1.5".into()),
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150000);
        assert_eq!(r["pids"]["limit"], -1);
        assert!(resources(&Limits::default()).unwrap().is_none());
        assert!(resources(&Limits {
            memory: Some("1m".into()),
            ..Default::default()
        })
        .is_err());
    }
}
