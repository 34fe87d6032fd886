//! Tarballs and the verbs that make images elsewhere: `docker save` (`GET /images/{name}/get`,
//! `GET /images/get`), `docker load`, `docker commit`; `POST /build` and search, refused
//! plainly.

use std::io::Write;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pelagos_engine::commit::CommitOptions;
use pelagos_engine::image_views::familiar;
use pelagos_engine::Engine;
use pelagos_image::{ImageRecord, Reference};
use pelagos_model::events::Event;
use pelagos_model::filters::Filters;
use serde_json::{json, Value};

use super::stream::{BodyReader, ChannelWriter};
use super::QueryPairs;
use crate::error::{ApiError, ApiResult};
use crate::query;
use crate::state::AppState;

/// `GET /images/{name}/get`.
pub async fn save_one(State(state): State<AppState>, name: String) -> Response {
    save(state, vec![name])
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let names = QueryPairs::parse(raw.as_deref()).all("names");
    if names.is_empty() {
        return ApiError::bad_request("names is required: the images to save").into_response();
    }
    save(state, names)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Every image is looked up before the first byte (a 404 is an HTTP error), then the tar
/// streams; a failure while writing cuts the stream.
async fn save(state: AppState, names: Vec<String>) -> ApiResult<Response> {
    let selected = state
        .blocking(move |engine| {
            names
                .iter()
                .map(|n| Ok((super::lookup(engine, n)?, tags_named(n))))
                .collect::<ApiResult<Vec<_>>>()
        })
        .await?;
    let (writer, body) = ChannelWriter::new();
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || write_archive(&engine, &selected, writer));
    Ok(([(CONTENT_TYPE, "application/x-tar")], body).into_response())
}

/// The tag an archive records for a name: itself when it is a tag (not an id).
fn tags_named(name: &str) -> Vec<String> {
    match Reference::parse(name) {
        Ok(r) if r.tag.is_some() && r.digest.is_none() && !super::looks_like_id(name) => {
            vec![r.to_string()]
        }
        _ => Vec::new(),
    }
}

fn write_archive(engine: &Engine, selected: &[(ImageRecord, Vec<String>)], writer: ChannelWriter) {
    let mut out = std::io::BufWriter::with_capacity(256 << 10, writer);
    let written = pelagos_image::archive::save(engine.images(), selected, &mut out)
        .map_err(std::io::Error::other)
        .and_then(|()| out.flush());
    match (written, out.into_inner()) {
        (Ok(()), Ok(_)) => {
            for (image, _) in selected {
                let id = image.id.to_string();
                engine.emit(&Event::image("save", &id, &id));
            }
        }
        (Err(e), Ok(w)) => w.fail(e),
        (_, Err(e)) => tracing::warn!("docker save: {}", e.error()),
    }
}

