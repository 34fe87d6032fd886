//! Images to and from registries and tarballs: `POST /images/create` (pull, or import with
//! `fromSrc`), `POST /images/{name}/push`, `POST /auth`; credentials from `X-Registry-Auth`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use pelagos_engine::pull::{PullEvent, PullProgress};
use pelagos_engine::Engine;
use pelagos_image::{ImageRecord, Reference};
use pelagos_model::events::Event;
use pelagos_registry::{AuthFile, Client, Credentials, Platform, RegistryError};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::stream::{self, status, BodyReader, Progress};
use super::{short, QueryPairs};
use crate::error::{ApiError, ApiResult};
use crate::query::Params;
use crate::state::AppState;

/// Docker's `AuthConfig`, in `X-Registry-Auth` (base64url JSON) and the body of `/auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    username: String,
    password: String,
    auth: String,
    serveraddress: String,
    identitytoken: String,
}

impl AuthConfig {
    /// The user name and password, from the fields or from `auth` (base64 `user:password`).
    /// None with an identity token: its user name is a placeholder (`<token>`), and sending
    /// that as a password would fail even a public pull; pelagos has no refresh-token flow,
    /// so such a request is anonymous.
    fn credentials(&self) -> Option<Credentials> {
        if !self.identitytoken.is_empty() {
            return None;
        }
        if !self.username.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(self.auth.trim())
            .ok()?;
        let (u, p) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
        (!u.is_empty()).then(|| Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })
    }
}

/// The credentials of `X-Registry-Auth`, if it carries some (`{}` carries none).
pub(crate) fn header_credentials(headers: &HeaderMap) -> ApiResult<Option<Credentials>> {
    let Some(value) = headers.get("X-Registry-Auth") else {
        return Ok(None);
    };
    let bad = |why: String| ApiError::bad_request(format!("invalid X-Registry-Auth header: {why}"));
    let text = value.to_str().map_err(|e| bad(e.to_string()))?.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|e| bad(e.to_string()))?;
    let config: AuthConfig = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    Ok(config.credentials())
}

/// A registry client with the request's credentials for `registry`, else none: as moby,
/// the daemon never reads a credential file of its own (the client sends what it has).
pub(crate) fn client_for(
    engine: &Engine,
    registry: &str,
    creds: Option<Credentials>,
) -> pelagos_engine::Result<Client> {
    let auth = match creds {
        Some(c) => AuthFile::in_memory(registry, &c),
        None => AuthFile::empty(std::path::Path::new("")),
    };
    Ok(Client::new(engine.registries(), auth))
}

/// Runs a registry future on a blocking thread of the daemon's runtime (the registry
/// futures are driven as the CLI drives them, with `block_on`).
fn spawn_io<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(f()));
}

