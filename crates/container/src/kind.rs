//! What kind of failure an error is: the one fact about an error that crosses process
//! boundaries and becomes an exit code or an HTTP status, never derived from message text.

/// The kind of an error, stable across processes (serialized in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The caller asked for something malformed or impossible.
    InvalidArgument,
    /// What the caller named does not exist.
    NotFound,
    /// The request conflicts with the current state (name taken, not running, running).
    Conflict,
    /// The program exists but cannot be executed (permission, format, a directory).
    NotExecutable,
    /// The program to execute was not found.
    ExecutableNotFound,
    /// A limit or setting this host cannot enforce.
    Unenforceable,
    /// Anything else: the system failed.
    Internal,
}
