//! The container's terminal: a pty made from the container's own /dev/ptmx, its master sent to
//! the caller's console socket, its slave made the controlling terminal and stdio.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::statfs::FsType;

use crate::error::{Error, Result, SysContext};

/// Create the pty, hand its master to `console`, and make the slave our terminal.
/// `bind_console`: also make the pty the container's /dev/console (the init does; exec not).
pub fn setup(console: &OwnedFd, size: Option<(u16, u16)>, bind_console: bool) -> Result<()> {
    let master = posix_openpt(
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
    )
    .sys(|| "open /dev/ptmx in the container".into())?;
    grantpt(&master).sys(|| "grantpt".into())?;
    unlockpt(&master).sys(|| "unlockpt".into())?;
    let name = ptsname_r(&master).sys(|| "ptsname".into())?;
    let slave = nix::fcntl::open(
        name.as_str(),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("open {name}"))?;
    if let Some((rows, cols)) = size {
        set_size(slave, rows, cols);
    }
    if bind_console {
        bind_dev_console(slave)?;
    }
    let fds = [master.as_raw_fd()];
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        console.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .sys(|| "send the pty master to the console socket".into())?;
    drop(master);
    make_controlling(slave)
}

/// Bind the pty slave onto /dev/console, as runc does, so programs that write to the console
/// reach the caller's terminal. The mount goes onto the very inode that was checked, through
/// descriptors (`open_tree` of the slave, `move_mount` onto an `O_PATH` handle), never onto the
/// path again: /dev/console comes from the image when the config has no /dev tmpfs, and
/// between a check and a mount by path it could become a symlink to a file that must never be
/// covered, such as a procfs one (CVE-2025-52565 class).
fn bind_dev_console(slave: RawFd) -> Result<()> {
    let console = open_dev_console()?;
    check_console_target(&console)?;
    let tree = crate::sys::open_tree_clone(slave).sys(|| "clone a mount of the pty".into())?;
    crate::sys::move_mount_onto(&tree, &console).sys(|| "bind the pty onto /dev/console".into())
}

/// An `O_PATH` handle on /dev/console, created (an empty file, mode 0600) if missing, reached
/// without following any symlink. A symlink at /dev fails here; one at /dev/console itself is
/// opened as the link (`O_NOFOLLOW`) and refused by [`check_console_target`].
fn open_dev_console() -> Result<OwnedFd> {
    let no_links = crate::sys::RESOLVE_NO_SYMLINKS | crate::sys::RESOLVE_NO_MAGICLINKS;
    let dev = crate::sys::openat2(
        libc::AT_FDCWD,
        Path::new("/dev"),
        libc::O_PATH | libc::O_DIRECTORY,
        no_links,
    )
    .map_err(|e| refused_path("/dev", e))?;
    let open_console = || {
        crate::sys::openat2(
            dev.as_raw_fd(),
            Path::new("console"),
            libc::O_PATH | libc::O_NOFOLLOW,
            no_links,
        )
    };
    match open_console() {
        Err(Errno::ENOENT) => {
            // O_EXCL: never opens (or follows) whatever appeared there in the meantime.
            match nix::fcntl::openat(
                Some(dev.as_raw_fd()),
                "console",
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_RDONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                Ok(fd) => drop(own(fd)),
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).sys(|| "create /dev/console".into()),
            }
            open_console().map_err(|e| refused_path("/dev/console", e))
        }
        other => other.map_err(|e| refused_path("/dev/console", e)),
    }
}

/// Only a regular file or a character device, on a filesystem that is not a kernel interface,
/// may be covered by the pty.
fn check_console_target(console: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(console.as_raw_fd()).sys(|| "stat /dev/console".into())?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::Spec(format!(
            "/dev/console is {}: only a regular file or a character device can take the \
             container's terminal",
            file_kind(kind)
        )));
    }
    let fs = nix::sys::statfs::fstatfs(console).sys(|| "statfs /dev/console".into())?;
    if let Some(name) = kernel_interface_fs(fs.filesystem_type()) {
        return Err(Error::Spec(format!(
            "/dev/console is on {name}, not on the container's /dev: refusing to bind the \
             terminal onto it"
        )));
    }
    Ok(())
}

/// Why `path` (/dev, or /dev/console itself) could not be opened on the way to /dev/console.
fn refused_path(path: &str, e: Errno) -> Error {
    match e {
        Errno::ELOOP => Error::Spec(format!(
            "{path} is a symbolic link: refusing to reach /dev/console through it for the \
             container's terminal"
        )),
        Errno::ENOTDIR => Error::Spec(format!(
            "{path} is not a directory: cannot bind the container's terminal onto /dev/console"
        )),
        e => Error::Sys {
            what: format!("open {path} to bind the container's terminal onto /dev/console"),
            source: e,
        },
    }
}

fn file_kind(kind: SFlag) -> &'static str {
    match kind {
        k if k == SFlag::S_IFDIR => "a directory",
        k if k == SFlag::S_IFLNK => "a symbolic link",
        k if k == SFlag::S_IFIFO => "a fifo",
        k if k == SFlag::S_IFSOCK => "a socket",
        k if k == SFlag::S_IFBLK => "a block device",
        _ => "of an unknown type",
    }
}

/// Pseudo-filesystems through which the kernel is configured or inspected: a pty mounted over
/// one of their files would at best hide it, at worst be the thing written to.
fn kernel_interface_fs(fs: FsType) -> Option<&'static str> {
    use nix::sys::statfs as magic;
    // Not in nix: efivarfs, configfs, pstore (include/uapi/linux/magic.h).
    let efivarfs = FsType(0xde5e_81e4_u32 as _);
    let configfs = FsType(0x6265_6570_u32 as _);
    let pstore = FsType(0x6165_676c_u32 as _);
    let known: [(FsType, &str); 14] = [
        (magic::PROC_SUPER_MAGIC, "procfs"),
        (magic::SYSFS_MAGIC, "sysfs"),
        (magic::CGROUP_SUPER_MAGIC, "a cgroup filesystem"),
        (magic::CGROUP2_SUPER_MAGIC, "a cgroup2 filesystem"),
        (magic::SECURITYFS_MAGIC, "securityfs"),
        (magic::DEBUGFS_MAGIC, "debugfs"),
        (magic::TRACEFS_MAGIC, "tracefs"),
        (magic::BPF_FS_MAGIC, "bpffs"),
        (magic::SELINUX_MAGIC, "selinuxfs"),
        (magic::SMACK_MAGIC, "smackfs"),
        (magic::NSFS_MAGIC, "nsfs"),
        (efivarfs, "efivarfs"),
        (configfs, "configfs"),
        (pstore, "pstore"),
    ];
    known.iter().find(|(m, _)| *m == fs).map(|(_, name)| *name)
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: called only with a descriptor just returned by a successful open, owned here.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn make_controlling(slave: RawFd) -> Result<()> {
    let _ = nix::unistd::setsid();
    // SAFETY: TIOCSCTTY takes an integer argument; `slave` is an open tty descriptor.
    let ret = unsafe { libc::ioctl(slave, libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(ret).sys(|| "make the pty the controlling terminal".into())?;
    for target in 0..3 {
        nix::unistd::dup2(slave, target).sys(|| "dup pty onto stdio".into())?;
    }
    if slave > 2 {
        let _ = nix::unistd::close(slave);
    }
    Ok(())
}

pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives for the call.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}
