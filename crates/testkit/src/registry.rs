//! Starts a real distribution registry (`docker-registry`, distribution 2.8) on loopback for
//! tests — anonymous, htpasswd or token auth with an in-process token issuer, plain HTTP or
//! HTTPS with a test CA — plus a TCP proxy that cuts responses short (resumed downloads) or
//! holds them midway (downloads in progress), and records the requests it relays.
//!
//! Everything a [`Registry`] creates lives in its own temporary directory and ports, so tests
//! run in parallel; dropping it kills the registry process (by its pid), stops the token
//! issuer and removes the directory.
//!
//! ```no_run
//! use pelagos_testkit::registry::{Auth, Registry};
//! # fn main() -> anyhow::Result<()> {
//! let reg = Registry::start(Auth::None)?;
//! # let layout = std::path::Path::new("/tmp/layout");
//! reg.push_oci_layout(layout, "demo/app:1", false)?;   // skopeo copy oci:... docker://HOST/demo/app:1
//! println!("pull from {}/demo/app:1", reg.host());
//!
//! // HTTPS: a test CA and a certificate for 127.0.0.1; clients trust `tls.ca_cert`.
//! let (reg, tls) = Registry::start_tls(Auth::None)?;
//! # let certs_dir = std::path::Path::new("/tmp/certs.d");
//! tls.install_ca(certs_dir, &reg.host())?;            // <certs_dir>/127.0.0.1:PORT/ca.crt
//! # Ok(()) }
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use sha2::Digest as _;

/// The registry binary (Debian's `docker-registry` package).
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// `service` of token-auth registries (the token's audience).
pub const TOKEN_SERVICE: &str = "pelagos-testkit-registry";
/// `issuer` of the tokens the testkit issues.
pub const TOKEN_ISSUER: &str = "pelagos-testkit-issuer";

/// How the registry authenticates clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone may pull and push.
    None,
    /// HTTP Basic against a bcrypt htpasswd file with this one user.
    Htpasswd {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// Bearer tokens from a token issuer that knows this one user (Docker Hub's scheme).
    Token {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl Auth {
    /// `Auth::Htpasswd` with the given credentials.
    pub fn htpasswd(user: &str, password: &str) -> Auth {
        Auth::Htpasswd {
            user: user.into(),
            password: password.into(),
        }
    }

    /// `Auth::Token` with the given credentials.
    pub fn token(user: &str, password: &str) -> Auth {
        Auth::Token {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The user and password, if the registry has any.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Auth::None => None,
            Auth::Htpasswd { user, password } | Auth::Token { user, password } => {
                Some((user, password))
            }
        }
    }
}

/// The TLS material of a registry started with [`Registry::start_tls`]: files in the
/// registry's temporary directory, removed when the [`Registry`] is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The test CA's certificate (PEM): what a client must trust.
    pub ca_cert: PathBuf,
    /// The server's certificate (PEM), for the IP address 127.0.0.1 (subject alternative
    /// name), signed by the CA.
    pub server_cert: PathBuf,
    /// The server's private key (PEM).
    pub server_key: PathBuf,
}

impl TlsFiles {
    /// Copies the CA certificate to `<certs_dir>/<host>/ca.crt`, Docker's certs.d layout (the
    /// directories are created); returns the file's path.
    pub fn install_ca(&self, certs_dir: &Path, host: &str) -> anyhow::Result<PathBuf> {
        let dir = certs_dir.join(host);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dest = dir.join("ca.crt");
        std::fs::copy(&self.ca_cert, &dest)
            .with_context(|| format!("copying {} to {}", self.ca_cert.display(), dest.display()))?;
        Ok(dest)
    }
}

/// Generates a self-signed test CA, `<dir>/<name>.crt` and `<dir>/<name>.key` (PEM, EC P-256,
/// valid for two days), with the openssl CLI; returns (certificate, key).
pub fn generate_ca(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path_str(&key),
        "-out",
        &path_str(&cert),
        "-days",
        "2",
        "-subj",
        &format!("/CN=pelagos-testkit {name}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    Ok((cert, key))
}

/// A CA (`ca.crt`) and a certificate for 127.0.0.1 signed by it (`server.crt`, `server.key`)
/// in `dir`.
fn generate_server_tls(dir: &Path) -> anyhow::Result<TlsFiles> {
    let (ca_cert, ca_key) = generate_ca(dir, "ca")?;
    let server_key = dir.join("server.key");
    let server_csr = dir.join("server.csr");
    let server_cert = dir.join("server.crt");
    let ext = dir.join("server-ext.cnf");
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path_str(&server_key),
        "-out",
        &path_str(&server_csr),
        "-subj",
        "/CN=127.0.0.1",
    ])?;
    // webpki checks the IP address against the subject alternative names only.
    std::fs::write(
        &ext,
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &path_str(&server_csr),
        "-CA",
        &path_str(&ca_cert),
        "-CAkey",
        &path_str(&ca_key),
        "-set_serial",
        &format!("0x{}", random_hex(8)),
        "-days",
        "2",
        "-extfile",
        &path_str(&ext),
        "-out",
        &path_str(&server_cert),
    ])?;
    Ok(TlsFiles {
        ca_cert,
        server_cert,
        server_key,
    })
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Runs the openssl CLI; a failure carries its stderr.
fn openssl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A running `docker-registry` on 127.0.0.1 with filesystem storage in a temporary directory.
pub struct Registry {
    child: Child,
    port: u16,
    auth: Auth,
    tls: Option<TlsFiles>,
    issuer: Option<TokenIssuer>,
    storage: PathBuf,
    log: PathBuf,
    // Last: removed after the process is gone.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host())
            .field("pid", &self.child.id())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a plain-HTTP registry on an ephemeral port and waits until `/v2/` answers.
    pub fn start(auth: Auth) -> anyhow::Result<Registry> {
        Registry::start_inner(auth, false)
    }

