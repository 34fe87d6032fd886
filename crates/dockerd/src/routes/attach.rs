//! `/containers/{id}/attach`, `/attach/ws` and `/resize`: a client joins a container's stdio
//! through its monitor (hijacked HTTP or a websocket) and sets its terminal's size.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use pelagos_engine::container as verbs;
use pelagos_model::logs::{LogEntry, LogSettings, ReadOptions, Stream};
use pelagos_model::protocol::{data_frame, Attach, STDERR, STDOUT};
use pelagos_model::state::Status;
use pelagos_model::ErrorKind;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, OnDrop, Session};
use crate::query::{bool_value, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/attach/ws", get(attach_ws))
        .route("/containers/{id}/resize", post(resize))
}

/// What the query asks to attach to, and whether the container has a tty.
struct Target {
    id: String,
    tty: bool,
    attach: Attach,
    /// `stream`: live output (and stdin); without it only the logs so far (moby's default).
    stream: bool,
    /// Whether its log driver keeps a log to read back.
    logs_readable: bool,
}

/// A session to come: at once, or at the container's start.
type Joining = std::pin::Pin<Box<dyn std::future::Future<Output = Option<Session>> + Send>>;

/// Looks the container up (404) and reads the query: stdin only for a container created
/// with it open, as moby.
async fn target(state: &AppState, name: String, q: &Params) -> ApiResult<Target> {
    let record = state
        .blocking(move |engine| verbs::lookup(engine, &name))
        .await?;
    let flag = |k: &str| bool_value(q.get(k).map(String::as_str));
    let logs_readable = LogSettings::from_config(&record.host_config.log_config)
        .is_ok_and(|s| s.file_name().is_some());
    Ok(Target {
        id: record.id.to_string(),
        tty: record.config.tty,
        attach: Attach {
            stdin: flag("stdin") && record.config.open_stdin,
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            logs: flag("logs"),
            detach_keys: q.get("detachKeys").cloned(),
        },
        stream: flag("stream"),
        logs_readable,
    })
}

/// Chunks of logs queued for the client (a slow client slows the reader).
const LOG_QUEUE: usize = 16;

/// moby's `stream=0`: the log so far when `logs` is asked (the streams asked for, framed as
/// the live stream would be), then the end; no live output, no stdin.
fn logs_only(state: &AppState, t: &Target) -> ApiResult<Session> {
    let (tx, output) = mpsc::channel(LOG_QUEUE);
    let release = OnDrop::new(|| {});
    if !t.attach.logs {
        return Ok(Session {
            output,
            stdin: None,
            release,
        });
    }
    if !t.logs_readable {
        // moby's ErrReadLogsNotSupported, as for `GET /logs`.
        return Err(ApiError::not_implemented(
            "configured logging driver does not support reading",
        ));
    }
    let options = ReadOptions {
        stdout: t.attach.stdout,
        stderr: t.attach.stderr,
        ..ReadOptions::default()
    };
    let (engine, id, tty) = (state.engine.clone(), t.id.clone(), t.tty);
    std::thread::Builder::new()
        .name("attach-logs".into())
        .spawn(move || {
            let mut emit = |entry: &LogEntry| {
                tx.blocking_send(Bytes::from(log_chunk(entry, tty)))
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            };
            // A read that fails ends the stream early; the client sees what came.
            let _ = verbs::logs::logs(&engine, &id, &options, false, &mut emit);
        })
        .map_err(|e| ApiError::internal(format!("start the logs reader: {e}")))?;
    Ok(Session {
        output,
        stdin: None,
        release,
    })
}

/// One log entry as an attached client reads it: bare with a tty, else in its stream's frame.
fn log_chunk(entry: &LogEntry, tty: bool) -> Vec<u8> {
    match (tty, entry.stream) {
        (true, _) => entry.bytes.clone(),
        (false, Stream::Stderr) => data_frame(STDERR, &entry.bytes),
        (false, Stream::Stdout) => data_frame(STDOUT, &entry.bytes),
    }
}

/// The session a request gets: the logs alone without `stream`, else the live one.
async fn session_for(state: &AppState, t: &Target) -> ApiResult<Joining> {
    if t.stream {
        return join(state, t).await;
    }
    let session = logs_only(state, t)?;
    Ok(Box::pin(async move { Some(session) }))
}

