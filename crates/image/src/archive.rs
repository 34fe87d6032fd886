//! Image archives: `docker save` (docker-archive and OCI layout in one tar),
//! `docker load` (either, plain or compressed) and `docker import` (rootfs tarball).
//!
//! `load` never seeks its input: it spools the (decompressed) tar into the
//! store's `tmp/`, indexes the members, and reads them from there. Every
//! manifest, config and layer is verified against its digest (layers by
//! [`LayerIngest::ingest`]), and the whole operation holds a [`Lease`]
//! so that garbage collection cannot remove a layer between its ingestion
//! and the image record that references it.
//!
//! [`Lease`]: crate::Lease
//! [`LayerIngest::ingest`]: crate::LayerIngest::ingest

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use pelagos_layer::Compression;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::changes;
use crate::digest::{Algorithm, Digest, Hasher, Verifier};
use crate::error::{io_err, StoreError};
use crate::fsutil::{self, TempGuard};
use crate::images::{
    chain_id, config_diff_ids, parse_config, ImageRecord, ImageStore, LayerBlob, NewImage,
    JSON_LIMIT,
};
use crate::layers::{decoder, sniff};
use crate::oci::{host_platform, media, select_platform, Descriptor, Index, Manifest};
use crate::reference::Reference;

/// containerd's annotation with an image's full name.
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a reference (Docker writes the tag alone).
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// The path of a blob in an OCI layout.
fn blob_member(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

fn tar_header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(kind);
    h
}

/// A reference used as a name in an archive: it must carry a tag.
fn tag_ref(name: &str) -> Result<Reference, StoreError> {
    let r = Reference::parse(name)?;
    if r.digest.is_some() || r.tag.is_none() {
        return Err(StoreError::InvalidTag {
            reference: name.to_owned(),
            reason: "an archive names images by tag, not by digest",
        });
    }
    Ok(r)
}

