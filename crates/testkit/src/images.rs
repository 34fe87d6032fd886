//! OCI image layouts built locally for tests: layers assembled entry by entry (hostile ones
//! included) or from a directory tree, written as `oci:` layouts that skopeo can push.
//!
//! A layout directory holds `oci-layout`, `index.json` and `blobs/sha256/*`; each
//! [`ImageBuilder::write`] or [`write_index`] adds its blobs and points a tag (the
//! `org.opencontainers.image.ref.name` annotation in `index.json`) at the new manifest or
//! index, replacing an earlier entry with the same tag. Everything is deterministic: the same
//! builder always gives the same digests (fixed mtimes, no gzip timestamps, sorted walks).
//! Writers of one layout must not run concurrently (they rewrite `index.json`).
//!
//! [`skopeo_push`] sends a tag to a registry with the manifest bytes unchanged. (skopeo 1.9
//! resolves `oci:DIR:TAG` only for OCI-typed entries, so [`Format::Docker`] images go through
//! a `dir:` export, [`export_dir_transport`]; `skopeo_push` picks the right one.)
//!
//! ```no_run
//! use pelagos_testkit::images::{self, Compression, ImageBuilder, LayerBuilder};
//! # fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let built = images::busybox()?
//!     .layer(LayerBuilder::new().file("etc/motd", "hi\n", 0o644), Compression::Zstd)
//!     .env("GREETING", "hi")
//!     .write(dir.path(), "latest")?;
//! images::skopeo_push(dir.path(), "latest", "127.0.0.1:5000/busybox:latest", &[])?;
//! println!("{}", built.manifest_digest);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker schema 2 manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The `index.json` annotation that names a tag in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Modification time of every entry built in memory (2023-11-14T22:13:20Z): fixed so that
/// digests are reproducible.
pub const DEFAULT_MTIME: u64 = 1_700_000_000;
/// `created` of every image config, the same instant as [`DEFAULT_MTIME`].
pub const DEFAULT_CREATED: &str = "2023-11-14T22:13:20Z";
/// The `PATH` the ready-made images set.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the ready-made busybox images take their binary from (Debian's `busybox-static`).
pub const HOST_BUSYBOX: &str = "/bin/busybox";

/// The `sha256:<hex>` digest of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Where the blob `digest` (`sha256:<hex>`) lives in the layout `layout_dir`.
pub fn blob_path(layout_dir: &Path, digest: &str) -> Result<PathBuf> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| anyhow!("not a sha256 digest: {digest:?}"))?;
    Ok(layout_dir.join("blobs/sha256").join(hex))
}

/// Reads the blob `digest` from the layout and checks that its content matches the digest.
pub fn read_blob(layout_dir: &Path, digest: &str) -> Result<Vec<u8>> {
    let path = blob_path(layout_dir, digest)?;
    let bytes = fs::read(&path).with_context(|| format!("reading blob {}", path.display()))?;
    let actual = sha256_digest(&bytes);
    if actual != digest {
        bail!("blob {} holds {actual}, not {digest}", path.display());
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// Formats and compression

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (flate2, default level, no timestamp in the header).
    #[default]
    Gzip,
    /// zstd (level 3). OCI only: Docker schema 2 has no zstd media type.
    Zstd,
}

impl Compression {
    /// The layer media type for this compression in `format`; zstd in Docker format is an
    /// error.
    pub fn media_type(self, format: Format) -> Result<&'static str> {
        Ok(match (format, self) {
            (Format::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (Format::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Format::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (Format::Docker, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (Format::Docker, Compression::Gzip) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
            (Format::Docker, Compression::Zstd) => {
                bail!("zstd layers need Format::Oci: Docker schema 2 has no zstd layer media type")
            }
        })
    }

    /// The compression a layer media type names (`None` for an unknown type).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

/// Manifest flavour of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// OCI image manifest, config and layer media types.
    #[default]
    Oci,
    /// Docker schema 2 manifest (manifest list for indexes) and Docker media types.
    Docker,
}

impl Format {
    fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }
    fn config_media_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }
}

/// An image's platform, as in the config and in index entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v7`, `v8`, ... when it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// `os`/`architecture`/`variant` as given.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// The platform this test binary runs on, in GOARCH spelling (`x86_64` is `amd64`).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    fn to_json(&self) -> Value {
        let mut p = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

// ---------------------------------------------------------------------------------------------
// Layers

/// The type of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (`link_name` is the target).
    Symlink,
    /// Hard link (`link_name` is the archive path of the target).
    Hardlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
}

impl EntryKind {
    fn tar_type(self) -> tar::EntryType {
        match self {
            EntryKind::File => tar::EntryType::Regular,
            EntryKind::Dir => tar::EntryType::Directory,
            EntryKind::Symlink => tar::EntryType::Symlink,
            EntryKind::Hardlink => tar::EntryType::Link,
            EntryKind::CharDevice => tar::EntryType::Char,
            EntryKind::BlockDevice => tar::EntryType::Block,
            EntryKind::Fifo => tar::EntryType::Fifo,
        }
    }
}

/// One tar entry written exactly as given: `name` and `link_name` are copied byte for byte
/// (no cleaning, so `../x`, `/abs` or `a//b` reach the archive as they are). Names longer than
/// the 100-byte header field go into a PAX `path`/`linkpath` record, xattrs into
/// `SCHILY.xattr.*` records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// Entry type.
    pub kind: EntryKind,
    /// Path in the archive, verbatim.
    pub name: Vec<u8>,
    /// Symlink target or hardlink target, verbatim (empty for other kinds).
    pub link_name: Vec<u8>,
    /// File content (ignored for other kinds: their size is 0).
    pub data: Vec<u8>,
    /// Permission bits, including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
    /// Device major/minor for device entries.
    pub device: (u32, u32),
    /// Extended attributes (`SCHILY.xattr.<name>` PAX records).
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl RawEntry {
    fn new(kind: EntryKind, name: impl Into<Vec<u8>>, mode: u32) -> RawEntry {
        RawEntry {
            kind,
            name: name.into(),
            link_name: Vec::new(),
            data: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            device: (0, 0),
            xattrs: Vec::new(),
        }
    }
    /// A regular file, mode 0644, owned by root.
    pub fn file(name: impl Into<Vec<u8>>, data: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            data: data.into(),
            ..RawEntry::new(EntryKind::File, name, 0o644)
        }
    }
    /// A directory, mode 0755, owned by root.
    pub fn dir(name: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry::new(EntryKind::Dir, name, 0o755)
    }
    /// A symbolic link `name` → `target`.
    pub fn symlink(name: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            link_name: target.into(),
            ..RawEntry::new(EntryKind::Symlink, name, 0o777)
        }
    }
    /// A hard link `name` → `target` (an archive path).
    pub fn hardlink(name: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> RawEntry {
        RawEntry {
            link_name: target.into(),
            ..RawEntry::new(EntryKind::Hardlink, name, 0o644)
        }
    }
    /// Sets the permission bits.
    pub fn mode(mut self, mode: u32) -> RawEntry {
        self.mode = mode;
        self
    }
    /// Sets the owner.
    pub fn owner(mut self, uid: u64, gid: u64) -> RawEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

#[derive(Clone, Debug)]
enum Item {
    Entry(RawEntry),
    Header(Box<tar::Header>, Vec<u8>),
    Host {
        src: PathBuf,
        dest: String,
        recursive: bool,
    },
}

/// A layer's tar stream, described entry by entry and written on demand (host files are
/// read at write time, streaming, so large trees are never held in memory).
///
/// The convenience methods clean their paths (a leading `/` or `./` is dropped, empty and
/// `.` components are removed) and refuse `..`; such a mistake is reported by
/// [`LayerBuilder::write_tar`] (and so by [`ImageBuilder::write`]), naming the path. Hostile
/// entries go through [`LayerBuilder::raw`] or [`LayerBuilder::raw_header`].
#[derive(Clone, Debug)]
pub struct LayerBuilder {
    items: Vec<Item>,
    uid: u64,
    gid: u64,
    mtime: u64,
    problems: Vec<String>,
}

impl Default for LayerBuilder {
    fn default() -> Self {
        LayerBuilder::new()
    }
}

/// Cleans a path given to the convenience methods; `Err` names the problem.
fn clean_path(path: &str) -> std::result::Result<String, String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "path {path:?} contains \"..\" (use LayerBuilder::raw for hostile entries)"
                ))
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("path {path:?} names the layer's root"));
    }
    Ok(parts.join("/"))
}

impl LayerBuilder {
    /// An empty layer; entries are owned by 0:0 and dated [`DEFAULT_MTIME`] until
    /// [`owner`](Self::owner) / [`mtime`](Self::mtime) say otherwise.
    pub fn new() -> LayerBuilder {
        LayerBuilder {
            items: Vec::new(),
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            problems: Vec::new(),
        }
    }

    /// Owner of the entries added after this call.
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Modification time of the entries added after this call.
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    fn push(
        mut self,
        kind: EntryKind,
        path: &str,
        mode: u32,
        f: impl FnOnce(&mut RawEntry),
    ) -> Self {
        match clean_path(path) {
            Ok(mut name) => {
                if kind == EntryKind::Dir {
                    name.push('/');
                }
                let mut e = RawEntry::new(kind, name, mode);
                e.uid = self.uid;
                e.gid = self.gid;
                e.mtime = self.mtime;
                f(&mut e);
                self.items.push(Item::Entry(e));
            }
            Err(p) => self.problems.push(p),
        }
        self
    }

