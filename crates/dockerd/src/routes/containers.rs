//! The `/containers` endpoints of the Docker Engine API: create, list and inspect, the
//! lifecycle verbs, wait, and the filesystem views (top, changes, export). Attach, logs,
//! stats, archive, resize and exec are other files' routes.

mod create;
mod fs;
mod lifecycle;
mod list;
pub mod wait;

use axum::routing::{delete, get, post};
use axum::Router;

use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create::create))
        .route("/containers/json", get(list::list))
        .route("/containers/prune", post(lifecycle::prune))
        .route("/containers/{id}", delete(lifecycle::remove))
        .route("/containers/{id}/json", get(list::inspect))
        .route("/containers/{id}/start", post(lifecycle::start))
        .route("/containers/{id}/stop", post(lifecycle::stop))
        .route("/containers/{id}/restart", post(lifecycle::restart))
        .route("/containers/{id}/kill", post(lifecycle::kill))
        .route("/containers/{id}/pause", post(lifecycle::pause))
        .route("/containers/{id}/unpause", post(lifecycle::unpause))
        .route("/containers/{id}/rename", post(lifecycle::rename))
        .route("/containers/{id}/update", post(lifecycle::update))
        .route("/containers/{id}/wait", post(wait::wait))
        .route("/containers/{id}/top", get(fs::top))
        .route("/containers/{id}/changes", get(fs::changes))
        .route("/containers/{id}/export", get(fs::export))
}
