//! Tests of `save`, `load` (our archives, skopeo's docker-archive, OCI layout
//! tars, legacy docker-archives) and `import`.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::process::Command;

use pelagos_layer::Compression;
use serde_json::{json, Value};

use super::support::*;
use crate::archive::{import, load, save};
use crate::digest::VerifyError;
use crate::error::StoreError;
use crate::images::ImageStore;
use crate::oci::{host_platform, media};
use crate::reference::Reference;

/// The members of a tar: path → content.
fn members(tar: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, data);
    }
    out
}

#[test]
fn save_then_load_into_a_fresh_store_keeps_every_digest() {
    let src = fixture();
    let base = layer(
        &[("etc/", b""), ("etc/os-release", b"ID=test\n")],
        Compression::Gzip,
    );
    let one = put(
        &src.store,
        &image(
            vec![base.clone(), layer(&[("one", b"1")], Compression::Zstd)],
            "one",
        ),
        Some("example.com/app:one"),
    );
    let two = put(
        &src.store,
        &image(
            vec![base.clone(), layer(&[("two", b"2")], Compression::None)],
            "two",
        ),
        Some("busybox"),
    );
    let mut tar = Vec::new();
    save(
        &src.store,
        &[
            (one.clone(), one.repo_tags.clone()),
            (
                two.clone(),
                vec!["busybox:latest".into(), "busybox:extra".into()],
            ),
        ],
        &mut tar,
    )
    .unwrap();

    let m = members(&tar);
    let shared = format!("blobs/sha256/{}", base.desc.digest.hex());
    assert_eq!(m[&shared], base.blob, "layers are the stored blobs");
    let mut ar = tar::Archive::new(&tar[..]);
    let count = ar
        .entries()
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().unwrap().to_string_lossy() == shared)
        .count();
    assert_eq!(count, 1, "a shared layer is written once");
    assert_eq!(
        serde_json::from_slice::<Value>(&m["oci-layout"]).unwrap()["imageLayoutVersion"],
        "1.0.0"
    );
    let manifest: Value = serde_json::from_slice(&m["manifest.json"]).unwrap();
    assert_eq!(
        manifest[0]["Config"],
        format!("blobs/sha256/{}", one.id.hex())
    );
    assert_eq!(manifest[0]["RepoTags"], json!(["example.com/app:one"]));
    assert_eq!(
        manifest[1]["RepoTags"],
        json!(["busybox:latest", "busybox:extra"])
    );
    assert_eq!(
        manifest[1]["Layers"][1],
        format!("blobs/sha256/{}", two.layers[1].digest.hex())
    );
    let index: Value = serde_json::from_slice(&m["index.json"]).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "one index entry per tag");
    assert_eq!(
        entries[1]["annotations"]["io.containerd.image.name"],
        "docker.io/library/busybox:latest"
    );
    assert_eq!(
        entries[1]["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    let repositories: Value = serde_json::from_slice(&m["repositories"]).unwrap();
    assert_eq!(repositories["busybox"]["extra"], two.layers[1].digest.hex());

    // Plain, and gzip-compressed as `docker save | gzip` makes it.
    for input in [tar.clone(), gzip(&tar)] {
        let dst = fixture();
        let loaded = load(&dst.store, &input[..]).unwrap();
        assert_eq!(loaded.len(), 2);
        let (r1, n1) = &loaded[0];
        let (r2, n2) = &loaded[1];
        assert_eq!(n1, &vec!["example.com/app:one".to_owned()]);
        assert_eq!(
            n2,
            &vec![
                "docker.io/library/busybox:latest".to_owned(),
                "docker.io/library/busybox:extra".to_owned()
            ]
        );
        for (got, want) in [(r1, &one), (r2, &two)] {
            assert_eq!(got.id, want.id);
            assert_eq!(got.manifest_digest, want.manifest_digest);
            assert_eq!(got.layers, want.layers);
            assert_eq!(got.diff_ids, want.diff_ids);
            assert_eq!(got.chain_ids, want.chain_ids);
            assert_eq!(got.size, want.size);
        }
        assert_eq!(dst.store.get("busybox:extra").unwrap().id, two.id);
        let dirs = dst.store.lowerdirs(r2).unwrap();
        assert_eq!(
            fs::read(dst.store.layers_dir().join(&dirs[0]).join("two")).unwrap(),
            b"2"
        );
        // Loading again changes nothing.
        let again = load(&dst.store, &input[..]).unwrap();
        assert_eq!(again, loaded);
        assert_eq!(names(&dst.store.root().join("tmp")), Vec::<String>::new());
    }
}

/// Removes a file on drop.
struct RemoveOnDrop(std::path::PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn load_a_docker_archive_made_by_skopeo() {
    let f = fixture();
    let img = image(
        vec![
            layer(
                &[("etc/", b""), ("etc/hello", b"from skopeo\n")],
                Compression::Gzip,
            ),
            layer(
                &[
                    ("etc/", b""),
                    ("etc/.wh.hello", b""),
                    ("bin/", b""),
                    ("bin/x", b"x"),
                ],
                Compression::Gzip,
            ),
        ],
        "skopeo",
    );
    let oci = f.dir.path().join("oci");
    write_oci_dir(&oci, &[(&img, Some("v1"))]);
    let archive = f.dir.path().join("image.tar");
    let _cleanup = RemoveOnDrop(archive.clone());
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy"])
        .arg(format!("oci:{}:v1", oci.display()))
        .arg(format!(
            "docker-archive:{}:example.com/skopeo/test:v1",
            archive.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(&archive).unwrap();
    let m = members(&bytes);
    assert!(m.contains_key("manifest.json"));
    assert!(!m.contains_key("index.json"), "a pure docker-archive");

    let loaded = load(&f.store, fs::File::open(&archive).unwrap()).unwrap();
    assert_eq!(loaded.len(), 1);
    let (rec, loaded_names) = &loaded[0];
    assert_eq!(loaded_names, &vec!["example.com/skopeo/test:v1".to_owned()]);
    assert_eq!(rec.id, img.config_digest, "skopeo keeps the config");
    assert_eq!(
        rec.diff_ids,
        img.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    );
    let got = f.store.get("example.com/skopeo/test:v1").unwrap();
    assert_eq!(&got, rec);
    let dirs = f.store.lowerdirs(rec).unwrap();
    let top = f.store.layers_dir().join(&dirs[0]);
    assert_eq!(fs::read(top.join("bin/x")).unwrap(), b"x");
    let bottom = f.store.layers_dir().join(&dirs[1]);
    assert_eq!(
        fs::read(bottom.join("etc/hello")).unwrap(),
        b"from skopeo\n"
    );
    // The manifest recorded for it is one the store made, and it is stored.
    assert!(f.store.blobs().has(&rec.manifest_digest));
    assert_eq!(f.store.config_bytes(rec).unwrap(), img.config);
}

#[test]
fn load_an_oci_layout_with_a_nested_index() {
    let f = fixture();
    let img = image(vec![layer(&[("hello", b"oci")], Compression::Zstd)], "oci");
    let plain = small_image("second");
    let oci = f.dir.path().join("layout");
    write_oci_dir(&oci, &[(&plain, Some("latest"))]);
    // A multi-platform index: this host's manifest and a foreign one.
    let blobs = oci.join("blobs/sha256");
    fs::write(blobs.join(img.manifest_digest.hex()), &img.manifest).unwrap();
    fs::write(blobs.join(img.config_digest.hex()), &img.config).unwrap();
    fs::write(
        blobs.join(img.layers[0].desc.digest.hex()),
        &img.layers[0].blob,
    )
    .unwrap();
    let (os, arch, variant) = host_platform();
    let foreign = small_image("foreign");
    let nested = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [
            {
                "mediaType": media::OCI_MANIFEST,
                "digest": foreign.manifest_digest.to_string(),
                "size": foreign.manifest.len(),
                "platform": { "os": "linux", "architecture": "not-this-host" },
            },
            {
                "mediaType": media::OCI_MANIFEST,
                "digest": img.manifest_digest.to_string(),
                "size": img.manifest.len(),
                "platform": { "os": os, "architecture": arch, "variant": variant },
            },
        ],
    });
    let nested = serde_json::to_vec(&nested).unwrap();
    let nested_digest = sha(&nested);
    fs::write(blobs.join(nested_digest.hex()), &nested).unwrap();
    let mut index: Value =
        serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": media::OCI_INDEX,
        "digest": nested_digest.to_string(),
        "size": nested.len(),
        "annotations": { "org.opencontainers.image.ref.name": "example.com/multi:2" },
    }));
    fs::write(oci.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();

    let loaded = load(&f.store, &tar_dir(&oci)[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    // A bare tag in ref.name names no repository: the image stays untagged.
    assert_eq!(loaded[0].0.id, plain.config_digest);
    assert!(loaded[0].1.is_empty());
    assert_eq!(loaded[1].0.id, img.config_digest);
    assert_eq!(loaded[1].0.manifest_digest, img.manifest_digest);
    assert_eq!(loaded[1].1, vec!["example.com/multi:2".to_owned()]);
    assert!(
        !f.store.blobs().has(&foreign.config_digest),
        "the foreign platform is not loaded"
    );
    assert_eq!(
        f.store.get("example.com/multi:2").unwrap().id,
        img.config_digest
    );
}

#[test]
fn load_a_legacy_docker_archive_with_linked_layers() {
    let f = fixture();
    let base = layer(&[("base", b"legacy")], Compression::None);
    let top = layer(&[("top", b"gz")], Compression::Gzip);
    let a = image(vec![base.clone()], "a");
    let b = image(vec![base.clone(), top.clone()], "b");
    let mut t = tar::Builder::new(Vec::new());
    let add = |t: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, path, data).unwrap();
    };
    add(&mut t, "1111/layer.tar", &base.blob);
    add(&mut t, "3333/layer.tar", &top.blob);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    t.append_link(&mut h, "2222/layer.tar", "../1111/layer.tar")
        .unwrap();
    add(
        &mut t,
        &format!("{}.json", a.config_digest.hex()),
        &a.config,
    );
    add(
        &mut t,
        &format!("{}.json", b.config_digest.hex()),
        &b.config,
    );
    let manifest = json!([
        { "Config": format!("{}.json", a.config_digest.hex()), "RepoTags": ["legacy/a:1"], "Layers": ["1111/layer.tar"] },
        { "Config": format!("{}.json", b.config_digest.hex()), "RepoTags": null, "Layers": ["2222/layer.tar", "3333/layer.tar"] },
    ]);
    add(
        &mut t,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let tar = t.into_inner().unwrap();

    let loaded = load(&f.store, &zstd(&tar)[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].1, vec!["docker.io/legacy/a:1".to_owned()]);
    assert!(loaded[1].1.is_empty());
    let rb = &loaded[1].0;
    assert_eq!(rb.id, b.config_digest);
    // Uncompressed: the blob is the tar, its digest the diff_id.
    assert_eq!(rb.layers[0].digest, base.diff_id);
    assert_eq!(rb.layers[0].media_type, media::OCI_LAYER);
    assert_eq!(rb.layers[1].digest, top.desc.digest);
    assert_eq!(rb.layers[1].media_type, media::OCI_LAYER_GZIP);
    assert_eq!(
        loaded[0].0.chain_ids[0], rb.chain_ids[0],
        "one shared layer"
    );
    assert_eq!(names(&f.store.root().join("layers/sha256")).len(), 2);

    // A config whose name is not its digest is refused.
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(a.config.len() as u64);
    h.set_mode(0o644);
    t.append_data(
        &mut h,
        format!("{}.json", b.config_digest.hex()),
        &a.config[..],
    )
    .unwrap();
    let manifest = json!([{ "Config": format!("{}.json", b.config_digest.hex()), "Layers": [] }]);
    let data = serde_json::to_vec(&manifest).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    t.append_data(&mut h, "manifest.json", &data[..]).unwrap();
    let err = load(&fixture().store, &t.into_inner().unwrap()[..]).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
}

#[test]
fn load_refuses_tampered_content_and_stores_no_image() {
    let f = fixture();
    let mut img = small_image("tamper");
    // Same size, different bytes: the layer no longer matches its digest.
    let last = img.layers[0].blob.len() - 1;
    img.layers[0].blob[last] ^= 0xff;
    let oci = f.dir.path().join("bad");
    write_oci_dir(&oci, &[(&img, Some("example.com/bad:1"))]);
    let err = load(&f.store, &tar_dir(&oci)[..]).unwrap_err();
    assert!(
        matches!(err, StoreError::Verify(VerifyError::DigestMismatch { .. })),
        "{err}"
    );
    assert!(f.store.list().unwrap().is_empty());
    assert_eq!(
        names(&f.store.root().join("layers/sha256")),
        Vec::<String>::new()
    );
    assert_eq!(names(&f.store.root().join("tmp")), Vec::<String>::new());

    let err = load(&f.store, &b"not an archive at all"[..]).unwrap_err();
    assert!(matches!(err, StoreError::Archive(_)), "{err}");
}

#[test]
fn import_a_rootfs_with_changes() {
    let f = fixture();
    let s = &f.store;
    let rootfs = tar_of(&[
        ("bin/", b""),
        ("bin/app", b"#!/bin/sh\n"),
        ("etc/", b""),
        ("etc/motd", b"imported\n"),
    ]);
    let tag = Reference::parse("example.com/imported:v1").unwrap();
    let changes: Vec<String> = [
        r#"CMD ["/bin/app", "--serve"]"#,
        "ENTRYPOINT /bin/entry",
        "ENV PATH=/bin MODE=\"prod mode\"",
        "WORKDIR /srv",
        "USER nobody",
        "EXPOSE 8080/tcp",
        "LABEL maintainer=pelagos",
        "STOPSIGNAL SIGINT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rec = import(
        s,
        &zstd(&rootfs)[..],
        Some(&tag),
        &changes,
        Some("from a test"),
    )
    .unwrap();
    assert_eq!(rec.repo_tags, vec!["example.com/imported:v1".to_owned()]);
    assert_eq!(rec.diff_ids, vec![sha(&rootfs)]);
    assert_eq!(rec.layers[0].media_type, media::OCI_LAYER_GZIP);
    let (os, arch, _) = host_platform();
    assert_eq!((rec.os.as_str(), rec.architecture.as_str()), (os, arch));

    let config = s.config(&rec).unwrap();
    let c = config.config().as_ref().unwrap();
    assert_eq!(
        c.cmd().as_ref().unwrap(),
        &vec!["/bin/app".to_owned(), "--serve".to_owned()]
    );
    assert_eq!(
        c.entrypoint().as_ref().unwrap(),
        &vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "/bin/entry".to_owned()
        ]
    );
    assert_eq!(
        c.env().as_ref().unwrap(),
        &vec!["PATH=/bin".to_owned(), "MODE=prod mode".to_owned()]
    );
    assert_eq!(c.working_dir().as_deref(), Some("/srv"));
    assert_eq!(c.user().as_deref(), Some("nobody"));
    assert_eq!(
        c.exposed_ports().as_ref().unwrap(),
        &vec!["8080/tcp".to_owned()]
    );
    assert_eq!(c.labels().as_ref().unwrap()["maintainer"], "pelagos");
    assert_eq!(c.stop_signal().as_deref(), Some("SIGINT"));
    let history = config.history().as_ref().unwrap();
    assert_eq!(history[0].comment().as_deref(), Some("from a test"));
    assert_eq!(config.rootfs().diff_ids(), &vec![sha(&rootfs).to_string()]);

    // The layer is stored as gzip and unpacked.
    let blob = fs::read(s.blobs().blob_path(&rec.layers[0].digest)).unwrap();
    assert_eq!(&blob[..2], &[0x1f, 0x8b]);
    let dirs = s.lowerdirs(&rec).unwrap();
    assert_eq!(
        fs::read(s.layers_dir().join(&dirs[0]).join("etc/motd")).unwrap(),
        b"imported\n"
    );
    assert_eq!(s.get("example.com/imported:v1").unwrap(), rec);
    assert_eq!(names(&s.root().join("tmp")), Vec::<String>::new());

    // A bad change is refused before anything is stored.
    let g = fixture();
    let err = import(
        &g.store,
        &rootfs[..],
        None,
        &["RUN rm -rf /".to_owned()],
        None,
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::InvalidChange { .. }), "{err}");
    assert_empty(&g.store);
    // So is input that is not a tar, and nothing is left of it.
    let err = import(&g.store, &gzip(b"plain text, no tar")[..], None, &[], None).unwrap_err();
    assert!(matches!(err, StoreError::Unpack { .. }), "{err}");
    assert!(g.store.list().unwrap().is_empty());
    assert_eq!(
        names(&g.store.root().join("layers/sha256")),
        Vec::<String>::new()
    );
    assert_eq!(names(&g.store.root().join("tmp")), Vec::<String>::new());
    let _ = ImageStore::open(g.store.root()).unwrap();
}