/// `docker save`: writes one tar holding both a docker-archive (`manifest.json`
/// with `Config`/`RepoTags`/`Layers`, and `repositories`) and an OCI image
/// layout (`oci-layout`, `index.json` with `org.opencontainers.image.ref.name`
/// and `io.containerd.image.name` annotations, `blobs/sha256/*`), as Docker 25+
/// does. Layers are the stored (compressed) blobs, referenced from
/// `manifest.json` as `blobs/sha256/<hex>`; blobs shared by several images are
/// written once. `images` pairs each image with the tags to record for it.
pub fn save(
    store: &ImageStore,
    images: &[(ImageRecord, Vec<String>)],
    out: impl Write,
) -> Result<(), StoreError> {
    let _lease = store.lease()?;
    let mut tar = tar::Builder::new(out);
    let mut sizes: HashMap<Digest, u64> = HashMap::new();
    let mut dirs: HashSet<String> = HashSet::new();
    let mut index_entries: Vec<Value> = Vec::new();
    let mut docker_entries: Vec<ArchiveEntry> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();

    let mut put_blob = |tar: &mut tar::Builder<_>,
                        digest: &Digest,
                        known_size: Option<u64>|
     -> Result<u64, StoreError> {
        if let Some(&size) = sizes.get(digest) {
            return Ok(size);
        }
        for dir in [
            "blobs/".to_owned(),
            format!("blobs/{}/", digest.algorithm()),
        ] {
            if dirs.insert(dir.clone()) {
                let mut h = tar_header(0, 0o755, tar::EntryType::Directory);
                tar.append_data(&mut h, &dir, io::empty())
                    .map_err(StoreError::ArchiveWrite)?;
            }
        }
        let path = store.blobs().blob_path(digest);
        let file = store.blobs().open(digest, known_size)?;
        let size = file.metadata().map_err(io_err("stat", &path))?.len();
        let mut h = tar_header(size, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, blob_member(digest), BufReader::new(file))
            .map_err(StoreError::ArchiveWrite)?;
        sizes.insert(digest.clone(), size);
        Ok(size)
    };

    for (rec, tags) in images {
        let refs = tags
            .iter()
            .map(|t| tag_ref(t))
            .collect::<Result<Vec<_>, _>>()?;
        // Manifest and config are small: re-verify them, as they name the rest.
        store.read_blob_verified(&rec.manifest_digest, JSON_LIMIT)?;
        store.read_blob_verified(&rec.id, JSON_LIMIT)?;
        let manifest_size = put_blob(&mut tar, &rec.manifest_digest, None)?;
        put_blob(&mut tar, &rec.id, None)?;
        for layer in &rec.layers {
            put_blob(&mut tar, &layer.digest, Some(layer.size))?;
        }

        let descriptor = |annotations: Option<Value>| {
            let mut d = json!({
                "mediaType": rec.manifest_media_type,
                "digest": rec.manifest_digest.to_string(),
                "size": manifest_size,
            });
            if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
                obj.insert("annotations".to_owned(), a);
            }
            d
        };
        if refs.is_empty() {
            index_entries.push(descriptor(None));
        }
        for r in &refs {
            index_entries.push(descriptor(Some(json!({
                ANNOTATION_IMAGE_NAME: r.to_string(),
                ANNOTATION_REF_NAME: r.tag.clone().unwrap_or_default(),
            }))));
            if let Some(top) = rec.layers.last() {
                repositories.entry(r.familiar_name()).or_default().insert(
                    r.tag.clone().unwrap_or_default(),
                    top.digest.hex().to_owned(),
                );
            }
        }
        docker_entries.push(ArchiveEntry {
            config: blob_member(&rec.id),
            repo_tags: if refs.is_empty() {
                None
            } else {
                Some(refs.iter().map(Reference::familiar).collect())
            },
            layers: rec.layers.iter().map(|l| blob_member(&l.digest)).collect(),
        });
    }

    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": index_entries,
    });
    let docs: [(&str, Vec<u8>); 4] = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        ("index.json", to_json(&index, "index.json")?),
        ("manifest.json", to_json(&docker_entries, "manifest.json")?),
        ("repositories", to_json(&repositories, "repositories")?),
    ];
    for (name, data) in docs {
        let mut h = tar_header(data.len() as u64, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, name, data.as_slice())
            .map_err(StoreError::ArchiveWrite)?;
    }
    let mut out = tar.into_inner().map_err(StoreError::ArchiveWrite)?;
    out.flush().map_err(StoreError::ArchiveWrite)
}

fn to_json(v: &impl Serialize, what: &str) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|source| StoreError::Json {
        what: format!("{what} (serialising)"),
        source,
    })
}

/// A tar member in the spooled archive.
#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link { target: String, hard: bool },
    Other,
}

/// The archive, decompressed into `tmp/` and indexed by cleaned path.
struct Spool {
    guard: TempGuard,
    members: HashMap<String, Member>,
}

