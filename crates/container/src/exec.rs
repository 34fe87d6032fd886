//! `exec`: a new process inside a running container, entering all of its namespaces and its
//! cgroup, under the same security settings as its init.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process};
use pelagos_cgroups::Cgroup;

use crate::container::{open_console, state_json, write_pid_file, Runtime};
use crate::error::{Error, Result, StageContext, SysContext};
use crate::id::ContainerId;
use crate::init::launch::{LastSteps, ParentDeath};
use crate::namespaces::{clone_flag, proc_name};
use crate::state::Status;
use crate::sync;
use crate::{init, sys, threads};

/// Options of `exec`; [`ExecOptions::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The complete process to run (from `--process` or built from the flags).
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    /// A sub-cgroup of the container's cgroup to place the process in.
    pub sub_cgroup: Option<String>,
    pub ignore_paused: bool,
    /// A signal the process gets when the caller of `exec` dies (`PR_SET_PDEATHSIG`, set
    /// right before the process's execve); see `CreateOptions::parent_death_signal`.
    pub parent_death_signal: Option<i32>,
    /// Keep compiled seccomp filters in this directory and reuse them, as
    /// `CreateOptions::seccomp_cache`; `None` compiles the container's filter at every exec.
    pub seccomp_cache: Option<PathBuf>,
}

impl ExecOptions {
    /// `process` in the container, everything else at its default.
    pub fn new(process: Process) -> ExecOptions {
        ExecOptions {
            process,
            pid_file: None,
            console_socket: None,
            preserve_fds: 0,
            sub_cgroup: None,
            ignore_paused: false,
            parent_death_signal: None,
            seccomp_cache: None,
        }
    }
}

/// A started exec process.
pub struct Execed {
    pub pid: i32,
    /// The pty master when a terminal was asked for without a console socket.
    pub pty_master: Option<OwnedFd>,
}

/// Join order. ipc, uts, net and cgroup before user: with the runtime's privileges, since a
/// namespace the container joined by path may belong to the host's user namespace, which a
/// process in the container's user namespace may not enter (runc 1.2's nsexec also joins what
/// it can before the user namespace). Mount after user, last.
const NS_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
];

impl Runtime {
    /// `exec`: a new process in the container. It clones the caller (fork semantics) and
    /// enters the container's pid and time namespaces for a moment: a caller with other
    /// threads gets `Error::MultiThreaded`.
    pub fn exec(&self, id: &ContainerId, opts: &ExecOptions) -> Result<Execed> {
        threads::ensure_single_threaded("exec")?;
        // The sealed launch stub the child execs into (CVE-2019-5736), made before the clone.
        init::launch::launch_stub()?;
        init::reserve_preserved_fds(opts.preserve_fds)?;
        let saved = self.load(id)?;
        check_exec_status(self.status(&saved), id, opts.ignore_paused)?;
        let spec = self.load_config(id)?;
        let linux = spec.linux().clone().unwrap_or_default();
        let plan = plan_exec(&linux, opts)?;
        let ns_fds = open_init_namespaces(saved.pid)?;
        // The namespace files pin the init: make sure it is still the container's.
        if !saved.init_alive() {
            return Err(Error::NotRunning(id.to_string()));
        }
        let cgroup_fd = exec_cgroup(&saved.cgroup, opts.sub_cgroup.as_deref())?;
        let terminal = opts.process.terminal().unwrap_or(false);
        let (console, pty_receiver) = open_console(terminal, opts.console_socket.as_deref())?;
        let (parent_sock, child_sock) = sync::pair()?;
        let child = ExecChild {
            plan: &plan,
            linux: &linux,
            ns_fds: &ns_fds,
            opts,
            sync: &child_sock,
        };
        let pid = clone_exec_child(child, cgroup_fd.as_ref(), console)?;
        drop(child_sock);
        let state = state_json(&saved, Status::Running);
        let seccomp = plan.seccomp.as_ref();
        if let Err(e) = wait_exec_serving_notify(&parent_sock, seccomp, pid, &state) {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(e);
        }
        let pty_master = match pty_receiver {
            Some(r) => Some(r.recv_console()?),
            None => None,
        };
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pid)?;
        }
        Ok(Execed { pid, pty_master })
    }
}

/// `running` or `created`; `paused` only with `ignore_paused`.
fn check_exec_status(status: Status, id: &ContainerId, ignore_paused: bool) -> Result<()> {
    match status {
        Status::Running | Status::Created => Ok(()),
        Status::Paused if ignore_paused => Ok(()),
        Status::Paused => Err(Error::Paused(id.to_string())),
        s => Err(Error::BadStatus {
            action: "exec in",
            id: id.to_string(),
            status: s.to_string(),
        }),
    }
}

