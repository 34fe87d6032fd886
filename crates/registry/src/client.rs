//! The registry client: resolves references to platform manifests (through mirrors), fetches
//! blobs, checks logins and pushes, on top of oci-client's protocol implementation.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use pelagos_image::reference::DOCKER_HUB_API_HOST;
use pelagos_image::{Algorithm, Digest, Reference};

use crate::auth::{AuthFile, Credentials};
use crate::config::{normalize_registry_key, RegistryConfig};
use crate::error::{from_oci, from_reqwest, io_chain, status_error, Context, RegistryError};
use crate::manifest::{
    self, BlobDescriptor, IndexEntry, ParseError, Parsed, DOCKER_CONFIG, DOCKER_MANIFEST,
    LAYER_MEDIA_TYPES, OCI_CONFIG, OCI_MANIFEST,
};
use crate::platform::Platform;
use crate::retry::RetryPolicy;
use crate::tls::{self, Trust};

const USER_AGENT: &str = concat!("pelagos/", env!("CARGO_PKG_VERSION"));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Per-read inactivity limit: a stalled blob stream fails (and is resumed) instead of hanging.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for [`Client::fetch_blob`], which holds the blob in memory (configs are KiBs).
pub(crate) const MAX_IN_MEMORY_BLOB: u64 = 64 << 20;
/// Upper bound for a manifest or index document.
const MAX_MANIFEST_SIZE: usize = 4 << 20;
/// Chunk size when streaming a file into a push.
const PUSH_READ_CHUNK: usize = 1 << 20;

/// An image manifest resolved for one platform, with where it came from.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference that was resolved.
    pub reference: Reference,
    /// Registry host actually used (a mirror or the registry's API host); blobs come from here.
    pub endpoint: String,
    /// Digest of [`ResolvedImage::manifest`].
    pub manifest_digest: Digest,
    /// Media type of the image manifest (OCI or Docker schema 2).
    pub manifest_media_type: String,
    /// The manifest bytes as served (they hash to `manifest_digest`).
    pub manifest: Vec<u8>,
    /// Digest of the index / manifest list the manifest was chosen from, if any.
    pub index_digest: Option<Digest>,
    /// The image config blob.
    pub config: BlobDescriptor,
    /// The layers, base first.
    pub layers: Vec<BlobDescriptor>,
    /// Platform of the chosen manifest: from the index entry, or the host's for a
    /// single-platform manifest.
    pub platform: Platform,
}

/// A registry client; cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistryConfig,
    auth: AuthFile,
    retry: RetryPolicy,
    /// One oci-client per registry host, so that the scheme and the extra CA roots apply to
    /// that host only (oci-client's own settings are per client, not per host).
    endpoints: Mutex<HashMap<String, Endpoint>>,
}

#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) host: String,
    pub(crate) scheme: &'static str,
    /// CA roots the clients trust: none for a plain-HTTP endpoint until the registry turns
    /// out to send the client to an HTTPS URL (see [`Client::on_endpoint`]).
    pub(crate) trust: Trust,
    /// Certificates from `<certs_dir>/<host>/` among the roots.
    pub(crate) certs_d: usize,
    pub(crate) oci: oci_client::Client,
    pub(crate) http: reqwest::Client,
    pub(crate) auth: RegistryAuth,
}

impl Endpoint {
    /// oci-client keeps credentials per registry; give it ours before each operation.
    pub(crate) async fn prepare(&self) {
        self.oci.store_auth_if_needed(&self.host, &self.auth).await;
    }

