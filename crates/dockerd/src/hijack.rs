//! Docker's hijacked connections (`attach`, `exec start`): `101 Switching Protocols`, then the
//! raw connection carries stdin one way and output (8-byte multiplexed frames, or raw with a
//! tty) the other; a client that does not upgrade gets the output as a 200 body.
//!
//! The blocking side (monitor sockets, pipes, ptys) runs on dedicated threads bridged with
//! channels; a [`Session`] is what the async side relays, and dropping it releases them.

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use pelagos_engine::container::{self as verbs, start::StartOutcome};
use pelagos_engine::Engine;
use pelagos_model::protocol::{data_frame, Attach, Client, Frame, Reply, STDERR, STDOUT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Chunks queued between a blocking producer and the client: enough to keep the pipe busy,
/// little enough that a slow client slows the producer instead of filling memory.
const QUEUE: usize = 16;
/// One read from the client's connection.
const CHUNK: usize = 32 * 1024;

/// Runs its action once when dropped: how a session releases its blocking side.
pub struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl OnDrop {
    pub fn new(f: impl FnOnce() + Send + 'static) -> OnDrop {
        OnDrop(Some(Box::new(f)))
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// What a hijacked connection relays.
pub struct Session {
    /// Output already in the client's framing; closed at the end of the stream.
    pub output: mpsc::Receiver<Bytes>,
    /// Where the client's stdin goes (an empty chunk is its end); `None` when not attached.
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// Released when the relay ends, however it ends.
    pub release: OnDrop,
}

/// Whether the request asks for the connection (`Connection: Upgrade`, `Upgrade: tcp`).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "tcp")
}

/// The connection's upgrade, and its unix socket when it came on one.
pub struct Upgrade {
    on: OnUpgrade,
    peer: Option<RawFd>,
}

/// The connection's upgrade, when the request asks for one.
pub fn take_upgrade(parts: &mut axum::http::request::Parts) -> Option<Upgrade> {
    if !wants_upgrade(&parts.headers) {
        return None;
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<PeerFd>>()
        .map(|c| c.0 .0);
    let on = parts.extensions.remove::<OnUpgrade>()?;
    Some(Upgrade { on, peer })
}

/// The file descriptor of a unix socket connection, recorded when it is accepted (the
/// daemon's connect info), to see when the client has read the 101.
#[derive(Debug, Clone, Copy)]
pub struct PeerFd(pub RawFd);

impl Connected<IncomingStream<'_, tokio::net::UnixListener>> for PeerFd {
    fn connect_info(stream: IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        PeerFd(stream.io().as_raw_fd())
    }
}

/// Waits (10 s at most) until the client has read everything sent on the connection:
/// the 101. Clients that read the answer through a buffer (docker-py, http.client) would
/// otherwise swallow output sent right after it with the headers and never see it.
async fn until_read(fd: RawFd) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let mut unread: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int, `unread`, valid for the call; the fd
        // is the upgraded connection, which the caller holds open.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut unread) };
        if rc != 0 || unread == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Docker's media type of the stream.
fn content_type(tty: bool) -> &'static str {
    if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    }
}

/// Answers a hijack request: 101 and the relay on the upgraded connection when `upgrade` is
/// given, else 200 with the output as the body. `session` resolves when the stream can begin
/// (`None`: it cannot, the connection is closed).
pub fn answer<F>(upgrade: Option<Upgrade>, tty: bool, session: F) -> Response
where
    F: Future<Output = Option<Session>> + Send + 'static,
{
    let kind = HeaderValue::from_static(content_type(tty));
    match upgrade {
        Some(upgrade) => {
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.on.await else {
                    return;
                };
                // The session (an exec's launch, say) gets going while the client reads
                // the 101; its output waits in the session's queue until it has.
                let read = async {
                    if let Some(fd) = upgrade.peer {
                        until_read(fd).await;
                    }
                };
                if let ((), Some(s)) = tokio::join!(read, session) {
                    relay(TokioIo::new(upgraded), s).await;
                }
            });
            let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, kind);
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
            response
        }
        None => {
            let (tx, rx) = mpsc::channel::<Bytes>(QUEUE);
            tokio::spawn(async move {
                let Some(mut s) = session.await else { return };
                drop(s.stdin.take());
                while let Some(chunk) = s.output.recv().await {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
            });
            let body = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
            });
            ([(header::CONTENT_TYPE, kind)], Body::from_stream(body)).into_response()
        }
    }
}

/// Output to the client until the stream ends or the client is gone; stdin from it meanwhile.
async fn relay<IO>(io: IO, session: Session)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(io);
    let Session {
        mut output,
        stdin,
        release,
    } = session;
    let input = stdin.map(|tx| tokio::spawn(forward_stdin(reader, tx)));
    while let Some(chunk) = output.recv().await {
        if writer.write_all(&chunk).await.is_err() || writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
    if let Some(task) = input {
        task.abort();
    }
    drop(release);
}

/// The client's bytes to the session's stdin; its half-close (or loss) ends the stdin.
async fn forward_stdin<R: AsyncRead>(mut reader: tokio::io::ReadHalf<R>, tx: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.read(&mut buf).await.unwrap_or(0);
        let chunk = Bytes::copy_from_slice(&buf[..n]);
        if tx.send(chunk).await.is_err() || n == 0 {
            return;
        }
    }
}

