//! The crate's error type, and the translation of oci-client's errors into it so that every
//! message names the registry host (and, where there is one, the digest or file) involved.

use std::path::PathBuf;

use oci_client::errors::{OciDistributionError, OciErrorCode};
use pelagos_image::Digest;

use crate::platform::{Platform, PlatformError};

/// Everything that can go wrong talking to a registry or reading pelagos' registry files.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The `[registries]` table of the configuration file is malformed.
    #[error("invalid registry configuration {source_name}: {message}")]
    Config {
        /// The file (or `<string>` for `RegistryConfig::from_toml_str`).
        source_name: String,
        /// What is wrong, naming the offending key.
        message: String,
    },
    /// The configuration file exists but cannot be read.
    #[error("cannot read registry configuration {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A certificate under the certs.d directory cannot be read or used.
    #[error("CA certificate {path} for registry {host}: {message}")]
    Certificate {
        /// The registry host the certificate belongs to.
        host: String,
        /// The certificate file (or directory).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The Docker credential file is malformed or cannot be read or written.
    #[error("credential file {path}: {message}")]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The registry refused the credentials (or wants some and got none).
    #[error("{registry}: unauthorized: {detail} (run `pelagos login {registry}` if it needs credentials)")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// What the registry or token service said.
        detail: String,
    },
    /// The manifest, blob or repository does not exist on the registry.
    #[error("{what} not found on {registry}: {detail}")]
    NotFound {
        /// Registry host.
        registry: String,
        /// What was asked for (`manifest library/busybox:latest`, `blob sha256:...`).
        what: String,
        /// The registry's own words.
        detail: String,
    },
    /// Docker image manifest schema 1 is refused.
    #[error("{reference}: Docker image manifest schema 1 ({media_type}) is not supported; the image must be re-pushed with a current client (schema 2 or OCI)")]
    Schema1Unsupported {
        /// The image.
        reference: String,
        /// The media type (or `schemaVersion 1`).
        media_type: String,
    },
    /// An index / manifest list has no entry for the wanted platform.
    #[error("{reference}: no image for platform {wanted}; the index has: {}", list_platforms(.available))]
    NoMatchingPlatform {
        /// The image.
        reference: String,
        /// The platform asked for.
        wanted: Platform,
        /// The platforms the index lists.
        available: Vec<Platform>,
    },
    /// A manifest, config or layer of a media type pelagos cannot use.
    #[error("{reference}: unsupported {what} media type {media_type:?}")]
    UnsupportedMediaType {
        /// The image.
        reference: String,
        /// `manifest`, `config`, `layer`, `index entry`.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// Content does not hash to the digest it was asked for by.
    #[error("{what}: digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// Registry host.
        registry: String,
        /// What and where (`manifest a/b:1 from HOST`, `blob sha256:.. from HOST`, `file PATH`).
        what: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest of what arrived.
        actual: String,
    },
    /// The server sent more bytes than the descriptor's size.
    #[error(
        "blob {digest} from {registry}: the server sent more than the expected {expected} bytes"
    )]
    SizeExceeded {
        /// Registry host.
        registry: String,
        /// The blob.
        digest: Digest,
        /// Descriptor size.
        expected: u64,
    },
    /// Content of the wrong length (a short blob, a manifest whose size differs from its descriptor,
    /// a file to push that is not the size its descriptor says).
    #[error("{what} {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What (`blob from HOST`, `manifest from HOST`, `file PATH`).
        what: String,
        /// The content's digest.
        digest: Digest,
        /// Descriptor size.
        expected: u64,
        /// Actual size.
        actual: u64,
    },
    /// Connecting or talking to the registry failed below HTTP (refused, reset, TLS, timeout).
    #[error("{host}: {message}")]
    Transport {
        /// Registry host.
        host: String,
        /// Description, including the URL where known.
        message: String,
    },
    /// The server's TLS certificate did not verify against the trusted CA roots (the system's
    /// and the host's certs.d ones). Not retried: another attempt gets the same certificate.
    #[error("{host}: TLS certificate not trusted: {message}")]
    UntrustedCertificate {
        /// Registry host.
        host: String,
        /// What was being done, rustls' reason, and which roots were tried.
        message: String,
    },
    /// The registry answered with an HTTP error status.
    #[error("{host}: HTTP {status} for {url}: {message}")]
    Http {
        /// Registry host.
        host: String,
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's error text.
        message: String,
    },
    /// The registry answered something that is not valid Distribution API / OCI content.
    #[error("{host}: {message}")]
    Protocol {
        /// Registry host.
        host: String,
        /// What is wrong.
        message: String,
    },
    /// A blob download kept failing.
    #[error("{last} (gave up after {attempts} attempts)")]
    TooManyRetries {
        /// Registry host.
        host: String,
        /// The blob.
        digest: Digest,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<RegistryError>,
    },
    /// A platform string such as `linux/amd64` is malformed.
    #[error(transparent)]
    InvalidPlatform(#[from] PlatformError),
    /// A local file to push cannot be read.
    #[error("blob file {path}: {source}")]
    BlobFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn list_platforms(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "no platform entries".to_owned();
    }
    platforms
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RegistryError {
    /// Whether a blob download that failed this way is worth retrying: connection-level
    /// failures, 5xx, 408 and 429; never other 4xx, digest or size errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Http { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            _ => false,
        }
    }
}

