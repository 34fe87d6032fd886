//! The `/exec` endpoints: exec instances created in a running container, started detached or
//! over a hijacked connection (the process's stdio are pipes, or a pty, held by the daemon),
//! resized, inspected.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use pelagos_engine::container::{self as verbs, exec::ExecSession};
use pelagos_model::protocol::{data_frame, ExecSpec, STDERR, STDOUT};
use pelagos_model::state::Status;
use pelagos_model::ErrorKind;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::execs::{ExecConfig, Execs};
use crate::hijack::{self, OnDrop, Session};
use crate::query::{self, JsonOrEmpty, Params};
use crate::routes::attach::tty_size;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// `POST /containers/{id}/exec`: 201 `{"Id"}`.
async fn create(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query::Json(config): query::Json<ExecConfig>,
) -> ApiResult<Response> {
    if config.cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let record = state
        .blocking(move |engine| verbs::lookup(engine, &name))
        .await?;
    match record.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(ApiError::conflict(format!(
                "Container {} is paused, unpause the container before exec",
                record.id
            )))
        }
        Status::Restarting => {
            return Err(ApiError::conflict(format!(
                "Container {} is restarting, wait until the container is running",
                record.id
            )))
        }
        _ => {
            return Err(ApiError::conflict(
                pelagos_model::error::conflict::not_running(&record.id),
            ))
        }
    }
    let id = state.execs.create(record.id.to_string(), config)?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "Id": id }))).into_response())
}

/// The body of `POST /exec/{id}/start` (moby's `ExecStartCheck`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    tty: bool,
    console_size: Option<[u16; 2]>,
}

/// The process's side of its stdio: what the monitor gets, what the daemon keeps.
struct Stdio {
    /// Sent with the request (none with a tty or when detached).
    theirs: Vec<OwnedFd>,
    /// Our ends: stdin's writer, stdout's and stderr's readers.
    stdin: Option<OwnedFd>,
    outputs: Vec<(u8, OwnedFd)>,
}

fn pipe() -> ApiResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("pipe for an exec: {e}")))
}

/// Pipes for a process without a tty that a client attaches to.
fn pipes(spec: &ExecSpec) -> ApiResult<Stdio> {
    let mut stdio = Stdio {
        theirs: Vec::new(),
        stdin: None,
        outputs: Vec::new(),
    };
    if spec.attach_stdin {
        let (r, w) = pipe()?;
        stdio.theirs.push(r);
        stdio.stdin = Some(w);
    }
    for stream in [STDOUT, STDERR] {
        let (r, w) = pipe()?;
        stdio.theirs.push(w);
        stdio.outputs.push((stream, r));
    }
    Ok(stdio)
}

/// A started process: the session that reports its exit, and our ends of its stdio.
struct Running {
    session: ExecSession,
    stdin: Option<OwnedFd>,
    outputs: Vec<(u8, OwnedFd)>,
    pty: Option<Arc<OwnedFd>>,
}

/// Starts the process through the container's monitor (a blocking call); the engine's
/// error as it is, its kind telling a program that cannot run.
fn launch(
    engine: &pelagos_engine::Engine,
    container: &str,
    spec: ExecSpec,
    attached: bool,
) -> ApiResult<Result<Running, pelagos_engine::Error>> {
    let stdio = match attached && !spec.tty {
        true => pipes(&spec)?,
        false => Stdio {
            theirs: Vec::new(),
            stdin: None,
            outputs: Vec::new(),
        },
    };
    let fds: Vec<BorrowedFd<'_>> = stdio.theirs.iter().map(|f| f.as_fd()).collect();
    let mut session = match verbs::exec::exec(engine, container, spec, &fds) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    drop(fds);
    // The process holds its ends now: ours closed, its exit closes the pipes.
    drop(stdio.theirs);
    let pty = session.pty.take().map(Arc::new);
    Ok(Ok(Running {
        session,
        stdin: stdio.stdin,
        outputs: stdio.outputs,
        pty,
    }))
}

/// The exit code Docker gives an exec that could not start.
fn start_failure_code(kind: ErrorKind) -> Option<i32> {
    match kind {
        ErrorKind::ExecutableNotFound => Some(127),
        ErrorKind::NotExecutable => Some(126),
        _ => None,
    }
}

