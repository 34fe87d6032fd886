//! A content-addressed blob store with verified, atomic writes.
//!
//! Layout under the root directory:
//!
//! ```text
//! root/
//!   blobs/sha256/<64 hex>     verified content, named by its digest
//!   blobs/sha512/<128 hex>
//!   tmp/<pid>-<nanos>-<n>.tmp  writes in progress
//!   locks/blob-<alg>-<hex>     claims of blobs being written (see below)
//! ```
//!
//! [`BlobStore::put_stream`] copies a reader into a fresh file in `tmp/`,
//! hashing as it goes, checks digest and size, fsyncs the file, renames it
//! into `blobs/` (atomic on the same filesystem) and fsyncs the directory. So
//! a path under `blobs/` only ever names complete, verified content; a reader
//! can never observe a partial or unverified blob. A failed write removes its
//! temporary file; a process killed mid-write leaves one behind in `tmp/`,
//! which `gc_tmp` (run when an image store opens and by prune) removes once its
//! writer process is gone.
//!
//! [`BlobStore::writer`] exposes the same steps to callers that produce the
//! content themselves (a layer tee'd while it is unpacked): write, then
//! [`BlobWriter::finish`] to verify, then [`VerifiedBlob::commit`] to rename.
//!
//! Two concurrent puts of the same digest each write their own temporary file
//! and both rename it over the same name; as both contents are verified to be
//! identical, either winning is correct, and an already-open reader keeps the
//! inode it opened. Writers whose content is costly to get (a download) first
//! [`claim`](BlobStore::claim) the digest: one thread or process at a time
//! holds the claim (an flock in `locks/`), the others wait and then find the
//! blob stored. The claim travels with the writer and ends at
//! [`VerifiedBlob::commit`], or when the writer is dropped or its process dies.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::{Algorithm, Digest, Verifier};
use crate::error::io_err;
pub use crate::error::StoreError;
use crate::fsutil::{self, TempGuard};
use crate::locks::{self, ObjectKind, ObjectLock};

const ALGORITHMS: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Sha512];
const COPY_BUF: usize = 64 * 1024;
/// Without `/proc` the writer's liveness is unknown; temp files older than
/// this are then presumed abandoned.
const TMP_MAX_AGE_WITHOUT_PROC: Duration = Duration::from_secs(24 * 60 * 60);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A content-addressed store of verified blobs under one root directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A blob being written: an [`io::Write`] sink that hashes and counts what it
/// is given into a temporary file. [`finish`](BlobWriter::finish) verifies it,
/// [`VerifiedBlob::commit`] makes it visible; dropping either discards it.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    expected: Digest,
    file: File,
    guard: TempGuard,
    verifier: Verifier,
    /// First failed write to the temporary file (disk full, ...).
    write_error: Option<io::Error>,
    /// The claim on the digest, when the writer was made from one.
    claim: Option<ObjectLock>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = &self.write_error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        // Hash first: an overrun is refused before it reaches the disk.
        self.verifier.write_all(buf)?;
        if let Err(e) = self.file.write_all(buf) {
            let copy = io::Error::new(e.kind(), e.to_string());
            self.write_error = Some(e);
            return Err(copy);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BlobWriter {
    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.verifier.bytes_written()
    }

    /// Checks digest and size and fsyncs the temporary file; nothing is
    /// visible under `blobs/` yet.
    pub fn finish(self) -> Result<VerifiedBlob, StoreError> {
        let BlobWriter {
            store,
            expected,
            file,
            guard,
            verifier,
            write_error,
            claim,
        } = self;
        if let Some(source) = write_error {
            return Err(StoreError::Io {
                op: "write",
                path: guard.path.clone(),
                source,
            });
        }
        verifier.finish()?;
        file.sync_all().map_err(io_err("fsync", &guard.path))?;
        Ok(VerifiedBlob {
            store,
            digest: expected,
            guard,
            claim,
        })
    }
}

/// A complete, verified blob in `tmp/`, ready to be renamed into place.
#[derive(Debug)]
pub struct VerifiedBlob {
    store: BlobStore,
    digest: Digest,
    guard: TempGuard,
    claim: Option<ObjectLock>,
}