    /// A directory with permission bits `mode` (e.g. `0o1777`).
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.push(EntryKind::Dir, path, mode, |_| {})
    }

    /// A regular file.
    pub fn file(self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Self {
        let data = data.into();
        self.push(EntryKind::File, path, mode, |e| e.data = data)
    }

    /// A symbolic link `path` → `target` (the target is stored verbatim).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.push(EntryKind::Symlink, path, 0o777, |e| {
            e.link_name = target.as_bytes().to_vec()
        })
    }

    /// A hard link `path` → `target`, an earlier path of this layer (cleaned like `path`).
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        match clean_path(target) {
            Ok(t) => self.push(EntryKind::Hardlink, path, 0o644, |e| {
                e.link_name = t.into_bytes()
            }),
            Err(p) => {
                self.problems.push(format!("hardlink target: {p}"));
                self
            }
        }
    }

    /// A character device `major:minor`.
    pub fn char_device(self, path: &str, major: u32, minor: u32, mode: u32) -> Self {
        self.push(EntryKind::CharDevice, path, mode, |e| {
            e.device = (major, minor)
        })
    }

    /// A block device `major:minor`.
    pub fn block_device(self, path: &str, major: u32, minor: u32, mode: u32) -> Self {
        self.push(EntryKind::BlockDevice, path, mode, |e| {
            e.device = (major, minor)
        })
    }

    /// A named pipe.
    pub fn fifo(self, path: &str, mode: u32) -> Self {
        self.push(EntryKind::Fifo, path, mode, |_| {})
    }

    /// An OCI whiteout: `dir/.wh.name` deletes `dir/name` of the layers below.
    pub fn whiteout(self, path: &str) -> Self {
        let (parent, name) = match path.trim_end_matches('/').rsplit_once('/') {
            Some((p, n)) => (format!("{p}/"), n.to_string()),
            None => (String::new(), path.trim_end_matches('/').to_string()),
        };
        self.push(
            EntryKind::File,
            &format!("{parent}.wh.{name}"),
            0o644,
            |_| {},
        )
    }

    /// An OCI opaque marker: `dir/.wh..wh..opq` hides everything the layers below have in
    /// `dir` (entries of this layer in `dir` stay).
    pub fn opaque(self, dir: &str) -> Self {
        self.push(
            EntryKind::File,
            &format!("{}/.wh..wh..opq", dir.trim_end_matches('/')),
            0o644,
            |_| {},
        )
    }

    /// Adds an extended attribute to the entry added last.
    pub fn xattr(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        match self.items.last_mut() {
            Some(Item::Entry(e)) => e.xattrs.push((name.to_string(), value.into())),
            _ => self.problems.push(format!(
                "xattr {name:?} must follow an entry added with dir/file/symlink/.../raw"
            )),
        }
        self
    }

    /// An entry written verbatim (see [`RawEntry`]): for hostile names.
    pub fn raw(mut self, entry: RawEntry) -> Self {
        self.items.push(Item::Entry(entry));
        self
    }

    /// A header written as given (only its checksum is recomputed), followed by `data`, for
    /// anything [`RawEntry`] cannot express. The header's size field should match `data`.
    pub fn raw_header(mut self, header: tar::Header, data: impl Into<Vec<u8>>) -> Self {
        self.items.push(Item::Header(Box::new(header), data.into()));
        self
    }

    /// The host file, directory or symlink `src` as `dest`, with its mode, owner, mtime and
    /// xattrs; a directory with everything below it (sorted by name; not crossing into other
    /// file systems). Files with several links become tar hardlinks to their first path in
    /// this layer. Device nodes and sockets are skipped (layers of rootfs trees must not
    /// carry the builder's devices).
    pub fn host_path(mut self, src: impl Into<PathBuf>, dest: &str) -> Self {
        match clean_path(dest) {
            Ok(dest) => self.items.push(Item::Host {
                src: src.into(),
                dest,
                recursive: true,
            }),
            Err(p) => self.problems.push(p),
        }
        self
    }

    /// Like [`host_path`](Self::host_path) but a directory comes alone, without its content
    /// (for the parent directories of a subtree).
    pub fn host_entry(mut self, src: impl Into<PathBuf>, dest: &str) -> Self {
        match clean_path(dest) {
            Ok(dest) => self.items.push(Item::Host {
                src: src.into(),
                dest,
                recursive: false,
            }),
            Err(p) => self.problems.push(p),
        }
        self
    }

    /// Number of items added (a host tree counts once).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Writes the tar stream (with its end-of-archive blocks) to `w` and returns `w`.
    pub fn write_tar<W: Write>(&self, w: W) -> Result<W> {
        if let Some(p) = self.problems.first() {
            bail!("invalid layer: {p}");
        }
        let mut b = tar::Builder::new(w);
        let mut links = HashMap::new();
        for item in &self.items {
            match item {
                Item::Entry(e) => {
                    let size = if e.kind == EntryKind::File {
                        e.data.len() as u64
                    } else {
                        0
                    };
                    emit(&mut b, e, size, &mut e.data.as_slice()).with_context(|| {
                        format!("writing tar entry {:?}", String::from_utf8_lossy(&e.name))
                    })?;
                }
                Item::Header(h, data) => {
                    let mut h = h.clone();
                    h.set_cksum();
                    b.append(&h, data.as_slice())
                        .context("writing a raw tar header")?;
                }
                Item::Host {
                    src,
                    dest,
                    recursive,
                } => {
                    let dev = fs::symlink_metadata(src)
                        .with_context(|| format!("reading {}", src.display()))?
                        .dev();
                    append_host(&mut b, src, dest, *recursive, dev, &mut links)?;
                }
            }
        }
        b.into_inner().context("finishing the tar stream")
    }

    /// The whole tar stream in memory (for tests of small layers).
    pub fn tar_bytes(&self) -> Result<Vec<u8>> {
        self.write_tar(Vec::new())
    }
}

/// Formats one PAX extended-header record: `"<len> <key>=<value>\n"`, where `len` counts
/// the whole record including its own digits.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = 3 + key.len() + value.len(); // ' ', '=', '\n'
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn copy_field(field: &mut [u8], bytes: &[u8]) {
    let n = bytes.len().min(field.len());
    field[..n].copy_from_slice(&bytes[..n]);
    for b in &mut field[n..] {
        *b = 0;
    }
}

/// Writes one entry: a PAX header first when a name is too long for its field or there are
/// xattrs, then the ustar header with the names copied verbatim, then `size` bytes of data.
fn emit<W: Write>(
    b: &mut tar::Builder<W>,
    e: &RawEntry,
    size: u64,
    data: &mut dyn Read,
) -> Result<()> {
    let mut pax = Vec::new();
    if e.name.len() > 100 {
        pax.extend(pax_record("path", &e.name));
    }
    if e.link_name.len() > 100 {
        pax.extend(pax_record("linkpath", &e.link_name));
    }
    for (k, v) in &e.xattrs {
        pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
    }
    if !pax.is_empty() {
        let mut h = tar::Header::new_ustar();
        copy_field(&mut h.as_old_mut().name, b"././@PaxHeader");
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_mtime(e.mtime);
        h.set_size(pax.len() as u64);
        h.set_cksum();
        b.append(&h, pax.as_slice())?;
    }
    let mut h = tar::Header::new_ustar();
    copy_field(&mut h.as_old_mut().name, &e.name);
    copy_field(&mut h.as_old_mut().linkname, &e.link_name);
    h.set_entry_type(e.kind.tar_type());
    h.set_mode(e.mode & 0o7777);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(size);
    if matches!(e.kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        h.set_device_major(e.device.0)?;
        h.set_device_minor(e.device.1)?;
    }
    h.set_cksum();
    // Exactly `size` bytes: a host file that grows meanwhile must not corrupt the stream.
    let mut limited = data.take(size);
    b.append(&h, &mut limited)?;
    if limited.limit() != 0 {
        bail!("the data ended {} bytes early", limited.limit());
    }
    Ok(())
}

/// Adds a host path (and, for a recursive directory, its content) to the archive.
fn append_host<W: Write>(
    b: &mut tar::Builder<W>,
    src: &Path,
    dest: &str,
    recursive: bool,
    dev: u64,
    links: &mut HashMap<(u64, u64), Vec<u8>>,
) -> Result<()> {
    let meta = fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
    let ft = meta.file_type();
    if ft.is_char_device() || ft.is_block_device() || ft.is_socket() {
        return Ok(());
    }
    let mut e = RawEntry::new(EntryKind::File, dest.as_bytes(), meta.mode() & 0o7777);
    e.uid = u64::from(meta.uid());
    e.gid = u64::from(meta.gid());
    e.mtime = u64::try_from(meta.mtime()).unwrap_or(0);
    let names = xattr::list(src).with_context(|| format!("listing xattrs of {}", src.display()))?;
    for name in names {
        let value = xattr::get(src, &name)
            .with_context(|| format!("reading xattr {name:?} of {}", src.display()))?;
        if let (Some(v), Some(n)) = (value, name.to_str()) {
            e.xattrs.push((n.to_string(), v));
        }
    }
    let ctx = || format!("adding {} as {dest}", src.display());
    if ft.is_dir() {
        e.kind = EntryKind::Dir;
        e.name.push(b'/');
        emit(b, &e, 0, &mut io::empty()).with_context(ctx)?;
        if recursive && meta.dev() == dev {
            let mut children = fs::read_dir(src)
                .with_context(|| format!("listing {}", src.display()))?
                .map(|c| c.map(|c| c.file_name()))
                .collect::<io::Result<Vec<_>>>()
                .with_context(|| format!("listing {}", src.display()))?;
            children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in children {
                let Some(n) = name.to_str() else {
                    bail!("{}: file name {name:?} is not UTF-8", src.display());
                };
                append_host(
                    b,
                    &src.join(&name),
                    &format!("{dest}/{n}"),
                    true,
                    dev,
                    links,
                )?;
            }
        }
    } else if ft.is_symlink() {
        e.kind = EntryKind::Symlink;
        e.link_name = fs::read_link(src)
            .with_context(|| format!("reading symlink {}", src.display()))?
            .into_os_string()
            .into_vec();
        emit(b, &e, 0, &mut io::empty()).with_context(ctx)?;
    } else if ft.is_fifo() {
        e.kind = EntryKind::Fifo;
        emit(b, &e, 0, &mut io::empty()).with_context(ctx)?;
    } else {
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = links.get(&key) {
                e.kind = EntryKind::Hardlink;
                e.link_name = first.clone();
                e.xattrs.clear();
                return emit(b, &e, 0, &mut io::empty()).with_context(ctx);
            }
            links.insert(key, e.name.clone());
        }
        let mut f = File::open(src).with_context(|| format!("opening {}", src.display()))?;
        emit(b, &e, meta.len(), &mut f).with_context(ctx)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writing blobs

/// A writer that hashes and counts what passes through it.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{:x}", self.hasher.finalize()),
            self.count,
        )
    }
}

impl<W: Write> Write for HashWriter<W> {
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

/// Creates `oci-layout` and `blobs/sha256` if missing.
fn init_layout(dir: &Path) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .with_context(|| format!("writing {}", marker.display()))?;
    }
    Ok(())
}

/// A temporary file in the blob directory, readable by all (skopeo or podman may read the
/// layout as another user), to be renamed to its digest.
fn blob_tempfile(layout_dir: &Path) -> Result<tempfile::NamedTempFile> {
    let blobs = layout_dir.join("blobs/sha256");
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-blob-")
        .tempfile_in(&blobs)
        .with_context(|| format!("creating a temporary blob in {}", blobs.display()))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .with_context(|| format!("chmod {}", tmp.path().display()))?;
    Ok(tmp)
}