/// `POST /exec/{id}/start`.
async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let (mut parts, body) = request.into_parts();
    let upgrade = hijack::take_upgrade(&mut parts);
    let JsonOrEmpty(body): JsonOrEmpty<StartBody> =
        JsonOrEmpty::from_request(Request::new(body), &()).await?;
    let config_tty = state.execs.inspect(&id)?["ProcessConfig"]["tty"] == true;
    let tty = config_tty || body.tty;
    let (container, config) = state.execs.begin(&id, tty)?;
    let spec = config.spec(tty, body.console_size);
    if !body.detach {
        // As moby: the connection is answered (hijacked) first and the process started
        // after, its failures written into the stream.
        let stdin = config.attach_stdin;
        // A client gone before the upgrade drops this unpolled or mid-launch: its exec then
        // ended unstarted, not "running" for ever.
        let mut unlaunched = Unlaunched(Some((state.execs.clone(), id.clone())));
        let session = async move {
            let session = attached(state, id, container, spec, tty, stdin).await;
            unlaunched.disarm();
            Some(session)
        };
        return Ok(hijack::answer(upgrade, tty, session));
    }
    let launched = {
        let container = container.clone();
        state
            .blocking(move |engine| launch(engine, &container, spec, false))
            .await
    };
    let running = match launched {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            state.execs.ended(&id, start_failure_code(e.kind()));
            return Err(e.into());
        }
        Err(e) => {
            state.execs.ended(&id, None);
            return Err(e);
        }
    };
    state
        .execs
        .started(&id, running.session.pid, running.pty.clone());
    let execs = state.execs.clone();
    tokio::task::spawn_blocking(move || record_exit(&execs, &id, running.session));
    Ok(StatusCode::OK.into_response())
}

/// Starts an attached exec once its client has the answer: the session relaying its
/// stdio, or one carrying the reason it could not start (its exit code 126/127 recorded
/// when the program cannot run).
async fn attached(
    state: AppState,
    id: String,
    container: String,
    spec: ExecSpec,
    tty: bool,
    stdin: bool,
) -> Session {
    let launched = state
        .blocking(move |engine| launch(engine, &container, spec, true))
        .await;
    let running = match launched {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            state.execs.ended(&id, start_failure_code(e.kind()));
            return failed_start(e.into(), tty);
        }
        Err(e) => {
            state.execs.ended(&id, None);
            return failed_start(e, tty);
        }
    };
    state
        .execs
        .started(&id, running.session.pid, running.pty.clone());
    match exec_session(state.execs.clone(), id, running, tty, stdin) {
        Ok(session) => session,
        Err(e) => failed_start(ApiError::internal(format!("exec: {e}")), tty),
    }
}

/// An exec begun but not launched: marked ended when dropped armed.
struct Unlaunched(Option<(Arc<Execs>, String)>);

impl Unlaunched {
    /// Launched (or its failure recorded): nothing to do when dropped.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Unlaunched {
    fn drop(&mut self) {
        if let Some((execs, id)) = self.0.take() {
            execs.ended(&id, None);
        }
    }
}

/// A start that failed, for an attached client: its message in the stream, where moby puts
/// it (the CLI then reads the exit code, 126 or 127 for a program that cannot run).
fn failed_start(e: ApiError, tty: bool) -> Session {
    let message = format!("{}\r\n", e.message);
    let chunk = match tty {
        true => message.into_bytes(),
        false => data_frame(STDOUT, message.as_bytes()),
    };
    let (tx, output) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(chunk));
    Session {
        output,
        stdin: None,
        release: OnDrop::new(|| {}),
    }
}

/// Waits for the process's end and records its exit code.
fn record_exit(execs: &Execs, id: &str, session: ExecSession) {
    let code = session.wait().ok();
    execs.ended(id, code);
}

