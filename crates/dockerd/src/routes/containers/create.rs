//! `POST /containers/create`: Docker's Config, HostConfig and NetworkingConfig checked as the
//! CLI's `create` checks them, the image looked up (a 404 makes the docker CLI pull and try
//! again), then the record made (the engine emits `create`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use pelagos_engine::container::create::{self as verb, CreateRequest};
use pelagos_engine::Engine;
use pelagos_image::ImageRecord;
use pelagos_model::config;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// `POST /containers/create?name=&platform=`: 201 `{"Id","Warnings"}`.
pub async fn create(
    State(state): State<AppState>,
    Query(params): Query<Params>,
    query::Json(body): query::Json<config::CreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    refuse_links(&body)?;
    let name = params
        .get("name")
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
        .filter(|n| !n.is_empty());
    let platform = params.get("platform").filter(|p| !p.is_empty()).cloned();
    let id = state
        .blocking(move |engine| create_container(engine, name, platform.as_deref(), body))
        .await?;
    let body = json!({ "Id": id, "Warnings": [] });
    Ok((StatusCode::CREATED, Json(body)))
}

/// Legacy links need the default bridge's /etc/hosts juggling pelagos does not do: refused
/// plainly rather than ignored.
fn refuse_links(body: &config::CreateRequest) -> ApiResult<()> {
    let endpoint_links = body
        .networking_config
        .endpoints_config
        .values()
        .any(|e| e.links.as_ref().is_some_and(|l| !l.is_empty()));
    if !body.host_config.links.is_empty() || endpoint_links {
        return Err(ApiError::bad_request(
            "legacy container links (--link, HostConfig.Links) are not supported by pelagos: \
             put the containers on a user-defined network and use their names",
        ));
    }
    Ok(())
}

/// What the CLI's `create` does: defaults, checks, the image, the record; the new id.
fn create_container(
    engine: &Engine,
    name: Option<String>,
    platform: Option<&str>,
    body: config::CreateRequest,
) -> ApiResult<String> {
    let mut body = body;
    let image_name = body.config.image.clone();
    if image_name.trim().is_empty() {
        return Err(ApiError::bad_request("Config.Image is required"));
    }
    // The docker CLI sends `{}` for no volumes; moby then takes the image's (nil here, as
    // the CLI's create leaves it).
    if body.config.volumes.as_ref().is_some_and(|v| v.is_empty()) {
        body.config.volumes = None;
    }
    adapt_resources(&mut body.host_config);
    let asked_default = matches!(body.host_config.network_mode.as_str(), "" | "default");
    let request = verb::with_defaults(
        engine,
        CreateRequest {
            name,
            image_name,
            config: body.config,
            host_config: body.host_config,
            networking: body.networking_config,
        },
    );
    verb::validate(&request)?;
    let image = local_image(engine, &request.image_name)?;
    if let Some(platform) = platform {
        check_platform(&image, &request.image_name, platform)?;
    }
    let record = verb::create(engine, &image, request)?;
    if asked_default {
        // Before anyone can start it: inspect then shows `default`, as moby's.
        engine.containers().modify(&record.id, |r| {
            r.asked_network_mode = "default".into();
        })?;
    }
    Ok(record.id.to_string())
}

/// moby's reading of the defaults the docker CLI sends: `MemorySwappiness` -1, `PidsLimit`
/// 0 or less and `OomKillDisable` false all mean "not set" (on cgroup v2 moby drops the
/// last two), so the record holds what the CLI's own `create` would.
fn adapt_resources(host: &mut config::HostConfig) {
    if host.memory_swappiness == Some(-1) {
        host.memory_swappiness = None;
    }
    if host.pids_limit.is_some_and(|p| p <= 0) {
        host.pids_limit = None;
    }
    if host.oom_kill_disable == Some(false) {
        host.oom_kill_disable = None;
    }
}

/// The image from the store; moby's 404 (`No such image: busybox:latest`) when it is not
/// there.
fn local_image(engine: &Engine, name: &str) -> ApiResult<ImageRecord> {
    engine
        .images()
        .get(name)
        .map_err(|e| crate::routes::images::not_found_as_moby(e, name))
}

/// moby's answer when the local image is of another platform than asked: a 404, so that
/// the docker CLI pulls the one asked for.
fn check_platform(image: &ImageRecord, name: &str, platform: &str) -> ApiResult<()> {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or_default();
    let arch = parts.next().map(normalize_arch);
    let variant = parts.next();
    let matches = os == image.os
        && arch.is_none_or(|a| a == normalize_arch(&image.architecture))
        && variant.is_none_or(|v| image.variant.as_deref().is_none_or(|iv| iv == v));
    if matches {
        return Ok(());
    }
    let actual = match &image.variant {
        Some(v) => format!("{}/{}/{v}", image.os, image.architecture),
        None => format!("{}/{}", image.os, image.architecture),
    };
    Err(ApiError::not_found(format!(
        "image with reference {name} was found but does not match the specified platform: \
         wanted {platform}, actual: {actual}"
    )))
}

/// The OCI names of the common aliases (`x86_64` is `amd64`, `aarch64` is `arm64`).
fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_refused() {
        let body: config::CreateRequest =
            serde_json::from_str(r#"{"Image":"x","HostConfig":{"Links":["a:b"]}}"#).unwrap();
        let e = refuse_links(&body).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let body: config::CreateRequest =
            serde_json::from_str(r#"{"Image":"x","HostConfig":{"Links":null}}"#).unwrap();
        assert!(refuse_links(&body).is_ok());
    }

    #[test]
    fn the_cli_s_defaults_are_unset() {
        let mut host: config::HostConfig =
            serde_json::from_str(r#"{"MemorySwappiness":-1,"PidsLimit":0,"OomKillDisable":false}"#)
                .unwrap();
        adapt_resources(&mut host);
        assert_eq!(host, config::HostConfig::default());
    }

    #[test]
    fn arch_aliases_match() {
        assert_eq!(normalize_arch("x86_64"), "amd64");
        assert_eq!(normalize_arch("arm64"), "arm64");
    }
}
