//! Credentials against real registries: HTTP Basic (htpasswd) and Bearer tokens from the
//! testkit's token issuer; `login`, pulls with and without credentials, and an authenticated push.

mod common;

use common::*;
use pelagos_image::{Algorithm, Digest, Reference};
use pelagos_registry::{BlobDescriptor, Credentials, Platform, RegistryError};
use pelagos_testkit::registry::{Auth, Registry};

fn creds(user: &str, password: &str) -> Credentials {
    Credentials {
        username: user.into(),
        password: password.into(),
    }
}

/// The same checks for both kinds of auth.
async fn exercise(reg: &Registry) {
    let (user, password) = reg.auth().credentials().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = single_image_layout(&layout, "v1", &noise(20_000, 7));
    reg.push_oci_layout(&layout, "private/app:v1", false)
        .unwrap();
    let r = Reference::parse(&format!("{}/private/app:v1", reg.host())).unwrap();

    // No credentials: refused, and the message says which registry and how to fix it.
    let anon = anonymous_client(&tmp.path().join("anon"));
    let err = anon.resolve(&r, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&reg.host()) && msg.contains("pelagos login"),
        "{msg}"
    );

    // Wrong credentials: refused too.
    let wrong = client_with_creds(&tmp.path().join("wrong"), &reg.host(), user, "not-it");
    let err = wrong.resolve(&r, &Platform::host()).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    // login() checks credentials against /v2/.
    anon.login(&reg.host(), &creds(user, password))
        .await
        .unwrap();
    let err = anon
        .login(&reg.host(), &creds(user, "not-it"))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    let err = anon
        .login(&reg.host(), &creds("nobody", password))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");

    // With the credential file entry: the whole pull works.
    let client = client_with_creds(&tmp.path().join("good"), &reg.host(), user, password);
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.manifest_digest, img.manifest.digest);
    assert_eq!(
        client
            .fetch_blob(&resolved, &resolved.config)
            .await
            .unwrap(),
        img.config.bytes
    );
    let (bytes, _) = read_blob(&client, &resolved, &resolved.layers[0]).await;
    assert_eq!(bytes.unwrap(), img.layer.bytes);

    // And an authenticated push to a new repository (needs push scope with tokens).
    let target = Reference::parse(&format!("{}/private/copy:v1", reg.host())).unwrap();
    let blob_path = |d: &Digest| layout.join("blobs/sha256").join(d.hex());
    for b in [&img.layer, &img.config] {
        let desc = BlobDescriptor {
            media_type: b.media_type.clone(),
            digest: b.digest.clone(),
            size: b.bytes.len() as u64,
        };
        assert!(client
            .push_blob(&target, &desc, &blob_path(&b.digest))
            .await
            .unwrap());
    }
    let digest = client
        .push_manifest(&target, pelagos_registry::OCI_MANIFEST, &img.manifest.bytes)
        .await
        .unwrap();
    assert_eq!(
        digest,
        Digest::of_bytes(Algorithm::Sha256, &img.manifest.bytes)
    );
    let back = client.resolve(&target, &Platform::host()).await.unwrap();
    assert_eq!(back.manifest_digest, digest);

    // Anonymous push is refused.
    let err = anon
        .push_manifest(&target, pelagos_registry::OCI_MANIFEST, &img.manifest.bytes)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth() {
    let reg = Registry::start(Auth::htpasswd("alice", "s3cret-pw")).unwrap();
    exercise(&reg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth() {
    let reg = Registry::start(Auth::token("bob", "t0ken-pw")).unwrap();
    exercise(&reg).await;
    // The pulls and the push went through the issuer.
    assert!(reg.tokens_issued() >= 3, "{} tokens", reg.tokens_issued());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_to_an_open_registry_succeeds() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let client = anonymous_client(tmp.path());
    client
        .login(&reg.host(), &creds("any", "thing"))
        .await
        .unwrap();
}
