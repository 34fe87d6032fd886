//! `diff`: Docker's `A`/`C`/`D` lines, read from the container's overlay upper directory
//! (whiteouts, 0:0 character devices, are deletions; an opaque directory replaced the
//! lower one's contents) and compared with the image's layers.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};

use crate::error::{Error, Result};
use crate::Engine;

/// Docker's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path (absolute, as in the container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// The files the runtime makes as mount points for the engine's /etc files (Docker keeps
/// them in its "init" layer, out of `diff`).
const RUNTIME_FILES: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

/// The directories the runtime makes as mount points (and /etc for the files above) when the
/// image lacks them (Docker's init layer has them): not changes themselves, but what is
/// found below them is.
const RUNTIME_DIRS: [&str; 6] = ["/dev", "/dev/pts", "/dev/shm", "/etc", "/proc", "/sys"];

fn io(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::io(what.to_owned(), e.into())
}

/// The container's changes to its image, sorted by path as Docker prints them.
pub fn diff(engine: &Engine, name_or_id: &str) -> Result<Vec<Change>> {
    let record = super::lookup(engine, name_or_id)?;
    let upper = engine.containers().dir_of(&record.id).join("upper");
    let image = engine.images().get(&record.image_id)?;
    let layers_dir = engine.images().layers_dir();
    let mut lowers = Vec::new();
    for l in engine.images().lowerdirs(&image)? {
        let path = layers_dir.join(&l);
        let fd = rustix::fs::open(&path, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())
            .map_err(|e| io(&format!("open {}", path.display()), e))?;
        lowers.push(fd);
    }
    let top = match rustix::fs::open(
        &upper,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // Never started: no changes.
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => return Err(io(&format!("open {}", upper.display()), e)),
    };
    let mut out = Vec::new();
    Walk { lowers: &lowers }.dir(&top, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

struct Walk<'a> {
    /// The image's layers, top first.
    lowers: &'a [OwnedFd],
}

fn is_whiteout(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: BorrowedFd<'_>) -> bool {
    let mut v = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| matches!(rustix::fs::fgetxattr(dir, *n, &mut v), Ok(1) if v[0] == b'y'))
}

fn names_of(dir: BorrowedFd<'_>) -> Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(|e| io("read a directory", e))? {
        let entry = entry.map_err(|e| io("read a directory", e))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    Ok(names)
}

