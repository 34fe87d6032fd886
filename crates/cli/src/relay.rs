//! The terminal side of an attached container or exec: our stdin to the container, its
//! output to our stdout and stderr, our signals forwarded, our window size followed. This is
//! process-global work (signal masks, terminal modes), so it lives in the CLI binary.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pelagos_model::protocol::{Client, Frame, Reply, Request, STDERR};

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container (or exec) exited with this code.
    Exited(i32),
    /// The detach keys were typed.
    Detached,
}

/// Signals forwarded to the container (Docker's sig-proxy) plus SIGWINCH for the size.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Blocks the forwarded signals and returns a descriptor that reads them.
fn signal_fd() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    set.thread_block().context("block signals")?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).context("signalfd")
}

/// Our terminal in raw mode while it lives; restored on drop.
struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    fn enter(enabled: bool) -> RawTerminal {
        let stdin = std::io::stdin();
        if !enabled || !std::io::IsTerminal::is_terminal(&stdin) {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawTerminal { saved: None };
        };
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
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Our terminal's size (rows, columns), if stdout or stdin is one.
pub fn window_size() -> Option<(u16, u16)> {
    for fd in [1, 0] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize into the struct we pass, valid for the call.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

fn poll_fds(fds: &mut [libc::pollfd]) -> Result<()> {
    loop {
        // SAFETY: `fds` is a valid slice of pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e).context("poll");
        }
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// What a session relays.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The container has a terminal: raw mode here, window size followed.
    pub tty: bool,
    /// Forward our signals (Docker's `--sig-proxy`).
    pub sig_proxy: bool,
}

/// Writes output frames to our stdout and stderr; the end of the attachment, if a frame says
/// so.
fn deliver(
    frames: Vec<Frame<Reply>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Option<Ended>> {
    for frame in frames {
        match frame {
            Frame::Data { stream, bytes } => {
                let w: &mut dyn Write = if stream == STDERR {
                    &mut *err
                } else {
                    &mut *out
                };
                let _ = w.write_all(&bytes).and_then(|()| w.flush());
            }
            Frame::Control { message, .. } => match message {
                Reply::Exited { exit_code, .. } => return Ok(Some(Ended::Exited(exit_code))),
                Reply::Detached => return Ok(Some(Ended::Detached)),
                Reply::Error(e) => return Err(pelagos_model::Error::Remote(e).into()),
                _ => {}
            },
        }
    }
    Ok(None)
}

/// Relays an attached monitor connection until the container exits or we detach.
pub fn relay_attached(client: &mut Client, opts: RelayOptions) -> Result<Ended> {
    let signals = signal_fd()?;
    let _raw = RawTerminal::enter(opts.tty && opts.stdin);
    if opts.tty {
        if let Some((height, width)) = window_size() {
            client.send(&Request::Resize { height, width }, &[])?;
        }
    }
    let mut stdin_open = opts.stdin;
    let mut buf = vec![0u8; 32 * 1024];
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    // The answer to `start` may have come with the first output in the same read.
    if let Some(ended) = deliver(client.buffered()?, &mut out, &mut err)? {
        return Ok(ended);
    }
    loop {
        let mut fds = vec![
            pollfd(client.socket().as_raw_fd()),
            pollfd(signals.as_raw_fd()),
        ];
        if stdin_open {
            fds.push(pollfd(0));
        }
        poll_fds(&mut fds)?;
        if fds[1].revents != 0 {
            while let Ok(Some(info)) = signals.read_signal() {
                let signal = info.ssi_signo as i32;
                if signal == libc::SIGWINCH {
                    if let Some((height, width)) = window_size() {
                        client.send(&Request::Resize { height, width }, &[])?;
                    }
                } else if opts.sig_proxy && !opts.tty {
                    client.send(&Request::Kill { signal }, &[])?;
                }
            }
        }
        if stdin_open && fds[2].revents != 0 {
            let n = nix::unistd::read(0, &mut buf).unwrap_or(0);
            client.send_stdin(&buf[..n])?;
            stdin_open = n > 0;
        }
        if fds[0].revents == 0 {
            continue;
        }
        let Some(frames) = client.read_available()? else {
            bail!("the container's monitor closed the connection (it died?)");
        };
        if let Some(ended) = deliver(frames, &mut out, &mut err)? {
            return Ok(ended);
        }
    }
}

/// Relays between our terminal and an exec's pty master until the exec's connection says it
/// ended (the master's output drained first); `ended` is `None` when that was already read.
pub fn relay_pty(master: OwnedFd, ended: Option<BorrowedFd<'_>>, stdin: bool) -> Result<()> {
    let Some(ended) = ended else {
        // The exit came with the start: only what the process left in the pty remains.
        drain(
            &master,
            &mut [0u8; 32 * 1024],
            &mut std::io::stdout().lock(),
        );
        return Ok(());
    };
    let signals = signal_fd()?;
    let _raw = RawTerminal::enter(stdin);
    let resize = |master: &OwnedFd| {
        if let Some((rows, cols)) = window_size() {
            let ws = libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCSWINSZ reads the winsize we pass, valid for the call.
            unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    };
    resize(&master);
    let mut buf = vec![0u8; 32 * 1024];
    let mut out = std::io::stdout().lock();
    let mut stdin_open = stdin;
    loop {
        let mut fds = vec![
            pollfd(master.as_raw_fd()),
            pollfd(signals.as_raw_fd()),
            pollfd(ended.as_raw_fd()),
        ];
        if stdin_open {
            fds.push(pollfd(0));
        }
        poll_fds(&mut fds)?;
        if fds[0].revents != 0 {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                    continue;
                }
                // EIO: every slave end closed (the process and its children are gone).
                _ => return Ok(()),
            }
        }
        if fds[1].revents != 0 {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo as i32 == libc::SIGWINCH {
                    resize(&master);
                }
            }
        }
        if stdin_open && fds[3].revents != 0 {
            let n = nix::unistd::read(0, &mut buf).unwrap_or(0);
            stdin_open = n > 0 && nix::unistd::write(&master, &buf[..n]).is_ok();
        }
        if fds[2].revents != 0 {
            drain(&master, &mut buf, &mut out);
            return Ok(());
        }
    }
}

/// Copies what is left in the master without waiting for more (a background process may
/// keep the pty open after the exec ended).
fn drain(master: &OwnedFd, buf: &mut [u8], out: &mut impl Write) {
    let _ = nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    while let Ok(n) = nix::unistd::read(master.as_raw_fd(), buf) {
        if n == 0 {
            break;
        }
        let _ = out.write_all(&buf[..n]);
    }
    let _ = out.flush();
}