    pub(crate) fn oci_ref_digest(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> oci_client::Reference {
        oci_client::Reference::with_digest(
            self.host.clone(),
            repository.to_owned(),
            digest.to_string(),
        )
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("auth_file", &self.inner.auth.path())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client using `config` for schemes, mirrors and CAs, and `auth` for credentials.
    pub fn new(config: &RegistryConfig, auth: AuthFile) -> Client {
        Client::with_retry_policy(config, auth, RetryPolicy::default())
    }

    /// Like [`Client::new`] with a custom retry policy for [`Client::blob_reader`].
    pub fn with_retry_policy(
        config: &RegistryConfig,
        auth: AuthFile,
        retry: RetryPolicy,
    ) -> Client {
        // reqwest is built without a bundled crypto provider; ring is the one this crate links.
        // An error only means some provider is already installed, which is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client {
            inner: Arc::new(Inner {
                config: config.clone(),
                auth,
                retry,
                endpoints: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The retry policy of blob readers.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The client for `host`, created on first use.
    pub(crate) fn endpoint(&self, host: &str) -> Result<Endpoint, RegistryError> {
        let mut map = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ep) = map.get(host) {
            return Ok(ep.clone());
        }
        let ep = self.build_endpoint(host, false)?;
        map.insert(host.to_owned(), ep.clone());
        Ok(ep)
    }

    /// Replaces the client for a plain-HTTP `host` with one that trusts the system's and the
    /// host's certs.d roots, for the HTTPS URLs the registry sends clients to.
    fn endpoint_with_roots(&self, host: &str) -> Result<Endpoint, RegistryError> {
        let mut map = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(ep) = map.get(host).filter(|ep| ep.trust == Trust::Roots) {
            return Ok(ep.clone());
        }
        let ep = self.build_endpoint(host, true)?;
        map.insert(host.to_owned(), ep.clone());
        Ok(ep)
    }

    /// Builds the clients for `host`. An HTTPS endpoint trusts the system's roots (read once
    /// per process) and `<certs_dir>/<host>/*.crt`; a plain-HTTP one trusts nothing unless
    /// `with_roots`, so that it reads no certificate at all.
    fn build_endpoint(&self, host: &str, with_roots: bool) -> Result<Endpoint, RegistryError> {
        let config = &self.inner.config;
        let plain = config.is_insecure(host);
        let trust = if plain && !with_roots {
            Trust::Nothing
        } else {
            Trust::Roots
        };
        let extra = match trust {
            Trust::Nothing => Vec::new(),
            Trust::Roots => tls::load_certs(&config.certs_dir, host)?,
        };
        let cert_err = |message: String| RegistryError::Certificate {
            host: host.to_owned(),
            path: config.certs_dir.join(host),
            message,
        };
        let roots = tls::endpoint_roots(trust, extra).map_err(cert_err)?;
        let oci_config = ClientConfig {
            protocol: if plain {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            // "Only these roots", always non-empty: otherwise reqwest reads the system's
            // certificates again for every client (see `tls`).
            tls_certs_only: roots.oci,
            // Platform choice is done here (variants, error listing what exists).
            platform_resolver: None,
            // One POST and one streamed PUT per blob (what containerd does) instead of a PATCH
            // per 4 MiB: fewer round trips, and supported by every registry.
            use_monolithic_push: true,
            read_timeout: Some(READ_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let oci = oci_client::Client::try_from(oci_config)
            .map_err(|e| cert_err(format!("cannot set up the HTTP client: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tls_backend_preconfigured(roots.rustls)
            .build()
            .map_err(|e| cert_err(format!("cannot set up the HTTP client: {e}")))?;
        let auth = match self.inner.auth.get(host) {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Endpoint {
            host: host.to_owned(),
            scheme: if plain { "http" } else { "https" },
            trust,
            certs_d: roots.certs_d,
            oci,
            http,
            auth,
        })
    }

    /// Runs `op` on the endpoint of `host`. A plain-HTTP endpoint starts without CA roots, so
    /// an HTTPS URL the registry sends the client to (a token service, a redirected blob) fails:
    /// with a certificate error, or as a 401 when oci-client's token request failed (it drops
    /// that error). Either way `op` runs once more on an endpoint with the roots. Errors then
    /// get a hint naming the CA roots tried or why plain HTTP was used.
    pub(crate) async fn on_endpoint<T, F, Fut>(&self, host: &str, op: F) -> Result<T, RegistryError>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let ep = self.endpoint(host)?;
        let (mut trust, mut certs_d, plain) = (ep.trust, ep.certs_d, ep.scheme == "http");
        let mut result = op(ep).await;
        if trust == Trust::Nothing {
            if let Err(
                e @ (RegistryError::UntrustedCertificate { .. }
                | RegistryError::Unauthorized { .. }),
            ) = &result
            {
                tracing::debug!(%host, error = %e, "retrying with CA roots: the plain-HTTP registry may have sent the client to an HTTPS URL");
                let ep = self.endpoint_with_roots(host)?;
                (trust, certs_d) = (ep.trust, ep.certs_d);
                result = op(ep).await;
            }
        }
        result.map_err(|e| self.explain(host, (trust, certs_d, plain), e))
    }

    /// Adds to a certificate error which roots were tried, and to the answer of an HTTPS
    /// server to a plain-HTTP request why pelagos used plain HTTP.
    fn explain(
        &self,
        host: &str,
        (trust, certs_d, plain): (Trust, usize, bool),
        e: RegistryError,
    ) -> RegistryError {
        let dir = self.inner.config.certs_dir.join(host);
        match e {
            RegistryError::UntrustedCertificate { host: h, message } => {
                let tried = match (trust, certs_d) {
                    (Trust::Nothing, _) => "none".to_owned(),
                    (Trust::Roots, 0) => format!(
                        "the system's (no {}/*.crt; put the registry's CA certificate there to trust it)",
                        dir.display()
                    ),
                    (Trust::Roots, n) => format!(
                        "the system's and {n} from {}/*.crt",
                        dir.display()
                    ),
                };
                // reqwest names the first URL of a redirect chain, which for a plain-HTTP
                // endpoint is not where the certificate came from.
                let origin = if plain {
                    "; the registry is plain HTTP, so the certificate is that of an HTTPS URL \
                     it sent the client to (a redirect or its token service)"
                } else {
                    ""
                };
                RegistryError::UntrustedCertificate {
                    host: h,
                    message: format!("{message} (CA roots tried: {tried}{origin})"),
                }
            }
            RegistryError::Http {
                host: h,
                url,
                status: 400,
                message,
            } if url.starts_with("http:") && message.contains("HTTPS server") => {
                let hint = if self.inner.config.listed_insecure(host) {
                    "registries.insecure lists it; remove it from there for HTTPS".to_owned()
                } else {
                    format!(
                        "it is a loopback registry without CA certificates in {}; put the \
                         registry's CA certificate there (ca.crt) for HTTPS",
                        dir.display()
                    )
                };
                RegistryError::Http {
                    host: h,
                    url,
                    status: 400,
                    message: format!("{message} (pelagos spoke plain HTTP to {host}: {hint})"),
                }
            }
            other => other,
        }
    }

    /// Resolves a tag or digest to an image manifest for `platform`.
    ///
    /// Mirrors configured for the reference's registry are tried first, in order; any error
    /// from a mirror falls through to the next one and finally to the registry itself. An OCI
    /// index / Docker manifest list is followed to the entry for `platform` (an error lists
    /// the platforms it has); schema 1 is refused; the bytes of a pinned digest, and of the
    /// chosen index entry, are verified.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        for mirror in self.inner.config.mirrors_for(&reference.registry) {
            match self.resolve_at(mirror, reference, platform).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    tracing::warn!(%mirror, %reference, error = %e, "mirror failed, trying the next source")
                }
            }
        }
        self.resolve_at(reference.api_host(), reference, platform)
            .await
    }

    async fn resolve_at(
        &self,
        host: &str,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        self.on_endpoint(host, |ep| resolve_on(ep, reference, platform))
            .await
    }

    /// Fetches a small blob (the image config) into memory from the endpoint that served the
    /// manifest, verified against the descriptor's digest and size.
    pub async fn fetch_blob(
        &self,
        image: &ResolvedImage,
        desc: &BlobDescriptor,
    ) -> Result<Vec<u8>, RegistryError> {
        let host = image.endpoint.as_str();
        if desc.size > MAX_IN_MEMORY_BLOB {
            return Err(RegistryError::Protocol {
                host: host.to_owned(),
                message: format!(
                    "blob {} from {host}: {} bytes is too large to fetch into memory (limit {MAX_IN_MEMORY_BLOB})",
                    desc.digest, desc.size
                ),
            });
        }
        self.on_endpoint(host, |ep| {
            fetch_blob_on(ep, &image.reference.repository, desc)
        })
        .await
    }

    /// Checks credentials against the registry's `/v2/` endpoint, doing the token exchange
    /// when the registry asks for one. `registry` as in [`Reference::registry`] (`docker.io`,
    /// `localhost:5000`). A registry that needs no credentials accepts any.
    ///
    /// Written by hand: oci-client has no `/v2/` check, and its `auth()` accepts HTTP Basic
    /// credentials without trying them.
    pub async fn login(&self, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
        let host = if normalize_registry_key(registry) == pelagos_image::reference::DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            registry
        };
        self.on_endpoint(host, |ep| login_on(ep, registry, creds))
            .await
    }

    /// Uploads a blob from `path` unless the registry already has it (HEAD first). Returns
    /// whether it was uploaded. The file is hashed while it streams out; a file that does not
    /// match `desc` aborts the upload before it is committed.
    pub async fn push_blob(
        &self,
        target: &Reference,
        desc: &BlobDescriptor,
        path: &Path,
    ) -> Result<bool, RegistryError> {
        let host = target.api_host();
        let what = format!("blob {} for {}", desc.digest, target.name());
        let what = what.as_str();
        self.on_endpoint(host, |ep| async move {
            ep.prepare().await;
            let ctx = Context { host, what };
            let r = ep.oci_ref_digest(&target.repository, &desc.digest);
            let digest_str = desc.digest.to_string();
            match ep.oci.blob_exists(&r, &digest_str).await {
                Ok(true) => return Ok(false),
                Ok(false) => {}
                Err(e) => match from_oci(e, &ctx) {
                    // The check runs with a pull token, which some registries refuse for a
                    // repository that does not exist yet; the upload asks for push access and
                    // reports a real refusal.
                    RegistryError::Unauthorized { .. } => {}
                    other => return Err(other),
                },
            }
            let file_err = |source: std::io::Error| RegistryError::BlobFile {
                path: path.to_owned(),
                source,
            };
            let meta = tokio::fs::metadata(path).await.map_err(file_err)?;
            if meta.len() != desc.size {
                return Err(RegistryError::SizeMismatch {
                    what: format!("file {}", path.display()),
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: meta.len(),
                });
            }
            let file = tokio::fs::File::open(path).await.map_err(file_err)?;
            let failure: Arc<Mutex<Option<RegistryError>>> = Arc::default();
            let stream = file_stream(
                file,
                desc.clone(),
                path.to_owned(),
                host.to_owned(),
                failure.clone(),
            );
            let pushed = ep
                .oci
                .push_blob_stream(&r, stream, &digest_str, Some(desc.size))
                .await;
            // A failure of the file itself (read error, wrong content) is the real cause.
            let own = failure
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some(e) = own {
                return Err(e);
            }
            pushed.map_err(|e| from_oci(e, &ctx))?;
            Ok(true)
        })
        .await
    }

    /// Uploads a manifest (or index) under the target's tag (or digest) and returns its digest.
    /// The blobs it names must already be there.
    pub async fn push_manifest(
        &self,
        target: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let host = target.api_host();
        let what = format!("manifest {}", target.familiar());
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(RegistryError::Protocol {
                host: host.to_owned(),
                message: format!("{what}: {} bytes is larger than the {MAX_MANIFEST_SIZE}-byte limit for manifests", bytes.len()),
            });
        }
        let digest = match &target.digest {
            Some(pinned) => {
                verify_bytes(bytes, pinned, host, &what)?;
                pinned.clone()
            }
            None => Digest::of_bytes(Algorithm::Sha256, bytes),
        };
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            RegistryError::Protocol {
                host: host.to_owned(),
                message: format!("{what}: media type {media_type:?} is not a valid header value"),
            }
        })?;
        let (what, digest, content_type) = (what.as_str(), &digest, &content_type);
        self.on_endpoint(host, |ep| async move {
            ep.prepare().await;
            let r = match &target.tag {
                Some(tag) => oci_client::Reference::with_tag(
                    host.to_owned(),
                    target.repository.clone(),
                    tag.clone(),
                ),
                None => ep.oci_ref_digest(&target.repository, digest),
            };
            ep.oci
                .push_manifest_raw(&r, bytes.to_vec(), content_type.clone())
                .await
                .map_err(|e| from_oci(e, &Context { host, what }))?;
            Ok(digest.clone())
        })
        .await
    }
}

/// [`Client::login`] at one endpoint.
async fn login_on(ep: Endpoint, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let host = ep.host.as_str();
    let url = format!("{}://{host}/v2/", ep.scheme);
    let what = format!("GET {url}");
    let send = |req: reqwest::RequestBuilder| {
        let what = what.clone();
        async move { req.send().await.map_err(|e| from_reqwest(&e, host, &what)) }
    };
    let resp = send(ep.http.get(&url)).await?;
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Ok(());
    }
    if status != 401 {
        return Err(status_error(
            host.to_owned(),
            &what,
            url,
            status,
            body_text(resp).await,
        ));
    }
    let challenge = resp
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(parse_challenge);
    let refused = |detail: String| RegistryError::Unauthorized {
        registry: registry.to_owned(),
        detail,
    };
    match challenge {
        Some(c) if c.scheme.eq_ignore_ascii_case("basic") => {
            let resp = send(
                ep.http
                    .get(&url)
                    .basic_auth(&creds.username, Some(&creds.password)),
            )
            .await?;
            match resp.status().as_u16() {
                s if (200..300).contains(&s) => Ok(()),
                401 | 403 => Err(refused(format!(
                    "the registry refused the user name or password for {:?}",
                    creds.username
                ))),
                s => Err(status_error(
                    host.to_owned(),
                    &what,
                    url,
                    s,
                    body_text(resp).await,
                )),
            }
        }
        Some(c) if c.scheme.eq_ignore_ascii_case("bearer") => {
            let realm = c.param("realm").ok_or_else(|| RegistryError::Protocol {
                host: host.to_owned(),
                message: format!("{url}: Bearer challenge without a realm"),
            })?;
            let mut query = vec![
                ("account", creds.username.as_str()),
                ("client_id", "pelagos"),
                ("offline_token", "true"),
            ];
            if let Some(service) = c.param("service") {
                query.push(("service", service));
            }
            let token_what = format!("token request to {realm}");
            let resp = ep
                .http
                .get(realm)
                .query(&query)
                .basic_auth(&creds.username, Some(&creds.password))
                .send()
                .await
                .map_err(|e| from_reqwest(&e, host, &token_what))?;
            match resp.status().as_u16() {
                s if (200..300).contains(&s) => {}
                401 | 403 => {
                    return Err(refused(format!(
                        "the token service {realm} refused the user name or password for {:?}",
                        creds.username
                    )))
                }
                s => {
                    return Err(status_error(
                        host.to_owned(),
                        &token_what,
                        realm.to_owned(),
                        s,
                        body_text(resp).await,
                    ))
                }
            }
            let body = resp
                .bytes()
                .await
                .map_err(|e| from_reqwest(&e, host, &token_what))?;
            let token = parse_token(&body).ok_or_else(|| RegistryError::Protocol {
                host: host.to_owned(),
                message: format!("{token_what}: the answer has no \"token\" or \"access_token\""),
            })?;
            let resp = send(ep.http.get(&url).bearer_auth(token)).await?;
            match resp.status().as_u16() {
                s if (200..300).contains(&s) => Ok(()),
                401 | 403 => Err(refused(
                    "the registry refused the token its token service issued".into(),
                )),
                s => Err(status_error(
                    host.to_owned(),
                    &what,
                    url,
                    s,
                    body_text(resp).await,
                )),
            }
        }
        _ => Err(RegistryError::Protocol {
            host: host.to_owned(),
            message: format!(
                "{url} answered 401 without a Basic or Bearer WWW-Authenticate challenge"
            ),
        }),
    }
}

