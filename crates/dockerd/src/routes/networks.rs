//! The `/networks` endpoints of the Docker Engine API: list, inspect, create, remove, prune,
//! connect and disconnect, over the engine's network verbs (the CLI's `network` commands).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use pelagos_engine::network::{self as net, NetworkListFilter};
use pelagos_model::config::EndpointSettings;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// moby answers 403 (`errdefs.Forbidden`) for the predefined networks and for a network
/// still in use; every other error keeps its kind's status.
fn network_error(e: pelagos_engine::Error) -> ApiError {
    let forbidden = matches!(
        &e,
        pelagos_engine::Error::Network(n) if matches!(
            **n,
            pelagos_network::Error::Predefined(_) | pelagos_network::Error::ActiveEndpoints { .. }
        )
    );
    match forbidden {
        true => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        false => e.into(),
    }
}

/// `GET /networks`: every network the filters let through (no endpoints, as moby's list).
async fn list(State(state): State<AppState>, Query(q): Query<Params>) -> ApiResult<Json<Value>> {
    let args = query::filters(q.get("filters").map(String::as_str))?;
    let filter = NetworkListFilter::parse(&args)?;
    let records = state
        .blocking(move |engine| net::list(engine, &filter).map_err(network_error))
        .await?;
    let resources: Vec<_> = records
        .iter()
        .map(|r| r.resource(Default::default()))
        .collect();
    Ok(Json(serde_json::to_value(resources).map_err(internal)?))
}

/// `GET /networks/{id}` (`verbose` and `scope` accepted: every network is local).
async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<Json<Value>> {
    if let Some(scope) = q.get("scope").filter(|s| !s.is_empty() && *s != "local") {
        return Err(ApiError::not_found(format!(
            "network {id} not found (scope {scope}: pelagos has local networks only)"
        )));
    }
    let resource = state
        .blocking(move |engine| net::inspect(engine, &id).map_err(network_error))
        .await?;
    Ok(Json(serde_json::to_value(resource).map_err(internal)?))
}

/// `POST /networks/create`: 201 `{"Id", "Warning"}`; 409 for a name in use.
async fn create(
    State(state): State<AppState>,
    query::Json(request): query::Json<pelagos_network::create::NetworkCreateRequest>,
) -> ApiResult<impl IntoResponse> {
    let checked = pelagos_network::NetworkCreate::parse(request)
        .map_err(|e| network_error(pelagos_engine::Error::from(e)))?;
    let record = state
        .blocking(move |engine| net::create(engine, &checked).map_err(network_error))
        .await?;
    let body = json!({ "Id": record.id, "Warning": "" });
    Ok((StatusCode::CREATED, Json(body)))
}

/// `DELETE /networks/{id}`: 204; 403 for the predefined networks and those in use.
async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state
        .blocking(move |engine| net::remove(engine, &id).map_err(network_error))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /networks/prune`: `{"NetworksDeleted": [names]}`.
async fn prune(State(state): State<AppState>, Query(q): Query<Params>) -> ApiResult<Json<Value>> {
    let args = query::filters(q.get("filters").map(String::as_str))?;
    let filter = net::prune_filter(&args)?;
    let removed = state
        .blocking(move |engine| net::prune(engine, &filter).map_err(network_error))
        .await?;
    let names: Vec<String> = removed.into_iter().map(|r| r.name).collect();
    Ok(Json(json!({ "NetworksDeleted": names })))
}

/// The body of `POST /networks/{id}/connect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConnectRequest {
    #[serde(default)]
    container: String,
    #[serde(default)]
    endpoint_config: Option<EndpointSettings>,
}

/// The body of `POST /networks/{id}/disconnect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DisconnectRequest {
    #[serde(default)]
    container: String,
    #[serde(default)]
    force: bool,
}

/// `POST /networks/{id}/connect`: 200 with an empty body, as moby.
async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query::Json(request): query::Json<ConnectRequest>,
) -> ApiResult<StatusCode> {
    let container = required_container(request.container)?;
    let settings = request.endpoint_config.unwrap_or_default();
    state
        .blocking(move |engine| {
            net::connect::connect(engine, &id, &container, settings).map_err(network_error)
        })
        .await?;
    Ok(StatusCode::OK)
}

/// `POST /networks/{id}/disconnect`.
async fn disconnect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query::Json(request): query::Json<DisconnectRequest>,
) -> ApiResult<StatusCode> {
    let container = required_container(request.container)?;
    let force = request.force;
    state
        .blocking(move |engine| {
            net::connect::disconnect(engine, &id, &container, force).map_err(network_error)
        })
        .await?;
    Ok(StatusCode::OK)
}

/// moby refuses a connect or disconnect that names no container.
fn required_container(container: String) -> ApiResult<String> {
    match container.trim().is_empty() {
        true => Err(ApiError::bad_request("Container is required")),
        false => Ok(container),
    }
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::internal(format!("cannot encode the answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_and_used_networks_are_forbidden_as_moby() {
        let status = |e: pelagos_network::Error| network_error(e.into()).status;
        assert_eq!(
            status(pelagos_network::Error::Predefined("bridge".into())),
            StatusCode::FORBIDDEN
        );
        let in_use = pelagos_network::Error::ActiveEndpoints {
            name: "app".into(),
            id: "0123".into(),
        };
        assert_eq!(status(in_use), StatusCode::FORBIDDEN);
        assert_eq!(
            status(pelagos_network::Error::NameInUse("app".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(pelagos_network::Error::NotFound("x".into())),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn connect_needs_a_container() {
        assert!(required_container(" ".into()).is_err());
        assert_eq!(required_container("db".into()).unwrap(), "db");
    }
}
