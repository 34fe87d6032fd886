//! `pull`: resolve a reference, fetch the config, stream every missing layer from the registry
//! through verification, decompression and unpacking (several at once), then record the image.
//! Nothing is recorded before every digest has been checked.

use std::sync::Arc;

use pelagos_image::{chain_ids, Digest, ImageRecord, LayerBlob, NewImage, Reference};
use pelagos_registry::{BlobDescriptor, Platform, ResolvedImage};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::Engine;

/// How many layers download at once (Docker's default is 3; a fourth keeps two cores busy
/// while one layer waits on the network).
pub const PARALLEL_LAYERS: usize = 4;

/// What a pull reports as it goes (progress bars, plain lines, API events).
#[derive(Debug, Clone)]
pub enum PullEvent {
    /// The reference resolved to a manifest.
    Resolved {
        /// Manifest digest (index digest when resolved through one).
        digest: Digest,
        /// Number of layers.
        layers: usize,
    },
    /// A layer already in the store.
    LayerExists {
        /// Position in the image.
        index: usize,
        /// Blob digest.
        digest: Digest,
    },
    /// A layer download begins.
    LayerStart {
        /// Position in the image.
        index: usize,
        /// Blob digest.
        digest: Digest,
        /// Compressed size.
        size: u64,
    },
    /// Bytes received so far for a layer.
    LayerProgress {
        /// Position in the image.
        index: usize,
        /// Bytes so far.
        done: u64,
    },
    /// A layer is verified, unpacked and committed.
    LayerDone {
        /// Position in the image.
        index: usize,
        /// Blob digest.
        digest: Digest,
    },
}

/// Receives [`PullEvent`]s from any thread.
pub trait PullProgress: Send + Sync {
    /// One event.
    fn event(&self, event: PullEvent);
}

/// Progress nobody watches.
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn event(&self, _: PullEvent) {}
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image as recorded.
    pub image: ImageRecord,
    /// The digest Docker prints ("Digest: ..."): the index's when resolved through one.
    pub digest: Digest,
    /// Whether anything new was stored (Docker's "Downloaded newer image" vs "up to date").
    pub downloaded: bool,
}

fn layer_blob(d: &BlobDescriptor) -> LayerBlob {
    LayerBlob {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size,
    }
}

