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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, StatusCode};
    use axum::response::Response;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI).
    fn make_certs(dir: &Path) {
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let run = |args: &str| {
            let out = std::process::Command::new("openssl")
                .args(args.split(' '))
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl {args}: {out:?}");
        };
        run(
            "req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj /CN=ca",
        );
        for (name, cn) in [("server", "127.0.0.1"), ("client", "client")] {
            run(&format!(
                "req -newkey rsa:2048 -nodes -keyout {name}-key.pem -out {name}.csr -subj /CN={cn}"
            ));
            run(&format!("x509 -req -in {name}.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out {name}-cert.pem -days 2 -extfile {name}.ext"));
        }
    }

    /// `POST /hijack`: 101, then the raw connection echoed in upper case (as attach and exec
    /// hijack theirs).
    async fn hijack(request: Request) -> Response {
        let upgrade = hyper::upgrade::on(request);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 64];
            if let Ok(n) = io.read(&mut buf).await {
                let _ = io.write_all(&buf[..n].to_ascii_uppercase()).await;
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "tcp")
            .body(Body::empty())
            .unwrap()
    }

    fn client(dir: &Path, with_cert: bool) -> tokio_rustls::TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(certificates(&dir.join("ca.pem")).unwrap().remove(0))
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match with_cert {
            true => builder
                .with_client_auth_cert(
                    certificates(&dir.join("client-cert.pem")).unwrap(),
                    PrivateKeyDer::from_pem_file(dir.join("client-key.pem")).unwrap(),
                )
                .unwrap(),
            false => builder.with_no_client_auth(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    #[tokio::test]
    async fn hijacked_connections_work_over_tls_for_certified_clients_only() {
        let dir = tempfile::tempdir().unwrap();
        make_certs(dir.path());
        let files = TlsFiles {
            ca: &dir.path().join("ca.pem"),
            cert: &dir.path().join("server-cert.pem"),
            key: &dir.path().join("server-key.pem"),
        };
        let acceptor = acceptor(&files).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/hijack", axum::routing::post(hijack));
        tokio::spawn(serve(listener, acceptor, app));
        let name = rustls::pki_types::ServerName::from(addr.ip());

        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut tls = client(dir.path(), true)
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        tls.write_all(b"POST /hijack HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        tls.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        tls.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"PING");

        // Without a client certificate the handshake (or the first read) fails.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let refused = match client(dir.path(), false).connect(name, tcp).await {
            Err(_) => true,
            Ok(mut tls) => {
                let _ = tls
                    .write_all(b"GET /hijack HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await;
                let mut buf = [0u8; 16];
                !matches!(tls.read(&mut buf).await, Ok(n) if n > 0)
            }
        };
        assert!(refused, "a client without a certificate was served");
    }
}
