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
mod error;
mod manifest;
mod platform;
mod reader;
mod tls;

pub use auth::{AuthFile, Credentials, DOCKER_HUB_AUTH_KEY};
pub use client::{Client, ResolvedImage, MAX_IN_MEMORY_BLOB};
pub use config::{RegistryConfig, DEFAULT_CERTS_DIR, DEFAULT_CONFIG_PATH};
pub use error::RegistryError;
pub use manifest::{
    BlobDescriptor, DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1,
    DOCKER_SCHEMA1_SIGNED, LAYER_MEDIA_TYPES, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
pub use platform::Platform;
pub use reader::{BlobReader, RetryPolicy};
pub use tls::system_roots_loaded;
