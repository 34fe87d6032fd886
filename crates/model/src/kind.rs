//! Errors as they cross a process boundary (init → monitor → CLI or daemon): a kind, a
//! message, and where known the errno and the stage, so that exit codes and HTTP statuses
//! come from the kind and never from the text.

use serde::{Deserialize, Serialize};

pub use pelagos_container::ErrorKind;

/// An error on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl WireError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> WireError {
        WireError {
            kind,
            message: message.into(),
            errno: None,
            stage: None,
        }
    }
}

/// The exit code Docker's CLI uses for an error of this kind in `run` and `exec`: 126 for a
/// command that cannot be executed, 127 for one not found, 125 for every other failure of
/// the engine itself.
pub fn exit_code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::NotExecutable => 126,
        ErrorKind::ExecutableNotFound => 127,
        _ => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_in_snake_case() {
        let e = WireError::new(ErrorKind::ExecutableNotFound, "no such file");
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.contains("\"executable_not_found\""), "{text}");
        assert_eq!(serde_json::from_str::<WireError>(&text).unwrap(), e);
        assert_eq!(exit_code(ErrorKind::NotExecutable), 126);
        assert_eq!(exit_code(ErrorKind::ExecutableNotFound), 127);
        assert_eq!(exit_code(ErrorKind::Conflict), 125);
    }
}