fn persist_blob(layout_dir: &Path, tmp: tempfile::NamedTempFile, digest: &str) -> Result<()> {
    let path = blob_path(layout_dir, digest)?;
    tmp.persist(&path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming blob {digest} to {}", path.display()))?;
    Ok(())
}

/// Writes `bytes` as a blob and returns its digest.
fn write_blob(layout_dir: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256_digest(bytes);
    let mut tmp = blob_tempfile(layout_dir)?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing blob {digest}"))?;
    persist_blob(layout_dir, tmp, &digest)?;
    Ok(digest)
}

/// What writing one layer produced.
struct LayerBlob {
    digest: String,
    size: u64,
    diff_id: String,
}

/// Streams the layer's tar through the compressor into a blob, hashing both the tar (the
/// diff ID) and the compressed bytes (the blob digest) on the way.
fn write_layer(layout_dir: &Path, layer: &LayerBuilder, c: Compression) -> Result<LayerBlob> {
    let tmp = blob_tempfile(layout_dir)?;
    let out = HashWriter::new(BufWriter::new(tmp.as_file()));
    let (out, diff_id) = match c {
        Compression::None => {
            let out = layer.write_tar(out)?;
            let digest = format!("sha256:{:x}", out.hasher.clone().finalize());
            (out, digest)
        }
        Compression::Gzip => {
            let gz = flate2::GzBuilder::new()
                .mtime(0)
                .write(out, flate2::Compression::default());
            let (gz, diff_id, _) = layer.write_tar(HashWriter::new(gz))?.finish();
            (gz.finish().context("finishing gzip")?, diff_id)
        }
        Compression::Zstd => {
            let enc = zstd::Encoder::new(out, 3).context("starting zstd")?;
            let (enc, diff_id, _) = layer.write_tar(HashWriter::new(enc))?.finish();
            (enc.finish().context("finishing zstd")?, diff_id)
        }
    };
    let (buf, digest, size) = out.finish();
    buf.into_inner()
        .map_err(|e| e.into_error())
        .context("flushing a layer blob")?;
    persist_blob(layout_dir, tmp, &digest)?;
    Ok(LayerBlob {
        digest,
        size,
        diff_id,
    })
}

/// Points `tag` at `descriptor` in `index.json`, replacing an earlier entry for the tag.
fn tag_in_index(layout_dir: &Path, tag: &str, mut descriptor: Value) -> Result<()> {
    if tag.is_empty() {
        bail!("empty tag for layout {}", layout_dir.display());
    }
    let path = layout_dir.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] })
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| anyhow!("{} has no manifests array", path.display()))?;
    manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
    descriptor["annotations"] = json!({ REF_NAME: tag });
    manifests.push(descriptor);
    let bytes = serde_json::to_vec(&index)?;
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Images

/// An image: layers plus the config fields a runtime reads.
#[derive(Clone, Debug)]
pub struct ImageBuilder {
    layers: Vec<(LayerBuilder, Compression)>,
    format: Format,
    platform: Platform,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    workdir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
    labels: BTreeMap<String, String>,
    exposed_ports: BTreeSet<String>,
    volumes: BTreeSet<String>,
    annotations: BTreeMap<String, String>,
    config_extra: Map<String, Value>,
    created: String,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        ImageBuilder::new()
    }
}

/// What [`ImageBuilder::write`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltImage {
    /// The tag pointed at the manifest (empty for images written as part of an index).
    pub tag: String,
    /// Manifest media type ([`OCI_MANIFEST`] or [`DOCKER_MANIFEST`]).
    pub manifest_media_type: String,
    /// `sha256:` of the manifest bytes.
    pub manifest_digest: String,
    /// Size of the manifest in bytes.
    pub manifest_size: u64,
    /// The manifest itself.
    pub manifest: Vec<u8>,
    /// `sha256:` of the config bytes.
    pub config_digest: String,
    /// Size of the config in bytes.
    pub config_size: u64,
    /// The config itself.
    pub config: Vec<u8>,
    /// Layer blob digests, bottom first.
    pub layer_digests: Vec<String>,
    /// Layer blob sizes (compressed).
    pub layer_sizes: Vec<u64>,
    /// Layer media types.
    pub layer_media_types: Vec<String>,
    /// `sha256:` of each uncompressed tar, as in the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// The image's platform.
    pub platform: Platform,
}

impl BuiltImage {
    /// Total size of the layer blobs.
    pub fn layers_size(&self) -> u64 {
        self.layer_sizes.iter().sum()
    }

    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.manifest_media_type,
            "digest": self.manifest_digest,
            "size": self.manifest_size,
        })
    }
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl ImageBuilder {
    /// No layers, OCI format, the host platform, no config fields.
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            format: Format::Oci,
            platform: Platform::host(),
            env: Vec::new(),
            cmd: None,
            entrypoint: None,
            workdir: None,
            user: None,
            stop_signal: None,
            labels: BTreeMap::new(),
            exposed_ports: BTreeSet::new(),
            volumes: BTreeSet::new(),
            annotations: BTreeMap::new(),
            config_extra: Map::new(),
            created: DEFAULT_CREATED.to_string(),
        }
    }

    /// Adds a layer on top.
    pub fn layer(mut self, layer: LayerBuilder, compression: Compression) -> Self {
        self.layers.push((layer, compression));
        self
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> &[(LayerBuilder, Compression)] {
        &self.layers
    }

    /// Manifest flavour (default OCI).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Platform (default: the host's, see [`Platform::host`]).
    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> Self {
        self.platform = Platform::new(os, arch, variant);
        self
    }

    /// `Cmd`.
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(mut self, cmd: I) -> Self {
        self.cmd = Some(strings(cmd));
        self
    }

    /// `Entrypoint`.
    pub fn entrypoint<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ep: I) -> Self {
        self.entrypoint = Some(strings(ep));
        self
    }

    /// Sets `KEY=VALUE` in `Env`, replacing an earlier value of `KEY`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        let prefix = format!("{key}=");
        self.env.retain(|e| !e.starts_with(&prefix));
        self.env.push(format!("{key}={value}"));
        self
    }

    /// `WorkingDir`.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = Some(dir.to_string());
        self
    }

    /// `User` (`name`, `uid`, `uid:gid`, ...).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_string());
        self
    }

    /// `StopSignal` (`SIGTERM`, `9`, ...).
    pub fn stop_signal(mut self, signal: &str) -> Self {
        self.stop_signal = Some(signal.to_string());
        self
    }

    /// A `Labels` entry.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// An `ExposedPorts` entry (`80/tcp`, `53/udp`).
    pub fn expose(mut self, port: &str) -> Self {
        self.exposed_ports.insert(port.to_string());
        self
    }

    /// A `Volumes` entry.
    pub fn volume(mut self, path: &str) -> Self {
        self.volumes.insert(path.to_string());
        self
    }

    /// Any other field of the config's `config` object (e.g. `Healthcheck`), or an override
    /// of one set above.
    pub fn config_field(mut self, key: &str, value: Value) -> Self {
        self.config_extra.insert(key.to_string(), value);
        self
    }

    /// A manifest annotation (OCI format only; Docker schema 2 has none).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// The config's `created` (RFC 3339; default [`DEFAULT_CREATED`]).
    pub fn created(mut self, created: &str) -> Self {
        self.created = created.to_string();
        self
    }

    fn config_json(&self, diff_ids: &[String]) -> Value {
        let mut c = Map::new();
        if !self.env.is_empty() {
            c.insert("Env".into(), json!(self.env));
        }
        if let Some(v) = &self.cmd {
            c.insert("Cmd".into(), json!(v));
        }
        if let Some(v) = &self.entrypoint {
            c.insert("Entrypoint".into(), json!(v));
        }
        if let Some(v) = &self.workdir {
            c.insert("WorkingDir".into(), json!(v));
        }
        if let Some(v) = &self.user {
            c.insert("User".into(), json!(v));
        }
        if let Some(v) = &self.stop_signal {
            c.insert("StopSignal".into(), json!(v));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if !self.exposed_ports.is_empty() {
            let ports: Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.volumes.is_empty() {
            let vols: Map<String, Value> = self
                .volumes
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            c.insert("Volumes".into(), Value::Object(vols));
        }
        for (k, v) in &self.config_extra {
            c.insert(k.clone(), v.clone());
        }
        let history: Vec<Value> = (0..diff_ids.len())
            .map(|i| json!({ "created": self.created, "created_by": format!("pelagos-testkit layer {}", i + 1) }))
            .collect();
        let mut config = json!({
            "created": self.created,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
            "config": c,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        config
    }

    /// Writes the layers, config and manifest into the layout (created if missing) without
    /// tagging them.
    fn write_blobs(&self, layout_dir: &Path) -> Result<BuiltImage> {
        init_layout(layout_dir)?;
        let mut layers = Vec::new();
        let (mut digests, mut sizes, mut types, mut diff_ids) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (layer, c)) in self.layers.iter().enumerate() {
            let media_type = c.media_type(self.format)?;
            let blob = write_layer(layout_dir, layer, *c).with_context(|| {
                format!("writing layer {} into {}", i + 1, layout_dir.display())
            })?;
            layers
                .push(json!({ "mediaType": media_type, "digest": blob.digest, "size": blob.size }));
            digests.push(blob.digest);
            sizes.push(blob.size);
            types.push(media_type.to_string());
            diff_ids.push(blob.diff_id);
        }
        let config = serde_json::to_vec(&self.config_json(&diff_ids))?;
        let config_digest = write_blob(layout_dir, &config)?;
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.format.manifest_media_type(),
            "config": {
                "mediaType": self.format.config_media_type(),
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": layers,
        });
        if self.format == Format::Oci && !self.annotations.is_empty() {
            manifest["annotations"] = json!(self.annotations);
        }
        let manifest = serde_json::to_vec(&manifest)?;
        let manifest_digest = write_blob(layout_dir, &manifest)?;
        Ok(BuiltImage {
            tag: String::new(),
            manifest_media_type: self.format.manifest_media_type().to_string(),
            manifest_digest,
            manifest_size: manifest.len() as u64,
            manifest,
            config_digest,
            config_size: config.len() as u64,
            config,
            layer_digests: digests,
            layer_sizes: sizes,
            layer_media_types: types,
            diff_ids,
            platform: self.platform.clone(),
        })
    }

    /// Writes the image into the OCI layout `layout_dir` (created if missing) and tags it
    /// `tag`, so that `skopeo copy oci:DIR:TAG ...` finds it.
    pub fn write(&self, layout_dir: &Path, tag: &str) -> Result<BuiltImage> {
        let mut built = self.write_blobs(layout_dir)?;
        let mut desc = built.descriptor();
        desc["platform"] = self.platform.to_json();
        tag_in_index(layout_dir, tag, desc)?;
        built.tag = tag.to_string();
        Ok(built)
    }
}

/// What [`write_index`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltIndex {
    /// The tag pointed at the index.
    pub tag: String,
    /// [`OCI_INDEX`], or [`DOCKER_MANIFEST_LIST`] when every image is in Docker format.
    pub media_type: String,
    /// `sha256:` of the index bytes.
    pub digest: String,
    /// Size of the index in bytes.
    pub size: u64,
    /// The index itself.
    pub index: Vec<u8>,
    /// The images it lists, in order.
    pub images: Vec<BuiltImage>,
}

