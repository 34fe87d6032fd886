//! The system endpoints: `/_ping` (GET and HEAD), `/version`, `/info`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::error::ApiResult;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
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
