//! `GET /containers/json` (Docker's summaries, every `ps` filter) and
//! `GET /containers/{id}/json` (the engine's inspect object, sizes on request).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::Json;
use pelagos_engine::container::list::{select, summary_of, ListOptions};
use pelagos_engine::container::list_filter::PsFilter;
use pelagos_engine::container::{inspect as inspect_verb, lookup};
use pelagos_engine::Engine;
use pelagos_model::config::EndpointSettings;
use pelagos_model::record::ContainerRecord;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// `GET /containers/json?all&limit&size&filters`.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> ApiResult<Json<Vec<Value>>> {
    let all = query::bool_value(params.get("all").map(String::as_str));
    let size = query::bool_value(params.get("size").map(String::as_str));
    let limit = limit(params.get("limit").map(String::as_str))?;
    let filters = query::filters(params.get("filters").map(String::as_str))?;
    state
        .blocking(move |engine| -> ApiResult<Vec<Value>> {
            let options = ListOptions {
                all,
                limit,
                size,
                filter: PsFilter::parse(engine, &filters)?,
            };
            let records = select(engine, &options)?;
            Ok(records.iter().map(|r| summary(engine, r, size)).collect())
        })
        .await
        .map(Json)
}

/// moby's `limit`: a number; zero or less lists everything.
fn limit(text: Option<&str>) -> ApiResult<Option<usize>> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let n: i64 = text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "strconv.Atoi: parsing {text:?}: invalid syntax (limit)"
        ))
    })?;
    Ok(usize::try_from(n).ok().filter(|n| *n > 0))
}

/// The engine's summary with the API's `HostConfig.NetworkMode` and
/// `NetworkSettings.Networks`.
fn summary(engine: &Engine, r: &ContainerRecord, size: bool) -> Value {
    let mut v = serde_json::to_value(summary_of(engine, r, size)).unwrap_or_else(|_| json!({}));
    v["HostConfig"] = json!({ "NetworkMode": network_mode(r) });
    v["NetworkSettings"] = json!({ "Networks": networks(r) });
    v
}

/// `HostConfig.NetworkMode` as the client sent it (moby keeps `default`); the resolved
/// network is in `NetworkSettings`.
fn network_mode(r: &ContainerRecord) -> &str {
    match r.asked_network_mode.as_str() {
        "" => &r.host_config.network_mode,
        asked => asked,
    }
}

/// The container's endpoints; `none` and `host` show an empty one, as in inspect.
fn networks(r: &ContainerRecord) -> BTreeMap<String, EndpointSettings> {
    let mut networks = r.networking.endpoints_config.clone();
    let mode = r.host_config.network_mode.as_str();
    if networks.is_empty() && matches!(mode, "none" | "host") {
        networks.insert(mode.to_string(), EndpointSettings::default());
    }
    networks
}

/// `GET /containers/{id}/json?size`.
pub async fn inspect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<Json<Value>> {
    let size = query::bool_value(params.get("size").map(String::as_str));
    state
        .blocking(move |engine| -> ApiResult<Value> {
            let record = lookup(engine, &id)?;
            let mut v = inspect_verb::view(engine, &record);
            v["HostConfig"]["NetworkMode"] = json!(network_mode(&record));
            if size {
                let s = summary_of(engine, &record, true);
                v["SizeRw"] = json!(s.size_rw);
                v["SizeRootFs"] = json!(s.size_root_fs);
            }
            Ok(v)
        })
        .await
        .map(Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_moby() {
        assert_eq!(limit(None).unwrap(), None);
        assert_eq!(limit(Some("3")).unwrap(), Some(3));
        assert_eq!(limit(Some("-1")).unwrap(), None);
        assert_eq!(limit(Some("0")).unwrap(), None);
        assert!(limit(Some("x")).is_err());
    }
}
