//! The tiny binary protocol between the runtime and the container's init over a
//! SOCK_SEQPACKET socketpair: one tag byte, and for errors a failure report after it (kind,
//! errno, stage, then the UTF-8 message).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::{Error, Result, SysContext};
use crate::kind::ErrorKind;

/// Messages of the create protocol, in the order they normally flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    /// parent → child: id maps are written, namespaces are ready; go on.
    Go = 1,
    /// child → parent: mounts are done; run prestart/createRuntime hooks now.
    RunHooks = 2,
    /// parent → child: the runtime's hooks ran.
    HooksDone = 3,
    /// child → parent: the container is set up and parked waiting for start.
    Ready = 4,
    /// child → parent: setup failed; a failure report (`encode_failure`) follows the tag.
    Failed = 5,
    /// parent → child (`run` only): start now, without the fifo.
    Start = 6,
    /// child → parent: the listener fd of an `SCMP_ACT_NOTIFY` filter, for the agent.
    SeccompFd = 7,
}

impl Msg {
    fn from_byte(b: u8) -> Option<Msg> {
        Some(match b {
            1 => Msg::Go,
            2 => Msg::RunHooks,
            3 => Msg::HooksDone,
            4 => Msg::Ready,
            5 => Msg::Failed,
            6 => Msg::Start,
            7 => Msg::SeccompFd,
            _ => return None,
        })
    }
}

/// A receive error seen while waiting for the peer's execve: end-of-file means it exec'd.
pub fn exec_happened(e: Error) -> Result<()> {
    match e {
        Error::InitExited => Ok(()),
        e => Err(e),
    }
}

/// The longest stage name a report carries.
const STAGE_MAX: usize = 32;
/// Kind byte, errno (i32, little-endian), stage length byte.
const REPORT_HEADER: usize = 6;
/// The most bytes of a report (the launch stub's buffer is smaller).
const REPORT_MAX: usize = 8192;

/// A failure as it crosses from a child to the runtime, after the `Failed` tag on the sync
/// socket or after the start byte on the exec fifo: the kind's byte (`ErrorKind::code`), the
/// errno as i32 little-endian (0: none), the stage's length (at most 32) and its bytes, then
/// the message as UTF-8. `stub/launch.rs` writes the same layout. A failure without a stage
/// of its own gets `default_stage`.
pub fn encode_failure(err: &Error, default_stage: &str) -> Vec<u8> {
    let stage = err.stage().unwrap_or(default_stage).as_bytes();
    let stage = &stage[..stage.len().min(STAGE_MAX)];
    let mut out = Vec::with_capacity(REPORT_HEADER + stage.len() + 128);
    out.push(err.kind().code());
    out.extend_from_slice(&err.errno().unwrap_or(0).to_le_bytes());
    out.push(stage.len() as u8);
    out.extend_from_slice(stage);
    out.extend_from_slice(err.to_string().as_bytes());
    out.truncate(REPORT_MAX);
    out
}

/// The error a failure report describes ([`encode_failure`]); a report too short for its
/// header is taken as text of kind `Internal`.
pub fn decode_failure(report: &[u8]) -> Error {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let parsed = report
        .split_first_chunk::<REPORT_HEADER>()
        .and_then(|(head, rest)| {
            let stage_len = head[5] as usize;
            (stage_len <= rest.len()).then(|| {
                let errno = i32::from_le_bytes([head[1], head[2], head[3], head[4]]);
                Error::Process {
                    kind: ErrorKind::from_code(head[0]),
                    errno: (errno != 0).then_some(errno),
                    stage: text(&rest[..stage_len]),
                    message: text(&rest[stage_len..]),
                }
            })
        });
    parsed.unwrap_or_else(|| Error::Process {
        kind: ErrorKind::Internal,
        errno: None,
        stage: String::new(),
        message: text(report),
    })
}

/// One end of the sync socket.
pub struct SyncSocket {
    fd: OwnedFd,
}

