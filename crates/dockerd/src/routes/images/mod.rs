//! The `/images` endpoints of the Docker Engine API, with `/auth`, `/commit` and `/build`.
//! Image names hold slashes (`HOST:5000/box:1`), so `/images/{name}/VERB` is one wildcard
//! route split here on its last segment, as moby's `{name:.*}` patterns do.

mod archive;
mod local;
mod stream;
mod transfer;

pub(crate) use transfer::{client_for, header_credentials};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pelagos_engine::Engine;
use pelagos_image::{ImageRecord, StoreError};

use crate::error::ApiError;
use crate::query::Params;
use crate::state::AppState;

/// The routes of this resource.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/images/json", get(local::list))
        .route("/images/create", post(transfer::create))
        .route("/images/prune", post(local::prune))
        .route("/images/load", post(archive::load))
        .route("/images/get", get(archive::save_many))
        .route("/images/search", get(archive::search))
        .route(
            "/images/{*rest}",
            get(get_named).post(post_named).delete(local::remove),
        )
        .route("/auth", post(transfer::auth))
        .route("/commit", post(archive::commit))
        .route("/build", post(archive::build))
        .route("/build/prune", post(archive::build_prune))
}

/// `GET /images/{name}/json|history|get`.
async fn get_named(state: State<AppState>, Path(rest): Path<String>) -> Response {
    match split_verb(&rest) {
        Some((name, "json")) => local::inspect(state, name).await.into_response(),
        Some((name, "history")) => local::history(state, name).await.into_response(),
        Some((name, "get")) => archive::save_one(state, name).await,
        _ => ApiError::not_found("page not found").into_response(),
    }
}

/// `POST /images/{name}/tag|push`.
async fn post_named(
    state: State<AppState>,
    Path(rest): Path<String>,
    Query(params): Query<Params>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    drop(body);
    match split_verb(&rest) {
        Some((name, "tag")) => local::tag(state, name, params).await.into_response(),
        Some((name, "push")) => transfer::push(state, name, params, headers).await,
        _ => ApiError::not_found("page not found").into_response(),
    }
}

/// `NAME/VERB` → (`NAME`, `VERB`), the name keeping its own slashes.
fn split_verb(rest: &str) -> Option<(String, &str)> {
    let (name, verb) = rest.trim_start_matches('/').rsplit_once('/')?;
    (!name.is_empty()).then(|| (name.to_string(), verb))
}

/// The image `name` names, or moby's 404 `No such image: NAME`.
fn lookup(engine: &Engine, name: &str) -> Result<ImageRecord, ApiError> {
    engine
        .images()
        .get(name)
        .map_err(|e| not_found_as_moby(e, name))
}

/// A store error as the daemon answers it: an unknown image in moby's words, others by kind.
pub(crate) fn not_found_as_moby(e: StoreError, name: &str) -> ApiError {
    match e {
        StoreError::ImageNotFound(_) => {
            ApiError::not_found(format!("No such image: {}", shown(name)))
        }
        other => pelagos_engine::Error::from(other).into(),
    }
}

/// An error reading a tarball the client sent (`load`, `import`): what is wrong with the
/// archive is the request's fault (400); the store's own failures keep their kind.
fn client_archive_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Archive(_)
        | StoreError::Unpack { .. }
        | StoreError::Decode { .. }
        | StoreError::Verify(_)
        | StoreError::Json { .. }
        | StoreError::InvalidImage { .. }
        | StoreError::DiffIdMismatch { .. } => ApiError::bad_request(e.to_string()),
        other => pelagos_engine::Error::from(other).into(),
    }
}

/// A query string's pairs in order: repeated names (`changes`, `names`) keep every value.
struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// Parses the raw query (`a=1&b=2&b=3`).
    fn parse(raw: Option<&str>) -> QueryPairs {
        let uri = format!("/?{}", raw.unwrap_or_default())
            .parse()
            .unwrap_or_default();
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .map(|q| q.0)
            .unwrap_or_default();
        QueryPairs(pairs)
    }

    /// The last value of `key`, or empty.
    fn one(&self, key: &str) -> String {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every value of `key`, in order.
    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The new image's name from `repo` and `tag` (import, commit), if `repo` is given.
    fn repo_tag(&self) -> Result<Option<pelagos_image::Reference>, ApiError> {
        let name = match (self.one("repo"), self.one("tag")) {
            (r, _) if r.is_empty() => return Ok(None),
            (r, t) if t.is_empty() => r,
            (r, t) => format!("{r}:{t}"),
        };
        pelagos_image::Reference::parse(&name)
            .map(Some)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }
}

/// A name as moby's errors show it: a reference in its familiar form (`busybox:latest`), an
/// id as given.
fn shown(name: &str) -> String {
    match pelagos_image::Reference::parse(name) {
        Ok(r) if !looks_like_id(name) => r.familiar(),
        _ => name.to_string(),
    }
}

/// Whether `name` reads as an image id or id prefix rather than a reference.
fn looks_like_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    name.starts_with("sha256:")
        || (hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The first 12 hex digits of a digest, as Docker shortens ids.
fn short(digest: &pelagos_image::Digest) -> String {
    digest.hex().chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::split_verb;

    #[test]
    fn unknown_names_read_as_mobys() {
        assert_eq!(super::shown("nosuch"), "nosuch:latest");
        assert_eq!(super::shown("h:5000/a/b:1"), "h:5000/a/b:1");
        assert_eq!(super::shown("abcdef12"), "abcdef12");
        assert_eq!(super::shown("sha256:abcd"), "sha256:abcd");
    }

    #[test]
    fn names_keep_their_slashes() {
        assert_eq!(
            split_verb("127.0.0.1:5000/box:1/json"),
            Some(("127.0.0.1:5000/box:1".to_string(), "json"))
        );
        assert_eq!(split_verb("busybox/tag"), Some(("busybox".into(), "tag")));
        assert_eq!(split_verb("json"), None);
        assert_eq!(split_verb("/history"), None);
    }
}
