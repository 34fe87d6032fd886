//! TLS for `tcp://` listeners, as dockerd's `--tlsverify`: the server's certificate and key,
//! and clients admitted only with a certificate signed by `--tlscacert`. Connections are
//! served by hyper's HTTP/1 with upgrades, so hijacked endpoints (attach, exec) work too.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::flags::Flags;
use crate::listen::ListenError;

/// The TLS files the flags name: all of them, or `None` when TLS is not asked for.
pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// The TLS files when `--tlsverify` and the three paths are given; a TCP listener needs them.
pub fn tls_files(flags: &Flags) -> Option<TlsFiles<'_>> {
    match (
        flags.tlsverify,
        &flags.tlscacert,
        &flags.tlscert,
        &flags.tlskey,
    ) {
        (true, Some(ca), Some(cert), Some(key)) => Some(TlsFiles { ca, cert, key }),
        _ => None,
    }
}

/// A TLS acceptor that requires client certificates signed by the CA.
pub fn acceptor(files: &TlsFiles<'_>) -> Result<TlsAcceptor, ListenError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in certificates(files.ca)? {
        roots
            .add(ca)
            .map_err(|e| tls_error(files.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| tls_error(files.ca, format!("cannot verify clients with it: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(files.key)
        .map_err(|e| tls_error(files.key, format!("no private key: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(files.cert, e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(files.cert)?, key)
        .map_err(|e| {
            tls_error(
                files.cert,
                format!("certificate and key do not go together: {e}"),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every PEM certificate of `path` (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ListenError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(path, format!("cannot read certificates: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(path, "holds no PEM certificate".into()));
    }
    Ok(certs)
}

fn tls_error(path: &Path, message: String) -> ListenError {
    ListenError::Tls(format!("{}: {message}", path.display()))
}

/// Accepts TLS connections on `listener` and serves `app` on each, until the listener fails.
/// A failed handshake (no or a wrong client certificate) costs only that connection.
pub async fn serve<S>(listener: TcpListener, acceptor: TlsAcceptor, app: S) -> std::io::Result<()>
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_transient(&e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::info!("TLS handshake with {peer} refused: {e}");
                    return;
                }
            };
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    tower::ServiceExt::oneshot(app.clone(), req.map(Body::new))
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

/// Errors of `accept` that concern one connection or a passing shortage, not the listener.
fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EINTR
        )
    )
}
