//! Distribution API v2 client for pelagos: resolves references to platform manifests through
//! mirrors, fetches and streams blobs with resumption, checks logins and pushes.
//!
//! * [`RegistryConfig`]: the `[registries]` table of `/etc/pelagos/config.toml` — plain-HTTP
//!   registries (loopback always), pull mirrors, per-registry CA certificates (certs.d layout).
//! * [`AuthFile`]: Docker's `~/.docker/config.json`, shared with the docker CLI.
//! * [`Client`]: `resolve` (index → platform manifest, schema 1 refused, digests verified),
//!   `fetch_blob` (small verified blobs), `blob_reader` (blocking, resuming `Read` for layers),
//!   `login`, `push_blob`, `push_manifest`.
//!
//! The wire protocol (token exchange from `WWW-Authenticate`, manifests, blobs, chunked
//! uploads) is oci-client's; this crate adds what it lacks: platform matching with variants,
//! mirrors, per-host TLS settings, Docker's credential file, resumption, and a `/v2/` login
//! check. TLS uses rustls with the ring provider, installed as the process default on first
//! use of [`Client::new`]. The system's CA roots are read once per process and shared, when
//! the first HTTPS endpoint is built; plain-HTTP endpoints get none (see
//! [`system_roots_loaded`]).

mod auth;
mod client;
mod config;
mod distribution;
mod error;
mod manifest;
mod platform;
mod reader;
mod retry;
mod search;
mod tls;

pub use auth::{AuthFile, Credentials};
pub use client::{Client, ResolvedImage};
pub use config::RegistryConfig;
pub use distribution::DistributionInfo;
pub use error::RegistryError;
pub use manifest::{
    BlobDescriptor, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX,
    OCI_MANIFEST,
};
pub use platform::{Platform, PlatformError};
pub use reader::BlobReader;
pub use retry::RetryPolicy;
pub use tls::system_roots_loaded;

/// The registry a login names (`docker login SERVER`, `POST /auth`'s `serveraddress`), as
/// `Reference::registry` spells it: scheme and path dropped, Docker Hub's aliases (and
/// nothing) as `docker.io`.
pub fn login_server(server: &str) -> String {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "" => "docker.io".into(),
        h => h.to_string(),
    }
}
