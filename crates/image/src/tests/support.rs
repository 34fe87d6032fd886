//! Test helpers: stores in temporary directories, layer tars and whole images
//! built with the `tar` crate, and ways to look at what is on disk.

use std::fs;
use std::io::Write;
use std::path::Path;

use pelagos_layer::Compression;
use serde_json::json;

use crate::digest::{Algorithm, Digest};
use crate::images::{ImageRecord, ImageStore, LayerBlob, NewImage};
use crate::oci::{host_platform, media};
use crate::reference::Reference;

/// A store in its own temporary directory (removed on drop, even on failure).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: ImageStore,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    Fixture { dir, store }
}

pub fn sha(data: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, data)
}

/// A tar of files (`(path, content)`) and directories (paths ending in `/`).
pub fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A layer: its tar, its blob (compressed as asked) and descriptor.
#[derive(Clone)]
pub struct BuiltLayer {
    pub blob: Vec<u8>,
    pub desc: LayerBlob,
    pub diff_id: Digest,
}

pub fn layer(entries: &[(&str, &[u8])], compression: Compression) -> BuiltLayer {
    let tar = tar_of(entries);
    let (blob, media_type) = match compression {
        Compression::None => (tar.clone(), media::OCI_LAYER),
        Compression::Gzip => (gzip(&tar), media::OCI_LAYER_GZIP),
        Compression::Zstd => (zstd(&tar), media::OCI_LAYER_ZSTD),
    };
    BuiltLayer {
        desc: LayerBlob {
            media_type: media_type.to_owned(),
            digest: sha(&blob),
            size: blob.len() as u64,
        },
        diff_id: sha(&tar),
        blob,
    }
}

/// A complete image: layers, config and OCI manifest.
#[derive(Clone)]
pub struct BuiltImage {
    pub layers: Vec<BuiltLayer>,
    pub config: Vec<u8>,
    pub config_digest: Digest,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

/// An image of `layers`; `marker` goes into the config's Cmd so that images
/// with the same layers still get different ids.
pub fn image(layers: Vec<BuiltLayer>, marker: &str) -> BuiltImage {
    let (os, arch, variant) = host_platform();
    let mut config = json!({
        "architecture": arch,
        "os": os,
        "created": "2024-01-02T03:04:05Z",
        "config": { "Cmd": ["/bin/sh", "-c", marker] },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
    });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = sha(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {
            "mediaType": media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.desc.media_type,
            "digest": l.desc.digest.to_string(),
            "size": l.desc.size,
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    BuiltImage {
        manifest_digest: sha(&manifest),
        manifest,
        config_digest,
        config,
        layers,
    }
}

/// A one-layer image with one file whose content is `marker`.
pub fn small_image(marker: &str) -> BuiltImage {
    image(
        vec![layer(
            &[("etc/", b""), ("etc/marker", marker.as_bytes())],
            Compression::Gzip,
        )],
        marker,
    )
}

/// Stores an image the way a pull does: blobs, layers, then the record.
pub fn put(store: &ImageStore, img: &BuiltImage, tag: Option<&str>) -> ImageRecord {
    put_with(store, img, tag, None)
}

pub fn put_with(
    store: &ImageStore,
    img: &BuiltImage,
    tag: Option<&str>,
    repo_digest: Option<String>,
) -> ImageRecord {
    store
        .blobs()
        .put_bytes(&img.manifest_digest, &img.manifest)
        .unwrap();
    store
        .blobs()
        .put_bytes(&img.config_digest, &img.config)
        .unwrap();
    let mut parent: Option<Digest> = None;
    for l in &img.layers {
        let info = store
            .ingest_layer(
                &l.blob[..],
                &l.desc,
                &l.diff_id,
                parent.as_ref(),
                &mut |_| {},
            )
            .unwrap();
        parent = Some(info.chain_id);
    }
    store.put_image(new_image(img, tag, repo_digest)).unwrap()
}

pub fn new_image(img: &BuiltImage, tag: Option<&str>, repo_digest: Option<String>) -> NewImage {
    NewImage {
        manifest_digest: img.manifest_digest.clone(),
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        config_digest: img.config_digest.clone(),
        layers: img.layers.iter().map(|l| l.desc.clone()).collect(),
        diff_ids: img.layers.iter().map(|l| l.diff_id.clone()).collect(),
        repo_tag: tag.map(|t| Reference::parse(t).unwrap()),
        repo_digest,
    }
}

/// Names in a directory, sorted (empty if it does not exist).
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Asserts that the store holds nothing at all: no blob, layer, link,
/// image record, and no temporary leftovers.
pub fn assert_empty(store: &ImageStore) {
    let root = store.root();
    assert_eq!(
        names(&root.join("blobs/sha256")),
        Vec::<String>::new(),
        "blobs"
    );
    assert_eq!(
        names(&root.join("layers/sha256")),
        Vec::<String>::new(),
        "layers"
    );
    assert_eq!(names(&root.join("layers/l")), Vec::<String>::new(), "links");
    assert_eq!(names(&root.join("images")), Vec::<String>::new(), "images");
    assert_eq!(names(&root.join("tmp")), Vec::<String>::new(), "tmp");
    assert_eq!(names(&root.join("locks")), Vec::<String>::new(), "locks");
}

/// Writes an OCI image layout directory holding `images` (each with an
/// optional `org.opencontainers.image.ref.name`).
pub fn write_oci_dir(dir: &Path, images: &[(&BuiltImage, Option<&str>)]) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut manifests = Vec::new();
    for (img, name) in images {
        fs::write(blobs.join(img.manifest_digest.hex()), &img.manifest).unwrap();
        fs::write(blobs.join(img.config_digest.hex()), &img.config).unwrap();
        for l in &img.layers {
            fs::write(blobs.join(l.desc.digest.hex()), &l.blob).unwrap();
        }
        let mut d = json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": img.manifest_digest.to_string(),
            "size": img.manifest.len(),
        });
        if let Some(n) = name {
            d["annotations"] = json!({ "org.opencontainers.image.ref.name": n });
        }
        manifests.push(d);
    }
    let index = json!({ "schemaVersion": 2, "manifests": manifests });
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A tar of a directory tree (regular files and directories), paths relative to it.
pub fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}