/// Pulls `reference` for `platform` into the engine's store.
pub async fn pull(
    engine: &Engine,
    reference: &Reference,
    platform: &Platform,
    progress: Arc<dyn PullProgress>,
) -> Result<Pulled> {
    let client = engine.registry_client()?;
    let store = engine.images_arc();
    // Held until the image is recorded: a concurrent prune must not collect layers that are
    // committed but not yet referenced by any image.
    let _lease = store.lease()?;
    let resolved = Arc::new(client.resolve(reference, platform).await?);
    let repo_digest_value = resolved
        .index_digest
        .clone()
        .unwrap_or_else(|| resolved.manifest_digest.clone());
    progress.event(PullEvent::Resolved {
        digest: repo_digest_value.clone(),
        layers: resolved.layers.len(),
    });

    let config_bytes = if store.blobs().has(&resolved.config.digest) {
        None
    } else {
        Some(client.fetch_blob(&resolved, &resolved.config).await?)
    };
    let config_json: Vec<u8> = match config_bytes {
        Some(bytes) => bytes,
        None => std::fs::read(store.blobs().blob_path(&resolved.config.digest))
            .map_err(|e| Error::io(format!("read config {}", resolved.config.digest), e))?,
    };
    let diff_ids = diff_ids_of(&config_json, &resolved)?;
    let chains = chain_ids(&diff_ids);

    let mut downloaded = false;
    let limit = Arc::new(Semaphore::new(PARALLEL_LAYERS));
    let mut tasks = Vec::new();
    for (index, desc) in resolved.layers.iter().enumerate() {
        let have_layer = store.layer(&chains[index])?.is_some();
        if have_layer && store.blobs().has(&desc.digest) {
            progress.event(PullEvent::LayerExists {
                index,
                digest: desc.digest.clone(),
            });
            continue;
        }
        downloaded = true;
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let (client, store, resolved, progress) = (
            client.clone(),
            store.clone(),
            resolved.clone(),
            progress.clone(),
        );
        let desc = desc.clone();
        let diff_id = diff_ids[index].clone();
        let parent = index.checked_sub(1).map(|i| chains[i].clone());
        let handle = tokio::runtime::Handle::current();
        tasks.push(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            progress.event(PullEvent::LayerStart {
                index,
                digest: desc.digest.clone(),
                size: desc.size,
            });
            let reader = client.blob_reader(handle, &resolved, &desc);
            let mut report = |done: u64| progress.event(PullEvent::LayerProgress { index, done });
            let layer = store.ingest_layer(
                reader,
                &layer_blob(&desc),
                &diff_id,
                parent.as_ref(),
                &mut report,
            )?;
            progress.event(PullEvent::LayerDone {
                index,
                digest: desc.digest.clone(),
            });
            Ok::<_, Error>(layer)
        }));
    }
    let mut first_error = None;
    for t in tasks {
        let outcome = t
            .await
            .map_err(|e| Error::Task(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    // Layers first, then config and manifest: a record only ever points at verified content.
    store
        .blobs()
        .put_bytes(&resolved.config.digest, &config_json)?;
    store
        .blobs()
        .put_bytes(&resolved.manifest_digest, &resolved.manifest)?;
    let existing = store.get(&resolved.config.digest.to_string()).ok();
    let image = store.put_image(NewImage {
        manifest_digest: resolved.manifest_digest.clone(),
        manifest_media_type: resolved.manifest_media_type.clone(),
        config_digest: resolved.config.digest.clone(),
        layers: resolved.layers.iter().map(layer_blob).collect(),
        diff_ids,
        repo_tag: reference.tag.is_some().then(|| reference.clone()),
        repo_digest: Some(format!("{}@{}", reference.name(), repo_digest_value)),
    })?;
    let newly_tagged = reference.tag.is_some()
        && !existing
            .as_ref()
            .is_some_and(|e| e.repo_tags.contains(&reference.to_string()));
    Ok(Pulled {
        image,
        digest: repo_digest_value,
        downloaded: downloaded || existing.is_none() || newly_tagged,
    })
}

/// `rootfs.diff_ids` of an image config, checked against the manifest's layers.
fn diff_ids_of(config: &[u8], resolved: &ResolvedImage) -> Result<Vec<Digest>> {
    let parsed: serde_json::Value = serde_json::from_slice(config).map_err(|e| {
        Error::InvalidOption(format!(
            "image config {} is not JSON: {e}",
            resolved.config.digest
        ))
    })?;
    let ids = parsed["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| {
            Error::InvalidOption(format!(
                "image config {} has no rootfs.diff_ids",
                resolved.config.digest
            ))
        })?
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "image config {} has an invalid diff_id {v}",
                        resolved.config.digest
                    ))
                })
        })
        .collect::<Result<Vec<Digest>>>()?;
    if ids.len() != resolved.layers.len() {
        return Err(Error::InvalidOption(format!(
            "image {} lists {} layers but its config has {} diff_ids",
            resolved.manifest_digest,
            resolved.layers.len(),
            ids.len()
        )));
    }
    Ok(ids)
}

/// [`pull`] from a single-threaded tool: runs an I/O runtime for the pull and ends it, so the
/// caller is single-threaded again afterwards.
pub fn pull_blocking(
    engine: &Engine,
    reference: &Reference,
    platform: &Platform,
    progress: Arc<dyn PullProgress>,
) -> Result<Pulled> {
    let rt = crate::io_runtime()?;
    let out = rt.block_on(pull(engine, reference, platform, progress));
    drop(rt);
    out
}