    /// Starts an HTTPS registry: a fresh test CA and a certificate for 127.0.0.1 signed by it
    /// (distribution's `http.tls`). Clients must trust [`TlsFiles::ca_cert`]; the token issuer
    /// of [`Auth::Token`] stays plain HTTP.
    pub fn start_tls(auth: Auth) -> anyhow::Result<(Registry, TlsFiles)> {
        let reg = Registry::start_inner(auth, true)?;
        let tls = reg
            .tls
            .clone()
            .ok_or_else(|| anyhow!("TLS registry without TLS files"))?;
        Ok((reg, tls))
    }

    fn start_inner(auth: Auth, with_tls: bool) -> anyhow::Result<Registry> {
        if !Path::new(REGISTRY_BIN).exists() {
            bail!("{REGISTRY_BIN} not found: install Debian's docker-registry package");
        }
        let dir = tempfile::Builder::new()
            .prefix("pelagos-registry-")
            .tempdir()
            .context("creating the registry's temporary directory")?;
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage)?;
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .context("running htpasswd (apache2-utils)")?;
                if !out.status.success() {
                    bail!(
                        "htpasswd -Bbn failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: pelagos-testkit\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token { .. } => String::new(),
        };
        let issuer = match &auth {
            Auth::Token { user, password } => Some(TokenIssuer::start(
                dir.path(),
                user.clone(),
                password.clone(),
            )?),
            _ => None,
        };
        let auth_yaml = match &issuer {
            Some(i) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                i.realm(),
                i.cert_pem.display()
            ),
            None => auth_yaml,
        };
        let tls = if with_tls {
            let tls_dir = dir.path().join("tls");
            std::fs::create_dir(&tls_dir)?;
            Some(generate_server_tls(&tls_dir)?)
        } else {
            None
        };
        let tls_yaml = match &tls {
            Some(t) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                t.server_cert.display(),
                t.server_key.display()
            ),
            None => String::new(),
        };
        let log = dir.path().join("registry.log");
        let mut dir = dir;
        // The port is picked by binding :0 and released before the registry binds it, so
        // another process can take it in between: retry with a new port when that happens.
        let mut last_err = None;
        for _ in 0..5 {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: {}\n{tls_yaml}{auth_yaml}",
                    storage.display(),
                    random_hex(16)
                ),
            )?;
            let log_file = std::fs::File::create(&log)?;
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file)
                .spawn()
                .with_context(|| format!("spawning {REGISTRY_BIN}"))?;
            let mut reg = Registry {
                child,
                port,
                auth: auth.clone(),
                tls: tls.clone(),
                issuer: None,
                storage: storage.clone(),
                log: log.clone(),
                dir,
            };
            match reg.wait_ready(Duration::from_secs(15)) {
                Ok(()) => {
                    reg.issuer = issuer;
                    return Ok(reg);
                }
                Err(e) => {
                    last_err = Some(e);
                    reg.kill();
                    // Take the directory back for the next try; the Drop of `reg` then has
                    // nothing left to remove.
                    dir = std::mem::replace(&mut reg.dir, tempfile::tempdir()?);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("docker-registry did not start")))
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "docker-registry exited with {status} before answering on {}: {}",
                    self.host(),
                    self.log_tail()
                );
            }
            if let Ok(status) = http_status(&self.host(), "/v2/") {
                // An HTTPS server answers a plain-HTTP request with 400 ("Client sent an HTTP
                // request to an HTTPS server"): listening, which is all this waits for.
                if status == 200 || status == 401 || (self.tls.is_some() && status == 400) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry on {} did not answer /v2/ within {timeout:?}: {}",
                    self.host(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        // Child::kill signals the pid of the process this Registry spawned, nothing else.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `https` for a registry from [`Registry::start_tls`], else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The TLS files of a registry from [`Registry::start_tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The authentication the registry was started with.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Root of the registry's filesystem storage (`docker/registry/v2/blobs/sha256/xx/<hex>/data`).
    pub fn storage_dir(&self) -> &Path {
        &self.storage
    }

    /// Path of a blob's data file in the storage (to corrupt or delete it in tests).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let prefix = hex.get(..2).unwrap_or(hex);
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(prefix)
            .join(hex)
            .join("data")
    }

    /// The last lines of the registry's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Token requests the issuer has answered with a token (0 without token auth).
    pub fn tokens_issued(&self) -> u32 {
        self.issuer
            .as_ref()
            .map(|i| i.stats.issued.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// `skopeo copy oci:<layout>[:<ref>] docker://HOST/<name_tag>`, with the registry's
    /// credentials and `--dest-tls-verify=false` (plain HTTP) or `--dest-cert-dir` holding the
    /// test CA (HTTPS, verified); `all` adds `--all` (copy a
    /// whole multi-platform index). The layout's `<ref>` is the tag of `name_tag` when
    /// `index.json` has an entry of that name (`org.opencontainers.image.ref.name`), else none
    /// (a layout holding a single image).
    pub fn push_oci_layout(&self, layout: &Path, name_tag: &str, all: bool) -> anyhow::Result<()> {
        let tag = name_tag
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map(|(_, t)| t);
        let refs = layout_refs(layout)?;
        let layout_ref = tag.filter(|t| refs.iter().any(|r| r == t));
        self.push_oci_layout_ref(layout, layout_ref, name_tag, all)
    }

    /// Like [`Registry::push_oci_layout`] with the layout's ref given explicitly.
    pub fn push_oci_layout_ref(
        &self,
        layout: &Path,
        layout_ref: Option<&str>,
        name_tag: &str,
        all: bool,
    ) -> anyhow::Result<()> {
        let src = match layout_ref {
            Some(r) => format!("oci:{}:{r}", layout.display()),
            None => format!("oci:{}", layout.display()),
        };
        let dest = format!("docker://{}/{name_tag}", self.host());
        let policy = self.dir.path().join("policy.json");
        if !policy.exists() {
            std::fs::write(
                &policy,
                r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
            )?;
        }
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy").arg(&policy).args(["copy", "--quiet"]);
        match &self.tls {
            Some(tls) => {
                // skopeo trusts the *.crt files of --dest-cert-dir (and reads *.cert/*.key
                // pairs there as client certificates, so the directory holds the CA only).
                let cert_dir = self.dir.path().join("skopeo-certs");
                if !cert_dir.exists() {
                    std::fs::create_dir(&cert_dir)?;
                    std::fs::copy(&tls.ca_cert, cert_dir.join("ca.crt"))?;
                }
                cmd.arg("--dest-cert-dir").arg(&cert_dir);
            }
            None => {
                cmd.arg("--dest-tls-verify=false");
            }
        }
        if let Some((user, password)) = self.auth.credentials() {
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        if all {
            cmd.arg("--all");
        }
        cmd.arg(&src).arg(&dest);
        // skopeo reads (and may write) auth files under $HOME / $XDG_RUNTIME_DIR; keep it off
        // the developer's own.
        cmd.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env(
                "REGISTRY_AUTH_FILE",
                self.dir.path().join("skopeo-auth.json"),
            );
        let out = cmd.output().context("running skopeo")?;
        if !out.status.success() {
            bail!(
                "skopeo copy {src} {dest} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if let Some(issuer) = self.issuer.take() {
            drop(issuer);
        }
    }
}

/// The `org.opencontainers.image.ref.name` values in a layout's `index.json`.
fn layout_refs(layout: &Path) -> anyhow::Result<Vec<String>> {
    let path = layout.join("index.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_owned)
        .collect())
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

/// Unpredictable enough for an HTTP secret or a token id in a test; no RNG crate needed.
fn random_hex(bytes: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    let mut round = 0u64;
    while out.len() < bytes * 2 {
        let mut h = sha2::Sha256::new();
        h.update(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
                .to_le_bytes(),
        );
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::SeqCst).to_le_bytes());
        h.update(round.to_le_bytes());
        for b in h.finalize() {
            out.push_str(&format!("{b:02x}"));
        }
        round += 1;
    }
    out.truncate(bytes * 2);
    out
}

/// A one-shot `GET path` over HTTP/1.0; returns the status code.
fn http_status(host: &str, path: &str) -> anyhow::Result<u16> {
    let addr: SocketAddr = host.parse()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {line:?}"))
}

#[derive(Default)]
struct IssuerStats {
    issued: AtomicU32,
}

/// A small Docker token service: `GET /token?service=..&scope=..` with HTTP Basic credentials
/// returns an ES256 JWT carrying its certificate in `x5c` (distribution checks the chain against
/// `rootcertbundle`) and granting every action the scopes ask for. Missing or wrong credentials
/// get 401.
struct TokenIssuer {
    port: u16,
    cert_pem: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<IssuerStats>,
}

struct IssuerState {
    user: String,
    password: String,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
    stats: Arc<IssuerStats>,
}

impl TokenIssuer {
    fn start(dir: &Path, user: String, password: String) -> anyhow::Result<TokenIssuer> {
        let key_pem = dir.join("token-key.pem");
        let key_der = dir.join("token-key.der");
        let cert_pem = dir.join("token-cert.pem");
        let cert_der = dir.join("token-cert.der");
        let p = |p: &Path| p.display().to_string();
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &p(&key_pem),
        ])?;
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            &p(&key_pem),
            "-outform",
            "DER",
            "-out",
            &p(&key_der),
        ])?;
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-key",
            &p(&key_pem),
            "-out",
            &p(&cert_pem),
            "-days",
            "2",
            "-subj",
            "/CN=pelagos-testkit-token-issuer",
        ])?;
        openssl(&[
            "x509",
            "-in",
            &p(&cert_pem),
            "-outform",
            "DER",
            "-out",
            &p(&cert_der),
        ])?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &std::fs::read(&key_der)?,
            &rng,
        )
        .map_err(|e| anyhow!("loading the token signing key: {e}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the token issuer")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(IssuerStats::default());
        let state = Arc::new(IssuerState {
            user,
            password,
            key,
            cert_der: std::fs::read(&cert_der)?,
            stats: stats.clone(),
        });
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("token-issuer".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        let _ = serve_token(conn, &state);
                    });
                }
            })?;
        Ok(TokenIssuer {
            port,
            cert_pem,
            stop,
            thread: Some(thread),
            stats,
        })
    }

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(mut conn: TcpStream, state: &IssuerState) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || conn.read(&mut byte)? == 0 {
            bail!("incomplete request");
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    if path != "/token" {
        return respond(&mut conn, 404, "{\"errors\":[{\"code\":\"NOT_FOUND\"}]}");
    }
    let authorized = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .map(|raw| raw == format!("{}:{}", state.user, state.password).into_bytes())
        .unwrap_or(false);
    if !authorized {
        return respond(
            &mut conn,
            401,
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"invalid user name or password\"}]}",
        );
    }
    let mut service = String::new();
    let mut access = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            "scope" => {
                // One scope parameter may hold several space-separated scopes.
                for scope in v.split(' ').filter(|s| !s.is_empty()) {
                    if let Some(a) = parse_scope(scope) {
                        access.push(a);
                    }
                }
            }
            _ => {}
        }
    }
    let token = sign_token(state, &service, access)?;
    state.stats.issued.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::json!({"token": token, "access_token": token, "expires_in": 300});
    respond(&mut conn, 200, &body.to_string())
}

