//! `commit`: a stopped container's changes (its overlay upper directory) become a new layer
//! on top of its image. overlayfs marks deletions as 0:0 character devices and replaced
//! directories with `trusted.overlay.opaque=y`; the layer gets them in OCI form (`.wh.NAME`,
//! `.wh..wh..opq`), with owners, modes, times, hard links and other xattrs kept.

use std::collections::HashMap;
use std::fs;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use pelagos_image::{ImageRecord, Reference};

use crate::error::{Error, Result};
use crate::Engine;

/// The xattrs of `path` worth carrying into a layer (not overlayfs' own).
fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return Vec::new();
    };
    names[..n]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| std::str::from_utf8(n).ok())
        .filter(|n| !n.starts_with("trusted.overlay.") && !n.starts_with("user.overlay."))
        .filter_map(|name| {
            let mut value = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(path, name, &mut value).ok()?;
            value.truncate(len);
            Some((name.to_owned(), value))
        })
        .collect()
}

fn is_opaque(path: &Path) -> bool {
    let mut v = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| matches!(rustix::fs::lgetxattr(path, *n, &mut v), Ok(1) if v[0] == b'y'))
}

struct LayerWriter<W: std::io::Write> {
    tar: tar::Builder<W>,
    /// First path seen for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), String>,
}

impl<W: std::io::Write> LayerWriter<W> {
    fn io(what: &str, e: std::io::Error) -> Error {
        Error::io(format!("commit: {what}"), e)
    }

    fn whiteout(&mut self, rel: &str) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        self.tar
            .append_data(&mut h, rel, std::io::empty())
            .map_err(|e| Self::io(rel, e))
    }

    fn entry(&mut self, path: &Path, rel: &str, meta: &fs::Metadata) -> Result<()> {
        let attrs = xattrs(path);
        if !attrs.is_empty() {
            let pax: Vec<(String, Vec<u8>)> = attrs
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            self.tar
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|e| Self::io(rel, e))?;
        }
        if meta.is_file() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let mut h = tar::Header::new_gnu();
                h.set_metadata(meta);
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                return self
                    .tar
                    .append_link(&mut h, rel, first)
                    .map_err(|e| Self::io(rel, e));
            }
            self.links.insert(key, rel.to_owned());
        }
        self.tar
            .append_path_with_name(path, rel)
            .map_err(|e| Self::io(rel, e))
    }

    /// Walks `dir` (the upper directory or one below it), `rel` being its path in the layer.
    fn walk(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
            .map_err(|e| Self::io(&dir.display().to_string(), e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| Self::io(&dir.display().to_string(), e))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(|e| Self::io(&child, e))?;
            let t = meta.file_type();
            // The empty files the runtime made as mount points for the engine's /etc files
            // (what Docker keeps in its "init" layer): not the container's changes.
            if t.is_file()
                && meta.len() == 0
                && matches!(
                    child.as_str(),
                    "etc/hosts" | "etc/hostname" | "etc/resolv.conf"
                )
            {
                continue;
            }
            if t.is_char_device() && meta.rdev() == 0 {
                // overlayfs' whiteout: the lower file was deleted.
                let wh = match child.rsplit_once('/') {
                    Some((parent, n)) => format!("{parent}/.wh.{n}"),
                    None => format!(".wh.{name}"),
                };
                self.whiteout(&wh)?;
                continue;
            }
            self.entry(&path, &child, &meta)?;
            if t.is_dir() {
                if is_opaque(&path) {
                    self.whiteout(&format!("{child}/.wh..wh..opq"))?;
                }
                self.walk(&path, &child)?;
            }
        }
        Ok(())
    }
}

/// Writes the changes of `upper` as an OCI layer tar into `out` (empty when `upper` is missing).
pub fn write_layer(upper: &Path, out: impl std::io::Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let mut w = LayerWriter {
        tar,
        links: HashMap::new(),
    };
    // A container never started has no upper directory: no changes, an empty layer.
    if upper.exists() {
        w.walk(upper, "")?;
    }
    w.tar
        .into_inner()
        .map_err(|e| Error::io("commit: finish the layer", e))?;
    Ok(())
}

/// What `commit` records besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` for the new image.
    pub tag: Option<Reference>,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// `-m`.
    pub message: Option<String>,
    /// `-a`.
    pub author: Option<String>,
}

/// Commits a stopped container's changes as a new image on top of its own.
pub fn commit(engine: &Engine, name_or_id: &str, opts: &CommitOptions) -> Result<ImageRecord> {
    let record = crate::container::lookup(engine, name_or_id)?;
    if record.state.status.is_live() {
        return Err(Error::Conflict(format!(
            "container {} is running: stop it before committing it",
            record.name
        )));
    }
    commit_record(engine, &record, opts)
}

/// `docker commit` as the Docker API does it: a container in any state; with `pause` a
/// running one is frozen while its changes are read (Docker's default), then thawed.
pub fn commit_pausing(
    engine: &Engine,
    name_or_id: &str,
    opts: &CommitOptions,
    pause: bool,
) -> Result<ImageRecord> {
    let record = crate::container::lookup(engine, name_or_id)?;
    let freeze = pause && record.state.status == pelagos_model::state::Status::Running;
    if freeze {
        crate::container::pause::pause(engine, record.id.as_str(), true)?;
    }
    let committed = commit_record(engine, &record, opts);
    if freeze {
        let thawed = crate::container::pause::pause(engine, record.id.as_str(), false);
        if committed.is_ok() {
            thawed?;
        }
    }
    committed
}

/// The container's upper directory as a layer on its image.
fn commit_record(
    engine: &Engine,
    record: &pelagos_model::record::ContainerRecord,
    opts: &CommitOptions,
) -> Result<ImageRecord> {
    let base = engine.images().get(&record.image_id)?;
    let dir = engine.containers().dir_of(&record.id);
    let tmp = tempfile::Builder::new()
        .prefix(".commit")
        .tempfile_in(&dir)
        .map_err(|e| Error::io(format!("temporary file in {}", dir.display()), e))?;
    let mut file = tmp
        .reopen()
        .map_err(|e| Error::io("reopen the layer file", e))?;
    write_layer(&dir.join("upper"), std::io::BufWriter::new(&mut file))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("rewind the layer file", e))?;
    Ok(pelagos_image::archive::commit(
        engine.images(),
        &base,
        std::io::BufReader::new(file),
        opts.tag.as_ref(),
        &opts.changes,
        opts.message.as_deref(),
        opts.author.as_deref(),
    )?)
}
