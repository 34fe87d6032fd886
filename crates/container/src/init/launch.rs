//! The last steps of a container's process, shared by the init and by `exec`: what can fail is
//! prepared (and reported) before the container is ready; at start the security settings go on
//! in the order that keeps each enforceable, and the seccomp filter comes last, right before
//! `execve`, so a profile only has to allow the program's own syscalls.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::Process;

use super::process;
use crate::error::{Error, Result, StageContext, SysContext};
use crate::sync::{Msg, SyncSocket};

/// What `execve` needs, built before the container reports ready: the program found on the
/// container's `PATH`, its arguments and environment (with `HOME`) as C strings, so that
/// nothing allocates or reads files once the seccomp filter is on.
pub struct PreparedProcess {
    exe: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

/// Checks and settings that can fail visibly before the container reports ready: the
/// program exists, rlimits, scheduler, I/O priority, personality, CPU affinity. Runs inside
/// the container's root (after pivot_root, or after joining its mount namespace).
pub(crate) fn prepare_process(
    p: &Process,
    linux: &oci_spec::runtime::Linux,
    personality: Option<libc::c_ulong>,
) -> Result<PreparedProcess> {
    let args = p.args().as_deref().unwrap_or(&[]);
    let arg0 = args
        .first()
        .ok_or_else(|| Error::Spec("process.args must not be empty".into()))?;
    let mut env = p.env().clone().unwrap_or_default();
    let exe = process::find_executable(arg0, &env)?;
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(p.user().uid())));
    }
    apply_process_attributes(p, linux, personality)?;
    Ok(PreparedProcess {
        exe: crate::sys::cstr(&exe).map_err(|_| Error::Spec("exec path contains NUL".into()))?,
        args: cstrings(args, "process.args")?,
        env: cstrings(&env, "process.env")?,
    })
}

fn apply_process_attributes(
    p: &Process,
    linux: &oci_spec::runtime::Linux,
    personality: Option<libc::c_ulong>,
) -> Result<()> {
    if let Some(r) = p.rlimits() {
        process::set_rlimits(r)?;
    }
    if let Some(s) = p.scheduler() {
        process::set_scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        process::set_io_priority(io.class(), io.priority())?;
    }
    if let Some(persona) = personality {
        process::set_personality(persona)?;
    }
    if let Some(mp) = linux.memory_policy() {
        process::set_memory_policy(mp)?;
    }
    if let Some(aff) = p.exec_cpu_affinity() {
        if let Some(cpus) = aff.cpu_affinity_final() {
            process::set_cpu_affinity(cpus)?;
        }
    }
    Ok(())
}

/// The home directory of `uid` in the container's `/etc/passwd`, `/` without one (as runc).
/// The file is the container's: opened without blocking (a fifo there must not park the
/// init), only a regular file, at most 4 MiB read.
fn home_of(uid: u32) -> String {
    read_container_passwd()
        .and_then(|text| home_in_passwd(&text, uid))
        .unwrap_or_else(|| "/".to_string())
}

fn read_container_passwd() -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open("/etc/passwd")
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The sixth field of the first passwd line whose third field is `uid`.
fn home_in_passwd(text: &str, uid: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid) && !fields[5].is_empty())
            .then(|| fields[5].to_string())
    })
}

/// When the seccomp filter goes on, and who hears of a notify listener.
pub(crate) struct SeccompPlan<'a> {
    /// The filter still to load (None: there is none, or it was loaded at create).
    pub filter: Option<&'a pelagos_seccomp::CompiledFilter>,
    /// Where the listener fd of an `SCMP_ACT_NOTIFY` filter goes: the runtime, which hands
    /// it to the agent at `listenerPath`.
    pub notify_to: Option<&'a SyncSocket>,
}

/// A signal for the container's process when the process that cloned it (the caller of
/// create or exec) dies: `PR_SET_PDEATHSIG`, set by the launch stub after every credential
/// change (those clear it), with the caller's pidfd to check that the caller is still alive
/// once it is set: otherwise the stub exits instead of starting the program.
pub(crate) struct ParentDeath {
    signal: i32,
    /// A pidfd of the caller (close-on-exec; the stub closes it before the final execve).
    caller: OwnedFd,
}

impl ParentDeath {
    /// For `parent_death_signal`, taken in the caller before the clone: a valid signal number
    /// and a pidfd of the caller itself.
    pub(crate) fn of_caller(signal: Option<i32>) -> Result<Option<ParentDeath>> {
        let Some(signal) = signal else {
            return Ok(None);
        };
        if !(1..=libc::SIGRTMAX()).contains(&signal) {
            return Err(Error::BadSignal(format!(
                "parent death signal {signal} (1 to {})",
                libc::SIGRTMAX()
            )));
        }
        let me = std::process::id() as i32;
        let caller = crate::sys::pidfd_open(me).sys(|| format!("pidfd_open {me}"))?;
        Ok(Some(ParentDeath { signal, caller }))
    }
}

