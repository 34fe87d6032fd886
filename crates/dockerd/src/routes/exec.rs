//! The `/exec` endpoints of the Docker Engine API.

use axum::Router;

use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
}
