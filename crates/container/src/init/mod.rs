//! The container's init process, from clone to execve: it runs in the new namespaces on a
//! copy of the runtime's memory, builds the rootfs, parks until `start`, then becomes the
//! user's program. It never returns: success ends in execve, failure in a message and _exit.

pub mod launch;
pub mod process;
pub mod tty;

pub use launch::reserve_preserved_fds;

use std::convert::Infallible;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Error, Result, StageContext, SysContext};
use crate::hooks;
use crate::rootfs::{self, Create, Rootfs};
use crate::spec::Bundle;
use crate::sync::{self, Msg, SyncSocket};

/// How the parked init learns that it may start.
pub enum StartSignal {
    /// `create`: block opening the exec fifo for writing until `start` opens it for reading.
    /// An `O_PATH` handle the runtime opened: the state directory may be closed to the
    /// container's mapped root (a 0700 `--root`), as in runc.
    Fifo(OwnedFd),
    /// `run`: the runtime, still our parent, sends `Start` on the sync socket.
    Sync,
}

/// Everything the init needs, prepared by the runtime before clone.
pub(crate) struct InitContext<'a> {
    pub bundle: &'a Bundle,
    pub sync: SyncSocket,
    pub start: StartSignal,
    pub console: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub seccomp: Option<pelagos_seccomp::CompiledFilter>,
    pub no_pivot: bool,
    /// Join a new session keyring of this name (runc's default; `--no-new-keyring` opts out),
    /// so the container cannot read the caller's keys.
    pub session_keyring: Option<String>,
    /// The container's cgroup directory on the host, bind-mounted for cgroup mounts when the
    /// container has no cgroup namespace.
    pub cgroup_dir: Option<PathBuf>,
    pub has_runtime_hooks: bool,
    /// Unshare the cgroup namespace after Go (the runtime moved us into a systemd scope).
    pub late_cgroupns: bool,
    /// Where the runtime sends the bind mount sources it opened for us (a container whose
    /// root is not host root: `userns::send_bind_sources`).
    pub bind_sources: Option<OwnedFd>,
    /// `CreateOptions::parent_death_signal`, with the creator's pidfd.
    pub parent_death: Option<launch::ParentDeath>,
}

/// Entry point of the cloned child.
pub(crate) fn run(ctx: InitContext<'_>) -> ! {
    let err = match setup(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // After `start` nobody reads the sync socket: the container's stderr gets it too.
    if ctx.sync.send_failure(&err, "init").is_err() {
        eprintln!("pelagos-runtime init: {err}");
    }
    // SAFETY: _exit ends this process without running the parent's atexit handlers or
    // destructors, which belong to the runtime's copy of memory.
    unsafe { libc::_exit(1) }
}

/// The init's sequence, one function per step of docs/architecture.md ("The init, step by
/// step"), in that order. A failure names its step (`Error::Process::stage`).
fn setup(ctx: &InitContext<'_>) -> Result<Infallible> {
    // Until execve this process is the runtime: nothing in the container may read its
    // memory, environment or exe (CVE-2019-5736 class). execve resets the flag.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let (_, state_json) = ctx.sync.recv_payload().stage("sync")?;
    join_namespaces(ctx).stage("namespaces")?;
    become_root_in_user_namespace(ctx).stage("user")?;
    set_names_and_keyring(ctx).stage("names")?;
    let fifo = open_host_handles(ctx).stage("fifo")?;
    let linux = ctx.bundle.spec.linux().clone().unwrap_or_default();
    // As runc: the rootfs is built in the container's mount namespace, new or joined;
    // without one the process sees the runtime's filesystem (validation refused masked
    // and read-only paths then).
    let rootfs = if ctx.bundle.namespaces.has(LinuxNamespaceType::Mount) {
        Some(build_rootfs(ctx, &linux).stage("rootfs")?)
    } else {
        None
    };
    write_sysctls(&linux).stage("sysctl")?;
    run_create_hooks(ctx, &state_json).stage("hooks")?;
    if let Some(r) = &rootfs {
        pivot_and_set_root_flags(ctx, r, &linux).stage("pivot")?;
    }
    let prepared = prepare_process_and_terminal(ctx, &linux)?;
    let start_fd = park(ctx, fifo).stage("park")?;
    start(ctx, prepared, start_fd, &state_json)
}

/// Steps 3-4, after Go: a late cgroup namespace (systemd scope), then the user and mount
/// namespaces by path (the runtime entered the others before the clone,
/// `enter_parent_namespaces`), then the new ones when the user namespace was joined.
fn join_namespaces(ctx: &InitContext<'_>) -> Result<()> {
    let ns = &ctx.bundle.namespaces;
    if ctx.late_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .sys(|| "unshare the cgroup namespace".into())?;
    }
    for t in [LinuxNamespaceType::User, LinuxNamespaceType::Mount] {
        if let Some(joined) = ns.joined(t) {
            joined.enter()?;
        }
    }
    if ns.joins(LinuxNamespaceType::User) {
        // Namespaces created after joining the user namespace belong to it.
        let flags = ns.clone_flags() & !nix::sched::CloneFlags::CLONE_NEWUSER;
        nix::sched::unshare(flags).sys(|| "unshare namespaces".into())?;
    }
    Ok(())
}

