//! [`ImageStore`]: committed layers, image records and tags on disk, with
//! Docker's lookup, removal and pruning rules; crash-safe and multi-process safe.
//!
//! Locking: `<root>/lock` (exclusive flock) serialises every change of
//! `repositories.json` and `images/`. `<root>/gc.lock` guards against garbage
//! collection deleting objects a writer is about to reference: ingesting,
//! recording and archiving hold it shared (a [`Lease`]); [`ImageStore::prune`]
//! takes it exclusively and so waits for them. The order is always `gc.lock`
//! before `lock`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageConfiguration;
use pelagos_layer::UnpackOptions;
use serde::{Deserialize, Serialize};

use crate::digest::{Algorithm, Digest, Verifier};
use crate::error::{io_err, StoreError};
use crate::fsutil::{self, FileLock, LockMode};
use crate::oci::Manifest;
use crate::reference::Reference;
use crate::store::BlobStore;

/// Largest manifest or config document the store reads into memory.
pub(crate) const JSON_LIMIT: u64 = 32 << 20;

/// A compressed (or plain) layer blob as a manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerBlob {
    /// The descriptor's media type (`application/vnd.oci.image.layer.v1.tar+gzip`).
    pub media_type: String,
    /// Digest of the blob's exact bytes.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
}

/// A committed layer: `layers/<alg>/<chain hex>/{diff/,layer.json}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer's chain id (identifies it together with all layers below it).
    pub chain_id: Digest,
    /// Digest of the layer's uncompressed tar stream.
    pub diff_id: Digest,
    /// Chain id of the layer below, if any.
    pub parent: Option<Digest>,
    /// Name of the `layers/l/<short_id>` symlink to this layer's `diff/`.
    pub short_id: String,
    /// The blob the layer was unpacked from (the first writer's, when several
    /// compressed forms of one layer exist).
    pub blob: Option<LayerBlob>,
    /// Bytes of regular-file content in the layer.
    pub size: u64,
}

/// What [`ImageStore::put_image`] records.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Digest of the manifest blob.
    pub manifest_digest: Digest,
    /// Media type of the manifest.
    pub manifest_media_type: String,
    /// Digest of the config blob: the image id.
    pub config_digest: Digest,
    /// The manifest's layer blobs, bottom first.
    pub layers: Vec<LayerBlob>,
    /// The config's `rootfs.diff_ids`, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Tag to give the image (moved from any other image).
    pub repo_tag: Option<Reference>,
    /// Where it was pulled from: `registry/repo@sha256:...`.
    pub repo_digest: Option<String>,
}

/// A recorded image, as `docker images` / `docker inspect` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image id: the config blob's digest.
    pub id: Digest,
    /// Digest of the manifest the image was recorded from.
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// Tags, as full normalised references (`docker.io/library/busybox:latest`).
    pub repo_tags: Vec<String>,
    /// Repository digests (`docker.io/library/busybox@sha256:...`).
    pub repo_digests: Vec<String>,
    /// Layer blobs, bottom first.
    pub layers: Vec<LayerBlob>,
    /// Layer diff_ids, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Layer chain ids, bottom first.
    pub chain_ids: Vec<Digest>,
    /// Sum of the layers' unpacked sizes.
    pub size: u64,
    /// The config's creation time.
    pub created: Option<String>,
    /// The config's operating system.
    pub os: String,
    /// The config's architecture.
    pub architecture: String,
    /// The config's architecture variant.
    pub variant: Option<String>,
    /// When the image was first recorded here (RFC 3339).
    pub added: String,
}

/// One effect of [`ImageStore::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A tag or repo digest (full normalised form) was removed.
    Untagged(String),
    /// The image was deleted.
    Deleted(Digest),
}

/// What [`ImageStore::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Ids of the deleted images, sorted.
    pub deleted: Vec<Digest>,
    /// Bytes freed on disk (allocated blocks of everything deleted).
    pub reclaimed: u64,
}

/// A shared hold on the store's garbage-collection lock: while any lease is
/// alive, [`ImageStore::prune`] waits. A pull holds one from its first blob to
/// [`ImageStore::put_image`], so that objects it has written but not yet
/// referenced are not collected. Do not call `prune` while holding one (it
/// would wait for itself).
#[derive(Debug)]
pub struct Lease {
    _lock: FileLock,
}