/// Lexically cleans an archive path (`./a//b/../c` → `a/c`); `None` if it
/// climbs above the root.
fn clean(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl Spool {
    fn create(store: &ImageStore, input: impl Read) -> Result<Spool, StoreError> {
        let path = store.blobs().temp_path("load");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create temporary file", &path))?;
        let guard = TempGuard::new(path.clone());
        let (compression, src) = sniff(input).map_err(StoreError::ArchiveRead)?;
        let mut decoded = decoder(compression, src).map_err(StoreError::ArchiveRead)?;
        copy_split(&mut decoded, &mut file, &path)?;

        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &path))?;
        let mut archive = tar::Archive::new(file);
        let malformed = |e: io::Error| StoreError::Archive(format!("not a valid tar: {e}"));
        let mut members = HashMap::new();
        for entry in archive.entries_with_seek().map_err(malformed)? {
            let entry = entry.map_err(malformed)?;
            let raw = entry.path().map_err(malformed)?;
            let Some(name) = raw.to_str().and_then(clean) else {
                continue; // not UTF-8 or escaping: nothing an image archive names
            };
            let kind = entry.header().entry_type();
            let link = || {
                entry
                    .link_name()
                    .ok()
                    .flatten()
                    .and_then(|l| l.to_str().map(str::to_owned))
            };
            let member = if kind.is_file() || kind.is_contiguous() {
                Member::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }
            } else if kind.is_symlink() || kind.is_hard_link() {
                match link() {
                    Some(target) => Member::Link {
                        target,
                        hard: kind.is_hard_link(),
                    },
                    None => Member::Other,
                }
            } else {
                Member::Other
            };
            members.insert(name, member);
        }
        Ok(Spool { guard, members })
    }

    fn has(&self, path: &str) -> bool {
        self.members.contains_key(path)
    }

    /// Offset and size of a regular-file member, following symlinks and
    /// hardlinks (docker-archives link repeated layers to the first copy).
    fn resolve(&self, path: &str) -> Result<(u64, u64), StoreError> {
        let mut cur = clean(path)
            .ok_or_else(|| StoreError::Archive(format!("path {path:?} escapes the archive")))?;
        for _ in 0..16 {
            match self.members.get(&cur) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link { target, hard }) => {
                    let joined = if *hard || target.starts_with('/') {
                        target.clone()
                    } else {
                        match cur.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target.clone(),
                        }
                    };
                    cur = clean(&joined).ok_or_else(|| {
                        StoreError::Archive(format!("link {path:?} escapes the archive"))
                    })?;
                }
                Some(Member::Other) => {
                    return Err(StoreError::Archive(format!(
                        "{path:?} is not a regular file in the archive"
                    )))
                }
                None => {
                    return Err(StoreError::Archive(format!(
                        "the archive has no member {path:?}"
                    )))
                }
            }
        }
        Err(StoreError::Archive(format!(
            "{path:?}: too many levels of links"
        )))
    }

    fn open(&self, path: &str) -> Result<impl Read, StoreError> {
        let (offset, size) = self.resolve(path)?;
        let spool = &self.guard.path;
        let mut file = File::open(spool).map_err(io_err("open", spool))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", spool))?;
        Ok(BufReader::with_capacity(64 * 1024, file.take(size)))
    }

    /// A small member (a JSON document), whole.
    fn read(&self, path: &str) -> Result<Vec<u8>, StoreError> {
        let (_, size) = self.resolve(path)?;
        if size > JSON_LIMIT {
            return Err(StoreError::Archive(format!(
                "{path:?} is {size} bytes, more than the {JSON_LIMIT} allowed for a JSON document"
            )));
        }
        let mut data = Vec::new();
        self.open(path)?
            .read_to_end(&mut data)
            .map_err(io_err("read", &self.guard.path))?;
        Ok(data)
    }

    /// An OCI layout blob, checked against its descriptor's digest and size.
    fn read_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, StoreError> {
        let path = blob_member(digest);
        let (_, actual) = self.resolve(&path).map_err(|_| {
            StoreError::Archive(format!("blob {digest} is missing from the archive"))
        })?;
        if actual != size {
            return Err(StoreError::Archive(format!(
                "blob {digest}: its descriptor says {size} bytes, the archive holds {actual}"
            )));
        }
        let data = self.read(&path)?;
        let mut v = Verifier::new(digest.clone(), Some(size));
        v.write_all(&data)
            .map_err(io_err("hash", &self.guard.path))?;
        v.finish()?;
        Ok(data)
    }

    /// Digest of a member's bytes.
    fn hash(&self, path: &str) -> Result<Digest, StoreError> {
        let mut h = Hasher::new(Algorithm::Sha256);
        io::copy(&mut self.open(path)?, &mut h).map_err(io_err("read", &self.guard.path))?;
        Ok(h.finish())
    }

    /// Compression of a member, from its magic bytes.
    fn compression(&self, path: &str) -> Result<Compression, StoreError> {
        let mut prefix = Vec::with_capacity(4);
        self.open(path)?
            .take(4)
            .read_to_end(&mut prefix)
            .map_err(io_err("read", &self.guard.path))?;
        Ok(Compression::detect(&prefix))
    }
}

