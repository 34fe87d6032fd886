//! The container's terminal: a pty made from the container's own /dev/ptmx, its master sent to
//! the caller's console socket, its slave made the controlling terminal and stdio.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Result, SysContext};

/// Create the pty, hand its master to `console`, and make the slave our terminal.
pub fn setup(console: &OwnedFd, size: Option<(u16, u16)>) -> Result<()> {
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