/// Writes a multi-platform index (or Docker manifest list, when every image is in Docker
/// format) of `images` into the layout and tags it `tag`; each image is listed with its
/// platform. `skopeo copy --all oci:DIR:TAG docker://...` pushes all of them.
pub fn write_index(layout_dir: &Path, tag: &str, images: &[ImageBuilder]) -> Result<BuiltIndex> {
    if images.is_empty() {
        bail!(
            "an index needs at least one image ({})",
            layout_dir.display()
        );
    }
    let docker = images.iter().all(|i| i.format == Format::Docker);
    let media_type = if docker {
        DOCKER_MANIFEST_LIST
    } else {
        OCI_INDEX
    };
    let mut built = Vec::new();
    let mut entries = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let b = image
            .write_blobs(layout_dir)
            .with_context(|| format!("writing image {} of index {tag}", i + 1))?;
        let mut desc = b.descriptor();
        desc["platform"] = b.platform.to_json();
        entries.push(desc);
        built.push(b);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": entries,
    }))?;
    let digest = write_blob(layout_dir, &index)?;
    tag_in_index(
        layout_dir,
        tag,
        json!({ "mediaType": media_type, "digest": digest, "size": index.len() }),
    )?;
    Ok(BuiltIndex {
        tag: tag.to_string(),
        media_type: media_type.to_string(),
        digest,
        size: index.len() as u64,
        index,
        images: built,
    })
}

// ---------------------------------------------------------------------------------------------
// Pushing

/// The `index.json` descriptor tagged `tag` in the layout.
pub fn tagged_descriptor(layout_dir: &Path, tag: &str) -> Result<Value> {
    let path = layout_dir.join("index.json");
    let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let index: Value =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][REF_NAME].as_str() == Some(tag))
        .cloned()
        .ok_or_else(|| anyhow!("no tag {tag:?} in {}", path.display()))
}

fn descriptor_digest(d: &Value) -> Result<&str> {
    d["digest"]
        .as_str()
        .ok_or_else(|| anyhow!("descriptor without a digest: {d}"))
}

/// Copies the blob `digest` into a `dir:` transport directory (hard link if possible).
fn export_blob(layout_dir: &Path, digest: &str, dest: &Path, name: &str) -> Result<()> {
    let src = blob_path(layout_dir, digest)?;
    let to = dest.join(name);
    if to.exists() {
        return Ok(());
    }
    if fs::hard_link(&src, &to).is_err() {
        fs::copy(&src, &to)
            .with_context(|| format!("copying {} to {}", src.display(), to.display()))?;
    }
    Ok(())
}

/// Writes the image or index tagged `tag` as a skopeo `dir:` transport directory `dest`
/// (`manifest.json`, `<hex>.manifest.json` per index entry, a file per blob named by its hex
/// digest, `version`). `skopeo copy [--all] dir:DEST docker://...` pushes it byte for byte.
///
/// Needed for [`Format::Docker`] images: skopeo 1.9 finds only OCI-typed `index.json`
/// entries by tag, so `oci:DIR:TAG` does not resolve a Docker-format manifest or list.
pub fn export_dir_transport(layout_dir: &Path, tag: &str, dest: &Path) -> Result<()> {
    let desc = tagged_descriptor(layout_dir, tag)?;
    fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let top = descriptor_digest(&desc)?;
    let top_bytes = read_blob(layout_dir, top)?;
    fs::write(dest.join("manifest.json"), &top_bytes)
        .with_context(|| format!("writing {}/manifest.json", dest.display()))?;
    let top_json: Value =
        serde_json::from_slice(&top_bytes).with_context(|| format!("parsing manifest {top}"))?;
    // An index: every listed manifest goes to <hex>.manifest.json; a manifest: itself.
    let mut manifests = Vec::new();
    if let Some(list) = top_json["manifests"].as_array() {
        for m in list {
            let d = descriptor_digest(m)?;
            let bytes = read_blob(layout_dir, d)?;
            let hex = d.trim_start_matches("sha256:");
            fs::write(dest.join(format!("{hex}.manifest.json")), &bytes)
                .with_context(|| format!("writing manifest {d} into {}", dest.display()))?;
            manifests.push(
                serde_json::from_slice::<Value>(&bytes)
                    .with_context(|| format!("parsing manifest {d}"))?,
            );
        }
    } else {
        manifests.push(top_json);
    }
    for m in &manifests {
        let blobs =
            std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten());
        for b in blobs {
            let d = descriptor_digest(b)?;
            export_blob(layout_dir, d, dest, d.trim_start_matches("sha256:"))?;
        }
    }
    fs::write(dest.join("version"), "Directory Transport Version: 1.1\n")
        .with_context(|| format!("writing {}/version", dest.display()))?;
    Ok(())
}