/// `POST /images/create`: a pull (`fromImage`, `tag`, `platform`) or an import
/// (`fromSrc=-` with the tarball as the body, `repo`, `tag`, `message`, `changes`).
pub async fn create(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = QueryPairs::parse(raw.as_deref());
    let result = if !query.one("fromSrc").is_empty() {
        import(state, &query, body).await
    } else if !query.one("fromImage").is_empty() {
        match header_credentials(&headers) {
            Ok(creds) => {
                pull(
                    state,
                    &query.one("fromImage"),
                    &query.one("tag"),
                    &query.one("platform"),
                    creds,
                )
                .await
            }
            Err(e) => Err(e),
        }
    } else {
        Err(ApiError::bad_request("fromImage or fromSrc is required"))
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The reference `fromImage` and `tag` name together, as moby joins them.
fn pull_reference(from: &str, tag: &str) -> ApiResult<Reference> {
    let bad = |e: pelagos_image::reference::ReferenceError| ApiError::bad_request(e.to_string());
    if tag.is_empty() {
        let last = from.rsplit('/').next().unwrap_or(from);
        if !last.contains(':') && !from.contains('@') {
            return Err(ApiError::not_implemented(
                "pelagos-dockerd does not pull every tag of a repository (docker pull --all-tags): name a tag",
            ));
        }
        return Reference::parse(from).map_err(bad);
    }
    let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
    Reference::parse(&format!("{from}{sep}{tag}")).map_err(bad)
}

/// The pull, its progress as Docker's JSON messages.
async fn pull(
    state: AppState,
    from: &str,
    tag: &str,
    platform: &str,
    creds: Option<Credentials>,
) -> ApiResult<Response> {
    let reference = pull_reference(from, tag)?;
    let platform = match platform {
        "" => Platform::host(),
        p => Platform::parse(p).map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = state.engine.clone();
    spawn_io(move || async move {
        let progress = Arc::new(PullStream::new(tx.clone(), &reference));
        let outcome = async {
            let client = client_for(&engine, &reference.registry, creds)?;
            pelagos_engine::pull::pull_with(&engine, client, &reference, &platform, progress).await
        };
        // A vanished client cancels the pull (dropping it stops its downloads).
        let outcome = tokio::select! {
            r = outcome => r,
            _ = tx.closed() => return,
        };
        let _ = tx.send(match outcome {
            Ok(pulled) => {
                let _ = tx.send(Progress::Line(status(
                    &format!("Digest: {}", pulled.digest),
                    None,
                )));
                Progress::Line(status(&pulled_status(&pulled, &reference), None))
            }
            Err(e) => Progress::Failed(pull_error(e, &reference)),
        });
    });
    Ok(stream::respond(rx).await)
}

/// The last line of a pull: whether anything was new.
fn pulled_status(pulled: &pelagos_engine::pull::Pulled, reference: &Reference) -> String {
    let how = match pulled.downloaded {
        true => "Downloaded newer image for",
        false => "Image is up to date for",
    };
    format!("Status: {how} {}", reference.familiar())
}

/// A failed pull as moby words it: a missing manifest is a 404 `manifest for REF not
/// found`, a refused one a 404 `pull access denied for NAME` (moby's `notFoundError`).
fn pull_error(e: pelagos_engine::Error, reference: &Reference) -> ApiError {
    let pelagos_engine::Error::Registry(r) = &e else {
        return e.into();
    };
    match &**r {
        RegistryError::NotFound { .. } => ApiError::not_found(format!(
            "manifest for {} not found: {e}",
            reference.familiar()
        )),
        RegistryError::Unauthorized { detail, .. } => ApiError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': unauthorized: {detail}",
            reference.familiar_name()
        )),
        _ => e.into(),
    }
}

/// A failed push in Docker's words (the registry crate's hint names `pelagos login`).
fn push_error(e: pelagos_engine::Error) -> ApiError {
    match &e {
        pelagos_engine::Error::Registry(r) => match &**r {
            RegistryError::Unauthorized { detail, .. } => {
                ApiError::internal(format!("unauthorized: {detail}"))
            }
            _ => e.into(),
        },
        _ => e.into(),
    }
}

/// Pull events as Docker's progress messages, one layer id (12 hex digits) each.
struct PullStream {
    tx: mpsc::UnboundedSender<Progress>,
    what: String,
    name: String,
    /// Per layer index: its short id, its size, the bytes last reported.
    layers: Mutex<HashMap<usize, (String, u64, u64)>>,
}

impl PullStream {
    fn new(tx: mpsc::UnboundedSender<Progress>, reference: &Reference) -> PullStream {
        let what = reference
            .tag
            .clone()
            .or_else(|| reference.digest.as_ref().map(|d| d.to_string()))
            .unwrap_or_default();
        PullStream {
            tx,
            what,
            name: reference.familiar_name(),
            layers: Mutex::new(HashMap::new()),
        }
    }

    fn send(&self, text: &str, id: Option<&str>) {
        let _ = self.tx.send(Progress::Line(status(text, id)));
    }

    fn layers(&self) -> std::sync::MutexGuard<'_, HashMap<usize, (String, u64, u64)>> {
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl PullProgress for PullStream {
    fn event(&self, event: PullEvent) {
        match event {
            PullEvent::Resolved { .. } => {
                self.send(&format!("Pulling from {}", self.name), Some(&self.what))
            }
            PullEvent::LayerExists { digest, .. } => {
                self.send("Already exists", Some(&short(&digest)))
            }
            PullEvent::LayerStart {
                index,
                digest,
                size,
            } => {
                let id = short(&digest);
                self.send("Pulling fs layer", Some(&id));
                self.layers().insert(index, (id, size, 0));
            }
            PullEvent::LayerProgress { index, done } => {
                let mut layers = self.layers();
                let Some((id, total, last)) = layers.get_mut(&index) else {
                    return;
                };
                // About a hundred messages per layer, not one per read.
                if done < *total && done.saturating_sub(*last) < (*total / 100).max(64 << 10) {
                    return;
                }
                *last = done;
                let line = json!({"status": "Downloading", "progressDetail": {"current": done, "total": *total}, "id": id});
                let _ = self.tx.send(Progress::Line(line));
            }
            PullEvent::LayerDone { digest, .. } => {
                let id = short(&digest);
                self.send("Download complete", Some(&id));
                self.send("Pull complete", Some(&id));
            }
        }
    }
}

/// `docker import`: the body is the root filesystem tarball; answers the new id.
async fn import(state: AppState, query: &QueryPairs, body: Body) -> ApiResult<Response> {
    if query.one("fromSrc") != "-" {
        return Err(ApiError::not_implemented(
            "pelagos-dockerd does not import from a URL: download the tarball and send it with fromSrc=-",
        ));
    }
    let tag = query.repo_tag()?;
    let changes = query.all("changes");
    let message = Some(query.one("message")).filter(|m| !m.is_empty());
    let reader = BodyReader::new(body);
    let image: ImageRecord = state
        .blocking(move |engine| {
            let image = pelagos_image::archive::import(
                engine.images(),
                std::io::BufReader::new(reader),
                tag.as_ref(),
                &changes,
                message.as_deref(),
            )
            .map_err(super::client_archive_error)?;
            let id = image.id.to_string();
            engine.emit(&Event::image("import", &id, &id));
            Ok::<_, ApiError>(image)
        })
        .await?;
    let line = format!("{}\n", status(&image.id.to_string(), None));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        line,
    )
        .into_response())
}

