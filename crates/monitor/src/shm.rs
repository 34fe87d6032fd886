//! A shareable container's /dev/shm: a tmpfs the monitor mounts in the container's directory
//! (on the host's side, as Docker's `containers/ID/mounts/shm`), bound into the container and
//! into every container that joins its IPC namespace (`--ipc container:NAME`), so POSIX shared
//! memory is shared with the System V IPC, as in Docker.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result};
use crate::overlay;

/// /dev/shm's size when `ShmSize` is 0 (Docker's 64 MiB).
const DEFAULT_SIZE: i64 = 64 << 20;

/// Where a container's shareable /dev/shm is mounted.
pub fn path_of(dir: &Path) -> PathBuf {
    dir.join(pelagos_model::launch::SHM_DIR)
}

/// Mounts the tmpfs (once: a restart finds it mounted and keeps its files, as Docker's).
pub fn mount_shareable(dir: &Path, size: i64) -> Result<PathBuf> {
    let path = path_of(dir);
    if overlay::is_mounted(&path) {
        return Ok(path);
    }
    std::fs::create_dir_all(&path)
        .map_err(|e| Error::io(format!("mkdir {}", path.display()), e))?;
    let size = if size > 0 { size } else { DEFAULT_SIZE };
    let data = format!("mode=1777,size={size}");
    mount(
        Some("shm"),
        &path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(data.as_str()),
    )
    .map_err(|e| Error::sys(format!("mount /dev/shm's tmpfs at {}", path.display()), e))?;
    Ok(path)
}

/// Unmounts it; nothing mounted is not an error.
pub fn unmount(dir: &Path) -> Result<()> {
    overlay::unmount(&path_of(dir))
}
