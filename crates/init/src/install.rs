//! Installing the init on the host: once per content, under a name carrying its SHA-256, by
//! temp file + rename so that concurrent installers and readers only ever see a whole file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::INIT_BYTES;

/// The installed file's mode: anyone may run it, nobody may write it.
const MODE: u32 = 0o555;

/// Installing the init failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem step failed: what was being done, on which path, and why.
    #[error("install the container init: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// The installed file's name: `pelagos-init-` and the first 16 hex digits of the program's
/// SHA-256, so a new build never reuses an old build's file.
pub fn file_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let digest = Sha256::digest(INIT_BYTES);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("pelagos-init-{hex}")
    })
}

/// Makes sure `dir/`[`file_name`] holds the init (mode 0555) and returns its path. An existing
/// file is used only if it is a regular file (not a symlink) of mode 0555 whose bytes are the
/// program's; anything else there is replaced. Safe to call from several threads and processes
/// at once: each writes its own temp file and renames it into place, and every rename installs
/// the same bytes. `dir` is created if missing.
pub fn install(dir: &Path) -> Result<PathBuf, Error> {
    let path = dir.join(file_name());
    if holds_the_init(&path) {
        return Ok(path);
    }
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    let temp = temp_path(dir);
    let written = write_init(&temp)
        .and_then(|()| fs::rename(&temp, &path).map_err(io_error("rename into place", &path)));
    if written.is_err() {
        // Best effort: the temp name is ours alone, nobody else will remove it.
        let _ = fs::remove_file(&temp);
    }
    written.map(|()| path)
}

/// Whether `path` is a regular file, mode 0555, holding exactly `INIT_BYTES` (read without
/// following a symlink; any error means "no").
fn holds_the_init(path: &Path) -> bool {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if !meta.is_file()
        || meta.len() != INIT_BYTES.len() as u64
        || meta.permissions().mode() & 0o7777 != MODE
    {
        return false;
    }
    // One byte more than expected, so a file that grew since the stat does not pass.
    let mut bytes = Vec::with_capacity(INIT_BYTES.len() + 1);
    file.take(INIT_BYTES.len() as u64 + 1)
        .read_to_end(&mut bytes)
        .is_ok_and(|_| bytes == INIT_BYTES)
}

/// A name in `dir` no other installer uses: pid, a per-process counter and the clock (pids
/// repeat across pid namespaces that share the directory).
fn temp_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".{}.{}-{}-{nanos}.tmp",
        file_name(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Creates `temp` (which must not exist) with the program, mode 0555 whatever the umask. No
/// fsync: a file cut short by a crash fails the check of the next `install` and is replaced.
fn write_init(temp: &Path) -> Result<(), Error> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(temp)
        .map_err(io_error("create", temp))?;
    file.write_all(INIT_BYTES)
        .map_err(io_error("write", temp))?;
    file.set_permissions(Permissions::from_mode(MODE))
        .map_err(io_error("set the mode of", temp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_name_carries_the_content_hash() {
        let name = file_name();
        let hex = name.strip_prefix("pelagos-init-").unwrap();
        assert_eq!(hex.len(), 16);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_program_is_a_small_static_elf() {
        assert_eq!(&INIT_BYTES[..4], b"\x7fELF");
        assert!(INIT_BYTES.len() < 16 * 1024, "{} bytes", INIT_BYTES.len());
    }

    #[test]
    fn install_writes_once_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/dir");
        let path = install(&target).unwrap();
        assert_eq!(path, target.join(file_name()));
        assert_eq!(fs::read(&path).unwrap(), INIT_BYTES);
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o555);
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        assert_eq!(install(&target).unwrap(), path);
        let again = fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&again),
            inode,
            "rewritten"
        );
        assert_eq!(fs::read_dir(&target).unwrap().count(), 1, "temp file left");
    }

    #[test]
    fn a_wrong_file_under_the_name_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name());
        let mut flipped = INIT_BYTES.to_vec();
        flipped[100] ^= 1;
        for (content, mode) in [
            (flipped, MODE),
            (INIT_BYTES.to_vec(), 0o755),
            (vec![], MODE),
        ] {
            let _ = fs::remove_file(&path);
            fs::write(&path, &content).unwrap();
            fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
            assert_eq!(install(dir.path()).unwrap(), path);
            assert!(holds_the_init(&path));
        }
    }

    #[test]
    fn a_symlink_under_the_name_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, INIT_BYTES).unwrap();
        fs::set_permissions(&elsewhere, Permissions::from_mode(MODE)).unwrap();
        let path = dir.path().join(file_name());
        symlink(&elsewhere, &path).unwrap();
        assert_eq!(install(dir.path()).unwrap(), path);
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
    }

    #[test]
    fn concurrent_installs_from_threads_agree() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| install(dir.path()))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        assert!(paths.iter().all(|p| p == &paths[0]));
        assert!(holds_the_init(&paths[0]));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temp file left"
        );
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"").unwrap();
        let err = install(&file.join("below")).unwrap_err();
        assert!(err.to_string().contains("a-file"), "{err}");
    }
}