/// `POST /images/{name}/push?tag=`: the tag, or every tag of the repository.
pub async fn push(
    State(state): State<AppState>,
    name: String,
    params: Params,
    headers: HeaderMap,
) -> Response {
    push_inner(state, name, params, headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn push_inner(
    state: AppState,
    name: String,
    params: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let creds = header_credentials(&headers)?;
    let repo = Reference::parse(&name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Old clients put the tag in the name (`/images/box:1/push`).
    let named_tag = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    let tag = match params.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => t.clone(),
        None if named_tag => repo.tag.clone().unwrap_or_default(),
        None => String::new(),
    };
    let engine = state.engine.clone();
    let targets = {
        let (repo, tag) = (repo.clone(), tag.clone());
        state
            .blocking(move |engine| tagged_images(engine, &repo, &tag))
            .await?
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let _ = tx.send(Progress::Line(status(
        &format!("The push refers to repository [{}]", repo.familiar_name()),
        None,
    )));
    spawn_io(move || async move {
        let client = match client_for(&engine, &repo.registry, creds) {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.send(Progress::Failed(push_error(e)));
                return;
            }
        };
        for (image, target) in targets {
            if let Err(e) = push_one(&engine, &client, &image, &target, &tx).await {
                let _ = tx.send(Progress::Failed(push_error(e)));
                return;
            }
        }
    });
    Ok(stream::respond(rx).await)
}

/// The images to push: `repo:tag`, or with no tag every tag of `repo`; moby's 404 if none.
fn tagged_images(
    engine: &Engine,
    repo: &Reference,
    tag: &str,
) -> ApiResult<Vec<(ImageRecord, Reference)>> {
    let missing = || {
        ApiError::not_found(format!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_name()
        ))
    };
    if !tag.is_empty() {
        let target = Reference::parse(&format!("{}:{tag}", repo.familiar_name()))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let image = engine
            .images()
            .get(&target.to_string())
            .map_err(|_| missing())?;
        return Ok(vec![(image, target)]);
    }
    let mut out = Vec::new();
    for image in engine
        .images()
        .list()
        .map_err(pelagos_engine::Error::from)?
    {
        for t in &image.repo_tags {
            if let Ok(r) = Reference::parse(t) {
                if r.name() == repo.name() {
                    out.push((image.clone(), r));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(missing());
    }
    Ok(out)
}

/// Pushes one tag, reporting each layer and the final digest as moby does.
async fn push_one(
    engine: &Engine,
    client: &Client,
    image: &ImageRecord,
    target: &Reference,
    tx: &mpsc::UnboundedSender<Progress>,
) -> pelagos_engine::Result<()> {
    for layer in &image.layers {
        let _ = tx.send(Progress::Line(status(
            "Preparing",
            Some(&short(&layer.digest)),
        )));
    }
    let config = image.id.clone();
    let digest = pelagos_engine::push::push_with(engine, client, image, target, |b| {
        if b.digest == config {
            return;
        }
        let what = if b.uploaded {
            "Pushed"
        } else {
            "Layer already exists"
        };
        let _ = tx.send(Progress::Line(status(what, Some(&short(&b.digest)))));
    })
    .await?;
    let size = std::fs::metadata(engine.images().blobs().blob_path(&image.manifest_digest))
        .map(|m| m.len())
        .unwrap_or(0);
    let tag = target.tag.clone().unwrap_or_else(|| "latest".into());
    let _ = tx.send(Progress::Line(status(
        &format!("{tag}: digest: {digest} size: {size}"),
        None,
    )));
    let aux = json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest.to_string(), "Size": size}});
    let _ = tx.send(Progress::Line(aux));
    Ok(())
}

/// moby's check of `serveraddress`: a URL once `https://` is put before a bare host; what
/// is not (control characters, a host no resolver could be asked for) is the request's
/// fault, a 400, not a failure to reach the registry.
fn check_server_address(address: &str) -> ApiResult<()> {
    if address.is_empty() {
        // Docker Hub, as moby's empty address.
        return Ok(());
    }
    // Go's url.Parse refuses every control character; the url crate drops some silently.
    if address.chars().any(|c| c.is_ascii_control()) {
        return Err(ApiError::bad_request(format!(
            "unable to parse server address: {address:?}: invalid control character in URL"
        )));
    }
    let with_scheme = match address.starts_with("https://") || address.starts_with("http://") {
        true => address.to_string(),
        false => format!("https://{address}"),
    };
    let bad = |e: &dyn std::fmt::Display| {
        ApiError::bad_request(format!("unable to parse server address: {address:?}: {e}"))
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e))?;
    // What the registry client sends it as: an HTTP URI (`}` in a host is a URL to the url
    // crate, not to Go's url.Parse nor to HTTP).
    url.as_str()
        .parse::<axum::http::Uri>()
        .map(|_| ())
        .map_err(|e| bad(&e))
}

