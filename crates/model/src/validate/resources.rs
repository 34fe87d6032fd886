//! Checks of a container's cgroup resources (memory, CPUs, cpusets, block I/O weight, OOM
//! score, /dev/shm size) against Docker's rules and this host's CPUs and memory nodes.

use crate::config::HostConfig;
use crate::error::{Error, Result};

/// Docker's minimum memory limit (and reservation).
pub const MIN_MEMORY: i64 = 6 << 20;

fn invalid(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("invalid {field}: {why}"))
}

/// The host's CPUs and memory nodes, for the resource checks.
#[derive(Debug, Clone, Default)]
pub struct HostCpus {
    /// CPUs this process may run on (Docker's `NumCPU`).
    pub count: usize,
    /// Online CPU ids.
    pub online: Vec<u32>,
    /// Online NUMA nodes.
    pub nodes: Vec<u32>,
}

/// What this host has.
pub fn host_cpus() -> HostCpus {
    let count = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|i| set.is_set(*i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1);
    let list = |path: &str, default: &str| {
        let text = std::fs::read_to_string(path).unwrap_or_else(|_| default.to_string());
        parse_cpu_list(text.trim()).unwrap_or_default()
    };
    HostCpus {
        count: count.max(1),
        online: list(
            "/sys/devices/system/cpu/online",
            &format!("0-{}", count.max(1) - 1),
        ),
        nodes: list("/sys/devices/system/node/online", "0"),
    }
}

/// A cpuset list (`0-3,5`) as ids; `None` when malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if a > b || b - a > 1 << 16 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// Checks cgroup resources (Docker's `verifyPlatformContainerResources`) against `cpus`.
pub fn check_resources(host: &HostConfig, cpus: &HostCpus) -> Result<()> {
    check_memory(host)?;
    check_cpu(host, cpus)?;
    if host.blkio_weight != 0 && !(10..=1000).contains(&host.blkio_weight) {
        return Err(invalid(
            "--blkio-weight (HostConfig.BlkioWeight)",
            "Range of blkio weight is from 10 to 1000",
        ));
    }
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(invalid(
            "--oom-score-adj (HostConfig.OomScoreAdj)",
            format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                host.oom_score_adj
            ),
        ));
    }
    if host.shm_size < 0 {
        return Err(invalid(
            "--shm-size (HostConfig.ShmSize)",
            "SHM size can not be less than 0",
        ));
    }
    Ok(())
}

