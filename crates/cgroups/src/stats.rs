//! Resource usage of a cgroup read from its v2 interface files; every part is optional because
//! the files exist only when the controller is enabled (cpu.stat's usage is always there).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::CgroupError;
use crate::fsutil::{parse_flat_keyed, parse_max, read_opt};

/// Usage statistics of one cgroup (including its descendants).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
    pub pids: Option<PidsStats>,
    /// `io.stat`, one entry per device.
    pub io: Option<Vec<IoStat>>,
    /// Keyed by page size as in the file names ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

/// `cpu.stat`; the throttling fields need the cpu controller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    pub nr_periods: Option<u64>,
    pub nr_throttled: Option<u64>,
    pub throttled_usec: Option<u64>,
}

/// memory.current, memory.peak, memory.swap.current, memory.max, memory.stat, memory.events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub current: Option<u64>,
    pub peak: Option<u64>,
    pub swap_current: Option<u64>,
    /// `None` means "max".
    pub limit: Option<u64>,
    pub stat: BTreeMap<String, u64>,
    pub events: Option<MemoryEvents>,
}

/// `memory.events` (hierarchical counts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
}

/// pids.current and pids.max (`None` for "max").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

/// One line of `io.stat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStat {
    pub major: u32,
    pub minor: u32,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
    pub dbytes: u64,
    pub dios: u64,
}

/// hugetlb.<size>.current, .max (`None` for "max") and the `max` count of .events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub current: u64,
    pub limit: Option<u64>,
    pub failcnt: u64,
}

fn num(dir: &Path, file: &str) -> Result<Option<u64>, CgroupError> {
    Ok(read_opt(&dir.join(file))?.and_then(|t| t.trim().parse().ok()))
}

/// Read all statistics of the cgroup at `dir`.
pub(crate) fn read(dir: &Path) -> Result<Stats, CgroupError> {
    if !dir.is_dir() {
        return Err(CgroupError::io(
            "read statistics of",
            dir,
            std::io::Error::from_raw_os_error(libc::ENOENT),
        ));
    }
    let mut s = Stats::default();
    if let Some(t) = read_opt(&dir.join("cpu.stat"))? {
        let m = parse_flat_keyed(&t);
        let g = |k: &str| m.get(k).copied();
        s.cpu = Some(CpuStats {
            usage_usec: g("usage_usec").unwrap_or(0),
            user_usec: g("user_usec").unwrap_or(0),
            system_usec: g("system_usec").unwrap_or(0),
            nr_periods: g("nr_periods"),
            nr_throttled: g("nr_throttled"),
            throttled_usec: g("throttled_usec"),
        });
    }
    if let Some(current) = num(dir, "memory.current")? {
        s.memory = Some(MemoryStats {
            current: Some(current),
            peak: num(dir, "memory.peak")?,
            swap_current: num(dir, "memory.swap.current")?,
            limit: read_opt(&dir.join("memory.max"))?
                .as_deref()
                .and_then(parse_max),
            stat: read_opt(&dir.join("memory.stat"))?
                .map(|t| parse_flat_keyed(&t))
                .unwrap_or_default(),
            events: memory_events(dir)?,
        });
    }
    if let Some(current) = num(dir, "pids.current")? {
        s.pids = Some(PidsStats {
            current,
            limit: read_opt(&dir.join("pids.max"))?
                .as_deref()
                .and_then(parse_max),
        });
    }
    if let Some(t) = read_opt(&dir.join("io.stat"))? {
        s.io = Some(parse_io_stat(&t));
    }
    for entry in std::fs::read_dir(dir).map_err(|e| CgroupError::io("list", dir, e))? {
        let entry = entry.map_err(|e| CgroupError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(size) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugetlb."))
            .and_then(|n| n.strip_suffix(".current"))
        else {
            continue;
        };
        if size.contains('.') {
            continue; // hugetlb.<size>.rsvd.current
        }
        let events = read_opt(&dir.join(format!("hugetlb.{size}.events")))?
            .map(|t| parse_flat_keyed(&t))
            .unwrap_or_default();
        s.hugetlb.insert(
            size.to_owned(),
            HugetlbStats {
                current: num(dir, &format!("hugetlb.{size}.current"))?.unwrap_or(0),
                limit: read_opt(&dir.join(format!("hugetlb.{size}.max")))?
                    .as_deref()
                    .and_then(parse_max),
                failcnt: events.get("max").copied().unwrap_or(0),
            },
        );
    }
    Ok(s)
}

/// `memory.events`, or `None` when the memory controller is not enabled.
pub(crate) fn memory_events(dir: &Path) -> Result<Option<MemoryEvents>, CgroupError> {
    Ok(read_opt(&dir.join("memory.events"))?.map(|t| {
        let m = parse_flat_keyed(&t);
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        MemoryEvents {
            low: g("low"),
            high: g("high"),
            max: g("max"),
            oom: g("oom"),
            oom_kill: g("oom_kill"),
        }
    }))
}

/// Parse `io.stat`: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per line.
fn parse_io_stat(text: &str) -> Vec<IoStat> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            continue;
        };
        let mut st = IoStat {
            major,
            minor,
            ..Default::default()
        };
        for kv in parts {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => st.rbytes = v,
                "wbytes" => st.wbytes = v,
                "rios" => st.rios = v,
                "wios" => st.wios = v,
                "dbytes" => st.dbytes = v,
                "dios" => st.dios = v,
                _ => {}
            }
        }
        out.push(st);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_stat() {
        let v = parse_io_stat(
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=5\n",
        );
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].major, v[0].minor, v[0].rbytes, v[0].wios),
            (8, 0, 10, 2)
        );
        assert_eq!((v[1].major, v[1].minor, v[1].rbytes), (253, 1, 5));
    }

    #[test]
    fn reads_a_fake_cgroup() {
        let dir = std::env::temp_dir().join(format!("pelagos-stats-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = [
            ("cpu.stat", "usage_usec 100\nuser_usec 60\nsystem_usec 40\nnr_periods 5\nnr_throttled 1\nthrottled_usec 7\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.stat", "anon 1\nfile 2\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n"),
            ("pids.current", "3\n"),
            ("pids.max", "100\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.rsvd.current", "0\n"),
            ("hugetlb.2MB.events", "max 4\n"),
        ];
        for (f, c) in files {
            std::fs::write(dir.join(f), c).unwrap();
        }
        let s = read(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let cpu = s.cpu.unwrap();
        assert_eq!(
            (cpu.usage_usec, cpu.nr_throttled, cpu.throttled_usec),
            (100, Some(1), Some(7))
        );
        let mem = s.memory.unwrap();
        assert_eq!((mem.current, mem.peak, mem.limit), (Some(4096), None, None));
        assert_eq!(mem.events.unwrap().oom_kill, 1);
        assert_eq!(mem.stat.get("file"), Some(&2));
        assert_eq!(
            s.pids,
            Some(PidsStats {
                current: 3,
                limit: Some(100)
            })
        );
        assert!(s.io.is_none());
        assert_eq!(s.hugetlb.len(), 1);
        assert_eq!(
            s.hugetlb["2MB"],
            HugetlbStats {
                current: 0,
                limit: None,
                failcnt: 4
            }
        );
    }
}
