//! Small filesystem helpers for crash-safe metadata: flock, temporary-path guards, atomic
//! file replacement, directory fsync, no-replace renames, disk usage and timestamps.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, RenameFlags, CWD};
use rustix::io::Errno;

use crate::error::{io_err, StoreError};

/// Removes a temporary file or directory on drop unless it was renamed into place.
#[derive(Debug)]
pub(crate) struct TempGuard {
    pub(crate) path: PathBuf,
    armed: bool,
}

impl TempGuard {
    pub(crate) fn new(path: PathBuf) -> TempGuard {
        TempGuard { path, armed: true }
    }

    /// The path was renamed into place (or handed on): do not remove it.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: if this fails the entry is left for gc_tmp().
            drop(remove_any(&self.path));
        }
    }
}

/// An flock held on a lock file; released when dropped (the fd is closed).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

/// How to take a [`FileLock`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
    /// Exclusive, or `None` at once if someone else holds the lock.
    TryExclusive,
}

/// Takes an flock on `path` (created if missing). flock locks belong to the
/// open file description, so two threads of one process exclude each other
/// just like two processes do; the kernel drops them when their holder dies.
///
/// A lock file may be removed by its holder (see [`remove_held_lock`]); whoever
/// was waiting on it then holds a lock on a name nobody else will open, so the
/// lock counts only if `path` still names the locked file; otherwise it is
/// taken again on the file now there.
pub(crate) fn lock(path: &Path, mode: LockMode) -> Result<Option<FileLock>, StoreError> {
    let op = match mode {
        LockMode::Shared => FlockOperation::LockShared,
        LockMode::Exclusive => FlockOperation::LockExclusive,
        LockMode::TryExclusive => FlockOperation::NonBlockingLockExclusive,
    };
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("open lock file", path))?;
        let locked = loop {
            match rustix::fs::flock(&file, op) {
                Ok(()) => break true,
                Err(Errno::INTR) => continue,
                Err(Errno::WOULDBLOCK) if matches!(mode, LockMode::TryExclusive) => break false,
                Err(e) => return Err(io_err("flock", path)(e.into())),
            }
        };
        if !locked {
            return Ok(None);
        }
        if names_file(path, &file)? {
            return Ok(Some(FileLock { _file: file }));
        }
    }
}

/// Whether `path` (still) names the open `file`.
fn names_file(path: &Path, file: &File) -> Result<bool, StoreError> {
    let held = file.metadata().map_err(io_err("stat", path))?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

/// Removes the lock file `path` whose lock `held` this caller holds, then
/// releases it: waiters wake on a removed file and take the lock anew (see
/// [`lock`]), so lock files last only as long as someone uses them.
pub(crate) fn remove_held_lock(path: &Path, held: FileLock) {
    // Best effort: a lock file left behind is harmless and prune removes it.
    drop(fs::remove_file(path));
    drop(held);
}

/// Takes a blocking lock (never `None`).
pub(crate) fn lock_blocking(path: &Path, exclusive: bool) -> Result<FileLock, StoreError> {
    let mode = if exclusive {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    lock(path, mode)?.ok_or_else(|| StoreError::Io {
        op: "flock",
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::WouldBlock),
    })
}

/// Fsyncs a directory, making renames and creations in it durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// Replaces `dest` with `data` atomically: written to the fresh temporary path
/// `tmp` (in the store's `tmp/`), fsynced, renamed over `dest`, and the
/// directory fsynced. A reader sees the old or the new content, never a mix; a
/// crash leaves at worst a temporary file for `gc_tmp`.
pub(crate) fn write_atomic(tmp: PathBuf, dest: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut guard = TempGuard::new(tmp.clone());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err("create temporary file", &tmp))?;
    file.write_all(data).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, dest).map_err(io_err("rename into place", dest))?;
    guard.disarm();
    if let Some(parent) = dest.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Renames `from` to `to` unless `to` exists. Returns `Ok(false)` when it
/// exists (for directories: exists and is not empty, which is all a committed
/// layer can be).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<bool, StoreError> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(false),
        // Filesystems without RENAME_NOREPLACE: a plain rename of a directory
        // also refuses to replace a non-empty directory.
        Err(Errno::INVAL) | Err(Errno::NOSYS) => match fs::rename(from, to) {
            Ok(()) => Ok(true),
            Err(e)
                if e.raw_os_error() == Some(Errno::EXIST.raw_os_error())
                    || e.raw_os_error() == Some(Errno::NOTEMPTY.raw_os_error()) =>
            {
                Ok(false)
            }
            Err(e) => Err(io_err("rename into place", to)(e)),
        },
        Err(e) => Err(io_err("rename into place", to)(e.into())),
    }
}

/// Makes a freshly unpacked tree durable before it is renamed into place.
/// Small trees get one fsync per file and directory; big ones one `syncfs`,
/// which is cheaper than thousands of journal commits.
pub(crate) fn sync_tree(root: &Path, entries: u64) -> Result<(), StoreError> {
    const PER_FILE_LIMIT: u64 = 256;
    if entries > PER_FILE_LIMIT {
        let dir = File::open(root).map_err(io_err("open", root))?;
        return rustix::fs::syncfs(&dir).map_err(|e| io_err("syncfs", root)(e.into()));
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(io_err("stat", &path))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err("fsync", &path))?;
            }
        }
        fsync_dir(&dir)?;
    }
    Ok(())
}

/// Bytes `path` occupies on disk (allocated blocks), recursively, without
/// following symlinks and counting each hardlinked inode once. 0 if missing.
pub(crate) fn disk_usage(path: &Path) -> Result<u64, StoreError> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("stat", &p)(e)),
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            let entries = match fs::read_dir(&p) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &p)(e)),
            };
            for entry in entries {
                stack.push(entry.map_err(io_err("list", &p))?.path());
            }
        }
    }
    Ok(total)
}

/// Removes a file, or a directory tree, if present.
pub(crate) fn remove_any(path: &Path) -> Result<(), StoreError> {
    let res = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// The current time as RFC 3339 in UTC with nanoseconds, as Docker writes it
/// (`2024-05-01T12:34:56.123456789Z`).
pub(crate) fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

/// Formats seconds since the epoch (UTC) as RFC 3339.
pub(crate) fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }

    #[test]
    fn try_exclusive_lock_sees_a_shared_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let shared = lock(&path, LockMode::Shared).unwrap();
        assert!(lock(&path, LockMode::TryExclusive).unwrap().is_none());
        let _second_shared = lock(&path, LockMode::Shared).unwrap();
        drop(shared);
        drop(_second_shared);
        assert!(lock(&path, LockMode::TryExclusive).unwrap().is_some());
    }
}
