//! The event log: JSON lines in `<root>/events/events.log`, appended with one `write` each
//! (O_APPEND) under an flock on `events.lock` (waited for a few milliseconds at most, so that
//! no monitor stalls behind a stopped holder); when the file would pass its size bound it is
//! renamed to `events.log.1` (replacing the older one), so an append stays O(1) and the log
//! keeps between one and two files' worth of the newest events. Readers take no lock: they
//! read whole lines only, and tell the files apart by inode, so a rotation between two reads
//! neither repeats nor (short of two rotations meanwhile) skips events.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rustix::fs::{flock, FlockOperation};

use super::Event;
use crate::error::{Error, Result};
use crate::logs::follow::{Wake, Watch};

/// The file appended to.
pub const LOG_FILE: &str = "events.log";
/// The file the previous `events.log` was rotated to.
pub const OLD_FILE: &str = "events.log.1";
/// The lock appenders hold (a separate file: the log itself is renamed away by rotations).
const LOCK_FILE: &str = "events.lock";
/// The size at which `events.log` rotates: with the older file, 2-4 MiB, some 8 000 to
/// 16 000 events.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Which events to read, by time (both ends included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
}

impl TimeRange {
    fn contains(&self, event: &Event) -> bool {
        let t = event.system_time();
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// Takes the appenders' lock, waiting at most a few milliseconds: a container's monitor must
/// never stall behind a process stopped while it held the lock (`kill -STOP`), so past that
/// the event is appended without the lock (and without rotating).
fn lock_briefly(lock: &File) -> bool {
    for _ in 0..LOCK_ATTEMPTS {
        match flock(lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return true,
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(_) => return false,
        }
    }
    false
}

/// How many times (a millisecond apart) an appender tries the lock.
const LOCK_ATTEMPTS: u32 = 50;

/// The event log of a root.
#[derive(Debug, Clone)]
pub struct EventLog {
    dir: PathBuf,
    max_file_bytes: u64,
}

/// Where a reader is: the file it reads (by inode) and how far it has read whole lines.
struct Cursor {
    file: Option<(File, u64)>,
    offset: u64,
}

impl EventLog {
    /// The log under `root` (`<root>/events`), with the default bound.
    pub fn new(root: &Path) -> EventLog {
        EventLog::with_bound(root, DEFAULT_MAX_FILE_BYTES)
    }

    /// The log under `root`, rotating when `events.log` would pass `max_file_bytes`.
    pub fn with_bound(root: &Path, max_file_bytes: u64) -> EventLog {
        EventLog {
            dir: root.join("events"),
            max_file_bytes: max_file_bytes.max(1),
        }
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `event`, ignoring failures: an event never fails the action that emits it.
    pub fn emit(&self, event: &Event) {
        let _ = self.append(event);
    }

    /// Appends `event` as one line with one write, under the lock.
    pub fn append(&self, event: &Event) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::io("encode an event", io::Error::other(e)))?;
        line.push(b'\n');
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        let lock = self.open(LOCK_FILE, false)?;
        let locked = lock_briefly(&lock);
        let mut file = self.open(LOG_FILE, true)?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("stat the event log", e))?
            .len();
        // Only the holder of the lock rotates; an append (one O_APPEND write) is whole either
        // way.
        if locked && size > 0 && size + line.len() as u64 > self.max_file_bytes {
            std::fs::rename(self.dir.join(LOG_FILE), self.dir.join(OLD_FILE))
                .map_err(|e| Error::io("rotate the event log", e))?;
            file = self.open(LOG_FILE, true)?;
        }
        file.write_all(&line)
            .map_err(|e| Error::io("append to the event log", e))
        // The lock goes with `lock`'s descriptor.
    }