/// `repository:name/with/slashes:pull,push` → access entry.
fn parse_scope(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
}

fn sign_token(
    state: &IssuerState,
    service: &str,
    access: Vec<serde_json::Value>,
) -> anyhow::Result<String> {
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&state.cert_der)],
    });
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": state.user,
        "aud": service,
        "exp": now + 300,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": random_hex(16),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64url.encode(header.to_string()),
        b64url.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let sig = state
        .key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|e| anyhow!("signing the token: {e}"))?;
    Ok(format!("{signing_input}.{}", b64url.encode(sig.as_ref())))
}

fn respond(conn: &mut TcpStream, status: u16, body: &str) -> anyhow::Result<()> {
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let extra = if status == 401 {
        "WWW-Authenticate: Basic realm=\"pelagos-testkit\"\r\n"
    } else {
        ""
    };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()?;
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Counters of a [`CuttingProxy`].
#[derive(Default, Debug)]
struct ProxyStats {
    connections: AtomicU32,
    cuts: AtomicU32,
    bytes_to_client: AtomicU64,
    /// Request lines (`GET /v2/... HTTP/1.1`) in the order they reached the proxy.
    requests: Mutex<Vec<String>>,
    /// Connections held at the stall point right now.
    stalled: AtomicU32,
    /// Whether stalled connections may go on.
    released: Mutex<bool>,
    release: Condvar,
}

impl ProxyStats {
    /// Holds the calling connection until [`CuttingProxy::release`].
    fn stall(&self) {
        self.stalled.fetch_add(1, Ordering::SeqCst);
        let mut released = self.released.lock().unwrap_or_else(|p| p.into_inner());
        while !*released {
            released = self
                .release
                .wait(released)
                .unwrap_or_else(|p| p.into_inner());
        }
        self.stalled.fetch_sub(1, Ordering::SeqCst);
    }

    fn open_gate(&self) {
        *self.released.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.release.notify_all();
    }
}

/// How a [`CuttingProxy`] disturbs the responses it relays.
#[derive(Debug, Clone, Copy)]
struct Disturbance {
    /// Cut a connection after this many response bytes...
    cut_after: u64,
    /// ... this many times in all.
    times: u32,
    /// Rename `Range` headers of requests.
    hide_range: bool,
    /// Hold each connection after this many response bytes until released.
    stall_after: u64,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that cuts a connection once it has relayed
/// `cut_after` bytes from the upstream (response bytes, headers included, counted per
/// connection), `times` times in all; after that it relays normally. For interrupted-download
/// tests; [`CuttingProxy::stalling`] holds responses midway instead, and every proxy records
/// the request lines it relays ([`CuttingProxy::requests`]).
pub struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<ProxyStats>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl std::fmt::Debug for CuttingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CuttingProxy")
            .field("host", &self.host())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl CuttingProxy {
    /// Starts the proxy; `upstream` is `host:port`.
    pub fn start(upstream: &str, cut_after: u64, times: u32) -> anyhow::Result<CuttingProxy> {
        CuttingProxy::start_inner(
            upstream,
            Disturbance {
                cut_after,
                times,
                hide_range: false,
                stall_after: u64::MAX,
            },
        )
    }

    /// A proxy that never cuts: it only relays and records requests, e.g. to count how often
    /// each blob is fetched.
    pub fn passthrough(upstream: &str) -> anyhow::Result<CuttingProxy> {
        CuttingProxy::stalling(upstream, u64::MAX)
    }

    /// A proxy that holds every connection once it has relayed `after` response bytes on it,
    /// until [`CuttingProxy::release`] (or drop): a download stopped midway for as long as a
    /// test needs, without timing. [`CuttingProxy::stalled`] tells when one is held.
    pub fn stalling(upstream: &str, after: u64) -> anyhow::Result<CuttingProxy> {
        CuttingProxy::start_inner(
            upstream,
            Disturbance {
                cut_after: u64::MAX,
                times: 0,
                hide_range: false,
                stall_after: after,
            },
        )
    }

    /// Like [`CuttingProxy::start`], and also hides `Range` headers from the upstream (renamed
    /// to `Rangx`), so resumed requests get the whole blob again with 200, as from a server
    /// without range support.
    pub fn start_ignoring_range(
        upstream: &str,
        cut_after: u64,
        times: u32,
    ) -> anyhow::Result<CuttingProxy> {
        CuttingProxy::start_inner(
            upstream,
            Disturbance {
                cut_after,
                times,
                hide_range: true,
                stall_after: u64::MAX,
            },
        )
    }

    fn start_inner(upstream: &str, how: Disturbance) -> anyhow::Result<CuttingProxy> {
        let upstream: SocketAddr = upstream
            .parse()
            .with_context(|| format!("upstream {upstream:?} is not an ip:port"))?;
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the proxy")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProxyStats::default());
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop2, stats2, open2) = (stop.clone(), stats.clone(), open.clone());
        let thread = std::thread::Builder::new()
            .name("cutting-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = conn else { continue };
                    stats2.connections.fetch_add(1, Ordering::SeqCst);
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                        let mut list = open2.lock().unwrap_or_else(|p| p.into_inner());
                        list.push(c);
                        list.push(s);
                    }
                    let stats = stats2.clone();
                    std::thread::spawn(move || {
                        relay(client, server, how, &stats);
                    });
                }
            })?;
        Ok(CuttingProxy {
            port,
            stop,
            thread: Some(thread),
            stats,
            open,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u32 {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Connections cut so far (at most `times`).
    pub fn cuts(&self) -> u32 {
        self.stats.cuts.load(Ordering::SeqCst)
    }

    /// Bytes relayed from the upstream to clients, over all connections.
    pub fn bytes_relayed(&self) -> u64 {
        self.stats.bytes_to_client.load(Ordering::SeqCst)
    }

    /// Connections held at the stall point right now (see [`CuttingProxy::stalling`]).
    pub fn stalled(&self) -> u32 {
        self.stats.stalled.load(Ordering::SeqCst)
    }

    /// Lets stalled connections go on; from now on nothing stalls.
    pub fn release(&self) {
        self.stats.open_gate();
    }

    /// The request lines relayed so far (`GET /v2/name/blobs/sha256:... HTTP/1.1`), in arrival
    /// order. A request is recorded before it is forwarded, so once its response has arrived
    /// it is here.
    pub fn requests(&self) -> Vec<String> {
        self.stats
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many `GET` requests fetched the blob `digest` (`sha256:...`).
    pub fn blob_gets(&self, digest: &str) -> usize {
        let suffix = format!("/blobs/{digest}");
        self.requests()
            .iter()
            .filter(|r| {
                let mut words = r.split(' ');
                words.next() == Some("GET") && words.next().is_some_and(|p| p.ends_with(&suffix))
            })
            .count()
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stats.open_gate();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Unblock relay threads still waiting on open connections.
        for s in self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn relay(client: TcpStream, server: TcpStream, how: Disturbance, stats: &Arc<ProxyStats>) {
    let (Ok(mut client_r), Ok(mut server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Requests flow unchanged, except for a hidden Range header.
    let requests = stats.clone();
    let up = std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut lines = RequestLines::default();
        loop {
            let n = match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for line in lines.feed(&buf[..n]) {
                requests
                    .requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line);
            }
            if how.hide_range {
                rename_range_headers(&mut buf[..n]);
            }
            if server_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_w.shutdown(Shutdown::Write);
    });
    let (mut server_r, mut client_w) = (server, client);
    let mut relayed = 0u64;
    let mut may_cut = true;
    let mut may_stall = true;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        let mut cut = false;
        if may_cut && relayed + n as u64 >= how.cut_after {
            let reserved = stats
                .cuts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| {
                    (c < how.times).then_some(c + 1)
                })
                .is_ok();
            if reserved {
                let keep = how.cut_after - relayed;
                chunk = &chunk[..usize::try_from(keep).unwrap_or(n).min(n)];
                cut = true;
            } else {
                may_cut = false;
            }
        }
        if may_stall && relayed + chunk.len() as u64 >= how.stall_after {
            let head = usize::try_from(how.stall_after.saturating_sub(relayed))
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            if send(&mut client_w, &chunk[..head], &mut relayed, stats).is_err() {
                break;
            }
            chunk = &chunk[head..];
            stats.stall();
            may_stall = false;
        }
        if send(&mut client_w, chunk, &mut relayed, stats).is_err() || cut {
            break;
        }
    }
    let _ = client_w.shutdown(Shutdown::Both);
    let _ = server_r.shutdown(Shutdown::Both);
    let _ = up.join();
}

/// Writes a chunk of a response to the client and counts it.
fn send(
    client: &mut TcpStream,
    chunk: &[u8],
    relayed: &mut u64,
    stats: &ProxyStats,
) -> std::io::Result<()> {
    client.write_all(chunk)?;
    *relayed += chunk.len() as u64;
    stats
        .bytes_to_client
        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
    Ok(())
}

/// Picks HTTP request lines (`METHOD /path HTTP/1.x`) out of a client's byte stream, however
/// it is split across reads. Header lines never look like one; the bodies of the requests a
/// pull sends are empty (a pushed blob that happens to hold such a line would be miscounted).
#[derive(Default)]
struct RequestLines {
    line: Vec<u8>,
}

impl RequestLines {
    /// Longest line kept; request lines of registry clients are far shorter.
    const MAX_LINE: usize = 8192;

    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                if self.line.len() < Self::MAX_LINE {
                    self.line.push(b);
                }
                continue;
            }
            let text = String::from_utf8_lossy(&self.line);
            let text = text.trim_end_matches('\r');
            let mut words = text.split(' ');
            let method = words.next().unwrap_or("");
            let is_request = !method.is_empty()
                && method.bytes().all(|c| c.is_ascii_uppercase())
                && words.next().is_some_and(|p| p.starts_with('/'))
                && words.next().is_some_and(|v| v.starts_with("HTTP/"));
            if is_request {
                found.push(text.to_owned());
            }
            self.line.clear();
        }
        found
    }
}