fn check_memory(host: &HostConfig) -> Result<()> {
    const MEMORY: &str = "-m, --memory (HostConfig.Memory)";
    const SWAP: &str = "--memory-swap (HostConfig.MemorySwap)";
    const RESERVATION: &str = "--memory-reservation (HostConfig.MemoryReservation)";
    if host.memory < 0 {
        return Err(invalid(MEMORY, "a memory limit cannot be negative"));
    }
    if host.memory > 0 && host.memory < MIN_MEMORY {
        return Err(invalid(MEMORY, "Minimum memory limit allowed is 6MB"));
    }
    if host.memory_swap < -1 {
        return Err(invalid(SWAP, "use -1 for unlimited swap"));
    }
    if host.memory_swap > 0 && host.memory == 0 {
        return Err(invalid(
            SWAP,
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if host.memory_swap > 0 && host.memory_swap < host.memory {
        return Err(invalid(
            SWAP,
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if host.memory_reservation < 0
        || (host.memory_reservation > 0 && host.memory_reservation < MIN_MEMORY)
    {
        return Err(invalid(
            RESERVATION,
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if host.memory > 0 && host.memory_reservation > host.memory {
        return Err(invalid(
            RESERVATION,
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if let Some(s) = host.memory_swappiness.filter(|s| *s != -1) {
        if !(0..=100).contains(&s) {
            return Err(invalid(
                "--memory-swappiness (HostConfig.MemorySwappiness)",
                format!("Invalid value: {s}, valid memory swappiness range is 0-100"),
            ));
        }
    }
    Ok(())
}

fn check_cpu(host: &HostConfig, cpus: &HostCpus) -> Result<()> {
    const CPUS: &str = "--cpus (HostConfig.NanoCpus)";
    let n = cpus.count;
    if host.nano_cpus != 0 && !(10_000_000..=n as i64 * 1_000_000_000).contains(&host.nano_cpus) {
        return Err(invalid(
            CPUS,
            format!("Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"),
        ));
    }
    if host.nano_cpus > 0 && host.cpu_period > 0 {
        return Err(invalid(
            CPUS,
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if host.nano_cpus > 0 && host.cpu_quota > 0 {
        return Err(invalid(
            CPUS,
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(invalid(
            "--cpu-period (HostConfig.CpuPeriod)",
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if host.cpu_quota != 0 && host.cpu_quota != -1 && host.cpu_quota < 1000 {
        return Err(invalid(
            "--cpu-quota (HostConfig.CpuQuota)",
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    if host.cpu_shares < 0 {
        return Err(invalid(
            "-c, --cpu-shares (HostConfig.CpuShares)",
            format!(
                "invalid CPU shares ({}): value must be a positive integer",
                host.cpu_shares
            ),
        ));
    }
    let sets = [
        (
            "--cpuset-cpus (HostConfig.CpusetCpus)",
            &host.cpuset_cpus,
            &cpus.online,
            "cpus",
            "CPUs",
        ),
        (
            "--cpuset-mems (HostConfig.CpusetMems)",
            &host.cpuset_mems,
            &cpus.nodes,
            "mems",
            "memory nodes",
        ),
    ];
    for (field, asked, available, short, long) in sets {
        if asked.is_empty() {
            continue;
        }
        let ids = parse_cpu_list(asked)
            .ok_or_else(|| invalid(field, format!("Invalid value {asked} for cpuset {short}")))?;
        if ids.iter().any(|i| !available.contains(i)) {
            return Err(invalid(
                field,
                format!(
                    "Requested {long} are not available - requested {asked}, available: {}",
                    format_cpu_list(available)
                ),
            ));
        }
    }
    Ok(())
}

/// Ids as a cpuset list (`0-3,5`).
fn format_cpu_list(ids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        out.push(if start == ids[i] {
            start.to_string()
        } else {
            format!("{start}-{}", ids[i])
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_with(f: impl FnOnce(&mut HostConfig)) -> HostConfig {
        let mut h = HostConfig::default();
        f(&mut h);
        h
    }

    #[test]
    fn resources() {
        let cpus = HostCpus {
            count: 2,
            online: vec![0, 1],
            nodes: vec![0],
        };
        let check = |f: fn(&mut HostConfig)| check_resources(&host_with(f), &cpus);
        check(|h| {
            h.memory = 64 << 20;
            h.memory_swap = -1;
            h.nano_cpus = 1_500_000_000;
            h.cpuset_cpus = "0-1".into();
        })
        .unwrap();
        let e = check(|h| h.memory = 1 << 20).unwrap_err().to_string();
        assert!(
            e.contains("--memory") && e.contains("Minimum memory limit allowed is 6MB"),
            "{e}"
        );
        let e = check(|h| {
            h.memory = 64 << 20;
            h.memory_swap = 32 << 20;
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("larger than memory limit"), "{e}");
        assert!(check(|h| h.memory_swap = 64 << 20).is_err());
        let e = check(|h| h.nano_cpus = 3_000_000_000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Range of CPUs is from 0.01 to 2.00"), "{e}");
        assert!(check(|h| h.nano_cpus = 1_000_000).is_err());
        assert!(check(|h| {
            h.nano_cpus = 1_000_000_000;
            h.cpu_quota = 50_000;
        })
        .is_err());
        let e = check(|h| h.cpuset_cpus = "0-7".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("requested 0-7, available: 0-1"), "{e}");
        assert!(check(|h| h.cpuset_cpus = "x".into()).is_err());
        assert!(check(|h| h.oom_score_adj = 1001).is_err());
        assert!(check(|h| h.shm_size = -1).is_err());
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