/// What the last steps need besides the process: when the seccomp filter goes on, how many
/// descriptors stay open, where the launch stub reports, the parent death signal.
pub(crate) struct LastSteps<'a> {
    pub seccomp: SeccompPlan<'a>,
    pub preserve_fds: i32,
    pub report: Report,
    pub parent_death: Option<&'a ParentDeath>,
}

/// The final steps: bounding set, user, capabilities carried over, working directory, umask,
/// descriptors, signals; then the sealed launch stub is exec'd to set the exact capability
/// sets, no_new_privs, the parent death signal and the seccomp filter and make the `execve`
/// (CVE-2019-5736: the process that runs the container's command is never a copy of the
/// runtime). Never returns on success; a failure names its stage.
///
/// With `noNewPrivileges` (or when the process keeps CAP_SYS_ADMIN) the filter is the last
/// thing before `execve`. Without either, loading it needs CAP_SYS_ADMIN, so it goes on here
/// before the user and capability switch (runc's order); the profile must then also allow
/// setgroups/setresgid/setresuid/capset/prctl/chdir/getcwd/execveat (and, with a parent death
/// signal, poll and close).
pub(crate) fn exec_process(
    p: &Process,
    caps: &crate::capabilities::CapabilitySets,
    prepared: &PreparedProcess,
    last: LastSteps<'_>,
) -> Result<Infallible> {
    let stub = launch_stub().stage("launch")?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let filter_last = nnp || caps.keeps_effective(crate::capabilities::CAP_SYS_ADMIN);
    let stub_filter = last.seccomp.filter.filter(|_| filter_last);
    let plan =
        write_plan(prepared, caps.masks(), nnp, stub_filter, last.parent_death).stage("launch")?;
    process::drop_bounding(caps).stage("capabilities")?;
    if !filter_last {
        load_seccomp(&last.seccomp).stage("seccomp")?;
    }
    process::switch_user(p).stage("user")?;
    process::carry_capabilities(caps).stage("capabilities")?;
    enter_cwd(p.cwd()).stage("cwd")?;
    let umask = p.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        umask as libc::mode_t,
    ));
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|p| !p.is_empty()) {
        set_apparmor_exec(profile).stage("apparmor")?;
    }
    prepare_fds(last.preserve_fds).stage("fds")?;
    reset_signals();
    let report = Report {
        sync: last.seccomp.notify_to.map(|s| s.raw()).or(last.report.sync),
        fifo: last.report.fifo,
    };
    let caller = last.parent_death.map(|d| d.caller.as_raw_fd());
    exec_stub(stub, &plan, report, caller).stage("launch")
}

/// Where the launch stub reports a failure: the sync socket (run, exec) as a `Failed`
/// message, and/or `start`'s exec fifo as text.
#[derive(Clone, Copy, Default)]
pub(crate) struct Report {
    pub sync: Option<RawFd>,
    pub fifo: Option<RawFd>,
}

/// The stub, embedded at build time (`build.rs`, `stub/launch.rs`).
static LAUNCH_STUB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pelagos-launch"));

/// The stub in a sealed memfd, made once per process before the first clone (create, exec):
/// every child inherits the descriptor; nothing can change its contents.
static LAUNCH_STUB_FD: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// The sealed launch stub's descriptor (made on first use; call before cloning a child).
pub fn launch_stub() -> Result<RawFd> {
    if let Some(fd) = LAUNCH_STUB_FD.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = memfd_holding(c"pelagos-launch", LAUNCH_STUB, Seal::Yes)?;
    Ok(LAUNCH_STUB_FD.get_or_init(|| fd).as_raw_fd())
}

enum Seal {
    Yes,
    No,
}

/// An executable memfd named `name` holding `bytes`, with `Seal::Yes` sealed against any
/// change.
fn memfd_holding(name: &std::ffi::CStr, bytes: &[u8], seal: Seal) -> Result<OwnedFd> {
    // MFD_EXEC: the stub stays executable where vm.memfd_noexec asks for noexec memfds.
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create reads a NUL-terminated name that lives for the call.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINVAL {
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable anyway.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    let what = name.to_string_lossy();
    let fd = match nix::errno::Errno::result(fd) {
        Ok(fd) => fd,
        // vm.memfd_noexec=2 refuses executable memfds outright.
        Err(nix::errno::Errno::EACCES) => {
            return Err(Error::Spec(format!(
                "memfd_create {what}: the kernel refuses executable memfds \
                 (vm.memfd_noexec=2?); pelagos execs every container process through a sealed \
                 memfd (its CVE-2019-5736 defence): set vm.memfd_noexec to 0 or 1"
            )))
        }
        Err(e) => return Err(e).sys(|| format!("memfd_create {what}")),
    };
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(memfd);
    std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::Io {
        what: format!("write {what}"),
        source: e,
    })?;
    let memfd = OwnedFd::from(file);
    if let Seal::Yes = seal {
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
        nix::fcntl::fcntl(
            memfd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
        )
        .sys(|| format!("seal {what}"))?;
    }
    Ok(memfd)
}

