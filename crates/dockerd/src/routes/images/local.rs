//! The image verbs on the local store: list, inspect, history, tag, remove, prune.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pelagos_engine::image_prune::{self, ImagePruneFilter};
use pelagos_engine::image_views;
use pelagos_engine::Engine;
use pelagos_image::{Digest, ImageRecord, Reference, Removal};
use pelagos_model::events::Event;
use pelagos_model::filters::{path_match, Filters};
use serde_json::{json, Value};

use super::{lookup, short};
use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// The keys `GET /images/json` filters on (moby's `acceptedImageFilterTags`).
const LIST_KEYS: &[&str] = &["dangling", "label", "before", "since", "reference"];

/// Seconds since the epoch of an image's creation (0 when unknown), as Docker's `Created`.
fn created_secs(image: &ImageRecord) -> i64 {
    image_prune::created(image)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// `GET /images/json`: Docker's `ImageSummary` list, newest first.
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> ApiResult<Response> {
    let mut args = query::filters(params.get("filters").map(String::as_str))?;
    // API < 1.25 clients name the repository in `filter`.
    if let Some(reference) = params.get("filter").filter(|f| !f.is_empty()) {
        args.push(format!("reference={reference}"));
    }
    let filters = Filters::parse(&args, LIST_KEYS)?;
    let rows = state
        .blocking(move |engine| summaries(engine, &filters))
        .await?;
    Ok(Json(rows).into_response())
}

/// The summaries the filters keep.
fn summaries(engine: &Engine, filters: &Filters) -> Result<Vec<Value>, ApiError> {
    let dangling = match filters.contains("dangling") {
        true => Some(filters.bool_or("dangling", false)?),
        false => None,
    };
    let before = bound(engine, filters, "before")?;
    let since = bound(engine, filters, "since")?;
    let mut images = engine
        .images()
        .list()
        .map_err(pelagos_engine::Error::from)?;
    images.sort_by(|x, y| {
        let newest = image_prune::created(y).cmp(&image_prune::created(x));
        newest.then(x.id.cmp(&y.id))
    });
    let mut out = Vec::new();
    for image in &images {
        let is_dangling = image.repo_tags.is_empty() && image.repo_digests.is_empty();
        let created = image_prune::created(image);
        if dangling.is_some_and(|d| d != is_dangling)
            || before.is_some_and(|b| created >= Some(b))
            || since.is_some_and(|s| created <= Some(s))
        {
            continue;
        }
        let labels = image_prune::labels(engine, image)?;
        if filters.contains("label") && !filters.labels_match(&labels) {
            continue;
        }
        let patterns = filters.get("reference");
        let keep = |full: &String| {
            patterns.is_empty()
                || Reference::parse(full).is_ok_and(|r| reference_matches(patterns, &r))
        };
        let tags: Vec<String> = image
            .repo_tags
            .iter()
            .filter(|t| keep(t))
            .map(|t| image_views::familiar(t))
            .collect();
        let digests: Vec<String> = image
            .repo_digests
            .iter()
            .filter(|t| keep(t))
            .map(|t| image_views::familiar(t))
            .collect();
        if !patterns.is_empty() && tags.is_empty() && digests.is_empty() {
            continue;
        }
        out.push(summary(image, tags, digests, labels));
    }
    Ok(out)
}

/// Docker's `ImageSummary`; an image without names shows `<none>` as API 1.41 clients expect.
fn summary(
    image: &ImageRecord,
    mut tags: Vec<String>,
    mut digests: Vec<String>,
    labels: BTreeMap<String, String>,
) -> Value {
    if tags.is_empty() && digests.is_empty() {
        tags.push("<none>:<none>".into());
        digests.push("<none>@<none>".into());
    }
    json!({
        "Id": image.id.to_string(),
        "ParentId": "",
        "RepoTags": tags,
        "RepoDigests": digests,
        "Created": created_secs(image),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": labels,
        "Containers": -1,
    })
}

/// The creation time of the image a `before`/`since` filter names (full precision, as
/// moby compares them).
fn bound(engine: &Engine, filters: &Filters, key: &str) -> Result<Option<SystemTime>, ApiError> {
    match filters.get(key) {
        [] => Ok(None),
        [name] => Ok(Some(
            image_prune::created(&lookup(engine, name)?).unwrap_or(UNIX_EPOCH),
        )),
        _ => Err(ApiError::bad_request(format!(
            "invalid filter '{key}': give one image"
        ))),
    }
}

/// moby's `FamiliarMatch`: a pattern against `name:tag` or the name alone.
fn reference_matches(patterns: &[String], r: &Reference) -> bool {
    let (full, name) = (r.familiar(), r.familiar_name());
    patterns
        .iter()
        .any(|p| path_match(p, &full) || path_match(p, &name))
}

/// `GET /images/{name}/json`.
pub async fn inspect(State(state): State<AppState>, name: String) -> ApiResult<Json<Value>> {
    state
        .blocking(move |engine| {
            let image = lookup(engine, &name)?;
            Ok::<_, ApiError>(image_views::inspect(engine, &image)?)
        })
        .await
        .map(Json)
}

/// `GET /images/{name}/history`: newest first, the top entry carrying the id and tags.
pub async fn history(State(state): State<AppState>, name: String) -> ApiResult<Json<Value>> {
    state
        .blocking(move |engine| {
            let image = lookup(engine, &name)?;
            let entries = image_views::history(engine, &image)?;
            let top = entries.len().saturating_sub(1);
            let rows: Vec<Value> = entries
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let created = h
                        .created
                        .as_deref()
                        .and_then(humantime_secs)
                        .unwrap_or(0);
                    let is_top = i == top;
                    json!({
                        "Id": if is_top { image.id.to_string() } else { "<missing>".into() },
                        "Created": created,
                        "CreatedBy": h.created_by,
                        "Tags": if is_top {
                            json!(image.repo_tags.iter().map(|t| image_views::familiar(t)).collect::<Vec<_>>())
                        } else { Value::Null },
                        "Size": h.size,
                        "Comment": h.comment,
                    })
                })
                .rev()
                .collect();
            Ok::<_, ApiError>(Value::Array(rows))
        })
        .await
        .map(Json)
}

