//! The NETLINK_NETFILTER socket: one batch per call, read until every message is acked,
//! returning what the kernel echoed (a new rule with its handle).

use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::error::{Error, Result};
use crate::nfmsg::{self, Message, HEADER_LEN, NFGEN_LEN};

/// Receive buffer: acks are 36 bytes each (capped), an echoed rule a few hundred.
const RECV_BUFFER: usize = 64 * 1024;
/// Batches above this size raise the socket's send buffer (the kernel takes a batch whole).
const DEFAULT_SNDBUF: usize = 200 * 1024;
/// How long a reply may take before the kernel is taken to have dropped it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// `NLMSG_ERROR` (an ack when its error is 0).
const NLMSG_ERROR: u16 = 2;

/// An nf_tables netlink socket, bound for its whole life to the network namespace of the
/// thread that opened it.
pub(crate) struct NfSocket {
    socket: Socket,
    next_seq: u32,
    recv_buf: Vec<u8>,
}

impl std::fmt::Debug for NfSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfSocket")
            .field("fd", &self.socket.as_raw_fd())
            .finish()
    }
}

/// A message the kernel sent back for one of the batch's (`NLM_F_ECHO`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Echo {
    /// Which message of the batch it answers (0 for the first).
    pub index: usize,
    /// Its attributes (after the netfilter header).
    pub attrs: Vec<u8>,
}

impl NfSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<NfSocket> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| Error::Netlink {
                action: what,
                source,
            }
        };
        let mut socket =
            Socket::new(NETLINK_NETFILTER).map_err(io("opening an nf_tables socket"))?;
        socket
            .bind_auto()
            .map_err(io("binding an nf_tables socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connecting an nf_tables socket"))?;
        // Optional: capped acks are shorter; without the timeout a lost reply would hang.
        let _ = socket.set_cap_ack(true);
        set_recv_timeout(&socket, REPLY_TIMEOUT);
        Ok(NfSocket {
            socket,
            next_seq: 1,
            recv_buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// Sends `messages` as one transaction (all or nothing) and waits for the kernel's
    /// acks; the first error refused is returned, as `action` failing.
    pub fn transact(&mut self, action: &str, messages: &[Message]) -> Result<Vec<Echo>> {
        let fail = |source| Error::Netlink {
            action: action.to_owned(),
            source,
        };
        let first = self.next_seq.wrapping_add(1);
        let (datagram, next) = nfmsg::batch(messages, self.next_seq);
        self.next_seq = next;
        if datagram.len() > DEFAULT_SNDBUF {
            set_send_buffer(&self.socket, datagram.len());
        }
        self.socket.send(&datagram, 0).map_err(fail)?;
        let mut echoes = Vec::new();
        let mut acked = 0;
        while acked < messages.len() {
            for reply in self.receive().map_err(fail)? {
                let index = reply.seq.wrapping_sub(first) as usize;
                if index >= messages.len() {
                    continue; // a late answer to an earlier, failed batch
                }
                match reply.kind {
                    Reply::Ack(0) => acked += 1,
                    Reply::Ack(errno) => {
                        return Err(fail(std::io::Error::from_raw_os_error(errno)))
                    }
                    Reply::Message(attrs) => echoes.push(Echo { index, attrs }),
                }
            }
        }
        Ok(echoes)
    }

    /// Reads one datagram's messages.
    fn receive(&mut self) -> std::io::Result<Vec<Received>> {
        self.recv_buf.clear();
        let size = loop {
            match self.socket.recv(&mut self.recv_buf, 0) {
                Ok(size) => break size,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        Ok(split(&self.recv_buf[..size.min(self.recv_buf.len())]))
    }
}

/// One message received.
#[derive(Debug, PartialEq, Eq)]
struct Received {
    seq: u32,
    kind: Reply,
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// An ack: 0, or the errno the request failed with.
    Ack(i32),
    /// Anything else: its attributes.
    Message(Vec<u8>),
}

/// The messages of a datagram (a truncated tail is dropped).
fn split(mut bytes: &[u8]) -> Vec<Received> {
    let mut out = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len < HEADER_LEN || len > bytes.len() {
            break;
        }
        let kind = u16::from_ne_bytes([bytes[4], bytes[5]]);
        let seq = u32::from_ne_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let body = &bytes[HEADER_LEN..len];
        let reply = match kind {
            NLMSG_ERROR if body.len() >= 4 => {
                Reply::Ack(-i32::from_ne_bytes([body[0], body[1], body[2], body[3]]))
            }
            _ => Reply::Message(body.get(NFGEN_LEN..).unwrap_or_default().to_vec()),
        };
        out.push(Received { seq, kind: reply });
        bytes = &bytes[nfmsg::align4(len).min(bytes.len())..];
    }
    out
}

fn set_recv_timeout(socket: &Socket, timeout: Duration) {
    let value = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: 0,
    };
    // SAFETY: setsockopt on an open socket with a pointer to a timeval and its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&value as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// Raises the send buffer to `size` (root may exceed `wmem_max`); on failure the send
/// itself reports the batch too big.
fn set_send_buffer(socket: &Socket, size: usize) {
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt on an open socket with a pointer to an int and its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut out = ((HEADER_LEN + body.len()) as u32).to_ne_bytes().to_vec();
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(body);
        out.resize(nfmsg::align4(out.len()), 0);
        out
    }

    #[test]
    fn acks_errors_and_echoes_are_told_apart() {
        let mut datagram = message(NLMSG_ERROR, 3, &(-2i32).to_ne_bytes());
        datagram.extend(message(NLMSG_ERROR, 4, &0i32.to_ne_bytes()));
        datagram.extend(message(0x0a06, 5, &[1, 0, 0, 0, 9, 9]));
        datagram.extend(&[99, 0, 0, 0, 1]); // truncated
        let got = split(&datagram);
        assert_eq!(
            got,
            vec![
                Received {
                    seq: 3,
                    kind: Reply::Ack(2)
                },
                Received {
                    seq: 4,
                    kind: Reply::Ack(0)
                },
                Received {
                    seq: 5,
                    kind: Reply::Message(vec![9, 9])
                },
            ]
        );
    }
}