/// What an oci-client call was doing, so its error can be told in pelagos' words.
pub(crate) struct Context<'a> {
    /// Registry host (endpoint) the call went to.
    pub host: &'a str,
    /// `manifest library/busybox:latest`, `blob sha256:...`.
    pub what: &'a str,
}

/// Translates an oci-client error. oci-client keeps the status only in some of its variants
/// (an OCI error envelope loses it), so the envelope's error code decides where it has none.
pub(crate) fn from_oci(err: OciDistributionError, ctx: &Context<'_>) -> RegistryError {
    let host = ctx.host.to_owned();
    match err {
        OciDistributionError::UnauthorizedError { url } => RegistryError::Unauthorized {
            registry: host,
            detail: format!("the registry answered 401 for {url}"),
        },
        OciDistributionError::AuthenticationFailure(reason) => RegistryError::Unauthorized {
            registry: host,
            detail: format!("token service refused the credentials: {}", reason.trim()),
        },
        OciDistributionError::RegistryError { envelope, url } => {
            let message = envelope
                .errors
                .iter()
                .map(|e| {
                    if e.message.is_empty() {
                        format!("{:?}", e.code)
                    } else {
                        e.message.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ");
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                RegistryError::NotFound {
                    registry: host,
                    what: ctx.what.to_owned(),
                    detail: message,
                }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                RegistryError::Unauthorized {
                    registry: host,
                    detail: message,
                }
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
            {
                RegistryError::Http {
                    host,
                    url,
                    status: 429,
                    message,
                }
            } else {
                RegistryError::Http {
                    host,
                    url,
                    status: 400,
                    message,
                }
            }
        }
        OciDistributionError::ServerError { code, url, message } => {
            status_error(host, ctx.what, url, code, message.trim().to_owned())
        }
        OciDistributionError::RequestError(e) => from_reqwest(&e, ctx.host, ctx.what),
        OciDistributionError::IoError(e) => RegistryError::Transport {
            host,
            message: format!("{}: {e}", ctx.what),
        },
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => match Digest::parse(&expected) {
            Ok(expected) => RegistryError::DigestMismatch {
                registry: host.clone(),
                what: format!("{} from {host}", ctx.what),
                expected,
                actual,
            },
            Err(_) => RegistryError::Protocol {
                host,
                message: format!("{}: registry sent digest {expected:?}", ctx.what),
            },
        },
        OciDistributionError::DigestError(e) => RegistryError::Protocol {
            host,
            message: format!("{}: {e}", ctx.what),
        },
        other => RegistryError::Protocol {
            host,
            message: format!("{}: {other}", ctx.what),
        },
    }
}

/// Maps an HTTP status to the matching error kind.
pub(crate) fn status_error(
    host: String,
    what: &str,
    url: String,
    status: u16,
    message: String,
) -> RegistryError {
    match status {
        401 | 403 => RegistryError::Unauthorized {
            registry: host,
            detail: format!("HTTP {status} for {url}"),
        },
        404 => RegistryError::NotFound {
            registry: host,
            what: what.to_owned(),
            detail: if message.is_empty() {
                format!("HTTP 404 for {url}")
            } else {
                message
            },
        },
        _ => RegistryError::Http {
            host,
            url,
            status,
            message,
        },
    }
}

/// Maps a reqwest error; one carrying a status came from `error_for_status`.
pub(crate) fn from_reqwest(e: &reqwest::Error, host: &str, what: &str) -> RegistryError {
    let url = e.url().map(|u| u.to_string()).unwrap_or_default();
    if let Some(status) = e.status() {
        return status_error(host.to_owned(), what, url, status.as_u16(), String::new());
    }
    // The chain holds the useful part ("connection refused", "connection closed before
    // message completed", a TLS verification failure).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let message = format!("{what}: {message}");
    if is_certificate_error(e) {
        RegistryError::UntrustedCertificate {
            host: host.to_owned(),
            message,
        }
    } else {
        RegistryError::Transport {
            host: host.to_owned(),
            message,
        }
    }
}

/// Whether rustls refused the server's certificate somewhere in `e`'s chain. rustls' error
/// travels inside an `io::Error`, whose `source()` skips it, so each `io::Error` is opened.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let is_cert = |r: &rustls::Error| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        )
    };
    let mut current = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<rustls::Error>().is_some_and(is_cert) {
            return true;
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if inner.downcast_ref::<rustls::Error>().is_some_and(is_cert)
                || is_certificate_error(inner)
            {
                return true;
            }
        }
        current = err.source();
    }
    false
}

/// An error and its sources on one line (reqwest hides the useful part in the chain).
pub(crate) fn io_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}
