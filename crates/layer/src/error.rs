//! Error types for layer unpacking.
//!
//! Every error about an archive entry names the entry (as it appears in the archive,
//! lossily decoded as UTF-8) and the problem, e.g.
//! `layer entry "../../etc/passwd": path escapes the layer directory`.

use std::io;
use std::path::PathBuf;

/// An error while unpacking a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The destination directory could not be opened.
    #[error("layer destination {path:?}: {source}")]
    Destination {
        /// The destination given to `unpack`.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The compressed stream or the tar framing is malformed or could not be read.
    #[error("reading layer archive: {source}")]
    Archive {
        /// The underlying error.
        source: io::Error,
    },
    /// An entry of the archive was refused.
    #[error("layer entry {entry:?}: {problem}")]
    Entry {
        /// The entry's path as stored in the archive.
        entry: String,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A system call failed while unpacking an entry.
    #[error("layer entry {entry:?}: {action}: {source}")]
    EntryIo {
        /// The entry's path as stored in the archive.
        entry: String,
        /// What was being done, e.g. "creating file".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
}

/// Why an archive entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The entry's path climbs above the layer root with `..`.
    #[error("path escapes the layer directory")]
    PathEscapes,
    /// A parent of the entry is a symlink (which is never followed).
    #[error("parent path {0:?} is a symlink, which is never followed")]
    ParentIsSymlink(String),
    /// A parent of the entry exists and is not a directory.
    #[error("parent path {0:?} is not a directory")]
    ParentNotDirectory(String),
    /// The entry names the layer root but is not a directory.
    #[error("entry names the layer root but is not a directory")]
    RootNotDirectory,
    /// A hardlink entry has no target.
    #[error("hardlink has no target")]
    HardlinkNoTarget,
    /// A hardlink's target climbs above the layer root (or is the root itself).
    #[error("hardlink target {0:?} escapes the layer directory")]
    HardlinkEscapes(String),
    /// A hardlink's target goes through a symlink or a non-directory.
    #[error("hardlink target {0:?} goes through a symlink or non-directory")]
    HardlinkThroughSymlink(String),
    /// A hardlink's target does not exist (earlier) in the layer.
    #[error("hardlink target {0:?} does not exist in the layer")]
    HardlinkTargetMissing(String),
    /// A symlink entry has no target.
    #[error("symlink has no target")]
    SymlinkNoTarget,
    /// A whiteout names nothing usable (`.wh.`, `.wh..`, ...).
    #[error("whiteout names an invalid file")]
    InvalidWhiteout,
    /// A numeric field is out of range or a PAX record is malformed.
    #[error("invalid header field {0}")]
    InvalidField(&'static str),
    /// The archive ends before the entry's data does.
    #[error("archive ends inside the file's contents ({got} of {size} bytes)")]
    Truncated {
        /// Bytes read.
        got: u64,
        /// Size announced by the header.
        size: u64,
    },
    /// The tar entry type is not supported.
    #[error("unsupported entry type {0:?}")]
    UnsupportedType(String),
}
