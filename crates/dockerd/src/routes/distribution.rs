//! `GET /distribution/{name}/json`: what the registry holds under a reference, without a
//! pull: the descriptor of the manifest it names and the platforms it serves (asked by
//! `docker service create`, buildx and SDKs), with the request's `X-Registry-Auth`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use pelagos_image::Reference;
use pelagos_registry::{DistributionInfo, Platform, RegistryError};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::routes::images::{client_for, header_credentials};
use crate::state::AppState;

/// The routes of this resource (names hold slashes: one wildcard, split here).
pub fn routes() -> Router<AppState> {
    Router::new().route("/distribution/{*rest}", get(inspect))
}

/// `GET /distribution/{name}/json`.
async fn inspect(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let name = rest
        .trim_start_matches('/')
        .strip_suffix("/json")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::not_found("page not found"))?;
    let reference = Reference::parse(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // As moby: a header that cannot be read is no credentials, not an error.
    let creds = header_credentials(&headers).unwrap_or(None);
    let engine = state.engine.clone();
    let handle = tokio::runtime::Handle::current();
    // The registry futures are driven as the pulls drive them, on a blocking thread.
    let outcome = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
            let client = client_for(&engine, &reference.registry, creds).map_err(ApiError::from)?;
            client
                .inspect_distribution(&reference)
                .await
                .map_err(|e| registry_error(e, &reference))
        })
    })
    .await
    .map_err(|e| ApiError::internal(format!("a worker task failed: {e}")))?;
    Ok(Json(view(&outcome?)))
}

/// moby's `DistributionInspect`.
fn view(info: &DistributionInfo) -> Value {
    json!({
        "Descriptor": {
            "mediaType": info.media_type,
            "digest": info.digest.to_string(),
            "size": info.size,
        },
        "Platforms": info.platforms.iter().map(platform).collect::<Vec<_>>(),
    })
}

/// An OCI platform object (`variant` only when there is one).
fn platform(p: &Platform) -> Value {
    let mut v = json!({ "architecture": p.architecture, "os": p.os });
    if let Some(variant) = &p.variant {
        v["variant"] = json!(variant);
    }
    v
}

/// The registry's refusals with the statuses moby passes on: 401 unauthorized, 404 unknown.
fn registry_error(e: RegistryError, reference: &Reference) -> ApiError {
    match &e {
        RegistryError::Unauthorized { detail, .. } => {
            ApiError::new(StatusCode::UNAUTHORIZED, format!("unauthorized: {detail}"))
        }
        RegistryError::NotFound { .. } => ApiError::not_found(format!(
            "manifest for {} not found: {e}",
            reference.familiar()
        )),
        _ => ApiError::internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_as_moby() {
        let info = DistributionInfo {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: pelagos_image::Digest::of_bytes(pelagos_image::Algorithm::Sha256, b"x"),
            size: 7,
            platforms: vec![
                Platform::new("linux", "amd64", None),
                Platform::new("linux", "arm", Some("v7")),
            ],
        };
        let v = view(&info);
        assert_eq!(v["Descriptor"]["size"], 7);
        assert!(v["Descriptor"]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")));
        assert_eq!(
            v["Platforms"][0],
            json!({"architecture": "amd64", "os": "linux"})
        );
        assert_eq!(v["Platforms"][1]["variant"], "v7");
    }
}