impl VerifiedBlob {
    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Renames the blob into `blobs/` (atomic), fsyncs the directory, and
    /// then ends the claim, if any. An unclaimed concurrent writer of the same
    /// digest may win the rename; as both contents were verified to be
    /// identical, either is correct.
    pub fn commit(self) -> Result<PathBuf, StoreError> {
        let VerifiedBlob {
            store,
            digest,
            mut guard,
            claim,
        } = self;
        let dest = store.blob_path(&digest);
        fs::rename(&guard.path, &dest).map_err(io_err("rename into place", &dest))?;
        guard.disarm();
        let dir = store.alg_dir(digest.algorithm());
        fsutil::fsync_dir(&dir)?;
        // Waiters wake to a durable blob.
        drop(claim);
        Ok(dest)
    }
}

/// What [`BlobStore::claim`] found.
#[derive(Debug)]
pub enum BlobClaim {
    /// The blob is stored (perhaps by the writer the claim waited for).
    Stored,
    /// The blob is missing, and the caller is now its only claimed writer.
    Claimed(BlobLock),
}

/// The exclusive right to write one blob: other [`BlobStore::claim`]s of its
/// digest, in this process or another, wait until it ends. It ends when the
/// blob it becomes is committed, or when it (or its writer) is dropped or the
/// process dies.
#[derive(Debug)]
pub struct BlobLock {
    store: BlobStore,
    digest: Digest,
    lock: ObjectLock,
}

impl BlobLock {
    /// The claimed digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Starts writing the claimed blob, which must be exactly
    /// `expected_size` bytes if given; see [`BlobStore::writer`].
    pub fn writer(self, expected_size: Option<u64>) -> Result<BlobWriter, StoreError> {
        let mut writer = self.store.writer(&self.digest, expected_size)?;
        writer.claim = Some(self.lock);
        Ok(writer)
    }

    /// Stores the claimed blob from memory; see [`BlobStore::put_bytes`].
    pub fn put_bytes(self, data: &[u8]) -> Result<PathBuf, StoreError> {
        let digest = self.digest.clone();
        copy_into(self.writer(Some(data.len() as u64))?, &digest, data)
    }
}

/// Copies `reader` into `writer`, verifies and commits.
fn copy_into<R: Read>(
    mut writer: BlobWriter,
    digest: &Digest,
    mut reader: R,
) -> Result<PathBuf, StoreError> {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(StoreError::Read {
                    digest: digest.clone(),
                    source,
                })
            }
        };
        if writer.write_all(&buf[..n]).is_err() {
            break; // finish() reports the overrun or the write error
        }
    }
    writer.finish()?.commit()
}

impl BlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<BlobStore, StoreError> {
        let store = BlobStore { root: root.into() };
        let dirs = ALGORITHMS
            .map(|alg| store.alg_dir(alg))
            .into_iter()
            .chain([store.tmp_dir(), locks::locks_dir(&store.root)]);
        for dir in dirs {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        Ok(store)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.alg_dir(digest.algorithm()).join(digest.hex())
    }

