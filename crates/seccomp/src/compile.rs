//! Compile an OCI seccomp profile into a BPF program with libseccomp, in the runtime process, so
//! that the container init only has to hand the finished program to the kernel.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libseccomp::ScmpSyscall;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator, LinuxSyscall,
};

use crate::error::SeccompError;
use crate::flags::kernel_flags;

/// The kernel's `BPF_MAXINSNS`.
pub(crate) const BPF_MAXINSNS: usize = 4096;
/// Syscall arguments a rule can compare (`args[0..6]`).
const MAX_SYSCALL_ARGS: usize = 6;
/// Syscalls the runtime issues between loading the filter and the agent owning the listener fd;
/// notifying on them would hang the container init (runc rejects `write` for the same reason).
const NOTIFY_FORBIDDEN: &[&str] = &["write", "sendmsg"];

/// A filter compiled ahead of time: the BPF program plus the `seccomp(2)` flags to load it with.
#[derive(Clone)]
pub struct CompiledFilter {
    pub(crate) program: Vec<libc::sock_filter>,
    pub(crate) flags: libc::c_ulong,
    pub(crate) notify: bool,
    listener_path: Option<PathBuf>,
    listener_metadata: Option<String>,
    skipped_syscalls: Vec<String>,
}

impl std::fmt::Debug for CompiledFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledFilter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("notify", &self.notify)
            .field("listener_path", &self.listener_path)
            .field("listener_metadata", &self.listener_metadata)
            .field("skipped_syscalls", &self.skipped_syscalls)
            .finish()
    }
}

impl CompiledFilter {
    /// Reassembles a filter read back from the cache.
    pub(crate) fn from_parts(
        program: Vec<libc::sock_filter>,
        flags: libc::c_ulong,
        notify: bool,
        listener_path: Option<PathBuf>,
        listener_metadata: Option<String>,
        skipped_syscalls: Vec<String>,
    ) -> CompiledFilter {
        CompiledFilter {
            program,
            flags,
            notify,
            listener_path,
            listener_metadata,
            skipped_syscalls,
        }
    }

    /// Whether a rule with `SCMP_ACT_NOTIFY` made it into the filter; [`load`](Self::load) then
    /// returns a listener fd that must be sent to [`listener_path`](Self::listener_path).
    pub fn uses_notify(&self) -> bool {
        self.notify
    }

    /// The seccomp agent's socket (`listenerPath`), if the profile set one.
    pub fn listener_path(&self) -> Option<&Path> {
        self.listener_path.as_deref()
    }

    /// The opaque `listenerMetadata` to pass to the agent.
    pub fn listener_metadata(&self) -> Option<&str> {
        self.listener_metadata.as_deref()
    }

    /// The `SECCOMP_FILTER_FLAG_*` bits [`load`](Self::load) passes to `seccomp(2)`.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// The BPF program.
    pub fn instructions(&self) -> &[libc::sock_filter] {
        &self.program
    }

    /// Syscall names the profile mentions that libseccomp does not know; like runc they are
    /// skipped, and the caller may log them.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped_syscalls
    }
}

