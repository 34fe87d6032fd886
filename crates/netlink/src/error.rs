//! The crate's error type: kernel answers mapped from errno to what they mean for the caller,
//! each naming the operation that failed, with a [`pelagos_model::ErrorKind`].

use std::io;

use nix::errno::Errno;
use pelagos_model::ErrorKind;

/// Errors of netlink operations and per-interface sysctls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The link, address or route to create exists already (`EEXIST`).
    #[error("{what}: already exists")]
    AlreadyExists {
        /// The operation, with the names it was given.
        what: String,
    },
    /// A link or namespace the operation names does not exist (`ENODEV`, `ENOENT`).
    #[error("{what}: not found{}", detail_suffix(.detail))]
    NotFound {
        /// The operation, with the names it was given.
        what: String,
        /// The kernel's extended acknowledgement text, when it sent one.
        detail: Option<String>,
    },
    /// The caller lacks `CAP_NET_ADMIN` over the network namespace (`EPERM`, `EACCES`).
    #[error("{what}: permission denied: CAP_NET_ADMIN over the network namespace is needed")]
    PermissionDenied {
        /// The operation, with the names it was given.
        what: String,
    },
    /// The kernel rejected the request's values (`EINVAL`, `ERANGE`, `ENETUNREACH`, ...).
    #[error("{what}: {source}{}", detail_suffix(.detail))]
    Rejected {
        /// The operation, with the names it was given.
        what: String,
        /// The kernel's errno.
        source: io::Error,
        /// The kernel's extended acknowledgement text, when it sent one.
        detail: Option<String>,
    },
    /// A link exists under the name but is not of the kind asked for (e.g. not a bridge).
    #[error("{what}: {name} exists and is not a {expected}")]
    WrongKind {
        /// The operation.
        what: String,
        /// The link's name.
        name: String,
        /// The kind that was expected (`bridge`, ...).
        expected: &'static str,
    },
    /// An interface name the kernel would refuse, caught before asking it.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A sysctl key that is empty or would leave the interface's directory.
    #[error("invalid sysctl key {key:?}: it must name one file of the interface's directory")]
    InvalidSysctlKey {
        /// The key as given.
        key: String,
    },
    /// Any other kernel answer to a netlink request.
    #[error("{what}: {source}{}", detail_suffix(.detail))]
    Kernel {
        /// The operation, with the names it was given.
        what: String,
        /// The kernel's errno.
        source: io::Error,
        /// The kernel's extended acknowledgement text, when it sent one.
        detail: Option<String>,
    },
    /// A system call around the netlink exchange failed: socket, setns, a sysctl file.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// The kernel's reply could not be decoded, or did not carry what was asked for.
    #[error("{what}: unexpected netlink reply: {detail}")]
    Protocol {
        /// The operation.
        what: String,
        /// What was wrong with the reply.
        detail: String,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(text) => format!(" ({text})"),
        None => String::new(),
    }
}

impl Error {
    /// The error the kernel's `errno` (positive) means for the operation `what`.
    pub(crate) fn from_errno(errno: i32, what: &str, detail: Option<String>) -> Error {
        let what = what.to_owned();
        let source = io::Error::from_raw_os_error(errno);
        match Errno::from_raw(errno) {
            Errno::EEXIST => Error::AlreadyExists { what },
            Errno::ENODEV | Errno::ENOENT => Error::NotFound { what, detail },
            Errno::EPERM | Errno::EACCES => Error::PermissionDenied { what },
            Errno::EINVAL
            | Errno::ERANGE
            | Errno::ENETUNREACH
            | Errno::EADDRNOTAVAIL
            | Errno::EAFNOSUPPORT
            | Errno::EOPNOTSUPP
            | Errno::EBUSY => Error::Rejected {
                what,
                source,
                detail,
            },
            _ => Error::Kernel {
                what,
                source,
                detail,
            },
        }
    }

    /// An I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The kind callers pick exit codes and HTTP statuses from.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::AlreadyExists { .. } | Error::WrongKind { .. } => ErrorKind::Conflict,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Rejected { .. } | Error::InvalidName { .. } | Error::InvalidSysctlKey { .. } => {
                ErrorKind::InvalidArgument
            }
            Error::PermissionDenied { .. }
            | Error::Kernel { .. }
            | Error::Io { .. }
            | Error::Protocol { .. } => ErrorKind::Internal,
        }
    }

    /// The errno behind the error, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::AlreadyExists { .. } => Some(Errno::EEXIST as i32),
            Error::PermissionDenied { .. } => Some(Errno::EPERM as i32),
            Error::NotFound { .. } => Some(Errno::ENODEV as i32),
            Error::Rejected { source, .. }
            | Error::Kernel { source, .. }
            | Error::Io { source, .. } => source.raw_os_error(),
            Error::WrongKind { .. }
            | Error::InvalidName { .. }
            | Error::InvalidSysctlKey { .. }
            | Error::Protocol { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_typed_errors_and_kinds() {
        let exists = Error::from_errno(Errno::EEXIST as i32, "create bridge br0", None);
        assert!(matches!(exists, Error::AlreadyExists { .. }));
        assert_eq!(exists.kind(), ErrorKind::Conflict);
        assert_eq!(exists.to_string(), "create bridge br0: already exists");

        for errno in [Errno::ENODEV as i32, Errno::ENOENT as i32] {
            let missing = Error::from_errno(errno, "find link x", None);
            assert!(matches!(missing, Error::NotFound { .. }), "{errno}");
            assert_eq!(missing.kind(), ErrorKind::NotFound);
        }
        for errno in [Errno::EPERM as i32, Errno::EACCES as i32] {
            let denied = Error::from_errno(errno, "create veth", None);
            assert!(matches!(denied, Error::PermissionDenied { .. }));
        }
        let rejected = Error::from_errno(Errno::EINVAL as i32, "set mtu", Some("too big".into()));
        assert_eq!(rejected.kind(), ErrorKind::InvalidArgument);
        assert!(rejected.to_string().ends_with("(too big)"), "{rejected}");
        assert_eq!(rejected.errno(), Some(Errno::EINVAL as i32));

        let other = Error::from_errno(Errno::ENOMEM as i32, "create veth", None);
        assert!(matches!(other, Error::Kernel { .. }));
        assert_eq!(other.kind(), ErrorKind::Internal);
    }
}