/// OCI chain ids: `chain(0) = diff_id(0)`,
/// `chain(n) = sha256(chain(n-1) + " " + diff_id(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = chain_id(out.last(), diff_id);
        out.push(next);
    }
    out
}

/// The chain id of the layer `diff_id` on top of the layer `parent`.
pub(crate) fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::of_bytes(Algorithm::Sha256, format!("{p} {diff_id}").as_bytes()),
    }
}

/// `repositories.json`: repository name → (tag or digest reference → image id),
/// the shape of Docker's reference store.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Repositories {
    #[serde(rename = "Repositories", default)]
    repos: BTreeMap<String, BTreeMap<String, Digest>>,
}

impl Repositories {
    pub(crate) fn lookup(&self, name: &str, key: &str) -> Option<&Digest> {
        self.repos.get(name).and_then(|m| m.get(key))
    }

    fn set(&mut self, name: String, key: String, id: &Digest) {
        self.repos.entry(name).or_default().insert(key, id.clone());
    }

    fn remove(&mut self, key: &str) -> bool {
        let mut removed = false;
        for refs in self.repos.values_mut() {
            removed |= refs.remove(key).is_some();
        }
        self.repos.retain(|_, refs| !refs.is_empty());
        removed
    }

    /// Tags and repo digests of an image, sorted.
    pub(crate) fn refs_of(&self, id: &Digest) -> (Vec<String>, Vec<String>) {
        let mut tags = Vec::new();
        let mut digests = Vec::new();
        for refs in self.repos.values() {
            for (key, target) in refs {
                if target == id {
                    if key.contains('@') {
                        digests.push(key.clone());
                    } else {
                        tags.push(key.clone());
                    }
                }
            }
        }
        (tags, digests)
    }

    fn retain_images(&mut self, keep: impl Fn(&Digest) -> bool) -> bool {
        let mut changed = false;
        for refs in self.repos.values_mut() {
            let before = refs.len();
            refs.retain(|_, id| keep(id));
            changed |= refs.len() != before;
        }
        self.repos.retain(|_, refs| !refs.is_empty());
        changed
    }
}

/// `name:tag` key of a reference used as a tag.
fn tag_key(reference: &Reference) -> Result<(String, String), StoreError> {
    if reference.digest.is_some() {
        return Err(StoreError::InvalidTag {
            reference: reference.to_string(),
            reason: "a tag cannot pin a digest",
        });
    }
    let tag = reference
        .tag
        .as_deref()
        .unwrap_or(crate::reference::DEFAULT_TAG);
    Ok((reference.name(), format!("{}:{tag}", reference.name())))
}

/// `name@digest` key of a repo digest string.
fn repo_digest_key(s: &str) -> Result<(String, String), StoreError> {
    let r = Reference::parse(s)?;
    let digest = r.digest.as_ref().ok_or(StoreError::InvalidTag {
        reference: s.to_owned(),
        reason: "a repo digest must be <name>@<digest>",
    })?;
    Ok((r.name(), format!("{}@{digest}", r.name())))
}