/// Step 5: root (0, 0) in the container's user namespace, new or joined, for what follows.
fn become_root_in_user_namespace(ctx: &InitContext<'_>) -> Result<()> {
    if !ctx.bundle.namespaces.has(LinuxNamespaceType::User) {
        return Ok(());
    }
    let root_g = nix::unistd::Gid::from_raw(0);
    let root_u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g)
        .sys(|| "setgid 0 in the user namespace".into())?;
    nix::unistd::setresuid(root_u, root_u, root_u).sys(|| "setuid 0 in the user namespace".into())
}

/// Step 6: hostname, domainname, `lo` up in a new network namespace, `umask(0)`, and a new
/// session keyring (unless `--no-new-keyring`).
fn set_names_and_keyring(ctx: &InitContext<'_>) -> Result<()> {
    let spec = &ctx.bundle.spec;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).sys(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        set_domainname(d)?;
    }
    if ctx.bundle.namespaces.creates(LinuxNamespaceType::Network) {
        loopback_up()?;
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    if let Some(name) = &ctx.session_keyring {
        join_session_keyring(name)?;
    }
    Ok(())
}

/// The exec fifo's handle and `/proc/self/fd` to reopen it through.
type FifoHandles<'a> = (&'a OwnedFd, OwnedFd);

/// Step 7: handles that must be taken while the host's filesystem is still visible:
/// `/proc/self/fd` for the exec fifo (`create` only).
fn open_host_handles<'a>(ctx: &'a InitContext<'_>) -> Result<Option<FifoHandles<'a>>> {
    Ok(match &ctx.start {
        StartSignal::Fifo(fifo) => Some((fifo, open_o_path(Path::new("/proc/self/fd"))?)),
        StartSignal::Sync => None,
    })
}

/// Step 9: sysctls go through the host's /proc, still mounted: /proc/sys acts on the
/// namespaces of the writer, which are the container's.
fn write_sysctls(linux: &oci_spec::runtime::Linux) -> Result<()> {
    let Some(sysctl) = linux.sysctl() else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| Error::Io {
            what: format!("set sysctl {key}={value}"),
            source: e,
        })?;
    }
    Ok(())
}

/// Steps 10-11, after the mounts and before the pivot: the runtime's `prestart` and
/// `createRuntime` hooks (RunHooks, wait for HooksDone), then the `createContainer` hooks.
fn run_create_hooks(ctx: &InitContext<'_>, state_json: &[u8]) -> Result<()> {
    if ctx.has_runtime_hooks {
        ctx.sync.send(Msg::RunHooks)?;
        ctx.sync.expect(Msg::HooksDone)?;
    }
    let spec = &ctx.bundle.spec;
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().clone())
    {
        hooks::run_all_in_container(&h, state_json)?;
    }
    Ok(())
}

/// Steps 12-13: `pivot_root` (or `MS_MOVE` + `chroot`), then `linux.rootfsPropagation` on `/`
/// and `root.readonly`.
fn pivot_and_set_root_flags(
    ctx: &InitContext<'_>,
    r: &Rootfs,
    linux: &oci_spec::runtime::Linux,
) -> Result<()> {
    r.pivot(ctx.no_pivot)?;
    if let Some(flags) = ctx
        .bundle
        .parsed
        .rootfs_propagation
        .filter(|f| !f.is_empty())
    {
        nix::mount::mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).sys(|| {
            format!(
                "set rootfs propagation {}",
                linux.rootfs_propagation().as_deref().unwrap_or_default()
            )
        })?;
    }
    let spec = &ctx.bundle.spec;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let root = rootfs::open_path(Path::new("/"))?;
        crate::sys::mount_setattr(root.as_raw_fd(), false, crate::sys::MOUNT_ATTR_RDONLY, 0)
            .sys(|| "make the root filesystem read-only".into())?;
    }
    Ok(())
}

