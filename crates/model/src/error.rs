//! The model's error type; every variant has a kind ([`crate::kind::ErrorKind`]).

use std::path::PathBuf;

use crate::kind::{ErrorKind, WireError};

/// Errors of the model: records, names, configuration, the monitor protocol.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from a user or a request.
    #[error("{0}")]
    Invalid(String),
    /// A command-line flag's value that does not parse, in Docker's words
    /// (`invalid argument "64x" for "-m, --memory" flag: ...`): the CLI adds the usage line.
    #[error("invalid argument {value:?} for {flag:?} flag: {why}")]
    FlagValue {
        flag: String,
        value: String,
        why: String,
    },
    /// No such container.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// A container name already taken.
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    /// An id prefix that names several containers.
    #[error("multiple containers match the id prefix {0:?}: give more of the id")]
    Ambiguous(String),
    /// The request conflicts with the container's state.
    #[error("{0}")]
    Conflict(String),
    /// A filesystem or system call failure, with what was being done.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The record of a container is unreadable.
    #[error("container record {path}: {reason}")]
    Record { path: PathBuf, reason: String },
    /// An error from another process (a monitor), with its kind.
    #[error(transparent)]
    Remote(#[from] WireError),
    /// From the runtime core.
    #[error(transparent)]
    Runtime(#[from] pelagos_container::Error),
    /// A `--filter` the daemon refuses.
    #[error(transparent)]
    Filter(#[from] crate::filters::FilterError),
}

/// Docker's words for the state conflicts scripts match on (moby's daemon messages), with
/// the container's full id as Docker gives it.
pub mod conflict {
    /// Pause, exec, attach… of a container that is not running.
    pub fn not_running(id: &str) -> String {
        format!("Container {id} is not running")
    }

    /// Unpause of a container that is not paused.
    pub fn not_paused(id: &str) -> String {
        format!("Container {id} is not paused")
    }

    /// Pause of a paused container.
    pub fn already_paused(id: &str) -> String {
        format!("Container {id} is already paused")
    }
}

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The kind, from the variant.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_)
            | Error::FlagValue { .. }
            | Error::Ambiguous(_)
            | Error::Filter(_) => ErrorKind::InvalidArgument,
            Error::NoSuchContainer(_) => ErrorKind::NotFound,
            Error::NameInUse { .. } | Error::Conflict(_) => ErrorKind::Conflict,
            Error::Io { .. } | Error::Record { .. } => ErrorKind::Internal,
            Error::Remote(w) => w.kind,
            Error::Runtime(e) => runtime_kind(e),
        }
    }

    /// For the wire.
    pub fn to_wire(&self) -> WireError {
        match self {
            Error::Remote(w) => w.clone(),
            other => WireError::new(other.kind(), other.to_string()),
        }
    }
}

/// The kind of a runtime-core error.
pub fn runtime_kind(e: &pelagos_container::Error) -> ErrorKind {
    e.kind()
}

/// Result with the model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