    fn open(&self, name: &str, append: bool) -> Result<File> {
        let path = self.dir.join(name);
        OpenOptions::new()
            .create(true)
            .append(append)
            .write(!append)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))
    }

    /// Calls `emit` for every stored event in `range`, oldest first.
    pub fn read(
        &self,
        range: &TimeRange,
        emit: &mut dyn FnMut(&Event) -> io::Result<()>,
    ) -> Result<()> {
        self.read_all(range, emit).map(drop)
    }

    /// [`EventLog::read`], then each event as it is appended, until `stop` is readable (or
    /// hung up), `range.until` passes, or the log's directory is removed. Woken by inotify
    /// (the same watch as `logs -f`), never by a timer.
    pub fn follow(
        &self,
        range: &TimeRange,
        stop: Option<BorrowedFd<'_>>,
        emit: &mut dyn FnMut(&Event) -> io::Result<()>,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        // Watch before the first read, so that an append after that read wakes us.
        let watch = Watch::new(&self.dir, LOG_FILE)?;
        let mut cursor = self.read_all(range, emit)?;
        if range.until.is_some_and(|u| u <= SystemTime::now()) {
            return Ok(());
        }
        loop {
            self.catch_up(&mut cursor, range, emit)?;
            if watch.wait(stop, range.until)? == Wake::Done {
                return self.catch_up(&mut cursor, range, emit);
            }
        }
    }

    /// Reads both files; the cursor at the end of the current one.
    fn read_all(
        &self,
        range: &TimeRange,
        emit: &mut dyn FnMut(&Event) -> io::Result<()>,
    ) -> Result<Cursor> {
        // The current file first: if a rotation comes between the two opens, the older
        // file opened is the current one seen, and is read once.
        let current = self.open_existing(LOG_FILE)?;
        let old = self.open_existing(OLD_FILE)?;
        if let Some((file, ino)) = &old {
            if current.as_ref().is_none_or(|(_, c)| c != ino) {
                drain(file, 0, range, emit)?;
            }
        }
        let mut cursor = Cursor {
            file: current,
            offset: 0,
        };
        if let Some((file, _)) = &cursor.file {
            cursor.offset = drain(file, 0, range, emit)?;
        }
        Ok(cursor)
    }

    /// Emits the lines appended since `cursor`, moving to the new file after a rotation
    /// (through the older file when two rotations came meanwhile).
    fn catch_up(
        &self,
        cursor: &mut Cursor,
        range: &TimeRange,
        emit: &mut dyn FnMut(&Event) -> io::Result<()>,
    ) -> Result<()> {
        loop {
            // Asked before draining: a file rotated away before the drain is complete after it
            // (rotations and appends happen under the same lock, appends only to the new file).
            let held = cursor.file.as_ref().map(|(_, ino)| *ino);
            let Some((next, next_ino)) = self
                .open_existing(LOG_FILE)?
                .filter(|(_, ino)| Some(*ino) != held)
            else {
                if let Some((file, _)) = &cursor.file {
                    cursor.offset = drain(file, cursor.offset, range, emit)?;
                }
                return Ok(());
            };
            let between = self
                .open_existing(OLD_FILE)?
                .filter(|(_, ino)| held.is_some() && Some(*ino) != held && *ino != next_ino);
            if let Some((file, _)) = &cursor.file {
                drain(file, cursor.offset, range, emit)?;
            }
            if let Some((file, _)) = &between {
                drain(file, 0, range, emit)?;
            }
            *cursor = Cursor {
                file: Some((next, next_ino)),
                offset: 0,
            };
        }
    }

    /// The file and its inode, `None` when it does not exist.
    fn open_existing(&self, name: &str) -> Result<Option<(File, u64)>> {
        let path = self.dir.join(name);
        match File::open(&path) {
            Ok(file) => {
                let ino = file
                    .metadata()
                    .map_err(|e| Error::io(format!("stat {}", path.display()), e))?
                    .ino();
                Ok(Some((file, ino)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("open {}", path.display()), e)),
        }
    }
}

/// Emits the whole lines of `file` from `offset` that parse and fall in `range`; the offset
/// after the last whole line (a line being written is left for the next drain).
fn drain(
    file: &File,
    mut offset: u64,
    range: &TimeRange,
    emit: &mut dyn FnMut(&Event) -> io::Result<()>,
) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match file.read_at(&mut buf, offset + pending.len() as u64) {
            Ok(0) => return Ok(offset),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read the event log", e)),
        };
        pending.extend_from_slice(&buf[..n]);
        let Some(last) = pending.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        for line in pending[..last].split(|&b| b == b'\n') {
            // A line that does not parse (a torn write after a crash) is skipped.
            if let Ok(event) = serde_json::from_slice::<Event>(line) {
                if range.contains(&event) {
                    emit(&event).map_err(|e| Error::io("write an event", e))?;
                }
            }
        }
        offset += last as u64 + 1;
        pending.drain(..=last);
    }
}
