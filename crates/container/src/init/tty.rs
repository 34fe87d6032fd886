//! The container's terminal: a pty made from the container's own /dev/ptmx, its master sent to
//! the caller's console socket, its slave made the controlling terminal and stdio.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Result, SysContext};

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
        bind_dev_console(&name)?;
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
/// reach the caller's terminal. A symlink there is refused (O_NOFOLLOW).
fn bind_dev_console(pty: &str) -> Result<()> {
    let fd = nix::fcntl::open(
        "/dev/console",
        nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .sys(|| "create /dev/console".into())?;
    let _ = nix::unistd::close(fd);
    nix::mount::mount(
        Some(pty),
        "/dev/console",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .sys(|| format!("bind {pty} onto /dev/console"))
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
