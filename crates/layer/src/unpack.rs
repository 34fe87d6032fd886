//! Streaming, confined unpacking of one layer tar stream into a directory.
//!
//! Confinement model: the destination is opened once as a directory fd. Every entry path
//! is cleaned lexically (empty and `.` components dropped, `..` pops a component and is an
//! error if it would climb above the root, so a leading `/` is simply stripped). Parent
//! directories are then opened one component at a time with `openat2(O_NOFOLLOW,
//! RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` and created with
//! `mkdirat` when missing, so a symlink anywhere in a parent path is an error and is never
//! followed. The final component is always handled with `*at` calls on the parent fd that
//! do not follow symlinks; an existing entry is unlinked (or removed recursively, again
//! without following symlinks) before being replaced, so a symlink replaced by a directory
//! becomes a real directory and nothing is ever written through an existing file.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps,
    Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::{Compression, LayerError, Problem};

/// What to do with character and block device entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeviceNodes {
    /// Create them with `mknod`; failing to do so is an error.
    #[default]
    Create,
    /// Create them, but skip (and count) those `mknod` is not permitted to create.
    SkipIfNotPermitted,
    /// Never create them (they are counted in [`UnpackStats::skipped_devices`]).
    Skip,
}

/// Which xattr namespace overlayfs reads its metadata from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverlayXattrs {
    /// `trusted.overlay.*` (the default; needs CAP_SYS_ADMIN in the initial namespace).
    #[default]
    Trusted,
    /// `user.overlay.*`, for overlayfs mounted with `userxattr` (rootless).
    User,
}

impl OverlayXattrs {
    fn opaque(self) -> &'static str {
        match self {
            OverlayXattrs::Trusted => "trusted.overlay.opaque",
            OverlayXattrs::User => "user.overlay.opaque",
        }
    }
}

/// Options for [`unpack`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UnpackOptions {
    /// Apply the archive's numeric owners with `lchown` (default `true`).
    pub preserve_ownership: bool,
    /// Apply `SCHILY.xattr.*` extended attributes (default `true`). Overlayfs' own
    /// attributes (`trusted.overlay.*`, `user.overlay.*`) in the archive are always dropped.
    pub xattrs: bool,
    /// How to handle character and block devices (FIFOs are always created).
    pub devices: DeviceNodes,
    /// Delete whited-out files (and the lower contents of opaque directories) in `dest`
    /// instead of writing overlayfs whiteouts: for flattening layers into one tree.
    pub apply_whiteouts_in_place: bool,
    /// Namespace of the opaque-directory xattr.
    pub overlay_xattrs: OverlayXattrs,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            preserve_ownership: true,
            xattrs: true,
            devices: DeviceNodes::Create,
            apply_whiteouts_in_place: false,
            overlay_xattrs: OverlayXattrs::Trusted,
        }
    }
}

/// Counters describing what [`unpack`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackStats {
    /// Archive entries processed (including whiteouts and skipped ones).
    pub entries: u64,
    /// Regular files written.
    pub files: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    /// Directory entries.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Hardlinks.
    pub hardlinks: u64,
    /// Device nodes and FIFOs created.
    pub devices: u64,
    /// Device nodes skipped per [`UnpackOptions::devices`].
    pub skipped_devices: u64,
    /// Whiteouts (`.wh.<name>`) converted or applied.
    pub whiteouts: u64,
    /// Opaque directory markers converted or applied.
    pub opaque_dirs: u64,
    /// Overlayfs xattrs found in the archive and dropped.
    pub dropped_xattrs: u64,
}

