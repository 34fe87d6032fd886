//! Layer ingestion and the committed-layer tree: under a claim on the blob and the layer,
//! one streaming pass stores, verifies, decompresses, hashes and unpacks a blob, then commits.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use pelagos_layer::{Compression, LayerError, UnpackOptions, UnpackStats};
use sha2::{Digest as _, Sha256};

use crate::digest::{Algorithm, Digest, Verifier, VerifyError};
use crate::error::{io_err, StoreError};
use crate::fsutil::{self, TempGuard};
use crate::images::{chain_id, ImageStore, LayerBlob, LayerInfo, Lease};
use crate::locks::{self, ObjectKind, ObjectLock};
use crate::oci::media;
use crate::store::{BlobLock, BlobWriter};

/// Length of the `layers/l/<short>` names: 12 base32 characters carry 60
/// bits, and `l/<12>:` is 15 bytes, so 270 lower layers fit in one page.
pub(crate) const SHORT_ID_LEN: usize = 12;

/// Reads the raw blob, copying every byte into the blob writer (which hashes
/// and size-checks it) and reporting progress. A read error of the source is
/// kept so that it can be reported as such rather than as a decoding error.
struct Tee<'a, R> {
    inner: R,
    sink: &'a mut BlobWriter,
    total: u64,
    progress: &'a mut dyn FnMut(u64),
    read_error: Option<io::Error>,
    sink_failed: bool,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = &self.read_error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        if self.sink_failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "layer blob rejected while storing it",
            ));
        }
        let n = loop {
            match self.inner.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = io::Error::new(e.kind(), e.to_string());
                    self.read_error = Some(e);
                    return Err(copy);
                }
            }
        };
        if n > 0 {
            if let Err(e) = self.sink.write_all(&buf[..n]) {
                self.sink_failed = true;
                return Err(e);
            }
            self.total += n as u64;
            (self.progress)(self.total);
        }
        Ok(n)
    }
}

