//! The runtime core's error type: one enum whose messages are the words runc's callers match on.

use std::path::PathBuf;

/// Errors of the container library. The `Display` texts are an API: containerd, podman and the
/// OCI suites match on words such as `does not exist` and `already exists`, so keep them stable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with given ID already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container not running: {0}")]
    NotRunning(String),
    #[error("container paused: {0}")]
    Paused(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("cannot {action} container {id} in status {status}")]
    BadStatus {
        action: &'static str,
        id: String,
        status: String,
    },
    #[error("invalid config.json {path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Spec(String),
    #[error("{0} is not supported by pelagos-runtime: {1}")]
    Unsupported(&'static str, String),
    #[error("cgroup: {0}")]
    Cgroup(#[from] pelagos_cgroups::CgroupError),
    /// A limit this host cannot enforce: say how to opt out.
    #[error(
        "cgroup: {0}; to run without this limit, set the annotation {annotation}=true",
        annotation = crate::annotations::SKIP_UNAVAILABLE_ANNOTATION
    )]
    CgroupUnenforceable(pelagos_cgroups::CgroupError),
    #[error("{0}")]
    Seccomp(#[from] pelagos_seccomp::SeccompError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// An error reported by the container's init process over the sync socket.
    #[error("{0}")]
    Child(String),
    #[error("hook {path} failed: {reason}")]
    Hook { path: PathBuf, reason: String },
    /// A poststart hook failed: runtime-spec 1.2 makes that an error, and the container is
    /// stopped (runc does the same).
    #[error("poststart {source}; container {id} was killed")]
    Poststart {
        id: String,
        #[source]
        source: Box<Error>,
    },
    /// `state.json` names something its container's frozen config does not: refuse to act on it.
    #[error("state of container {id} is not trusted: {reason}")]
    UntrustedState { id: String, reason: String },
    #[error("invalid signal {0:?}")]
    BadSignal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attach a description to a `nix` error.
pub(crate) trait SysContext<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            what: what(),
            source,
        })
    }
}

/// Attach a description to an I/O error.
pub(crate) trait IoContext<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

impl Error {
    /// The kind of this error, by variant.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            Error::NotFound(_) => K::NotFound,
            Error::AlreadyExists(_)
            | Error::NotRunning(_)
            | Error::Paused(_)
            | Error::NotStopped { .. }
            | Error::BadStatus { .. } => K::Conflict,
            Error::InvalidId { .. }
            | Error::InvalidConfig { .. }
            | Error::Spec(_)
            | Error::Unsupported(..)
            | Error::BadSignal(_) => K::InvalidArgument,
            Error::CgroupUnenforceable(_) => K::Unenforceable,
            _ => K::Internal,
        }
    }
}