/// RFC 3339 text → seconds since the epoch.
fn humantime_secs(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t: SystemTime| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

/// `POST /images/{name}/tag?repo=&tag=`: 201, no body.
pub async fn tag(
    State(state): State<AppState>,
    name: String,
    params: Params,
) -> ApiResult<StatusCode> {
    let repo = params.get("repo").map(String::as_str).unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    }
    let text = match params.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let target = Reference::parse(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if target.digest.is_some() {
        return Err(ApiError::bad_request(format!(
            "refusing to create a tag with a digest reference: {text}"
        )));
    }
    state
        .blocking(move |engine| {
            let image = lookup(engine, &name)?;
            engine
                .images()
                .tag(&image.id, &target)
                .map_err(pelagos_engine::Error::from)?;
            engine.emit(&Event::image(
                "tag",
                &image.id.to_string(),
                &target.familiar(),
            ));
            Ok::<_, ApiError>(StatusCode::CREATED)
        })
        .await
}

/// `DELETE /images/{name}?force&noprune`: `[{"Untagged"},{"Deleted"}]`, with moby's 409s
/// for an image a container uses.
pub async fn remove(
    State(state): State<AppState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<Json<Value>> {
    let force = query::bool_value(params.get("force").map(String::as_str));
    state
        .blocking(move |engine| {
            let image = lookup(engine, &name)?;
            refuse_in_use(engine, &name, &image, force)?;
            let in_use = engine.image_in_use_fn()?;
            let removals = engine
                .images()
                .remove(&name, force, &in_use)
                .map_err(|e| super::not_found_as_moby(e, &name))?;
            Ok::<_, ApiError>(Value::Array(
                removals.into_iter().map(|r| removal(engine, r)).collect(),
            ))
        })
        .await
        .map(Json)
}

/// One removal as moby reports it, with its event.
fn removal(engine: &Engine, r: Removal) -> Value {
    match r {
        Removal::Untagged(t) => {
            let name = image_views::familiar(&t);
            engine.emit(&Event::image("untag", &name, &name));
            json!({ "Untagged": name })
        }
        Removal::Deleted(d) => {
            engine.emit(&Event::image("delete", &d.to_string(), &d.to_string()));
            json!({ "Deleted": d.to_string() })
        }
    }
}

/// moby's conflicts, checked before anything is removed: a repository reference whose
/// image a container uses (must force), an id whose image a container uses (a running one
/// cannot be forced) or that has several tags (must force).
fn refuse_in_use(
    engine: &Engine,
    name: &str,
    image: &ImageRecord,
    force: bool,
) -> Result<(), ApiError> {
    let by_id = is_id_of(name, &image.id);
    let user = engine
        .containers()
        .list()?
        .into_iter()
        .filter(|c| c.image_id == image.id.to_string())
        .max_by_key(|c| c.state.status.is_live());
    let img = short(&image.id);
    if !by_id {
        return match user {
            Some(c) if !force && image.repo_tags.len() <= 1 => Err(ApiError::conflict(format!(
                "conflict: unable to remove repository reference {name:?} (must force) - container {} is using its referenced image {img}",
                short_id(c.id.as_str())
            ))),
            _ => Ok(()),
        };
    }
    let conflict = |how: &str, why: String| {
        Err(ApiError::conflict(format!(
            "conflict: unable to delete {img} ({how}) - {why}"
        )))
    };
    match user {
        Some(c) if c.state.status.is_live() => conflict(
            "cannot be forced",
            format!(
                "image is being used by running container {}",
                short_id(c.id.as_str())
            ),
        ),
        Some(c) if !force => conflict(
            "must be forced",
            format!(
                "image is being used by stopped container {}",
                short_id(c.id.as_str())
            ),
        ),
        _ if !force && image.repo_tags.len() > 1 => conflict(
            "must be forced",
            "image is referenced in multiple repositories".into(),
        ),
        _ => Ok(()),
    }
}

fn short_id(id: &str) -> &str {
    &id[..12.min(id.len())]
}

/// Whether `name` designates the image by its id (full, `sha256:`-prefixed or a prefix).
fn is_id_of(name: &str, id: &Digest) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && id.hex().starts_with(hex)
}

/// `POST /images/prune?filters=`: `dangling=false` is `docker image prune -a`.
pub async fn prune(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> ApiResult<Json<Value>> {
    let args = query::filters(params.get("filters").map(String::as_str))?;
    let all = args
        .iter()
        .any(|a| a == "dangling=false" || a == "dangling=0");
    let filter = ImagePruneFilter::parse(&args, all)?;
    let (tags, report) = state
        .blocking(move |engine| {
            let tags: HashMap<Digest, Vec<String>> = engine
                .images()
                .list()?
                .into_iter()
                .map(|i| (i.id, i.repo_tags))
                .collect();
            Ok::<_, pelagos_engine::Error>((tags, image_prune::prune(engine, &filter)?))
        })
        .await?;
    // As moby's ImageDelete of each: its tags untagged, then the image deleted.
    let deleted: Vec<Value> = report
        .deleted
        .iter()
        .flat_map(|d| {
            let untagged = tags.get(d).into_iter().flatten();
            untagged
                .map(|t| json!({ "Untagged": image_views::familiar(t) }))
                .chain([json!({ "Deleted": d.to_string() })])
        })
        .collect();
    Ok(Json(json!({
        "ImagesDeleted": if deleted.is_empty() { Value::Null } else { Value::Array(deleted) },
        "SpaceReclaimed": report.reclaimed,
    })))
}

#[cfg(test)]
mod tests {
    use pelagos_model::filters::path_match as glob_match;

    #[test]
    fn globs_as_path_match() {
        assert!(glob_match("busy*", "busybox:latest"));
        assert!(!glob_match("*", "a/b:1"));
        assert!(glob_match("a/*", "a/b"));
    }
}
