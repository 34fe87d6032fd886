//! Translation of OCI `linux.resources` into cgroup v2 interface-file writes: validation against
//! the host's controllers (`plan`) and the writes themselves into any directory (`write_plan`).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use crate::devices::DeviceRule;
use crate::error::CgroupError;
use crate::fsutil;
use crate::host::HostInfo;

/// Controllers whose files `linux.resources.unified` may name.
pub(crate) const KNOWN_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuset", "pids", "io", "hugetlb", "rdma", "misc",
];

/// Core (controller-less) files `linux.resources.unified` may set.
const UNIFIED_CORE_FILES: &[&str] = &["cgroup.max.depth", "cgroup.max.descendants"];

const F: &str = "linux.resources";

/// How to treat the target file of a [`Write`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The file must exist.
    Required,
    /// Skip silently when the file does not exist (optional kernel feature).
    Optional,
    /// When the file does not exist, write `value` into `file` instead.
    Fallback { file: String, value: String },
}

/// One value for one interface file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub file: String,
    pub value: String,
    pub field: String,
    pub kind: Kind,
}

/// Everything `apply` will do, computed without touching the cgroup.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Vec<Write>,
    pub warnings: Vec<String>,
    pub devices: Vec<DeviceRule>,
}

/// Collects writes while checking each against the host's controllers.
struct Planner<'a> {
    host: &'a HostInfo,
    skip_unavailable: bool,
    plan: Plan,
}

impl Planner<'_> {
    /// May `field` (which needs `controller`) be written? `limits` tells whether the value
    /// actually restricts anything: "unlimited" values need no controller, since an absent
    /// controller restricts nothing either.
    fn allowed(
        &mut self,
        controller: &str,
        field: &str,
        limits: bool,
    ) -> Result<bool, CgroupError> {
        if self.host.has(controller) {
            return Ok(true);
        }
        if !limits {
            return Ok(false);
        }
        if self.skip_unavailable {
            self.plan.warnings.push(format!(
                "cgroup v2 controller \"{controller}\" is not available on this host ({} offers: {}); ignoring {field}",
                self.host.mount.display(),
                self.host.offers()
            ));
            return Ok(false);
        }
        Err(CgroupError::ControllerUnavailable {
            controller: controller.to_owned(),
            mount: self.host.mount.clone(),
            offers: self.host.offers(),
            field: field.to_owned(),
        })
    }

    fn push(
        &mut self,
        file: impl Into<String>,
        value: impl Into<String>,
        field: impl Into<String>,
        kind: Kind,
    ) {
        self.plan.writes.push(Write {
            file: file.into(),
            value: value.into(),
            field: field.into(),
            kind,
        });
    }

    /// Queue a required write to `file` after checking `controller`.
    fn set(
        &mut self,
        controller: &str,
        file: &str,
        value: String,
        field: &str,
        limits: bool,
    ) -> Result<(), CgroupError> {
        if self.allowed(controller, field, limits)? {
            self.push(file, value, field, Kind::Required);
        }
        Ok(())
    }

    fn warn_ignored(&mut self, field: &str, why: &str) {
        self.plan.warnings.push(format!("ignoring {field}: {why}"));
    }
}