/// [`Client::resolve`] at one endpoint.
async fn resolve_on(
    ep: Endpoint,
    reference: &Reference,
    platform: &Platform,
) -> Result<ResolvedImage, RegistryError> {
    ep.prepare().await;
    let host = ep.host.as_str();
    let repo = &reference.repository;
    let label = reference.familiar();
    let top_ref = top_reference(&ep, reference);
    let what = format!("manifest {label}");
    let top = fetch_manifest(&ep, &top_ref, &what).await?;
    let top_digest = match &reference.digest {
        Some(pinned) => {
            verify_bytes(&top, pinned, host, &what)?;
            pinned.clone()
        }
        None => Digest::of_bytes(Algorithm::Sha256, &top),
    };
    let parsed = parse_manifest(&top, &label, host)?;
    let (manifest, manifest_digest, index_digest, chosen_platform, parsed) = match parsed {
        Parsed::Index { entries, .. } => {
            let entry = choose(&entries, platform, &label)?;
            let d = &entry.descriptor;
            let child_what = format!("manifest {label}@{} ({})", d.digest, entry_platform(&entry));
            let child_ref = ep.oci_ref_digest(repo, &d.digest);
            let child = fetch_manifest(&ep, &child_ref, &child_what).await?;
            verify_bytes(&child, &d.digest, host, &child_what)?;
            if child.len() as u64 != d.size {
                return Err(RegistryError::SizeMismatch {
                    what: format!("manifest from {host}"),
                    digest: d.digest.clone(),
                    expected: d.size,
                    actual: child.len() as u64,
                });
            }
            let parsed = parse_manifest(&child, &label, host)?;
            let p = entry.platform.clone().unwrap_or_else(Platform::host);
            (child, d.digest.clone(), Some(top_digest), p, parsed)
        }
        other => (top, top_digest, None, Platform::host(), other),
    };
    let (manifest_media_type, config, layers) = image_parts(parsed, &label)?;
    Ok(ResolvedImage {
        reference: reference.clone(),
        endpoint: host.to_owned(),
        manifest_digest,
        manifest_media_type,
        manifest,
        index_digest,
        config,
        layers,
        platform: chosen_platform,
    })
}

