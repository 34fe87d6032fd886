//! `/containers/{id}/attach`, `/attach/ws` and `/resize`: a client joins a container's stdio
//! through its monitor (hijacked HTTP or a websocket) and sets its terminal's size.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use pelagos_engine::container as verbs;
use pelagos_model::logs::{LogEntry, ReadOptions, Stream};
use pelagos_model::protocol::{data_frame, Attach, STDERR, STDOUT};
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
}

/// Looks the container up (404) and reads the query: stdin only for a container created
/// with it open, as moby.
async fn target(state: &AppState, name: String, q: &Params) -> ApiResult<Target> {
    let record = state
        .blocking(move |engine| verbs::lookup(engine, &name))
        .await?;
    let flag = |k: &str| bool_value(q.get(k).map(String::as_str));
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
    })
}

/// Attaches now to a running container, or registers to be attached by its start (the
/// session then begins at the start).
async fn join(
    state: &AppState,
    t: &Target,
) -> ApiResult<std::pin::Pin<Box<dyn std::future::Future<Output = Option<Session>> + Send>>> {
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
    if !bool_value(q.get("stream").map(String::as_str)) {
        let session =
            logs_only(&state, &t).map_err(|e| ApiError::internal(format!("attach: {e}")))?;
        return Ok(hijack::answer(upgrade, t.tty, async move { Some(session) }));
    }
    let session = join(&state, &t).await?;
    Ok(hijack::answer(upgrade, t.tty, session))
}

/// An attach with `stream=0` (docker-py's `attach(logs=True)`): no live stream, the log so
/// far when `logs=1`, framed as the attach stream; the connection ends after it, as moby's.
fn logs_only(state: &AppState, t: &Target) -> std::io::Result<Session> {
    let (tx, output) = mpsc::channel(16);
    let session = Session {
        output,
        stdin: None,
        release: OnDrop::new(|| {}),
    };
    if !t.attach.logs || !(t.attach.stdout || t.attach.stderr) {
        return Ok(session);
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
            let mut emit = |e: &LogEntry| {
                let stream = match e.stream {
                    Stream::Stderr => STDERR,
                    _ => STDOUT,
                };
                let chunk = match tty {
                    true => e.bytes.clone(),
                    false => data_frame(stream, &e.bytes),
                };
                tx.blocking_send(Bytes::from(chunk))
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            };
            // A driver that cannot be read, or a client gone: the stream just ends.
            let _ = verbs::logs::logs(&engine, &id, &options, false, &mut emit);
        })?;
    Ok(session)
}

/// `GET /containers/{id}/attach/ws`: output as binary messages, text or binary messages in
/// as stdin.
async fn attach_ws(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let mut t = target(&state, name, &q).await?;
    // A websocket carries no stream numbers: output goes bare, as with a tty.
    t.tty = true;
    let session = join(&state, &t).await?;
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
                    // Closed or broken: its stdin ends, its output has nowhere to go.
                    Some(Err(_)) | None => {
                        if let Some(tx) = stdin.take() {
                            let _ = tx.send(Bytes::new()).await;
                        }
                        break;
                    }
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

/// `POST /containers/{id}/resize?h=&w=`.
async fn resize(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<StatusCode> {
    let (height, width) = tty_size(&q)?;
    state
        .blocking(move |engine| verbs::attach::resize(engine, &name, height, width))
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