const PLAN_MAGIC: u32 = 0x324e_4c50; // "PLN2", as stub/launch.rs
const PLAN_NO_NEW_PRIVS: u32 = 1;
const PLAN_SECCOMP: u32 = 2;
const PLAN_NOTIFY: u32 = 4;

/// The plan the stub reads (little-endian): magic, flags, the four capability masks
/// (effective, permitted, inheritable, ambient), the parent death signal (0: none) and the
/// caller's pidfd (-1: none) as i32, seccomp flags, the BPF program (count, then 8-byte
/// instructions), the executable path, then argv and envp. A string is its length (with its
/// NUL) as u32, its bytes, padding to 8; a list is its count, padding to 8, room for count + 1
/// pointers (the stub fills them in its private mapping), then its strings.
fn write_plan(
    prepared: &PreparedProcess,
    caps: [u64; 4],
    nnp: bool,
    filter: Option<&pelagos_seccomp::CompiledFilter>,
    parent_death: Option<&ParentDeath>,
) -> Result<OwnedFd> {
    let mut out = Vec::with_capacity(4096);
    let mut flags = 0;
    if nnp {
        flags |= PLAN_NO_NEW_PRIVS;
    }
    if let Some(f) = filter {
        flags |= PLAN_SECCOMP;
        if f.uses_notify() {
            flags |= PLAN_NOTIFY;
        }
    }
    out.extend_from_slice(&PLAN_MAGIC.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    for mask in caps {
        out.extend_from_slice(&mask.to_le_bytes());
    }
    let (signal, caller) = parent_death.map_or((0, -1), |d| (d.signal, d.caller.as_raw_fd()));
    out.extend_from_slice(&signal.to_le_bytes());
    out.extend_from_slice(&caller.to_le_bytes());
    let program = filter.map(|f| f.instructions()).unwrap_or(&[]);
    let seccomp_flags = filter.map(|f| f.flags() as u32).unwrap_or(0);
    out.extend_from_slice(&seccomp_flags.to_le_bytes());
    out.extend_from_slice(&(program.len() as u32).to_le_bytes());
    for insn in program {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    pad8(&mut out);
    put_cstr(&mut out, &prepared.exe);
    put_list(&mut out, &prepared.args);
    put_list(&mut out, &prepared.env);
    memfd_holding(c"pelagos-launch-plan", &out, Seal::No)
}

fn pad8(out: &mut Vec<u8>) {
    out.resize(out.len().next_multiple_of(8), 0);
}

fn put_cstr(out: &mut Vec<u8>, s: &CString) {
    let bytes = s.as_bytes_with_nul();
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
    pad8(out);
}

fn put_list(out: &mut Vec<u8>, list: &[CString]) {
    out.extend_from_slice(&(list.len() as u32).to_le_bytes());
    pad8(out);
    out.resize(out.len() + (list.len() + 1) * 8, 0);
    for s in list {
        put_cstr(out, s);
    }
}

/// execveat(stub, "", ["pelagos-launch", PLAN, SYNC, FIFO], [], AT_EMPTY_PATH), with the
/// plan, the report descriptors and the caller's pidfd open across the exec (the stub closes
/// or marks them).
fn exec_stub(
    stub: RawFd,
    plan: &OwnedFd,
    report: Report,
    caller: Option<RawFd>,
) -> Result<Infallible> {
    let Report { sync, fifo } = report;
    for fd in [Some(plan.as_raw_fd()), sync, fifo, caller]
        .into_iter()
        .flatten()
    {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .sys(|| "pass a descriptor to the launch stub".into())?;
    }
    let number = |fd: Option<RawFd>| CString::new(fd.unwrap_or(-1).to_string());
    let args = [
        CString::new("pelagos-launch"),
        number(Some(plan.as_raw_fd())),
        number(sync),
        number(fifo),
    ]
    .into_iter()
    .collect::<std::result::Result<Vec<CString>, _>>()
    .map_err(|_| Error::Spec("launch stub arguments".into()))?;
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated strings that outlive
    // the call; on success it does not return.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            stub,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let err = nix::errno::Errno::result(ret).map(drop);
    err.sys(|| "exec the launch stub".into())?;
    Err(Error::Spec("execveat returned without error".into()))
}

/// chdir to the process's cwd, as the process's user, and check that it is inside the
/// container: a leaked directory fd as cwd would show as "(unreachable)/…" (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).map_err(|source| Error::Cwd {
        path: cwd.to_path_buf(),
        source,
    })?;
    match nix::unistd::getcwd() {
        Ok(now) if now.is_absolute() => Ok(()),
        _ => Err(Error::Spec(format!(
            "cwd {} is not inside the container",
            cwd.display()
        ))),
    }
}