/// What `reference` names at the endpoint: its digest, else its tag (`latest` by default).
pub(crate) fn top_reference(ep: &Endpoint, reference: &Reference) -> oci_client::Reference {
    match (&reference.digest, &reference.tag) {
        (Some(d), _) => ep.oci_ref_digest(&reference.repository, d),
        (None, tag) => oci_client::Reference::with_tag(
            ep.host.clone(),
            reference.repository.clone(),
            tag.clone()
                .unwrap_or_else(|| pelagos_image::reference::DEFAULT_TAG.to_owned()),
        ),
    }
}

/// [`Client::fetch_blob`] at one endpoint.
pub(crate) async fn fetch_blob_on(
    ep: Endpoint,
    repository: &str,
    desc: &BlobDescriptor,
) -> Result<Vec<u8>, RegistryError> {
    let host = ep.host.as_str();
    let what = format!("blob {} from {host}", desc.digest);
    ep.prepare().await;
    let r = ep.oci_ref_digest(repository, &desc.digest);
    let ctx = Context { host, what: &what };
    let digest_str = desc.digest.to_string();
    let mut stream = ep
        .oci
        .pull_blob_stream(&r, digest_str.as_str())
        .await
        .map_err(|e| from_oci(e, &ctx))?;
    // Capacity from the descriptor is bounded by MAX_IN_MEMORY_BLOB above.
    let mut buf = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                if buf.len() as u64 + bytes.len() as u64 > desc.size {
                    return Err(RegistryError::SizeExceeded {
                        registry: host.to_owned(),
                        digest: desc.digest.clone(),
                        expected: desc.size,
                    });
                }
                buf.extend_from_slice(&bytes);
            }
            // oci-client's own end-of-stream digest check fails after the last byte; the
            // check below says the same thing with pelagos' error.
            Err(_) if buf.len() as u64 == desc.size => break,
            Err(e) => {
                return Err(RegistryError::Transport {
                    host: host.to_owned(),
                    message: format!("{what}: {}", io_chain(&e)),
                })
            }
        }
    }
    if buf.len() as u64 != desc.size {
        return Err(RegistryError::SizeMismatch {
            what: format!("blob from {host}"),
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: buf.len() as u64,
        });
    }
    verify_bytes(&buf, &desc.digest, host, &what)?;
    Ok(buf)
}

