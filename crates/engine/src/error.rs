//! The engine's error type: every variant names what failed and has a kind
//! ([`pelagos_model::ErrorKind`]) from which front ends pick exit codes and HTTP statuses.

use pelagos_model::ErrorKind;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input from a user or a request.
    #[error("{0}")]
    Invalid(String),
    /// A path or object that does not exist (`cp`'s "Could not find the file …").
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the container's state.
    #[error("{0}")]
    Conflict(String),
    /// A limit this host cannot enforce.
    #[error("{0}")]
    Unenforceable(String),
    /// An image too tall for one overlayfs mount.
    #[error("image has {0} layers: more than one overlayfs mount can stack")]
    TooManyLayers(usize),
    /// A filesystem or system call failure, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// From the model: records, names, config, a monitor's answer.
    #[error(transparent)]
    Model(Box<pelagos_model::Error>),
    /// From the image store.
    #[error(transparent)]
    Store(Box<pelagos_image::StoreError>),
    /// From the registry client.
    #[error(transparent)]
    Registry(Box<pelagos_registry::RegistryError>),
    /// From the runtime core.
    #[error(transparent)]
    Runtime(Box<pelagos_container::Error>),
    /// From the network store.
    #[error(transparent)]
    Network(Box<pelagos_network::Error>),
    /// From netlink: a removed network's bridge.
    #[error(transparent)]
    Netlink(Box<pelagos_netlink::Error>),
    /// From pelagos's nftables table: a removed network's rules.
    #[error(transparent)]
    Firewall(Box<pelagos_firewall::Error>),
    /// A background task failed to run to its end.
    #[error("internal error: {0}")]
    Task(String),
    /// Another error with what was being done before it, in Docker's words
    /// (`Cannot kill container: NAME: …`); the kind is the cause's.
    #[error("{what}: {source}")]
    Context {
        /// What was being done.
        what: String,
        /// The error.
        source: Box<Error>,
    },
}

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// This error after `what` (its kind stays).
    pub fn context(self, what: impl Into<String>) -> Error {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    /// The kind, from the variant.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::TooManyLayers(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unenforceable(_) => ErrorKind::Unenforceable,
            Error::Io { .. } | Error::Task(_) => ErrorKind::Internal,
            Error::Model(e) => e.kind(),
            Error::Store(e)
                if matches!(
                    **e,
                    pelagos_image::StoreError::NotFound(_)
                        | pelagos_image::StoreError::ImageNotFound(_)
                ) =>
            {
                ErrorKind::NotFound
            }
            Error::Store(e) => store_kind(e),
            Error::Registry(e)
                if matches!(**e, pelagos_registry::RegistryError::NotFound { .. }) =>
            {
                ErrorKind::NotFound
            }
            Error::Registry(_) => ErrorKind::Internal,
            Error::Runtime(e) => e.kind(),
            Error::Network(e) => e.kind(),
            Error::Netlink(e) => e.kind(),
            Error::Firewall(e) => e.kind(),
            Error::Context { source, .. } => source.kind(),
        }
    }
}

/// The kind of an image store error: what the request got wrong, or what conflicts.
fn store_kind(e: &pelagos_image::StoreError) -> ErrorKind {
    use pelagos_image::StoreError as S;
    match e {
        S::InUse { .. } | S::MultipleTags { .. } => ErrorKind::Conflict,
        S::Reference(_)
        | S::InvalidTag { .. }
        | S::InvalidChange { .. }
        | S::AmbiguousId { .. } => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

impl Error {
    /// The `--filter` the daemon refused, if that is what this is (Docker prints those as
    /// "Error response from daemon").
    pub fn filter_error(&self) -> Option<&pelagos_model::filters::FilterError> {
        match self {
            Error::Model(e) => match &**e {
                pelagos_model::Error::Filter(f) => Some(f),
                _ => None,
            },
            Error::Network(e) => match &**e {
                pelagos_network::Error::Filter(f) => Some(f),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<pelagos_model::filters::FilterError> for Error {
    fn from(e: pelagos_model::filters::FilterError) -> Error {
        Error::Model(Box::new(e.into()))
    }
}

/// The other crates' errors, boxed: they are large and the engine's results are returned
/// everywhere.
macro_rules! boxed_from {
    ($($variant:ident($t:ty)),* $(,)?) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Error {
                Error::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Model(pelagos_model::Error),
    Store(pelagos_image::StoreError),
    Registry(pelagos_registry::RegistryError),
    Runtime(pelagos_container::Error),
    Network(pelagos_network::Error),
    Netlink(pelagos_netlink::Error),
    Firewall(pelagos_firewall::Error),
);

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
