//! Per-object write locks in `<root>/locks/`: one flock file per blob digest or layer chain
//! id, so that concurrent pulls (threads or processes) fetch and unpack each object once.
//!
//! Whoever holds an object's lock is its only writer; the others wait, then find the object
//! stored and skip it. A lock file exists only while its object is being written: the holder
//! removes it before releasing (see [`fsutil::lock`] for why waiters stay correct), and a
//! holder killed mid-write leaves an unlocked file that the next writer reuses and removes,
//! or `prune` collects. Locks are taken one object kind at a time in a fixed order (a blob,
//! then the layer unpacked from it) and never while waiting for anything else, so they
//! cannot deadlock.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{io_err, StoreError};
use crate::fsutil::{self, FileLock, LockMode};

/// What an object lock protects; part of the lock file's name, so that a blob and a layer
/// whose chain id happens to equal the blob's digest (an uncompressed base layer) have
/// distinct locks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ObjectKind {
    Blob,
    Layer,
}

impl ObjectKind {
    fn prefix(self) -> &'static str {
        match self {
            ObjectKind::Blob => "blob",
            ObjectKind::Layer => "layer",
        }
    }
}

/// An exclusive lock on one object; removes its lock file and releases it on drop.
#[derive(Debug)]
pub(crate) struct ObjectLock {
    path: PathBuf,
    held: Option<FileLock>,
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            fsutil::remove_held_lock(&self.path, held);
        }
    }
}

/// `<root>/locks`.
pub(crate) fn locks_dir(root: &Path) -> PathBuf {
    root.join("locks")
}

/// Waits for the exclusive lock on `digest` as a `kind` object of the store at `root`.
pub(crate) fn lock_object(
    root: &Path,
    kind: ObjectKind,
    digest: &Digest,
) -> Result<ObjectLock, StoreError> {
    let path = locks_dir(root).join(format!(
        "{}-{}-{}",
        kind.prefix(),
        digest.algorithm(),
        digest.hex()
    ));
    let held = fsutil::lock_blocking(&path, true)?;
    Ok(ObjectLock {
        path,
        held: Some(held),
    })
}

/// Removes the lock files nobody holds (left by killed writers). Returns how many.
pub(crate) fn clean_locks(root: &Path) -> Result<usize, StoreError> {
    let dir = locks_dir(root);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("list", &dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(io_err("list", &dir))?.path();
        if let Some(held) = fsutil::lock(&path, LockMode::TryExclusive)? {
            fsutil::remove_held_lock(&path, held);
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Barrier};

    fn names(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn one_holder_at_a_time_and_no_file_left() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(locks_dir(dir.path())).unwrap();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"object");
        let holders = Arc::new(AtomicU32::new(0));
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (root, digest, holders, barrier) = (
                    dir.path().to_owned(),
                    digest.clone(),
                    holders.clone(),
                    barrier.clone(),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..50 {
                        let lock = lock_object(&root, ObjectKind::Blob, &digest).unwrap();
                        assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        std::thread::yield_now();
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(names(&locks_dir(dir.path())), Vec::<String>::new());
    }

    #[test]
    fn blob_and_layer_of_one_digest_are_distinct_locks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(locks_dir(dir.path())).unwrap();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"tar");
        let blob = lock_object(dir.path(), ObjectKind::Blob, &digest).unwrap();
        // Would wait forever if both kinds shared one file.
        let layer = lock_object(dir.path(), ObjectKind::Layer, &digest).unwrap();
        assert_eq!(names(&locks_dir(dir.path())).len(), 2);
        drop((blob, layer));
    }

    #[test]
    fn clean_removes_only_unheld_lock_files() {
        let dir = tempfile::tempdir().unwrap();
        let locks = locks_dir(dir.path());
        fs::create_dir(&locks).unwrap();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"held");
        let held = lock_object(dir.path(), ObjectKind::Blob, &digest).unwrap();
        // What a killed writer leaves: a lock file nobody holds.
        fs::write(locks.join("blob-sha256-dead"), b"").unwrap();
        assert_eq!(clean_locks(dir.path()).unwrap(), 1);
        assert_eq!(names(&locks), vec![format!("blob-sha256-{}", digest.hex())]);
        drop(held);
        assert_eq!(names(&locks), Vec::<String>::new());
    }
}
