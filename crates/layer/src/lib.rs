//! `pelagos-layer`: safe unpacking of OCI/Docker image layers.
//!
//! This crate turns one layer blob (a tar stream, optionally gzip- or zstd-compressed)
//! into a directory suitable as an overlayfs lower layer:
//!
//! * it decompresses and unpacks **streaming**, never holding the whole layer in memory;
//! * it keeps ownership, permission bits (including setuid/setgid/sticky), modification
//!   times, extended attributes (`SCHILY.xattr.*` PAX records, `security.capability`
//!   included), device nodes, FIFOs, symlinks and hardlinks;
//! * it converts OCI whiteouts into overlayfs form: `.wh.<name>` becomes a 0:0 character
//!   device `<name>`, `.wh..wh..opq` sets `trusted.overlay.opaque=y` (or `user.overlay.opaque`)
//!   on its directory; with [`UnpackOptions::apply_whiteouts_in_place`] it deletes instead,
//!   for flattening layers into one tree;
//! * it guarantees that nothing outside the destination directory is created, modified or
//!   followed: paths are cleaned lexically (`..` that climbs above the root is an error,
//!   a leading `/` is stripped), every parent directory is opened component by component
//!   from a directory fd with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS)`, existing entries are unlinked (never written through) before
//!   being replaced, and hardlink targets are resolved the same way.
//!
//! It does **not**: fetch or verify blobs (the caller hashes the stream it passes in; the
//! whole stream, including any trailing padding, is consumed so that a wrapping digest
//! reader sees every byte), manage the layer store, mount overlayfs, or remap user IDs.
//! On error the destination may hold a partial layer: callers unpack into a temporary
//! directory and rename it into place on success.
#![forbid(unsafe_code)]

mod compression;
mod error;
mod unpack;

pub use compression::Compression;
pub use error::{LayerError, Problem};
pub use unpack::{unpack, unpack_detect, DeviceNodes, OverlayXattrs, UnpackOptions, UnpackStats};
