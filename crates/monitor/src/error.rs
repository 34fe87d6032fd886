//! The monitor's error type: every failure has a kind ([`ErrorKind`]) that crosses the
//! control socket as a [`WireError`], so clients choose exit codes and statuses by kind.

use pelagos_model::{ErrorKind, WireError};

/// Errors of the monitor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Records, the launch plan, the protocol.
    #[error(transparent)]
    Model(#[from] pelagos_model::Error),
    /// The runtime core (create, start, exec, kill, pause).
    #[error(transparent)]
    Runtime(#[from] pelagos_container::Error),
    /// A system call or file operation, with what was being done.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A request or a configuration that cannot be honoured.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the container's state.
    #[error("{0}")]
    Conflict(String),
    /// Anything else that failed in the system.
    #[error("{0}")]
    Internal(String),
}

/// Result with the monitor's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// A failed system call with context.
    pub fn sys(what: impl Into<String>, errno: nix::errno::Errno) -> Error {
        Error::io(what, errno.into())
    }

    /// The kind, from the variant.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Model(e) => e.kind(),
            Error::Runtime(e) => runtime_kind(e),
            Error::Io { .. } | Error::Internal(_) => ErrorKind::Internal,
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
        }
    }

    /// For the wire.
    pub fn to_wire(&self) -> WireError {
        match self {
            Error::Model(pelagos_model::Error::Remote(w)) => w.clone(),
            other => WireError::new(other.kind(), other.to_string()),
        }
    }
}

/// The kind of a runtime-core error.
///
/// Temporary bridge: until the container init reports its failures with a kind (errno and
/// stage), a failed exec of the container's program reaches us as the init's text, with
/// runc's words. Only those two exact shapes are recognised, so that `run`/`exec` of a missing
/// program still exits 127 (126 when not executable). Goes away when the core sends kinds.
pub fn runtime_kind(e: &pelagos_container::Error) -> ErrorKind {
    let kind = e.kind();
    if kind != ErrorKind::Internal {
        return kind;
    }
    let pelagos_container::Error::Child(text) = e else {
        return kind;
    };
    // The init's own error, sent as its display text ("invalid configuration: exec: …").
    let text = text.strip_prefix("invalid configuration: ").unwrap_or(text);
    match text {
        text if text.starts_with("exec: ") => {
            if text.ends_with("executable file not found in $PATH")
                || text.ends_with(": no such file or directory")
            {
                ErrorKind::ExecutableNotFound
            } else if text.ends_with(": permission denied") {
                ErrorKind::NotExecutable
            } else {
                kind
            }
        }
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_keep_their_kind() {
        let child = |t: &str| Error::Runtime(pelagos_container::Error::Child(t.into()));
        let missing = child("exec: \"nope\": executable file not found in $PATH");
        assert_eq!(missing.kind(), ErrorKind::ExecutableNotFound);
        assert_eq!(
            child("exec: \"/x\": no such file or directory").kind(),
            ErrorKind::ExecutableNotFound
        );
        assert_eq!(
            child("exec: \"/etc\": permission denied").kind(),
            ErrorKind::NotExecutable
        );
        assert_eq!(
            child("invalid configuration: exec: \"x\": executable file not found in $PATH").kind(),
            ErrorKind::ExecutableNotFound
        );
        assert_eq!(child("mount /proc: busy").kind(), ErrorKind::Internal);
        assert_eq!(missing.to_wire().kind, ErrorKind::ExecutableNotFound);
        let remote = Error::Model(pelagos_model::Error::Remote(WireError::new(
            ErrorKind::NotFound,
            "gone",
        )));
        assert_eq!(remote.to_wire().kind, ErrorKind::NotFound);
    }
}