/// What the caller settles before the clone, so the child only applies it.
struct ExecPlan {
    seccomp: Option<pelagos_seccomp::CompiledFilter>,
    caps: crate::capabilities::CapabilitySets,
    personality: Option<libc::c_ulong>,
    parent_death: Option<ParentDeath>,
}

/// Check the process (a command, an absolute cwd) and parse what the child applies: the
/// container's seccomp filter (from `seccomp_cache` when given), the capability masks, the
/// personality, the parent death signal with the caller's pidfd.
fn plan_exec(linux: &oci_spec::runtime::Linux, opts: &ExecOptions) -> Result<ExecPlan> {
    let p = &opts.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Spec("exec: no command given".into()));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::Spec(format!(
            "exec: cwd {} must be absolute",
            p.cwd().display()
        )));
    }
    let seccomp = match (linux.seccomp(), &opts.seccomp_cache) {
        (Some(s), Some(dir)) => Some(pelagos_seccomp::compile_cached(s, dir)?),
        (Some(s), None) => Some(pelagos_seccomp::compile(s)?),
        (None, _) => None,
    };
    let personality = linux
        .personality()
        .as_ref()
        .map(crate::spec::personality_value)
        .transpose()?;
    Ok(ExecPlan {
        seccomp,
        caps: crate::capabilities::CapabilitySets::of(p),
        personality,
        parent_death: ParentDeath::of_caller(opts.parent_death_signal)?,
    })
}

/// Every namespace of the init that differs from ours, opened, in `NS_ORDER`.
fn open_init_namespaces(init: i32) -> Result<Vec<(LinuxNamespaceType, OwnedFd)>> {
    use std::os::unix::fs::MetadataExt;
    let mut ns_fds = Vec::new();
    for t in NS_ORDER {
        let theirs = format!("/proc/{init}/ns/{}", proc_name(t));
        let ours = format!("/proc/self/ns/{}", proc_name(t));
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            continue;
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        ns_fds.push((t, crate::namespaces::open_ns(Path::new(&theirs))?));
    }
    Ok(ns_fds)
}

/// The directory of the container's cgroup (or of `sub` below it) for `CLONE_INTO_CGROUP`;
/// none for a container without a cgroup.
fn exec_cgroup(cgroup: &str, sub: Option<&str>) -> Result<Option<OwnedFd>> {
    if cgroup.is_empty() {
        return Ok(None);
    }
    let rel = match sub {
        Some(sub) => format!("{}/{}", cgroup.trim_end_matches('/'), sub),
        None => cgroup.to_string(),
    };
    Ok(Some(Cgroup::from_relative(&rel)?.open_dir_fd()?))
}

/// The caller's own pid and time namespaces "for children", to come back to.
struct OwnForChildren(Vec<(LinuxNamespaceType, OwnedFd)>);

impl OwnForChildren {
    fn restore(self) {
        for (t, fd) in &self.0 {
            let _ = nix::sched::setns(fd, clone_flag(*t));
        }
    }
}

/// pid and time namespaces apply to children: the caller enters the container's before the
/// clone and returns to its own right after (or on a failure half-way). A process-wide
/// change: only `exec` does it, behind its single-thread check.
fn enter_for_children(ns_fds: &[(LinuxNamespaceType, OwnedFd)]) -> Result<OwnForChildren> {
    let mut own = OwnForChildren(Vec::new());
    for (t, fd) in ns_fds {
        if !matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
            continue;
        }
        let path = format!("/proc/self/ns/{}_for_children", proc_name(*t));
        let entered = crate::namespaces::open_ns(Path::new(&path)).and_then(|mine| {
            own.0.push((*t, mine));
            nix::sched::setns(fd, clone_flag(*t))
                .sys(|| format!("join the container's {} namespace", proc_name(*t)))
        });
        if let Err(e) = entered {
            own.restore();
            return Err(e);
        }
    }
    Ok(own)
}

/// Clone the exec child into the container's pid and time namespaces and its cgroup; the
/// caller is back in its own namespaces when this returns the child's pid. The child never
/// returns: it execs or reports its failure and exits 127.
fn clone_exec_child(
    child: ExecChild<'_>,
    cgroup_fd: Option<&OwnedFd>,
    console: Option<OwnedFd>,
) -> Result<i32> {
    let own = enter_for_children(child.ns_fds)?;
    // SAFETY: `exec` checked that the caller is single-threaded; the child only runs
    // `become_exec_child`, which ends in execve or _exit.
    let forked = unsafe { sys::clone3(0, cgroup_fd.map(|f| f.as_raw_fd())) };
    let pid = match forked {
        Ok(sys::Forked::Child) => become_exec_child(child, console),
        Ok(sys::Forked::Parent(pid)) => pid,
        Err(e) => {
            own.restore();
            return Err(e).sys(|| "clone the exec process".into());
        }
    };
    own.restore();
    Ok(pid)
}