/// Renames `Range:` header lines to `Rangx:` in place (same length). Requests are small and
/// arrive in one read on loopback, so a header split across reads is not handled.
fn rename_range_headers(buf: &mut [u8]) {
    const NEEDLE: &[u8] = b"\r\nrange:";
    let mut i = 0;
    while i + NEEDLE.len() <= buf.len() {
        if buf[i..i + NEEDLE.len()].eq_ignore_ascii_case(NEEDLE) {
            buf[i + 6] = b'x';
            i += NEEDLE.len();
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_are_renamed() {
        let mut req =
            b"GET /x HTTP/1.1\r\nHost: a\r\nrange: bytes=5-\r\nRange: bytes=6-\r\n\r\n".to_vec();
        rename_range_headers(&mut req);
        assert_eq!(
            req,
            b"GET /x HTTP/1.1\r\nHost: a\r\nrangx: bytes=5-\r\nRangx: bytes=6-\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn request_lines_are_found_across_reads() {
        let stream = b"GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\nGET /v2/x/blobs/sha256:ab HTTP/1.1\r\nAccept: */*\r\n\r\nHEAD /v2/x/manifests/1 HTTP/1.1\r\n\r\n";
        for split in [1, 7, 20, stream.len()] {
            let mut lines = RequestLines::default();
            let found: Vec<String> = stream.chunks(split).flat_map(|c| lines.feed(c)).collect();
            assert_eq!(
                found,
                [
                    "GET /v2/ HTTP/1.1",
                    "GET /v2/x/blobs/sha256:ab HTTP/1.1",
                    "HEAD /v2/x/manifests/1 HTTP/1.1"
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn scope_and_percent_decoding() {
        assert_eq!(
            percent_decode("repository%3Aa%2Fb%3Apull%2Cpush"),
            "repository:a/b:pull,push"
        );
        assert_eq!(percent_decode("a+b%2"), "a b%2");
        let a = parse_scope("repository:lib/x:pull,push").unwrap();
        assert_eq!(a["name"], "lib/x");
        assert_eq!(a["actions"], serde_json::json!(["pull", "push"]));
        assert!(parse_scope("nonsense").is_none());
    }

    #[test]
    fn random_hex_has_the_length_and_differs() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16));
        assert_eq!(random_hex(40).len(), 80);
    }
}