/// The parts of an image manifest; schema 1, a nested index, and configs or layers of media
/// types pelagos cannot use are refused.
fn image_parts(
    parsed: Parsed,
    label: &str,
) -> Result<(String, BlobDescriptor, Vec<BlobDescriptor>), RegistryError> {
    let (manifest_media_type, config, layers) = match parsed {
        Parsed::Image {
            media_type,
            config,
            layers,
        } => (media_type, config, layers),
        Parsed::Schema1 { media_type } => {
            return Err(RegistryError::Schema1Unsupported {
                reference: label.to_owned(),
                media_type,
            })
        }
        // Only reachable for an index entry that is itself an index.
        Parsed::Index { media_type, .. } => {
            return Err(RegistryError::UnsupportedMediaType {
                reference: label.to_owned(),
                what: "index entry (an index nested in an index)".into(),
                media_type,
            })
        }
    };
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Err(RegistryError::UnsupportedMediaType {
            reference: label.to_owned(),
            what: "config".into(),
            media_type: config.media_type,
        });
    }
    if let Some(bad) = layers
        .iter()
        .find(|l| !LAYER_MEDIA_TYPES.contains(&l.media_type.as_str()))
    {
        return Err(RegistryError::UnsupportedMediaType {
            reference: label.to_owned(),
            what: format!("layer {}", bad.digest),
            media_type: bad.media_type.clone(),
        });
    }
    Ok((manifest_media_type, config, layers))
}

