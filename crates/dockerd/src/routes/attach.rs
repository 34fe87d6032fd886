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
use pelagos_model::protocol::Attach;
use pelagos_model::ErrorKind;

use crate::error::{ApiError, ApiResult};
use crate::hijack::{self, Session};
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
    let session = join(&state, &t).await?;
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