    fn alg_dir(&self, alg: Algorithm) -> PathBuf {
        self.root.join("blobs").join(alg.as_str())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh, unused path in `tmp/` named `<pid>-<nanos>-<n>.<suffix>`: the
    /// pid prefix is what [`gc_tmp`](Self::gc_tmp) uses to tell abandoned
    /// entries from those of live writers.
    pub(crate) fn temp_path(&self, suffix: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir()
            .join(format!("{}-{nanos}-{n}.{suffix}", std::process::id()))
    }

    /// Starts writing a blob that must hash to `expected` and, if given, be
    /// exactly `expected_size` bytes, without a claim (see [`claim`](Self::claim)).
    pub fn writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, StoreError> {
        let (file, guard) = self.create_temp()?;
        Ok(BlobWriter {
            store: self.clone(),
            expected: expected.clone(),
            file,
            guard,
            verifier: Verifier::new(expected.clone(), expected_size),
            write_error: None,
            claim: None,
        })
    }

    /// Claims the right to write `digest`, first waiting (blocking the
    /// thread) while another thread or process holds it. Returns
    /// [`BlobClaim::Stored`] when the blob is, or by then has been, stored.
    /// Use it before fetching content that is costly to get, so that
    /// concurrent fetches of one blob happen once.
    pub fn claim(&self, digest: &Digest) -> Result<BlobClaim, StoreError> {
        if self.has(digest) {
            return Ok(BlobClaim::Stored);
        }
        let lock = self.lock(digest)?;
        Ok(if self.has(digest) {
            BlobClaim::Stored
        } else {
            BlobClaim::Claimed(lock)
        })
    }

    /// Waits for the exclusive claim on `digest`, whether or not it is stored.
    pub(crate) fn lock(&self, digest: &Digest) -> Result<BlobLock, StoreError> {
        Ok(BlobLock {
            store: self.clone(),
            digest: digest.clone(),
            lock: locks::lock_object(&self.root, ObjectKind::Blob, digest)?,
        })
    }

    /// Stores the content read from `reader`, which must hash to `expected`
    /// and, if given, be exactly `expected_size` bytes. Returns the blob path.
    ///
    /// On any error nothing is added under `blobs/` and the temporary file is
    /// removed. Storing a blob that is already present rewrites it (harmless;
    /// check [`has`](Self::has) first to skip the download).
    pub fn put_stream<R: Read>(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
        reader: R,
    ) -> Result<PathBuf, StoreError> {
        copy_into(self.writer(expected, expected_size)?, expected, reader)
    }

    /// Convenience wrapper of [`put_stream`](Self::put_stream) for in-memory content.
    pub fn put_bytes(&self, expected: &Digest, data: &[u8]) -> Result<PathBuf, StoreError> {
        self.put_stream(expected, Some(data.len() as u64), data)
    }

    fn create_temp(&self) -> Result<(File, TempGuard), StoreError> {
        loop {
            let path = self.temp_path("tmp");
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((file, TempGuard::new(path))),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err("create temporary file", &path)(e)),
            }
        }
    }

    /// Whether a blob with this digest is stored.
    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a stored blob for reading. If `expected_size` is given, the file
    /// size is checked against it (cheap: one `fstat`, no hashing); use
    /// [`verify`](Self::verify) to re-hash.
    pub fn open(&self, digest: &Digest, expected_size: Option<u64>) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(digest.clone()))
            }
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        if let Some(expected) = expected_size {
            let actual = file.metadata().map_err(io_err("stat", &path))?.len();
            if actual != expected {
                return Err(StoreError::Corrupt {
                    digest: digest.clone(),
                    path,
                    reason: format!("expected {expected} bytes, file has {actual}"),
                });
            }
        }
        Ok(file)
    }

    /// Re-hashes a stored blob; returns its size if it matches its digest.
    pub fn verify(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(digest);
        let mut file = self.open(digest, None)?;
        let mut verifier = Verifier::new(digest.clone(), None);
        io::copy(&mut file, &mut verifier).map_err(io_err("read", &path))?;
        verifier.finish().map_err(|e| StoreError::Corrupt {
            digest: digest.clone(),
            path,
            reason: e.to_string(),
        })
    }

    /// Removes a blob; returns whether it was present.
    pub fn remove(&self, digest: &Digest) -> Result<bool, StoreError> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// All stored blobs, sorted. Files whose names are not valid digests
    /// (which this store never creates) are ignored.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for alg in ALGORITHMS {
            let dir = self.alg_dir(alg);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                let name = entry.file_name();
                if let Some(d) = name.to_str().and_then(|n| Digest::from_parts(alg, n).ok()) {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes temporary files left by writers that no longer exist (a
    /// process killed mid-write). Files of live processes, including this
    /// one's in-flight writes, are kept. Returns how many files were removed.
    ///
    /// Liveness is read from `/proc/<pid>`; where `/proc` is unavailable, only
    /// temporary files older than a day are removed.
    pub(crate) fn gc_tmp(&self) -> Result<usize, StoreError> {
        self.gc_tmp_measured().map(|(n, _)| n)
    }

    /// [`gc_tmp`](Self::gc_tmp), also returning the bytes the removed entries
    /// occupied on disk.
    pub(crate) fn gc_tmp_measured(&self) -> Result<(usize, u64), StoreError> {
        let dir = self.tmp_dir();
        let have_proc = Path::new("/proc/self").exists();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(io_err("list", &dir)(e)),
        };
        let mut removed = 0;
        let mut bytes = 0;
        for entry in entries {
            let entry = entry.map_err(io_err("list", &dir))?;
            let path = entry.path();
            let owner = entry
                .file_name()
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            let abandoned = match owner {
                Some(pid) if have_proc => !Path::new("/proc").join(pid.to_string()).exists(),
                _ if have_proc => true, // not a name this store creates
                _ => entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > TMP_MAX_AGE_WITHOUT_PROC),
            };
            if !abandoned {
                continue;
            }
            let size = fsutil::disk_usage(&path)?;
            let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => {
                    removed += 1;
                    bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok((removed, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::VerifyError;
    use std::sync::{Arc, Barrier};

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::new(dir.path().join("store")).unwrap();
        (dir, store)
    }

    fn count(dir: &Path) -> usize {
        fs::read_dir(dir).unwrap().count()
    }

    fn assert_nothing_stored(s: &BlobStore) {
        assert_eq!(s.list().unwrap(), vec![]);
        assert_eq!(count(&s.root().join("blobs/sha256")), 0);
        assert_eq!(count(&s.root().join("tmp")), 0, "temp file left behind");
    }

    #[test]
    fn layout_and_round_trip() {
        let (_d, s) = store();
        let data = b"hello blob";
        let digest = Digest::of_bytes(Algorithm::Sha256, data);
        let path = s.put_bytes(&digest, data).unwrap();
        assert_eq!(path, s.root().join("blobs/sha256").join(digest.hex()));
        assert!(s.has(&digest));
        let mut got = Vec::new();
        s.open(&digest, Some(data.len() as u64))
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, data);
        assert_eq!(s.verify(&digest).unwrap(), data.len() as u64);
        assert_eq!(s.list().unwrap(), vec![digest]);
        assert_eq!(count(&s.root().join("tmp")), 0);
    }

    #[test]
    fn large_stream_without_size_and_sha512() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let digest = Digest::of_bytes(Algorithm::Sha512, &data);
        let path = s.put_stream(&digest, None, &data[..]).unwrap();
        assert_eq!(path, s.root().join("blobs/sha512").join(digest.hex()));
        assert_eq!(fs::read(path).unwrap(), data);
    }

    #[test]
    fn digest_mismatch_stores_nothing() {
        let (_d, s) = store();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"expected");
        let err = s
            .put_stream(&digest, Some(8), &b"tampered"[..])
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Verify(VerifyError::DigestMismatch { .. })),
            "{err}"
        );
        assert!(!s.has(&digest));
        assert_nothing_stored(&s);
    }

    #[test]
    fn size_mismatch_stores_nothing() {
        let (_d, s) = store();
        let data = b"twelve bytes";
        let digest = Digest::of_bytes(Algorithm::Sha256, data);
        for size in [11, 13, 0] {
            let err = s.put_stream(&digest, Some(size), &data[..]).unwrap_err();
            assert!(
                matches!(err, StoreError::Verify(VerifyError::SizeMismatch { .. })),
                "{size}: {err}"
            );
            assert_nothing_stored(&s);
        }
    }

    struct FailingReader(usize);
    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "peer went away",
                ));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_error_midway_stores_nothing() {
        let (_d, s) = store();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"whatever");
        let err = s
            .put_stream(&digest, None, FailingReader(100_000))
            .unwrap_err();
        assert!(matches!(err, StoreError::Read { .. }), "{err}");
        assert!(err.to_string().contains("peer went away"));
        assert_nothing_stored(&s);
    }

    #[test]
    fn concurrent_puts_of_same_digest() {
        let (_d, s) = store();
        let data: Arc<Vec<u8>> = Arc::new((0..200_000u32).map(|i| (i * 7) as u8).collect());
        let digest = Digest::of_bytes(Algorithm::Sha256, &data);
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (s, data, digest, barrier) =
                    (s.clone(), data.clone(), digest.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.put_stream(&digest, Some(data.len() as u64), &data[..])
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        assert_eq!(s.list().unwrap(), vec![digest.clone()]);
        assert_eq!(s.verify(&digest).unwrap(), data.len() as u64);
        assert_eq!(count(&s.root().join("tmp")), 0);
    }

    #[test]
    fn concurrent_claims_fetch_once() {
        let (_d, s) = store();
        let data: Arc<Vec<u8>> = Arc::new((0..100_000u32).map(|i| (i * 3) as u8).collect());
        let digest = Digest::of_bytes(Algorithm::Sha256, &data);
        let fetches = Arc::new(AtomicU64::new(0));
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (root, data, digest, barrier, fetches) = (
                    s.root().to_owned(),
                    data.clone(),
                    digest.clone(),
                    barrier.clone(),
                    fetches.clone(),
                );
                std::thread::spawn(move || {
                    // Each its own store handle, as separate processes would have.
                    let s = BlobStore::new(root).unwrap();
                    barrier.wait();
                    match s.claim(&digest).unwrap() {
                        BlobClaim::Stored => {}
                        BlobClaim::Claimed(lock) => {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            lock.put_bytes(&data).unwrap();
                        }
                    }
                    s.verify(&digest).unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), data.len() as u64);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(count(&s.root().join("tmp")), 0);
        assert_eq!(count(&s.root().join("locks")), 0, "lock file left");
    }

    #[test]
    fn a_claim_given_up_or_failed_passes_to_the_next_writer() {
        let (_d, s) = store();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"content");
        let BlobClaim::Claimed(lock) = s.claim(&digest).unwrap() else {
            panic!("an empty store has the blob");
        };
        drop(lock);
        let BlobClaim::Claimed(lock) = s.claim(&digest).unwrap() else {
            panic!("a claim given up stored the blob");
        };
        let err = lock.put_bytes(b"tampered").unwrap_err();
        assert!(matches!(err, StoreError::Verify(_)), "{err}");
        let BlobClaim::Claimed(lock) = s.claim(&digest).unwrap() else {
            panic!("a rejected write stored the blob");
        };
        let mut writer = lock.writer(Some(7)).unwrap();
        writer.write_all(b"content").unwrap();
        writer.finish().unwrap().commit().unwrap();
        assert!(matches!(s.claim(&digest).unwrap(), BlobClaim::Stored));
        assert_nothing_in(&s.root().join("locks"));
    }

    fn assert_nothing_in(dir: &Path) {
        assert_eq!(count(dir), 0, "{} is not empty", dir.display());
    }

    #[test]
    fn open_checks_size_and_reports_missing() {
        let (_d, s) = store();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"abc");
        assert!(matches!(
            s.open(&digest, None),
            Err(StoreError::NotFound(_))
        ));
        s.put_bytes(&digest, b"abc").unwrap();
        assert!(s.open(&digest, Some(3)).is_ok());
        assert!(matches!(
            s.open(&digest, Some(4)),
            Err(StoreError::Corrupt { .. })
        ));
        // Corruption on disk is caught by verify().
        fs::write(s.blob_path(&digest), b"abd").unwrap();
        assert!(s.open(&digest, Some(3)).is_ok());
        assert!(matches!(s.verify(&digest), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn remove_and_list() {
        let (_d, s) = store();
        let a = Digest::of_bytes(Algorithm::Sha256, b"a");
        let b = Digest::of_bytes(Algorithm::Sha256, b"b");
        s.put_bytes(&a, b"a").unwrap();
        s.put_bytes(&b, b"b").unwrap();
        fs::write(s.root().join("blobs/sha256/not-a-digest"), b"").unwrap();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(s.list().unwrap(), want);
        assert!(s.remove(&a).unwrap());
        assert!(!s.remove(&a).unwrap());
        assert!(!s.has(&a));
        assert_eq!(s.list().unwrap(), vec![b]);
    }

    #[test]
    fn gc_tmp_removes_abandoned_writes_only() {
        let (_d, s) = store();
        let tmp = s.root().join("tmp");
        // A writer that was killed mid-write: its pid no longer exists.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        fs::write(tmp.join(format!("{dead}-1-0.tmp")), b"partial").unwrap();
        fs::write(tmp.join("garbage"), b"?").unwrap();
        // A live writer (this process) must be left alone.
        let live = tmp.join(format!("{}-1-0.tmp", std::process::id()));
        fs::write(&live, b"in flight").unwrap();

        assert_eq!(s.gc_tmp().unwrap(), 2);
        let left: Vec<_> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, vec![live]);
        assert_eq!(s.gc_tmp().unwrap(), 0);
        assert_eq!(s.list().unwrap(), vec![]);
    }

    #[test]
    fn reopen_existing_store() {
        let (d, s) = store();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"persist");
        s.put_bytes(&digest, b"persist").unwrap();
        let again = BlobStore::new(d.path().join("store")).unwrap();
        assert!(again.has(&digest));
    }
}