/// Validate `res` against `host` and compute the writes that implement it.
pub(crate) fn plan(
    res: &LinuxResources,
    host: &HostInfo,
    skip_unavailable: bool,
) -> Result<Plan, CgroupError> {
    let mut p = Planner {
        host,
        skip_unavailable,
        plan: Plan::default(),
    };
    if let Some(devices) = res.devices() {
        for (i, d) in devices.iter().enumerate() {
            p.plan.devices.push(DeviceRule::from_oci(d, i)?);
        }
    }
    if let Some(m) = res.memory() {
        memory(&mut p, m)?;
    }
    if let Some(c) = res.cpu() {
        cpu(&mut p, c)?;
    }
    if let Some(pids) = res.pids() {
        let field = format!("{F}.pids.limit");
        match pids.limit() {
            0 => {}
            n if n > 0 => p.set("pids", "pids.max", n.to_string(), &field, true)?,
            _ => p.set("pids", "pids.max", "max".into(), &field, false)?,
        }
    }
    if let Some(b) = res.block_io() {
        block_io(&mut p, b)?;
    }
    if let Some(limits) = res.hugepage_limits() {
        for (i, h) in limits.iter().enumerate() {
            let field = format!("{F}.hugepageLimits[{i}]");
            let size = h.page_size();
            let value = limit_value(h.limit(), &format!("{field}.limit"))?;
            let limits = value != "max";
            if !p.allowed("hugetlb", &format!("{field}.limit"), limits)? {
                continue;
            }
            if !host.hugepage_sizes.iter().any(|s| s == size) {
                let supported = if host.hugepage_sizes.is_empty() {
                    "none".to_owned()
                } else {
                    host.hugepage_sizes.join(" ")
                };
                return Err(CgroupError::invalid(
                    format!("{field}.pageSize"),
                    format!("huge page size {size:?} is not supported by this host (supported: {supported})"),
                ));
            }
            let (max, rsvd) = (
                format!("hugetlb.{size}.max"),
                format!("hugetlb.{size}.rsvd.max"),
            );
            p.push(max, value.clone(), format!("{field}.limit"), Kind::Required);
            // Reservation limits (Linux 5.7+) make the limit hold at mmap time, not at fault time.
            p.push(rsvd, value, format!("{field}.limit"), Kind::Optional);
        }
    }
    if let Some(n) = res.network() {
        if n.class_id().is_some() {
            p.warn_ignored(
                &format!("{F}.network.classID"),
                "net_cls is a cgroup v1 controller",
            );
        }
        if n.priorities().as_ref().is_some_and(|v| !v.is_empty()) {
            p.warn_ignored(
                &format!("{F}.network.priorities"),
                "net_prio is a cgroup v1 controller",
            );
        }
    }
    if let Some(rdma) = res.rdma() {
        let sorted: BTreeMap<_, _> = rdma.iter().collect();
        for (dev, r) in sorted {
            let field = format!("{F}.rdma[{dev:?}]");
            if dev.is_empty() || dev.contains(|c: char| c.is_whitespace() || c == '\0') {
                return Err(CgroupError::invalid(
                    field,
                    "the device name must be non-empty without spaces",
                ));
            }
            let mut line = dev.clone();
            if let Some(h) = r.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = r.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            if line.len() > dev.len() {
                p.set("rdma", "rdma.max", line, &field, true)?;
            }
        }
    }
    if let Some(unified) = res.unified() {
        let sorted: BTreeMap<_, _> = unified.iter().collect();
        for (key, value) in sorted {
            let field = format!("{F}.unified[{key:?}]");
            let controller =
                unified_controller(key).map_err(|reason| CgroupError::invalid(&field, reason))?;
            if value.contains('\0') {
                return Err(CgroupError::invalid(field, "the value contains a NUL byte"));
            }
            match controller {
                None => p.push(key.as_str(), value.as_str(), field, Kind::Required),
                Some(c) => p.set(c, key, value.clone(), &field, true)?,
            }
        }
    }
    Ok(p.plan)
}

/// The controller a unified key belongs to (`None` for allowed core `cgroup.*` files).
fn unified_controller(key: &str) -> Result<Option<&'static str>, String> {
    if key.contains('/') || key.contains('\0') {
        return Err("the key must be a plain file name (no '/')".into());
    }
    if UNIFIED_CORE_FILES.contains(&key) {
        return Ok(None);
    }
    let Some((ctrl, file)) = key.split_once('.') else {
        return Err("the key must have the form \"<controller>.<file>\"".into());
    };
    if file.is_empty() || file.starts_with('.') {
        return Err("the key must have the form \"<controller>.<file>\"".into());
    }
    match KNOWN_CONTROLLERS.iter().find(|c| **c == ctrl) {
        Some(c) => Ok(Some(c)),
        None => Err(format!(
            "\"{ctrl}\" is not a cgroup v2 controller pelagos knows (known: {}; core files: {})",
            KNOWN_CONTROLLERS.join(" "),
            UNIFIED_CORE_FILES.join(" ")
        )),
    }
}

/// A byte limit: -1 is "max", other negatives are invalid.
fn limit_value(v: i64, field: &str) -> Result<String, CgroupError> {
    match v {
        -1 => Ok("max".into()),
        v if v < 0 => Err(CgroupError::invalid(
            field,
            format!("{v} is negative (use -1 for unlimited)"),
        )),
        v => Ok(v.to_string()),
    }
}

