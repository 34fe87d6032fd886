//! TLS trust for registry endpoints: the system's CA roots, loaded at most once per process and
//! only when an endpoint needs them, the per-host certs.d roots, and the root-less set-up of
//! plain-HTTP endpoints.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use oci_client::client::{Certificate, CertificateEncoding};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::error::RegistryError;

/// The only root given to oci-client's client of a plain-HTTP endpoint. oci-client builds its own
/// reqwest client, and a non-empty "only these roots" list is the one setting that keeps reqwest
/// from reading every system certificate for a client that speaks no TLS. This root can verify no
/// server: it was generated with its private key sent to /dev/null, and its name constraints
/// permit only the reserved name `invalid` and the addresses 0.0.0.0 and `::`.
const PLACEHOLDER_ROOT: &str = "-----BEGIN CERTIFICATE-----
MIICHjCCAcWgAwIBAgIUEVj22bP4qlVzzPjgKToCPyThxYkwCgYIKoZIzj0EAwIw
RjFEMEIGA1UEAww7cGVsYWdvcyBwbGFpbi1IVFRQIHBsYWNlaG9sZGVyIHJvb3Qg
KG5vIHByaXZhdGUga2V5IGV4aXN0cykwIBcNMjYxMTMwMTQyMzEzWhgPMjEyNjEx
MDYxNDIzMTNaMEYxRDBCBgNVBAMMO3BlbGFnb3MgcGxhaW4tSFRUUCBwbGFjZWhv
bGRlciByb290IChubyBwcml2YXRlIGtleSBleGlzdHMpMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEfZFA719bvFdyqmpF6meSUmydiGwylxj8MiTH20E2/Lt2SSB9
tsrtjtZbpcwNDUmnxevjy/2T4Drmljflrz89TqOBjjCBizAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwICBDBJBgNVHR4BAf8EPzA9oDswCYIHaW52YWxpZDAK
hwgAAAAA/////zAihyAAAAAAAAAAAAAAAAAAAAAA/////////////////////zAd
BgNVHQ4EFgQU2O3lL+fjZ+luW78Ss92KamrAUWAwCgYIKoZIzj0EAwIDRwAwRAIg
D/9ONFRAudBRuqWTecEnNInxcHNh5WcRorRlwNum6GUCIHy+Fv80T7YPhDlLY/cz
DBoPHnELIs/k21xmXTUg7891
-----END CERTIFICATE-----
";

/// The system's CA roots, as DER (for oci-client) and as a store (for our own clients).
struct SystemRoots {
    ders: Vec<CertificateDer<'static>>,
    store: Arc<RootCertStore>,
}

static SYSTEM_ROOTS: OnceLock<SystemRoots> = OnceLock::new();

/// The system's CA roots, read from disk on the first call only (reading and parsing the few
/// hundred files of /etc/ssl/certs costs milliseconds, once per client otherwise).
fn system_roots() -> &'static SystemRoots {
    SYSTEM_ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        for error in &result.errors {
            tracing::warn!(%error, "cannot load a system CA certificate");
        }
        let mut store = RootCertStore::empty();
        let mut ders = Vec::with_capacity(result.certs.len());
        for der in result.certs {
            // Only what webpki can use: the same list goes to reqwest, which refuses the whole
            // list for one certificate it cannot parse.
            if store.add(der.clone()).is_ok() {
                ders.push(der);
            }
        }
        if store.is_empty() {
            tracing::warn!("no system CA certificates found; HTTPS registries need a certs.d CA");
        } else {
            tracing::debug!(count = store.len(), "loaded the system CA roots");
        }
        SystemRoots {
            ders,
            store: Arc::new(store),
        }
    })
}

/// Whether this crate has read the system's CA roots in this process. It reads them once, when
/// the first HTTPS endpoint is built (or a plain-HTTP registry sends a client to an HTTPS URL);
/// plain HTTP alone never does. (oci-client's `Client` constructor also builds a throwaway
/// default reqwest client, which reads them once per registry endpoint; nothing in its API
/// avoids that.)
pub fn system_roots_loaded() -> bool {
    SYSTEM_ROOTS.get().is_some()
}

/// What an endpoint trusts for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Nothing: a plain-HTTP endpoint. An HTTPS URL the registry sends the client to (a token
    /// service, a redirected blob) fails until the endpoint is rebuilt with [`Trust::Roots`].
    Nothing,
    /// The system's roots and the host's certs.d roots.
    Roots,
}

/// The CA roots of one endpoint.
pub(crate) struct EndpointRoots {
    /// For oci-client's `tls_certs_only`.
    pub(crate) oci: Vec<Certificate>,
    /// For our own reqwest client.
    pub(crate) rustls: rustls::ClientConfig,
    /// Certificates from certs.d.
    pub(crate) certs_d: usize,
}

