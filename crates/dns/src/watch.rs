//! Noticing that the names file changed: inotify on its directory (writers rename a new
//! file into place) plus a check of the file's identity, so spurious events cost one stat.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::error::{Error, Result};

/// The file's identity: device, inode, modification time, size.
type Stamp = (u64, u64, i64, i64, u64);

/// A watch on one file.
#[derive(Debug)]
pub struct Watcher {
    file: PathBuf,
    name: Option<OsString>,
    inotify: Inotify,
    stamp: Option<Stamp>,
}

impl Watcher {
    /// Watch `file` (its directory must exist); the first `changed` is true if it exists.
    pub fn new(file: &Path) -> Result<Watcher> {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| Error::sys("inotify_init", e))?;
        let mask = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF;
        inotify
            .add_watch(dir, mask)
            .map_err(|e| Error::file("watch", dir, e.into()))?;
        Ok(Watcher {
            file: file.to_path_buf(),
            name: file.file_name().map(OsString::from),
            inotify,
            stamp: None,
        })
    }

    /// The inotify descriptor to poll.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.inotify.as_fd()
    }

    /// Read the pending events; true if one may concern the file.
    pub fn drain(&self) -> bool {
        let mut relevant = false;
        while let Ok(events) = self.inotify.read_events() {
            if events.is_empty() {
                break;
            }
            relevant |= events
                .iter()
                .any(|e| e.name.is_none() || e.name == self.name);
        }
        relevant
    }

    /// Whether the file is another one (or gone, or back) since the last call.
    pub fn changed(&mut self) -> bool {
        let now = std::fs::metadata(&self.file)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()));
        let changed = now != self.stamp;
        self.stamp = now;
        changed
    }
}