fn memory(p: &mut Planner, m: &LinuxMemory) -> Result<(), CgroupError> {
    let fld = |n: &str| format!("{F}.memory.{n}");
    if m.disable_oom_killer() == Some(true) {
        return Err(CgroupError::invalid(
            fld("disableOOMKiller"),
            "cgroup v2 cannot disable the OOM killer (it has no memory.oom_control)",
        ));
    }
    // As in runc, 0 means "not set" for limit, reservation and swap.
    let limit = m.limit().filter(|v| *v != 0);
    if let Some(v) = limit {
        let value = limit_value(v, &fld("limit"))?;
        let limits = value != "max";
        p.set("memory", "memory.max", value, &fld("limit"), limits)?;
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        let value = limit_value(v, &fld("reservation"))?;
        // memory.low protects, it does not limit: still needs the controller when set.
        let limits = value != "max";
        p.set("memory", "memory.low", value, &fld("reservation"), limits)?;
    }
    if let Some(swap) = m.swap().filter(|v| *v != 0) {
        // OCI swap is memory+swap; v2 memory.swap.max is swap alone.
        let value = match (swap, limit) {
            (-1, _) => "max".to_owned(),
            (s, _) if s < 0 => {
                return Err(CgroupError::invalid(
                    fld("swap"),
                    format!("{s} is negative (use -1 for unlimited)"),
                ));
            }
            (_, None) | (_, Some(-1)) => {
                return Err(CgroupError::invalid(
                    fld("swap"),
                    format!("a memory+swap limit needs {} to be set too", fld("limit")),
                ));
            }
            (s, Some(l)) if s < l => {
                return Err(CgroupError::invalid(
                    fld("swap"),
                    format!(
                        "memory+swap ({s}) must not be lower than {} ({l})",
                        fld("limit")
                    ),
                ));
            }
            (s, Some(l)) => (s - l).to_string(),
        };
        // Like runc: without swap accounting, "max" and "0" (no swap) need no file.
        let limits = value != "max";
        let kind = if value == "max" || value == "0" {
            Kind::Optional
        } else {
            Kind::Required
        };
        if p.allowed("memory", &fld("swap"), limits)? {
            p.push("memory.swap.max", value, fld("swap"), kind);
        }
    }
    #[allow(deprecated)]
    if m.kernel().is_some() {
        p.warn_ignored(&fld("kernel"), "cgroup v2 has no kernel memory limit");
    }
    if m.kernel_tcp().is_some() {
        p.warn_ignored(
            &fld("kernelTCP"),
            "cgroup v2 has no kernel TCP memory limit",
        );
    }
    if m.swappiness().is_some() {
        p.warn_ignored(&fld("swappiness"), "cgroup v2 has no per-cgroup swappiness");
    }
    if m.use_hierarchy() == Some(false) {
        p.warn_ignored(
            &fld("useHierarchy"),
            "cgroup v2 accounting is always hierarchical",
        );
    }
    Ok(())
}

/// cgroup v1 cpu.shares (2..=262144) to v2 cpu.weight (1..=10000).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

fn cpu(p: &mut Planner, c: &LinuxCpu) -> Result<(), CgroupError> {
    let fld = |n: &str| format!("{F}.cpu.{n}");
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        p.set(
            "cpu",
            "cpu.weight",
            shares_to_weight(shares).to_string(),
            &fld("shares"),
            true,
        )?;
    }
    if let Some(period) = c.period() {
        if !(1000..=1_000_000).contains(&period) {
            return Err(CgroupError::invalid(
                fld("period"),
                format!("{period} is outside the kernel's range of 1000..1000000 microseconds"),
            ));
        }
    }
    let quota = c.quota().filter(|q| *q != 0);
    match (quota, c.period()) {
        (Some(q), None) if q > 0 => {
            return Err(CgroupError::invalid(
                fld("quota"),
                format!("a quota ({q}) needs {} to be set too", fld("period")),
            ));
        }
        (Some(q), Some(period)) if q > 0 => {
            if q < 1000 {
                return Err(CgroupError::invalid(
                    fld("quota"),
                    format!("{q} is below the kernel's minimum of 1000 microseconds"),
                ));
            }
            p.set(
                "cpu",
                "cpu.max",
                format!("{q} {period}"),
                &fld("quota"),
                true,
            )?;
        }
        // Negative quota: unlimited (cgroup v1 semantics).
        (_, Some(period)) => p.set(
            "cpu",
            "cpu.max",
            format!("max {period}"),
            &fld("period"),
            true,
        )?,
        (Some(_), None) => p.set("cpu", "cpu.max", "max".into(), &fld("quota"), false)?,
        (None, None) => {}
    }
    if let Some(burst) = c.burst() {
        p.set(
            "cpu",
            "cpu.max.burst",
            burst.to_string(),
            &fld("burst"),
            burst != 0,
        )?;
    }
    if let Some(idle) = c.idle() {
        if idle != 0 && idle != 1 {
            return Err(CgroupError::invalid(
                fld("idle"),
                format!("{idle} is not 0 or 1"),
            ));
        }
        p.set("cpu", "cpu.idle", idle.to_string(), &fld("idle"), idle == 1)?;
    }
    if c.realtime_runtime().is_some_and(|v| v != 0) {
        p.warn_ignored(
            &fld("realtimeRuntime"),
            "cgroup v2 has no realtime group scheduling settings",
        );
    }
    if c.realtime_period().is_some_and(|v| v != 0) {
        p.warn_ignored(
            &fld("realtimePeriod"),
            "cgroup v2 has no realtime group scheduling settings",
        );
    }
    for (name, file, value) in [
        ("cpus", "cpuset.cpus", c.cpus()),
        ("mems", "cpuset.mems", c.mems()),
    ] {
        let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        if !v
            .chars()
            .all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ',')
        {
            return Err(CgroupError::invalid(
                fld(name),
                format!("{v:?} is not a list like \"0-3,8\""),
            ));
        }
        p.set("cpuset", file, v.to_owned(), &fld(name), true)?;
    }
    Ok(())
}