/// The roots for `trust`, with `extra` (certs.d) added for [`Trust::Roots`].
pub(crate) fn endpoint_roots(
    trust: Trust,
    extra: Vec<CertificateDer<'static>>,
) -> Result<EndpointRoots, String> {
    let certs_d = extra.len();
    let (oci, store) = match trust {
        Trust::Nothing => (
            vec![Certificate {
                encoding: CertificateEncoding::Pem,
                data: PLACEHOLDER_ROOT.as_bytes().to_vec(),
            }],
            Arc::new(RootCertStore::empty()),
        ),
        Trust::Roots => {
            let system = system_roots();
            let oci: Vec<Certificate> = system
                .ders
                .iter()
                .chain(&extra)
                .map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.to_vec(),
                })
                .collect();
            let store = if extra.is_empty() {
                system.store.clone()
            } else {
                let mut store = (*system.store).clone();
                for der in extra {
                    store
                        .add(der)
                        .map_err(|e| format!("invalid CA certificate: {e}"))?;
                }
                Arc::new(store)
            };
            if store.is_empty() {
                return Err(
                    "no CA certificates to verify the registry with: the system has \
                     none and there is no .crt file for it"
                        .into(),
                );
            }
            (oci, store)
        }
    };
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let rustls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(EndpointRoots {
        oci,
        rustls,
        certs_d,
    })
}

/// The PEM certificates of `<certs_dir>/<host>/*.crt`, each file checked (parsed as a trust
/// anchor) so that a bad one is named; a missing directory means none.
pub(crate) fn load_certs(
    certs_dir: &Path,
    host: &str,
) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    let dir = certs_dir.join(host);
    let err = |path: &Path, message: String| RegistryError::Certificate {
        host: host.to_owned(),
        path: path.to_owned(),
        message,
    };
    let mut certs = Vec::new();
    for file in crt_files(&dir).map_err(|e| err(&dir, format!("cannot read the directory: {e}")))? {
        let text = std::fs::read(&file).map_err(|e| err(&file, format!("cannot read: {e}")))?;
        let pems = parse_pem(&text).map_err(|m| err(&file, m))?;
        for der in pems {
            RootCertStore::empty()
                .add(der.clone())
                .map_err(|e| err(&file, format!("invalid certificate: {e}")))?;
            certs.push(der);
        }
    }
    Ok(certs)
}

/// The `*.crt` files of a certs.d host directory, sorted; none when it does not exist.
pub(crate) fn crt_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    Ok(files)
}

/// The certificates of a PEM file (a .crt file may hold a chain; text around them is ignored).
fn parse_pem(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("malformed PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundle_with_text_around_it() {
        let text = format!("junk\n{PLACEHOLDER_ROOT}# comment\n{PLACEHOLDER_ROOT}");
        let certs = parse_pem(text.as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0], certs[1]);
        assert!(parse_pem(b"nothing here")
            .unwrap_err()
            .contains("no PEM certificate"));
    }

    #[test]
    fn placeholder_root_is_accepted_by_reqwest() {
        // reqwest refuses to build a client whose "only" roots do not parse.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = endpoint_roots(Trust::Nothing, Vec::new()).unwrap();
        assert_eq!(roots.oci.len(), 1);
        let cert = reqwest::Certificate::from_pem(&roots.oci[0].data).unwrap();
        reqwest::Client::builder()
            .tls_certs_only([cert])
            .build()
            .unwrap();
        let der = CertificateDer::from_pem_slice(PLACEHOLDER_ROOT.as_bytes()).unwrap();
        RootCertStore::empty().add(der).unwrap();
    }

    #[test]
    fn certs_dir_is_per_host() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_certs(dir.path(), "reg.example.com:5000")
            .unwrap()
            .is_empty());
        let host_dir = dir.path().join("reg.example.com:5000");
        std::fs::create_dir(&host_dir).unwrap();
        std::fs::write(host_dir.join("a.crt"), PLACEHOLDER_ROOT).unwrap();
        std::fs::write(host_dir.join("ignored.pem"), "not read").unwrap();
        assert_eq!(
            load_certs(dir.path(), "reg.example.com:5000")
                .unwrap()
                .len(),
            1
        );
        std::fs::write(host_dir.join("b.crt"), "not a cert").unwrap();
        let msg = load_certs(dir.path(), "reg.example.com:5000")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("b.crt") && msg.contains("reg.example.com:5000"),
            "{msg}"
        );
        // PEM framing around garbage is named as an invalid certificate.
        std::fs::write(
            host_dir.join("b.crt"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let msg = load_certs(dir.path(), "reg.example.com:5000")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("b.crt") && msg.contains("invalid"), "{msg}");
    }
}
