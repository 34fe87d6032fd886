//! Per-process attributes applied just before exec: rlimits, scheduler, I/O priority,
//! personality, memory policy, CPU affinity, user and groups, capabilities.

use oci_spec::runtime::{IOPriorityClass, PosixRlimit, PosixRlimitType, Process, Scheduler};

use crate::error::{Error, Result, SysContext};

fn rlimit_resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    match t {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    for r in rlimits {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the rlimit struct we pass; no memory is retained.
        let ret = unsafe { libc::setrlimit(rlimit_resource(r.typ()), &lim) };
        nix::errno::Errno::result(ret).sys(|| {
            format!(
                "set rlimit {:?} to soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

pub fn set_scheduler(s: &Scheduler) -> Result<()> {
    use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P};
    let policy = match s.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().as_deref().unwrap_or(&[]) {
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: policy,
        sched_flags: flags,
        sched_nice: s.nice().unwrap_or(0),
        sched_priority: s.priority().unwrap_or(0) as u32,
        sched_runtime: s.runtime().unwrap_or(0),
        sched_deadline: s.deadline().unwrap_or(0),
        sched_period: s.period().unwrap_or(0),
        ..Default::default()
    };
    // SAFETY: sched_setattr reads a sched_attr whose `size` field says how much to read.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| format!("set scheduler {:?}", s.policy()))
}

pub fn set_io_priority(class: IOPriorityClass, priority: i64) -> Result<()> {
    let class_num: i64 = match class {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    const IOPRIO_WHO_PROCESS: i64 = 1;
    // SAFETY: plain syscall with integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            (class_num << 13) | priority,
        )
    };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| format!("set io priority {class:?} {priority}"))
}

/// personality(2) with a persona parsed at validation (`spec::personality_value`).
pub fn set_personality(v: libc::c_ulong) -> Result<()> {
    // SAFETY: personality(2) takes an integer persona.
    let ret = unsafe { libc::personality(v) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| format!("set personality {v:#x}"))
}

/// Parse a CPU list such as "0-2,5" into a CpuSet.
pub fn parse_cpu_list(list: &str) -> Result<nix::sched::CpuSet> {
    let bad = || Error::Spec(format!("invalid cpu list {list:?}"));
    let mut set = nix::sched::CpuSet::new();
    for cpu in parse_id_list(list, nix::sched::CpuSet::count()).map_err(|_| bad())? {
        set.set(cpu).map_err(|_| bad())?;
    }
    Ok(set)
}

pub fn set_cpu_affinity(list: &str) -> Result<()> {
    let set = parse_cpu_list(list)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .sys(|| format!("set cpu affinity {list}"))
}

/// Switch to the process's user and groups, keeping the capabilities it is to have.
pub fn switch_user(process: &Process) -> Result<()> {
    let user = process.user();
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    // setgroups is denied in a user namespace whose setgroups file says "deny".
    match nix::unistd::setgroups(&gids) {
        Ok(()) => {}
        Err(nix::errno::Errno::EPERM) if gids.is_empty() => {}
        Err(e) => return Err(e).sys(|| format!("setgroups {:?}", user.additional_gids())),
    }
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).sys(|| format!("setgid {}", user.gid()))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).sys(|| format!("setuid {}", user.uid()))?;
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// The bounding set is dropped before switching user (that needs CAP_SETPCAP). Capabilities
/// this kernel does not know (EINVAL) end the loop: they are not in any set.
pub fn drop_bounding(sets: &crate::capabilities::CapabilitySets) -> Result<()> {
    let Some(keep) = sets.bounding else {
        return Ok(());
    };
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        match nix::errno::Errno::result(ret) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINVAL) => break,
            Err(e) => return Err(e).sys(|| format!("drop capability {cap} from the bounding set")),
        }
    }
    Ok(())
}