pub(crate) async fn fetch_manifest(
    ep: &Endpoint,
    r: &oci_client::Reference,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let (bytes, _digest) = ep
        .oci
        .pull_manifest_raw(r, &ep.auth, manifest::ACCEPT)
        .await
        .map_err(|e| {
            from_oci(
                e,
                &Context {
                    host: &ep.host,
                    what,
                },
            )
        })?;
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(RegistryError::Protocol {
            host: ep.host.clone(),
            message: format!(
                "{what}: {} bytes is larger than the {MAX_MANIFEST_SIZE}-byte limit for manifests",
                bytes.len()
            ),
        });
    }
    Ok(bytes.to_vec())
}

pub(crate) fn parse_manifest(
    bytes: &[u8],
    label: &str,
    host: &str,
) -> Result<Parsed, RegistryError> {
    manifest::parse(bytes).map_err(|e| match e {
        ParseError::Malformed(message) => RegistryError::Protocol {
            host: host.to_owned(),
            message: format!("manifest of {label}: {message}"),
        },
        ParseError::UnsupportedMediaType(media_type) => RegistryError::UnsupportedMediaType {
            reference: label.to_owned(),
            what: "manifest".into(),
            media_type,
        },
    })
}

pub(crate) fn verify_bytes(
    bytes: &[u8],
    expected: &Digest,
    host: &str,
    what: &str,
) -> Result<(), RegistryError> {
    let actual = Digest::of_bytes(expected.algorithm(), bytes);
    if &actual == expected {
        Ok(())
    } else {
        Err(RegistryError::DigestMismatch {
            registry: host.to_owned(),
            what: if what.contains(host) {
                what.to_owned()
            } else {
                format!("{what} from {host}")
            },
            expected: expected.clone(),
            actual: actual.to_string(),
        })
    }
}

fn entry_platform(e: &IndexEntry) -> String {
    e.platform
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "no platform".into())
}

