//! The start of pelagos' image subsystem: naming images and storing their
//! content so that nothing unverified is ever visible.
//!
//! What this crate does:
//! * [`reference`]: parses and normalises image references exactly as Docker
//!   does (`busybox` → `docker.io/library/busybox:latest`), with precise
//!   error messages, and knows the API host of each registry.
//! * [`digest`]: validated `sha256`/`sha512` content digests and a streaming
//!   [`Verifier`] that checks content against a digest and size.
//! * [`store`]: a content-addressed blob store (`blobs/<alg>/<hex>`) whose
//!   writes are verified, fsynced and atomically renamed into place.
//!
//! What it deliberately does not do (yet):
//! * no network: nothing here talks to a registry, resolves tags to digests,
//!   or handles authentication; `api_host()` only says where to go;
//! * no manifest, index or image-config parsing and no platform selection;
//! * no layer unpacking, snapshotting or root-filesystem assembly;
//! * no reference counting or garbage collection of blobs (only of abandoned
//!   temporary files), and no tag → digest database.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod digest;
pub mod reference;
pub mod store;

pub use digest::{Algorithm, Digest, DigestError, Verifier, VerifyError};
pub use reference::{Reference, ReferenceError, ReferenceErrorKind};
pub use store::{BlobStore, StoreError};