/// Attaches now to a running container, or registers to be attached by its start (the
/// session then begins at the start).
async fn join(state: &AppState, t: &Target) -> ApiResult<Joining> {
    let (id, attach) = (t.id.clone(), t.attach.clone());
    let (tty, stdin) = (t.tty, t.attach.stdin);
    let now = state
        .blocking(
            move |engine| match verbs::attach::attach(engine, &id, attach) {
                Ok(client) => Ok(Some(client)),
                Err(e) if e.kind() == ErrorKind::Conflict => Ok(None),
                Err(e) => Err(e),
            },
        )
        .await?;
    match now {
        Some(client) => {
            let session = hijack::monitor_session(client, tty, stdin)
                .map_err(|e| ApiError::internal(format!("attach: {e}")))?;
            Ok(Box::pin(async move { Some(session) }))
        }
        None => {
            let started = state.attaches.wait_for_start(&t.id, t.attach.clone());
            Ok(Box::pin(async move {
                let client = started.await.ok()?;
                hijack::monitor_session(client, tty, stdin).ok()
            }))
        }
    }
}

/// `POST /containers/{id}/attach`.
async fn attach(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
    request: Request,
) -> ApiResult<Response> {
    let t = target(&state, name, &q).await?;
    let (mut parts, _) = request.into_parts();
    let upgrade = hijack::take_upgrade(&mut parts);
    let session = session_for(&state, &t).await?;
    Ok(hijack::answer(upgrade, t.tty, session))
}

/// `GET /containers/{id}/attach/ws`: output as binary messages, text or binary messages in
/// as stdin.
async fn attach_ws(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    // As moby: an unknown container first, then a request that is no websocket handshake.
    let mut t = target(&state, name, &q).await?;
    let ws = ws.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    // A websocket carries no stream numbers: output goes bare, as with a tty.
    t.tty = true;
    let session = session_for(&state, &t).await?;
    Ok(ws.on_upgrade(move |socket| async move {
        if let Some(s) = session.await {
            relay_ws(socket, s).await;
        }
    }))
}

/// Relays a session over a websocket until its output ends or the client closes.
async fn relay_ws(mut socket: WebSocket, session: Session) {
    let Session {
        mut output,
        mut stdin,
        release,
    } = session;
    loop {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Some(bytes) => {
                    if socket.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            message = socket.recv() => {
                let bytes = match message {
                    Some(Ok(Message::Text(t))) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(_)) => continue,
                    // Closed or broken: the client left (the monitor closes the container's
                    // stdin only with StdinOnce, as moby), its output has nowhere to go.
                    Some(Err(_)) | None => break,
                };
                if let Some(tx) = &stdin {
                    if tx.send(bytes).await.is_err() {
                        stdin = None;
                    }
                }
            }
        }
    }
    drop(release);
}

/// The `h` and `w` of a resize (moby: 400 on anything but numbers).
pub fn tty_size(q: &Params) -> ApiResult<(u16, u16)> {
    let number = |k: &str| -> ApiResult<u16> {
        let text = q.get(k).map(String::as_str).unwrap_or("");
        text.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "strconv.Atoi: parsing {text:?}: invalid syntax ({k})"
            ))
        })
    };
    Ok((number("h")?, number("w")?))
}

/// `POST /containers/{id}/resize?h=&w=`: 409 when it is not running; a running container
/// without a tty has nothing to resize, which moby (containerd) answers with success.
async fn resize(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<StatusCode> {
    let (height, width) = tty_size(&q)?;
    state
        .blocking(move |engine| -> ApiResult<()> {
            let record = verbs::lookup(engine, &name)?;
            let running = matches!(record.state.status, Status::Running | Status::Paused);
            if !running {
                return Err(ApiError::conflict(
                    pelagos_model::error::conflict::not_running(&record.id),
                ));
            }
            if record.config.tty {
                verbs::attach::resize(engine, record.id.as_str(), height, width)?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_numbers() {
        let q: Params = [
            ("h".to_string(), "24".to_string()),
            ("w".into(), "80".into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(tty_size(&q).unwrap(), (24, 80));
        let bad: Params = [("h".to_string(), "x".to_string())].into_iter().collect();
        assert_eq!(tty_size(&bad).unwrap_err().status, 400);
    }

    #[test]
    fn only_upgrade_requests_hijack() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!hijack::wants_upgrade(&h));
        h.insert("connection", "Upgrade".parse().unwrap());
        h.insert("upgrade", "tcp".parse().unwrap());
        assert!(hijack::wants_upgrade(&h));
    }
}