/// Copies `from` to the file `to`, telling read errors (the archive) from
/// write errors (the store's disk).
fn copy_split(from: &mut impl Read, to: &mut File, path: &Path) -> Result<u64, StoreError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::ArchiveRead(e)),
        };
        to.write_all(&buf[..n]).map_err(io_err("write", path))?;
        total += n as u64;
    }
}

/// If an archive path names its content (`blobs/sha256/<hex>`, or Docker's
/// `<config hex>.json`), the content must hash to that name.
fn check_named_digest(path: &str, actual: &Digest, config: bool) -> Result<(), StoreError> {
    let cleaned = clean(path).unwrap_or_default();
    let named = match cleaned.split('/').collect::<Vec<_>>().as_slice() {
        ["blobs", alg, hex] => Digest::parse(&format!("{alg}:{hex}")).ok(),
        [file] if config => file
            .strip_suffix(".json")
            .and_then(|hex| Digest::from_parts(Algorithm::Sha256, hex).ok()),
        _ => None,
    };
    match named {
        Some(n) if n != *actual => Err(StoreError::Archive(format!(
            "{path:?} is named for {n} but its content hashes to {actual}"
        ))),
        _ => Ok(()),
    }
}

/// Names an OCI index entry gives its image: containerd's full name, else a
/// `ref.name` that is a whole reference (Docker writes just the tag there).
fn annotated_names(desc: &Descriptor) -> Vec<String> {
    let Some(a) = &desc.annotations else {
        return Vec::new();
    };
    if let Some(n) = a.get(ANNOTATION_IMAGE_NAME) {
        return vec![n.clone()];
    }
    match a.get(ANNOTATION_REF_NAME) {
        Some(n) if n.contains(':') || n.contains('/') => vec![n.clone()],
        _ => Vec::new(),
    }
}

/// Loaded images, merged by id, with their names.
#[derive(Default)]
struct Loaded {
    images: Vec<(Digest, Vec<String>)>,
}

impl Loaded {
    fn add(&mut self, id: &Digest, names: Vec<String>) {
        let slot = match self.images.iter().position(|(i, _)| i == id) {
            Some(p) => &mut self.images[p].1,
            None => {
                self.images.push((id.clone(), Vec::new()));
                match self.images.last_mut() {
                    Some(last) => &mut last.1,
                    None => return,
                }
            }
        };
        for n in names {
            if !slot.contains(&n) {
                slot.push(n);
            }
        }
    }
}