/// After the user switch, before the launch stub's exec: the process's effective and
/// permitted sets, and every permitted capability also inheritable and ambient, so that all
/// of them survive that exec for any user; the stub then sets the exact sets.
pub fn carry_capabilities(sets: &crate::capabilities::CapabilitySets) -> Result<()> {
    let (eff, perm) = (sets.effective, sets.permitted);
    capset_masks(eff, perm, sets.inheritable | perm).map_err(|e| {
        Error::Spec(format!(
            "set capabilities (effective {eff:#x}, permitted {perm:#x}): {e}; a capability \
             missing from the runtime's own bounding set cannot be granted"
        ))
    })?;
    // SAFETY: prctl with integer arguments only.
    let ret = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    };
    nix::errno::Errno::result(ret).sys(|| "clear ambient capabilities".into())?;
    for cap in (0..64u32).filter(|c| perm & (1 << c) != 0) {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap as libc::c_ulong,
                0,
                0,
            )
        };
        nix::errno::Errno::result(ret).sys(|| format!("carry capability {cap} as ambient"))?;
    }
    Ok(())
}

/// One capset(2) for all three sets: set one at a time, an intermediate state can be
/// invalid (effective not within permitted) and the kernel refuses it.
fn capset_masks(e: u64, p: u64, i: u64) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: capset reads a v3 header and two data structs that live for the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| "capset".into())
}

/// Find the program to exec the way execvp does, with the container's PATH.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if arg0.contains('/') {
        let p = std::path::PathBuf::from(arg0);
        // runc's words, which callers (Docker's exit codes 126/127) tell apart.
        return match std::fs::metadata(&p) {
            Ok(_) if runnable(&p) => Ok(p),
            Ok(_) => Err(Error::NotExecutable {
                program: arg0.to_string(),
            }),
            Err(_) => Err(Error::ExecutableNotFound {
                program: arg0.to_string(),
                reason: "no such file or directory",
            }),
        };
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let p = std::path::Path::new(dir).join(arg0);
        if runnable(&p) {
            return Ok(p);
        }
    }
    Err(Error::ExecutableNotFound {
        program: arg0.to_string(),
        reason: "executable file not found in $PATH",
    })
}

/// set_mempolicy(2) from `linux.memoryPolicy`.
pub fn set_memory_policy(policy: &oci_spec::runtime::LinuxMemoryPolicy) -> Result<()> {
    use oci_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let mut mode: i64 = match policy.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for f in policy.flags().as_deref().unwrap_or(&[]) {
        mode |= match f {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    let nodes = policy.nodes().as_deref().unwrap_or("");
    let mut mask = [0u64; 16];
    let set = parse_id_list(nodes, mask.len() * 64).map_err(|_| {
        Error::Spec(format!(
            "linux.memoryPolicy.nodes {nodes:?} is not a node list"
        ))
    })?;
    for n in set {
        mask[n / 64] |= 1 << (n % 64);
    }
    let (ptr, maxnode) = if nodes.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() * 64 + 1)
    };
    // SAFETY: set_mempolicy reads `maxnode - 1` bits from `mask`, which is that large.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| format!("set memory policy {:?} nodes {nodes:?}", policy.mode()))
}

/// Parse "0-2,5" into ids below `limit`.
fn parse_id_list(list: &str, limit: usize) -> std::result::Result<Vec<usize>, ()> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (part.parse::<usize>(), part.parse::<usize>()),
        };
        let (a, b) = (a.map_err(|_| ())?, b.map_err(|_| ())?);
        if a > b || b >= limit {
            return Err(());
        }
        out.extend(a..=b);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        let s = parse_cpu_list("0-1,3").unwrap();
        assert!(s.is_set(0).unwrap() && s.is_set(1).unwrap() && s.is_set(3).unwrap());
        assert!(!s.is_set(2).unwrap());
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn executables_found_on_path() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(
            find_executable("sh", &env).unwrap(),
            std::path::PathBuf::from("/bin/sh")
        );
        let err = find_executable("no-such-prog", &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found in $PATH"), "{err}");
        let kind = |arg0| find_executable(arg0, &env).unwrap_err().kind();
        use crate::kind::ErrorKind;
        assert_eq!(kind("no-such-prog"), ErrorKind::ExecutableNotFound);
        assert_eq!(kind("/no/such/prog"), ErrorKind::ExecutableNotFound);
        assert_eq!(kind("/etc/passwd"), ErrorKind::NotExecutable);
        assert_eq!(kind("/etc"), ErrorKind::NotExecutable);
        assert_eq!(
            find_executable("/etc/passwd", &env)
                .unwrap_err()
                .to_string(),
            "exec: \"/etc/passwd\": permission denied"
        );
    }
}