fn device_number(v: i64, field: &str) -> Result<u32, CgroupError> {
    u32::try_from(v)
        .map_err(|_| CgroupError::invalid(field, format!("device number {v} is out of range")))
}

/// blkio weight (10..=1000) to io.weight (1..=10000).
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w.clamp(10, 1000)) - 10) * 9999 / 990
}

fn check_blkio_weight(w: u16, field: &str) -> Result<(), CgroupError> {
    if !(10..=1000).contains(&w) {
        return Err(CgroupError::invalid(
            field,
            format!("{w} is outside 10..1000"),
        ));
    }
    Ok(())
}

fn block_io(p: &mut Planner, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    let fld = |n: &str| format!("{F}.blockIO.{n}");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        check_blkio_weight(w, &fld("weight"))?;
        if p.allowed("io", &fld("weight"), true)? {
            p.push(
                "io.bfq.weight",
                w.to_string(),
                fld("weight"),
                Kind::Fallback {
                    file: "io.weight".into(),
                    value: blkio_to_io_weight(w).to_string(),
                },
            );
        }
    }
    if b.leaf_weight().is_some() {
        p.warn_ignored(&fld("leafWeight"), "cgroup v2 has no leaf weights");
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = fld(&format!("weightDevice[{i}]"));
        let major = device_number(d.major(), &field)?;
        let minor = device_number(d.minor(), &field)?;
        if d.leaf_weight().is_some() {
            p.warn_ignored(
                &format!("{field}.leafWeight"),
                "cgroup v2 has no leaf weights",
            );
        }
        let Some(w) = d.weight().filter(|w| *w != 0) else {
            continue;
        };
        check_blkio_weight(w, &format!("{field}.weight"))?;
        if p.allowed("io", &field, true)? {
            p.push(
                "io.bfq.weight",
                format!("{major}:{minor} {w}"),
                field,
                Kind::Fallback {
                    file: "io.weight".into(),
                    value: format!("{major}:{minor} {}", blkio_to_io_weight(w)),
                },
            );
        }
    }
    // io.max takes one "MAJ:MIN key=value..." line per write; merge the four lists per device.
    let mut lines: BTreeMap<(u32, u32), (String, Vec<String>)> = BTreeMap::new();
    let lists: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    let mut first_field = None;
    for (name, key, list) in lists {
        for (i, t) in list.iter().flatten().enumerate() {
            let field = fld(&format!("{name}[{i}]"));
            let dev = (
                device_number(t.major(), &field)?,
                device_number(t.minor(), &field)?,
            );
            let rate = match t.rate() {
                0 => "max".to_owned(),
                r => r.to_string(),
            };
            first_field.get_or_insert_with(|| field.clone());
            lines
                .entry(dev)
                .or_insert_with(|| (field, Vec::new()))
                .1
                .push(format!("{key}={rate}"));
        }
    }
    if let Some(field) = first_field {
        if p.allowed("io", &field, true)? {
            for ((major, minor), (field, kv)) in lines {
                p.push(
                    "io.max",
                    format!("{major}:{minor} {}", kv.join(" ")),
                    field,
                    Kind::Required,
                );
            }
        }
    }
    Ok(())
}

/// Perform the file writes of `plan` inside `dir` (a cgroup directory, or a test directory).
pub(crate) fn write_plan(dir: &Path, plan: &Plan) -> Result<(), CgroupError> {
    for w in &plan.writes {
        let path = dir.join(&w.file);
        match &w.kind {
            Kind::Required => fsutil::write(&path, &w.value, &w.field)?,
            Kind::Optional => match fsutil::write_raw(&path, &w.value) {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                r => r.map_err(|source| CgroupError::Write {
                    path: path.clone(),
                    value: w.value.clone(),
                    field: w.field.clone(),
                    source,
                })?,
            },
            Kind::Fallback { file, value } => {
                if path.exists() {
                    fsutil::write(&path, &w.value, &w.field)?;
                } else {
                    fsutil::write(&dir.join(file), value, &w.field)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
