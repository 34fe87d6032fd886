//! What kind of failure an error is, for callers that act on it (a daemon's HTTP status,
//! Docker's exit codes 125/126/127) without reading its text; it crosses process boundaries
//! as one byte.

/// The kind of an [`Error`](crate::Error), decided by its variant (`Error::kind`), never by
/// its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request or the container's configuration is wrong: fix the input.
    InvalidArgument,
    /// The container does not exist.
    NotFound,
    /// The container exists but is not in a state that allows the request.
    Conflict,
    /// The program exists but cannot be executed (permission, format, a directory).
    NotExecutable,
    /// The program (or its interpreter) was not found.
    ExecutableNotFound,
    /// The configuration asks for something this host cannot enforce.
    Unenforceable,
    /// Anything else: the host, the kernel or the runtime failed.
    Internal,
}

impl ErrorKind {
    const ALL: [ErrorKind; 7] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::NotExecutable,
        ErrorKind::ExecutableNotFound,
        ErrorKind::Unenforceable,
        ErrorKind::Internal,
    ];

    /// The byte a `Failed` report carries (stable: the launch stub, `stub/launch.rs`, writes
    /// the same numbers).
    pub fn code(self) -> u8 {
        match self {
            ErrorKind::InvalidArgument => 1,
            ErrorKind::NotFound => 2,
            ErrorKind::Conflict => 3,
            ErrorKind::NotExecutable => 4,
            ErrorKind::ExecutableNotFound => 5,
            ErrorKind::Unenforceable => 6,
            ErrorKind::Internal => 7,
        }
    }

    /// The kind a byte of a `Failed` report names; an unknown byte is `Internal`.
    pub fn from_code(code: u8) -> ErrorKind {
        Self::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or(ErrorKind::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_is_internal() {
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_code(k.code()), k);
        }
        assert_eq!(ErrorKind::from_code(0), ErrorKind::Internal);
        assert_eq!(ErrorKind::from_code(200), ErrorKind::Internal);
        assert_eq!(
            serde_json::to_string(&ErrorKind::ExecutableNotFound).unwrap(),
            "\"executable_not_found\""
        );
    }
}
