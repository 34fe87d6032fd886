//! `cp`'s engine half, as Docker's daemon serves it (`HEAD/GET/PUT /containers/X/archive`):
//! stat a path, archive a path as a tar stream named after its last component, extract a tar
//! stream into a directory. The same functions serve the host side of the copy (over
//! [`RootDir::host`]); for a container every path is resolved inside its root.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::fsroot::{asserts_directory, clean, split_dir_entry, ContainerFs, RootDir};
use super::tar_in::{extract, ExtractOptions};
use super::tar_out::{Counting, TarOut};
use crate::error::{Error, Result};

/// Docker's `PathStat` (`X-Docker-Container-Path-Stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last component of the path (the name of the archive's top entry).
    pub name: String,
    pub size: u64,
    pub is_dir: bool,
    pub is_symlink: bool,
    /// The symlink's target, as stored.
    pub link_target: String,
    /// `st_mode`: the file type and permission bits.
    pub mode: u32,
    /// The last modification.
    pub mtime: std::time::SystemTime,
}

/// What a path names, found without following its last component (unless asked).
enum Target {
    /// A directory named by a path ending in `/.` or by `/`: archived as itself.
    Dir(OwnedFd, Stat),
    /// An entry of a directory.
    Entry {
        parent: OwnedFd,
        base: String,
        st: Stat,
    },
}

impl Target {
    fn stat(&self) -> &Stat {
        match self {
            Target::Dir(_, st) | Target::Entry { st, .. } => st,
        }
    }
}

/// Errors of a path lookup with Docker's words.
fn path_error(root_name: Option<&str>, path: &str, e: std::io::Error) -> Error {
    match (e.raw_os_error(), root_name) {
        (Some(libc::ENOENT), Some(ctr)) => {
            Error::NotFound(format!("Could not find the file {path} in container {ctr}"))
        }
        (Some(libc::ENOENT), None) => {
            Error::NotFound(format!("lstat {path}: no such file or directory"))
        }
        (Some(libc::ENOTDIR), _) => Error::Invalid(format!("{path}: not a directory")),
        _ => Error::io(format!("stat {path}"), e),
    }
}

fn readable_dir(fd: &OwnedFd) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Finds `path` in `root`; `follow` follows a symlink in its last component (each hop
/// resolved inside the root again).
fn locate(root: &RootDir, path: &str, follow: bool) -> std::io::Result<Target> {
    let must_be_dir = asserts_directory(path);
    let follow = follow || must_be_dir;
    let mut path = if path.ends_with("/.") || path == "." {
        path.to_owned()
    } else {
        clean(&format!("/{path}"))
    };
    for _ in 0..40 {
        let (dir, base) = split_dir_entry(&path);
        if base.is_empty() || base == "." || base == "/" {
            let fd = readable_dir(&root.open_dir(&dir)?)?;
            let st = rustix::fs::fstat(&fd)?;
            return Ok(Target::Dir(fd, st));
        }
        let parent = readable_dir(&root.open_dir(&dir)?)?;
        let st = rustix::fs::statat(&parent, base.as_str(), AtFlags::SYMLINK_NOFOLLOW)?;
        if follow && FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            let target = rustix::fs::readlinkat(&parent, base.as_str(), Vec::new())?;
            let target = target.to_string_lossy();
            path = match target.starts_with('/') {
                true => clean(&target),
                false => clean(&format!("{dir}/{target}")),
            };
            continue;
        }
        if must_be_dir && FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        return Ok(Target::Entry { parent, base, st });
    }
    Err(std::io::Error::from_raw_os_error(libc::ELOOP))
}

