//! What comes out of (and goes into) a container: its logs, its stats and its files (the
//! archive endpoints `docker cp` uses). Every stream runs through a bounded channel, so a
//! slow or vanished client costs nothing but its own stream.

mod archive;
mod logs;
mod stats;

use std::io;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/stats", get(stats::stats))
        .route(
            "/containers/{id}/archive",
            get(archive::get_archive)
                .head(archive::head_archive)
                .put(archive::put_archive),
        )
}

/// Chunks in flight between a producer thread and the client: enough to keep both busy,
/// few enough that a stalled client holds little.
const CHANNEL_DEPTH: usize = 16;

/// A response body fed by `rx`; `guard` lives as long as the body (its drop tells the
/// producer the client is gone). An `Err` item aborts the response.
fn channel_body<G: Send + 'static>(rx: mpsc::Receiver<io::Result<Bytes>>, guard: G) -> Body {
    let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (item, (rx, guard)))
    });
    Body::from_stream(stream)
}

/// The error a producer sees when the client went away.
fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}