/// Pushes the image or index tagged `tag` to `dest` (`HOST:PORT/NAME:TAG`, with or without
/// `docker://`) with skopeo: straight from `oci:` for OCI images, through a temporary `dir:`
/// export ([`export_dir_transport`]) for Docker-format ones, with `--all` for indexes and
/// `--dest-tls-verify=false` for loopback registries. `extra_args` go to `skopeo copy`
/// (e.g. `["--dest-creds", "user:pass"]`). The registry receives our manifest bytes unchanged.
pub fn skopeo_push(layout_dir: &Path, tag: &str, dest: &str, extra_args: &[&str]) -> Result<()> {
    let desc = tagged_descriptor(layout_dir, tag)?;
    let media_type = desc["mediaType"].as_str().unwrap_or(OCI_MANIFEST);
    let dest = if dest.starts_with("docker://") {
        dest.to_string()
    } else {
        format!("docker://{dest}")
    };
    let export;
    let src = if media_type == OCI_MANIFEST || media_type == OCI_INDEX {
        format!("oci:{}:{tag}", layout_dir.display())
    } else {
        export = tempfile::tempdir().context("creating a temporary dir: export")?;
        export_dir_transport(layout_dir, tag, export.path())?;
        format!("dir:{}", export.path().display())
    };
    let mut cmd = Command::new("skopeo");
    cmd.arg("copy").arg("--retry-times=2");
    if media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST {
        cmd.arg("--all");
    }
    let host = dest.trim_start_matches("docker://");
    if host.starts_with("127.0.0.1:")
        || host.starts_with("localhost:")
        || host.starts_with("[::1]:")
    {
        cmd.arg("--dest-tls-verify=false");
    }
    let out = cmd
        .args(extra_args)
        .arg(&src)
        .arg(&dest)
        .output()
        .context("running skopeo (apt-get install skopeo)")?;
    if !out.status.success() {
        bail!(
            "skopeo copy {src} {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Ready-made images

/// The applet names of the host's busybox (`busybox --list`), without `busybox` itself.
pub fn busybox_applets() -> Result<Vec<String>> {
    let out = Command::new(HOST_BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| {
            format!("running {HOST_BUSYBOX} --list (apt-get install busybox-static)")
        })?;
    if !out.status.success() {
        bail!(
            "{HOST_BUSYBOX} --list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = String::from_utf8(out.stdout).context("busybox --list printed non-UTF-8")?;
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
        .map(str::to_string)
        .collect())
}

/// `/etc/passwd` of the ready-made images: root, app (1000) and nobody (65534).
pub const BUSYBOX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
app:x:1000:1000:app:/home/app:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
/// `/etc/group` of the ready-made images.
pub const BUSYBOX_GROUP: &str = "root:x:0:\napp:x:1000:\nnobody:x:65534:\n";

/// The busybox root filesystem as one layer: `/bin/busybox` (the host's, see
/// [`HOST_BUSYBOX`]) and a symlink `bin/<applet>` → `busybox` per applet, `/etc/passwd` and
/// `/etc/group` (root, app 1000, nobody 65534), `/tmp` 1777, `/root` 0700, `/home/app` owned
/// by 1000:1000, empty `/dev`, `/proc`, `/sys`.
pub fn busybox_layer() -> Result<LayerBuilder> {
    let binary = fs::read(HOST_BUSYBOX)
        .with_context(|| format!("reading {HOST_BUSYBOX} (apt-get install busybox-static)"))?;
    let mut l = LayerBuilder::new()
        .dir("bin", 0o755)
        .file("bin/busybox", binary, 0o755);
    for applet in busybox_applets()? {
        l = l.symlink(&format!("bin/{applet}"), "busybox");
    }
    Ok(l.dir("dev", 0o755)
        .dir("etc", 0o755)
        .file("etc/passwd", BUSYBOX_PASSWD, 0o644)
        .file("etc/group", BUSYBOX_GROUP, 0o644)
        .dir("home", 0o755)
        .owner(1000, 1000)
        .dir("home/app", 0o755)
        .owner(0, 0)
        .dir("proc", 0o755)
        .dir("root", 0o700)
        .dir("sys", 0o755)
        .dir("tmp", 0o1777)
        .dir("usr", 0o755)
        .dir("var", 0o755))
}

/// A busybox image: [`busybox_layer`] (gzip), `Cmd ["sh"]`, `PATH` set.
pub fn busybox() -> Result<ImageBuilder> {
    Ok(ImageBuilder::new()
        .layer(busybox_layer()?, Compression::Gzip)
        .env("PATH", DEFAULT_PATH)
        .cmd(["sh"]))
}

/// The busybox image with zstd layers: [`busybox_layer`] and a second layer holding
/// `/etc/zstd` (`"zstd\n"`), both zstd-compressed (OCI format).
pub fn zstd_busybox() -> Result<ImageBuilder> {
    Ok(ImageBuilder::new()
        .layer(busybox_layer()?, Compression::Zstd)
        .layer(
            LayerBuilder::new().file("etc/zstd", "zstd\n", 0o644),
            Compression::Zstd,
        )
        .env("PATH", DEFAULT_PATH)
        .cmd(["sh"]))
}

/// Files of [`whiteouts`] after all three layers are applied: path and content.
pub const WHITEOUTS_FILES: &[(&str, &str)] = &[
    ("a/keep", "keep v1\n"),
    ("a/added", "added in layer 2\n"),
    ("d/new", "new in layer 3\n"),
    ("f", "f v3\n"),
];
/// Directories of [`whiteouts`] after all three layers are applied.
pub const WHITEOUTS_DIRS: &[&str] = &["a", "d"];
/// Paths that the upper layers of [`whiteouts`] delete.
pub const WHITEOUTS_ABSENT: &[&str] = &["a/remove-me", "d/old1", "d/old2", "d/sub", "gone"];

/// Three gzip layers that exercise deletions (no busybox; check the unpacked tree with
/// [`check_whiteouts_rootfs`]):
/// 1. `a/keep`, `a/remove-me`, `d/old1`, `d/old2`, `d/sub/deep`, `f` (`"f v1"`), `gone/inner`;
/// 2. whiteout of the file `a/remove-me` and of the directory `gone`, a new file `a/added`;
/// 3. `d` made opaque with a new `d/new`, and `f` replaced (`"f v3"`).
pub fn whiteouts() -> ImageBuilder {
    let l1 = LayerBuilder::new()
        .dir("a", 0o755)
        .file("a/keep", "keep v1\n", 0o644)
        .file("a/remove-me", "remove me\n", 0o644)
        .dir("d", 0o755)
        .file("d/old1", "old 1\n", 0o644)
        .file("d/old2", "old 2\n", 0o644)
        .dir("d/sub", 0o755)
        .file("d/sub/deep", "deep\n", 0o644)
        .file("f", "f v1\n", 0o644)
        .dir("gone", 0o755)
        .file("gone/inner", "inner\n", 0o644);
    let l2 = LayerBuilder::new()
        .dir("a", 0o755)
        .whiteout("a/remove-me")
        .file("a/added", "added in layer 2\n", 0o644)
        .whiteout("gone");
    let l3 = LayerBuilder::new()
        .dir("d", 0o755)
        .opaque("d")
        .file("d/new", "new in layer 3\n", 0o644)
        .file("f", "f v3\n", 0o644);
    ImageBuilder::new()
        .layer(l1, Compression::Gzip)
        .layer(l2, Compression::Gzip)
        .layer(l3, Compression::Gzip)
        .cmd(["/bin/sh"])
}

/// Checks that `root` is the flattened [`whiteouts`] image: the expected files with their
/// contents and directories, none of the deleted paths, and no whiteout file left over.
pub fn check_whiteouts_rootfs(root: &Path) -> Result<()> {
    for (path, content) in WHITEOUTS_FILES {
        let got = fs::read(root.join(path))
            .with_context(|| format!("whiteouts image: {path} missing in {}", root.display()))?;
        if got != content.as_bytes() {
            bail!(
                "whiteouts image: {path} holds {:?}, expected {content:?}",
                String::from_utf8_lossy(&got)
            );
        }
    }
    for dir in WHITEOUTS_DIRS {
        if !root.join(dir).is_dir() {
            bail!(
                "whiteouts image: {dir} is not a directory in {}",
                root.display()
            );
        }
    }
    for path in WHITEOUTS_ABSENT {
        if fs::symlink_metadata(root.join(path)).is_ok() {
            bail!(
                "whiteouts image: {path} should have been deleted in {}",
                root.display()
            );
        }
    }
    for dir in ["", "a", "d"] {
        let entries = fs::read_dir(root.join(dir))
            .with_context(|| format!("listing {}", root.join(dir).display()))?;
        for e in entries {
            let name = e?.file_name();
            if name.as_bytes().starts_with(b".wh.") {
                bail!(
                    "whiteouts image: whiteout {name:?} left in {}",
                    root.join(dir).display()
                );
            }
        }
    }
    Ok(())
}

/// One layer-unpacking attack per variant, for [`hostile`]. Every attack aims at a directory
/// `target` outside the unpack destination that the test owns (see
/// [`hostile_target_prepare`] and [`hostile_target_check`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hostile {
    /// A file `../../…/<target>/pwned-dotdot`: `..` climbing out of the destination.
    DotDot,
    /// A file `/../../…/<target>/pwned-absolute`: an absolute name that still climbs once
    /// its leading `/` is stripped.
    Absolute,
    /// A symlink `evil` → `<target>` (absolute), then a file `evil/pwned-symlink`.
    SymlinkOut,
    /// A symlink `evil-rel` → `../../…/<target>` (relative), then `evil-rel/pwned-symlink-rel`.
    SymlinkRelativeOut,
    /// A symlink `sf` → `<target>/pwned-symlink-file` (dangling), then a regular file `sf`:
    /// writing it through the symlink would create the target's file.
    SymlinkThenFile,
    /// A symlink `sd` → `<target>`, then a directory entry `sd` with mode 0700 (a chmod
    /// through the symlink would change the target), then `sd/pwned-symlink-dir`.
    SymlinkThenDir,
    /// A hardlink `link-out` → `../../…/<target>/secret`: linking a host file into the image.
    HardlinkOut,
    /// A hardlink `hl` → `/<target>/secret`, then a regular file `hl`: writing it through
    /// the link would overwrite the secret.
    HardlinkWriteThrough,
    /// A whiteout `../../…/<target>/.wh.secret`: deleting a host file.
    WhiteoutOut,
    /// A symlink `wd` → `<target>`, then a whiteout `wd/.wh.secret`.
    WhiteoutThroughSymlink,
}

impl Hostile {
    /// Every attack.
    pub const ALL: [Hostile; 10] = [
        Hostile::DotDot,
        Hostile::Absolute,
        Hostile::SymlinkOut,
        Hostile::SymlinkRelativeOut,
        Hostile::SymlinkThenFile,
        Hostile::SymlinkThenDir,
        Hostile::HardlinkOut,
        Hostile::HardlinkWriteThrough,
        Hostile::WhiteoutOut,
        Hostile::WhiteoutThroughSymlink,
    ];

    /// A short kebab-case name, usable as an image tag.
    pub fn name(self) -> &'static str {
        match self {
            Hostile::DotDot => "dotdot",
            Hostile::Absolute => "absolute",
            Hostile::SymlinkOut => "symlink-out",
            Hostile::SymlinkRelativeOut => "symlink-relative-out",
            Hostile::SymlinkThenFile => "symlink-then-file",
            Hostile::SymlinkThenDir => "symlink-then-dir",
            Hostile::HardlinkOut => "hardlink-out",
            Hostile::HardlinkWriteThrough => "hardlink-write-through",
            Hostile::WhiteoutOut => "whiteout-out",
            Hostile::WhiteoutThroughSymlink => "whiteout-through-symlink",
        }
    }
}

/// The harmless file every hostile layer carries before its attack.
pub const HARMLESS_FILE: &str = "harmless.txt";
/// Content of [`HARMLESS_FILE`].
pub const HARMLESS_CONTENT: &str = "harmless\n";
/// The file in the target directory that hardlink and whiteout attacks aim at.
pub const HOSTILE_SECRET: &str = "secret";
/// Content of [`HOSTILE_SECRET`].
pub const HOSTILE_SECRET_CONTENT: &str = "host secret, must not change\n";

/// Enough `../` to climb from any unpack directory to `/`.
const CLIMB: &str = "../../../../../../../../../../../../../../../../";

/// A one-layer image carrying the attack `kind` against the absolute directory `target`.
/// The layer starts with [`HARMLESS_FILE`], so a test can tell "refused cleanly" (pull
/// failed, nothing written outside) from "unpacked harmlessly" (pull succeeded, the
/// harmless file is there, [`hostile_target_check`] passes).
pub fn hostile(kind: Hostile, target: &Path) -> ImageBuilder {
    let t = target.as_os_str().as_bytes();
    let t_rel = String::from_utf8_lossy(t.strip_prefix(b"/").unwrap_or(t)).into_owned();
    let t_abs = format!("/{t_rel}");
    let mut l = LayerBuilder::new().raw(RawEntry::file(HARMLESS_FILE, HARMLESS_CONTENT));
    if !target.is_absolute() {
        l.problems.push(format!(
            "hostile target {} must be absolute",
            target.display()
        ));
    }
    let file = |name: String| RawEntry::file(name, "pwned\n");
    l = match kind {
        Hostile::DotDot => l.raw(file(format!("{CLIMB}{t_rel}/pwned-dotdot"))),
        Hostile::Absolute => l.raw(file(format!(
            "/../../../../../../../..{t_abs}/pwned-absolute"
        ))),
        Hostile::SymlinkOut => l
            .raw(RawEntry::symlink("evil", t_abs.clone()))
            .raw(file("evil/pwned-symlink".into())),
        Hostile::SymlinkRelativeOut => l
            .raw(RawEntry::symlink("evil-rel", format!("{CLIMB}{t_rel}")))
            .raw(file("evil-rel/pwned-symlink-rel".into())),
        Hostile::SymlinkThenFile => l
            .raw(RawEntry::symlink(
                "sf",
                format!("{t_abs}/pwned-symlink-file"),
            ))
            .raw(file("sf".into())),
        Hostile::SymlinkThenDir => l
            .raw(RawEntry::symlink("sd", t_abs.clone()))
            .raw(RawEntry::dir("sd/").mode(0o700))
            .raw(file("sd/pwned-symlink-dir".into())),
        Hostile::HardlinkOut => l.raw(RawEntry::hardlink(
            "link-out",
            format!("{CLIMB}{t_rel}/{HOSTILE_SECRET}"),
        )),
        Hostile::HardlinkWriteThrough => l
            .raw(RawEntry::hardlink(
                "hl",
                format!("{t_abs}/{HOSTILE_SECRET}"),
            ))
            .raw(file("hl".into())),
        Hostile::WhiteoutOut => l.raw(RawEntry::file(
            format!("{CLIMB}{t_rel}/.wh.{HOSTILE_SECRET}"),
            "",
        )),
        Hostile::WhiteoutThroughSymlink => l
            .raw(RawEntry::symlink("wd", t_abs.clone()))
            .raw(RawEntry::file(format!("wd/.wh.{HOSTILE_SECRET}"), "")),
    };
    ImageBuilder::new()
        .layer(l, Compression::Gzip)
        .label("org.pelagos.test.hostile", kind.name())
}

/// Creates the attack target: the directory `target` (mode 0755) holding only
/// [`HOSTILE_SECRET`].
pub fn hostile_target_prepare(target: &Path) -> Result<()> {
    fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    fs::set_permissions(target, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", target.display()))?;
    let secret = target.join(HOSTILE_SECRET);
    fs::write(&secret, HOSTILE_SECRET_CONTENT)
        .with_context(|| format!("writing {}", secret.display()))?;
    Ok(())
}

/// Checks that no attack reached `target`: it still has mode 0755 and holds only
/// [`HOSTILE_SECRET`], unchanged and with a single link.
pub fn hostile_target_check(target: &Path) -> Result<()> {
    let meta = fs::metadata(target).with_context(|| format!("{} is gone", target.display()))?;
    if meta.mode() & 0o7777 != 0o755 {
        bail!(
            "{} has mode {:o} (was 0755)",
            target.display(),
            meta.mode() & 0o7777
        );
    }
    let mut names = fs::read_dir(target)
        .with_context(|| format!("listing {}", target.display()))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    if names != [HOSTILE_SECRET] {
        bail!(
            "{} holds {names:?}, expected only {HOSTILE_SECRET:?}",
            target.display()
        );
    }
    let secret = target.join(HOSTILE_SECRET);
    let meta = fs::symlink_metadata(&secret)?;
    if !meta.is_file() || meta.nlink() != 1 {
        bail!(
            "{} is not a single-link file any more (nlink {})",
            secret.display(),
            meta.nlink()
        );
    }
    if fs::read(&secret)? != HOSTILE_SECRET_CONTENT.as_bytes() {
        bail!("{} was modified", secret.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Splitting a root filesystem into layers

/// Apparent size of a host tree (file sizes plus a tar header per entry), not crossing file
/// systems.
fn tree_size(path: &Path, dev: u64) -> Result<u64> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut size = 512
        + if meta.is_file() {
            meta.len().div_ceil(512) * 512
        } else {
            0
        };
    if meta.is_dir() && meta.dev() == dev {
        for e in fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
            size += tree_size(&e?.path(), dev)?;
        }
    }
    Ok(size)
}

/// Splits the directory tree `root` (e.g. a debootstrapped Debian) into `layers` layers of
/// roughly equal uncompressed size, keeping owners, modes, xattrs, symlinks and hardlinks
/// (device nodes are skipped; other file systems mounted below `root` are not entered).
///
/// The tree is cut into subtrees: top-level entries first, and any directory bigger than
/// half a layer's share is replaced by its children, down to four levels (so `usr` becomes
/// `usr/bin`, `usr/lib`, ... and, if still too big, `usr/lib/x86_64-linux-gnu`, ...). The
/// subtrees are dealt out largest first to the currently smallest layer; each layer also
/// carries the directory entries of its subtrees' parents. The layers' paths are disjoint, so
/// their order does not matter. Hardlinked files stay whole in each layer that has a link.
pub fn rootfs_layers(root: &Path, layers: usize) -> Result<Vec<LayerBuilder>> {
    if layers == 0 {
        bail!("at least one layer is needed to hold {}", root.display());
    }
    let meta = fs::metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    let dev = meta.dev();
    let total = tree_size(root, dev)?;
    let share = total / layers as u64;
    // (archive path, size, depth); start with the top-level entries.
    let mut units: Vec<(String, u64, usize)> = Vec::new();
    let mut todo: Vec<(String, usize)> = vec![(String::new(), 0)];
    while let Some((dir, depth)) = todo.pop() {
        let host = root.join(&dir);
        let mut names = fs::read_dir(&host)
            .with_context(|| format!("listing {}", host.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        for name in names {
            let Some(n) = name.to_str() else {
                bail!("{}: file name {name:?} is not UTF-8", host.display());
            };
            let path = if dir.is_empty() {
                n.to_string()
            } else {
                format!("{dir}/{n}")
            };
            let m = fs::symlink_metadata(root.join(&path))?;
            let size = tree_size(&root.join(&path), dev)?;
            if m.is_dir() && m.dev() == dev && size > share / 2 && depth < 3 {
                todo.push((path, depth + 1));
            } else {
                units.push((path, size, depth));
            }
        }
    }
    units.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut bins: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); layers];
    for (path, size, _) in units {
        if let Some(bin) = bins.iter_mut().min_by_key(|b| b.0) {
            bin.0 += size;
            bin.1.push(path);
        }
    }
    let mut out = Vec::new();
    for (_, mut paths) in bins {
        paths.sort();
        let mut parents = BTreeSet::new();
        for p in &paths {
            let mut acc = String::new();
            let parts: Vec<&str> = p.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(part);
                parents.insert(acc.clone());
            }
        }
        let mut l = LayerBuilder::new();
        for p in parents {
            l = l.host_entry(root.join(&p), &p);
        }
        for p in paths {
            l = l.host_path(root.join(&p), &p);
        }
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Stdio};
    use std::time::{Duration, Instant};

    /// One tar entry as read back with the tar crate (which understands PAX records).
    #[derive(Debug)]
    struct Ent {
        path: Vec<u8>,
        kind: tar::EntryType,
        link: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
        data: Vec<u8>,
        xattrs: Vec<(String, Vec<u8>)>,
    }

    fn read_tar(bytes: &[u8]) -> Vec<Ent> {
        let mut ar = tar::Archive::new(bytes);
        let mut out = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut xattrs = Vec::new();
            if let Some(exts) = e.pax_extensions().unwrap() {
                for x in exts {
                    let x = x.unwrap();
                    if let Some(k) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        xattrs.push((k.to_string(), x.value_bytes().to_vec()));
                    }
                }
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push(Ent {
                path: e.path_bytes().to_vec(),
                kind: e.header().entry_type(),
                link: e.link_name_bytes().map(|l| l.to_vec()).unwrap_or_default(),
                mode: e.header().mode().unwrap(),
                uid: e.header().uid().unwrap(),
                gid: e.header().gid().unwrap(),
                mtime: e.header().mtime().unwrap(),
                data,
                xattrs,
            });
        }
        out
    }

    fn decompress(blob: &[u8], media_type: &str) -> Vec<u8> {
        let mut out = Vec::new();
        match Compression::from_media_type(media_type).unwrap() {
            Compression::None => out.extend_from_slice(blob),
            Compression::Gzip => {
                flate2::read::GzDecoder::new(blob)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(blob)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    fn find<'a>(ents: &'a [Ent], path: &str) -> &'a Ent {
        ents.iter()
            .find(|e| e.path == path.as_bytes())
            .unwrap_or_else(|| panic!("no entry {path}"))
    }

    /// Checks a written image against its layout, byte by byte: index.json entry, manifest
    /// digest and size, config, every layer's digest, size and diff ID. Returns the layers'
    /// entries.
    fn verify_layout(dir: &Path, built: &BuiltImage) -> Vec<Vec<Ent>> {
        let index: Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let desc = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"][REF_NAME] == built.tag.as_str())
            .expect("tag in index.json");
        assert_eq!(desc["digest"], built.manifest_digest.as_str());
        assert_eq!(desc["size"], built.manifest_size);
        assert_eq!(desc["mediaType"], built.manifest_media_type.as_str());
        let oci_layout: Value =
            serde_json::from_slice(&fs::read(dir.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");

        let manifest = read_blob(dir, &built.manifest_digest).unwrap();
        assert_eq!(manifest, built.manifest);
        assert_eq!(manifest.len() as u64, built.manifest_size);
        let m: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], built.manifest_media_type.as_str());
        assert_eq!(m["config"]["digest"], built.config_digest.as_str());
        let config = read_blob(dir, &built.config_digest).unwrap();
        assert_eq!(m["config"]["size"], config.len() as u64);
        let c: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(c["rootfs"]["type"], "layers");
        assert_eq!(c["rootfs"]["diff_ids"], json!(built.diff_ids));
        assert_eq!(c["os"], built.platform.os.as_str());
        assert_eq!(c["architecture"], built.platform.architecture.as_str());

        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), built.layer_digests.len());
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let digest = l["digest"].as_str().unwrap();
            assert_eq!(digest, built.layer_digests[i]);
            let blob = read_blob(dir, digest).unwrap();
            assert_eq!(l["size"], blob.len() as u64);
            assert_eq!(blob.len() as u64, built.layer_sizes[i]);
            let tar = decompress(&blob, l["mediaType"].as_str().unwrap());
            assert_eq!(
                sha256_digest(&tar),
                built.diff_ids[i],
                "diff ID of layer {i}"
            );
            out.push(read_tar(&tar));
        }
        out
    }

    fn skopeo_inspect(reference: &str, raw: bool) -> Vec<u8> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("inspect");
        if raw {
            cmd.arg("--raw");
        }
        let out = cmd.arg(reference).output().expect("running skopeo");
        assert!(
            out.status.success(),
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn is_root() -> bool {
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }

    /// `umoci unpack` of DIR:TAG into a new bundle under `work`: a third-party consumer of
    /// the layout that applies whiteouts and hardlinks.
    fn umoci_unpack(layout: &Path, tag: &str, work: &Path) -> PathBuf {
        let bundle = work.join(format!("bundle-{tag}"));
        let mut cmd = Command::new("umoci");
        cmd.arg("unpack");
        if !is_root() {
            cmd.arg("--rootless");
        }
        let out = cmd
            .arg("--image")
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle)
            .output()
            .expect("running umoci");
        assert!(
            out.status.success(),
            "umoci unpack: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bundle.join("rootfs")
    }

    #[test]
    fn busybox_layout_parses_back_and_skopeo_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        let built = busybox().unwrap().write(dir.path(), "latest").unwrap();
        assert_eq!(built.manifest_media_type, OCI_MANIFEST);
        assert_eq!(
            built.layer_media_types,
            ["application/vnd.oci.image.layer.v1.tar+gzip"]
        );
        let layers = verify_layout(dir.path(), &built);
        let ents = &layers[0];

        let bb = find(ents, "bin/busybox");
        assert_eq!(bb.kind, tar::EntryType::Regular);
        assert_eq!(bb.data, fs::read(HOST_BUSYBOX).unwrap());
        assert_eq!(bb.mode, 0o755);
        let sh = find(ents, "bin/sh");
        assert_eq!(sh.kind, tar::EntryType::Symlink);
        assert_eq!(sh.link, b"busybox");
        assert_eq!(ents.iter().filter(|e| e.path == b"bin/busybox").count(), 1);
        let applets = busybox_applets().unwrap();
        assert!(applets.len() > 100, "{} applets", applets.len());
        assert!(!applets.iter().any(|a| a == "busybox"));
        assert_eq!(
            ents.iter()
                .filter(|e| e.kind == tar::EntryType::Symlink)
                .count(),
            applets.len()
        );
        assert_eq!(find(ents, "tmp/").mode, 0o1777);
        assert_eq!(find(ents, "root/").mode, 0o700);
        let home = find(ents, "home/app/");
        assert_eq!((home.uid, home.gid), (1000, 1000));
        assert_eq!(find(ents, "etc/passwd").data, BUSYBOX_PASSWD.as_bytes());
        assert_eq!(find(ents, "etc/group").data, BUSYBOX_GROUP.as_bytes());
        assert!(ents.iter().all(|e| e.mtime == DEFAULT_MTIME));

        let c: Value = serde_json::from_slice(&built.config).unwrap();
        assert_eq!(c["config"]["Cmd"], json!(["sh"]));
        assert_eq!(c["config"]["Env"], json!([format!("PATH={DEFAULT_PATH}")]));

        let inspect: Value = serde_json::from_slice(&skopeo_inspect(
            &format!("oci:{}:latest", dir.path().display()),
            false,
        ))
        .unwrap();
        assert_eq!(inspect["Digest"], built.manifest_digest.as_str());
        assert_eq!(inspect["Layers"], json!(built.layer_digests));
        assert_eq!(
            inspect["Architecture"],
            Platform::host().architecture.as_str()
        );
        assert_eq!(inspect["Os"], "linux");
    }

    #[test]
    fn docker_format_and_zstd_layers() {
        let dir = tempfile::tempdir().unwrap();
        let docker = busybox()
            .unwrap()
            .format(Format::Docker)
            .user("app")
            .workdir("/home/app")
            .stop_signal("SIGINT")
            .label("a", "b")
            .expose("80/tcp")
            .volume("/data")
            .entrypoint(["/bin/sh", "-c"])
            .config_field("Healthcheck", json!({ "Test": ["NONE"] }))
            .write(dir.path(), "docker")
            .unwrap();
        assert_eq!(docker.manifest_media_type, DOCKER_MANIFEST);
        assert_eq!(
            docker.layer_media_types,
            ["application/vnd.docker.image.rootfs.diff.tar.gzip"]
        );
        verify_layout(dir.path(), &docker);
        let m: Value = serde_json::from_slice(&docker.manifest).unwrap();
        assert_eq!(m["config"]["mediaType"], DOCKER_CONFIG);
        let c: Value = serde_json::from_slice(&docker.config).unwrap();
        assert_eq!(c["config"]["User"], "app");
        assert_eq!(c["config"]["WorkingDir"], "/home/app");
        assert_eq!(c["config"]["StopSignal"], "SIGINT");
        assert_eq!(c["config"]["Labels"], json!({ "a": "b" }));
        assert_eq!(c["config"]["ExposedPorts"], json!({ "80/tcp": {} }));
        assert_eq!(c["config"]["Volumes"], json!({ "/data": {} }));
        assert_eq!(c["config"]["Entrypoint"], json!(["/bin/sh", "-c"]));
        assert_eq!(c["config"]["Healthcheck"]["Test"], json!(["NONE"]));
        // skopeo 1.9 resolves only OCI-typed tags in oci: layouts; dir: takes the rest.
        let export = dir.path().join("export");
        export_dir_transport(dir.path(), "docker", &export).unwrap();
        let inspect: Value =
            serde_json::from_slice(&skopeo_inspect(&format!("dir:{}", export.display()), false))
                .unwrap();
        assert_eq!(inspect["Digest"], docker.manifest_digest.as_str());
        assert_eq!(inspect["Labels"]["a"], "b");

        let zstd = zstd_busybox().unwrap().write(dir.path(), "zstd").unwrap();
        assert_eq!(
            zstd.layer_media_types,
            ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
        );
        let layers = verify_layout(dir.path(), &zstd);
        assert_eq!(find(&layers[1], "etc/zstd").data, b"zstd\n");
        let raw = skopeo_inspect(&format!("oci:{}:zstd", dir.path().display()), true);
        assert_eq!(raw, zstd.manifest);
        // Both tags remain in the one layout.
        verify_layout(dir.path(), &docker);

        let err = zstd_busybox()
            .unwrap()
            .format(Format::Docker)
            .write(dir.path(), "bad")
            .unwrap_err();
        assert!(format!("{err:#}").contains("zstd"), "{err:#}");
    }

    #[test]
    fn writes_are_deterministic_and_retagging_replaces() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let image = whiteouts();
        let x = image.write(a.path(), "t").unwrap();
        let y = image.write(b.path(), "t").unwrap();
        assert_eq!(x, y);
        let other = image.clone().label("v", "2").write(a.path(), "t").unwrap();
        assert_ne!(other.manifest_digest, x.manifest_digest);
        assert_eq!(other.layer_digests, x.layer_digests);
        let index: Value =
            serde_json::from_slice(&fs::read(a.path().join("index.json")).unwrap()).unwrap();
        let m = index["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 1, "{index}");
        assert_eq!(m[0]["digest"], other.manifest_digest.as_str());
        verify_layout(a.path(), &other);
    }

    #[test]
    fn index_lists_both_platforms() {
        let dir = tempfile::tempdir().unwrap();
        let bb = busybox().unwrap();
        let index = write_index(
            dir.path(),
            "multi",
            &[
                bb.clone().platform("linux", "amd64", None),
                bb.clone().platform("linux", "arm64", Some("v8")),
            ],
        )
        .unwrap();
        assert_eq!(index.media_type, OCI_INDEX);
        assert_eq!(index.digest, sha256_digest(&index.index));
        assert_eq!(read_blob(dir.path(), &index.digest).unwrap(), index.index);
        let raw = skopeo_inspect(&format!("oci:{}:multi", dir.path().display()), true);
        assert_eq!(raw, index.index);
        let v: Value = serde_json::from_slice(&raw).unwrap();
        let m = v["manifests"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0]["platform"],
            json!({ "architecture": "amd64", "os": "linux" })
        );
        assert_eq!(
            m[1]["platform"],
            json!({ "architecture": "arm64", "os": "linux", "variant": "v8" })
        );
        for (i, img) in index.images.iter().enumerate() {
            assert_eq!(m[i]["digest"], img.manifest_digest.as_str());
            assert_eq!(m[i]["size"], img.manifest_size);
            let c: Value = serde_json::from_slice(&img.config).unwrap();
            assert_eq!(c["architecture"], img.platform.architecture.as_str());
        }
        // Same layers, different configs.
        assert_eq!(index.images[0].layer_digests, index.images[1].layer_digests);
        assert_ne!(index.images[0].config_digest, index.images[1].config_digest);

        let docker = write_index(
            dir.path(),
            "list",
            &[bb.format(Format::Docker)
                .platform("linux", "arm", Some("v7"))],
        )
        .unwrap();
        assert_eq!(docker.media_type, DOCKER_MANIFEST_LIST);
        let export = dir.path().join("export");
        export_dir_transport(dir.path(), "list", &export).unwrap();
        let raw = skopeo_inspect(&format!("dir:{}", export.display()), true);
        assert_eq!(raw, docker.index);
        let inner = fs::read(export.join(format!(
            "{}.manifest.json",
            docker.images[0].manifest_digest.trim_start_matches("sha256:")
        )))
        .unwrap();
        assert_eq!(inner, docker.images[0].manifest);
    }

    #[test]
    fn whiteouts_flatten_as_documented() {
        let dir = tempfile::tempdir().unwrap();
        let built = whiteouts()
            .write(dir.path().join("layout").as_path(), "w")
            .unwrap();
        let layers = verify_layout(&dir.path().join("layout"), &built);
        assert_eq!(layers.len(), 3);
        let names = |l: &[Ent]| -> Vec<String> {
            l.iter()
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect()
        };
        assert!(names(&layers[1]).contains(&"a/.wh.remove-me".to_string()));
        assert!(names(&layers[1]).contains(&".wh.gone".to_string()));
        assert!(names(&layers[2]).contains(&"d/.wh..wh..opq".to_string()));
        let rootfs = umoci_unpack(&dir.path().join("layout"), "w", dir.path());
        check_whiteouts_rootfs(&rootfs).unwrap();
        // The checker notices a deletion that did not happen.
        fs::write(rootfs.join("gone"), "back").unwrap();
        assert!(check_whiteouts_rootfs(&rootfs).is_err());
    }

    #[test]
    fn hostile_layers_carry_their_attacks_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        hostile_target_prepare(&target).unwrap();
        hostile_target_check(&target).unwrap();
        let t = target.to_str().unwrap().trim_start_matches('/');
        let layout = dir.path().join("layout");
        for kind in Hostile::ALL {
            let built = hostile(kind, &target).write(&layout, kind.name()).unwrap();
            let layers = verify_layout(&layout, &built);
            let ents = &layers[0];
            assert_eq!(ents[0].path, HARMLESS_FILE.as_bytes(), "{kind:?}");
            assert_eq!(ents[0].data, HARMLESS_CONTENT.as_bytes());
            let last = ents.last().unwrap();
            let path = String::from_utf8_lossy(&last.path).into_owned();
            let link = String::from_utf8_lossy(&ents[1].link).into_owned();
            match kind {
                Hostile::DotDot => assert_eq!(path, format!("{CLIMB}{t}/pwned-dotdot")),
                Hostile::Absolute => {
                    assert!(path.starts_with("/../"), "{path}");
                    assert!(path.ends_with(&format!("/{t}/pwned-absolute")), "{path}");
                }
                Hostile::SymlinkOut => {
                    assert_eq!(link, format!("/{t}"));
                    assert_eq!(path, "evil/pwned-symlink");
                }
                Hostile::SymlinkRelativeOut => assert_eq!(link, format!("{CLIMB}{t}")),
                Hostile::SymlinkThenFile => {
                    assert_eq!(ents[1].kind, tar::EntryType::Symlink);
                    assert_eq!((path.as_str(), last.kind), ("sf", tar::EntryType::Regular));
                }
                Hostile::SymlinkThenDir => {
                    assert_eq!(ents[2].kind, tar::EntryType::Directory);
                    assert_eq!(ents[2].mode, 0o700);
                }
                Hostile::HardlinkOut => {
                    assert_eq!(last.kind, tar::EntryType::Link);
                    assert_eq!(link, format!("{CLIMB}{t}/secret"));
                }
                Hostile::HardlinkWriteThrough => {
                    assert_eq!(ents[1].kind, tar::EntryType::Link);
                    assert_eq!(link, format!("/{t}/secret"));
                    assert_eq!((path.as_str(), last.kind), ("hl", tar::EntryType::Regular));
                }
                Hostile::WhiteoutOut => assert_eq!(path, format!("{CLIMB}{t}/.wh.secret")),
                Hostile::WhiteoutThroughSymlink => assert_eq!(path, "wd/.wh.secret"),
            }
            skopeo_inspect(&format!("oci:{}:{}", layout.display(), kind.name()), false);
        }
        // The checker notices each kind of damage.
        fs::write(target.join("pwned"), "x").unwrap();
        assert!(hostile_target_check(&target).is_err());
        fs::remove_file(target.join("pwned")).unwrap();
        fs::hard_link(target.join(HOSTILE_SECRET), dir.path().join("link")).unwrap();
        assert!(hostile_target_check(&target).is_err());
        fs::remove_file(dir.path().join("link")).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(hostile_target_check(&target).is_err());
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        hostile_target_check(&target).unwrap();
        let err = hostile(Hostile::DotDot, Path::new("rel"))
            .write(&layout, "x")
            .unwrap_err();
        assert!(format!("{err:#}").contains("must be absolute"), "{err:#}");
    }

    #[test]
    fn long_names_and_xattrs_go_through_pax() {
        let long = format!("{}/file", "d".repeat(150));
        let target = "t".repeat(120);
        let tar = LayerBuilder::new()
            .file(&long, "long", 0o600)
            .xattr("user.comment", b"v\0binary".to_vec())
            .xattr("security.capability", vec![1, 2, 3])
            .symlink("link", &target)
            .hardlink("hard", &long)
            .char_device("dev/null", 1, 3, 0o666)
            .fifo("pipe", 0o644)
            .owner(7, 8)
            .mtime(42)
            .file("owned", "", 0o4755)
            .raw(RawEntry::file(format!("../{}", "x".repeat(120)), "raw"))
            .tar_bytes()
            .unwrap();
        let ents = read_tar(&tar);
        let f = find(&ents, &long);
        assert_eq!((f.data.as_slice(), f.mode), (&b"long"[..], 0o600));
        assert_eq!(
            f.xattrs,
            [
                ("user.comment".to_string(), b"v\0binary".to_vec()),
                ("security.capability".to_string(), vec![1, 2, 3])
            ]
        );
        assert_eq!(find(&ents, "link").link, target.as_bytes());
        assert_eq!(find(&ents, "hard").link, long.as_bytes());
        assert_eq!(find(&ents, "hard").kind, tar::EntryType::Link);
        assert_eq!(find(&ents, "dev/null").kind, tar::EntryType::Char);
        assert_eq!(find(&ents, "pipe").kind, tar::EntryType::Fifo);
        let owned = find(&ents, "owned");
        assert_eq!((owned.uid, owned.gid, owned.mode), (7, 8, 0o4755));
        assert_eq!(owned.mtime, 42);
        // A header given as is: only its checksum is fixed up.
        let mut h = tar::Header::new_gnu();
        h.set_path("hdr").unwrap();
        h.set_size(3);
        h.set_mode(0o640);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        let raw = read_tar(
            &LayerBuilder::new()
                .raw_header(h, "abc")
                .tar_bytes()
                .unwrap(),
        );
        assert_eq!(
            (raw[0].path.as_slice(), raw[0].data.as_slice()),
            (&b"hdr"[..], &b"abc"[..])
        );
        assert_eq!(raw[0].mode, 0o640);
        assert!(ents.iter().any(|e| e.path.starts_with(b"../xxx")));
    }

    #[test]
    fn mistakes_are_reported_with_the_path() {
        let err = LayerBuilder::new()
            .file("a/../b", "", 0o644)
            .tar_bytes()
            .unwrap_err();
        assert!(format!("{err:#}").contains("a/../b"), "{err:#}");
        let err = LayerBuilder::new()
            .xattr("user.x", "y")
            .tar_bytes()
            .unwrap_err();
        assert!(format!("{err:#}").contains("user.x"), "{err:#}");
        let dir = tempfile::tempdir().unwrap();
        let err = ImageBuilder::new()
            .layer(LayerBuilder::new().dir("/", 0o755), Compression::Gzip)
            .write(dir.path(), "t")
            .unwrap_err();
        assert!(format!("{err:#}").contains("root"), "{err:#}");
        let err = ImageBuilder::new()
            .layer(
                LayerBuilder::new().host_path("/nonexistent/pelagos", "x"),
                Compression::Gzip,
            )
            .write(dir.path(), "t")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/pelagos"),
            "{err:#}"
        );
        // Paths are cleaned, not refused, when they are merely untidy.
        let ents = read_tar(
            &LayerBuilder::new()
                .file("/./x//y/", "", 0o644)
                .tar_bytes()
                .unwrap(),
        );
        assert_eq!(ents[0].path, b"x/y");
        let err = read_blob(dir.path(), "sha256:00").unwrap_err();
        assert!(format!("{err:#}").contains("sha256:00"));
    }

    /// A small tree with every kind of entry `host_path` handles, under `root`.
    fn make_tree(root: &Path) {
        fs::create_dir_all(root.join("a/x")).unwrap();
        fs::create_dir_all(root.join("a/y")).unwrap();
        fs::create_dir_all(root.join("b")).unwrap();
        for (i, dir) in ["a/x", "a/y", "b"].iter().enumerate() {
            for j in 0..4 {
                let data = vec![b'a' + (i * 4 + j) as u8; 100_000 + j * 1000];
                fs::write(root.join(dir).join(format!("f{j}")), data).unwrap();
            }
        }
        fs::hard_link(root.join("a/x/f0"), root.join("a/x/f0-link")).unwrap();
        fs::hard_link(root.join("b/f0"), root.join("a/y/b-f0-link")).unwrap();
        std::os::unix::fs::symlink("a/x", root.join("sym")).unwrap();
        fs::write(root.join("small"), "small\n").unwrap();
        fs::set_permissions(root.join("small"), fs::Permissions::from_mode(0o4711)).unwrap();
        fs::set_permissions(root.join("a/y"), fs::Permissions::from_mode(0o750)).unwrap();
        xattr::set(root.join("small"), "user.pelagos", b"yes").unwrap();
        let st = Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .unwrap();
        assert!(st.success());
        if is_root() {
            std::os::unix::fs::chown(root.join("b/f1"), Some(1234), Some(5678)).unwrap();
            let st = Command::new("mknod")
                .arg(root.join("null"))
                .args(["c", "1", "3"])
                .status()
                .unwrap();
            assert!(st.success());
        }
    }

    #[test]
    fn host_trees_keep_metadata_and_skip_devices() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        make_tree(&root);
        let ents = read_tar(
            &LayerBuilder::new()
                .host_path(&root, "r")
                .tar_bytes()
                .unwrap(),
        );
        assert_eq!(ents[0].path, b"r/");
        let small = find(&ents, "r/small");
        assert_eq!(
            (small.mode, small.data.as_slice()),
            (0o4711, &b"small\n"[..])
        );
        assert_eq!(
            small.xattrs,
            [("user.pelagos".to_string(), b"yes".to_vec())]
        );
        assert_eq!(find(&ents, "r/a/y/").mode, 0o750);
        assert_eq!(find(&ents, "r/sym").link, b"a/x");
        assert_eq!(find(&ents, "r/fifo").kind, tar::EntryType::Fifo);
        // The first path of a multiply-linked file carries the data, later ones link to it.
        let link = find(&ents, "r/a/x/f0-link");
        assert_eq!(
            (link.kind, link.link.as_slice()),
            (tar::EntryType::Link, &b"r/a/x/f0"[..])
        );
        assert_eq!(find(&ents, "r/b/f0").kind, tar::EntryType::Link);
        assert_eq!(find(&ents, "r/a/y/b-f0-link").data.len(), 100_000);
        if is_root() {
            let f1 = find(&ents, "r/b/f1");
            assert_eq!((f1.uid, f1.gid), (1234, 5678));
            assert!(
                !ents.iter().any(|e| e.path == b"r/null"),
                "device node kept"
            );
        }
        let single = read_tar(
            &LayerBuilder::new()
                .host_entry(root.join("a"), "a")
                .tar_bytes()
                .unwrap(),
        );
        assert_eq!(single.len(), 1);
    }

    #[test]
    fn rootfs_layers_cover_the_tree_once_and_unpack_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        make_tree(&root);
        let layers = rootfs_layers(&root, 3).unwrap();
        assert_eq!(layers.len(), 3);
        let mut seen = BTreeMap::new();
        let mut sizes = Vec::new();
        let mut image = ImageBuilder::new().cmd(["/bin/sh"]);
        for l in &layers {
            let tar = l.tar_bytes().unwrap();
            sizes.push(tar.len());
            for e in read_tar(&tar) {
                if e.kind != tar::EntryType::Directory {
                    *seen
                        .entry(String::from_utf8_lossy(&e.path).into_owned())
                        .or_insert(0) += 1;
                }
            }
            image = image.layer(l.clone(), Compression::Gzip);
        }
        // Every non-directory exactly once, in some layer.
        let mut expected = vec![
            "a/x/f0",
            "a/x/f0-link",
            "a/x/f1",
            "a/x/f2",
            "a/x/f3",
            "a/y/b-f0-link",
            "a/y/f0",
            "a/y/f1",
            "a/y/f2",
            "a/y/f3",
            "b/f0",
            "b/f1",
            "b/f2",
            "b/f3",
            "fifo",
            "small",
            "sym",
        ];
        expected.sort();
        assert_eq!(
            seen.keys().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        assert!(seen.values().all(|n| *n == 1), "{seen:?}");
        // Three subtrees of ~400 kB each: one per layer.
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*max < 2 * *min, "unbalanced layers: {sizes:?}");

        let built = image.write(&dir.path().join("layout"), "rootfs").unwrap();
        verify_layout(&dir.path().join("layout"), &built);
        let rootfs = umoci_unpack(&dir.path().join("layout"), "rootfs", dir.path());
        for path in expected {
            let (a, b) = (root.join(path), rootfs.join(path));
            let (ma, mb) = (
                fs::symlink_metadata(&a).unwrap(),
                fs::symlink_metadata(&b).unwrap(),
            );
            assert_eq!(ma.mode(), mb.mode(), "{path}");
            if ma.is_file() {
                assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "{path}");
            }
        }
        assert_eq!(fs::read_link(rootfs.join("sym")).unwrap(), Path::new("a/x"));
        assert!(rootfs_layers(&root, 0).is_err());
    }

    /// A `docker-registry` (distribution) on a free loopback port with storage in a temp
    /// dir; killed (by pid) and removed on drop.
    struct Registry {
        child: Child,
        addr: String,
        _dir: tempfile::TempDir,
    }

    impl Registry {
        fn start() -> Registry {
            let dir = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry");
            let mut r = Registry {
                child,
                addr,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(&r.addr).is_err() {
                assert!(
                    r.child.try_wait().unwrap().is_none(),
                    "docker-registry exited"
                );
                assert!(Instant::now() < deadline, "docker-registry did not listen");
                std::thread::sleep(Duration::from_millis(20));
            }
            r
        }
    }

    impl Drop for Registry {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn skopeo_copy(args: &[&str], src: &str, dest: &str) {
        let out = Command::new("skopeo")
            .arg("copy")
            .args(args)
            .args(["--dest-tls-verify=false", src, dest])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn layouts_push_to_a_real_registry_unchanged() {
        let reg = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let bb = busybox().unwrap();
        let oci = bb.write(dir.path(), "oci").unwrap();
        let docker = bb
            .clone()
            .format(Format::Docker)
            .write(dir.path(), "docker")
            .unwrap();
        let zstd = zstd_busybox().unwrap().write(dir.path(), "zstd").unwrap();
        let index = write_index(
            dir.path(),
            "multi",
            &[bb.clone(), bb.platform("linux", "arm64", Some("v8"))],
        )
        .unwrap();
        let docker_index = write_index(
            dir.path(),
            "docker-list",
            &[busybox().unwrap().format(Format::Docker)],
        )
        .unwrap();
        for (tag, bytes) in [
            ("oci", &oci.manifest),
            ("docker", &docker.manifest),
            ("zstd", &zstd.manifest),
            ("multi", &index.index),
            ("docker-list", &docker_index.index),
        ] {
            let dest = format!("{}/testkit/busybox:{tag}", reg.addr);
            skopeo_push(dir.path(), tag, &dest, &[]).unwrap();
            let out = Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{dest}"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(&out.stdout, bytes, "registry's manifest for {tag}");
        }
        // Every platform of the index arrived.
        let arm = &index.images[1].manifest_digest;
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}/testkit/busybox@{arm}", reg.addr))
            .output()
            .unwrap();
        assert_eq!(out.stdout, index.images[1].manifest);
        let err = skopeo_push(dir.path(), "missing", &reg.addr, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
        // And back out of the registry: the layers skopeo fetches are ours.
        let back = dir.path().join("back");
        skopeo_copy(
            &["--src-tls-verify=false"],
            &format!("docker://{}/testkit/busybox:docker", reg.addr),
            &format!("oci:{}:b", back.display()),
        );
        let inspect: Value =
            serde_json::from_slice(&skopeo_inspect(&format!("oci:{}:b", back.display()), false))
                .unwrap();
        assert_eq!(inspect["Layers"], json!(docker.layer_digests));
    }
}
