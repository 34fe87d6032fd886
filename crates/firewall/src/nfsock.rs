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

    /// Sends `messages` as one transaction (all or nothing) and waits for the kernel's ack
    /// of the last, sent once the batch is committed; the first error refused is returned,
    /// as `action` failing.
    pub fn transact(&mut self, action: &str, messages: &[Message]) -> Result<Vec<Echo>> {
        let fail = |source| Error::Netlink {
            action: action.to_owned(),
            source,
        };
        let begin = self.next_seq;
        let (datagram, next) = nfmsg::batch(messages, begin);
        self.next_seq = next;
        if datagram.len() > DEFAULT_SNDBUF {
            set_send_buffer(&self.socket, datagram.len());
        }
        self.socket.send(&datagram, 0).map_err(fail)?;
        let mut batch = Batch {
            begin,
            count: messages.len(),
            committed: messages.is_empty(),
            echoes: Vec::new(),
        };
        while !batch.committed {
            for reply in self.receive().map_err(fail)? {
                batch.file(reply).map_err(fail)?;
            }
        }
        Ok(batch.echoes)
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

/// A batch awaiting its commit: sequence numbers `begin` (BATCH_BEGIN), `begin + 1 ..=
/// begin + count` (its messages), `begin + count + 1` (BATCH_END).
struct Batch {
    begin: u32,
    count: usize,
    committed: bool,
    echoes: Vec<Echo>,
}

impl Batch {
    /// Takes in one reply: an error on any of the batch's sequence numbers (a refusal of
    /// the whole batch, such as EPERM, comes on BATCH_BEGIN's) fails it.
    fn file(&mut self, reply: Received) -> std::io::Result<()> {
        let offset = reply.seq.wrapping_sub(self.begin) as usize;
        if offset > self.count + 1 {
            return Ok(()); // a late answer to an earlier, failed batch
        }
        match reply.kind {
            Reply::Ack(0) => self.committed |= offset == self.count,
            Reply::Ack(errno) => return Err(std::io::Error::from_raw_os_error(errno)),
            Reply::Message(attrs) if offset >= 1 && offset <= self.count => {
                self.echoes.push(Echo {
                    index: offset - 1,
                    attrs,
                })
            }
            Reply::Message(_) => {}
        }
        Ok(())
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
            got[..],
            [
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

    #[test]
    fn a_batch_is_committed_by_its_last_ack_and_failed_by_any_error() {
        let reply = |seq, kind| Received { seq, kind };
        let mut batch = Batch {
            begin: 10,
            count: 2,
            committed: false,
            echoes: Vec::new(),
        };
        batch.file(reply(3, Reply::Ack(1))).unwrap(); // an earlier batch's
        batch.file(reply(12, Reply::Message(vec![7]))).unwrap();
        batch.file(reply(11, Reply::Ack(0))).unwrap();
        assert!(!batch.committed);
        batch.file(reply(12, Reply::Ack(0))).unwrap();
        assert!(batch.committed);
        assert_eq!(
            batch.echoes,
            [Echo {
                index: 1,
                attrs: vec![7]
            }]
        );
        let err = batch.file(reply(10, Reply::Ack(libc::EPERM))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }
}