/// A socketpair (close-on-exec): (parent end, child end).
pub fn pair() -> Result<(SyncSocket, SyncSocket)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .sys(|| "create sync socketpair".into())?;
    Ok((SyncSocket { fd: a }, SyncSocket { fd: b }))
}

impl SyncSocket {
    pub fn send(&self, msg: Msg) -> Result<()> {
        self.send_bytes(&[msg as u8])
    }

    /// Send a message with a payload after the tag (the state JSON with `Go`).
    pub fn send_payload(&self, msg: Msg, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + 1);
        buf.push(msg as u8);
        buf.extend_from_slice(payload);
        self.send_bytes(&buf)
    }

    /// Receive a message and its payload.
    pub fn recv_payload(&self) -> Result<(Msg, Vec<u8>)> {
        let (m, payload, _) = self.recv_full()?;
        Ok((m, payload))
    }

    /// Report a failure (the child's last word before exiting): kind, errno, the stage it
    /// names or `default_stage`, and its message (`encode_failure`).
    pub fn send_failure(&self, err: &Error, default_stage: &str) -> Result<()> {
        self.send_payload(Msg::Failed, &encode_failure(err, default_stage))
    }

    fn send_bytes(&self, buf: &[u8]) -> Result<()> {
        let iov = [std::io::IoSlice::new(buf)];
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None)
            .sys(|| "sync socket send".into())?;
        Ok(())
    }

    /// Send an fd with a message (SCM_RIGHTS).
    pub fn send_fd(&self, msg: Msg, fd: RawFd) -> Result<()> {
        let buf = [msg as u8];
        let iov = [std::io::IoSlice::new(&buf)];
        let fds = [fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .sys(|| "sync socket send fd".into())?;
        Ok(())
    }

    /// Receive the next message; a `Failed` from the peer becomes `Error::Process`, and the
    /// peer closing its end (it died) `Error::InitExited`.
    pub fn recv(&self) -> Result<Msg> {
        self.recv_full().map(|(m, ..)| m)
    }

    pub fn recv_with_fd(&self) -> Result<(Msg, Option<OwnedFd>)> {
        self.recv_full().map(|(m, _, fd)| (m, fd))
    }

    /// Wait for the peer to exec: its end is close-on-exec, so end-of-file means the exec
    /// happened; a `Failed` message carries why it did not.
    pub fn wait_exec(&self) -> Result<()> {
        match self.recv_full() {
            Err(e) => exec_happened(e),
            Ok((m, ..)) => Err(Error::Child(format!("unexpected sync message {m:?}"))),
        }
    }

    /// Receive the pty master the init sends over the console socket pair. Its payload is the
    /// pty's name (runc's console-socket message, which external `--console-socket` listeners
    /// read too), not a sync message.
    pub fn recv_console(&self) -> Result<OwnedFd> {
        let (buf, fd) = self.recv_raw()?;
        match fd {
            Some(fd) => Ok(fd),
            None if buf.is_empty() => Err(Error::InitExited),
            None => Err(Error::Child(format!(
                "console message without a descriptor: {:?}",
                String::from_utf8_lossy(&buf)
            ))),
        }
    }

    fn recv_full(&self) -> Result<(Msg, Vec<u8>, Option<OwnedFd>)> {
        let (buf, fd) = self.recv_raw()?;
        if buf.is_empty() {
            return Err(Error::InitExited);
        }
        match Msg::from_byte(buf[0]) {
            Some(Msg::Failed) => Err(decode_failure(&buf[1..])),
            Some(m) => Ok((m, buf[1..].to_vec(), fd)),
            None => Err(Error::Child(format!("unexpected sync message {}", buf[0]))),
        }
    }

    /// One datagram: its bytes and the descriptor it carried, if any.
    fn recv_raw(&self) -> Result<(Vec<u8>, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 65536];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let (len, fd) = loop {
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) => {
                    let mut fd = None;
                    if let Ok(cmsgs) = r.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(fds) = c {
                                if let Some(&f) = fds.first() {
                                    // SAFETY: SCM_RIGHTS just installed this descriptor in our
                                    // table; nothing else owns it.
                                    fd = Some(unsafe { std::os::fd::FromRawFd::from_raw_fd(f) });
                                }
                            }
                        }
                    }
                    break (r.bytes, fd);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).sys(|| "sync socket receive".into()),
            }
        };
        buf.truncate(len);
        Ok((buf, fd))
    }

    /// Wait for a specific message.
    pub fn expect(&self, want: Msg) -> Result<()> {
        let got = self.recv()?;
        if got != want {
            return Err(Error::Child(format!(
                "sync protocol: expected {want:?}, got {got:?}"
            )));
        }
        Ok(())
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_errors_cross() {
        let (a, b) = pair().unwrap();
        a.send(Msg::Go).unwrap();
        assert_eq!(b.recv().unwrap(), Msg::Go);
        let mount = Error::Sys {
            what: "mount /proc".into(),
            source: nix::errno::Errno::EACCES,
        };
        b.send_failure(&mount, "rootfs").unwrap();
        let err = a.recv().unwrap_err();
        assert_eq!(err.to_string(), mount.to_string());
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(err.errno(), Some(libc::EACCES));
        assert_eq!(err.stage(), Some("rootfs"));
        drop(b);
        let gone = a.recv().unwrap_err();
        assert!(matches!(gone, Error::InitExited));
        assert!(gone.to_string().contains("exited unexpectedly"));
        assert!(exec_happened(gone).is_ok());
    }

    #[test]
    fn failure_reports_keep_kind_errno_stage_and_text() {
        let missing = Error::ExecutableNotFound {
            program: "nosuch".into(),
            reason: "executable file not found in $PATH",
        };
        let staged = missing.at_stage("process");
        let back = decode_failure(&encode_failure(&staged, "init"));
        assert_eq!(back.kind(), ErrorKind::ExecutableNotFound);
        assert_eq!(back.errno(), None);
        assert_eq!(back.stage(), Some("process"));
        assert_eq!(
            back.to_string(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        // An error without a stage gets the default one; a long stage is cut.
        let back = decode_failure(&encode_failure(&Error::Spec("bad".into()), "exec"));
        assert_eq!(
            (back.kind(), back.stage()),
            (ErrorKind::InvalidArgument, Some("exec"))
        );
        let long = "s".repeat(100);
        assert_eq!(
            decode_failure(&encode_failure(&back, &long)).stage(),
            Some("exec")
        );
        let unstaged = Error::Spec("x".into());
        let cut = decode_failure(&encode_failure(&unstaged, &long));
        assert_eq!(cut.stage().map(str::len), Some(STAGE_MAX));
    }

    #[test]
    fn short_or_malformed_reports_are_internal_text() {
        for bytes in [&b""[..], b"abc", &[4, 0, 0, 0, 0, 200, b'x']] {
            let e = decode_failure(bytes);
            assert_eq!(e.kind(), ErrorKind::Internal, "{bytes:?}");
            assert_eq!(e.to_string(), String::from_utf8_lossy(bytes));
        }
        // The layout the launch stub writes by hand: kind 5, errno 2, stage "exec".
        let mut stub = vec![5, 2, 0, 0, 0, 4];
        stub.extend_from_slice(b"execexec /x: no such file or directory");
        let e = decode_failure(&stub);
        assert_eq!(e.kind(), ErrorKind::ExecutableNotFound);
        assert_eq!(e.errno(), Some(2));
        assert_eq!(e.stage(), Some("exec"));
        assert_eq!(e.to_string(), "exec /x: no such file or directory");
    }

    #[test]
    fn fds_cross() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        a.send_fd(Msg::Ready, f.as_raw_fd()).unwrap();
        let (m, fd) = b.recv_with_fd().unwrap();
        assert_eq!(m, Msg::Ready);
        assert!(fd.is_some());
    }
}