/// Steps 14-15, in the final root: find the executable and set the process's limits
/// (`prepare_process`, so a bad one fails `create`), then the terminal.
fn prepare_process_and_terminal(
    ctx: &InitContext<'_>,
    linux: &oci_spec::runtime::Linux,
) -> Result<Option<launch::PreparedProcess>> {
    let spec = &ctx.bundle.spec;
    let prepared = match spec.process() {
        Some(p) => Some(
            launch::prepare_process(p, linux, ctx.bundle.parsed.personality).stage("process")?,
        ),
        None => None,
    };
    if let (Some(p), Some(console)) = (spec.process(), &ctx.console) {
        if p.terminal().unwrap_or(false) {
            let size = p
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            tty::setup(console, size, true).stage("terminal")?;
        }
    }
    Ok(prepared)
}

/// A seccomp filter with a notify listener: loaded while parking, not at the exec.
fn notify_filter<'a>(ctx: &'a InitContext<'_>) -> Option<&'a pelagos_seccomp::CompiledFilter> {
    ctx.seccomp.as_ref().filter(|f| f.listener_path().is_some())
}

/// Steps 16-17: `setsid`, probe the fifo, load a notify filter (so the agent has its
/// listener before `create` returns), send Ready; then wait for `start` (the fifo, whose
/// write end is returned) or for Start (`run`).
fn park(ctx: &InitContext<'_>, fifo: Option<FifoHandles<'_>>) -> Result<Option<OwnedFd>> {
    let _ = nix::unistd::setsid();
    if let Some((fifo, proc_fd)) = &fifo {
        probe_fifo(fifo, proc_fd)?;
    }
    if let Some(filter) = notify_filter(ctx) {
        launch::load_notify_filter_early(filter, &ctx.sync)?;
    }
    ctx.sync.send(Msg::Ready)?;
    Ok(match fifo {
        Some((fifo, proc_fd)) => Some(wait_fifo(fifo, &proc_fd, ctx.preserve_fds)?),
        None => {
            ctx.sync.expect(Msg::Start)?;
            None
        }
    })
}

/// Steps 18-20, after `start`: a failure is also written to the exec fifo, where `start` is
/// reading until end-of-file: what it reads after the first byte is the report of why the
/// container did not start (`sync::encode_failure`).
fn start(
    ctx: &InitContext<'_>,
    prepared: Option<launch::PreparedProcess>,
    start_fd: Option<OwnedFd>,
    state_json: &[u8],
) -> Result<Infallible> {
    let err = match exec_started(ctx, prepared, start_fd.as_ref(), state_json) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if let Some(fd) = &start_fd {
        let _ = nix::unistd::write(fd, &sync::encode_failure(&err, "start"));
    }
    Err(err)
}

/// No `process` is an error now (not at create); the `startContainer` hooks (status
/// `created`), then `launch::exec_process`.
fn exec_started(
    ctx: &InitContext<'_>,
    prepared: Option<launch::PreparedProcess>,
    start_fd: Option<&OwnedFd>,
    state_json: &[u8],
) -> Result<Infallible> {
    let spec = &ctx.bundle.spec;
    let (Some(process), Some(exe)) = (spec.process(), prepared) else {
        return Err(Error::Spec("process is not set in config.json".into()));
    };
    if let Some(h) = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().clone())
    {
        let started = String::from_utf8_lossy(state_json)
            .replace("\"status\":\"creating\"", "\"status\":\"created\"");
        hooks::run_all_in_container(&h, started.as_bytes()).stage("hooks")?;
    }
    let seccomp = launch::SeccompPlan {
        filter: ctx
            .seccomp
            .as_ref()
            .filter(|_| notify_filter(ctx).is_none()),
        notify_to: None,
    };
    // `run` reads the sync socket until the exec; `start` reads the fifo.
    let report = launch::Report {
        sync: start_fd.is_none().then(|| ctx.sync.raw()),
        fifo: start_fd.map(|fd| fd.as_raw_fd()),
    };
    let last = launch::LastSteps {
        seccomp,
        preserve_fds: ctx.preserve_fds,
        report,
        parent_death: ctx.parent_death.as_ref(),
    };
    launch::exec_process(process, &ctx.bundle.capabilities, &exe, last)
}

