//! The store's file primitives: exclusive open-file-description locks (per open, so threads
//! and processes exclude each other alike), JSON read, and atomic JSON replace.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// An exclusive OFD lock on a file, released when dropped (or when its holder dies).
#[derive(Debug)]
pub(crate) struct FileLock(#[allow(dead_code)] fs::File);

impl FileLock {
    /// Waits for and takes the lock on `path`, creating the file when `create` is set; a
    /// missing file without `create` is `Ok(None)` (its directory was removed).
    pub(crate) fn exclusive(path: &Path, create: bool) -> Result<Option<FileLock>> {
        let file = match fs::OpenOptions::new()
            .create(create)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) => return Err(Error::io(format!("open {}", path.display()), e)),
        };
        loop {
            match ofd_write_lock(&file) {
                Ok(()) => return Ok(Some(FileLock(file))),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Error::io(format!("lock {}", path.display()), e)),
            }
        }
    }
}

/// `F_OFD_SETLKW` with a write lock on the whole file.
fn ofd_write_lock(file: &fs::File) -> std::io::Result<()> {
    // SAFETY: flock is plain data; all-zero is a valid value (whole file from offset 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl with F_OFD_SETLKW reads the flock we pass, which lives for the call; the
    // descriptor is open (owned by `file`).
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut fl) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads a JSON file; a missing file is `Ok(None)`, and so is an empty one: what a
/// [`Durability::Volatile`] file can be after a power loss (its data never reached the disk
/// before the rename did), when no container of the state it described survived either.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let text = match fs::read(path) {
        Ok(t) if t.is_empty() => return Ok(None),
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), e)),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| Error::Corrupt {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Whether a replaced file must be on the disk before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Flushed first (`fsync`): records that must outlive a power loss (a network).
    Durable,
    /// Not flushed: state that only describes running containers (leases, host ports), which
    /// a power loss ends anyway, and which the reconcile corrects for containers that died.
    /// Readers and writers still exclude each other by the lock and see whole files (the
    /// rename is atomic); a flush would cost every start and every end 3–8 ms on this disk.
    Volatile,
}

/// Replaces `path` with `value` as JSON atomically (temp file beside it, flushed, renamed);
/// callers hold the lock guarding `path`, so one temp name per file suffices.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    replace_json(path, value, Durability::Durable)
}

/// [`write_json`] with the given durability.
pub(crate) fn replace_json<T: Serialize>(
    path: &Path,
    value: &T,
    durability: Durability,
) -> Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| Error::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f =
        fs::File::create(&tmp).map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    f.write_all(&text)
        .and_then(|_| match durability {
            Durability::Durable => f.sync_all(),
            Durability::Volatile => Ok(()),
        })
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("rename {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_and_missing_is_none() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        assert!(read_json::<Vec<u32>>(&p).unwrap().is_none());
        write_json(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        replace_json(&p, &vec![3u32], Durability::Volatile).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![3]));
        // A volatile file emptied by a power loss reads as no state.
        fs::write(&p, b"").unwrap();
        assert!(read_json::<Vec<u32>>(&p).unwrap().is_none());
        fs::write(&p, b"{").unwrap();
        assert!(matches!(
            read_json::<Vec<u32>>(&p),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn lock_without_create_on_missing_file_is_none() {
        let d = tempfile::tempdir().unwrap();
        assert!(FileLock::exclusive(&d.path().join("l"), false)
            .unwrap()
            .is_none());
        assert!(FileLock::exclusive(&d.path().join("l"), true)
            .unwrap()
            .is_some());
    }
}
