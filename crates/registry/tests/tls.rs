//! HTTPS registries: a real `docker-registry` serving TLS with a test CA, trusted through a
//! certs.d directory; what happens without the CA (plain HTTP to a TLS port) and with the wrong
//! one; and a plain-HTTP registry that redirects to an HTTPS one.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use pelagos_image::{Algorithm, Digest, Reference};
use pelagos_registry::{
    AuthFile, Client, Credentials, Platform, RegistryConfig, RegistryError, OCI_MANIFEST,
};
use pelagos_testkit::registry::{generate_ca, Auth, Registry, TlsFiles};

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// A client whose certs.d is `certs_dir`, with `insecure` hosts and an empty credential file.
fn client_with_certs_d(dir: &Path, certs_dir: &Path, insecure: &[String]) -> Client {
    let config = RegistryConfig {
        certs_dir: certs_dir.to_owned(),
        insecure: insecure.to_vec(),
        ..RegistryConfig::default()
    };
    Client::new(&config, AuthFile::load(&dir.join("config.json")).unwrap())
}

/// A TLS registry holding one image `test/app:v1`.
fn tls_registry_with_image(tmp: &Path, auth: Auth) -> (Registry, TlsFiles, Image) {
    let (reg, tls) = Registry::start_tls(auth).unwrap();
    assert_eq!(reg.scheme(), "https");
    let layout = tmp.join("layout");
    let img = single_image_layout(&layout, "v1", &noise(200_000, 11));
    // skopeo verifies the registry's certificate against the test CA.
    reg.push_oci_layout(&layout, "test/app:v1", false).unwrap();
    (reg, tls, img)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_trusted_through_certs_d() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, tls, img) = tls_registry_with_image(tmp.path(), Auth::None);
    let certs_dir = tmp.path().join("certs.d");
    let installed = tls.install_ca(&certs_dir, &reg.host()).unwrap();
    assert_eq!(installed, certs_dir.join(reg.host()).join("ca.crt"));
    let config = RegistryConfig {
        certs_dir: certs_dir.clone(),
        ..RegistryConfig::default()
    };
    // The rule: a loopback registry with a certs.d directory is HTTPS.
    assert!(!config.is_insecure(&reg.host()));

    let client = client_with_certs_d(tmp.path(), &certs_dir, &[]);
    let r = reference(&format!("{}/test/app:v1", reg.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.endpoint, reg.host());
    assert_eq!(resolved.manifest_digest, img.manifest.digest);
    assert_eq!(resolved.layers[0].digest, img.layer.digest);

    let config_blob = client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap();
    assert_eq!(config_blob, img.config.bytes);

    let (bytes, requests) = read_blob(&client, &resolved, &resolved.layers[0]).await;
    let bytes = bytes.unwrap();
    assert_eq!(requests, 1);
    assert_eq!(
        Digest::of_bytes(Algorithm::Sha256, &bytes),
        img.layer.digest
    );

    // Login and push go over the same HTTPS endpoint.
    let creds = Credentials {
        username: "anyone".into(),
        password: "anything".into(),
    };
    client.login(&reg.host(), &creds).await.unwrap();
    let target = reference(&format!("{}/test/app:v2", reg.host()));
    let digest = client
        .push_manifest(&target, OCI_MANIFEST, &img.manifest.bytes)
        .await
        .unwrap();
    assert_eq!(digest, img.manifest.digest);
    let again = client.resolve(&target, &Platform::host()).await.unwrap();
    assert_eq!(again.manifest_digest, img.manifest.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_over_https() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, tls, img) = tls_registry_with_image(tmp.path(), Auth::token("tuser", "tpass"));
    let certs_dir = tmp.path().join("certs.d");
    tls.install_ca(&certs_dir, &reg.host()).unwrap();
    let config = RegistryConfig {
        certs_dir,
        ..RegistryConfig::default()
    };
    let auth_path = tmp.path().join("auth/config.json");
    let mut auth = AuthFile::load(&auth_path).unwrap();
    let creds = Credentials {
        username: "tuser".into(),
        password: "tpass".into(),
    };
    auth.set(&reg.host(), &creds).unwrap();
    let client = Client::new(&config, AuthFile::load(&auth_path).unwrap());
    client.login(&reg.host(), &creds).await.unwrap();
    let r = reference(&format!("{}/test/app:v1", reg.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.manifest_digest, img.manifest.digest);
    assert!(reg.tokens_issued() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_certs_d_a_loopback_registry_gets_plain_http_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, tls, _img) = tls_registry_with_image(tmp.path(), Auth::None);
    let certs_dir = tmp.path().join("certs.d");
    std::fs::create_dir(&certs_dir).unwrap();
    let client = client_with_certs_d(tmp.path(), &certs_dir, &[]);
    let r = reference(&format!("{}/test/app:v1", reg.host()));
    let err = client.resolve(&r, &Platform::host()).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Http { status: 400, .. }),
        "{err}"
    );
    let msg = err.to_string();
    let host = reg.host();
    assert!(
        msg.contains(&format!("{host}: HTTP 400 for http://{host}/")),
        "{msg}"
    );
    // The server's words, then why plain HTTP was used and what to do.
    assert!(msg.contains("HTTPS server"), "{msg}");
    assert!(
        msg.contains(&certs_dir.join(&host).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("loopback"), "{msg}");

    // Listed in `insecure`, it stays plain HTTP even with the CA in certs.d.
    tls.install_ca(&certs_dir, &host).unwrap();
    let client = client_with_certs_d(
        &tmp.path().join("insecure"),
        &certs_dir,
        std::slice::from_ref(&host),
    );
    let err = client.resolve(&r, &Platform::host()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("HTTPS server") && msg.contains("registries.insecure"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_is_a_certificate_error_naming_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, _tls, _img) = tls_registry_with_image(tmp.path(), Auth::None);
    let (other_ca, _key) = generate_ca(tmp.path(), "other-ca").unwrap();
    let certs_dir = tmp.path().join("certs.d");
    let host = reg.host();
    std::fs::create_dir_all(certs_dir.join(&host)).unwrap();
    std::fs::copy(&other_ca, certs_dir.join(&host).join("ca.crt")).unwrap();
    let client = client_with_certs_d(tmp.path(), &certs_dir, &[]);

    let r = reference(&format!("{host}/test/app:v1"));
    let err = client.resolve(&r, &Platform::host()).await.unwrap_err();
    let check = |err: &RegistryError| {
        assert!(
            matches!(err, RegistryError::UntrustedCertificate { .. }),
            "{err:?}"
        );
        assert!(!err.is_retryable(), "{err}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{host}: TLS certificate not trusted")),
            "{msg}"
        );
        assert!(msg.contains(&format!("https://{host}/v2/")), "{msg}");
        assert!(msg.contains("UnknownIssuer"), "{msg}");
        // Which roots were tried.
        assert!(
            msg.contains(&format!(
                "the system's and 1 from {}/*.crt",
                certs_dir.join(&host).display()
            )),
            "{msg}"
        );
    };
    check(&err);
    // Our own HTTP client (the /v2/ login check) reports it the same way.
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let err = client.login(&host, &creds).await.unwrap_err();
    check(&err);
}

