//! `pull`: resolve a reference, fetch the config, stream every missing layer from the registry
//! through verification, decompression and unpacking (several at once), then record the image.
//! Nothing is recorded before every digest has been checked; concurrent pulls fetch each blob
//! once.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pelagos_image::{
    chain_ids, BlobClaim, Digest, ImageRecord, ImageStore, LayerBlob, LayerClaim, NewImage,
    Reference,
};
use pelagos_registry::{BlobDescriptor, Client, Platform, ResolvedImage};
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
///
/// Concurrent pulls, in this process or others, fetch each blob once: every blob is claimed in
/// the store before it is fetched ([`ImageStore::claim_layer`], [`BlobStore::claim`]), and a
/// pull that finds a claim taken waits for it and then uses what the holder stored. Dropping
/// the future stops its downloads at their next read and gives their claims up.
///
/// [`BlobStore::claim`]: pelagos_image::BlobStore::claim
pub async fn pull(
    engine: &Engine,
    reference: &Reference,
    platform: &Platform,
    progress: Arc<dyn PullProgress>,
) -> Result<Pulled> {
    pull_with(
        engine,
        engine.registry_client()?,
        reference,
        platform,
        progress,
    )
    .await
}

/// [`pull`] through `client` (a daemon's, with the credentials its request carried).
pub async fn pull_with(
    engine: &Engine,
    client: Client,
    reference: &Reference,
    platform: &Platform,
    progress: Arc<dyn PullProgress>,
) -> Result<Pulled> {
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

    let config_json = config_blob(&client, &store, &resolved).await?;
    let diff_ids = diff_ids_of(&config_json, &resolved)?;
    let downloaded = fetch_layers(&client, &store, &resolved, &diff_ids, &progress).await?;

    // Layers and config first, then the manifest: a record only ever points at verified
    // content.
    if !store.blobs().has(&resolved.manifest_digest) {
        store
            .blobs()
            .put_bytes(&resolved.manifest_digest, &resolved.manifest)?;
    }
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
    let familiar = reference.familiar();
    engine.emit(&pelagos_model::events::Event::image(
        "pull", &familiar, &familiar,
    ));
    Ok(Pulled {
        image,
        digest: repo_digest_value,
        downloaded: downloaded || existing.is_none() || newly_tagged,
    })
}

/// The image config: read from the store, or fetched and stored under a claim, so that
/// concurrent pulls fetch it once.
async fn config_blob(
    client: &Client,
    store: &Arc<ImageStore>,
    resolved: &ResolvedImage,
) -> Result<Vec<u8>> {
    let digest = resolved.config.digest.clone();
    let claim = {
        let (store, digest) = (store.clone(), digest.clone());
        // Waiting for another pull's claim blocks.
        tokio::task::spawn_blocking(move || store.blobs().claim(&digest))
            .await
            .map_err(|e| Error::Task(e.to_string()))??
    };
    match claim {
        BlobClaim::Stored => std::fs::read(store.blobs().blob_path(&digest))
            .map_err(|e| Error::io(format!("read config {digest}"), e)),
        BlobClaim::Claimed(lock) => {
            let bytes = client.fetch_blob(resolved, &resolved.config).await?;
            lock.put_bytes(&bytes)?;
            Ok(bytes)
        }
    }
}

/// Fetches, verifies and unpacks every layer not in the store, [`PARALLEL_LAYERS`] at a time.
/// Returns whether any was missing when the pull began.
async fn fetch_layers(
    client: &Client,
    store: &Arc<ImageStore>,
    resolved: &Arc<ResolvedImage>,
    diff_ids: &[Digest],
    progress: &Arc<dyn PullProgress>,
) -> Result<bool> {
    let chains = chain_ids(diff_ids);
    let cancel = CancelOnDrop::default();
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
        let job = LayerJob {
            client: client.clone(),
            store: store.clone(),
            resolved: resolved.clone(),
            progress: progress.clone(),
            index,
            desc: desc.clone(),
            diff_id: diff_ids[index].clone(),
            parent: index.checked_sub(1).map(|i| chains[i].clone()),
            handle: tokio::runtime::Handle::current(),
            cancel: cancel.0.clone(),
        };
        tasks.push(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job.run()
        }));
    }
    let mut first_error = None;
    for t in tasks {
        let outcome = t
            .await
            .map_err(|e| Error::Task(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = outcome {
            // The others need not finish: the pull fails anyway.
            cancel.0.store(true, Ordering::SeqCst);
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(downloaded),
    }
}

/// One layer to bring into the store, on a blocking thread.
struct LayerJob {
    client: Client,
    store: Arc<ImageStore>,
    resolved: Arc<ResolvedImage>,
    progress: Arc<dyn PullProgress>,
    index: usize,
    desc: BlobDescriptor,
    diff_id: Digest,
    parent: Option<Digest>,
    handle: tokio::runtime::Handle,
    cancel: Arc<AtomicBool>,
}

impl LayerJob {
    /// Claims the layer (waiting while another pull holds it) and ingests it unless the
    /// holder stored it meanwhile; the blob comes from the store if it is there (the same
    /// blob on another parent), else from the registry.
    fn run(self) -> Result<()> {
        let (index, digest) = (self.index, self.desc.digest.clone());
        let blob = layer_blob(&self.desc);
        let ingest = match self
            .store
            .claim_layer(&blob, &self.diff_id, self.parent.as_ref())?
        {
            LayerClaim::Present(_) => {
                self.progress
                    .event(PullEvent::LayerExists { index, digest });
                return Ok(());
            }
            LayerClaim::Missing(ingest) => ingest,
        };
        self.progress.event(PullEvent::LayerStart {
            index,
            digest: digest.clone(),
            size: self.desc.size,
        });
        let progress = &self.progress;
        let mut report = |done: u64| progress.event(PullEvent::LayerProgress { index, done });
        let source: Box<dyn Read> = if ingest.blob_stored() {
            Box::new(self.store.blobs().open(&digest, Some(self.desc.size))?)
        } else {
            Box::new(
                self.client
                    .blob_reader(self.handle.clone(), &self.resolved, &self.desc),
            )
        };
        let reader = Cancellable {
            inner: source,
            cancel: &self.cancel,
        };
        ingest.ingest(reader, &mut report)?;
        self.progress.event(PullEvent::LayerDone { index, digest });
        Ok(())
    }
}

/// Set when the layer downloads should stop: when the pull's future is dropped (a cancelled
/// request), whose blocking workers would otherwise finish downloads nobody waits for, and
/// when one layer failed.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A reader that fails once the pull is cancelled, so that the ingest stops and gives its
/// claim up.
struct Cancellable<'a, R> {
    inner: R,
    cancel: &'a AtomicBool,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("the pull was cancelled"));
        }
        self.inner.read(buf)
    }
}

/// `rootfs.diff_ids` of an image config, checked against the manifest's layers.
fn diff_ids_of(config: &[u8], resolved: &ResolvedImage) -> Result<Vec<Digest>> {
    let parsed: serde_json::Value = serde_json::from_slice(config).map_err(|e| {
        Error::Invalid(format!(
            "image config {} is not JSON: {e}",
            resolved.config.digest
        ))
    })?;
    let ids = parsed["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "image config {} has no rootfs.diff_ids",
                resolved.config.digest
            ))
        })?
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "image config {} has an invalid diff_id {v}",
                        resolved.config.digest
                    ))
                })
        })
        .collect::<Result<Vec<Digest>>>()?;
    if ids.len() != resolved.layers.len() {
        return Err(Error::Invalid(format!(
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