/// `docker load`: reads a docker-archive (`manifest.json`; layers as
/// `<x>/layer.tar`, `<hex>.tar` or `blobs/sha256/<hex>`, compressed or not,
/// symlinked or not) or an OCI image layout (`index.json`; for a nested index
/// the host's platform is picked), as a plain, gzip or zstd tar. When both
/// are present (Docker 25+ and [`save`]) the OCI layout is used, so manifest
/// digests survive, and `manifest.json` contributes its `RepoTags`. Verifies
/// every digest, ingests layers, records and tags the images. Returns each
/// image with its names (full normalised references).
pub fn load(
    store: &ImageStore,
    input: impl Read,
) -> Result<Vec<(ImageRecord, Vec<String>)>, StoreError> {
    let _lease = store.lease()?;
    let spool = Spool::create(store, input)?;
    let has_index = spool.has("index.json");
    let has_manifest = spool.has("manifest.json");
    if !has_index && !has_manifest {
        return Err(StoreError::Archive(
            "neither manifest.json (docker-archive) nor index.json (OCI layout) at the top of the archive"
                .to_owned(),
        ));
    }

    // docker-archive entries with their configs (their digests are what ties
    // them to OCI manifests).
    let mut docker = Vec::new();
    if has_manifest {
        let entries: Vec<ArchiveEntry> = serde_json::from_slice(&spool.read("manifest.json")?)
            .map_err(|source| StoreError::Json {
                what: "manifest.json in the archive".to_owned(),
                source,
            })?;
        for entry in entries {
            let config = spool.read(&entry.config)?;
            let digest = Digest::of_bytes(Algorithm::Sha256, &config);
            check_named_digest(&entry.config, &digest, true)?;
            docker.push((entry, digest, config));
        }
    }
    let docker_names = |id: &Digest| -> Vec<String> {
        docker
            .iter()
            .filter(|(_, d, _)| d == id)
            .flat_map(|(e, _, _)| e.repo_tags.clone().unwrap_or_default())
            .collect()
    };

    let mut loaded = Loaded::default();
    if has_index {
        let index: Index =
            serde_json::from_slice(&spool.read("index.json")?).map_err(|source| {
                StoreError::Json {
                    what: "index.json in the archive".to_owned(),
                    source,
                }
            })?;
        for desc in &index.manifests {
            let Some((manifest_desc, bytes)) = resolve_manifest(&spool, desc, 0)? else {
                continue; // not an image (an artifact, a signature...)
            };
            let rec = load_oci_manifest(store, &spool, &manifest_desc, &bytes)?;
            let mut names = annotated_names(desc);
            names.extend(docker_names(&rec.id));
            loaded.add(&rec.id, names);
        }
    }
    for (entry, digest, config) in &docker {
        if loaded.images.iter().any(|(id, _)| id == digest) {
            continue;
        }
        let rec = load_docker_entry(store, &spool, entry, digest, config)?;
        loaded.add(&rec.id, entry.repo_tags.clone().unwrap_or_default());
    }
    if loaded.images.is_empty() {
        return Err(StoreError::Archive("the archive holds no image".to_owned()));
    }

    let mut out = Vec::new();
    for (id, names) in loaded.images {
        let mut full = Vec::new();
        for name in names {
            let r = tag_ref(&name)?;
            store.tag(&id, &r)?;
            let s = r.to_string();
            if !full.contains(&s) {
                full.push(s);
            }
        }
        out.push((store.get(&id.to_string())?, full));
    }
    Ok(out)
}

/// Follows an index entry to an image manifest (picking the host platform in
/// nested indexes); `None` for entries that are not images.
fn resolve_manifest(
    spool: &Spool,
    desc: &Descriptor,
    depth: u32,
) -> Result<Option<(Descriptor, Vec<u8>)>, StoreError> {
    let mt = desc.media_type.as_deref().unwrap_or("");
    if !mt.is_empty() && !media::is_manifest(mt) && !media::is_index(mt) {
        return Ok(None);
    }
    let bytes = spool.read_blob(&desc.digest, desc.size)?;
    let is_index = if mt.is_empty() {
        // Untyped descriptor: an index has "manifests", a manifest "config".
        let v: Value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what: format!("blob {} in the archive", desc.digest),
            source,
        })?;
        if v.get("manifests").is_some() {
            true
        } else if v.get("config").is_some() {
            false
        } else {
            return Ok(None);
        }
    } else {
        media::is_index(mt)
    };
    if !is_index {
        return Ok(Some((desc.clone(), bytes)));
    }
    if depth >= 4 {
        return Err(StoreError::Archive(format!(
            "index {} nests indexes too deeply",
            desc.digest
        )));
    }
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        what: format!("index {} in the archive", desc.digest),
        source,
    })?;
    let chosen = select_platform(&index.manifests).ok_or_else(|| {
        let (os, arch, variant) = host_platform();
        StoreError::NoMatchingPlatform {
            index: desc.digest.clone(),
            wanted: match variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            },
            available: index
                .manifests
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map_or_else(|| "unknown".to_owned(), |p| p.display())
                })
                .collect(),
        }
    })?;
    resolve_manifest(spool, chosen, depth + 1)
}

