//! Starting a container's monitor: `posix_spawn` of the `pelagos-monitor` program, safe from
//! any caller, threaded or not (no Rust code runs between fork and exec). The monitor gets
//! the container's owner lock, its listening control socket and a connected socket to the
//! caller, and detaches itself (it forks once and its first process exits at once, so the
//! caller reaps it here and a daemon collects no zombies).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use pelagos_container::ContainerId;

use crate::error::{Error, Result};
use crate::protocol::{self, Client, Request};
use crate::store::OwnerLock;

/// Descriptor numbers in the monitor.
pub const LOCK_FD: i32 = 3;
pub const LISTEN_FD: i32 = 4;
pub const STARTER_FD: i32 = 5;

/// What to start.
#[derive(Debug, Clone, Copy)]
pub struct MonitorCommand<'a> {
    /// The `pelagos-monitor` program.
    pub program: &'a Path,
    /// The engine's root (`/var/lib/pelagos`).
    pub root: &'a Path,
    /// The engine's runroot (`/run/pelagos`).
    pub runroot: &'a Path,
    pub id: &'a ContainerId,
    /// Whether the monitor detaches from its caller (forks once; its first process exits and
    /// is reaped here), so that a long-lived caller, such as a daemon, collects no zombie.
    /// A short-lived caller (the CLI) exits before its monitors, which init or the nearest
    /// subreaper then adopts: `false` saves a fork on every start.
    pub detach: bool,
}

impl MonitorCommand<'_> {
    /// The monitor's arguments.
    pub fn argv(&self) -> Vec<std::ffi::OsString> {
        let mut argv = vec![
            self.program.as_os_str().to_owned(),
            "--root".into(),
            self.root.as_os_str().to_owned(),
            "--runroot".into(),
            self.runroot.as_os_str().to_owned(),
        ];
        if !self.detach {
            argv.push("--no-detach".into());
        }
        argv.push(self.id.as_str().into());
        argv
    }
}

/// Binds the container's control socket (replacing a stale one: the caller holds the owner
/// lock, so no monitor listens there).
fn bind_socket(runroot: &Path, id: &ContainerId) -> Result<UnixListener> {
    let path = protocol::socket_path(runroot, id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        // Whoever reaches a monitor can exec as root in its container: only root may, whatever
        // the umask (a monitor's socket is never reachable through a world-searchable dir).
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| Error::io(format!("restrict {}", dir.display()), e))?;
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("remove {}", path.display()), e)),
    }
    protocol::with_short_path(&path, |p| UnixListener::bind(p))
        .map_err(|e| Error::io(format!("listen on {}", path.display()), e))
}

/// Starts the monitor of a container whose owner lock the caller holds, handing the lock
/// over, and sends it `first` (its `Start` request) when given. Returns the connection on
/// which the monitor answers it (a monitor whose connection closes before `Start` exits and
/// leaves the container created).
pub fn start_monitor(
    cmd: MonitorCommand<'_>,
    lock: OwnerLock,
    first: Option<&Request>,
) -> Result<Client> {
    let listener = bind_socket(cmd.runroot, cmd.id)?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| Error::io("make the monitor's socket pair", e))?;
    let lock_fd = lock.into_fd();
    let spawned = spawn(&cmd, &lock_fd, listener.as_raw_fd(), theirs.as_raw_fd());
    drop((lock_fd, listener, theirs));
    let mut client = Client::from_stream(ours);
    // The request goes out before the first process is reaped: the monitor finds it waiting
    // when it starts, instead of the caller sleeping through the monitor's start-up first.
    let sent = spawned.map(|pid| (pid, first.map_or(Ok(()), |r| client.send(r, &[]))));
    let reaped = |pid| if cmd.detach { reap(pid) } else { Ok(()) };
    match sent.and_then(|(pid, sent)| reaped(pid).and(sent)) {
        Ok(()) => Ok(client),
        Err(e) => {
            let _ = std::fs::remove_file(protocol::socket_path(cmd.runroot, cmd.id));
            Err(e)
        }
    }
}

fn cstring(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| Error::Invalid("a path contains a NUL byte".into()))
}

/// posix_spawn with the descriptors in place, in a new session. Returns the pid of the first
/// process (with `detach`, it forks the monitor proper and exits: the caller reaps it).
fn spawn(
    cmd: &MonitorCommand<'_>,
    lock: &OwnedFd,
    listen: i32,
    starter: i32,
) -> Result<libc::pid_t> {
    let program = cstring(cmd.program.as_os_str().as_bytes())?;
    let args: Vec<CString> = cmd
        .argv()
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<Result<_>>()?;
    let mut argv: Vec<*mut libc::c_char> = args.iter().map(|a| a.as_ptr() as *mut _).collect();
    argv.push(std::ptr::null_mut());
    let dev_null = c"/dev/null";
    let fail = |what: &str, rc: libc::c_int| {
        Error::io(what.to_string(), std::io::Error::from_raw_os_error(rc))
    };

    // SAFETY: the file-actions and attribute objects are initialised before use and destroyed
    // after; every pointer passed (paths, argv, environ) is valid and NUL-terminated for the
    // duration of posix_spawn, which copies what it needs.
    unsafe {
        let mut actions: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        libc::posix_spawn_file_actions_init(&mut actions);
        libc::posix_spawnattr_init(&mut attr);
        let mut rc = 0;
        for (from, to) in [
            (lock.as_raw_fd(), LOCK_FD),
            (listen, LISTEN_FD),
            (starter, STARTER_FD),
        ] {
            // Through a high number first: a source could sit on another's target.
            if rc == 0 {
                rc = libc::posix_spawn_file_actions_adddup2(&mut actions, from, 100 + to);
            }
        }
        for to in [LOCK_FD, LISTEN_FD, STARTER_FD] {
            if rc == 0 {
                rc = libc::posix_spawn_file_actions_adddup2(&mut actions, 100 + to, to);
            }
            if rc == 0 {
                rc = libc::posix_spawn_file_actions_addclose(&mut actions, 100 + to);
            }
        }
        for (to, flags) in [
            (0, libc::O_RDONLY),
            (1, libc::O_WRONLY),
            (2, libc::O_WRONLY),
        ] {
            if rc == 0 {
                rc = libc::posix_spawn_file_actions_addopen(
                    &mut actions,
                    to,
                    dev_null.as_ptr(),
                    flags,
                    0,
                );
            }
        }
        if rc == 0 {
            rc = libc::posix_spawnattr_setflags(
                &mut attr,
                libc::POSIX_SPAWN_SETSID as libc::c_short,
            );
        }
        let mut pid: libc::pid_t = 0;
        if rc == 0 {
            extern "C" {
                static environ: *const *mut libc::c_char;
            }
            rc = libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                environ,
            );
        }
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
        if rc != 0 {
            return Err(fail(
                &format!("start the monitor {}", cmd.program.display()),
                rc,
            ));
        }
        Ok(pid)
    }
}

/// Waits for the monitor's first process (it exits as soon as it has forked).
fn reap(pid: libc::pid_t) -> Result<()> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(Error::io("wait for the monitor to detach", e));
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            return Ok(());
        }
        return Err(Error::Remote(crate::kind::WireError::new(
            crate::kind::ErrorKind::Internal,
            format!("the monitor failed to start (wait status {status:#x})"),
        )));
    }
}