/// The child's side of `clone_exec_child`: run `exec_child`; a failure goes to the caller as a
/// failure report, and the copy ends without running the runtime's destructors.
fn become_exec_child(child: ExecChild<'_>, console: Option<OwnedFd>) -> ! {
    let sync = child.sync;
    let err = match exec_child(child, console) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync.send_failure(&err, "exec");
    // SAFETY: _exit ends the cloned copy without running the runtime's destructors.
    unsafe { libc::_exit(127) }
}

/// What the exec child needs, prepared by the caller before the clone.
struct ExecChild<'a> {
    plan: &'a ExecPlan,
    linux: &'a oci_spec::runtime::Linux,
    ns_fds: &'a [(LinuxNamespaceType, OwnedFd)],
    opts: &'a ExecOptions,
    sync: &'a sync::SyncSocket,
}

/// The cloned child of `exec`: join the container, prepare the process as the init does,
/// exec through the launch stub. A failure names its stage.
fn exec_child(c: ExecChild<'_>, console: Option<OwnedFd>) -> Result<Infallible> {
    let p = &c.opts.process;
    // Nobody in the container may read this process's memory or open its exe while it is
    // still the runtime (CVE-2019-5736 class); execve resets this.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Some(initial) = p
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().clone())
    {
        init::process::set_cpu_affinity(&initial).stage("process")?;
    }
    join_container_namespaces(c.ns_fds).stage("namespaces")?;
    let prepared =
        init::launch::prepare_process(p, c.linux, c.plan.personality).stage("process")?;
    // Its own session, as runc and crun give exec'd processes (with a terminal, the pty's).
    let _ = nix::unistd::setsid();
    if let Some(console) = &console {
        let size = p
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        init::tty::setup(console, size, false).stage("terminal")?;
    }
    drop(console);
    let last = LastSteps {
        seccomp: init::launch::SeccompPlan {
            filter: c.plan.seccomp.as_ref(),
            notify_to: Some(c.sync),
        },
        preserve_fds: c.opts.preserve_fds,
        report: init::launch::Report {
            sync: Some(c.sync.raw()),
            fifo: None,
        },
        parent_death: c.plan.parent_death.as_ref(),
    };
    init::launch::exec_process(p, &c.plan.caps, &prepared, last)
}

/// The container's namespaces but pid and time (entered before the clone), in `NS_ORDER`;
/// root in its user namespace right after joining it.
fn join_container_namespaces(ns_fds: &[(LinuxNamespaceType, OwnedFd)]) -> Result<()> {
    for (t, fd) in ns_fds {
        if matches!(t, LinuxNamespaceType::Pid | LinuxNamespaceType::Time) {
            continue;
        }
        nix::sched::setns(fd, CloneFlags::from_bits_retain(clone_flag(*t).bits()))
            .sys(|| format!("join the container's {} namespace", proc_name(*t)))?;
        if *t == LinuxNamespaceType::User {
            let g = nix::unistd::Gid::from_raw(0);
            let u = nix::unistd::Uid::from_raw(0);
            nix::unistd::setresgid(g, g, g).sys(|| "setgid 0 in the user namespace".into())?;
            nix::unistd::setresuid(u, u, u).sys(|| "setuid 0 in the user namespace".into())?;
        }
    }
    Ok(())
}

/// Wait for the exec child to `execve` (end-of-file on the sync socket), handing a notify
/// listener fd it sends on the way to the seccomp agent.
fn wait_exec_serving_notify(
    sock: &sync::SyncSocket,
    seccomp: Option<&pelagos_seccomp::CompiledFilter>,
    pid: i32,
    state: &[u8],
) -> Result<()> {
    loop {
        match sock.recv_with_fd() {
            Ok((sync::Msg::SeccompFd, Some(fd))) => {
                crate::seccomp_agent::hand_over(seccomp, fd, pid, state)?
            }
            Ok((m, _)) => {
                return Err(Error::Child(format!(
                    "sync protocol: unexpected {m:?} during exec"
                )))
            }
            Err(e) => return sync::exec_happened(e),
        }
    }
}
