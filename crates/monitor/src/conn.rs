//! One client connection of the control socket: frames in through the model's
//! [`FrameReader`], replies and output out through a bounded outbox written without blocking.
//! A client too slow for the container's output loses output; replies are always queued.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use pelagos_model::protocol::{self, Frame, FrameReader, Reply, Request};

use crate::detach;
use crate::error::Result;

/// Output queued beyond this is dropped for this client.
pub const OUTBOX_LIMIT: usize = 256 * 1024;

/// What an attached client gets and sends.
#[derive(Debug)]
pub struct Attachment {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Detach keys on stdin (a tty container only).
    pub detach: Option<detach::Matcher>,
}

/// Bytes to send, with the descriptors that go with their first byte.
struct Chunk {
    bytes: Vec<u8>,
    sent: usize,
    fds: Vec<OwnedFd>,
}

/// A client.
pub struct Conn {
    sock: UnixStream,
    reader: FrameReader,
    outbox: VecDeque<Chunk>,
    queued: usize,
    /// Attached to the container's stdio.
    pub attachment: Option<Attachment>,
    /// Close once the outbox is sent (its last answer is queued).
    pub closing: bool,
    /// The peer sends no more (it may still read).
    pub eof: bool,
    /// The peer is gone or broke the protocol: drop it.
    pub dead: bool,
}

impl Conn {
    /// A connection (made non-blocking), with what was already read from it.
    pub fn new(sock: UnixStream, reader: FrameReader) -> Result<Conn> {
        crate::sys::set_nonblocking(sock.as_fd())?;
        Ok(Conn {
            sock,
            reader,
            outbox: VecDeque::new(),
            queued: 0,
            attachment: None,
            closing: false,
            eof: false,
            dead: false,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Whether there is something to send.
    pub fn wants_write(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Queues an answer.
    pub fn reply(&mut self, reply: &Reply) {
        self.reply_with_fds(reply, Vec::new());
    }

    /// Queues an answer carrying descriptors.
    pub fn reply_with_fds(&mut self, reply: &Reply, fds: Vec<OwnedFd>) {
        match protocol::control_frame(reply, fds.len()) {
            Ok(bytes) => self.push(bytes, fds),
            Err(_) => self.dead = true,
        }
    }

    /// Queues a last answer and closes once it is sent.
    pub fn reply_and_close(&mut self, reply: &Reply) {
        self.reply(reply);
        self.closing = true;
    }

    /// Queues output; dropped when the client is too far behind.
    pub fn output(&mut self, stream: u8, bytes: &[u8]) {
        if self.queued + bytes.len() > OUTBOX_LIMIT {
            return;
        }
        self.push(protocol::data_frame(stream, bytes), Vec::new());
    }

    /// Whether queued output leaves room for `len` more bytes.
    pub fn has_room(&self, len: usize) -> bool {
        self.queued + len <= OUTBOX_LIMIT
    }

    fn push(&mut self, bytes: Vec<u8>, fds: Vec<OwnedFd>) {
        self.queued += bytes.len();
        self.outbox.push_back(Chunk {
            bytes,
            sent: 0,
            fds,
        });
    }

    /// Sends what the socket takes now.
    pub fn flush(&mut self) {
        while let Some(chunk) = self.outbox.front_mut() {
            let fds: Vec<BorrowedFd<'_>> = chunk.fds.iter().map(|f| f.as_fd()).collect();
            match protocol::send_with_fds(self.sock.as_fd(), &chunk.bytes[chunk.sent..], &fds) {
                Ok(n) => {
                    chunk.sent += n;
                    chunk.fds.clear();
                    if chunk.sent < chunk.bytes.len() {
                        return;
                    }
                    self.queued -= chunk.bytes.len();
                    self.outbox.pop_front();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        if self.closing {
            self.dead = true;
        }
    }

    /// Reads what arrived (through `buf`), noting the end of the peer's sending.
    pub fn fill(&mut self, buf: &mut [u8]) {
        match self.reader.fill_with(self.sock.as_fd(), buf) {
            Ok(0) => self.eof = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => self.dead = true,
        }
    }

    /// The next complete frame; a malformed one is an error.
    pub fn next_frame(&mut self) -> pelagos_model::Result<Option<Frame<Request>>> {
        self.reader.next_frame()
    }
}
