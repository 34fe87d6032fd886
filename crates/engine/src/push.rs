//! `push`: upload an image's layer blobs and config (skipping what the registry has) and then
//! its manifest, byte for byte as stored, so the pushed digest equals the local one.

use pelagos_image::{Digest, ImageRecord, Reference};
use pelagos_registry::{BlobDescriptor, Client};

use crate::error::{Error, Result};
use crate::Engine;

/// What happened to one blob.
#[derive(Debug, Clone)]
pub struct PushedBlob {
    /// Its digest.
    pub digest: Digest,
    /// Uploaded, or already present in the registry.
    pub uploaded: bool,
}

/// Pushes `image` to `target` (`registry/repo:tag`); returns the manifest digest.
pub async fn push(
    engine: &Engine,
    image: &ImageRecord,
    target: &Reference,
    on_blob: impl FnMut(&PushedBlob),
) -> Result<Digest> {
    push_with(engine, &engine.registry_client()?, image, target, on_blob).await
}

/// [`push`] through `client` (a daemon's, with the credentials its request carried).
pub async fn push_with(
    engine: &Engine,
    client: &Client,
    image: &ImageRecord,
    target: &Reference,
    mut on_blob: impl FnMut(&PushedBlob),
) -> Result<Digest> {
    let blobs = engine.images().blobs();
    let config_size = blobs.verify(&image.id)?;
    let mut all: Vec<BlobDescriptor> = image
        .layers
        .iter()
        .map(|l| BlobDescriptor {
            media_type: l.media_type.clone(),
            digest: l.digest.clone(),
            size: l.size,
        })
        .collect();
    all.push(BlobDescriptor {
        media_type: "application/vnd.oci.image.config.v1+json".into(),
        digest: image.id.clone(),
        size: config_size,
    });
    for desc in &all {
        if !blobs.has(&desc.digest) {
            return Err(Error::Invalid(format!(
                "cannot push {}: blob {} is not in the store",
                target, desc.digest
            )));
        }
        let uploaded = client
            .push_blob(target, desc, &blobs.blob_path(&desc.digest))
            .await?;
        on_blob(&PushedBlob {
            digest: desc.digest.clone(),
            uploaded,
        });
    }
    let manifest = std::fs::read(blobs.blob_path(&image.manifest_digest))
        .map_err(|e| Error::io(format!("read manifest {}", image.manifest_digest), e))?;
    let digest = client
        .push_manifest(target, &image.manifest_media_type, &manifest)
        .await?;
    let familiar = target.familiar();
    engine.emit(&pelagos_model::events::Event::image(
        "push", &familiar, &familiar,
    ));
    Ok(digest)
}
