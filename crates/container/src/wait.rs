//! Waiting for a foreground process (`run`, `exec` without `--detach`): signals forwarded to
//! it, its pty proxied to our stdio when the runtime holds the master, its exit status
//! turned into ours (128 + signal when killed). Process-plane only: it blocks signals for the
//! process and reaps every child, so it refuses to run in a process with other threads.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Result, SysContext};
use crate::threads;

const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Wait for `pid` (our child) to exit, forwarding signals; returns its exit code.
///
/// For a process that owns its children and its signals, such as `pelagos-runtime run` or a
/// container's monitor: it blocks the forwarded signals with sigprocmask (for good: they stay
/// blocked, read from a signalfd), reaps every exited child (a subreaper's orphans too) and
/// reads stdin. A caller with other threads, where the mask would cover one thread only and
/// another thread's children would be reaped, gets `Error::MultiThreaded`.
pub fn wait_foreground(pid: i32, pty_master: Option<OwnedFd>) -> Result<i32> {
    threads::ensure_single_threaded("the foreground wait")?;
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .sys(|| "block signals".into())?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .sys(|| "signalfd".into())?;
    let child = Pid::from_raw(pid);
    // The pidfd says "exited" even when SIGCHLD was already consumed before the mask was set.
    let pidfd = crate::sys::pidfd_open(pid).sys(|| format!("pidfd_open {pid}"))?;
    let _raw = pty_master
        .as_ref()
        .map(|m| RawTerminal::enter(m.as_raw_fd()));
    let stdin_is_tty = nix::unistd::isatty(0).unwrap_or(false);
    let mut stdin_open = pty_master.is_some();
    let mut buf = [0u8; 16384];

    // A child that exited before the signal mask was set left a SIGCHLD that is pending now.
    loop {
        if let Some(code) = reap(child) {
            if let Some(m) = &pty_master {
                drain(m.as_raw_fd(), &mut buf);
            }
            return Ok(code);
        }
        let mut fds = vec![
            libc::pollfd {
                fd: sfd.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Some(m) = &pty_master {
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            while let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    continue;
                }
                if signo == libc::SIGWINCH {
                    if let Some(m) = &pty_master {
                        copy_winsize(m.as_raw_fd());
                    }
                    continue;
                }
                // SAFETY: kill(2) with integer arguments.
                unsafe { libc::kill(pid, signo) };
            }
        }
        if let Some(m) = &pty_master {
            if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    Ok(n) if n > 0 => write_all(1, &buf[..n]),
                    _ => {}
                }
            }
            if stdin_open && fds.len() > 3 && fds[3].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                match nix::unistd::read(0, &mut buf) {
                    Ok(n) if n > 0 => write_all(m.as_raw_fd(), &buf[..n]),
                    _ => {
                        stdin_open = false;
                        if !stdin_is_tty {
                            // Pass end-of-file on: ^D at the start of a line.
                            write_all(m.as_raw_fd(), &[4]);
                        }
                    }
                }
            }
        }
    }
}

/// Reap every exited child (we may be a subreaper); the exit code of `child` when it is done.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == child => result = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == child => result = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}

fn drain(fd: i32, buf: &mut [u8]) {
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(fd, buf) {
        if n == 0 {
            break;
        }
        write_all(1, &buf[..n]);
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `fd` is one of our open descriptors for the duration of the call.
        let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        match nix::unistd::write(b, data) {
            Ok(n) if n > 0 => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            _ => return,
        }
    }
}

fn copy_winsize(master: i32) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes into `ws`, which lives for the call.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == 0 {
        crate::init::tty::set_size(master, ws.ws_row, ws.ws_col);
    }
}

/// Our stdin in raw mode while proxying a pty; restored on drop.
struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    fn enter(master: i32) -> RawTerminal {
        let stdin = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawTerminal { saved: None };
        };
        copy_winsize(master);
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ =
            nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}