/// The path's stat in `root` (`root_name`: the container's name, for Docker's messages).
pub fn stat_in(
    root: &RootDir,
    root_name: Option<&str>,
    path: &str,
    follow: bool,
) -> Result<PathStat> {
    let target = locate(root, path, follow).map_err(|e| path_error(root_name, path, e))?;
    let st = target.stat();
    let kind = FileType::from_raw_mode(st.st_mode);
    let link_target = match &target {
        Target::Entry { parent, base, .. } if kind == FileType::Symlink => {
            rustix::fs::readlinkat(parent, base.as_str(), Vec::new())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    let (_, name) = split_dir_entry(path);
    Ok(PathStat {
        name,
        size: st.st_size as u64,
        is_dir: kind == FileType::Directory,
        is_symlink: kind == FileType::Symlink,
        link_target,
        mode: st.st_mode,
        mtime: mtime_of(st),
    })
}

fn mtime_of(st: &Stat) -> std::time::SystemTime {
    let (secs, nanos) = (st.st_mtime, st.st_mtime_nsec as u32);
    match u64::try_from(secs) {
        Ok(s) => std::time::UNIX_EPOCH + std::time::Duration::new(s, nanos),
        // Before 1970: as far before as it says.
        Err(_) => std::time::UNIX_EPOCH - std::time::Duration::from_secs(secs.unsigned_abs()),
    }
}

/// Writes a tar stream of `path` in `root` to `out`, its top entry named after the path's
/// last component (`.` for `dir/.`: the directory's contents); returns the stream's size.
pub fn archive_in(
    root: &RootDir,
    root_name: Option<&str>,
    path: &str,
    follow: bool,
    out: impl Write,
) -> Result<u64> {
    let target = locate(root, path, follow).map_err(|e| path_error(root_name, path, e))?;
    let (_, name) = split_dir_entry(path);
    let name = if name.is_empty() || name == "/" {
        ".".to_owned()
    } else {
        name
    };
    let mut tar = TarOut::new(Counting::new(out));
    match &target {
        Target::Dir(fd, _) => tar.append_dir_fd(fd, &name)?,
        Target::Entry { parent, base, st } => {
            tar.append_stat(parent.as_fd(), std::ffi::OsStr::new(base), &name, st)?
        }
    }
    Ok(tar.finish()?.count)
}

/// Extracts a tar stream into the directory `path` of `root` (Docker's "extraction point").
pub fn extract_in(
    root: &RootDir,
    root_name: Option<&str>,
    path: &str,
    stream: impl Read,
    opts: &ExtractOptions,
) -> Result<u64> {
    match locate(root, path, true).map_err(|e| path_error(root_name, path, e))? {
        Target::Dir(..) => {}
        Target::Entry { st, .. } if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
        Target::Entry { .. } => {
            return Err(Error::Invalid(format!(
                "extraction point is not a directory: {path}"
            )))
        }
    }
    extract(root, path, stream, opts)
}

/// `HEAD /containers/X/archive`: the stat of a path in the container.
pub fn stat(fs: &ContainerFs, path: &str, follow: bool) -> Result<PathStat> {
    stat_in(fs.root(), Some(&fs.name), path, follow)
}

/// `GET /containers/X/archive`: a tar stream of a path in the container.
pub fn archive(fs: &ContainerFs, path: &str, follow: bool, out: impl Write) -> Result<u64> {
    archive_in(fs.root(), Some(&fs.name), path, follow, out)
}

/// `PUT /containers/X/archive`: a tar stream extracted into a directory of the container.
pub fn extract_to(
    fs: &ContainerFs,
    path: &str,
    stream: impl Read,
    opts: &ExtractOptions,
) -> Result<u64> {
    extract_in(fs.root(), Some(&fs.name), path, stream, opts)
}

/// What the copy's destination is (Docker's `CopyInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInfo {
    /// As given (a trailing `/` or `/.` kept: it asserts a directory).
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
}

/// Docker's `PrepareArchiveCopy`: the directory to extract the source's stream into, and
/// the rebase of its top entry (`src_base`, the source's last component) onto the
/// destination's name when the destination is not an existing directory.
pub fn prepare_archive_copy(
    src_is_dir: bool,
    src_base: &str,
    dst: &CopyInfo,
) -> Result<(String, Option<(String, String)>)> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let rebase = Some((src_base.to_owned(), dst_base));
    if dst.exists && dst.is_dir {
        Ok((dst.path.clone(), None))
    } else if dst.exists && src_is_dir {
        Err(Error::Invalid("cannot copy directory".into()))
    } else if dst.exists || src_is_dir {
        Ok((dst_dir, rebase))
    } else if asserts_directory(&dst.path) {
        Err(Error::Invalid("no such directory".into()))
    } else {
        Ok((dst_dir, rebase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
        }
    }

    #[test]
    fn archive_copies_are_prepared_as_docker_does() {
        let into_dir = prepare_archive_copy(false, "f", &info("/d", true, true)).unwrap();
        assert_eq!(into_dir, ("/d".into(), None));
        let onto_file = prepare_archive_copy(false, "f", &info("/d/g", true, false)).unwrap();
        assert_eq!(onto_file, ("/d".into(), Some(("f".into(), "g".into()))));
        assert!(prepare_archive_copy(true, "s", &info("/d/g", true, false)).is_err());
        let new_dir = prepare_archive_copy(true, ".", &info("/d/n", false, false)).unwrap();
        assert_eq!(new_dir, ("/d".into(), Some((".".into(), "n".into()))));
        let err = prepare_archive_copy(false, "f", &info("/d/n/", false, false)).unwrap_err();
        assert_eq!(err.to_string(), "no such directory");
    }
}
