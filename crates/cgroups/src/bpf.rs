//! The bpf(2) calls behind the device filter: load a BPF_PROG_TYPE_CGROUP_DEVICE program and
//! attach it to a cgroup directory (BPF_F_ALLOW_MULTI), replacing the programs attached before.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::devices::Insn;
use crate::error::CgroupError;

// Commands, program/attach types and flags from linux/bpf.h.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of `union bpf_attr` (fields up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH / BPF_PROG_DETACH part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The BPF_PROG_QUERY part of `union bpf_attr` (up to `prog_cnt`).
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The BPF_PROG_GET_FD_BY_ID part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr); returns the non-negative result or errno.
fn sys_bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr` for
    // `cmd`, and the size passed is its exact size; the kernel reads at most that many bytes and
    // writes back only fields inside it. Pointers stored in it (instructions, license, log
    // buffer, id array) are kept alive by the callers for the duration of the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Take ownership of a file descriptor returned by bpf(2).
fn owned(fd: i64) -> io::Result<OwnedFd> {
    let raw = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `raw` was just returned by a successful bpf(2) call that creates a new file
    // descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Kernels before 5.11 charge BPF programs to RLIMIT_MEMLOCK; raise it as far as allowed.
fn bump_memlock() {
    let inf = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &inf) } == 0 {
        return;
    }
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct; setrlimit reads it.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) == 0 {
            cur.rlim_cur = cur.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &cur);
        }
    }
}

fn load(insns: &[Insn], path: &Path) -> Result<OwnedFd, CgroupError> {
    const LICENSE: &[u8] = b"Apache-2.0\0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"pelagos_dev");
    let base = |log: &mut Vec<u8>, level: u32| ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level: level,
        log_size: if level > 0 { log.len() as u32 } else { 0 },
        log_buf: if level > 0 {
            log.as_mut_ptr() as u64
        } else {
            0
        },
        prog_name: name,
        ..Default::default()
    };
    let mut log = Vec::new();
    let mut first = sys_bpf(BPF_PROG_LOAD, &mut base(&mut log, 0));
    if matches!(&first, Err(e) if e.raw_os_error() == Some(libc::EPERM)) {
        bump_memlock();
        first = sys_bpf(BPF_PROG_LOAD, &mut base(&mut log, 0));
    }
    let err = match first {
        Ok(fd) => return owned(fd).map_err(|source| bpf_err("load", path, source)),
        Err(e) => e,
    };
    if err.raw_os_error() != Some(libc::EINVAL) && err.raw_os_error() != Some(libc::EACCES) {
        return Err(bpf_err("load", path, err));
    }
    // The verifier said no: load again with a log so the error explains why.
    log = vec![0u8; 1 << 16];
    let second = sys_bpf(BPF_PROG_LOAD, &mut base(&mut log, 1));
    if let Ok(fd) = second {
        return owned(fd).map_err(|source| bpf_err("load", path, source));
    }
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    Err(CgroupError::BpfVerifier {
        path: path.to_owned(),
        log: String::from_utf8_lossy(&log[..end]).trim().to_owned(),
        source: err,
    })
}

fn bpf_err(op: &'static str, path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Bpf {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Ids of the device programs attached directly to the cgroup.
fn query(cgroup: BorrowedFd<'_>, path: &Path) -> Result<Vec<u32>, CgroupError> {
    let mut cap = 64usize;
    loop {
        let mut ids = vec![0u32; cap];
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: cap as u32,
            ..Default::default()
        };
        match sys_bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate((attr.prog_cnt as usize).min(cap));
                return Ok(ids);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && cap < 1 << 16 => {
                cap = (attr.prog_cnt as usize).max(cap * 2);
            }
            Err(e) => return Err(bpf_err("query", path, e)),
        }
    }
}

fn attach_attr(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, flags: u32) -> AttachAttr {
    AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: 0,
    }
}

/// Load `insns` and make it the cgroup's only directly attached device program. The new program
/// is attached before the old ones are detached, so there is never a moment without a filter.
/// `replace`: look for earlier programs to detach (false for a cgroup made just now).
pub(crate) fn install(
    cgroup: BorrowedFd<'_>,
    path: &Path,
    insns: &[Insn],
    replace: bool,
) -> Result<(), CgroupError> {
    let prog = load(insns, path)?;
    let old = if replace {
        query(cgroup, path)?
    } else {
        Vec::new()
    };
    let mut attr = attach_attr(cgroup, std::os::fd::AsFd::as_fd(&prog), BPF_F_ALLOW_MULTI);
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| bpf_err("attach", path, e))?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old_prog = match sys_bpf(BPF_PROG_GET_FD_BY_ID, &mut get).and_then(owned) {
            Ok(fd) => fd,
            // Already gone, or hidden from us by an LSM: a leftover program can only deny more.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::EPERM | libc::EACCES)
                ) =>
            {
                continue
            }
            Err(e) => return Err(bpf_err("open the previous", path, e)),
        };
        let mut attr = attach_attr(cgroup, std::os::fd::AsFd::as_fd(&old_prog), 0);
        match sys_bpf(BPF_PROG_DETACH, &mut attr) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("detach the previous", path, e)),
        }
    }
    Ok(())
}

/// Number of device programs attached directly to the cgroup (for tests and diagnostics).
#[cfg(test)]
pub(crate) fn attached_count(cgroup: BorrowedFd<'_>, path: &Path) -> Result<usize, CgroupError> {
    Ok(query(cgroup, path)?.len())
}
