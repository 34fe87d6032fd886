//! The tiny binary protocol between the runtime and the container's init over a
//! SOCK_SEQPACKET socketpair: one tag byte, and for errors a UTF-8 message after it.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

use crate::error::{Error, Result, SysContext};

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
    /// child → parent: setup failed; the message follows the tag.
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

const PEER_GONE: &str = "container init exited unexpectedly during setup";

/// A receive error seen while waiting for the peer's execve: end-of-file means it exec'd.
pub fn exec_happened(e: Error) -> Result<()> {
    match e {
        Error::Child(m) if m == PEER_GONE => Ok(()),
        e => Err(e),
    }
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

    /// Report a failure with its message (the child's last word before exiting).
    pub fn send_error(&self, text: &str) -> Result<()> {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.push(Msg::Failed as u8);
        buf.extend_from_slice(text.as_bytes());
        buf.truncate(8192);
        self.send_bytes(&buf)
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

    /// Receive the next message; a `Failed` from the peer becomes `Error::Child`, and the peer
    /// closing its end (it died) is reported as such.
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
            None if buf.is_empty() => Err(Error::Child(PEER_GONE.into())),
            None => Err(Error::Child(format!(
                "console message without a descriptor: {:?}",
                String::from_utf8_lossy(&buf)
            ))),
        }
    }

    fn recv_full(&self) -> Result<(Msg, Vec<u8>, Option<OwnedFd>)> {
        let (buf, fd) = self.recv_raw()?;
        if buf.is_empty() {
            return Err(Error::Child(PEER_GONE.into()));
        }
        match Msg::from_byte(buf[0]) {
            Some(Msg::Failed) => Err(Error::Child(
                String::from_utf8_lossy(&buf[1..]).into_owned(),
            )),
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
        b.send_error("mount /proc: permission denied").unwrap();
        let err = a.recv().unwrap_err().to_string();
        assert_eq!(err, "mount /proc: permission denied");
        drop(b);
        assert!(a
            .recv()
            .unwrap_err()
            .to_string()
            .contains("exited unexpectedly"));
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