impl Walk<'_> {
    /// The path's stat in the image (the topmost layer having it, unless whited out there).
    /// No symlink is followed: a layer's links mean nothing on the host.
    fn in_image(&self, path: &str) -> Option<Stat> {
        let rel = path.trim_start_matches('/');
        for lower in self.lowers {
            let fd = rustix::fs::openat2(
                lower,
                rel,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
            );
            if let Ok(fd) = fd {
                let st = rustix::fs::fstat(&fd).ok()?;
                return (!is_whiteout(&st)).then_some(st);
            }
        }
        None
    }

    /// The names of the image's directory `path` (all layers).
    fn image_children(&self, path: &str) -> Vec<Vec<u8>> {
        let rel = path.trim_start_matches('/');
        let mut all = Vec::new();
        for lower in self.lowers {
            let fd = rustix::fs::openat2(
                lower,
                if rel.is_empty() { "." } else { rel },
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
            );
            if let Ok(fd) = fd {
                all.extend(names_of(fd.as_fd()).unwrap_or_default());
            }
        }
        all.sort();
        all.dedup();
        all.retain(|n| {
            self.in_image(&format!(
                "{path}/{}",
                OsStr::from_bytes(n).to_string_lossy()
            ))
            .is_some()
        });
        all
    }

    /// Walks the upper directory `dir` (the container's `rel`); returns whether it reported
    /// anything below it.
    fn dir(&self, dir: &OwnedFd, rel: &str, out: &mut Vec<Change>) -> Result<bool> {
        let names = names_of(dir.as_fd())?;
        let mut any = false;
        for n in &names {
            let name = OsStr::from_bytes(n);
            let path = format!("{rel}/{}", name.to_string_lossy());
            let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
                continue;
            };
            if is_whiteout(&st) {
                any = true;
                out.push(Change {
                    kind: ChangeKind::Deleted,
                    path,
                });
                continue;
            }
            let kind = FileType::from_raw_mode(st.st_mode);
            if kind == FileType::RegularFile
                && st.st_size == 0
                && RUNTIME_FILES.contains(&path.as_str())
            {
                continue;
            }
            let image = self.in_image(&path);
            if kind != FileType::Directory {
                any = true;
                let kind = if image.is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                out.push(Change { kind, path });
                continue;
            }
            any |= self.subdir(dir, name, &path, &st, image.as_ref(), out)?;
        }
        Ok(any)
    }

    /// A mount point the runtime made: changed (`C`) only when something below it is, as
    /// Docker's directory of its init layer.
    fn runtime_dir(&self, fd: &OwnedFd, path: &str, out: &mut Vec<Change>) -> Result<bool> {
        let at = out.len();
        let changed = self.dir(fd, path, out)?;
        if changed {
            let kind = ChangeKind::Modified;
            out.insert(
                at,
                Change {
                    kind,
                    path: path.to_owned(),
                },
            );
        }
        Ok(changed)
    }

    fn subdir(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        path: &str,
        st: &Stat,
        image: Option<&Stat>,
        out: &mut Vec<Change>,
    ) -> Result<bool> {
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(path, e))?;
        let Some(lower) = image else {
            if RUNTIME_DIRS.contains(&path) {
                return self.runtime_dir(&fd, path, out);
            }
            out.push(Change {
                kind: ChangeKind::Added,
                path: path.to_owned(),
            });
            self.dir(&fd, path, out)?;
            return Ok(true);
        };
        let at = out.len();
        let mut changed = self.dir(&fd, path, out)?;
        if is_opaque(fd.as_fd()) {
            // The image's entries hidden by the opaque directory were deleted.
            let upper: Vec<Vec<u8>> = names_of(fd.as_fd())?;
            for n in self.image_children(path) {
                if !upper.contains(&n) {
                    changed = true;
                    let p = format!("{path}/{}", OsStr::from_bytes(&n).to_string_lossy());
                    out.push(Change {
                        kind: ChangeKind::Deleted,
                        path: p,
                    });
                }
            }
        }
        let own = (st.st_mode, st.st_uid, st.st_gid) != (lower.st_mode, lower.st_uid, lower.st_gid);
        if changed || own {
            out.insert(
                at,
                Change {
                    kind: ChangeKind::Modified,
                    path: path.to_owned(),
                },
            );
        }
        Ok(changed || own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn changes(upper: &std::path::Path, lower: &std::path::Path) -> Vec<String> {
        let open = |p: &std::path::Path| {
            rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
        };
        let lowers = [open(lower)];
        let mut out = Vec::new();
        Walk { lowers: &lowers }
            .dir(&open(upper), "", &mut out)
            .unwrap();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect()
    }

    #[test]
    fn the_runtime_s_mount_points_are_not_changes() {
        let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir(lower.path().join("bin")).unwrap();
        for d in ["dev", "proc", "sys", "etc"] {
            fs::create_dir(upper.path().join(d)).unwrap();
        }
        fs::write(upper.path().join("etc/hosts"), "").unwrap();
        fs::write(upper.path().join("x"), "hi").unwrap();
        assert_eq!(changes(upper.path(), lower.path()), ["A /x"]);
    }

    #[test]
    fn a_user_s_file_below_a_mount_point_is_a_change() {
        let (upper, lower) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        fs::create_dir_all(upper.path().join("dev/shm")).unwrap();
        fs::write(upper.path().join("dev/shm/mine"), "x").unwrap();
        fs::create_dir(upper.path().join("proc")).unwrap();
        assert_eq!(
            changes(upper.path(), lower.path()),
            ["C /dev", "C /dev/shm", "A /dev/shm/mine"]
        );
    }
}
