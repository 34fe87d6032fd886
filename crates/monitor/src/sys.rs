//! Small system helpers of the monitor: descriptor flags, pipes, non-blocking reads, poll,
//! reaping a child, terminal sizes, giving freed heap back.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};

use crate::error::{Error, Result};

/// Marks a descriptor close-on-exec.
pub fn set_cloexec(fd: RawFd) -> Result<()> {
    // SAFETY: the caller names a descriptor it owns and keeps open for the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map(drop)
        .map_err(|e| {
            Error::sys(
                format!("mark descriptor {} close-on-exec", fd.as_raw_fd()),
                e,
            )
        })
}

/// Makes reads and writes on a descriptor return at once.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).map_err(|e| Error::sys("F_GETFL", e))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(|e| Error::sys("make a descriptor non-blocking", e))
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))
}

/// `/dev/null`, close-on-exec.
pub fn dev_null(write: bool) -> Result<OwnedFd> {
    let mode = if write {
        OFlag::O_WRONLY
    } else {
        OFlag::O_RDONLY
    };
    let fd = nix::fcntl::open(
        "/dev/null",
        mode | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open /dev/null", e))?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a non-blocking read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Data(usize),
    /// End of file (or a pty whose other side is gone).
    Eof,
    WouldBlock,
}

/// Reads once without blocking; errors other than "try again" count as the end.
pub fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Read {
    loop {
        return match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(0) => Read::Eof,
            Ok(n) => Read::Data(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Read::WouldBlock,
            Err(_) => Read::Eof,
        };
    }
}

/// Writes what it can without blocking; `Ok(0)` when the descriptor is full.
pub fn write_some(fd: BorrowedFd<'_>, bytes: &[u8]) -> std::io::Result<usize> {
    loop {
        return match nix::unistd::write(fd, bytes) {
            Ok(n) => Ok(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
}

/// poll(2) over `fds`, `timeout_ms` -1 for ever; EINTR is no event.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd for the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let e = Errno::last();
        if e == Errno::EINTR {
            return Ok(0);
        }
        return Err(Error::sys("poll", e));
    }
    Ok(n as usize)
}

/// Reaps our child `pid` (which has exited, or will); its exit code, 128+N when a signal
/// killed it.
pub fn reap(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("wait for process {pid}"), e)),
        }
    }
}

/// The start time of our own process (field 22 of /proc/self/stat).
pub fn own_start_time() -> u64 {
    pelagos_container::sys::process_start_time(std::process::id() as i32).unwrap_or(0)
}

/// Sets a terminal's size.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize, which lives for the call; the fd is open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(Error::sys("resize the terminal", Errno::last()));
    }
    Ok(())
}

/// Gives the heap's free memory back to the kernel.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own heap; any pad value is valid.
    unsafe { libc::malloc_trim(0) };
}

/// Ignores SIGPIPE: a client or a pipe that went away is an error return, not our death.
/// (Container processes get default dispositions back before their program runs.)
pub fn ignore_sigpipe() {
    // SAFETY: SIG_IGN for SIGPIPE installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}
