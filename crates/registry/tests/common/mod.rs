//! Tiny OCI layouts built by hand for the registry tests (one gzip layer holding one file, a
//! config, a manifest, an optional index), and a client over a private, empty credential file.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use pelagos_image::{Algorithm, Digest};
use pelagos_registry::{AuthFile, Client, Credentials, Platform, RegistryConfig};

pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A blob written into a layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: Digest,
    pub bytes: Vec<u8>,
    pub media_type: String,
}

/// One single-platform image as written.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
    pub platform: Platform,
}

/// Deterministic incompressible bytes (xorshift), so gzip leaves the layer about this size.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write_blob(layout: &Path, bytes: Vec<u8>, media_type: &str) -> Blob {
    let digest = Digest::of_bytes(Algorithm::Sha256, &bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(digest.hex()), &bytes).unwrap();
    Blob {
        digest,
        bytes,
        media_type: media_type.to_owned(),
    }
}

fn layer_tar_gz(path: &str, content: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, path, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn descriptor(b: &Blob) -> serde_json::Value {
    serde_json::json!({"mediaType": b.media_type, "digest": b.digest.to_string(), "size": b.bytes.len()})
}

/// Writes the blobs of one image (layer with `file_content` at `/data`, config, manifest).
pub fn write_image(layout: &Path, platform: &str, file_content: &[u8]) -> Image {
    let platform = Platform::parse(platform).unwrap();
    let layer = write_blob(layout, layer_tar_gz("data", file_content), LAYER_GZIP);
    let layer_tar_digest = {
        // diff_id: digest of the uncompressed tar.
        let mut d = flate2::read::GzDecoder::new(&layer.bytes[..]);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut raw).unwrap();
        Digest::of_bytes(Algorithm::Sha256, &raw)
    };
    let mut config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Cmd": ["/data"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_tar_digest.to_string()]},
    });
    if let Some(v) = &platform.variant {
        config["variant"] = serde_json::json!(v);
    }
    let config = write_blob(
        layout,
        serde_json::to_vec(&config).unwrap(),
        pelagos_registry::OCI_CONFIG,
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": pelagos_registry::OCI_MANIFEST,
        "config": descriptor(&config),
        "layers": [descriptor(&layer)],
    });
    let manifest = write_blob(
        layout,
        serde_json::to_vec(&manifest).unwrap(),
        pelagos_registry::OCI_MANIFEST,
    );
    Image {
        manifest,
        config,
        layer,
        platform,
    }
}

fn write_index_json(layout: &Path, top: &Blob, tag: &str) {
    let mut d = descriptor(top);
    d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [d]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .unwrap();
}

/// A layout holding one image tagged `tag`.
pub fn single_image_layout(layout: &Path, tag: &str, file_content: &[u8]) -> Image {
    let image = write_image(layout, "linux/amd64", file_content);
    write_index_json(layout, &image.manifest, tag);
    image
}

/// A layout whose `tag` is an OCI index of a linux/amd64 and a linux/arm64/v8 image; returns
/// the index blob and the two images.
pub fn multi_platform_layout(layout: &Path, tag: &str) -> (Blob, Image, Image) {
    let amd64 = write_image(layout, "linux/amd64", b"amd64 payload\n");
    let arm64 = write_image(layout, "linux/arm64/v8", b"arm64 payload\n");
    let entry = |img: &Image| {
        let mut d = descriptor(&img.manifest);
        let mut p =
            serde_json::json!({"os": img.platform.os, "architecture": img.platform.architecture});
        if let Some(v) = &img.platform.variant {
            p["variant"] = serde_json::json!(v);
        }
        d["platform"] = p;
        d
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": pelagos_registry::OCI_INDEX,
        "manifests": [entry(&amd64), entry(&arm64)],
    });
    let index = write_blob(
        layout,
        serde_json::to_vec(&index).unwrap(),
        pelagos_registry::OCI_INDEX,
    );
    write_index_json(layout, &index, tag);
    (index, amd64, arm64)
}

/// A client with default settings and an empty credential file in `dir`.
pub fn anonymous_client(dir: &Path) -> Client {
    Client::new(
        &RegistryConfig::default(),
        AuthFile::load(&dir.join("config.json")).unwrap(),
    )
}

/// A client whose credential file in `dir` holds `user:password` for `registry`.
pub fn client_with_creds(dir: &Path, registry: &str, user: &str, password: &str) -> Client {
    let path: PathBuf = dir.join("auth").join("config.json");
    let mut auth = AuthFile::load(&path).unwrap();
    auth.set(
        registry,
        &Credentials {
            username: user.into(),
            password: password.into(),
        },
    )
    .unwrap();
    Client::new(&RegistryConfig::default(), AuthFile::load(&path).unwrap())
}

/// Reads a whole blob through `blob_reader` on a blocking thread.
pub async fn read_blob(
    client: &Client,
    image: &pelagos_registry::ResolvedImage,
    desc: &pelagos_registry::BlobDescriptor,
) -> (std::io::Result<Vec<u8>>, u32) {
    let mut reader = client.blob_reader(tokio::runtime::Handle::current(), image, desc);
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        // Small reads exercise the reader's buffering.
        let mut buf = [0u8; 7000];
        let result = loop {
            match std::io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break Ok(out),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
        };
        (result, reader.requests())
    })
    .await
    .unwrap()
}
