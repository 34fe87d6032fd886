//! What a container's processes and files look like: `top` (the host's `ps`), `changes`
//! (the overlay's upper layer against the image) and `export` (a tar stream of the root
//! filesystem, written by a blocking thread into a bounded channel, never held in memory).

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Json;
use futures_util::StreamExt;
use pelagos_engine::container::diff::ChangeKind;
use pelagos_engine::container::top::TopOutput;
use pelagos_engine::container::{diff, export as export_verb, lookup, top as top_verb};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::query::Params;
use crate::state::AppState;

/// `GET /containers/{id}/top?ps_args`: `{"Titles","Processes"}`.
pub async fn top(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<Json<TopOutput>> {
    let ps_args = params.get("ps_args").cloned().unwrap_or_default();
    state
        .blocking(move |engine| top_verb::top(engine, &id, &ps_args))
        .await
        .map(Json)
}

/// Docker's `Kind` numbers: 0 modified, 1 added, 2 deleted.
fn kind_number(kind: ChangeKind) -> u8 {
    match kind {
        ChangeKind::Modified => 0,
        ChangeKind::Added => 1,
        ChangeKind::Deleted => 2,
    }
}

/// `GET /containers/{id}/changes`: `[{"Path","Kind"}]`.
pub async fn changes(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let changes = state
        .blocking(move |engine| diff::diff(engine, &id))
        .await?;
    Ok(Json(
        changes
            .iter()
            .map(|c| json!({ "Path": c.path, "Kind": kind_number(c.kind) }))
            .collect(),
    ))
}

/// Chunks of the export in flight: enough to keep the socket busy, little memory.
const EXPORT_CHUNKS: usize = 8;
/// The size of a chunk.
const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

/// A piece of the export: bytes, or why it stopped.
type Chunk = Result<Bytes, pelagos_engine::Error>;

/// A `Write` that hands each chunk to the response; fails once the client has gone, which
/// ends the export.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `GET /containers/{id}/export`: `application/x-tar`, streamed. A failure before the
/// first bytes is answered with its status; a later one cuts the stream, so that the client
/// sees a broken transfer rather than a short tar that looks whole.
pub async fn export(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // An unknown container is a 404 before anything is streamed.
    let record = state.blocking(move |engine| lookup(engine, &id)).await?;
    let (tx, mut rx) = mpsc::channel::<Chunk>(EXPORT_CHUNKS);
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let mut out = io::BufWriter::with_capacity(EXPORT_CHUNK_BYTES, ChannelWriter { tx });
        let written = export_verb::export(&engine, record.id.as_str(), &mut out).and_then(|_| {
            out.flush()
                .map_err(|e| pelagos_engine::Error::io("send the export", e))
        });
        if let Err(e) = written {
            tracing::warn!("export of {} failed: {e}", record.id);
            let _ = errors.blocking_send(Err(e));
        }
    });
    let first = match rx.recv().await {
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => return Err(e.into()),
        None => return Err(ApiError::internal("the export ended before it began")),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map_err(|e| io::Error::other(e.to_string())), rx))
    });
    let stream = futures_util::stream::once(async move { Ok::<_, io::Error>(first) }).chain(rest);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(format!("build the export response: {e}")))
}
