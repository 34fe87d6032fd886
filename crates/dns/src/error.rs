//! The crate's error type: every variant names what failed and with which input, so the
//! control plane can report it and the binary can print it as is.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of the names file, the pid file and the resolver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written, created or locked.
    #[error("cannot {what} {path}: {source}")]
    File {
        /// What was being done ("read", "lock", …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The names file is not the JSON this crate writes.
    #[error("names file {path} is not valid: {source}; rewrite it with pelagos_dns::names::write")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// An entry the writer refuses (an empty name, no name at all).
    #[error("invalid names entry: {0}")]
    InvalidEntry(String),
    /// Another resolver holds the pid file's lock.
    #[error(
        "another pelagos-dns is running with pid file {0}: stop it first or use another pid file"
    )]
    AlreadyRunning(PathBuf),
    /// A listening socket could not be created or bound.
    #[error(
        "cannot listen on {addr}: {source}; is the address on a local interface and the port free?"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A system call of the event loop failed.
    #[error("{what}: {source}")]
    Sys {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// A file error.
    pub(crate) fn file(
        what: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::File {
            what,
            path: path.into(),
            source,
        }
    }

    /// A system call error from nix.
    pub(crate) fn sys(what: &'static str, errno: nix::errno::Errno) -> Error {
        Error::Sys {
            what,
            source: errno.into(),
        }
    }

    /// Whether the error is the caller's fault (a bad entry, a bad file) rather than the
    /// system's: the control plane maps it to `InvalidArgument`, everything else to `Internal`.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::Parse { .. } | Error::InvalidEntry(_))
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