/// `POST /auth`: checks the credentials against the registry (the daemon keeps none).
pub async fn auth(
    State(state): State<AppState>,
    crate::query::Json(config): crate::query::Json<AuthConfig>,
) -> ApiResult<Response> {
    check_server_address(&config.serveraddress)?;
    let server = pelagos_registry::login_server(&config.serveraddress);
    if !config.identitytoken.is_empty() {
        return Err(ApiError::not_implemented(
            "pelagos-dockerd does not log in with identity tokens: give a user name and a password",
        ));
    }
    let creds = config.credentials().ok_or_else(|| {
        ApiError::bad_request("a user name and a password are required to log in")
    })?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let engine = state.engine.clone();
    spawn_io(move || async move {
        let client = Client::new(engine.registries(), AuthFile::in_memory(&server, &creds));
        let _ = tx.send(client.login(&server, &creds).await.map_err(|e| (server, e)));
    });
    match rx.await {
        Ok(Ok(())) => {
            Ok(Json(json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
        }
        Ok(Err((server, RegistryError::Unauthorized { detail, .. }))) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("login attempt to {server} failed: unauthorized: {detail}"),
        )),
        Ok(Err((_, e))) => Err(ApiError::internal(e.to_string())),
        Err(_) => Err(ApiError::internal("the login check ended without a result")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(json: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = base64::engine::general_purpose::URL_SAFE.encode(json);
        h.insert("X-Registry-Auth", value.parse().unwrap());
        h
    }

    #[test]
    fn registry_auth_header_as_docker_sends_it() {
        let c = header_credentials(&header(
            r#"{"username":"alice","password":"pw","serveraddress":"h:5000"}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "pw"));
        assert!(header_credentials(&header("{}")).unwrap().is_none());
        assert!(header_credentials(&HeaderMap::new()).unwrap().is_none());
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:x:y");
        let c = header_credentials(&header(&format!(r#"{{"auth":"{auth}"}}"#)))
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "x:y"));
        // An identity token's placeholder user is no credential.
        let token = r#"{"username":"<token>","auth":"PHRva2VuPjo=","identitytoken":"rt"}"#;
        assert!(header_credentials(&header(token)).unwrap().is_none());
        let mut bad = HeaderMap::new();
        bad.insert("X-Registry-Auth", "!!".parse().unwrap());
        assert_eq!(
            header_credentials(&bad).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn server_addresses_must_be_urls() {
        assert!(check_server_address("").is_ok());
        assert!(check_server_address("h:5000").is_ok());
        assert!(check_server_address("https://index.docker.io/v1/").is_ok());
        assert!(check_server_address("Z\u{e9}6\u{a7}\u{0}").is_err());
        assert!(check_server_address("X}\u{255b2}").is_err());
        let e = check_server_address("\u{fe}(\u{17}\tx").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.starts_with("unable to parse server address"),
            "{}",
            e.message
        );
    }

    #[test]
    fn from_image_and_tag_join_as_moby() {
        let r = pull_reference("h:5000/box", "1").unwrap();
        assert_eq!(r.familiar(), "h:5000/box:1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(pull_reference("busybox", &d).unwrap().digest.is_some());
        assert_eq!(
            pull_reference("busybox:2", "").unwrap().familiar(),
            "busybox:2"
        );
        assert_eq!(
            pull_reference("busybox", "").unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            pelagos_registry::login_server("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(pelagos_registry::login_server("h:5000"), "h:5000");
    }
}
