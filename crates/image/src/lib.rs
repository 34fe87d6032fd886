//! pelagos' image subsystem: naming images, storing their content so that
//! nothing unverified is ever visible, and keeping unpacked images on disk.
//!
//! What this crate does:
//! * [`reference`](mod@reference): parses and normalises image references exactly as Docker
//!   does (`busybox` → `docker.io/library/busybox:latest`), with precise
//!   error messages, and knows the API host of each registry.
//! * [`digest`]: validated `sha256`/`sha512` content digests and a streaming
//!   [`Verifier`] that checks content against a digest and size.
//! * [`store`]: a content-addressed blob store (`blobs/<alg>/<hex>`) whose
//!   writes are verified, fsynced and atomically renamed into place.
//! * [`ImageStore`]: the image store in the spirit of containerd's content
//!   store and Docker's layer store, under one root:
//!
//!   ```text
//!   blobs/sha256/<hex>           manifests, configs, layer blobs (exact bytes)
//!   layers/sha256/<chain hex>/   committed layers: diff/ (overlayfs form), layer.json
//!   layers/l/<short>             -> ../sha256/<chain hex>/diff (12-char names for
//!                                   long lowerdir= option strings)
//!   images/<id hex>.json         image records
//!   repositories.json            tags and repo digests -> image id
//!   locks/                       per-blob and per-layer claims of writers
//!   tmp/                         everything in progress
//!   lock, gc.lock                metadata and garbage-collection locks
//!   ```
//!
//!   [`LayerIngest::ingest`] stores, verifies (blob digest and size,
//!   diff_id) and unpacks a layer in one streaming pass; nothing appears
//!   under `blobs/`, `layers/` or `images/` before it is complete, verified
//!   and fsynced. [`ImageStore::claim_layer`] and [`BlobStore::claim`] make
//!   concurrent pulls of one layer or image (threads or processes) fetch and
//!   unpack each blob once: the first claims it, the others wait and then find
//!   it stored. Lookup ([`ImageStore::get`]), tagging, `rmi`
//!   ([`ImageStore::remove`]) and `image prune` ([`ImageStore::prune`])
//!   follow Docker's rules; [`ImageStore::lowerdirs`] gives the overlayfs
//!   lower directories of an image.
//! * [`archive`]: `docker save` (a tar that is both a docker-archive and an
//!   OCI image layout), `docker load` (either format, plain or compressed)
//!   and `docker import` (a root filesystem tarball plus `--change`s).
//!
//! What it deliberately does not do:
//! * no network: registries are `pelagos-registry`'s business; pulls claim
//!   each layer ([`ImageStore::claim_layer`]) and hand the stream of a
//!   missing one to [`LayerIngest::ingest`], claim the config
//!   ([`BlobStore::claim`]), and hold a [`Lease`] until
//!   [`ImageStore::put_image`];
//! * no mounting: [`ImageStore::lowerdirs`] names the directories, the
//!   engine mounts them;
//! * no image building and no user-namespace remapping of layer ownership.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod archive;
mod changes;
pub mod digest;
mod error;
mod fsutil;
mod images;
mod layers;
mod locks;
mod oci;
pub mod reference;
pub mod store;

pub use digest::{Algorithm, Digest, DigestError, Verifier, VerifyError};
pub use images::{
    chain_ids, ImageRecord, ImageStore, LayerBlob, LayerInfo, Lease, NewImage, PruneReport, Removal,
};
pub use layers::{LayerClaim, LayerIngest};
pub use oci::{host_platform, media};
pub use reference::{Reference, ReferenceError, ReferenceErrorKind};
pub use store::{BlobClaim, BlobLock, BlobStore, BlobWriter, StoreError, VerifiedBlob};

#[cfg(test)]
mod tests;
