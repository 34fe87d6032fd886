//! The system's CA roots are read only when HTTPS needs them: a pull, a login and a push against
//! a plain-HTTP registry read none. One test in its own binary, as the roots are per process.

mod common;

use common::*;
use pelagos_image::Reference;
use pelagos_registry::{
    system_roots_loaded, AuthFile, Client, Credentials, Platform, RegistryConfig, OCI_MANIFEST,
};
use pelagos_testkit::registry::{Auth, Registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_reads_no_system_roots_and_https_reads_them() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = single_image_layout(&layout, "v1", &noise(50_000, 3));
    reg.push_oci_layout(&layout, "test/app:v1", false).unwrap();

    let client = anonymous_client(tmp.path());
    let r = Reference::parse(&format!("{}/test/app:v1", reg.host())).unwrap();
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap();
    let (bytes, _) = read_blob(&client, &resolved, &resolved.layers[0]).await;
    assert_eq!(bytes.unwrap(), img.layer.bytes);
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    client.login(&reg.host(), &creds).await.unwrap();
    let target = Reference::parse(&format!("{}/test/app:v2", reg.host())).unwrap();
    client
        .push_manifest(&target, OCI_MANIFEST, &img.manifest.bytes)
        .await
        .unwrap();
    assert!(!system_roots_loaded());

    // The first HTTPS endpoint reads them.
    let (tls_reg, tls) = Registry::start_tls(Auth::None).unwrap();
    let certs_dir = tmp.path().join("certs.d");
    tls.install_ca(&certs_dir, &tls_reg.host()).unwrap();
    let config = RegistryConfig {
        certs_dir,
        ..RegistryConfig::default()
    };
    let client = Client::new(&config, AuthFile::load(&tmp.path().join("c.json")).unwrap());
    client.login(&tls_reg.host(), &creds).await.unwrap();
    assert!(system_roots_loaded());
}