/// Ingests the layers of an image that are not in the store yet, bottom first.
fn ingest_layers(
    store: &ImageStore,
    spool: &Spool,
    layers: &[LayerBlob],
    diff_ids: &[Digest],
    paths: &[String],
) -> Result<(), StoreError> {
    let mut parent: Option<Digest> = None;
    for ((blob, diff_id), path) in layers.iter().zip(diff_ids).zip(paths) {
        let chain = chain_id(parent.as_ref(), diff_id);
        let have = store.layer(&chain)?.is_some() && store.blobs().has(&blob.digest);
        if !have {
            let reader = spool.open(path).map_err(|e| match e {
                StoreError::Archive(_) => StoreError::Archive(format!(
                    "layer blob {} ({path:?}) is missing from the archive",
                    blob.digest
                )),
                other => other,
            })?;
            store.ingest_layer(reader, blob, diff_id, parent.as_ref(), &mut |_| {})?;
        }
        parent = Some(chain);
    }
    Ok(())
}

fn store_blob(store: &ImageStore, digest: &Digest, data: &[u8]) -> Result<(), StoreError> {
    if !store.blobs().has(digest) {
        store.blobs().put_bytes(digest, data)?;
    }
    Ok(())
}

/// Loads one image from an OCI layout manifest.
fn load_oci_manifest(
    store: &ImageStore,
    spool: &Spool,
    desc: &Descriptor,
    bytes: &[u8],
) -> Result<ImageRecord, StoreError> {
    let manifest: Manifest = serde_json::from_slice(bytes).map_err(|source| StoreError::Json {
        what: format!("manifest {} in the archive", desc.digest),
        source,
    })?;
    let config_digest = manifest.config.digest.clone();
    let config_bytes = spool.read_blob(&config_digest, manifest.config.size)?;
    let config = parse_config(&config_digest, &config_bytes)?;
    let diff_ids = config_diff_ids(&config_digest, &config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(StoreError::InvalidImage {
            image: config_digest.to_string(),
            reason: format!(
                "manifest {} has {} layers, its config {} diff_ids",
                desc.digest,
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    store_blob(store, &desc.digest, bytes)?;
    store_blob(store, &config_digest, &config_bytes)?;
    let layers: Vec<LayerBlob> = manifest
        .layers
        .iter()
        .map(|d| LayerBlob {
            media_type: d.media_type.clone().unwrap_or_default(),
            digest: d.digest.clone(),
            size: d.size,
        })
        .collect();
    let paths: Vec<String> = layers.iter().map(|l| blob_member(&l.digest)).collect();
    ingest_layers(store, spool, &layers, &diff_ids, &paths)?;
    let media_type = desc
        .media_type
        .clone()
        .or(manifest.media_type)
        .unwrap_or_else(|| media::OCI_MANIFEST.to_owned());
    store.put_image(NewImage {
        manifest_digest: desc.digest.clone(),
        manifest_media_type: media_type,
        config_digest,
        layers,
        diff_ids,
        repo_tag: None,
        repo_digest: None,
    })
}

/// Loads one image of a docker-archive, making an OCI manifest for it.
fn load_docker_entry(
    store: &ImageStore,
    spool: &Spool,
    entry: &ArchiveEntry,
    config_digest: &Digest,
    config_bytes: &[u8],
) -> Result<ImageRecord, StoreError> {
    let config = parse_config(config_digest, config_bytes)?;
    let diff_ids = config_diff_ids(config_digest, &config)?;
    if diff_ids.len() != entry.layers.len() {
        return Err(StoreError::InvalidImage {
            image: config_digest.to_string(),
            reason: format!(
                "manifest.json lists {} layers, the config {} diff_ids",
                entry.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
        let (_, size) = spool.resolve(path)?;
        // An uncompressed layer is its own blob: its digest is the diff_id
        // (which ingestion verifies); a compressed one must be hashed first.
        let (digest, media_type) = match spool.compression(path)? {
            Compression::None => (diff_id.clone(), media::OCI_LAYER),
            Compression::Gzip => (spool.hash(path)?, media::OCI_LAYER_GZIP),
            Compression::Zstd => (spool.hash(path)?, media::OCI_LAYER_ZSTD),
        };
        check_named_digest(path, &digest, false)?;
        layers.push(LayerBlob {
            media_type: media_type.to_owned(),
            digest,
            size,
        });
    }
    store_blob(store, config_digest, config_bytes)?;
    ingest_layers(store, spool, &layers, &diff_ids, &entry.layers)?;
    let manifest_digest = store_oci_manifest(store, config_digest, config_bytes.len(), &layers)?;
    store.put_image(NewImage {
        manifest_digest,
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        config_digest: config_digest.clone(),
        layers,
        diff_ids,
        repo_tag: None,
        repo_digest: None,
    })
}

/// Hashes and counts what passes through.
struct HashWrite<W> {
    inner: W,
    hasher: Hasher,
    count: u64,
}

impl<W: Write> Write for HashWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a
/// one-layer image. The layer is stored as a gzip blob; the config has the
/// host's os/architecture, `rootfs.diff_ids`, a history entry with `message`
/// (default `Imported from -`), and `changes` applied (Docker's `--change`
/// subset: CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL;
/// CMD and ENTRYPOINT in JSON or shell form). Tagged `tag` if given.
pub fn import(
    store: &ImageStore,
    input: impl Read,
    tag: Option<&Reference>,
    changes: &[String],
    message: Option<&str>,
) -> Result<ImageRecord, StoreError> {
    let (os, arch, variant) = host_platform();
    let mut base = json!({"architecture": arch, "os": os, "config": {}});
    if let (Some(v), Some(obj)) = (variant, base.as_object_mut()) {
        obj.insert("variant".to_owned(), Value::String(v.to_owned()));
    }
    append_layer(
        store,
        base,
        &[],
        input,
        tag,
        changes,
        message.unwrap_or("Imported from -"),
        None,
    )
}

/// `docker commit`: `base` plus one layer read from `layer` (a tar in OCI form: whiteouts as
/// `.wh.` entries, plain or compressed), with `changes` applied to the config, a history entry
/// with `message` and `author`. The new image shares every layer of `base`.
pub fn commit(
    store: &ImageStore,
    base: &ImageRecord,
    layer: impl Read,
    tag: Option<&Reference>,
    changes: &[String],
    message: Option<&str>,
    author: Option<&str>,
) -> Result<ImageRecord, StoreError> {
    let config: Value = serde_json::from_slice(&store.config_bytes(base)?)
        .map_err(|e| StoreError::Archive(format!("config of {}: {e}", base.id)))?;
    append_layer(
        store,
        config,
        &base.layers,
        layer,
        tag,
        changes,
        message.unwrap_or(""),
        author,
    )
}

/// Writes an OCI image manifest for a config and layers into the blob store; its digest.
fn store_oci_manifest(
    store: &ImageStore,
    config_digest: &Digest,
    config_size: usize,
    layers: &[LayerBlob],
) -> Result<Digest, StoreError> {
    let descriptor = |media_type: &str, digest: &Digest, size: u64| Descriptor {
        media_type: Some(media_type.to_owned()),
        digest: digest.clone(),
        size,
        annotations: None,
        platform: None,
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_owned()),
        config: descriptor(media::OCI_CONFIG, config_digest, config_size as u64),
        layers: layers
            .iter()
            .map(|l| descriptor(&l.media_type, &l.digest, l.size))
            .collect(),
    };
    let manifest_bytes = to_json(&manifest, "manifest")?;
    let manifest_digest = Digest::of_bytes(Algorithm::Sha256, &manifest_bytes);
    store_blob(store, &manifest_digest, &manifest_bytes)?;
    Ok(manifest_digest)
}

/// The common part of import and commit: store `input` as a gzip layer on top of
/// `base_layers`, extend `config` (diff_ids, history, created, `changes`), write config and
/// manifest, record the image.
#[allow(clippy::too_many_arguments)]
fn append_layer(
    store: &ImageStore,
    mut config: Value,
    base_layers: &[LayerBlob],
    input: impl Read,
    tag: Option<&Reference>,
    changes: &[String],
    comment: &str,
    author: Option<&str>,
) -> Result<ImageRecord, StoreError> {
    // Refuse bad arguments before reading anything.
    let mut run_config = match config.get("config") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    changes::apply(&mut run_config, changes)?;
    if let Some(t) = tag {
        tag_ref(&t.to_string())?;
    }
    let _lease = store.lease()?;

    // Pass 1: decompress, hash the tar (the diff_id) and recompress it with
    // gzip into tmp/, hashing the blob.
    let tmp = store.blobs().temp_path("layer");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err("create temporary file", &tmp))?;
    let guard = TempGuard::new(tmp.clone());
    let mut gz = flate2::write::GzEncoder::new(
        HashWrite {
            inner: BufWriter::new(file),
            hasher: Hasher::new(Algorithm::Sha256),
            count: 0,
        },
        flate2::Compression::default(),
    );
    let (compression, src) = sniff(input).map_err(StoreError::ArchiveRead)?;
    let mut decoded = decoder(compression, src).map_err(StoreError::ArchiveRead)?;
    let mut diff_hasher = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match decoded.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::ArchiveRead(e)),
        };
        diff_hasher.update(&buf[..n]);
        gz.write_all(&buf[..n]).map_err(io_err("write", &tmp))?;
    }
    let counted = gz.finish().map_err(io_err("write", &tmp))?;
    let HashWrite {
        inner,
        hasher,
        count,
    } = counted;
    inner
        .into_inner()
        .map_err(|e| io_err("write", &tmp)(e.into_error()))?;
    let diff_id = diff_hasher.finish();
    let blob = LayerBlob {
        media_type: media::OCI_LAYER_GZIP.to_owned(),
        digest: hasher.finish(),
        size: count,
    };

    // Pass 2: unpack (which also proves it is a tar) and store the blob.
    let mut diff_ids: Vec<Digest> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| Digest::parse(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != base_layers.len() {
        return Err(StoreError::Archive(format!(
            "the base image lists {} layers but its config {} diff_ids",
            base_layers.len(),
            diff_ids.len()
        )));
    }
    let parent = crate::images::chain_ids(&diff_ids).last().cloned();
    let reader = File::open(&tmp).map_err(io_err("open", &tmp))?;
    store.ingest_layer(
        BufReader::new(reader),
        &blob,
        &diff_id,
        parent.as_ref(),
        &mut |_| {},
    )?;
    drop(guard);
    diff_ids.push(diff_id);

    let created = fsutil::rfc3339_now();
    let mut history = json!({ "created": created, "comment": comment });
    if let Some(a) = author {
        history["author"] = Value::String(a.to_owned());
        config["author"] = Value::String(a.to_owned());
    }
    config["created"] = Value::String(created);
    config["config"] = Value::Object(run_config);
    config["rootfs"] = json!({
        "type": "layers",
        "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
    });
    match config.get_mut("history").and_then(Value::as_array_mut) {
        Some(h) => h.push(history),
        None => config["history"] = json!([history]),
    }
    if !comment.is_empty() {
        config["comment"] = Value::String(comment.to_owned());
    }
    let config_bytes = to_json(&config, "image config")?;
    let config_digest = Digest::of_bytes(Algorithm::Sha256, &config_bytes);
    store_blob(store, &config_digest, &config_bytes)?;
    let mut layers: Vec<LayerBlob> = base_layers.to_vec();
    layers.push(blob);
    let manifest_digest = store_oci_manifest(store, &config_digest, config_bytes.len(), &layers)?;
    store.put_image(NewImage {
        manifest_digest,
        manifest_media_type: media::OCI_MANIFEST.to_owned(),
        config_digest,
        layers,
        diff_ids,
        repo_tag: tag.cloned(),
        repo_digest: None,
    })
}
