//! The monitor's control protocol: what clients (the CLI, the daemon, other monitors' users)
//! ask a container's monitor over its unix socket, and what it answers.
//!
//! Everything on a connection is a frame with Docker's 8-byte stream header
//! (`[stream, 0, 0, 0, length as u32 big-endian]`): stream 0 is stdin (client → monitor,
//! an empty frame closes it), 1 stdout and 2 stderr (monitor → client, the bytes of an
//! attached container), and 3 is a control message: a JSON [`Request`] or [`Reply`] with the
//! number of descriptors it carries (sent with `SCM_RIGHTS` in the same `sendmsg`). So a
//! daemon can pass output frames to a Docker client as they are.

use std::collections::VecDeque;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use pelagos_container::ContainerId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kind::{ErrorKind, WireError};
use crate::state::{ContainerState, Status};

/// Stream numbers of frames.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const CONTROL: u8 = 3;

/// The header's length.
pub const HEADER_LEN: usize = 8;
/// The largest frame accepted (a control message or a chunk of output).
pub const MAX_FRAME: usize = 1 << 20;
/// Most descriptors one message carries.
pub const MAX_FDS: usize = 4;

/// The directory of monitor sockets under the runroot.
pub const SOCKET_DIR: &str = "m";

/// Where a container's monitor listens.
pub fn socket_path(runroot: &Path, id: &ContainerId) -> PathBuf {
    runroot.join(SOCKET_DIR).join(id.as_str())
}

/// Which end of its life `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitCondition {
    /// Returns at once if it is not running, else at its exit.
    #[default]
    NotRunning,
    /// The next exit, even of a restart.
    NextExit,
    /// Its removal.
    Removed,
}

/// What an attached client receives and sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// First replay the log (Docker's `logs=1`).
    #[serde(default)]
    pub logs: bool,
    /// Docker's detach keys (`ctrl-p,ctrl-q` by default; empty string disables).
    #[serde(default)]
    pub detach_keys: Option<String>,
}

/// A process to run in the container (`exec`). Without a tty its stdio are the descriptors
/// sent with the request (stdin if `attach_stdin`, then stdout, then stderr); with one the
/// monitor answers with the pty's master.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub privileged: bool,
    /// Do not report the exit: answer once it started.
    #[serde(default)]
    pub detach: bool,
    /// Initial terminal size (rows, columns).
    #[serde(default)]
    pub console_size: Option<(u16, u16)>,
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// From whoever spawned the monitor: start the container, attaching this connection
    /// first when asked (so no output is missed). Answered by `Started` or `Error`.
    Start {
        attach: Option<Attach>,
    },
    /// Answered by `State`.
    State,
    /// Answered by `Exited` (or `Removed`) when the condition is met.
    Wait {
        condition: WaitCondition,
    },
    /// Stop signal (the container's, or this one), SIGKILL after `timeout` seconds (the
    /// container's StopTimeout, or 10, when `None`; negative waits for ever). Ends any
    /// restart policy at once. Answered by `Exited`.
    Stop {
        signal: Option<i32>,
        timeout: Option<i64>,
        /// A start follows (Docker's `restart`): AutoRemove does not remove the container at
        /// this exit, only at the end of a later run (moby keeps it through a restart).
        #[serde(default)]
        restart: bool,
    },
    /// A signal to the container's init. Answered by `Ok`.
    Kill {
        signal: i32,
    },
    Pause,
    Unpause,
    /// Kill it if it runs, clean up, delete the record (and with `volumes` its anonymous
    /// volumes), exit. Answered by `Removed`.
    Remove {
        volumes: bool,
    },
    /// Attach this connection to the container's stdio. Answered by `Attached`, then output
    /// frames, then `Detached` or `Exited`.
    Attach(Attach),
    /// The container's terminal size.
    Resize {
        height: u16,
        width: u16,
    },
    /// A process in the container. Answered by `ExecStarted` (with the pty master when it
    /// has a tty), then `ExecExited` unless detached.
    Exec(ExecSpec),
    /// New resource limits (applied to the running container's cgroup) and restart policy,
    /// kept in the record. Answered by `Ok`.
    Update(crate::config::UpdateConfig),
    /// `network connect`: the endpoint (its `NetworkID` resolved) joins the record under the
    /// network's name; a running container gets it at once (`ethN`, the next free). Answered
    /// by `Ok`.
    Connect {
        network: String,
        settings: crate::config::EndpointSettings,
    },
    /// `network disconnect`: the endpoint leaves the record; a running container loses its
    /// interface, lease and the lines of it at once. Answered by `Ok`.
    Disconnect {
        network: String,
    },
}

/// The monitor's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error(WireError),
    State(ContainerState),
    Started {
        pid: i32,
    },
    Exited {
        exit_code: i32,
        status: Status,
    },
    /// The record is gone; `exit_code` is the container's last (a wait for the removal
    /// answers with it, as moby's). Absent from older monitors: 0.
    Removed {
        #[serde(default)]
        exit_code: i32,
    },
    Attached,
    Detached,
    ExecStarted {
        pid: i32,
    },
    ExecExited {
        exit_code: i32,
    },
}