/// A session relaying the process's stdio, recording its exit before the stream ends.
fn exec_session(
    execs: Arc<Execs>,
    id: String,
    running: Running,
    tty: bool,
    stdin: bool,
) -> std::io::Result<Session> {
    let (out_tx, output) = mpsc::channel(16);
    let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let Running {
        session,
        stdin: stdin_fd,
        outputs,
        pty,
    } = running;
    let input: Option<Arc<OwnedFd>> = match (&pty, stdin_fd) {
        (Some(master), _) if stdin => Some(master.clone()),
        (None, Some(fd)) => Some(Arc::new(fd)),
        _ => None,
    };
    let outputs: Vec<(u8, Arc<OwnedFd>)> = match &pty {
        Some(master) => vec![(STDOUT, master.clone())],
        None => outputs
            .into_iter()
            .map(|(s, fd)| (s, Arc::new(fd)))
            .collect(),
    };
    let stdin_tx = match input {
        Some(fd) => {
            let (tx, rx) = mpsc::channel(16);
            std::thread::Builder::new()
                .name("exec-in".into())
                .spawn(move || write_stdin(fd, rx))?;
            Some(tx)
        }
        None => None,
    };
    std::thread::Builder::new()
        .name("exec-out".into())
        .spawn(move || {
            pump_outputs(&outputs, &session, stop_r.as_raw_fd(), tty, &out_tx);
            drop(outputs);
            drop(stop_r);
            record_exit(&execs, &id, session);
            drop(out_tx);
        })?;
    Ok(Session {
        output,
        stdin: stdin_tx,
        // Closing the stop pipe tells the output thread the client is gone.
        release: OnDrop::new(move || drop(stop_w)),
    })
}

/// The client's stdin into the process's (the pipe, or the pty's master); its end closes
/// the pipe.
fn write_stdin(fd: Arc<OwnedFd>, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.blocking_recv() {
        if chunk.is_empty() {
            return;
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            match nix::unistd::write(fd.as_fd(), rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Output of the process to the channel until it exits (then what is left in the pipes),
/// or the client goes (the stop pipe closes).
fn pump_outputs(
    outputs: &[(u8, Arc<OwnedFd>)],
    session: &ExecSession,
    stop: RawFd,
    tty: bool,
    out: &mpsc::Sender<Bytes>,
) {
    let mut open: Vec<bool> = vec![true; outputs.len()];
    let mut buf = vec![0u8; 32 * 1024];
    let send = |stream: u8, bytes: &[u8]| {
        let chunk = match tty {
            true => bytes.to_vec(),
            false => data_frame(stream, bytes),
        };
        out.blocking_send(Bytes::from(chunk)).is_ok()
    };
    let ended_already = session.ended_already();
    loop {
        let mut fds = vec![pollfd(stop)];
        if !ended_already {
            fds.push(pollfd(session.socket().as_raw_fd()));
        }
        let watched: Vec<usize> = (0..outputs.len()).filter(|i| open[*i]).collect();
        fds.extend(watched.iter().map(|i| pollfd(outputs[*i].1.as_raw_fd())));
        if ended_already {
            break;
        }
        // SAFETY: `fds` is a valid slice of pollfd for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            return;
        }
        let base = fds.len() - watched.len();
        for (k, i) in watched.iter().enumerate() {
            if fds[base + k].revents == 0 {
                continue;
            }
            let (stream, fd) = &outputs[*i];
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    if !send(*stream, &buf[..n]) {
                        return;
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                // End of file, or EIO: the pty's every slave is closed.
                _ => open[*i] = false,
            }
        }
        if fds[1].revents != 0 {
            break;
        }
    }
    // The process ended: what it left in the pipes, without waiting for writers it left
    // behind.
    for (i, (stream, fd)) in outputs.iter().enumerate() {
        if !open[i] {
            continue;
        }
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while let Ok(n) = nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            if n == 0 || !send(*stream, &buf[..n]) {
                break;
            }
        }
    }
}

/// `POST /exec/{id}/resize?h=&w=`.
async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<StatusCode> {
    let (height, width) = tty_size(&q)?;
    state.execs.resize(&id, height, width)?;
    Ok(StatusCode::OK)
}

/// `GET /exec/{id}/json`.
async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(state.execs.inspect(&id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_never_launched_is_not_left_running() {
        let execs = Arc::new(Execs::default());
        let config: ExecConfig = serde_json::from_str(r#"{"Cmd":["true"]}"#).unwrap();
        let running = |id: &str| execs.inspect(id).unwrap()["Running"] == true;
        let dropped = execs.create("c".into(), config.clone()).unwrap();
        execs.begin(&dropped, false).unwrap();
        drop(Unlaunched(Some((execs.clone(), dropped.clone()))));
        assert!(!running(&dropped));
        let launched = execs.create("c".into(), config).unwrap();
        execs.begin(&launched, false).unwrap();
        let mut guard = Unlaunched(Some((execs.clone(), launched.clone())));
        guard.disarm();
        drop(guard);
        assert!(running(&launched));
    }
}
