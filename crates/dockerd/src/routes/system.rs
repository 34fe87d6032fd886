//! The system endpoints: `/_ping` (GET and HEAD), `/version`, `/info`, `/system/df` and
//! `/events` (the event log followed on a thread of its own, bridged by a bounded channel).

use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use pelagos_model::events::{Event, EventLog, Filter, TimeRange};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(system_df))
        .route("/events", get(events))
}

/// `GET|HEAD /_ping`: `OK`, with the headers clients negotiate from.
async fn ping() -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert("Builder-Version", HeaderValue::from_static("1"));
    headers.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    headers.insert("Pragma", HeaderValue::from_static("no-cache"));
    headers.insert(
        "Content-Type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    (headers, "OK")
}

/// `GET /version`.
async fn version() -> Json<serde_json::Value> {
    Json(pelagos_engine::system::version())
}

/// `GET /info`: counted from the store now.
async fn info(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    state.blocking(pelagos_engine::system::info).await.map(Json)
}

/// `GET /system/df`: sizes measured now.
async fn system_df(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    state
        .blocking(pelagos_engine::disk_usage::system_df)
        .await
        .map(Json)
}

/// How many encoded events may wait for a slow client before the follower waits too.
const EVENT_BACKLOG: usize = 64;

/// `GET /events`: the stored events from `since` (else from now), then each new one, one JSON
/// object a line, until `until` passes or the client goes away.
async fn events(State(state): State<AppState>, Query(q): Query<Params>) -> ApiResult<Response> {
    let args = query::filters(q.get("filters").map(String::as_str))?;
    let filter = Filter::parse(&args)?;
    let now = SystemTime::now();
    let since = time_param("since", q.get("since"), now)?;
    let until = time_param("until", q.get("until"), now)?;
    let range = TimeRange {
        since: Some(since.unwrap_or(now)),
        until,
    };
    let (stop_read, stop_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ApiError::internal(format!("cannot make a pipe: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(EVENT_BACKLOG);
    let log = state.engine.events().clone();
    std::thread::Builder::new()
        .name("events-follower".into())
        .spawn(move || follow_events(&log, &range, &filter, stop_read, tx))
        .map_err(|e| ApiError::internal(format!("cannot start an events follower: {e}")))?;
    // The stream owns the pipe's write end: when the client goes away hyper drops the body,
    // the pipe hangs up and the follower ends.
    let stream = futures_util::stream::unfold((rx, stop_write), |(mut rx, stop)| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), (rx, stop)))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// The follower: each matching event sent as a JSON line; a closed channel (the client went
/// away) or the pipe's hang-up ends it.
fn follow_events(
    log: &EventLog,
    range: &TimeRange,
    filter: &Filter,
    stop: OwnedFd,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let mut emit = |e: &Event| -> std::io::Result<()> {
        if !filter.matches(e) {
            return Ok(());
        }
        let mut line = serde_json::to_vec(e)?;
        line.push(b'\n');
        tx.blocking_send(Bytes::from(line))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    };
    if let Err(e) = log.follow(range, Some(stop.as_fd()), &mut emit) {
        tracing::debug!("events follower ended: {e}");
    }
}

/// A `since`/`until` parameter (unix seconds with a fraction, RFC 3339, or a duration).
fn time_param(
    name: &str,
    value: Option<&String>,
    now: SystemTime,
) -> ApiResult<Option<SystemTime>> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => pelagos_model::timestamp::parse(v, now)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid {name}: {e}"))),
    }
}