/// Compile `profile` into a BPF program for the architectures it lists (plus the native one).
///
/// Unknown syscall names are skipped (see [`CompiledFilter::skipped_syscalls`]), as runc does;
/// rules whose action equals the default action are dropped. Every other problem is an error
/// naming the bad input, including filter flags the running kernel does not support.
pub fn compile(profile: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let default = to_action(
        profile.default_action(),
        profile.default_errno_ret(),
        || "the default action".to_string(),
    )?;
    if default == ScmpAction::Notify {
        return Err(SeccompError::NotifyDefaultAction);
    }
    let mut ctx =
        ScmpFilterContext::new(default).map_err(SeccompError::libseccomp("creating the filter"))?;
    // The kernel flags are passed by `load`; libseccomp only generates the program.
    ctx.set_ctl_nnp(false).map_err(SeccompError::libseccomp(
        "clearing the no_new_privs attribute",
    ))?;
    for arch in profile.architectures().iter().flatten() {
        let name = arch.to_string();
        let scmp =
            ScmpArch::from_str(&name).map_err(|_| SeccompError::UnsupportedArch(name.clone()))?;
        ctx.add_arch(scmp)
            .map_err(|_| SeccompError::UnsupportedArch(name.clone()))?;
    }

    let mut notify = false;
    let mut notify_requested = None;
    let mut skipped_syscalls = Vec::new();
    for (i, rule) in profile.syscalls().iter().flatten().enumerate() {
        let first = rule.names().first().ok_or(SeccompError::EmptyNames(i))?;
        let action = to_action(rule.action(), rule.errno_ret(), || {
            format!("syscall \"{first}\"")
        })?;
        let condition_sets = condition_sets(rule, first)?;
        if action == ScmpAction::Notify {
            if let Some(bad) = rule
                .names()
                .iter()
                .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
            {
                return Err(SeccompError::NotifyForbiddenSyscall(bad.clone()));
            }
            notify_requested.get_or_insert_with(|| first.clone());
        }
        if action == default {
            continue;
        }
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                skipped_syscalls.push(name.clone());
                continue;
            };
            for conditions in &condition_sets {
                ctx.add_rule_conditional(action, syscall, conditions)
                    .map_err(|source| SeccompError::Libseccomp {
                        context: format!("adding the rule for syscall \"{name}\""),
                        source,
                    })?;
            }
            notify |= action == ScmpAction::Notify;
        }
    }

    let listener_path = profile
        .listener_path()
        .clone()
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(name) = notify_requested {
        if listener_path.is_none() {
            return Err(SeccompError::NotifyWithoutListener(name));
        }
    }
    let flags = kernel_flags(profile.flags().as_deref().unwrap_or(&[]), notify)?;
    let program = export(&ctx)?;
    Ok(CompiledFilter {
        program,
        flags,
        notify,
        listener_path,
        listener_metadata: profile.listener_metadata().clone(),
        skipped_syscalls,
    })
}

/// Map an OCI action (+ errnoRet) to libseccomp's; ERRNO and TRACE default to EPERM like runc.
fn to_action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: impl FnOnce() -> String,
) -> Result<ScmpAction, SeccompError> {
    let data = || -> Result<u16, SeccompError> {
        let value = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoOutOfRange {
            what: what(),
            value,
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(data()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(data()?),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// The argument conditions of a rule, as the list of condition sets to add one rule each for.
/// Conditions on distinct arguments are AND-ed in one rule; if an argument is compared more
/// than once every condition becomes its own rule (OR), as runc does.
fn condition_sets(
    rule: &LinuxSyscall,
    syscall: &str,
) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let args = rule.args().as_deref().unwrap_or(&[]);
    let mut per_index = [0usize; MAX_SYSCALL_ARGS];
    let mut conditions = Vec::with_capacity(args.len());
    for arg in args {
        let count =
            per_index
                .get_mut(arg.index())
                .ok_or_else(|| SeccompError::InvalidArgIndex {
                    syscall: syscall.to_string(),
                    index: arg.index(),
                })?;
        *count += 1;
        conditions.push(to_condition(arg)?);
    }
    if per_index.iter().any(|&n| n > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

/// OCI `value`/`valueTwo` to a libseccomp comparison; for MASKED_EQ `value` is the mask and
/// `valueTwo` the datum, i.e. `(arg & value) == valueTwo`.
fn to_condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            return Ok(ScmpArgCompare::new(
                index_u32(arg.index()),
                ScmpCompareOp::MaskedEqual(arg.value()),
                datum,
            ));
        }
    };
    Ok(ScmpArgCompare::new(index_u32(arg.index()), op, arg.value()))
}

/// Indexes were range-checked by `condition_sets`.
fn index_u32(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Export the filter through a memfd and decode it into `sock_filter`s.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let fd = memfd_create(c"pelagos-seccomp-bpf", MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| SeccompError::Export(e.into()))?;
    let mut file = File::from(fd);
    ctx.export_bpf(&file)
        .map_err(SeccompError::libseccomp("exporting the bpf program"))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(SeccompError::Export)?;
    let program = decode(&bytes)?;
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::ProgramTooLong(program.len()));
    }
    Ok(program)
}

/// Decode `struct sock_filter` entries (u16 code, u8 jt, u8 jf, u32 k; native endian).
fn decode(bytes: &[u8]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    const SIZE: usize = std::mem::size_of::<libc::sock_filter>();
    let chunks = bytes.chunks_exact(SIZE);
    if !chunks.remainder().is_empty() || bytes.is_empty() {
        return Err(SeccompError::Export(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is not a whole number of bpf instructions",
                bytes.len()
            ),
        )));
    }
    Ok(chunks
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
