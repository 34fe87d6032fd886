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
    /// The network store: records, leases.
    #[error(transparent)]
    Network(#[from] pelagos_network::Error),
    /// Links and addresses (rtnetlink).
    #[error(transparent)]
    Netlink(#[from] pelagos_netlink::Error),
    /// pelagos's nftables table.
    #[error(transparent)]
    Firewall(#[from] pelagos_firewall::Error),
    /// A user network's resolver: its names file, its pid file.
    #[error(transparent)]
    Dns(#[from] pelagos_dns::Error),
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
            Error::Network(e) => e.kind(),
            Error::Netlink(e) => e.kind(),
            Error::Firewall(e) => e.kind(),
            Error::Dns(e) if e.is_invalid_input() => ErrorKind::InvalidArgument,
            Error::Dns(_) => ErrorKind::Internal,
            Error::Io { .. } | Error::Internal(_) => ErrorKind::Internal,
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
        }
    }

    /// For the wire.
    pub fn to_wire(&self) -> WireError {
        match self {
            Error::Model(pelagos_model::Error::Remote(w)) => w.clone(),
            // The errno and the stage travel with the kind (the init's report).
            Error::Runtime(e) => WireError {
                kind: e.kind(),
                message: e.to_string(),
                errno: e.errno(),
                stage: e.stage().map(str::to_string),
            },
            other => WireError::new(other.kind(), other.to_string()),
        }
    }
}

/// The kind of a runtime-core error: from its variant (the init and the launch stub report
/// theirs with a kind, an errno and a stage), never from its text.
pub fn runtime_kind(e: &pelagos_container::Error) -> ErrorKind {
    e.kind()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_failures_keep_their_kind() {
        let process = |kind| {
            Error::Runtime(pelagos_container::Error::Process {
                kind,
                errno: Some(libc::ENOENT),
                stage: "exec".into(),
                message: "exec: \"nope\": executable file not found in $PATH".into(),
            })
        };
        assert_eq!(
            process(ErrorKind::ExecutableNotFound).kind(),
            ErrorKind::ExecutableNotFound
        );
        assert_eq!(
            process(ErrorKind::NotExecutable).to_wire().kind,
            ErrorKind::NotExecutable
        );
        // A text that looks like one is not taken for one.
        let child = Error::Runtime(pelagos_container::Error::Child(
            "exec: \"nope\": executable file not found in $PATH".into(),
        ));
        assert_eq!(child.kind(), ErrorKind::Internal);
    }
}
