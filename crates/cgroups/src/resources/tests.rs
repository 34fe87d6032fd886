//! Tests of the resource planner: validation errors, unavailable controllers and the exact file
//! contents written into a directory that stands in for a cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxPids, LinuxRdma, LinuxResources,
    LinuxThrottleDevice, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

use super::*;

fn host(controllers: &[&str]) -> HostInfo {
    HostInfo {
        mount: PathBuf::from("/sys/fs/cgroup/unified"),
        controllers: controllers.iter().map(|s| s.to_string()).collect(),
        hugepage_sizes: vec!["1GB".into(), "2MB".into()],
    }
}

fn full_host() -> HostInfo {
    host(KNOWN_CONTROLLERS)
}

fn mem(f: impl FnOnce(&mut LinuxMemory)) -> LinuxResources {
    let mut m = LinuxMemory::default();
    f(&mut m);
    let mut r = LinuxResources::default();
    r.set_memory(Some(m));
    r
}

fn cpu(f: impl FnOnce(&mut LinuxCpu)) -> LinuxResources {
    let mut c = LinuxCpu::default();
    f(&mut c);
    let mut r = LinuxResources::default();
    r.set_cpu(Some(c));
    r
}

fn err(res: &LinuxResources) -> String {
    plan(res, &full_host(), false).unwrap_err().to_string()
}

/// A directory standing in for a cgroup, with empty interface files.
struct FakeCgroup(PathBuf);