/// Step 8 of the init: mounts, devices, cwd, masked and read-only paths, in the container's
/// mount namespace, before pivot_root.
fn build_rootfs(ctx: &InitContext<'_>, linux: &oci_spec::runtime::Linux) -> Result<Rootfs> {
    let spec = &ctx.bundle.spec;
    let ns = &ctx.bundle.namespaces;
    let r = Rootfs::prepare(
        &ctx.bundle.rootfs,
        &ctx.bundle.dir,
        !ns.has(LinuxNamespaceType::User),
    )?;
    let cgroup_bind = if ns.creates(LinuxNamespaceType::Cgroup) {
        None
    } else {
        ctx.cgroup_dir.as_deref()
    };
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let sources = match &ctx.bind_sources {
        Some(sock) => crate::userns::receive_bind_sources(sock, mounts.len())?,
        None => Vec::new(),
    };
    for (i, m) in mounts.iter().enumerate() {
        let source = sources.get(i).and_then(|s| s.as_ref());
        let opts = ctx.bundle.parsed.mount_options.get(i).ok_or_else(|| {
            Error::Spec(format!(
                "mount {} was not validated",
                m.destination().display()
            ))
        })?;
        r.mount_entry(m, opts, cgroup_bind, source)?;
    }
    let dev_from_host = mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && rootfs::is_bind(m));
    r.create_devices(linux.devices().as_deref().unwrap_or(&[]), !dev_from_host)?;
    if !dev_from_host {
        let has_devpts = mounts
            .iter()
            .any(|m| m.destination() == Path::new("/dev/pts"));
        r.dev_symlinks(has_devpts)?;
    }
    if let Some(p) = spec.process() {
        r.resolve(p.cwd(), Some(Create::Dir))?;
    }
    let dev_null = rootfs::host_dev_null()?;
    r.mask_paths(linux.masked_paths().as_deref().unwrap_or(&[]), &dev_null)?;
    r.readonly_paths(linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    Ok(r)
}

/// Before reporting Ready, make sure the blocking open of the exec fifo can only wait, not
/// fail: the same open without blocking must fail with ENXIO (no reader yet) and nothing
/// else. Otherwise the init would die after `create` returned success, leaving a container
/// `start` can only call stopped.
fn probe_fifo(fifo: &OwnedFd, proc_fd: &OwnedFd) -> Result<()> {
    let name = fifo.as_raw_fd().to_string();
    match nix::fcntl::openat(
        Some(proc_fd.as_raw_fd()),
        name.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Err(nix::errno::Errno::ENXIO) => Ok(()),
        // A reader already: the blocking open will not block either.
        Ok(fd) => nix::unistd::close(fd).sys(|| "close exec fifo probe".into()),
        Err(e) => Err(e).sys(|| "open exec fifo".into()),
    }
}

/// Block until `start` opens the exec fifo, then tell it so with one byte. The write end
/// is returned and stays open (close-on-exec, above the preserved fds): `start` sees
/// end-of-file once execve happened, or an error message when the start failed.
fn wait_fifo(fifo: &OwnedFd, proc_fd: &OwnedFd, preserve_fds: i32) -> Result<OwnedFd> {
    // Re-open the fifo for writing through procfs: this blocks until `start` opens it.
    let name = fifo.as_raw_fd().to_string();
    let w = nix::fcntl::openat(
        Some(proc_fd.as_raw_fd()),
        name.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| "open exec fifo".into())?;
    // SAFETY: `w` was just opened and nothing else owns it.
    let w = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(w) };
    nix::unistd::write(&w, b"0").sys(|| "write exec fifo".into())?;
    let high = nix::fcntl::fcntl(
        w.as_raw_fd(),
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3 + preserve_fds.max(0)),
    )
    .sys(|| "move exec fifo above preserved fds".into())?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(high) })
}

fn join_session_keyring(name: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let cname = std::ffi::CString::new(format!("_ses.{name}"))
        .map_err(|_| Error::Spec("container id contains NUL".into()))?;
    // SAFETY: keyctl reads a NUL-terminated name that lives for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            cname.as_ptr(),
        )
    };
    match nix::errno::Errno::result(ret) {
        Ok(_) | Err(nix::errno::Errno::ENOSYS) => Ok(()),
        Err(e) => Err(e).sys(|| "join a new session keyring".into()),
    }
}

fn open_o_path(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("open {}", path.display()))?;
    // SAFETY: a fresh descriptor from a successful open.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// A new network namespace starts with `lo` down; like crun (and Docker's `--network none`),
/// bring it up so that 127.0.0.1 works inside. One socket and two ioctls: cheaper than netlink.
fn loopback_up() -> Result<()> {
    // SAFETY: socket with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(nix::errno::Errno::last()).sys(|| "socket for loopback setup".into());
    }
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own; sock is a valid socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(nix::errno::Errno::last()).sys(|| "read flags of lo".into());
    }
    // SAFETY: after SIOCGIFFLAGS the union holds ifru_flags.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own; sock is a valid socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(nix::errno::Errno::last()).sys(|| "bring lo up".into());
    }
    Ok(())
}

fn set_domainname(name: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from a buffer that lives for the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    nix::errno::Errno::result(ret)
        .map(drop)
        .sys(|| format!("set domainname {name:?}"))
}