/// A control message with the count of descriptors that came with it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    fds: u8,
    #[serde(flatten)]
    body: T,
}

/// One frame as received.
#[derive(Debug)]
pub enum Frame<T> {
    /// Bytes of a stream (an empty stdin frame is its end).
    Data { stream: u8, bytes: Vec<u8> },
    /// A control message and its descriptors.
    Control { message: T, fds: Vec<OwnedFd> },
}

/// The header of a frame.
pub fn header(stream: u8, len: usize) -> [u8; HEADER_LEN] {
    let n = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// A data frame.
pub fn data_frame(stream: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + bytes.len());
    out.extend_from_slice(&header(stream, bytes.len()));
    out.extend_from_slice(bytes);
    out
}

/// A control frame for `message` carrying `fds` descriptors.
pub fn control_frame<T: Serialize>(message: &T, fds: usize) -> Result<Vec<u8>> {
    let env = Envelope {
        fds: fds as u8,
        body: message,
    };
    let json = serde_json::to_vec(&env)
        .map_err(|e| Error::Invalid(format!("encode a control message: {e}")))?;
    Ok(data_frame(CONTROL, &json))
}

/// Sends `bytes` with `fds` attached to their first byte; returns how many bytes went (a
/// non-blocking socket may take fewer).
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    let iov = [IoSlice::new(bytes)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reassembles frames from what a socket delivers, keeping descriptors in arrival order.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    eof: bool,
}

impl FrameReader {
    /// Reads once from `sock` (blocking or not); `Ok(0)` at end of file.
    pub fn fill(&mut self, sock: BorrowedFd<'_>) -> std::io::Result<usize> {
        self.fill_with(sock, &mut [0u8; 65536])
    }

    /// [`fill`](Self::fill) through the caller's buffer: a process that keeps one buffer for
    /// all its reads (the monitor) touches no new stack for it.
    pub fn fill_with(&mut self, sock: BorrowedFd<'_>, chunk: &mut [u8]) -> std::io::Result<usize> {
        let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut *chunk)];
            match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(list) = c {
                                fds.extend(list);
                            }
                        }
                    }
                    break (msg.bytes, fds);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        for fd in fds {
            // SAFETY: SCM_RIGHTS gave us this new descriptor; nothing else owns it.
            self.fds.push_back(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        self.buf.extend_from_slice(&chunk[..n]);
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Whether the peer closed.
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// The next complete frame, if one is buffered.
    pub fn next_frame<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<Frame<T>>> {
        if self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len > MAX_FRAME {
            return Err(Error::Invalid(format!("frame of {len} bytes is too large")));
        }
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let stream = self.buf[0];
        let bytes: Vec<u8> = self.buf[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.buf.drain(..HEADER_LEN + len);
        if stream != CONTROL {
            return Ok(Some(Frame::Data { stream, bytes }));
        }
        let env: Envelope<T> = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("malformed control message: {e}")))?;
        let want = env.fds as usize;
        if want > MAX_FDS || want > self.fds.len() {
            return Err(Error::Invalid(format!(
                "control message announces {want} descriptors, {} arrived",
                self.fds.len()
            )));
        }
        let fds = self.fds.drain(..want).collect();
        Ok(Some(Frame::Control {
            message: env.body,
            fds,
        }))
    }
}

/// A blocking connection to a monitor (the client side).
#[derive(Debug)]
pub struct Client {
    sock: UnixStream,
    reader: FrameReader,
}

/// Why connecting to a monitor failed.
#[derive(Debug)]
pub enum ConnectError {
    /// No monitor listens (none was started, or it is gone).
    NoMonitor,
    /// Anything else.
    Other(Error),
}