/// A plain-HTTP server on 127.0.0.1 that answers every request with a 307 to the same path on
/// `https://<target>`, as a registry with a redirecting storage backend does.
struct Redirector {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Redirector {
    fn start(target: String) -> Redirector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = redirect(&mut conn, &target);
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        Redirector {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn redirect(conn: &mut TcpStream, target: &str) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    write!(
        conn,
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://{target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    conn.flush()
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_http_registry_may_redirect_to_https() {
    let tmp = tempfile::tempdir().unwrap();
    let (reg, tls, img) = tls_registry_with_image(tmp.path(), Auth::None);
    let redirector = Redirector::start(reg.host());
    let plain = redirector.host();
    // The redirecting registry is plain HTTP (listed in `insecure`); the CA of the HTTPS
    // server it sends clients to is in its certs.d directory, as Docker uses it.
    let certs_dir = tmp.path().join("certs.d");
    tls.install_ca(&certs_dir, &plain).unwrap();
    let client = client_with_certs_d(tmp.path(), &certs_dir, std::slice::from_ref(&plain));

    // The plain-HTTP endpoint starts without CA roots; the certificate failure at the
    // redirect makes it load them and try again.
    let r = reference(&format!("{plain}/test/app:v1"));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.endpoint, plain);
    assert_eq!(resolved.manifest_digest, img.manifest.digest);
    let config_blob = client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap();
    assert_eq!(config_blob, img.config.bytes);
    let (bytes, _) = read_blob(&client, &resolved, &resolved.layers[0]).await;
    assert_eq!(
        Digest::of_bytes(Algorithm::Sha256, &bytes.unwrap()),
        img.layer.digest
    );

    // Without the CA the redirect target cannot be trusted, and the error says so.
    let bare = client_with_certs_d(
        &tmp.path().join("bare"),
        &tmp.path().join("no-certs.d"),
        std::slice::from_ref(&plain),
    );
    let err = bare.resolve(&r, &Platform::host()).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::UntrustedCertificate { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{plain}: TLS certificate not trusted"))
            && msg.contains("UnknownIssuer")
            && msg.contains("the registry is plain HTTP"),
        "{msg}"
    );
}
