//! The `/plugins` endpoints: pelagos-dockerd has no plugin system (its volume driver is
//! `local`, its network drivers are built in), so the list is truly empty, a named plugin is
//! not found, and installing one is refused with the reason.

use axum::extract::{Path, Query};
use axum::routing::{any, get};
use axum::{Json, Router};

use crate::error::{ApiError, ApiResult};
use crate::query::Params;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list))
        .route("/plugins/privileges", get(|| async { unsupported() }))
        .route("/plugins/pull", any(refuse))
        .route("/plugins/create", any(refuse))
        .route("/plugins/{name}/{*action}", any(not_found))
}

/// `GET /plugins`: none are installed (the filters are still checked).
async fn list(Query(params): Query<Params>) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let filters = crate::query::filters(params.get("filters").map(String::as_str))?;
    pelagos_model::filters::Filters::parse(&filters, &["capability", "enable"])?;
    Ok(Json(Vec::new()))
}

async fn not_found(Path((name, _action)): Path<(String, String)>) -> ApiError {
    ApiError::not_found(format!("plugin \"{name}\" not found"))
}

/// Refused (the body, a plugin's settings or tarball, is read to its end by
/// [`crate::drain`] before this answer goes).
async fn refuse() -> ApiError {
    unsupported()
}

fn unsupported() -> ApiError {
    ApiError::not_implemented("pelagos-dockerd does not support plugins")
}