impl FakeCgroup {
    fn new(name: &str, files: &[&str]) -> FakeCgroup {
        let dir = std::env::temp_dir().join(format!("pelagos-cg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in files {
            std::fs::write(dir.join(f), "").unwrap();
        }
        FakeCgroup(dir)
    }
    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.0.join(f)).unwrap()
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for FakeCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unavailable_controller_is_an_error_naming_it() {
    let hybrid = host(&["hugetlb"]);
    let res = mem(|m| {
        m.set_limit(Some(1 << 20));
    });
    let e = plan(&res, &hybrid, false).unwrap_err().to_string();
    assert_eq!(
        e,
        "cgroup v2 controller \"memory\" is not available on this host (/sys/fs/cgroup/unified offers: hugetlb); \
         cannot apply linux.resources.memory.limit"
    );
    let p = plan(&res, &hybrid, true).unwrap();
    assert!(p.writes.is_empty());
    assert_eq!(p.warnings.len(), 1);
    assert!(
        p.warnings[0].contains("\"memory\"") && p.warnings[0].contains("memory.limit"),
        "{:?}",
        p.warnings
    );

    let none = host(&[]);
    let e = plan(&res, &none, false).unwrap_err().to_string();
    assert!(e.contains("offers: none"), "{e}");

    let cases: Vec<(LinuxResources, &str, &str)> = vec![
        (
            cpu(|c| {
                c.set_shares(Some(512));
            }),
            "cpu",
            "cpu.shares",
        ),
        (
            cpu(|c| {
                c.set_quota(Some(50_000));
                c.set_period(Some(100_000));
            }),
            "cpu",
            "cpu.quota",
        ),
        (
            cpu(|c| {
                c.set_cpus(Some("0-1".into()));
            }),
            "cpuset",
            "cpu.cpus",
        ),
        (
            {
                let mut r = LinuxResources::default();
                r.set_pids(Some({
                    let mut p = LinuxPids::default();
                    p.set_limit(10);
                    p
                }));
                r
            },
            "pids",
            "pids.limit",
        ),
        (
            {
                let mut r = LinuxResources::default();
                r.set_block_io(Some({
                    let mut b = LinuxBlockIo::default();
                    b.set_weight(Some(100));
                    b
                }));
                r
            },
            "io",
            "blockIO.weight",
        ),
        (
            {
                let mut r = LinuxResources::default();
                r.set_unified(Some(HashMap::from([(
                    "misc.max".to_string(),
                    "res_a 1".to_string(),
                )])));
                r
            },
            "misc",
            "unified[\"misc.max\"]",
        ),
    ];
    for (res, ctrl, field) in cases {
        let e = plan(&res, &hybrid, false).unwrap_err().to_string();
        assert!(
            e.contains(&format!("controller \"{ctrl}\"")) && e.contains(field),
            "{e}"
        );
        assert_eq!(plan(&res, &hybrid, true).unwrap().warnings.len(), 1);
    }

    // Unlimited values need no controller: nothing is restricted either way.
    let unlimited = mem(|m| {
        m.set_limit(Some(-1));
    });
    let p = plan(&unlimited, &hybrid, false).unwrap();
    assert!(p.writes.is_empty() && p.warnings.is_empty());
}

#[test]
fn hugetlb_is_checked_against_page_sizes() {
    let hybrid = host(&["hugetlb"]);
    let mut res = LinuxResources::default();
    let mut h = LinuxHugepageLimit::default();
    h.set_page_size("2MB".into());
    h.set_limit(4 << 20);
    res.set_hugepage_limits(Some(vec![h.clone()]));
    let p = plan(&res, &hybrid, false).unwrap();
    assert_eq!(p.writes.len(), 2);
    assert_eq!(
        (p.writes[0].file.as_str(), p.writes[0].value.as_str()),
        ("hugetlb.2MB.max", "4194304")
    );
    assert_eq!(p.writes[1].kind, Kind::Optional);
    h.set_page_size("3MB".into());
    res.set_hugepage_limits(Some(vec![h.clone()]));
    let e = plan(&res, &hybrid, false).unwrap_err().to_string();
    assert!(
        e.contains("hugepageLimits[0].pageSize") && e.contains("\"3MB\"") && e.contains("1GB 2MB"),
        "{e}"
    );
    h.set_page_size("2MB".into());
    h.set_limit(-5);
    res.set_hugepage_limits(Some(vec![h]));
    assert!(plan(&res, &hybrid, false)
        .unwrap_err()
        .to_string()
        .contains("hugepageLimits[0].limit"));
}

#[test]
fn value_validation() {
    let e = err(&mem(|m| {
        m.set_limit(Some(-2));
    }));
    assert!(
        e.contains("linux.resources.memory.limit") && e.contains("-2"),
        "{e}"
    );
    let e = err(&mem(|m| {
        m.set_reservation(Some(-3));
    }));
    assert!(e.contains("memory.reservation"), "{e}");
    let e = err(&mem(|m| {
        m.set_limit(Some(2000));
        m.set_swap(Some(1000));
    }));
    assert!(
        e.contains("memory.swap") && e.contains("must not be lower"),
        "{e}"
    );
    let e = err(&mem(|m| {
        m.set_swap(Some(1000));
    }));
    assert!(
        e.contains("memory.swap") && e.contains("memory.limit"),
        "{e}"
    );
    let e = err(&mem(|m| {
        m.set_limit(Some(2000));
        m.set_swap(Some(-7));
    }));
    assert!(e.contains("memory.swap"), "{e}");
    let e = err(&mem(|m| {
        m.set_disable_oom_killer(Some(true));
    }));
    assert!(e.contains("disableOOMKiller"), "{e}");
    assert!(plan(
        &mem(|m| {
            m.set_disable_oom_killer(Some(false));
        }),
        &full_host(),
        false
    )
    .is_ok());

    let e = err(&cpu(|c| {
        c.set_quota(Some(50_000));
    }));
    assert!(e.contains("cpu.quota") && e.contains("cpu.period"), "{e}");
    let e = err(&cpu(|c| {
        c.set_quota(Some(50_000));
        c.set_period(Some(10));
    }));
    assert!(e.contains("cpu.period"), "{e}");
    let e = err(&cpu(|c| {
        c.set_quota(Some(10));
        c.set_period(Some(100_000));
    }));
    assert!(e.contains("cpu.quota"), "{e}");
    let e = err(&cpu(|c| {
        c.set_idle(Some(2));
    }));
    assert!(e.contains("cpu.idle"), "{e}");
    let e = err(&cpu(|c| {
        c.set_cpus(Some("0-3; rm -rf".into()));
    }));
    assert!(e.contains("cpu.cpus"), "{e}");

    let mut r = LinuxResources::default();
    let mut b = LinuxBlockIo::default();
    b.set_weight(Some(5));
    r.set_block_io(Some(b));
    assert!(err(&r).contains("blockIO.weight"));
    let mut b = LinuxBlockIo::default();
    let t = LinuxThrottleDeviceBuilder::default()
        .major(-1)
        .minor(0)
        .rate(1u64)
        .build()
        .unwrap();
    b.set_throttle_read_bps_device(Some(vec![t]));
    r.set_block_io(Some(b));
    assert!(err(&r).contains("blockIO.throttleReadBpsDevice[0]"));
}

#[test]
fn unified_keys() {
    let one = |k: &str| {
        let mut r = LinuxResources::default();
        r.set_unified(Some(HashMap::from([(k.to_string(), "1".to_string())])));
        r
    };
    for bad in [
        "memory",
        "../memory.max",
        "memory/x",
        "foo.max",
        "cgroup.procs",
        "cgroup.subtree_control",
        ".max",
        "memory.",
    ] {
        let e = err(&one(bad));
        assert!(
            e.contains(&format!("linux.resources.unified[{bad:?}]")),
            "{e}"
        );
    }
    for good in [
        "memory.high",
        "cpu.weight.nice",
        "misc.max",
        "cgroup.max.depth",
    ] {
        let p = plan(&one(good), &full_host(), false).unwrap();
        assert_eq!(p.writes[0].file, good);
    }
    // Core files need no controller even on a bare host.
    assert!(plan(&one("cgroup.max.descendants"), &host(&[]), false).is_ok());
}

#[test]
fn v1_only_settings_warn() {
    let mut r = mem(|m| {
        m.set_swappiness(Some(10));
        m.set_kernel_tcp(Some(1));
    });
    let mut c = LinuxCpu::default();
    c.set_realtime_runtime(Some(1000));
    r.set_cpu(Some(c));
    let p = plan(&r, &host(&[]), false).unwrap();
    assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
    assert!(p.writes.is_empty());
}

#[test]
fn conversions() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(shares_to_weight(1 << 40), 10_000);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
    assert_eq!(blkio_to_io_weight(500), 4950);
}

