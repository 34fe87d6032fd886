//! The firewall's error type: what failed, with `nft`'s own words where it ran, and a
//! [`ErrorKind`] from which front ends pick exit codes and HTTP statuses.

use std::path::PathBuf;

use pelagos_model::ErrorKind;

/// Errors of the firewall.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `nft` program is not installed (or not where it was looked for).
    #[error("cannot run {program}: not found; install nftables (the `nft` command) to use bridge networks")]
    NftMissing {
        /// The program looked for.
        program: PathBuf,
    },
    /// `nft` could not be started or talked to.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `nft` ran and failed.
    #[error("nft failed while {action}: {stderr}")]
    Nft {
        /// What was being done (`adding the ports of container ID`).
        action: String,
        /// What `nft` printed on its standard error.
        stderr: String,
    },
    /// The kernel refused an nf_tables netlink request, or the socket failed.
    #[error("nf_tables netlink failed while {action}: {source}")]
    Netlink {
        /// What was being done.
        action: String,
        /// The errno.
        source: std::io::Error,
    },
    /// `nft` printed JSON of a shape this crate does not understand.
    #[error("cannot read nft's listing of table inet pelagos: {0}")]
    Listing(String),
    /// A request with a value that cannot be turned into rules.
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// Which value (`bridge name`, `port rule`).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A sysctl could not be read or written (`route_localnet` of a bridge that does not
    /// exist, `ip_forward`).
    #[error("{path}: {source}")]
    Sysctl {
        /// The file under /proc/sys.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } => ErrorKind::InvalidArgument,
            Error::NftMissing { .. } => ErrorKind::Unenforceable,
            Error::Sysctl { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Spawn { .. }
            | Error::Nft { .. }
            | Error::Netlink { .. }
            | Error::Listing(_)
            | Error::Sysctl { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause() {
        let missing = Error::NftMissing {
            program: "nft".into(),
        };
        assert_eq!(missing.kind(), ErrorKind::Unenforceable);
        assert!(missing.to_string().contains("install nftables"));
        let gone = Error::Sysctl {
            path: "/proc/sys/net/ipv4/conf/br0/route_localnet".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(gone.kind(), ErrorKind::NotFound);
        assert_eq!(
            Error::invalid("bridge name", "empty").kind(),
            ErrorKind::InvalidArgument
        );
        let failed = Error::Nft {
            action: "adding rules".into(),
            stderr: "Error: No such file or directory".into(),
        };
        assert!(failed.to_string().contains("No such file"));
        assert_eq!(failed.kind(), ErrorKind::Internal);
    }
}
