//! The engine's error type: every variant names what failed (image, container, file).

use std::path::PathBuf;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user option that cannot be honoured.
    #[error("{0}")]
    InvalidOption(String),
    /// No such container.
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    /// A container name already taken.
    #[error(
        "the container name \"{name}\" is already in use by container \"{id}\": remove it \
         (pelagos rm {name}) or choose another --name"
    )]
    NameInUse {
        /// The name.
        name: String,
        /// Who has it.
        id: String,
    },
    /// The container cannot be removed in its state.
    #[error("cannot remove container {0}: it is running (stop it first, or use --force)")]
    ContainerRunning(String),
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
    /// A spec that does not deserialize.
    #[error("building the container spec: {0}")]
    Spec(String),
    /// The record of a container is unreadable.
    #[error("container record {path}: {reason}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// From the image store.
    #[error(transparent)]
    Store(#[from] pelagos_image::StoreError),
    /// From the registry client.
    #[error(transparent)]
    Registry(#[from] pelagos_registry::RegistryError),
    /// From the runtime core.
    #[error(transparent)]
    Runtime(#[from] pelagos_container::Error),
    /// A background task failed to run to its end.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