#[test]
fn writes_exact_files() {
    let mut res = mem(|m| {
        m.set_limit(Some(256 << 20));
        m.set_reservation(Some(128 << 20));
        m.set_swap(Some(512 << 20));
    });
    let mut c = LinuxCpu::default();
    c.set_shares(Some(1024));
    c.set_quota(Some(50_000));
    c.set_period(Some(100_000));
    c.set_burst(Some(1000));
    c.set_idle(Some(0));
    c.set_cpus(Some("0-1".into()));
    c.set_mems(Some("0".into()));
    res.set_cpu(Some(c));
    let mut p = LinuxPids::default();
    p.set_limit(64);
    res.set_pids(Some(p));
    let mut b = LinuxBlockIo::default();
    b.set_weight(Some(500));
    let wd = LinuxWeightDeviceBuilder::default()
        .major(8)
        .minor(0)
        .weight(100u16)
        .build()
        .unwrap();
    b.set_weight_device(Some(vec![wd]));
    let td = |major: i64, minor: i64, rate: u64| -> LinuxThrottleDevice {
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(rate)
            .build()
            .unwrap()
    };
    b.set_throttle_read_bps_device(Some(vec![td(8, 0, 1000)]));
    b.set_throttle_write_bps_device(Some(vec![td(8, 0, 0)]));
    b.set_throttle_read_iops_device(Some(vec![td(253, 1, 50)]));
    b.set_throttle_write_iops_device(Some(vec![td(8, 0, 20)]));
    res.set_block_io(Some(b));
    let mut h = LinuxHugepageLimit::default();
    h.set_page_size("2MB".into());
    h.set_limit(-1);
    res.set_hugepage_limits(Some(vec![h]));
    let mut rdma = LinuxRdma::default();
    *rdma.hca_handles_mut() = Some(3);
    *rdma.hca_objects_mut() = Some(100);
    res.set_rdma(Some(HashMap::from([("mlx5_0".to_string(), rdma)])));
    res.set_unified(Some(HashMap::from([(
        "memory.high".to_string(),
        "1000000".to_string(),
    )])));

    let plan = plan(&res, &full_host(), false).unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let files = [
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "memory.high",
        "cpu.weight",
        "cpu.max",
        "cpu.max.burst",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "rdma.max",
    ];
    let cg = FakeCgroup::new("exact", &files);
    write_plan(cg.path(), &plan).unwrap();
    assert_eq!(cg.read("memory.max"), "268435456");
    assert_eq!(cg.read("memory.low"), "134217728");
    assert_eq!(cg.read("memory.swap.max"), "268435456");
    assert_eq!(cg.read("memory.high"), "1000000");
    assert_eq!(cg.read("cpu.weight"), "39");
    assert_eq!(cg.read("cpu.max"), "50000 100000");
    assert_eq!(cg.read("cpu.max.burst"), "1000");
    assert_eq!(cg.read("cpu.idle"), "0");
    assert_eq!(cg.read("cpuset.cpus"), "0-1");
    assert_eq!(cg.read("cpuset.mems"), "0");
    assert_eq!(cg.read("pids.max"), "64");
    // No io.bfq.weight here: weights are converted for io.weight; the file keeps the last write.
    assert_eq!(cg.read("io.weight"), "8:0 910");
    // One io.max write per device (a plain file cannot show them all).
    assert!(cg.read("io.max").starts_with("253:1 riops=50"));
    let io_lines: Vec<&str> = plan
        .writes
        .iter()
        .filter(|w| w.file == "io.max")
        .map(|w| w.value.as_str())
        .collect();
    assert_eq!(
        io_lines,
        ["8:0 rbps=1000 wbps=max wiops=20", "253:1 riops=50"]
    );
    assert_eq!(cg.read("hugetlb.2MB.max"), "max");
    assert!(
        !cg.path().join("hugetlb.2MB.rsvd.max").exists(),
        "optional file is not created"
    );
    assert_eq!(cg.read("rdma.max"), "mlx5_0 hca_handle=3 hca_object=100");
    // Unified keys are written after the structured fields so they win.
    assert_eq!(plan.writes.last().unwrap().file, "memory.high");
}