/// A session over an attached monitor connection: its output frames (re-framed for the
/// client: as they are without a tty, bare with one), stdin frames to it.
pub fn monitor_session(client: Client, tty: bool, stdin: bool) -> std::io::Result<Session> {
    let stopper = client.socket().try_clone()?;
    let writer = match stdin {
        true => Some(client.socket().try_clone()?),
        false => None,
    };
    let (out_tx, output) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("attach-out".into())
        .spawn(move || pump_monitor(client, tty, out_tx))?;
    let stdin = match writer {
        Some(sock) => {
            let (tx, rx) = mpsc::channel(QUEUE);
            std::thread::Builder::new()
                .name("attach-in".into())
                .spawn(move || pump_stdin(Client::from_stream(sock), rx))?;
            Some(tx)
        }
        None => None,
    };
    // Shutting the socket down wakes the output thread (its read ends) and tells the monitor
    // this client left; the container goes on.
    let release = OnDrop::new(move || {
        let _ = stopper.shutdown(std::net::Shutdown::Both);
    });
    Ok(Session {
        output,
        stdin,
        release,
    })
}

/// Monitor output to the channel until the container exits, the client detaches or goes.
fn pump_monitor(mut client: Client, tty: bool, out: mpsc::Sender<Bytes>) {
    loop {
        match client.next_frame() {
            Ok(Some(Frame::Data { stream, bytes })) if stream == STDOUT || stream == STDERR => {
                let chunk = if tty {
                    bytes
                } else {
                    data_frame(stream, &bytes)
                };
                if out.blocking_send(Bytes::from(chunk)).is_err() {
                    return;
                }
            }
            Ok(Some(Frame::Data { .. })) => {}
            Ok(Some(Frame::Control { message, .. })) => match message {
                Reply::Exited { .. } | Reply::Detached | Reply::Error(_) => return,
                _ => {}
            },
            Ok(None) | Err(_) => return,
        }
    }
}

/// The client's stdin to the monitor; an empty chunk closes the container's stdin.
fn pump_stdin(mut client: Client, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.blocking_recv() {
        if client.send_stdin(&chunk).is_err() || chunk.is_empty() {
            return;
        }
    }
}

/// An attach waiting for its container's start (`docker run` attaches before it starts).
struct Waiting {
    attach: Attach,
    deliver: oneshot::Sender<Client>,
}

/// Attaches waiting for a start, by container id: the start hands them the connection it
/// started the container with, so no output is missed.
#[derive(Default)]
pub struct PendingAttaches {
    map: Mutex<HashMap<String, Vec<Waiting>>>,
}

impl PendingAttaches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Waiting>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an attach to container `id` (its full id); the connection comes at its start.
    pub fn wait_for_start(&self, id: &str, attach: Attach) -> oneshot::Receiver<Client> {
        let (deliver, rx) = oneshot::channel();
        let mut map = self.lock();
        // Attaches whose clients left before any start (their containers may be gone) go now,
        // so the daemon keeps nothing for them.
        map.retain(|_, list| {
            list.retain(|w| !w.deliver.is_closed());
            !list.is_empty()
        });
        map.entry(id.to_string())
            .or_default()
            .push(Waiting { attach, deliver });
        rx
    }

    /// The first attach still waiting for container `id`, the others left to attach after.
    fn take(&self, id: &str) -> Option<Waiting> {
        let mut map = self.lock();
        let list = map.get_mut(id)?;
        list.retain(|w| !w.deliver.is_closed());
        let first = (!list.is_empty()).then(|| list.remove(0));
        if list.is_empty() {
            map.remove(id);
        }
        first
    }

    /// Whether attaches still wait for container `id` (after a start handed one over).
    fn others(&self, id: &str) -> Vec<Waiting> {
        self.lock().remove(id).unwrap_or_default()
    }
}

/// Starts a container (`POST /containers/{id}/start`), attached first when an attach waits
/// for it; `false` when it was running already (Docker's 304). A blocking call.
pub fn start_container(
    engine: &Engine,
    pending: &PendingAttaches,
    name_or_id: &str,
) -> pelagos_engine::Result<bool> {
    let record = verbs::lookup(engine, name_or_id)?;
    let id = record.id.to_string();
    let Some(first) = pending.take(&id) else {
        return Ok(matches!(
            verbs::start::start(engine, &id, None)?,
            StartOutcome::Started(_)
        ));
    };
    // On an error the waiting attach is dropped with it: its client sees the stream end.
    let started = match verbs::start::start(engine, &id, Some(first.attach.clone()))? {
        StartOutcome::Started(started) => {
            let _ = first.deliver.send(started.client);
            true
        }
        StartOutcome::AlreadyRunning => {
            if let Ok(client) = verbs::attach::attach(engine, &id, first.attach) {
                let _ = first.deliver.send(client);
            }
            false
        }
    };
    for other in pending.others(&id) {
        if let Ok(client) = verbs::attach::attach(engine, &id, other.attach) {
            let _ = other.deliver.send(client);
        }
    }
    Ok(started)
}
