//! `linux.resources` and `process.rlimits` from the typed resources of `HostConfig`
//! (memory, CPU, pids, block I/O weight, ulimits), as Docker's daemon maps them.

use pelagos_model::config::HostConfig;
use serde_json::{json, Map, Value};

/// The CFS period `--cpus` uses (100 ms, in µs).
pub const CPU_PERIOD: i64 = 100_000;

/// `linux.resources` without devices: only what the config sets.
pub fn resources(host: &HostConfig) -> Map<String, Value> {
    let mut res = Map::new();
    let mut memory = Map::new();
    if host.memory > 0 {
        memory.insert("limit".into(), host.memory.into());
    }
    if host.memory_swap != 0 {
        memory.insert("swap".into(), host.memory_swap.into());
    }
    if host.memory_reservation > 0 {
        memory.insert("reservation".into(), host.memory_reservation.into());
    }
    if !memory.is_empty() {
        res.insert("memory".into(), memory.into());
    }
    let cpu = cpu(host);
    if !cpu.is_empty() {
        res.insert("cpu".into(), cpu.into());
    }
    if let Some(p) = host.pids_limit {
        // Docker: 0 or -1 mean unlimited.
        res.insert("pids".into(), json!({"limit": if p <= 0 { -1 } else { p }}));
    }
    if host.blkio_weight > 0 {
        res.insert("blockIO".into(), json!({"weight": host.blkio_weight}));
    }
    res
}

fn cpu(host: &HostConfig) -> Map<String, Value> {
    let mut cpu = Map::new();
    if host.nano_cpus > 0 {
        cpu.insert("period".into(), CPU_PERIOD.into());
        cpu.insert(
            "quota".into(),
            (host.nano_cpus * CPU_PERIOD / 1_000_000_000).into(),
        );
    } else {
        if host.cpu_period > 0 {
            cpu.insert("period".into(), host.cpu_period.into());
        }
        if host.cpu_quota != 0 {
            cpu.insert("quota".into(), host.cpu_quota.into());
        }
    }
    if host.cpu_shares > 0 {
        cpu.insert("shares".into(), host.cpu_shares.into());
    }
    if !host.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), host.cpuset_cpus.clone().into());
    }
    if !host.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), host.cpuset_mems.clone().into());
    }
    cpu
}

/// `Ulimits` as OCI rlimits (`-1`: unlimited).
pub fn rlimits(host: &HostConfig) -> Vec<Value> {
    let limit = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    host.ulimits
        .iter()
        .map(|u| {
            json!({"type": format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                   "soft": limit(u.soft), "hard": limit(u.hard)})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::Ulimit;

    #[test]
    fn limits_map_to_linux_resources() {
        let host = HostConfig {
            memory: 64 << 20,
            memory_swap: -1,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(0),
            cpuset_cpus: "0".into(),
            cpu_shares: 512,
            ..Default::default()
        };
        let r = Value::Object(resources(&host));
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], -1);
        assert_eq!(r["cpu"]["quota"], 150000);
        assert_eq!(r["cpu"]["period"], 100000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0");
        assert_eq!(r["pids"]["limit"], -1);
        assert!(resources(&HostConfig::default()).is_empty());
        let quota = HostConfig {
            cpu_period: 50_000,
            cpu_quota: 25_000,
            ..Default::default()
        };
        assert_eq!(
            Value::Object(resources(&quota))["cpu"],
            json!({"period": 50000, "quota": 25000})
        );
    }

    #[test]
    fn ulimits_become_rlimits() {
        let host = HostConfig {
            ulimits: vec![
                Ulimit {
                    name: "nofile".into(),
                    soft: 1024,
                    hard: 2048,
                },
                Ulimit {
                    name: "core".into(),
                    soft: -1,
                    hard: -1,
                },
            ],
            ..Default::default()
        };
        let r = rlimits(&host);
        assert_eq!(
            r[0],
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048})
        );
        assert_eq!(r[1]["hard"], u64::MAX);
    }
}
