//! API errors as Docker sends them: a status from the engine's error kind, never from the
//! text, and the body `{"message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pelagos_model::ErrorKind;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Docker's `message`.
    pub message: String,
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request is wrong (moby's `errdefs.InvalidParameter`).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: what the request names does not exist.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request conflicts with the object's state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    /// 500: the daemon or the host failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 501: an endpoint pelagos does not implement (yet), said plainly.
    pub fn not_implemented(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, message)
    }
}

/// The status Docker gives an error of this kind.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::Unenforceable => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        // moby marks "executable file not found" and "permission denied" of a start as
        // invalid parameters; the CLI picks 126/127 from the message.
        ErrorKind::NotExecutable | ErrorKind::ExecutableNotFound => StatusCode::BAD_REQUEST,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<pelagos_engine::Error> for ApiError {
    fn from(e: pelagos_engine::Error) -> ApiError {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

impl From<pelagos_model::Error> for ApiError {
    fn from(e: pelagos_model::Error) -> ApiError {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

impl From<pelagos_model::filters::FilterError> for ApiError {
    fn from(e: pelagos_model::filters::FilterError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_dockers_statuses() {
        assert_eq!(
            status_of(ErrorKind::InvalidArgument),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_of(ErrorKind::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorKind::Conflict), StatusCode::CONFLICT);
        assert_eq!(
            status_of(ErrorKind::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let e: ApiError = pelagos_engine::Error::NotFound("No such container: x".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.message, "No such container: x");
    }
}