/// The image store. Cheap to clone; every method may be called from several
/// threads and processes at once.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) unpack: UnpackOptions,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, and removes what killed
    /// writers left in `tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore, StoreError> {
        let root = root.into();
        let blobs = BlobStore::new(&root)?;
        let store = ImageStore {
            root,
            blobs,
            unpack: UnpackOptions::default(),
        };
        for dir in [
            store.layers_dir().join(Algorithm::Sha256.as_str()),
            store.links_dir(),
            store.images_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        store.blobs.gc_tmp()?;
        Ok(store)
    }

    /// Sets how layers are unpacked (e.g. `user.overlay.*` xattrs for rootless
    /// overlayfs, or skipping device nodes).
    pub fn set_unpack_options(&mut self, opts: UnpackOptions) {
        self.unpack = opts;
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store under the same root.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// `<root>/layers`: the directory relative to which [`lowerdirs`](Self::lowerdirs)
    /// are given (the working directory for the overlay mount).
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn links_dir(&self) -> PathBuf {
        self.layers_dir().join("l")
    }

    pub(crate) fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir()
            .join(chain_id.algorithm().as_str())
            .join(chain_id.hex())
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.images_dir().join(format!("{}.json", id.hex()))
    }

    fn repositories_path(&self) -> PathBuf {
        self.root.join("repositories.json")
    }

    /// Takes a [`Lease`]: garbage collection waits until it is dropped.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        Ok(Lease {
            _lock: fsutil::lock_blocking(&self.root.join("gc.lock"), false)?,
        })
    }

    fn lock_metadata(&self) -> Result<FileLock, StoreError> {
        fsutil::lock_blocking(&self.root.join("lock"), true)
    }

    pub(crate) fn repositories(&self) -> Result<Repositories, StoreError> {
        let path = self.repositories_path();
        match fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| StoreError::Json {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Repositories::default()),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn save_repositories(&self, repos: &Repositories) -> Result<(), StoreError> {
        let data = serde_json::to_vec_pretty(repos).map_err(|source| StoreError::Json {
            what: "repositories.json (serialising)".to_owned(),
            source,
        })?;
        fsutil::write_atomic(
            self.blobs.temp_path("json"),
            &self.repositories_path(),
            &data,
        )
    }

    /// The record as stored (no tags filled in), if present.
    fn read_record(&self, id: &Digest) -> Result<Option<ImageRecord>, StoreError> {
        let path = self.record_path(id);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let rec: ImageRecord =
            serde_json::from_slice(&data).map_err(|source| StoreError::Json {
                what: path.display().to_string(),
                source,
            })?;
        if rec.id != *id {
            return Err(StoreError::InvalidImage {
                image: id.to_string(),
                reason: format!("record {} names image {}", path.display(), rec.id),
            });
        }
        Ok(Some(rec))
    }

    /// Tags live only in `repositories.json` (one atomic file, so a tag move
    /// is one rename); the record file holds everything else.
    fn write_record(&self, rec: &ImageRecord) -> Result<(), StoreError> {
        let mut stored = rec.clone();
        stored.repo_tags.clear();
        stored.repo_digests.clear();
        let data = serde_json::to_vec_pretty(&stored).map_err(|source| StoreError::Json {
            what: format!("image record {} (serialising)", rec.id),
            source,
        })?;
        fsutil::write_atomic(
            self.blobs.temp_path("json"),
            &self.record_path(&rec.id),
            &data,
        )
    }

    /// Ids of all recorded images.
    fn image_ids(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.images_dir();
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let alg = match hex.len() {
                64 => Algorithm::Sha256,
                128 => Algorithm::Sha512,
                _ => continue,
            };
            if let Ok(d) = Digest::from_parts(alg, hex) {
                ids.push(d);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn read_all_records(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let mut out = Vec::new();
        for id in self.image_ids()? {
            // Deleted between listing and reading: not an error.
            if let Some(rec) = self.read_record(&id)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    fn with_refs(mut rec: ImageRecord, repos: &Repositories) -> ImageRecord {
        let (tags, digests) = repos.refs_of(&rec.id);
        rec.repo_tags = tags;
        rec.repo_digests = digests;
        rec
    }

    /// Reads a whole blob (at most `limit` bytes) and checks it against its digest.
    pub(crate) fn read_blob_verified(
        &self,
        digest: &Digest,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let path = self.blobs.blob_path(digest);
        let file = self.blobs.open(digest, None)?;
        let mut data = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut data)
            .map_err(io_err("read", &path))?;
        if data.len() as u64 > limit {
            return Err(StoreError::Corrupt {
                digest: digest.clone(),
                path,
                reason: format!("larger than the {limit} bytes allowed for a JSON document"),
            });
        }
        let mut v = Verifier::new(digest.clone(), None);
        io::Write::write_all(&mut v, &data).map_err(io_err("hash", &path))?;
        v.finish().map_err(|e| StoreError::Corrupt {
            digest: digest.clone(),
            path,
            reason: e.to_string(),
        })?;
        Ok(data)
    }

    /// Records an image whose manifest, config and layer blobs are in `blobs/`
    /// and whose layers are committed, checking all of that and that manifest,
    /// config and `new` agree; tags it (moving the tag) and adds the repo
    /// digest. Idempotent: recording an image again only adds names (the first
    /// manifest recorded for an image id stays its manifest).
    pub fn put_image(&self, new: NewImage) -> Result<ImageRecord, StoreError> {
        // Objects verified below cannot be collected before they are referenced.
        let _lease = self.lease()?;
        let id = new.config_digest.clone();
        let invalid = |reason: String| StoreError::InvalidImage {
            image: id.to_string(),
            reason,
        };

        let manifest_bytes = self.read_blob_verified(&new.manifest_digest, JSON_LIMIT)?;
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|source| StoreError::Json {
                what: format!("manifest blob {}", new.manifest_digest),
                source,
            })?;
        if manifest.config.digest != id {
            return Err(invalid(format!(
                "manifest {} names config {}, not this image's",
                new.manifest_digest, manifest.config.digest
            )));
        }
        let manifest_layers: Vec<&Digest> = manifest.layers.iter().map(|l| &l.digest).collect();
        let given_layers: Vec<&Digest> = new.layers.iter().map(|l| &l.digest).collect();
        if manifest_layers != given_layers {
            return Err(invalid(format!(
                "manifest {} lists layers {:?}, the image record {:?}",
                new.manifest_digest,
                display_all(&manifest_layers),
                display_all(&given_layers)
            )));
        }

        let config_bytes = self.read_blob_verified(&id, JSON_LIMIT)?;
        let config = parse_config(&id, &config_bytes)?;
        let config_diff_ids = config_diff_ids(&id, &config)?;
        if config_diff_ids != new.diff_ids {
            return Err(invalid(format!(
                "config rootfs.diff_ids {:?} differ from the given diff_ids {:?}",
                display_all(&config_diff_ids.iter().collect::<Vec<_>>()),
                display_all(&new.diff_ids.iter().collect::<Vec<_>>())
            )));
        }
        if new.layers.len() != new.diff_ids.len() {
            return Err(invalid(format!(
                "{} layer blobs but {} diff_ids",
                new.layers.len(),
                new.diff_ids.len()
            )));
        }
        for blob in &new.layers {
            self.blobs.open(&blob.digest, Some(blob.size))?;
        }
        let chains = chain_ids(&new.diff_ids);
        let mut size = 0;
        for (chain, diff_id) in chains.iter().zip(&new.diff_ids) {
            let layer = self.layer(chain)?.ok_or_else(|| StoreError::LayerMissing {
                image: id.clone(),
                chain_id: chain.clone(),
                diff_id: diff_id.clone(),
            })?;
            size += layer.size;
        }
        let tag = new.repo_tag.as_ref().map(tag_key).transpose()?;
        let repo_digest = new
            .repo_digest
            .as_deref()
            .map(repo_digest_key)
            .transpose()?;

        let _meta = self.lock_metadata()?;
        let record = match self.read_record(&id)? {
            Some(existing) => existing,
            None => {
                let rec = ImageRecord {
                    id: id.clone(),
                    manifest_digest: new.manifest_digest.clone(),
                    manifest_media_type: new.manifest_media_type.clone(),
                    repo_tags: Vec::new(),
                    repo_digests: Vec::new(),
                    layers: new.layers.clone(),
                    diff_ids: new.diff_ids.clone(),
                    chain_ids: chains,
                    size,
                    created: config.created().clone(),
                    os: config.os().to_string(),
                    architecture: config.architecture().to_string(),
                    variant: config.variant().clone(),
                    added: fsutil::rfc3339_now(),
                };
                self.write_record(&rec)?;
                rec
            }
        };
        let mut repos = self.repositories()?;
        if tag.is_some() || repo_digest.is_some() {
            for (name, key) in tag.into_iter().chain(repo_digest) {
                repos.set(name, key, &id);
            }
            self.save_repositories(&repos)?;
        }
        Ok(Self::with_refs(record, &repos))
    }

    /// Tags the image `id` as `tag`, moving the tag from any other image.
    pub fn tag(&self, id: &Digest, tag: &Reference) -> Result<(), StoreError> {
        let (name, key) = tag_key(tag)?;
        let _meta = self.lock_metadata()?;
        if self.read_record(id)?.is_none() {
            return Err(StoreError::ImageNotFound(id.to_string()));
        }
        let mut repos = self.repositories()?;
        repos.set(name, key, id);
        self.save_repositories(&repos)
    }

    /// Docker's image lookup: a reference (`busybox` means
    /// `docker.io/library/busybox:latest`), `name@digest` (a repo digest), a
    /// full id `sha256:<hex>` or bare 64-hex id, or an unambiguous prefix of an
    /// id (at least 4 hex characters, optionally after `sha256:`).
    pub fn get(&self, name_or_id: &str) -> Result<ImageRecord, StoreError> {
        let repos = self.repositories()?;
        let (rec, _) = self.resolve(name_or_id, &repos)?;
        Ok(Self::with_refs(rec, &repos))
    }

    /// Like [`get`](Self::get); also returns the reference key it matched by
    /// name (`None` when it matched by id).
    fn resolve(
        &self,
        s: &str,
        repos: &Repositories,
    ) -> Result<(ImageRecord, Option<String>), StoreError> {
        let not_found = || StoreError::ImageNotFound(s.to_owned());
        if s.is_empty() {
            return Err(not_found());
        }
        let is_hex = |h: &str| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit());
        let is_lower_hex = |h: &str| is_hex(h) && h.bytes().all(|b| !b.is_ascii_uppercase());
        // "sha256:<hex>": a full id or an id prefix, never a name.
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            if let Some(hex) = s
                .strip_prefix(alg.as_str())
                .and_then(|r| r.strip_prefix(':'))
            {
                if hex.len() == alg.hex_len() {
                    let id = Digest::from_parts(alg, hex).map_err(|_| not_found())?;
                    let rec = self.read_record(&id)?.ok_or_else(not_found)?;
                    return Ok((rec, None));
                }
                if is_lower_hex(hex) {
                    return self.by_prefix(s, Some(alg), hex).map(|r| (r, None));
                }
                return Err(not_found());
            }
        }
        if s.len() == 64 && is_lower_hex(s) {
            let id = Digest::from_parts(Algorithm::Sha256, s).map_err(|_| not_found())?;
            let rec = self.read_record(&id)?.ok_or_else(not_found)?;
            return Ok((rec, None));
        }
        let prefix_ok = s.len() >= 4 && is_lower_hex(s);
        match Reference::parse(s) {
            Ok(r) => {
                let key = match &r.digest {
                    Some(d) => format!("{}@{d}", r.name()),
                    None => tag_key(&r)?.1,
                };
                if let Some(id) = repos.lookup(&r.name(), &key) {
                    // A tag left pointing at a deleted record is treated as absent.
                    if let Some(rec) = self.read_record(id)? {
                        return Ok((rec, Some(key)));
                    }
                }
                if prefix_ok {
                    return self.by_prefix(s, None, s).map(|r| (r, None));
                }
                Err(not_found())
            }
            Err(_) if prefix_ok => self.by_prefix(s, None, s).map(|r| (r, None)),
            Err(e) => Err(e.into()),
        }
    }

    fn by_prefix(
        &self,
        asked: &str,
        alg: Option<Algorithm>,
        hex: &str,
    ) -> Result<ImageRecord, StoreError> {
        let matches: Vec<Digest> = self
            .image_ids()?
            .into_iter()
            .filter(|id| alg.is_none_or(|a| id.algorithm() == a) && id.hex().starts_with(hex))
            .collect();
        match matches.as_slice() {
            [] => Err(StoreError::ImageNotFound(asked.to_owned())),
            [one] => self
                .read_record(one)?
                .ok_or_else(|| StoreError::ImageNotFound(asked.to_owned())),
            many => Err(StoreError::AmbiguousId {
                prefix: asked.to_owned(),
                count: many.len(),
            }),
        }
    }

    /// All images, most recently added first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let repos = self.repositories()?;
        let mut out: Vec<ImageRecord> = self
            .read_all_records()?
            .into_iter()
            .map(|r| Self::with_refs(r, &repos))
            .collect();
        out.sort_by(|a, b| b.added.cmp(&a.added).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The image's config, parsed.
    pub fn config(&self, image: &ImageRecord) -> Result<ImageConfiguration, StoreError> {
        parse_config(&image.id, &self.config_bytes(image)?)
    }

    /// The image's config blob, exactly as stored (and verified against the id).
    pub fn config_bytes(&self, image: &ImageRecord) -> Result<Vec<u8>, StoreError> {
        self.read_blob_verified(&image.id, JSON_LIMIT)
    }

    /// The image's layers as overlayfs lower directories, topmost first, as
    /// paths relative to [`layers_dir`](Self::layers_dir): `l/<short id>`.
    /// With 12-character short ids, 250 layers fit one 4096-byte mount option.
    pub fn lowerdirs(&self, image: &ImageRecord) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::with_capacity(image.chain_ids.len());
        for (chain, diff_id) in image.chain_ids.iter().zip(&image.diff_ids).rev() {
            let layer = self.layer(chain)?.ok_or_else(|| StoreError::LayerMissing {
                image: image.id.clone(),
                chain_id: chain.clone(),
                diff_id: diff_id.clone(),
            })?;
            self.ensure_link(&layer)?;
            out.push(format!("l/{}", layer.short_id));
        }
        Ok(out)
    }

    /// `docker rmi`. By tag or repo digest: removes that name; when it was the
    /// image's last tag, the image is deleted too (with its repo digests). By
    /// id: removes all names and deletes the image; an image with several tags
    /// needs `force`. An image `in_use` is refused without `force`; with
    /// `force` its names are removed but the image itself is kept until no
    /// container uses it (then `prune` collects it), since a container's
    /// overlay mount depends on its layers. Layers and blobs that no remaining
    /// image needs are deleted with the image, unless a pull holds a
    /// [`Lease`] (then `prune` reclaims them later).
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<Removal>, StoreError> {
        let _meta = self.lock_metadata()?;
        let mut repos = self.repositories()?;
        let (record, matched) = self.resolve(name_or_id, &repos)?;
        let id = record.id.clone();
        let (tags, digests) = repos.refs_of(&id);
        let busy = in_use(&id);
        let mut untag: Vec<String> = Vec::new();
        let delete;
        match matched {
            Some(key) => {
                let others = tags.iter().filter(|t| **t != key).count();
                if others > 0 {
                    untag.push(key);
                    delete = false;
                } else if busy {
                    if !force {
                        return Err(StoreError::InUse {
                            what: name_or_id.to_owned(),
                            id,
                        });
                    }
                    untag.push(key);
                    delete = false;
                } else {
                    untag.push(key.clone());
                    untag.extend(digests.into_iter().filter(|d| *d != key));
                    delete = true;
                }
            }
            None => {
                if tags.len() > 1 && !force {
                    return Err(StoreError::MultipleTags { id, tags });
                }
                if busy && !force {
                    return Err(StoreError::InUse {
                        what: name_or_id.to_owned(),
                        id,
                    });
                }
                untag.extend(tags);
                untag.extend(digests);
                delete = !busy;
            }
        }
        let mut out = Vec::new();
        for key in &untag {
            if repos.remove(key) {
                out.push(Removal::Untagged(key.clone()));
            }
        }
        if !untag.is_empty() {
            self.save_repositories(&repos)?;
        }
        if delete {
            let path = self.record_path(&id);
            fsutil::remove_any(&path)?;
            fsutil::fsync_dir(&self.images_dir())?;
            out.push(Removal::Deleted(id));
            // Never wait for a pull here: its lease may last minutes.
            if let Some(_gc) = fsutil::lock(&self.root.join("gc.lock"), LockMode::TryExclusive)? {
                let remaining = self.read_all_records()?;
                self.sweep(&remaining, Some(&record))?;
            }
        }
        Ok(out)
    }

    /// `docker image prune [-a]`: deletes dangling images (no tag and no repo
    /// digest), or with `all` every image, except those `in_use`; then every
    /// layer and blob no remaining image references, stale `layers/l` links,
    /// and what killed writers left in `tmp/`. Waits for [`Lease`]s.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<PruneReport, StoreError> {
        let _gc = fsutil::lock_blocking(&self.root.join("gc.lock"), true)?;
        let _meta = self.lock_metadata()?;
        let mut repos = self.repositories()?;
        let mut report = PruneReport::default();
        let mut remaining = Vec::new();
        let mut doomed = Vec::new();
        for rec in self.read_all_records()? {
            let (tags, digests) = repos.refs_of(&rec.id);
            let dangling = tags.is_empty() && digests.is_empty();
            if (all || dangling) && !in_use(&rec.id) {
                doomed.push(rec.id);
            } else {
                remaining.push(rec);
            }
        }
        // Names go first: a crash after this leaves unnamed images, never
        // names of missing images. Names of records already gone are dropped.
        let keep: HashSet<&Digest> = remaining.iter().map(|r| &r.id).collect();
        if repos.retain_images(|id| keep.contains(id)) {
            self.save_repositories(&repos)?;
        }
        for id in doomed {
            let path = self.record_path(&id);
            report.reclaimed += fsutil::disk_usage(&path)?;
            fsutil::remove_any(&path)?;
            report.deleted.push(id);
        }
        fsutil::fsync_dir(&self.images_dir())?;
        report.reclaimed += self.sweep(&remaining, None)?;
        report.reclaimed += self.blobs.gc_tmp_measured()?.1;
        crate::locks::clean_locks(&self.root)?;
        report.deleted.sort();
        Ok(report)
    }

    /// Deletes layers and blobs not referenced by `remaining`: all of them, or
    /// only those of the deleted image `only`. Returns bytes freed. Caller
    /// holds `gc.lock` exclusively.
    fn sweep(
        &self,
        remaining: &[ImageRecord],
        only: Option<&ImageRecord>,
    ) -> Result<u64, StoreError> {
        let mut keep_layers: HashSet<&Digest> = HashSet::new();
        let mut keep_blobs: HashSet<&Digest> = HashSet::new();
        for r in remaining {
            keep_layers.extend(&r.chain_ids);
            keep_blobs.insert(&r.id);
            keep_blobs.insert(&r.manifest_digest);
            keep_blobs.extend(r.layers.iter().map(|l| &l.digest));
        }
        let (layers, blobs) = match only {
            Some(r) => {
                let mut blobs = vec![r.id.clone(), r.manifest_digest.clone()];
                blobs.extend(r.layers.iter().map(|l| l.digest.clone()));
                (r.chain_ids.clone(), blobs)
            }
            None => (self.committed_layers()?, self.blobs.list()?),
        };
        let mut freed = 0;
        // Topmost first, so that a crash midway never leaves a layer whose
        // parent is gone (the parent stays until its children are deleted).
        for chain in layers.iter().rev() {
            if !keep_layers.contains(chain) {
                freed += self.delete_layer(chain)?;
            }
        }
        for blob in &blobs {
            if !keep_blobs.contains(blob) {
                let size = fsutil::disk_usage(&self.blobs.blob_path(blob))?;
                if self.blobs.remove(blob)? {
                    freed += size;
                }
            }
        }
        if only.is_none() {
            freed += self.clean_links()?;
        }
        Ok(freed)
    }
}

fn display_all(ds: &[&Digest]) -> Vec<String> {
    ds.iter().map(|d| d.to_string()).collect()
}

/// Parses a config blob with oci-spec's types.
pub(crate) fn parse_config(id: &Digest, data: &[u8]) -> Result<ImageConfiguration, StoreError> {
    serde_json::from_slice(data).map_err(|source| StoreError::Json {
        what: format!("image config blob {id}"),
        source,
    })
}

/// `rootfs.diff_ids` of a config, parsed.
pub(crate) fn config_diff_ids(
    id: &Digest,
    config: &ImageConfiguration,
) -> Result<Vec<Digest>, StoreError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|s| {
            Digest::parse(s).map_err(|e| StoreError::InvalidImage {
                image: id.to_string(),
                reason: format!("config rootfs.diff_ids: {e}"),
            })
        })
        .collect()
}
