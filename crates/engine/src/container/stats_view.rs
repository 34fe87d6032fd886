//! Docker's stats JSON (`GET /containers/X/stats`) from samples of a container's cgroup, in
//! the shape moby gives on cgroup v2 (nanoseconds of CPU, `memory.stat` as `stats`).

use std::time::SystemTime;

use pelagos_model::record::ContainerRecord;
use serde_json::{json, Value};

use crate::error::Result;
use crate::Engine;

/// One sample of a running container's usage.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was taken.
    pub read: SystemTime,
    pub cgroup: pelagos_cgroups::Stats,
    /// The host's CPU time (all fields of /proc/stat's `cpu` line), in nanoseconds.
    pub system_cpu_ns: u64,
    /// The container's interfaces (not `lo`) with their counters, from its /proc/PID/net/dev.
    pub networks: Vec<(String, [u64; 8])>,
}

/// Samples the container (a conflict when it is not running).
pub fn sample(engine: &Engine, name_or_id: &str) -> Result<(ContainerRecord, Sample)> {
    let (record, cgroup) = super::stats::stats(engine, name_or_id)?;
    let sample = Sample {
        read: SystemTime::now(),
        cgroup,
        system_cpu_ns: system_cpu_ns().unwrap_or(0),
        networks: net_dev(record.state.pid),
    };
    Ok((record, sample))
}

/// Docker's stats object of `now`, `before` giving `precpu_stats` and `preread`.
pub fn docker_json(record: &ContainerRecord, now: &Sample, before: Option<&Sample>) -> Value {
    let mut v = json!({
        "name": format!("/{}", record.name),
        "id": record.id.as_str(),
        "read": rfc3339(Some(now.read)),
        "preread": rfc3339(before.map(|b| b.read)),
        "pids_stats": pids_json(now),
        "blkio_stats": blkio_json(now),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(Some(now)),
        "precpu_stats": cpu_json(before),
        "memory_stats": memory_json(now),
    });
    if !now.networks.is_empty() {
        v["networks"] = networks_json(&now.networks);
    }
    v
}

/// moby's answer for a container that is not running: the zero object with its name and id.
pub fn zeroed(record: &ContainerRecord) -> Value {
    json!({
        "name": format!("/{}", record.name),
        "id": record.id.as_str(),
        "read": rfc3339(None),
        "preread": rfc3339(None),
        "pids_stats": {},
        "blkio_stats": blkio_entries(Value::Null),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_json(None),
        "precpu_stats": cpu_json(None),
        "memory_stats": {},
    })
}

/// Go's zero time for a missing sample, as moby marshals it.
fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => humantime::format_rfc3339_nanos(t).to_string(),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn cpu_json(s: Option<&Sample>) -> Value {
    let cpu = s.and_then(|s| s.cgroup.cpu.clone()).unwrap_or_default();
    let mut v = json!({
        "cpu_usage": {
            "total_usage": cpu.usage_usec * 1000,
            "usage_in_kernelmode": cpu.system_usec * 1000,
            "usage_in_usermode": cpu.user_usec * 1000,
        },
        "throttling_data": {
            "periods": cpu.nr_periods.unwrap_or(0),
            "throttled_periods": cpu.nr_throttled.unwrap_or(0),
            "throttled_time": cpu.throttled_usec.unwrap_or(0) * 1000,
        },
    });
    if let Some(s) = s {
        v["system_cpu_usage"] = json!(s.system_cpu_ns);
        v["online_cpus"] = json!(online_cpus());
    }
    v
}

fn memory_json(s: &Sample) -> Value {
    let Some(m) = &s.cgroup.memory else {
        return json!({});
    };
    // No limit of its own: the machine's memory, as moby reports.
    let machine = machine_memory();
    let limit = match m.limit {
        Some(l) if machine == 0 || l <= machine => l,
        _ => machine,
    };
    json!({
        "usage": m.current.unwrap_or(0),
        "stats": m.stat,
        "limit": limit,
    })
}

fn pids_json(s: &Sample) -> Value {
    match &s.cgroup.pids {
        Some(p) => match p.limit {
            Some(limit) => json!({"current": p.current, "limit": limit}),
            None => json!({"current": p.current}),
        },
        None => json!({}),
    }
}

fn blkio_json(s: &Sample) -> Value {
    let Some(io) = &s.cgroup.io else {
        return blkio_entries(Value::Null);
    };
    let entries: Vec<Value> = io
        .iter()
        .flat_map(|d| {
            [("read", d.rbytes), ("write", d.wbytes)].map(
                |(op, value)| json!({"major": d.major, "minor": d.minor, "op": op, "value": value}),
            )
        })
        .collect();
    blkio_entries(Value::Array(entries))
}

/// moby's blkio object on cgroup v2: bytes read and written, the v1-only lists null.
fn blkio_entries(service_bytes: Value) -> Value {
    json!({
        "io_service_bytes_recursive": service_bytes,
        "io_serviced_recursive": null,
        "io_queue_recursive": null,
        "io_service_time_recursive": null,
        "io_wait_time_recursive": null,
        "io_merged_recursive": null,
        "io_time_recursive": null,
        "sectors_recursive": null,
    })
}

fn networks_json(nets: &[(String, [u64; 8])]) -> Value {
    let mut map = serde_json::Map::new();
    for (name, c) in nets {
        map.insert(
            name.clone(),
            json!({
                "rx_bytes": c[0], "rx_packets": c[1], "rx_errors": c[2], "rx_dropped": c[3],
                "tx_bytes": c[4], "tx_packets": c[5], "tx_errors": c[6], "tx_dropped": c[7],
            }),
        );
    }
    Value::Object(map)
}

/// The host's CPU time in nanoseconds: moby's `getSystemCPUUsage` (USER_HZ ticks).
fn system_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|h| *h > 0)?;
    Some(ticks * (1_000_000_000 / hz))
}

fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}

/// MemTotal of /proc/meminfo in bytes (0 when unreadable).
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

/// The counters of each interface but `lo` in the container's network namespace.
fn net_dev(pid: i32) -> Vec<(String, [u64; 8])> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(parse_net_dev_line)
        .collect()
}

/// `eth0: rx_bytes rx_packets rx_errs rx_drop fifo frame compressed multicast tx_bytes
/// tx_packets tx_errs tx_drop …`.
fn parse_net_dev_line(line: &str) -> Option<(String, [u64; 8])> {
    let (name, rest) = line.split_once(':')?;
    let name = name.trim();
    if name == "lo" {
        return None;
    }
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() < 12 {
        return None;
    }
    Some((
        name.to_owned(),
        [f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11]],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_lines_as_docker_counts_them() {
        let line = "  eth0:    1500      10    1    2    0     0          0         0     900       7    3    4    0     0       0          0";
        let (name, c) = parse_net_dev_line(line).unwrap();
        assert_eq!(name, "eth0");
        assert_eq!(c, [1500, 10, 1, 2, 900, 7, 3, 4]);
        assert!(parse_net_dev_line("    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16").is_none());
    }

    #[test]
    fn a_stopped_container_gets_the_zero_object() {
        let mut record =
            ContainerRecord::new(pelagos_model::names::new_container_id().unwrap(), "box");
        record.name = "web".into();
        let v = zeroed(&record);
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["cpu_stats"].get("system_cpu_usage").is_none());
    }
}