/// Hashes the uncompressed stream as it is read (the diff_id).
struct HashRead<R> {
    inner: R,
    verifier: Verifier,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // No expected size, so the verifier never refuses a write.
        self.verifier.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Why decoding or unpacking stopped.
enum StreamFail {
    Decode(io::Error),
    Unpack(LayerError),
}

/// Wraps `reader` in a streaming decoder.
pub(crate) fn decoder<'a>(
    compression: Compression,
    reader: impl Read + 'a,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

/// Reads up to 4 bytes and detects the compression; returns a reader that
/// replays them.
pub(crate) fn sniff<'a>(
    mut reader: impl Read + 'a,
) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut prefix = [0u8; 4];
    let mut len = 0;
    while len < prefix.len() {
        match reader.read(&mut prefix[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::detect(&prefix[..len]);
    Ok((
        compression,
        Box::new(io::Cursor::new(prefix[..len].to_vec()).chain(reader)),
    ))
}

/// Decompresses `raw`, hashes the result against `diff_id` and unpacks it
/// into `dest` (or only hashes it when `dest` is `None`).
fn decode_and_unpack(
    raw: impl Read,
    declared: Option<Compression>,
    diff_id: &Digest,
    dest: Option<&Path>,
    opts: &UnpackOptions,
) -> Result<(Option<UnpackStats>, Result<u64, VerifyError>), StreamFail> {
    let (compression, src): (Compression, Box<dyn Read + '_>) = match declared {
        Some(c) => (c, Box::new(raw)),
        None => sniff(raw).map_err(StreamFail::Decode)?,
    };
    let decoded = decoder(compression, src).map_err(StreamFail::Decode)?;
    let mut hashing = HashRead {
        inner: decoded,
        verifier: Verifier::new(diff_id.clone(), None),
    };
    let stats = match dest {
        Some(d) => Some(
            pelagos_layer::unpack(&mut hashing, Compression::None, d, opts)
                .map_err(StreamFail::Unpack)?,
        ),
        None => {
            io::copy(&mut hashing, &mut io::sink()).map_err(StreamFail::Decode)?;
            None
        }
    };
    Ok((stats, hashing.verifier.finish()))
}

/// The compression a media type declares; `None` means "detect it".
fn declared_compression(blob: &LayerBlob) -> Result<Option<Compression>, StoreError> {
    match Compression::from_media_type(&blob.media_type) {
        Some(c) => Ok(Some(c)),
        None if media::is_non_layer(&blob.media_type) => Err(StoreError::UnsupportedMediaType {
            digest: blob.digest.clone(),
            media_type: blob.media_type.clone(),
        }),
        None => Ok(None),
    }
}

/// Candidate short id number `attempt` for a chain id: 12 lowercase base32
/// characters of a hash, so concurrent writers of one layer agree on it.
pub(crate) fn short_id(chain: &Digest, attempt: u32) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let hash = Sha256::digest(format!("{chain}#{attempt}").as_bytes());
    let mut bits = [0u8; 8];
    bits.copy_from_slice(&hash[..8]);
    let mut v = u64::from_be_bytes(bits);
    let mut out = String::with_capacity(SHORT_ID_LEN);
    for _ in 0..SHORT_ID_LEN {
        out.push(char::from(ALPHABET[(v >> 59) as usize]));
        v <<= 5;
    }
    out
}

/// What [`ImageStore::claim_layer`] found.
#[derive(Debug)]
pub enum LayerClaim {
    /// The layer is committed and its blob stored.
    Present(LayerInfo),
    /// Something is missing; the caller now holds the claim and should fetch
    /// the blob and [`ingest`](LayerIngest::ingest) it.
    Missing(Box<LayerIngest>),
}

/// The claim on one layer blob and the layer unpacked from it, ready to
/// ingest; dropping it gives the claim up.
#[derive(Debug)]
pub struct LayerIngest {
    store: ImageStore,
    blob: LayerBlob,
    diff_id: Digest,
    parent: Option<Digest>,
    chain: Digest,
    /// The layer, when only its blob is missing.
    existing: Option<LayerInfo>,
    blob_lock: BlobLock,
    _layer_lock: ObjectLock,
    _lease: Lease,
}

impl LayerIngest {
    /// Whether the blob is already stored (only the layer is missing: the
    /// same blob sits on another parent elsewhere). Then it can be read from
    /// the store instead of fetched.
    pub fn blob_stored(&self) -> bool {
        self.store.blobs.has(&self.blob.digest)
    }

    /// Streams the blob: tees the raw bytes into a temporary blob file while
    /// verifying the blob's digest and size, decompresses per its media type
    /// (gzip, zstd, tar; an unknown type is detected from the magic bytes, a
    /// non-layer type such as a manifest or config is an error), hashes the
    /// uncompressed stream and checks it equals the diff_id, unpacks it into a
    /// temporary layer directory, and only when all of that succeeded commits
    /// blob and layer. A layer already committed is not unpacked again (the
    /// content is still verified and its blob stored). `progress` is called
    /// with the raw bytes read so far. Consumes the reader to EOF.
    pub fn ingest(
        self,
        reader: impl Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<LayerInfo, StoreError> {
        let LayerIngest {
            store,
            blob,
            diff_id,
            parent,
            chain,
            existing,
            blob_lock,
            _layer_lock,
            _lease,
        } = self;
        let declared = declared_compression(&blob)?;
        let tmp_layer = match existing {
            Some(_) => None,
            None => Some(store.temp_layer_dir()?),
        };
        let diff_dir: Option<PathBuf> = tmp_layer.as_ref().map(|g| g.path.join("diff"));

        let mut writer = blob_lock.writer(Some(blob.size))?;
        let mut tee = Tee {
            inner: reader,
            sink: &mut writer,
            total: 0,
            progress,
            read_error: None,
            sink_failed: false,
        };
        let outcome = decode_and_unpack(
            &mut tee,
            declared,
            &diff_id,
            diff_dir.as_deref(),
            &store.unpack,
        );
        // Read what is left, so that the blob digest can say whether a failure
        // came from corrupt content (and so that the reader ends at EOF).
        if !tee.sink_failed && tee.read_error.is_none() {
            let _ = io::copy(&mut tee, &mut io::sink());
        }
        if let Some(source) = tee.read_error.take() {
            return Err(StoreError::Read {
                digest: blob.digest.clone(),
                source,
            });
        }
        let verified = writer.finish()?;
        let stats = check_stream(outcome, &blob)?;

        // The blob first: a committed layer always has its blob stored.
        verified.commit()?;
        match (existing, tmp_layer) {
            (Some(info), _) => Ok(info),
            (None, Some(guard)) => {
                let stats = stats.unwrap_or_default();
                let info = LayerInfo {
                    chain_id: chain,
                    diff_id,
                    parent,
                    short_id: String::new(),
                    blob: Some(blob),
                    size: stats.bytes,
                };
                store.commit_layer(guard, info, stats.entries)
            }
            (None, None) => Err(StoreError::LayerCorrupt {
                chain_id: chain.clone(),
                path: store.layer_dir(&chain),
                reason: "internal error: no temporary layer directory".to_owned(),
            }),
        }
    }
}

/// Turns the outcome of decoding and unpacking into the unpack statistics or
/// the error that names what was wrong with the blob.
fn check_stream(
    outcome: Result<(Option<UnpackStats>, Result<u64, VerifyError>), StreamFail>,
    blob: &LayerBlob,
) -> Result<Option<UnpackStats>, StoreError> {
    let (stats, diff_check) = outcome.map_err(|f| match f {
        StreamFail::Decode(source) => StoreError::Decode {
            blob: blob.digest.clone(),
            source,
        },
        StreamFail::Unpack(source) => StoreError::Unpack {
            blob: blob.digest.clone(),
            source,
        },
    })?;
    diff_check.map_err(|e| match e {
        VerifyError::DigestMismatch { expected, actual } => StoreError::DiffIdMismatch {
            blob: blob.digest.clone(),
            expected,
            actual,
        },
        other => StoreError::Verify(other),
    })?;
    Ok(stats)
}

impl ImageStore {
    /// The committed layer with this chain id, if any.
    pub fn layer(&self, chain_id: &Digest) -> Result<Option<LayerInfo>, StoreError> {
        let dir = self.layer_dir(chain_id);
        let path = dir.join("layer.json");
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Directories are renamed into place complete; one without
                // layer.json was damaged by something else.
                return if dir.exists() {
                    Err(StoreError::LayerCorrupt {
                        chain_id: chain_id.clone(),
                        path,
                        reason: "layer.json is missing".to_owned(),
                    })
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let info: LayerInfo = serde_json::from_slice(&data).map_err(|source| StoreError::Json {
            what: path.display().to_string(),
            source,
        })?;
        if info.chain_id != *chain_id {
            return Err(StoreError::LayerCorrupt {
                chain_id: chain_id.clone(),
                path,
                reason: format!("layer.json describes layer {}", info.chain_id),
            });
        }
        Ok(Some(info))
    }

    /// Claims the right to store `blob` and unpack it as the layer `diff_id`
    /// on top of the layer `parent` (a chain id, which may still be
    /// downloading), first waiting (blocking the thread) while another thread
    /// or process holds that right for the blob or the layer. Returns
    /// [`LayerClaim::Present`] when both are, or by then have been, stored:
    /// then nothing needs fetching. The claim holds a [`Lease`].
    ///
    /// Claims of one blob or layer exclude each other; the blob is claimed
    /// before the layer, always, so claims never deadlock.
    pub fn claim_layer(
        &self,
        blob: &LayerBlob,
        diff_id: &Digest,
        parent: Option<&Digest>,
    ) -> Result<LayerClaim, StoreError> {
        let lease = self.lease()?;
        // The parent need not be committed yet: a layer's diff/ does not
        // depend on it, and parallel downloads commit out of order.
        // put_image checks the whole chain.
        let chain = chain_id(parent, diff_id);
        let blob_lock = self.blobs.lock(&blob.digest)?;
        let layer_lock = locks::lock_object(&self.root, ObjectKind::Layer, &chain)?;
        let existing = self.layer(&chain)?;
        if let Some(info) = &existing {
            if self.blobs.has(&blob.digest) {
                return Ok(LayerClaim::Present(info.clone()));
            }
        }
        Ok(LayerClaim::Missing(Box::new(LayerIngest {
            store: self.clone(),
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            chain,
            existing,
            blob_lock,
            _layer_lock: layer_lock,
            _lease: lease,
        })))
    }

    /// Streams one layer blob into the store: [`claim_layer`](Self::claim_layer),
    /// then, unless the layer and its blob are present (the reader is then
    /// left unread), [`LayerIngest::ingest`]. Returns the layer.
    pub(crate) fn ingest_layer(
        &self,
        reader: impl Read,
        blob: &LayerBlob,
        diff_id: &Digest,
        parent: Option<&Digest>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<LayerInfo, StoreError> {
        match self.claim_layer(blob, diff_id, parent)? {
            LayerClaim::Present(info) => Ok(info),
            LayerClaim::Missing(ingest) => ingest.ingest(reader, progress),
        }
    }

    /// A fresh temporary layer directory with an empty `diff/`.
    fn temp_layer_dir(&self) -> Result<TempGuard, StoreError> {
        let path = self.blobs.temp_path("layer");
        fs::create_dir(&path).map_err(io_err("create directory", &path))?;
        let guard = TempGuard::new(path);
        let diff = guard.path.join("diff");
        fs::create_dir(&diff).map_err(io_err("create directory", &diff))?;
        Ok(guard)
    }

    /// Makes the unpacked layer in `tmp` visible as `layers/<alg>/<hex>`.
    fn commit_layer(
        &self,
        mut tmp: TempGuard,
        mut info: LayerInfo,
        entries: u64,
    ) -> Result<LayerInfo, StoreError> {
        // The link first: it may dangle after a crash (prune removes it), but
        // a committed layer is never without its link.
        info.short_id = self.link_short_id(&info.chain_id)?;
        let meta_path = tmp.path.join("layer.json");
        let data = serde_json::to_vec_pretty(&info).map_err(|source| StoreError::Json {
            what: format!("layer.json of {} (serialising)", info.chain_id),
            source,
        })?;
        let mut file = File::create(&meta_path).map_err(io_err("create", &meta_path))?;
        file.write_all(&data).map_err(io_err("write", &meta_path))?;
        drop(file);
        fsutil::sync_tree(&tmp.path, entries + 2)?;

        let dest = self.layer_dir(&info.chain_id);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        }
        if fsutil::rename_noreplace(&tmp.path, &dest)? {
            tmp.disarm();
            if let Some(parent) = dest.parent() {
                fsutil::fsync_dir(parent)?;
            }
            return Ok(info);
        }
        // A concurrent writer committed this layer first: use theirs.
        drop(tmp);
        let winner = self
            .layer(&info.chain_id)?
            .ok_or_else(|| StoreError::LayerCorrupt {
                chain_id: info.chain_id.clone(),
                path: dest.clone(),
                reason: "exists but cannot be read".to_owned(),
            })?;
        if winner.diff_id != info.diff_id {
            return Err(StoreError::LayerCorrupt {
                chain_id: info.chain_id.clone(),
                path: dest,
                reason: format!("has diff_id {}, expected {}", winner.diff_id, info.diff_id),
            });
        }
        Ok(winner)
    }

    /// The `l/` link target for a chain id, relative to `layers/l`.
    fn link_target(chain: &Digest) -> PathBuf {
        PathBuf::from(format!("../{}/{}/diff", chain.algorithm(), chain.hex()))
    }

    /// Creates (or finds) `layers/l/<short>` → `../<alg>/<hex>/diff`. The
    /// first candidate is a hash of the chain id; a name taken by another
    /// layer (a 60-bit collision) moves on to the next candidate.
    fn link_short_id(&self, chain: &Digest) -> Result<String, StoreError> {
        let target = Self::link_target(chain);
        let dir = self.links_dir();
        for attempt in 0..64 {
            let short = short_id(chain, attempt);
            let link = dir.join(&short);
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => {
                    fsutil::fsync_dir(&dir)?;
                    return Ok(short);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::read_link(&link) {
                    Ok(t) if t == target => return Ok(short),
                    Ok(_) => continue,
                    Err(e) => return Err(io_err("read link", &link)(e)),
                },
                Err(e) => return Err(io_err("create link", &link)(e)),
            }
        }
        Err(StoreError::LayerCorrupt {
            chain_id: chain.clone(),
            path: dir,
            reason: "no free short id for the layer link".to_owned(),
        })
    }

    /// Checks (and after outside damage, restores) a layer's `l/` link.
    pub(crate) fn ensure_link(&self, layer: &LayerInfo) -> Result<(), StoreError> {
        let target = Self::link_target(&layer.chain_id);
        let link = self.links_dir().join(&layer.short_id);
        match fs::read_link(&link) {
            Ok(t) if t == target => Ok(()),
            Ok(t) => Err(StoreError::LayerCorrupt {
                chain_id: layer.chain_id.clone(),
                path: link,
                reason: format!("link points to {}, not to this layer", t.display()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match std::os::unix::fs::symlink(&target, &link) {
                    Ok(()) => fsutil::fsync_dir(&self.links_dir()),
                    // Restored concurrently: check what is there now.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        match fs::read_link(&link) {
                            Ok(t) if t == target => Ok(()),
                            _ => Err(StoreError::LayerCorrupt {
                                chain_id: layer.chain_id.clone(),
                                path: link,
                                reason: "link name taken by another layer".to_owned(),
                            }),
                        }
                    }
                    Err(e) => Err(io_err("create link", &link)(e)),
                }
            }
            Err(e) => Err(io_err("read link", &link)(e)),
        }
    }

    /// Chain ids of all committed layers.
    pub(crate) fn committed_layers(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.layers_dir().join(alg.as_str());
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                if let Some(d) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| Digest::from_parts(alg, n).ok())
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes a committed layer: renamed into `tmp/` first (atomic: from then
    /// on it is not committed), then its link and its files are removed.
    /// Returns the bytes it occupied.
    pub(crate) fn delete_layer(&self, chain: &Digest) -> Result<u64, StoreError> {
        let dir = self.layer_dir(chain);
        let short = self.layer(chain).ok().flatten().map(|l| l.short_id);
        let size = fsutil::disk_usage(&dir)?;
        let tmp = self.blobs.temp_path("deleted");
        match fs::rename(&dir, &tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err("move out of the store", &dir)(e)),
        }
        let guard = TempGuard::new(tmp);
        if let Some(parent) = dir.parent() {
            fsutil::fsync_dir(parent)?;
        }
        if let Some(short) = short {
            let link = self.links_dir().join(short);
            if fs::read_link(&link).is_ok_and(|t| t == Self::link_target(chain)) {
                fsutil::remove_any(&link)?;
            }
        }
        fsutil::remove_any(&guard.path)?;
        Ok(size)
    }

    /// Removes `l/` links that are not the link of a committed layer (left by
    /// a crash between linking and committing, or by a deletion).
    pub(crate) fn clean_links(&self) -> Result<u64, StoreError> {
        let dir = self.links_dir();
        let mut freed = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(target) = fs::read_link(&path) else {
                continue; // not a link: nothing this store made
            };
            let chain = target
                .to_str()
                .and_then(|t| t.strip_prefix("../"))
                .and_then(|t| t.strip_suffix("/diff"))
                .and_then(|t| t.split_once('/'))
                .and_then(|(alg, hex)| Digest::parse(&format!("{alg}:{hex}")).ok());
            let valid = match chain {
                Some(c) => self
                    .layer(&c)
                    .ok()
                    .flatten()
                    .is_some_and(|l| l.short_id == name),
                None => false,
            };
            if !valid {
                freed += fsutil::disk_usage(&path)?;
                fsutil::remove_any(&path)?;
            }
        }
        Ok(freed)
    }
}