/// Picks the index entry for `wanted`: an image manifest whose platform matches, preferring an
/// exact variant match; entries of other media types (attestations, nested indexes) are skipped.
fn choose(
    entries: &[IndexEntry],
    wanted: &Platform,
    label: &str,
) -> Result<IndexEntry, RegistryError> {
    let usable = |e: &&IndexEntry| {
        let mt = e.descriptor.media_type.as_str();
        mt.is_empty() || mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
    };
    let candidates: Vec<&IndexEntry> = entries
        .iter()
        .filter(usable)
        .filter(|e| e.platform.as_ref().is_some_and(|p| wanted.matches(p)))
        .collect();
    let best = candidates
        .iter()
        .find(|e| e.platform.as_ref() == Some(wanted))
        .or_else(|| candidates.first());
    match best {
        Some(e) => Ok((*e).clone()),
        None => {
            let mut available: Vec<Platform> = Vec::new();
            for p in entries.iter().filter_map(|e| e.platform.clone()) {
                // Build attestations are listed as unknown/unknown; they are not platforms.
                if p.os != "unknown" && !available.contains(&p) {
                    available.push(p);
                }
            }
            Err(RegistryError::NoMatchingPlatform {
                reference: label.to_owned(),
                wanted: wanted.clone(),
                available,
            })
        }
    }
}

pub(crate) async fn body_text(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    let text = text.trim();
    // Error pages can be large; the start says what matters.
    text.chars().take(500).collect()
}

fn parse_token(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["token", "access_token"]
        .iter()
        .find_map(|k| v.get(k).and_then(|t| t.as_str()).filter(|t| !t.is_empty()))
        .map(str::to_owned)
}

/// A `WWW-Authenticate` challenge: scheme and `key="value"` parameters.
#[derive(Debug, PartialEq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the first challenge of a `WWW-Authenticate` value (`Bearer realm="...",service="..."`).
pub(crate) fn parse_challenge(value: &str) -> Challenge {
    let value = value.trim();
    let (scheme, mut rest) = match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], value[i..].trim_start()),
        None => (value, ""),
    };
    let mut params = Vec::new();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_owned();
        rest = rest[eq + 1..].trim_start();
        let mut val = String::new();
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            rest = q[end.min(q.len())..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            val = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        params.push((key, val));
    }
    Challenge {
        scheme: scheme.to_owned(),
        params,
    }
}

