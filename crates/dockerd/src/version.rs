//! API version negotiation: every route answers with and without a `/vX.Y` prefix; the
//! prefix is checked against [`MIN`]..=[`MAX`] and handed to handlers as [`ApiVersion`];
//! every answer carries Docker's `Api-Version`, `Docker-Experimental`, `Ostype` and
//! `Server` headers.

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// An API version, `major.minor`, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion(pub u16, pub u16);

/// The highest version whose differences pelagos-dockerd honours.
pub const MAX: ApiVersion = ApiVersion(1, 41);
/// The oldest version a client may speak (as dockerd 25 and later).
pub const MIN: ApiVersion = ApiVersion(1, 24);

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion(major.parse().ok()?, minor.parse().ok()?))
    }

    /// True when the client speaks at least `major.minor` (for version-dependent shapes).
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= ApiVersion(major, minor)
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// Splits `/v1.41/containers/json` into the version and the rest; `None` without a prefix.
pub fn split_prefix(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v")?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (version, tail) = rest.split_at(end);
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some((version, if tail.is_empty() { "/" } else { tail }))
}

/// The middleware: strips and checks the prefix, stores the version, adds the headers.
pub async fn negotiate(mut req: Request, next: Next) -> Response {
    let version = match split_prefix(req.uri().path()) {
        None => MAX,
        Some((text, tail)) => {
            let version = match check(text) {
                Ok(v) => v,
                Err(e) => return with_headers(e.into_response()),
            };
            let tail = tail.to_string();
            match rewrite(req.uri(), &tail) {
                Some(uri) => *req.uri_mut() = uri,
                None => {
                    return with_headers(
                        ApiError::bad_request("invalid request path").into_response(),
                    )
                }
            }
            version
        }
    };
    req.extensions_mut().insert(version);
    with_headers(next.run(req).await)
}

fn check(text: &str) -> Result<ApiVersion, ApiError> {
    let v = ApiVersion::parse(text)
        .ok_or_else(|| ApiError::bad_request(format!("invalid API version {text:?}")))?;
    if v > MAX {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {MAX}"
        )));
    }
    if v < MIN {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN}, please upgrade your client to a newer version"
        )));
    }
    Ok(v)
}

fn rewrite(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    Uri::builder().path_and_query(path_and_query).build().ok()
}

fn with_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static("1.41"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("Docker/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_ranges() {
        assert_eq!(
            split_prefix("/v1.41/containers/json"),
            Some(("1.41", "/containers/json"))
        );
        assert_eq!(split_prefix("/v1.24/_ping"), Some(("1.24", "/_ping")));
        assert_eq!(split_prefix("/volumes"), None);
        assert_eq!(split_prefix("/version"), None);
        assert!(check("1.41").is_ok());
        assert!(check("1.24").is_ok());
        assert!(check("1.50").unwrap_err().message.contains("too new"));
        assert!(check("1.12").unwrap_err().message.contains("too old"));
        assert!(check("x").is_err());
        assert_eq!(MAX.to_string(), "1.41");
        assert!(ApiVersion(1, 41).at_least(1, 40));
    }
}
