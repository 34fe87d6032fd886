//! The crate's error type: messages in Docker's daemon words where Docker has them, and a
//! [`pelagos_model::ErrorKind`] per variant from which front ends pick exit codes and statuses.

use std::net::IpAddr;

use pelagos_model::ErrorKind;

/// Errors of networks, IPAM and host ports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that is wrong in itself (name, subnet, gateway, option, address).
    #[error("{0}")]
    Invalid(String),
    /// No network by that name, id or id prefix.
    #[error("network {0} not found")]
    NotFound(String),
    /// An id prefix matching several networks.
    #[error("network {term} is ambiguous ({count} matches found based on ID prefix)")]
    Ambiguous {
        /// What was looked up.
        term: String,
        /// How many networks it matches.
        count: usize,
    },
    /// A driver (or IPAM driver) pelagos does not have.
    #[error("plugin {0:?} not found")]
    NoSuchDriver(String),
    /// The name belongs to another network.
    #[error("network with name {0} already exists")]
    NameInUse(String),
    /// A subnet overlapping another network's.
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    PoolOverlap,
    /// `bridge`, `host` and `none` cannot be created, removed or pruned.
    #[error("{0}")]
    Predefined(String),
    /// A network some container still uses.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    ActiveEndpoints {
        /// The network's name.
        name: String,
        /// The network's id.
        id: String,
    },
    /// A container already has an endpoint on the network.
    #[error("endpoint with name {name} already exists in network {network}")]
    EndpointExists {
        /// The container's name.
        name: String,
        /// The network's name.
        network: String,
    },
    /// A requested address someone else holds (or the gateway).
    #[error("Address already in use")]
    AddressInUse(IpAddr),
    /// Every address of the pool is leased.
    #[error(
        "no available {family} addresses on this network's address pools: {network} ({subnet})"
    )]
    Exhausted {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The network's name.
        network: String,
        /// The exhausted subnet.
        subnet: String,
    },
    /// No default address pool is left for a new network.
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    NoFreePool,
    /// A host port someone else publishes (Docker's `Bind for 0.0.0.0:8080 failed`).
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortAllocated {
        /// The host address as Docker prints it (`0.0.0.0`, `::`).
        ip: IpAddr,
        /// The host port.
        port: u16,
    },
    /// Every port of the ephemeral range is published.
    #[error("all ports are allocated")]
    PortsExhausted,
    /// A file of the store that does not parse.
    #[error("corrupt network file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A filesystem or system call failure, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// Undoing a removed network's bridge or rules failed (the record is kept).
    #[error("{0}")]
    Teardown(String),
    /// A prune filter that does not parse.
    #[error(transparent)]
    Filter(#[from] pelagos_model::filters::FilterError),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// The kind front ends choose exit codes and HTTP statuses from.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Predefined(_) | Error::Filter(_) => {
                ErrorKind::InvalidArgument
            }
            Error::NotFound(_) | Error::NoSuchDriver(_) => ErrorKind::NotFound,
            Error::Ambiguous { .. }
            | Error::NameInUse(_)
            | Error::PoolOverlap
            | Error::ActiveEndpoints { .. }
            | Error::EndpointExists { .. }
            | Error::AddressInUse(_)
            | Error::Exhausted { .. }
            | Error::NoFreePool
            | Error::PortAllocated { .. }
            | Error::PortsExhausted => ErrorKind::Conflict,
            Error::Corrupt { .. } | Error::Io { .. } | Error::Teardown(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_dockers() {
        let e = Error::PortAllocated {
            ip: "0.0.0.0".parse().unwrap(),
            port: 8080,
        };
        assert_eq!(
            e.to_string(),
            "Bind for 0.0.0.0:8080 failed: port is already allocated"
        );
        let e = Error::ActiveEndpoints {
            name: "app".into(),
            id: "abc".into(),
        };
        assert_eq!(
            e.to_string(),
            "error while removing network: network app id abc has active endpoints"
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            Error::NoSuchDriver("foo".into()).to_string(),
            "plugin \"foo\" not found"
        );
        assert_eq!(Error::NotFound("x".into()).kind(), ErrorKind::NotFound);
    }
}