/// Streams a file in chunks for oci-client's push, hashing as it goes. The content is checked
/// against `desc` as soon as `desc.size` bytes have been read, before the last chunk is handed
/// over: a mismatch (or a read error, or a file that grew or shrank) is recorded in `failure`
/// and ends the stream with an error, so the upload is never committed.
fn file_stream(
    file: tokio::fs::File,
    desc: BlobDescriptor,
    path: PathBuf,
    host: String,
    failure: Arc<Mutex<Option<RegistryError>>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, oci_client::errors::OciDistributionError>>
       + Send
       + 'static {
    use std::io::Write as _;
    use tokio::io::AsyncReadExt as _;
    struct State {
        file: tokio::fs::File,
        /// `None` once all `desc.size` bytes have been read and verified.
        verifier: Option<pelagos_image::Verifier>,
        done: bool,
        desc: BlobDescriptor,
        path: PathBuf,
        host: String,
        failure: Arc<Mutex<Option<RegistryError>>>,
    }
    impl State {
        fn fail(&mut self, e: RegistryError) -> oci_client::errors::OciDistributionError {
            self.done = true;
            let msg = e.to_string();
            *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            oci_client::errors::OciDistributionError::IoError(std::io::Error::other(msg))
        }
        fn size_error(&self, actual: u64) -> RegistryError {
            RegistryError::SizeMismatch {
                what: format!("file {}", self.path.display()),
                digest: self.desc.digest.clone(),
                expected: self.desc.size,
                actual,
            }
        }
        fn verify_error(&self, e: pelagos_image::VerifyError) -> RegistryError {
            match e {
                pelagos_image::VerifyError::DigestMismatch { expected, actual } => {
                    RegistryError::DigestMismatch {
                        registry: self.host.clone(),
                        what: format!("file {} pushed to {}", self.path.display(), self.host),
                        expected,
                        actual: actual.to_string(),
                    }
                }
                pelagos_image::VerifyError::SizeMismatch { actual, .. } => self.size_error(actual),
            }
        }
    }
    let state = State {
        file,
        verifier: Some(pelagos_image::Verifier::new(
            desc.digest.clone(),
            Some(desc.size),
        )),
        done: false,
        desc,
        path,
        host,
        failure,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let mut buf = vec![0u8; PUSH_READ_CHUNK];
        let n = match st.file.read(&mut buf).await {
            Ok(n) => n,
            Err(source) => {
                let err = RegistryError::BlobFile {
                    path: st.path.clone(),
                    source,
                };
                let e = st.fail(err);
                return Some((Err(e), st));
            }
        };
        if n == 0 {
            st.done = true;
            // Still verifying: the file is shorter than its descriptor (or empty).
            if let Some(v) = st.verifier.take() {
                if let Err(e) = v.finish() {
                    let err = st.verify_error(e);
                    let e = st.fail(err);
                    return Some((Err(e), st));
                }
            }
            return None;
        }
        buf.truncate(n);
        let Some(verifier) = st.verifier.as_mut() else {
            // Everything was verified, yet there is more: the file grew.
            let err = st.size_error(st.desc.size + n as u64);
            let e = st.fail(err);
            return Some((Err(e), st));
        };
        if verifier.write_all(&buf).is_err() {
            let actual = verifier.bytes_written() + n as u64;
            let err = st.size_error(actual);
            let e = st.fail(err);
            return Some((Err(e), st));
        }
        if verifier.bytes_written() == st.desc.size {
            if let Some(v) = st.verifier.take() {
                if let Err(e) = v.finish() {
                    let err = st.verify_error(e);
                    let e = st.fail(err);
                    return Some((Err(e), st));
                }
            }
        }
        Some((Ok(bytes::Bytes::from(buf)), st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parsing() {
        let c = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg, one",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1/token"));
        assert_eq!(c.param("service"), Some("reg, one"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let c = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(c.scheme, "Basic");
        assert_eq!(c.param("REALM"), Some("Registry Realm"));
        let c = parse_challenge("Bearer realm=plain, service=\"x\\\"y\"");
        assert_eq!(c.param("realm"), Some("plain"));
        assert_eq!(c.param("service"), Some("x\"y"));
        assert_eq!(parse_challenge("Basic").params, vec![]);
    }

    #[test]
    fn platform_choice_lists_what_exists() {
        let d = |c: char| BlobDescriptor {
            media_type: OCI_MANIFEST.into(),
            digest: Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap(),
            size: 1,
        };
        let e = |c: char, p: &str| IndexEntry {
            descriptor: d(c),
            platform: Some(Platform::parse(p).unwrap()),
        };
        let entries = vec![
            e('a', "linux/amd64"),
            e('b', "linux/arm64/v8"),
            e('c', "linux/arm/v7"),
            IndexEntry {
                descriptor: d('d'),
                platform: Some(Platform::new("unknown", "unknown", None)),
            },
        ];
        let pick = |p: &str| {
            choose(&entries, &Platform::parse(p).unwrap(), "x").map(|e| e.descriptor.digest)
        };
        assert_eq!(pick("linux/arm64").unwrap(), d('b').digest);
        assert_eq!(pick("linux/amd64").unwrap(), d('a').digest);
        assert_eq!(pick("linux/arm").unwrap(), d('c').digest);
        let err = pick("linux/s390x").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("linux/s390x")
                && msg.contains("linux/amd64, linux/arm64/v8, linux/arm/v7"),
            "{msg}"
        );
        assert!(!msg.contains("unknown"), "{msg}");
    }

    #[test]
    fn schema1_and_foreign_media_types_are_refused() {
        let d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let schema1 =
            br#"{"schemaVersion": 1, "name": "a/b", "tag": "1", "fsLayers": [], "signatures": []}"#;
        let err = image_parts(manifest::parse(schema1).unwrap(), "a/b:1").unwrap_err();
        assert!(
            matches!(err, RegistryError::Schema1Unsupported { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("a/b:1") && msg.contains("schema 1"), "{msg}");

        let doc = |config_mt: &str, layer_mt: &str| {
            format!(
                r#"{{"schemaVersion": 2, "mediaType": "{OCI_MANIFEST}",
                    "config": {{"mediaType": "{config_mt}", "digest": "{d1}", "size": 2}},
                    "layers": [{{"mediaType": "{layer_mt}", "digest": "{d1}", "size": 3}}]}}"#
            )
        };
        for layer_mt in LAYER_MEDIA_TYPES {
            for config_mt in [OCI_CONFIG, DOCKER_CONFIG] {
                let parsed = manifest::parse(doc(config_mt, layer_mt).as_bytes()).unwrap();
                assert!(image_parts(parsed, "x").is_ok(), "{config_mt} {layer_mt}");
            }
        }
        let helm = "application/vnd.cncf.helm.config.v1+json";
        let parsed = manifest::parse(doc(helm, LAYER_MEDIA_TYPES[0]).as_bytes()).unwrap();
        let msg = image_parts(parsed, "chart:1").unwrap_err().to_string();
        assert!(
            msg.contains("config") && msg.contains(helm) && msg.contains("chart:1"),
            "{msg}"
        );
        let wasm = "application/vnd.wasm.content.layer.v1+wasm";
        let parsed = manifest::parse(doc(OCI_CONFIG, wasm).as_bytes()).unwrap();
        let msg = image_parts(parsed, "w:1").unwrap_err().to_string();
        assert!(
            msg.contains(&format!("layer {d1}")) && msg.contains(wasm),
            "{msg}"
        );
    }
}