impl Client {
    /// Connects to the monitor of container `id`.
    pub fn connect(runroot: &Path, id: &ContainerId) -> std::result::Result<Client, ConnectError> {
        let path = socket_path(runroot, id);
        match connect_path(&path) {
            Ok(sock) => Ok(Client {
                sock,
                reader: FrameReader::default(),
            }),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::ECONNREFUSED) | Some(libc::ENOTDIR)
                ) =>
            {
                Err(ConnectError::NoMonitor)
            }
            Err(e) => Err(ConnectError::Other(Error::io(
                format!("connect to the monitor at {}", path.display()),
                e,
            ))),
        }
    }

    /// A client over an already connected socket.
    pub fn from_stream(sock: UnixStream) -> Client {
        Client {
            sock,
            reader: FrameReader::default(),
        }
    }

    /// The socket (to poll it).
    pub fn socket(&self) -> &UnixStream {
        &self.sock
    }

    /// Sends a request with descriptors.
    pub fn send(&mut self, request: &Request, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let bytes = control_frame(request, fds.len())?;
        self.write_all(&bytes, fds)
    }

    /// Sends stdin bytes (empty: end of stdin).
    pub fn send_stdin(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(&data_frame(STDIN, bytes), &[])
    }

    fn write_all(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
        let mut sent = send_with_fds(self.sock.as_fd(), bytes, fds)
            .map_err(|e| Error::io("write to the monitor", e))?;
        while sent < bytes.len() {
            sent += send_with_fds(self.sock.as_fd(), &bytes[sent..], &[])
                .map_err(|e| Error::io("write to the monitor", e))?;
        }
        Ok(())
    }

    /// The next frame; `None` when the monitor closed the connection.
    pub fn next_frame(&mut self) -> Result<Option<Frame<Reply>>> {
        loop {
            if let Some(f) = self.reader.next_frame()? {
                return Ok(Some(f));
            }
            if self.reader.at_eof() {
                return Ok(None);
            }
            self.reader
                .fill(self.sock.as_fd())
                .map_err(|e| Error::io("read from the monitor", e))?;
        }
    }

    /// Whether bytes already read wait to be returned (polling the socket would not say so).
    pub fn has_buffered(&self) -> bool {
        !self.reader.buf.is_empty()
    }

    /// The complete frames already read but not yet returned (a reply read earlier can have
    /// brought the output that followed it): a caller that polls the socket must take these
    /// first, or it would wait for bytes it already holds.
    pub fn buffered(&mut self) -> Result<Vec<Frame<Reply>>> {
        let mut frames = Vec::new();
        while let Some(f) = self.reader.next_frame()? {
            frames.push(f);
        }
        Ok(frames)
    }

    /// After the socket polled readable: reads once and returns every complete frame (`None`
    /// when the monitor closed the connection and nothing is left).
    pub fn read_available(&mut self) -> Result<Option<Vec<Frame<Reply>>>> {
        self.reader
            .fill(self.sock.as_fd())
            .map_err(|e| Error::io("read from the monitor", e))?;
        let mut frames = Vec::new();
        while let Some(f) = self.reader.next_frame()? {
            frames.push(f);
        }
        if frames.is_empty() && self.reader.at_eof() {
            return Ok(None);
        }
        Ok(Some(frames))
    }

    /// The next control reply, skipping nothing: data frames before it are an error.
    pub fn reply(&mut self) -> Result<(Reply, Vec<OwnedFd>)> {
        match self.next_frame()? {
            Some(Frame::Control { message, fds }) => Ok((message, fds)),
            Some(Frame::Data { .. }) => Err(Error::Invalid(
                "the monitor sent output where an answer was expected".into(),
            )),
            None => Err(Error::Remote(WireError::new(
                ErrorKind::Internal,
                "the container's monitor closed the connection without an answer (it died?)",
            ))),
        }
    }

    /// Sends a request and returns its answer; `Reply::Error` becomes `Err`.
    pub fn call(&mut self, request: &Request) -> Result<Reply> {
        self.send(request, &[])?;
        match self.reply()?.0 {
            Reply::Error(e) => Err(Error::Remote(e)),
            other => Ok(other),
        }
    }
}

/// Connects to a unix socket path of any length (long ones through the directory's
/// descriptor, as `sockaddr_un` holds 108 bytes).
pub fn connect_path(path: &Path) -> std::io::Result<UnixStream> {
    with_short_path(path, |p| UnixStream::connect(p))
}

/// Runs `f` with a path to the same socket short enough for `sockaddr_un`.
pub fn with_short_path<T>(
    path: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let dir_fd = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir_fd.as_raw_fd())).join(name);
    f(&short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_descriptors() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut client = Client::from_stream(a);
        let null = std::fs::File::open("/dev/null").unwrap();
        let req = Request::Exec(ExecSpec {
            cmd: vec!["true".into()],
            ..Default::default()
        });
        client.send(&req, &[null.as_fd()]).unwrap();
        client.send_stdin(b"hello").unwrap();
        client.send_stdin(b"").unwrap();
        let mut reader = FrameReader::default();
        let mut got = Vec::new();
        while got.len() < 3 {
            while let Some(f) = reader.next_frame::<Request>().unwrap() {
                got.push(f);
            }
            if got.len() < 3 {
                reader.fill(b.as_fd()).unwrap();
            }
        }
        match &got[0] {
            Frame::Control { message, fds } => {
                assert_eq!(message, &req);
                assert_eq!(fds.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&got[1], Frame::Data { stream: STDIN, bytes } if bytes == b"hello"));
        assert!(matches!(&got[2], Frame::Data { stream: STDIN, bytes } if bytes.is_empty()));
    }

    #[test]
    fn replies_serialize_with_tags() {
        let text = serde_json::to_string(&Reply::Exited {
            exit_code: 3,
            status: Status::Exited,
        })
        .unwrap();
        assert!(text.contains("\"reply\":\"exited\""), "{text}");
        let e: Reply =
            serde_json::from_str(r#"{"reply":"error","kind":"not_found","message":"x"}"#).unwrap();
        assert!(matches!(e, Reply::Error(w) if w.kind == ErrorKind::NotFound));
    }
}