/// Unpacks the layer blob read from `reader`, compressed as `compression`, into the
/// existing directory `dest`. The stream is decompressed and unpacked as it is read and
/// read to its end (so a digest-computing wrapper around `reader` sees every byte).
pub fn unpack(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, LayerError> {
    let root = rfs::open(
        dest,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::Destination {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let decoder = compression
        .decoder(reader)
        .map_err(|source| LayerError::Archive { source })?;
    let mut archive = tar::Archive::new(decoder);
    let mut unpacker = Unpacker {
        root,
        opts,
        stats: UnpackStats::default(),
        deferred: Vec::new(),
        cache: None,
        this_layer: HashSet::new(),
    };
    for entry in archive
        .entries()
        .map_err(|source| LayerError::Archive { source })?
    {
        let mut entry = entry.map_err(|source| LayerError::Archive { source })?;
        unpacker.entry(&mut entry)?;
    }
    unpacker.finish()?;
    // Read through the end-of-archive blocks and the compression trailer (checksums).
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|source| LayerError::Archive { source })?;
    Ok(unpacker.stats)
}

/// Like [`unpack`], with the compression detected from the stream's magic bytes.
pub fn unpack_detect(
    mut reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackStats, LayerError> {
    let mut prefix = [0u8; 4];
    let mut len = 0;
    while len < prefix.len() {
        match reader.read(&mut prefix[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(LayerError::Archive { source }),
        }
    }
    let compression = Compression::detect(&prefix[..len]);
    unpack(
        io::Cursor::new(prefix[..len].to_vec()).chain(reader),
        compression,
        dest,
        opts,
    )
}

/// An entry-level failure, turned into a [`LayerError`] once the entry name is attached.
enum Fail {
    Problem(Problem),
    Io(&'static str, io::Error),
}

impl From<Problem> for Fail {
    fn from(p: Problem) -> Self {
        Fail::Problem(p)
    }
}

impl Fail {
    fn named(self, entry: &str) -> LayerError {
        match self {
            Fail::Problem(problem) => LayerError::Entry {
                entry: entry.to_owned(),
                problem,
            },
            Fail::Io(action, source) => LayerError::EntryIo {
                entry: entry.to_owned(),
                action,
                source,
            },
        }
    }
}

fn io_fail(action: &'static str) -> impl FnOnce(Errno) -> Fail {
    move |e| Fail::Io(action, e.into())
}

type Comps = Vec<Vec<u8>>;

/// Lexically cleans an archive path into components below the root.
fn clean(path: &[u8]) -> Result<Comps, Problem> {
    let mut out: Comps = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if out.pop().is_none() {
                    return Err(Problem::PathEscapes);
                }
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Opens the directory `name` in `dir` without following any symlink.
fn open_dir_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat2(
        dir,
        os(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )
}

/// Metadata of an entry, with PAX overrides applied.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    atime: Timespec,
    mtime: Timespec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn parse_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?;
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let tv_sec: i64 = sec.parse().ok()?;
    let mut nsec: i64 = 0;
    let mut digits = 0;
    for ch in frac.chars().take(9) {
        nsec = nsec * 10 + i64::from(ch.to_digit(10)?);
        digits += 1;
    }
    for _ in digits..9 {
        nsec *= 10;
    }
    // A negative time with a fraction means sec - frac; keep it simple and clamp at 0 ns.
    Some(Timespec {
        tv_sec,
        tv_nsec: if tv_sec < 0 { 0 } else { nsec },
    })
}

struct DeferredDir {
    comps: Comps,
    mode: u32,
    times: Timestamps,
}

struct Unpacker<'o> {
    root: OwnedFd,
    opts: &'o UnpackOptions,
    stats: UnpackStats,
    /// Directories whose mode and times are set once everything is unpacked.
    deferred: Vec<DeferredDir>,
    /// The last parent directory opened, by cleaned path. Dropped whenever anything is
    /// removed, since a removal may orphan the directory the fd refers to.
    cache: Option<(Vec<u8>, OwnedFd)>,
    /// With `apply_whiteouts_in_place`: every path (and ancestor) this layer wrote, which an
    /// opaque marker must keep.
    this_layer: HashSet<Vec<u8>>,
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let name = lossy(&raw);
        self.stats.entries += 1;
        self.entry_inner(entry, &raw).map_err(|f| f.named(&name))
    }

    fn meta<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, Fail> {
        let h = entry.header();
        let bad = |f: &'static str| Fail::Problem(Problem::InvalidField(f));
        let mut uid = h.uid().map_err(|_| bad("uid"))?;
        let mut gid = h.gid().map_err(|_| bad("gid"))?;
        let mode = h.mode().map_err(|_| bad("mode"))? & 0o7777;
        let mtime = h.mtime().map_err(|_| bad("mtime"))?;
        let mut mtime = Timespec {
            tv_sec: i64::try_from(mtime).map_err(|_| bad("mtime"))?,
            tv_nsec: 0,
        };
        let mut atime = None;
        let mut xattrs = Vec::new();
        if let Some(exts) = entry
            .pax_extensions()
            .map_err(|e| Fail::Io("reading PAX header", e))?
        {
            for ext in exts {
                let ext = ext.map_err(|e| Fail::Io("reading PAX header", e))?;
                let Ok(key) = ext.key() else { continue };
                let v = ext.value_bytes();
                let num = || {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                };
                match key {
                    "uid" => uid = num().ok_or_else(|| bad("PAX uid"))?,
                    "gid" => gid = num().ok_or_else(|| bad("PAX gid"))?,
                    "mtime" => mtime = parse_time(v).ok_or_else(|| bad("PAX mtime"))?,
                    "atime" => atime = Some(parse_time(v).ok_or_else(|| bad("PAX atime"))?),
                    _ => {
                        if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                            if xname.starts_with("trusted.overlay.")
                                || xname.starts_with("user.overlay.")
                            {
                                self.stats.dropped_xattrs += 1;
                            } else if self.opts.xattrs {
                                xattrs.push((xname.as_bytes().to_vec(), v.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        Ok(Meta {
            uid: u32::try_from(uid)
                .ok()
                .filter(|&u| u != u32::MAX)
                .ok_or_else(|| bad("uid"))?,
            gid: u32::try_from(gid)
                .ok()
                .filter(|&g| g != u32::MAX)
                .ok_or_else(|| bad("gid"))?,
            mode,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs,
        })
    }

    fn entry_inner<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
    ) -> Result<(), Fail> {
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let comps = clean(raw)?;
        let meta = self.meta(entry)?;
        let Some((leaf, parent_comps)) = comps.split_last() else {
            // The layer root itself ("./").
            if !kind.is_dir() {
                return Err(Problem::RootNotDirectory.into());
            }
            self.stats.dirs += 1;
            let root = self
                .root
                .try_clone()
                .map_err(|e| Fail::Io("duplicating fd", e))?;
            self.fd_meta(root.as_fd(), &meta)?;
            self.defer(Vec::new(), &meta);
            return Ok(());
        };

        if let Some(target) = leaf.strip_prefix(b".wh.") {
            return self.whiteout(parent_comps, target);
        }
        if self.opts.apply_whiteouts_in_place {
            for i in 1..=comps.len() {
                self.this_layer.insert(join(&comps[..i]));
            }
        }
        let parent = self.parent(parent_comps, true)?;
        let parent = parent.as_fd();

        if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            self.replace_existing(parent, leaf, false)?;
            let fd = rfs::openat(
                parent,
                os(leaf),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io_fail("creating file"))?;
            let mut file = File::from(fd);
            let n = io::copy(entry, &mut file).map_err(|e| Fail::Io("writing file contents", e))?;
            let size = entry.size();
            if n != size && !kind.is_gnu_sparse() {
                return Err(Problem::Truncated { got: n, size }.into());
            }
            self.stats.files += 1;
            self.stats.bytes += n;
            self.fd_meta(file.as_fd(), &meta)?;
            rfs::fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(io_fail("chmod"))?;
            rfs::futimens(&file, &times(&meta)).map_err(io_fail("setting times"))?;
        } else if kind.is_dir() {
            if !self.replace_existing(parent, leaf, true)? {
                rfs::mkdirat(parent, os(leaf), Mode::from_raw_mode(0o700))
                    .map_err(io_fail("creating directory"))?;
            }
            let fd = open_dir_at(parent, leaf).map_err(io_fail("opening directory"))?;
            self.fd_meta(fd.as_fd(), &meta)?;
            self.stats.dirs += 1;
            self.defer(comps.clone(), &meta);
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or(Problem::SymlinkNoTarget)?
                .into_owned();
            if target.is_empty() {
                return Err(Problem::SymlinkNoTarget.into());
            }
            self.replace_existing(parent, leaf, false)?;
            rfs::symlinkat(os(&target), parent, os(leaf)).map_err(io_fail("creating symlink"))?;
            self.stats.symlinks += 1;
            self.path_meta(parent, leaf, &meta)?;
        } else if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .ok_or(Problem::HardlinkNoTarget)?
                .into_owned();
            let shown = lossy(&target);
            let tcomps = clean(&target).map_err(|_| Problem::HardlinkEscapes(shown.clone()))?;
            let Some((tleaf, tparent)) = tcomps.split_last() else {
                return Err(Problem::HardlinkEscapes(shown).into());
            };
            self.replace_existing(parent, leaf, false)?;
            let tdir = match self.parent(tparent, false) {
                Ok(fd) => fd,
                Err(Fail::Problem(_)) => return Err(Problem::HardlinkThroughSymlink(shown).into()),
                Err(Fail::Io(_, e)) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    return Err(Problem::HardlinkTargetMissing(shown).into())
                }
                Err(e) => return Err(e),
            };
            // Without AT_SYMLINK_FOLLOW, a symlink target is linked itself, never followed.
            match rfs::linkat(tdir, os(tleaf), parent, os(leaf), AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOENT) => return Err(Problem::HardlinkTargetMissing(shown).into()),
                Err(e) => return Err(io_fail("creating hardlink")(e)),
            }
            self.stats.hardlinks += 1;
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let fifo = kind.is_fifo();
            if !fifo && self.opts.devices == DeviceNodes::Skip {
                self.stats.skipped_devices += 1;
                return Ok(());
            }
            let h = entry.header();
            let bad = |f: &'static str| Fail::Problem(Problem::InvalidField(f));
            let major = h.device_major().map_err(|_| bad("devmajor"))?.unwrap_or(0);
            let minor = h.device_minor().map_err(|_| bad("devminor"))?.unwrap_or(0);
            let ftype = if fifo {
                FileType::Fifo
            } else if kind.is_character_special() {
                FileType::CharacterDevice
            } else {
                FileType::BlockDevice
            };
            self.replace_existing(parent, leaf, false)?;
            match rfs::mknodat(
                parent,
                os(leaf),
                ftype,
                Mode::from_raw_mode(0o600),
                rfs::makedev(major, minor),
            ) {
                Ok(()) => {}
                Err(Errno::PERM)
                    if !fifo && self.opts.devices == DeviceNodes::SkipIfNotPermitted =>
                {
                    self.stats.skipped_devices += 1;
                    return Ok(());
                }
                Err(e) => return Err(io_fail("creating device node")(e)),
            }
            self.stats.devices += 1;
            self.path_meta(parent, leaf, &meta)?;
        } else {
            return Err(Problem::UnsupportedType(format!("{kind:?}")).into());
        }
        Ok(())
    }

    /// Ownership and xattrs through an fd we can write xattrs on (files, directories).
    fn fd_meta(&mut self, fd: BorrowedFd<'_>, meta: &Meta) -> Result<(), Fail> {
        if self.opts.preserve_ownership {
            rfs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid)))
                .map_err(io_fail("changing owner"))?;
        }
        // After chown, which clears security.capability.
        for (name, value) in &meta.xattrs {
            rfs::fsetxattr(fd, os(name), value, XattrFlags::empty())
                .map_err(io_fail("setting xattr"))?;
        }
        Ok(())
    }

    /// Full metadata for symlinks and device nodes, none of which is ever opened for I/O
    /// or followed. Mode is applied only to non-symlinks.
    fn path_meta(&mut self, parent: BorrowedFd<'_>, leaf: &[u8], meta: &Meta) -> Result<(), Fail> {
        let name = os(leaf);
        if self.opts.preserve_ownership {
            rfs::chownat(
                parent,
                name,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_fail("changing owner"))?;
        }
        let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).map_err(io_fail("stat"))?;
        let is_link = FileType::from_raw_mode(st.st_mode) == FileType::Symlink;
        if !meta.xattrs.is_empty() {
            // xattrs cannot be set through an O_PATH fd; go through its /proc magic link,
            // which resolves to this very inode (the symlink itself, not its target).
            let fd = rfs::openat(
                parent,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_fail("opening for xattrs"))?;
            let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
            for (xname, value) in &meta.xattrs {
                rfs::setxattr(proc.as_str(), os(xname), value, XattrFlags::empty())
                    .map_err(io_fail("setting xattr"))?;
            }
        }
        if !is_link {
            // Not a symlink (we just created it), so following is moot; after chown.
            rfs::chmodat(
                parent,
                name,
                Mode::from_raw_mode(meta.mode),
                AtFlags::empty(),
            )
            .map_err(io_fail("chmod"))?;
        }
        rfs::utimensat(parent, name, &times(meta), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(io_fail("setting times"))?;
        Ok(())
    }

    fn defer(&mut self, comps: Comps, meta: &Meta) {
        self.deferred.push(DeferredDir {
            comps,
            mode: meta.mode,
            times: times(meta),
        });
    }

    /// Opens (creating when `create`) the directory at `comps`, never following symlinks.
    fn parent(&mut self, comps: &[Vec<u8>], create: bool) -> Result<OwnedFd, Fail> {
        let key = join(comps);
        if let Some((k, fd)) = &self.cache {
            if *k == key {
                return fd.try_clone().map_err(|e| Fail::Io("duplicating fd", e));
            }
        }
        let mut cur = self
            .root
            .try_clone()
            .map_err(|e| Fail::Io("duplicating fd", e))?;
        for (i, c) in comps.iter().enumerate() {
            let next = match open_dir_at(cur.as_fd(), c) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rfs::mkdirat(&cur, os(c), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_fail("creating parent directory")(e)),
                    }
                    open_dir_at(cur.as_fd(), c).map_err(io_fail("opening parent directory"))?
                }
                Err(Errno::LOOP) | Err(Errno::NOTDIR) | Err(Errno::XDEV) => {
                    let shown = lossy(&join(&comps[..=i]));
                    let st = rfs::statat(&cur, os(c), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io_fail("stat"))?;
                    return Err(match FileType::from_raw_mode(st.st_mode) {
                        FileType::Symlink => Problem::ParentIsSymlink(shown),
                        _ => Problem::ParentNotDirectory(shown),
                    }
                    .into());
                }
                Err(e) => return Err(io_fail("opening parent directory")(e)),
            };
            cur = next;
        }
        let keep = cur.try_clone().map_err(|e| Fail::Io("duplicating fd", e))?;
        self.cache = Some((key, keep));
        Ok(cur)
    }

    /// Makes room for a new entry `leaf` in `parent`. Returns `true` if a directory is
    /// already there and `keep_dir` asked to keep it; anything else is removed (a
    /// directory recursively), never followed.
    fn replace_existing(
        &mut self,
        parent: BorrowedFd<'_>,
        leaf: &[u8],
        keep_dir: bool,
    ) -> Result<bool, Fail> {
        let st = match rfs::statat(parent, os(leaf), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(io_fail("stat")(e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if is_dir && keep_dir {
            return Ok(true);
        }
        self.cache = None;
        if is_dir {
            remove_tree(parent, leaf).map_err(io_fail("removing existing directory"))?;
        } else {
            rfs::unlinkat(parent, os(leaf), AtFlags::empty())
                .map_err(io_fail("removing existing file"))?;
        }
        Ok(false)
    }

    fn whiteout(&mut self, parent_comps: &[Vec<u8>], target: &[u8]) -> Result<(), Fail> {
        let opaque = target == b".wh..opq";
        if !opaque && target.starts_with(b".wh.") {
            // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not part of the image.
            return Ok(());
        }
        if !opaque && (target.is_empty() || target == b"." || target == b"..") {
            return Err(Problem::InvalidWhiteout.into());
        }
        if self.opts.apply_whiteouts_in_place {
            let parent = match self.parent(parent_comps, false) {
                Ok(fd) => fd,
                // Nothing below to delete.
                Err(Fail::Io(_, e)) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            if opaque {
                self.stats.opaque_dirs += 1;
                let prefix = join(parent_comps);
                let mut doomed = Vec::new();
                let dir = Dir::read_from(&parent).map_err(io_fail("reading directory"))?;
                for ent in dir {
                    let ent = ent.map_err(io_fail("reading directory"))?;
                    let n = ent.file_name().to_bytes();
                    if n == b"." || n == b".." {
                        continue;
                    }
                    let mut full = prefix.clone();
                    if !full.is_empty() {
                        full.push(b'/');
                    }
                    full.extend_from_slice(n);
                    if !self.this_layer.contains(&full) {
                        doomed.push(n.to_vec());
                    }
                }
                for n in doomed {
                    self.replace_existing(parent.as_fd(), &n, false)?;
                }
            } else {
                self.stats.whiteouts += 1;
                self.replace_existing(parent.as_fd(), target, false)?;
            }
            return Ok(());
        }
        let parent = self.parent(parent_comps, true)?;
        if opaque {
            rfs::fsetxattr(
                &parent,
                self.opts.overlay_xattrs.opaque(),
                b"y",
                XattrFlags::empty(),
            )
            .map_err(io_fail("marking directory opaque"))?;
            self.stats.opaque_dirs += 1;
        } else {
            self.replace_existing(parent.as_fd(), target, false)?;
            rfs::mknodat(
                &parent,
                os(target),
                FileType::CharacterDevice,
                Mode::empty(),
                rfs::makedev(0, 0),
            )
            .map_err(io_fail("creating whiteout device"))?;
            rfs::chownat(
                &parent,
                os(target),
                Some(Uid::ROOT),
                Some(Gid::ROOT),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(io_fail("changing whiteout owner"))?;
            self.stats.whiteouts += 1;
        }
        Ok(())
    }

    /// Applies directory modes and times, last so that unpacking children neither bumps
    /// the times nor is blocked by read-only modes. Later entries for a path win.
    fn finish(&mut self) -> Result<(), LayerError> {
        let deferred = std::mem::take(&mut self.deferred);
        for d in deferred {
            let shown = lossy(&join(&d.comps));
            let fd = match d.comps.split_last() {
                None => self
                    .root
                    .try_clone()
                    .map_err(|e| Fail::Io("duplicating fd", e)),
                Some((leaf, parent)) => self.parent(parent, false).and_then(|p| {
                    open_dir_at(p.as_fd(), leaf).map_err(io_fail("opening directory"))
                }),
            };
            // The directory was replaced by a later entry: nothing left to apply.
            let Ok(fd) = fd else { continue };
            rfs::fchmod(&fd, Mode::from_raw_mode(d.mode))
                .map_err(io_fail("chmod"))
                .and_then(|()| rfs::futimens(&fd, &d.times).map_err(io_fail("setting times")))
                .map_err(|f| f.named(&shown))?;
        }
        Ok(())
    }
}

fn uid(raw: u32) -> Uid {
    Uid::from_raw(raw)
}

fn gid(raw: u32) -> Gid {
    Gid::from_raw(raw)
}

fn times(meta: &Meta) -> Timestamps {
    Timestamps {
        last_access: meta.atime,
        last_modification: meta.mtime,
    }
}

/// Removes the directory `name` in `parent` and everything below it, iteratively (no
/// recursion, so hostile depth cannot overflow the stack) and without following symlinks.
fn remove_tree(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let top = open_dir_at(parent, name)?;
    let top_dir = Dir::read_from(&top)?;
    let mut stack: Vec<(OwnedFd, Dir, Vec<u8>)> = vec![(top, top_dir, name.to_vec())];
    while let Some((fd, dir, _)) = stack.last_mut() {
        match dir.read() {
            Some(ent) => {
                let ent = ent?;
                let n = ent.file_name().to_bytes().to_vec();
                if n == b"." || n == b".." {
                    continue;
                }
                let is_dir = match ent.file_type() {
                    FileType::Directory => true,
                    FileType::Unknown => {
                        let st = rfs::statat(&*fd, os(&n), AtFlags::SYMLINK_NOFOLLOW)?;
                        FileType::from_raw_mode(st.st_mode) == FileType::Directory
                    }
                    _ => false,
                };
                if is_dir {
                    let child = open_dir_at(fd.as_fd(), &n)?;
                    let d = Dir::read_from(&child)?;
                    stack.push((child, d, n));
                } else {
                    rfs::unlinkat(&*fd, os(&n), AtFlags::empty())?;
                }
            }
            None => {
                let (_, _, n) = stack.pop().expect("stack is not empty");
                match stack.last() {
                    Some((pfd, _, _)) => rfs::unlinkat(pfd, os(&n), AtFlags::REMOVEDIR)?,
                    None => rfs::unlinkat(parent, os(&n), AtFlags::REMOVEDIR)?,
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