#[test]
fn bfq_weight_preferred_and_optional_rsvd() {
    let mut res = LinuxResources::default();
    let mut b = LinuxBlockIo::default();
    b.set_weight(Some(500));
    res.set_block_io(Some(b));
    let mut h = LinuxHugepageLimit::default();
    h.set_page_size("1GB".into());
    h.set_limit(1 << 30);
    res.set_hugepage_limits(Some(vec![h]));
    let plan = plan(&res, &full_host(), false).unwrap();
    let cg = FakeCgroup::new(
        "bfq",
        &[
            "io.bfq.weight",
            "io.weight",
            "hugetlb.1GB.max",
            "hugetlb.1GB.rsvd.max",
        ],
    );
    write_plan(cg.path(), &plan).unwrap();
    assert_eq!(cg.read("io.bfq.weight"), "500");
    assert_eq!(cg.read("io.weight"), "");
    assert_eq!(cg.read("hugetlb.1GB.max"), "1073741824");
    assert_eq!(cg.read("hugetlb.1GB.rsvd.max"), "1073741824");
}

#[test]
fn missing_file_error_names_field() {
    let res = cpu(|c| {
        c.set_burst(Some(5000));
    });
    let plan = plan(&res, &full_host(), false).unwrap();
    let cg = FakeCgroup::new("missing", &[]);
    let e = write_plan(cg.path(), &plan).unwrap_err().to_string();
    assert!(
        e.contains("cpu.max.burst") && e.contains("linux.resources.cpu.burst"),
        "{e}"
    );
}

#[test]
fn zero_means_unset() {
    let mut res = mem(|m| {
        m.set_limit(Some(0));
        m.set_swap(Some(0));
    });
    let mut p = LinuxPids::default();
    p.set_limit(0);
    res.set_pids(Some(p));
    res.set_cpu(Some({
        let mut c = LinuxCpu::default();
        c.set_shares(Some(0));
        c.set_quota(Some(0));
        c
    }));
    let plan = plan(&res, &host(&[]), false).unwrap();
    assert!(plan.writes.is_empty() && plan.warnings.is_empty());
    // Period alone: "max <period>".
    let plan2 = super::plan(
        &cpu(|c| {
            c.set_period(Some(20_000));
        }),
        &full_host(),
        false,
    )
    .unwrap();
    assert_eq!(plan2.writes[0].value, "max 20000");
    let plan3 = super::plan(
        &cpu(|c| {
            c.set_quota(Some(-1));
            c.set_period(Some(20_000));
        }),
        &full_host(),
        false,
    )
    .unwrap();
    assert_eq!(plan3.writes[0].value, "max 20000");
}

#[test]
fn swap_translation() {
    let swap_write = |limit: i64, swap: i64| {
        let p = plan(
            &mem(|m| {
                m.set_limit(Some(limit));
                m.set_swap(Some(swap));
            }),
            &full_host(),
            false,
        )
        .unwrap();
        p.writes
            .into_iter()
            .find(|w| w.file == "memory.swap.max")
            .map(|w| (w.value, w.kind))
    };
    assert_eq!(
        swap_write(1000, 3000),
        Some(("2000".into(), Kind::Required))
    );
    // No swap at all, or unlimited swap, must not fail on hosts without swap accounting.
    assert_eq!(swap_write(1000, 1000), Some(("0".into(), Kind::Optional)));
    assert_eq!(swap_write(1000, -1), Some(("max".into(), Kind::Optional)));
    let cg = FakeCgroup::new("noswap", &["memory.max"]);
    let p = plan(
        &mem(|m| {
            m.set_limit(Some(1000));
            m.set_swap(Some(1000));
        }),
        &full_host(),
        false,
    )
    .unwrap();
    write_plan(cg.path(), &p).unwrap();
    assert_eq!(cg.read("memory.max"), "1000");
}
