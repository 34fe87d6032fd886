//! Pull, resume, push and mirrors against real `docker-registry` processes (anonymous access),
//! with images built in the test and pushed by skopeo.

mod common;

use common::*;
use pelagos_image::{Algorithm, Digest, Reference};
use pelagos_registry::{
    AuthFile, BlobDescriptor, Client, Platform, RegistryConfig, RegistryError, RetryPolicy,
};
use pelagos_testkit::registry::{Auth, CuttingProxy, Registry};

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn registry_error(e: &std::io::Error) -> &RegistryError {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<RegistryError>())
        .unwrap_or_else(|| panic!("not a RegistryError: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_resolve_fetch_and_stream_round_trip() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let payload = noise(300_000, 1);
    let img = single_image_layout(&layout, "v1", &payload);
    reg.push_oci_layout(&layout, "test/app:v1", false).unwrap();

    let client = anonymous_client(tmp.path());
    let r = reference(&format!("{}/test/app:v1", reg.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.endpoint, reg.host());
    assert_eq!(resolved.manifest_digest, img.manifest.digest);
    assert_eq!(resolved.manifest, img.manifest.bytes);
    assert_eq!(resolved.manifest_media_type, pelagos_registry::OCI_MANIFEST);
    assert_eq!(resolved.index_digest, None);
    assert_eq!(resolved.platform, Platform::host());
    assert_eq!(resolved.config.digest, img.config.digest);
    assert_eq!(resolved.config.size, img.config.bytes.len() as u64);
    assert_eq!(resolved.layers.len(), 1);
    assert_eq!(resolved.layers[0].digest, img.layer.digest);
    assert_eq!(resolved.layers[0].media_type, LAYER_GZIP);

    let config = client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap();
    assert_eq!(config, img.config.bytes);

    let (bytes, requests) = read_blob(&client, &resolved, &resolved.layers[0]).await;
    let bytes = bytes.unwrap();
    assert_eq!(requests, 1);
    assert_eq!(bytes.len(), img.layer.bytes.len());
    assert_eq!(
        Digest::of_bytes(Algorithm::Sha256, &bytes),
        img.layer.digest
    );

    // By digest: the same manifest, verified against the pin.
    let pinned = reference(&format!("{}/test/app@{}", reg.host(), img.manifest.digest));
    let again = client.resolve(&pinned, &Platform::host()).await.unwrap();
    assert_eq!(again.manifest_digest, img.manifest.digest);

    // Unknown tag and unknown repository.
    for missing in ["test/app:nope", "other/repo:v1"] {
        let err = client
            .resolve(
                &reference(&format!("{}/{missing}", reg.host())),
                &Platform::host(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::NotFound { .. }),
            "{missing}: {err}"
        );
        assert!(err.to_string().contains(&reg.host()), "{err}");
    }

    // A blob that is corrupted in the registry's storage is refused by fetch_blob, which names
    // the digest; blob_reader passes the bytes on (its caller verifies).
    let data = reg.blob_data_path(&img.config.digest.to_string());
    let mut corrupt = std::fs::read(&data).unwrap();
    corrupt[0] ^= 0xff;
    std::fs::write(&data, &corrupt).unwrap();
    let err = client
        .fetch_blob(&resolved, &resolved.config)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&img.config.digest.to_string()),
        "{err}"
    );
    let (bytes, _) = read_blob(&client, &resolved, &resolved.config).await;
    assert_eq!(bytes.unwrap(), corrupt);

    // A manifest whose stored bytes no longer hash to its digest is refused, by tag (the
    // registry's Docker-Content-Digest) and by pinned digest.
    let data = reg.blob_data_path(&img.manifest.digest.to_string());
    // Still valid JSON (the registry parses what it serves), but other bytes.
    let mut corrupt = std::fs::read(&data).unwrap();
    corrupt.extend_from_slice(b"\n");
    std::fs::write(&data, &corrupt).unwrap();
    for r in [&r, &pinned] {
        let err = client.resolve(r, &Platform::host()).await.unwrap_err();
        assert!(
            matches!(err, RegistryError::DigestMismatch { .. }),
            "{r}: {err}"
        );
        assert!(
            err.to_string().contains(&img.manifest.digest.to_string()),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_platform_index_is_resolved_by_platform() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let (index, amd64, arm64) = multi_platform_layout(&layout, "multi");
    reg.push_oci_layout(&layout, "test/multi:multi", true)
        .unwrap();

    let client = anonymous_client(tmp.path());
    let r = reference(&format!("{}/test/multi:multi", reg.host()));
    for (platform, img) in [
        ("linux/amd64", &amd64),
        ("linux/arm64", &arm64),
        ("linux/arm64/v8", &arm64),
    ] {
        let resolved = client
            .resolve(&r, &Platform::parse(platform).unwrap())
            .await
            .unwrap();
        assert_eq!(resolved.manifest_digest, img.manifest.digest, "{platform}");
        assert_eq!(resolved.manifest, img.manifest.bytes);
        assert_eq!(resolved.index_digest.as_ref(), Some(&index.digest));
        assert_eq!(resolved.platform, img.platform);
        let config = client
            .fetch_blob(&resolved, &resolved.config)
            .await
            .unwrap();
        assert_eq!(config, img.config.bytes);
    }

    // The index pinned by digest resolves the same way.
    let pinned = reference(&format!("{}/test/multi@{}", reg.host(), index.digest));
    let resolved = client
        .resolve(&pinned, &Platform::parse("linux/arm64").unwrap())
        .await
        .unwrap();
    assert_eq!(resolved.manifest_digest, arm64.manifest.digest);

    let err = client
        .resolve(&r, &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    match &err {
        RegistryError::NoMatchingPlatform {
            wanted, available, ..
        } => {
            assert_eq!(wanted.to_string(), "linux/s390x");
            let names: Vec<String> = available.iter().map(|p| p.to_string()).collect();
            assert_eq!(names, ["linux/amd64", "linux/arm64/v8"]);
        }
        other => panic!("expected NoMatchingPlatform, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/amd64, linux/arm64/v8"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_download_resumes_with_range_requests() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = single_image_layout(&layout, "big", &noise(1_000_000, 2));
    reg.push_oci_layout(&layout, "test/big:big", false).unwrap();
    let client = anonymous_client(tmp.path());
    let r = reference(&format!("{}/test/big:big", reg.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    let layer = resolved.layers[0].clone();
    assert!(layer.size > 900_000);

    // Three connections cut after ~150 KB each; blobs come from `endpoint`, here the proxy.
    let proxy = CuttingProxy::start(&reg.host(), 150_000, 3).unwrap();
    let mut via_proxy = resolved.clone();
    via_proxy.endpoint = proxy.host();
    let (bytes, requests) = read_blob(&client, &via_proxy, &layer).await;
    let bytes = bytes.unwrap();
    assert_eq!(
        bytes, img.layer.bytes,
        "resumed bytes must be identical and complete"
    );
    assert_eq!(proxy.cuts(), 3);
    assert!(requests >= 4, "{requests} requests");
    // Each resume asked only for the rest: far less than one extra copy went over the wire.
    assert!(
        proxy.bytes_relayed() < layer.size + layer.size / 2,
        "{} bytes relayed for a {}-byte blob",
        proxy.bytes_relayed(),
        layer.size
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_server_that_ignores_range_skips_what_was_read() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = single_image_layout(&layout, "big", &noise(400_000, 4));
    reg.push_oci_layout(&layout, "test/big:big", false).unwrap();
    let client = anonymous_client(tmp.path());
    let r = reference(&format!("{}/test/big:big", reg.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();

    // Resumed requests reach the registry without their Range header and get 200 with the
    // whole blob: the reader must drop the part it already has.
    let proxy = CuttingProxy::start_ignoring_range(&reg.host(), 100_000, 2).unwrap();
    let mut via_proxy = resolved.clone();
    via_proxy.endpoint = proxy.host();
    let (bytes, requests) = read_blob(&client, &via_proxy, &resolved.layers[0]).await;
    assert_eq!(bytes.unwrap(), img.layer.bytes);
    assert_eq!(proxy.cuts(), 2);
    assert!(requests >= 3, "{requests} requests");
    // The full blob went over the wire again after each cut.
    assert!(proxy.bytes_relayed() > resolved.layers[0].size + 150_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_gives_up_after_the_retry_budget() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    single_image_layout(&layout, "v1", b"small\n");
    reg.push_oci_layout(&layout, "test/app:v1", false).unwrap();
    let client = anonymous_client(tmp.path());
    let resolved = client
        .resolve(
            &reference(&format!("{}/test/app:v1", reg.host())),
            &Platform::host(),
        )
        .await
        .unwrap();

    // Every connection is cut before a byte arrives: no progress, so the default budget
    // (5 attempts, 200 ms doubling) runs out.
    let proxy = CuttingProxy::start(&reg.host(), 0, 10_000).unwrap();
    let mut via_proxy = resolved.clone();
    via_proxy.endpoint = proxy.host();
    let started = std::time::Instant::now();
    let (result, requests) = read_blob(&client, &via_proxy, &resolved.layers[0]).await;
    let err = result.unwrap_err();
    match registry_error(&err) {
        RegistryError::TooManyRetries { attempts, host, .. } => {
            assert_eq!(*attempts, RetryPolicy::default().max_attempts);
            assert_eq!(host, &proxy.host());
        }
        other => panic!("expected TooManyRetries, got {other}"),
    }
    assert_eq!(requests, RetryPolicy::default().max_attempts);
    // 200 + 400 + 800 + 1600 ms of backoff.
    assert!(started.elapsed() >= std::time::Duration::from_millis(3000));

    // A 404 is not retried.
    let missing = BlobDescriptor {
        media_type: LAYER_GZIP.into(),
        digest: Digest::of_bytes(Algorithm::Sha256, b"not there"),
        size: 9,
    };
    let (result, requests) = read_blob(&client, &resolved, &missing).await;
    let err = result.unwrap_err();
    assert!(
        matches!(registry_error(&err), RegistryError::NotFound { .. }),
        "{err}"
    );
    assert_eq!(requests, 1);

    // A server sending more than the descriptor's size is cut off.
    let mut short = resolved.layers[0].clone();
    short.size -= 5;
    let (result, _) = read_blob(&client, &resolved, &short).await;
    let err = result.unwrap_err();
    assert!(
        matches!(registry_error(&err), RegistryError::SizeExceeded { .. }),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_resolve_back() {
    let reg = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = write_image(&layout, "linux/amd64", &noise(50_000, 3));
    let blob_path = |b: &Blob| layout.join("blobs/sha256").join(b.digest.hex());
    let desc = |b: &Blob| BlobDescriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.clone(),
        size: b.bytes.len() as u64,
    };
    let client = anonymous_client(tmp.path());
    let target = reference(&format!("{}/pushed/app:1", reg.host()));

    // A file whose content is not what its descriptor says is not committed.
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, vec![0u8; img.layer.bytes.len()]).unwrap();
    let err = client
        .push_blob(&target, &desc(&img.layer), &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&wrong.display().to_string()),
        "{err}"
    );

    for b in [&img.layer, &img.config] {
        assert!(
            client
                .push_blob(&target, &desc(b), &blob_path(b))
                .await
                .unwrap(),
            "{}",
            b.digest
        );
        // Already there: skipped.
        assert!(!client
            .push_blob(&target, &desc(b), &blob_path(b))
            .await
            .unwrap());
    }
    let digest = client
        .push_manifest(&target, pelagos_registry::OCI_MANIFEST, &img.manifest.bytes)
        .await
        .unwrap();
    assert_eq!(digest, img.manifest.digest);

    let resolved = client.resolve(&target, &Platform::host()).await.unwrap();
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

    // Pushing by digest: the bytes must match the pin.
    let by_digest = reference(&format!("{}/pushed/app@{}", reg.host(), img.config.digest));
    let err = client
        .push_manifest(
            &by_digest,
            pelagos_registry::OCI_MANIFEST,
            &img.manifest.bytes,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_are_tried_in_order_before_the_registry() {
    let upstream = Registry::start(Auth::None).unwrap();
    let mirror = Registry::start(Auth::None).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let on_mirror = tmp.path().join("on-mirror");
    let on_upstream = tmp.path().join("on-upstream");
    let mirrored = single_image_layout(&on_mirror, "v1", b"served by the mirror\n");
    let direct = single_image_layout(&on_upstream, "v2", b"served by the registry\n");
    mirror
        .push_oci_layout(&on_mirror, "lib/app:v1", false)
        .unwrap();
    upstream
        .push_oci_layout(&on_upstream, "lib/app:v2", false)
        .unwrap();

    // A closed port first: connection refused, fall through to the next mirror.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let config = RegistryConfig::from_toml_str(&format!(
        "[registries.mirrors]\n\"{}\" = [\"{dead}\", \"{}\"]\n",
        upstream.host(),
        mirror.host()
    ))
    .unwrap();
    let client = Client::new(
        &config,
        AuthFile::load(&tmp.path().join("none.json")).unwrap(),
    );

    let r = reference(&format!("{}/lib/app:v1", upstream.host()));
    let resolved = client.resolve(&r, &Platform::host()).await.unwrap();
    assert_eq!(resolved.endpoint, mirror.host());
    assert_eq!(resolved.manifest_digest, mirrored.manifest.digest);
    assert_eq!(resolved.reference, r);
    // Blobs come from the mirror too (the upstream does not have them).
    assert_eq!(
        client
            .fetch_blob(&resolved, &resolved.config)
            .await
            .unwrap(),
        mirrored.config.bytes
    );

    // Only the registry has v2: every mirror fails, the registry answers.
    let r2 = reference(&format!("{}/lib/app:v2", upstream.host()));
    let resolved = client.resolve(&r2, &Platform::host()).await.unwrap();
    assert_eq!(resolved.endpoint, upstream.host());
    assert_eq!(resolved.manifest_digest, direct.manifest.digest);

    // Nobody has v3: the registry's own error is reported.
    let err = client
        .resolve(
            &reference(&format!("{}/lib/app:v3", upstream.host())),
            &Platform::host(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { ref registry, .. } if *registry == upstream.host()),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_is_a_transport_error_naming_the_host() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let tmp = tempfile::tempdir().unwrap();
    let client = anonymous_client(tmp.path());
    let err = client
        .resolve(&reference(&format!("{dead}/a/b:c")), &Platform::host())
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Transport { .. }), "{err}");
    assert!(err.to_string().contains(&dead), "{err}");
}
