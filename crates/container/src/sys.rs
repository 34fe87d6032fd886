//! Thin wrappers over the Linux syscalls that `nix` does not cover (clone3, openat2,
//! mount_setattr, open_tree/move_mount, pidfds, pivot_root helpers); each is a few lines around `libc::syscall`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

/// `struct clone_args` of clone3(2) (kernel 5.7 layout, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Result of a fork-like clone: which side of it we are on.
pub(crate) enum Forked {
    Parent(i32),
    Child,
}

/// clone3 without a new stack (fork semantics) with namespace `flags`, optionally born into the
/// cgroup open at `cgroup_fd`. Needs Linux 5.7 (clone3 with CLONE_INTO_CGROUP); there is no
/// fallback for older kernels.
///
/// # Safety
///
/// The calling process must be single-threaded (`threads::ensure_single_threaded`): the child
/// continues on a copy of the parent's memory in which a lock another thread held (the
/// allocator's, stdio's) would stay locked. On `Forked::Child` the caller must end the child
/// with execve or `_exit`, never by returning into code that runs the parent's destructors
/// or exit handlers a second time.
pub(crate) unsafe fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> nix::Result<Forked> {
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with stack == 0 behaves like fork(2): the child resumes here on a private
    // copy of the address space. The caller guarantees a single-threaded process (this
    // function's contract), so no lock can be held by another thread at the time of the copy.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

/// openat2(2): open `path` below `dirfd` with the given resolve restrictions.
pub fn openat2(dirfd: RawFd, path: &Path, flags: i32, resolve: u64) -> nix::Result<OwnedFd> {
    let cpath = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: `cpath` is a valid NUL-terminated string and `how` a valid open_how of the size
    // passed; the kernel returns a new fd that we own.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            cpath.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the syscall succeeded, so `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
pub const MOUNT_ATTR_ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// mount_setattr(2) on the mount at `fd` (AT_EMPTY_PATH), recursively when asked.
pub fn mount_setattr(fd: RawFd, recursive: bool, set: u64, clr: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: the path is an empty NUL-terminated string, `attr` is a valid mount_attr of the
    // size passed, and `fd` is a descriptor the caller keeps open for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

/// open_tree(2) with `OPEN_TREE_CLONE` on the object `fd` refers to (AT_EMPTY_PATH): a
/// detached bind mount of exactly that file, reached without any path lookup.
pub fn open_tree_clone(fd: RawFd) -> nix::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_EMPTY_PATH as u32;
    // SAFETY: the path is an empty NUL-terminated string and `fd` a descriptor the caller
    // keeps open for the call; the kernel returns a new descriptor that nothing else owns.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) };
    let tree = Errno::result(ret)? as RawFd;
    // SAFETY: the syscall succeeded, so `tree` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(tree) })
}

/// move_mount(2) of the detached mount `tree` onto the object `target` refers to (both by
/// descriptor): the mount lands on that inode whatever its path has become since it was opened.
pub fn move_mount_onto(tree: &OwnedFd, target: &OwnedFd) -> nix::Result<()> {
    // SAFETY: both paths are empty NUL-terminated strings and both descriptors are open for
    // the duration of the call (borrowed from owners).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a returned fd is ours.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(ret)? as RawFd;
    // SAFETY: the syscall succeeded, so `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: plain syscall on a pidfd we hold; info NULL means a kill(2)-like siginfo.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// Wait until the process behind `pidfd` has exited, at most `timeout_ms` (-1: forever).
/// Returns whether it exited.
pub fn pidfd_wait_exit(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is a valid pollfd array of length 1 for the duration of the call.
        let ret = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ret < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return ret > 0;
    }
}

/// pivot_root(2).
pub fn pivot_root(new_root: &Path, put_old: &Path) -> nix::Result<()> {
    nix::unistd::pivot_root(new_root, put_old)
}

/// The path of an open descriptor in procfs, for syscalls that take a path (mount(2)).
pub fn fd_path(fd: RawFd) -> String {
    format!("/proc/self/fd/{fd}")
}

pub fn cstr(path: &Path) -> nix::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), used with
/// the pid to tell a container's process from a later one that reused its pid.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    // rest starts at field 3 (state); start time is field 22.
    rest.split(' ').nth(19)?.parse().ok()
}

/// The one-letter state of a process (field 3 of /proc/PID/stat): `Z` for a zombie.
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable() {
        let pid = std::process::id() as i32;
        let a = process_start_time(pid).expect("start time");
        assert_eq!(Some(a), process_start_time(pid));
        assert!(matches!(process_state(pid), Some('R') | Some('S')));
        assert_eq!(process_start_time(-5), None);
    }

    #[test]
    fn openat2_stays_in_root() {
        let dir = std::env::temp_dir().join(format!("pelagos-sys-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("inner")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("escape")).unwrap();
        let root = nix::fcntl::open(
            &dir,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        // "/etc" resolved in root is dir/etc, which does not exist: never the host's /etc.
        let err = openat2(
            root,
            Path::new("escape/passwd"),
            libc::O_PATH,
            RESOLVE_IN_ROOT,
        );
        assert_eq!(err.unwrap_err(), Errno::ENOENT);
        assert!(openat2(root, Path::new("../inner"), libc::O_PATH, RESOLVE_IN_ROOT).is_ok());
        nix::unistd::close(root).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