/// `POST /images/load?quiet`: the body is the archive; one `{"stream"}` line per image.
pub async fn load(State(state): State<AppState>, body: Body) -> ApiResult<Response> {
    let reader = BodyReader::new(body);
    let loaded = state
        .blocking(move |engine| {
            let loaded =
                pelagos_image::archive::load(engine.images(), std::io::BufReader::new(reader))
                    .map_err(super::client_archive_error)?;
            for (image, names) in &loaded {
                let name = names.first().map_or(image.id.to_string(), |n| familiar(n));
                engine.emit(&Event::image("load", &image.id.to_string(), &name));
            }
            Ok::<_, ApiError>(loaded)
        })
        .await?;
    let mut text = String::new();
    for (image, names) in loaded {
        if names.is_empty() {
            text.push_str(&format!(
                "{}\n",
                json!({"stream": format!("Loaded image ID: {}\n", image.id)})
            ));
        }
        for n in names {
            text.push_str(&format!(
                "{}\n",
                json!({"stream": format!("Loaded image: {}\n", familiar(&n))})
            ));
        }
    }
    Ok(([(CONTENT_TYPE, "application/json")], text).into_response())
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`: 201 `{"Id"}`; a
/// running container is paused meanwhile unless `pause=0`. A container config in the body is
/// refused rather than ignored.
pub async fn commit(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let query = QueryPairs::parse(raw.as_deref());
    let config: Value = match body.iter().all(u8::is_ascii_whitespace) {
        true => Value::Null,
        false => serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?,
    };
    if !(config.is_null() || config.as_object().is_some_and(|o| o.is_empty())) {
        return Err(ApiError::bad_request(
            "pelagos-dockerd does not take a container config in POST /commit: give changes instead",
        ));
    }
    let container = query.one("container");
    if container.is_empty() {
        return Err(ApiError::bad_request("container is required"));
    }
    let opts = CommitOptions {
        tag: query.repo_tag()?,
        changes: query.all("changes"),
        message: Some(query.one("comment")).filter(|m| !m.is_empty()),
        author: Some(query.one("author")).filter(|a| !a.is_empty()),
    };
    // moby's default: pause unless `pause` says otherwise.
    let pause =
        query.one("pause").is_empty() || crate::query::bool_value(Some(&query.one("pause")));
    let image = state
        .blocking(move |engine| {
            pelagos_engine::commit::commit_pausing(engine, &container, &opts, pause)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "Id": image.id.to_string() })),
    )
        .into_response())
}

/// `POST /build`: not yet; said plainly (the build context the client is still sending is
/// read by [`crate::drain`] first, so it reads this answer).
pub async fn build() -> ApiError {
    ApiError::not_implemented("pelagos-dockerd does not support image builds yet (POST /build)")
}

/// `POST /build/prune` (`docker system prune`, `docker builder prune`): pelagos keeps no
/// build cache, so nothing is deleted — a true answer, not a pretend one.
pub async fn build_prune() -> Json<Value> {
    Json(serde_json::json!({ "CachesDeleted": [], "SpaceReclaimed": 0 }))
}

/// `GET /images/search?term=&limit=&filters=`: asks the registry's search API (Docker
/// Hub's index for a bare term, `HOST/term` for another registry) as moby does, and filters
/// the answer (`stars`, `is-official`, `is-automated`); unreachable, the error says so.
pub async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = QueryPairs::parse(raw.as_deref());
    let term = query.one("term");
    if term.is_empty() {
        return Err(ApiError::bad_request("term is required"));
    }
    let limit = search_limit(&query.one("limit"))?;
    let filters = query::filters(Some(&query.one("filters")))?;
    let keep = SearchFilter::parse(&filters)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let engine = state.engine.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // The index's search is anonymous; the daemon reads no credential file (moby).
        let found = super::client_for(&engine, "docker.io", None)
            .map_err(ApiError::from)
            .and_then(|c| {
                handle
                    .block_on(c.search(&term, limit))
                    .map_err(|e| ApiError::internal(e.to_string()))
            });
        let _ = tx.send(found);
    });
    let found = rx
        .await
        .map_err(|_| ApiError::internal("the search ended without a result"))??;
    let results = found.as_array().cloned().unwrap_or_default();
    Ok(Json(Value::Array(
        results.into_iter().filter(|r| keep.keeps(r)).collect(),
    )))
}

/// moby's limit: 25 by default, 1 to 100.
fn search_limit(text: &str) -> ApiResult<u32> {
    match text {
        "" => Ok(25),
        l => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .map(|n| n as u32)
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit {l} is outside the range of [1, 100]"))
            }),
    }
}

/// The filters of `docker search --filter`.
struct SearchFilter {
    stars: Option<u64>,
    official: Option<bool>,
    automated: Option<bool>,
}

impl SearchFilter {
    fn parse(args: &[String]) -> ApiResult<SearchFilter> {
        let f = Filters::parse(args, &["stars", "is-official", "is-automated"])?;
        let flag = |key: &str| -> ApiResult<Option<bool>> {
            match f.contains(key) {
                true => Ok(Some(f.bool_or(key, false)?)),
                false => Ok(None),
            }
        };
        let stars = match f.get("stars").last() {
            None => None,
            Some(s) => Some(
                s.parse()
                    .map_err(|_| ApiError::bad_request(format!("invalid filter 'stars={s}'")))?,
            ),
        };
        Ok(SearchFilter {
            stars,
            official: flag("is-official")?,
            automated: flag("is-automated")?,
        })
    }

    fn keeps(&self, result: &Value) -> bool {
        let stars = result["star_count"].as_u64().unwrap_or(0);
        let flag = |key: &str| result[key].as_bool().unwrap_or(false);
        self.stars.is_none_or(|s| stars >= s)
            && self.official.is_none_or(|o| flag("is_official") == o)
            && self.automated.is_none_or(|a| flag("is_automated") == a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_filters_and_limits_as_moby() {
        let keep = SearchFilter::parse(&["stars=3".into(), "is-official=true".into()]).unwrap();
        assert!(keep.keeps(&json!({"star_count": 5, "is_official": true})));
        assert!(!keep.keeps(&json!({"star_count": 2, "is_official": true})));
        assert!(!keep.keeps(&json!({"star_count": 9, "is_official": false})));
        assert!(SearchFilter::parse(&["stars=x".into()]).is_err());
        assert!(SearchFilter::parse(&["bogus=1".into()]).is_err());
        assert_eq!(search_limit("").unwrap(), 25);
        assert_eq!(search_limit("100").unwrap(), 100);
        assert_eq!(
            search_limit("0").unwrap_err().message,
            "limit 0 is outside the range of [1, 100]"
        );
    }

    #[test]
    fn archives_record_tags_not_ids() {
        assert_eq!(
            tags_named("busybox"),
            vec!["docker.io/library/busybox:latest"]
        );
        assert!(tags_named("sha256:abcd").is_empty());
        assert!(tags_named("abcdef12").is_empty());
    }
}
