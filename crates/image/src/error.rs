//! [`StoreError`], the one error type of the blob store, the image store and
//! the archive formats; every message names the object (digest, path, image) at fault.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, VerifyError};
use crate::reference::ReferenceError;

/// A blob store, image store or archive operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`create`, `rename`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Reading the content to store failed.
    #[error("reading content for {digest}: {source}")]
    Read {
        /// The blob being written.
        digest: Digest,
        /// The underlying error.
        source: io::Error,
    },
    /// The content did not match its digest or size; nothing was stored.
    #[error("content rejected: {0}")]
    Verify(#[from] VerifyError),
    /// No blob with this digest.
    #[error("blob {0} is not in the store")]
    NotFound(Digest),
    /// A stored blob has the wrong size or hash.
    #[error("blob {digest} at {path} is corrupt: {reason}")]
    Corrupt {
        /// The blob.
        digest: Digest,
        /// Its file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No image matches a name, reference or id.
    #[error("no such image: {0}")]
    ImageNotFound(String),
    /// An id prefix matches more than one image.
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousId {
        /// The prefix asked for.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// Removing would pull an image out from under a container.
    #[error("conflict: unable to remove {what:?}: image {id} is in use by a container (force untags it, the image is kept while in use)")]
    InUse {
        /// The name or id given.
        what: String,
        /// The image.
        id: Digest,
    },
    /// `remove` by id of an image with several tags, without force.
    #[error("conflict: unable to delete {id} (must be forced): image is tagged {}", tags.join(", "))]
    MultipleTags {
        /// The image.
        id: Digest,
        /// Its tags.
        tags: Vec<String>,
    },
    /// A reference cannot be used as a tag.
    #[error("cannot tag an image as {reference:?}: {reason}")]
    InvalidTag {
        /// The reference given.
        reference: String,
        /// Why not.
        reason: &'static str,
    },
    /// A name is not a valid image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A blob was given a media type that is no layer's.
    #[error("blob {digest}: media type {media_type:?} is not a layer media type")]
    UnsupportedMediaType {
        /// The blob.
        digest: Digest,
        /// Its declared media type.
        media_type: String,
    },
    /// A layer blob decompressed to content that does not hash to its diff_id.
    #[error("layer blob {blob}: its uncompressed content hashes to {actual}, but the image config says its diff_id is {expected}")]
    DiffIdMismatch {
        /// The compressed blob.
        blob: Digest,
        /// The diff_id from the image config.
        expected: Digest,
        /// What the uncompressed stream hashes to.
        actual: Digest,
    },
    /// A layer blob could not be decompressed.
    #[error("decompressing layer blob {blob}: {source}")]
    Decode {
        /// The blob.
        blob: Digest,
        /// The underlying error.
        source: io::Error,
    },
    /// A layer blob could not be unpacked.
    #[error("unpacking layer blob {blob}: {source}")]
    Unpack {
        /// The blob.
        blob: Digest,
        /// The unpacker's error.
        source: pelagos_layer::LayerError,
    },
    /// An image needs a layer that is not committed.
    #[error("image {image}: layer {diff_id} (chain id {chain_id}) is not in the store")]
    LayerMissing {
        /// The image (config digest).
        image: Digest,
        /// The layer's chain id.
        chain_id: Digest,
        /// The layer's diff_id.
        diff_id: Digest,
    },
    /// A committed layer's metadata is missing or inconsistent.
    #[error("layer {chain_id} at {path} is corrupt: {reason}")]
    LayerCorrupt {
        /// The layer.
        chain_id: Digest,
        /// Its directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Manifest, config and layers of an image do not agree.
    #[error("image {image}: {reason}")]
    InvalidImage {
        /// The image (config digest, or manifest digest).
        image: String,
        /// What is inconsistent.
        reason: String,
    },
    /// A JSON document could not be parsed.
    #[error("parsing {what}: {source}")]
    Json {
        /// Which document (`config blob sha256:...`, a path).
        what: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// An image index offers no manifest for this host's platform.
    #[error("image index {index} has no manifest for {wanted} (it has: {})", available.join(", "))]
    NoMatchingPlatform {
        /// The index.
        index: Digest,
        /// The host platform, `linux/amd64`.
        wanted: String,
        /// The platforms the index offers.
        available: Vec<String>,
    },
    /// An archive is malformed or inconsistent.
    #[error("image archive: {0}")]
    Archive(String),
    /// Reading the archive (or the import input) failed.
    #[error("reading the image archive: {0}")]
    ArchiveRead(#[source] io::Error),
    /// Writing the archive failed.
    #[error("writing the image archive: {0}")]
    ArchiveWrite(#[source] io::Error),
    /// A `--change` instruction for `import` is invalid.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange {
        /// The instruction as given.
        change: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Maps an `io::Error` to [`StoreError::Io`] for `op` on `path`.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}
