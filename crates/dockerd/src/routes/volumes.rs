//! The `/volumes` endpoints of the Docker Engine API: list, create, inspect, remove, prune,
//! over the engine's volumes (the `local` driver; the CLI's `volume` commands).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use pelagos_engine::volumes::{self, VolumeListFilter, VolumePruneFilter, VolumeRecord};
use pelagos_model::ErrorKind;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// A volume as the API shows it (`Options` is always empty: no driver options here).
fn view(v: &VolumeRecord) -> ApiResult<Value> {
    let mut value = serde_json::to_value(v)
        .map_err(|e| ApiError::internal(format!("cannot encode volume {}: {e}", v.name)))?;
    value["Options"] = json!({});
    Ok(value)
}

/// `GET /volumes`: `{"Volumes": [...], "Warnings": []}`.
async fn list(State(state): State<AppState>, Query(q): Query<Params>) -> ApiResult<Json<Value>> {
    let args = query::filters(q.get("filters").map(String::as_str))?;
    let filter = VolumeListFilter::parse(&args)?;
    let all = state
        .blocking(move |engine| volumes::list(engine, &filter))
        .await?;
    let views = all.iter().map(view).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({ "Volumes": views, "Warnings": [] })))
}

/// The body of `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateRequest {
    #[serde(default)]
    name: String,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`: 201 with the volume (the existing one for a name in use, as moby).
async fn create(
    State(state): State<AppState>,
    query::Json(request): query::Json<CreateRequest>,
) -> ApiResult<impl IntoResponse> {
    let driver = request.driver.unwrap_or_default();
    if !driver.is_empty() && driver != "local" {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {driver}: plugin \"{driver}\" not found"
        )));
    }
    if request.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "pelagos's local volume driver takes no options (DriverOpts)",
        ));
    }
    let name = (!request.name.is_empty()).then_some(request.name);
    let labels = request.labels.unwrap_or_default();
    let (record, _) = state
        .blocking(move |engine| engine.volumes().create(name.as_deref(), labels))
        .await?;
    Ok((StatusCode::CREATED, Json(view(&record)?)))
}

/// `GET /volumes/{name}`.
async fn inspect(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state
        .blocking(move |engine| engine.volumes().get(&name))
        .await?;
    Ok(Json(view(&record)?))
}

/// `DELETE /volumes/{name}?force`: 204; 409 while a container uses it (`force` does not
/// change that, as moby: it only makes a missing volume no error).
async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<StatusCode> {
    let force = query::bool_value(q.get("force").map(String::as_str));
    let outcome = state
        .blocking(move |engine| {
            let users = engine.containers().volume_users()?;
            let users_of = |v: &str| users.get(v).cloned().unwrap_or_default();
            engine
                .volumes()
                .remove(&name, false, &users_of)
                .map_err(pelagos_engine::Error::from)
        })
        .await;
    match outcome {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if force && e.status == crate::error::status_of(ErrorKind::NotFound) => {
            Ok(StatusCode::NO_CONTENT)
        }
        Err(e) => Err(e),
    }
}

/// `POST /volumes/prune`: API 1.41 (moby 20.10) prunes every unused local volume, named ones
/// included; `{"VolumesDeleted", "SpaceReclaimed"}`.
async fn prune(State(state): State<AppState>, Query(q): Query<Params>) -> ApiResult<Json<Value>> {
    let args = query::filters(q.get("filters").map(String::as_str))?;
    let all = !args.iter().any(|a| a.starts_with("all="));
    let filter = VolumePruneFilter::parse(&args, all)?;
    let (removed, bytes) = state
        .blocking(move |engine| volumes::prune(engine, &filter))
        .await?;
    Ok(Json(
        json!({ "VolumesDeleted": removed, "SpaceReclaimed": bytes }),
    ))
}
