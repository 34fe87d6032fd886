//! The resolver's pid file, which is also its liveness: the resolver holds an
//! open-file-description write lock on it for its whole life, so "is it running?" is
//! answered by the kernel (a test lock, which never disturbs the holder), never by a pid.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

use crate::error::{Error, Result};

/// What a pid file says about its resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nobody holds the lock (no file, or its resolver exited or died).
    NotRunning,
    /// Locked but no pid yet: the resolver is binding its sockets.
    Starting,
    /// Locked, sockets bound: the resolver's pid.
    Running(u32),
}

/// Whether the resolver of the pid file `path` is running.
pub fn status(path: &Path) -> Result<Status> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Status::NotRunning),
        Err(e) => return Err(Error::file("open", path, e)),
    };
    let mut probe = whole_file_lock(libc::F_WRLCK);
    fcntl(file.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut probe))
        .map_err(|e| Error::file("test the lock of", path, e.into()))?;
    if i32::from(probe.l_type) == libc::F_UNLCK {
        return Ok(Status::NotRunning);
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| Error::file("read", path, e))?;
    Ok(text
        .trim()
        .parse()
        .map_or(Status::Starting, Status::Running))
}

/// The resolver's hold on its pid file; dropping it empties the file and releases the lock.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    /// Take the pid file's lock, retrying briefly; fails with `AlreadyRunning` if another
    /// resolver keeps it.
    pub fn claim(path: &Path) -> Result<PidFile> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::file("open", path, e))?;
        let lock = whole_file_lock(libc::F_WRLCK);
        for _ in 0..20 {
            match fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&lock)) {
                Ok(_) => {
                    return Ok(PidFile {
                        path: path.to_path_buf(),
                        file,
                    })
                }
                Err(Errno::EAGAIN | Errno::EACCES) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(Error::file("lock", path, e.into())),
            }
        }
        Err(Error::AlreadyRunning(path.to_path_buf()))
    }

    /// Write our pid: the sockets are bound.
    pub fn publish(&mut self) -> Result<()> {
        let pid = std::process::id();
        self.file
            .set_len(0)
            .map_err(|e| Error::file("truncate", &self.path, e))?;
        self.file
            .rewind()
            .map_err(|e| Error::file("rewind", &self.path, e))?;
        writeln!(self.file, "{pid}").map_err(|e| Error::file("write", &self.path, e))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Best effort: the lock, released as the file closes, is what tells liveness.
        let _ = self.file.set_len(0);
    }
}

/// A lock over the whole file.
fn whole_file_lock(kind: i32) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value (l_pid must be 0 for OFD locks).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.pid");
        assert_eq!(status(&path).unwrap(), Status::NotRunning);
        let mut held = PidFile::claim(&path).unwrap();
        assert_eq!(status(&path).unwrap(), Status::Starting);
        held.publish().unwrap();
        assert_eq!(status(&path).unwrap(), Status::Running(std::process::id()));
        assert!(matches!(
            PidFile::claim(&path),
            Err(Error::AlreadyRunning(_))
        ));
        drop(held);
        assert_eq!(status(&path).unwrap(), Status::NotRunning);
        drop(PidFile::claim(&path).unwrap());
    }
}