/// Load the filter (if any); a notify listener goes to the runtime over the sync socket.
fn load_seccomp(plan: &SeccompPlan<'_>) -> Result<()> {
    let Some(filter) = plan.filter else {
        return Ok(());
    };
    let notify_fd = filter.load()?;
    if let (Some(fd), Some(sock)) = (notify_fd, plan.notify_to) {
        sock.send_fd(Msg::SeccompFd, fd.as_raw_fd())?;
        // Close-on-exec: execve closes it; no close(2) the profile would have to allow.
        std::mem::forget(fd);
    }
    Ok(())
}

/// Load an `SCMP_ACT_NOTIFY` filter now (during create, as runc does) and send its listener
/// fd to the runtime, which hands it to the agent before `create` returns: an agent may wait
/// for it before it calls `start`. The rest of the init's work then runs under the filter.
pub(crate) fn load_notify_filter_early(
    filter: &pelagos_seccomp::CompiledFilter,
    sync: &SyncSocket,
) -> Result<()> {
    load_seccomp(&SeccompPlan {
        filter: Some(filter),
        notify_to: Some(sync),
    })
}

fn cstrings(list: &[String], what: &str) -> Result<Vec<CString>> {
    list.iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Spec(format!("{what} contains a NUL byte")))
}

/// Close-on-exec every descriptor but stdio and the preserved ones, which lose the flag.
fn prepare_fds(preserve_fds: i32) -> Result<()> {
    let first_closed = 3 + preserve_fds.max(0) as u32;
    let placeholders = PLACEHOLDER_FDS
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags on our own descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_closed,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    nix::errno::Errno::result(ret).sys(|| "mark descriptors close-on-exec".into())?;
    for fd in 3..first_closed as i32 {
        if placeholders.contains(&fd) {
            continue; // stays close-on-exec: the caller had nothing there
        }
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
    }
    Ok(())
}

/// Descriptors in the preserved range that the caller left closed, filled by
/// [`reserve_preserved_fds`] so the runtime's own descriptors cannot land there and leak.
static PLACEHOLDER_FDS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Occupy every closed descriptor number in 3..3+`preserve_fds` with a close-on-exec
/// /dev/null before the runtime opens anything of its own. Call first thing in create/exec.
pub fn reserve_preserved_fds(preserve_fds: i32) -> Result<()> {
    let mut placeholders = Vec::new();
    for fd in 3..3 + preserve_fds.max(0) {
        if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD) != Err(nix::errno::Errno::EBADF) {
            continue;
        }
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys(|| "open /dev/null".into())?;
        if null != fd {
            nix::unistd::dup3(null, fd, nix::fcntl::OFlag::O_CLOEXEC)
                .sys(|| format!("reserve fd {fd}"))?;
            let _ = nix::unistd::close(null);
        }
        placeholders.push(fd);
    }
    if let Ok(mut v) = PLACEHOLDER_FDS.lock() {
        *v = placeholders;
    }
    Ok(())
}

/// The runtime ignores SIGPIPE (Rust's default) and may block signals: the container's
/// program must start with default dispositions and an empty mask.
fn reset_signals() {
    // SAFETY: resetting a disposition to SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Ask AppArmor to confine the program we are about to exec (validated to be enabled).
fn set_apparmor_exec(profile: &str) -> Result<()> {
    if !crate::spec::apparmor_enabled() {
        return Err(Error::Unsupported(
            "process.apparmorProfile",
            "AppArmor is not enabled on this host".into(),
        ));
    }
    let text = format!("exec {profile}");
    std::fs::write("/proc/self/attr/apparmor/exec", &text)
        .or_else(|_| std::fs::write("/proc/self/attr/exec", &text))
        .map_err(|e| Error::Io {
            what: format!("set AppArmor profile {profile:?}"),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_the_passwd_entry() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n\
                      nohome:x:7:7:::/bin/sh\n";
        assert_eq!(home_in_passwd(passwd, 0).as_deref(), Some("/root"));
        assert_eq!(home_in_passwd(passwd, 1000).as_deref(), Some("/home/bob"));
        assert_eq!(home_in_passwd(passwd, 7), None);
        assert_eq!(home_in_passwd(passwd, 42), None);
        assert_eq!(home_in_passwd("garbage\n::::\n", 0), None);
    }
}
