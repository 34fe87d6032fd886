//! Paths of a container's root filesystem opened from the host as if the root were `/`
//! (`openat2` with `RESOLVE_IN_ROOT`), so symlinks in an image never reach host files.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

/// Opens the root filesystem directory (`O_PATH`).
pub fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::io(
            format!("open root filesystem {}", rootfs.display()),
            e.into(),
        )
    })
}

/// Opens `path` (absolute inside the container) beneath `root`, resolving `..` and symlinks
/// as if `root` were `/`.
pub fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root.as_fd(),
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        let root = open_root(d.path()).unwrap();
        assert!(open_in_root(&root, "/etc", OFlags::PATH | OFlags::DIRECTORY).is_ok());
        assert!(open_in_root(&root, "/", OFlags::PATH).is_ok());
        assert!(open_in_root(&root, "/link/secret", OFlags::RDONLY).is_err());
        assert!(open_in_root(&root, "/../../etc", OFlags::PATH).is_ok());
    }
}
