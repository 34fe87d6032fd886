//! `logs --follow`: the read of [`super::read`], then each entry as it is written, across
//! rotations, woken by inotify on the container's directory; ends when the caller's stop fd
//! turns readable, the log is removed, or `until` passes.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use super::files::{snapshot, successor};
use super::format::Format;
use super::read::{deliver, read_files, readable, Cursor};
use super::{LogEntry, LogSettings, ReadOptions};
use crate::error::{Error, Result};

/// Calls `emit` for the entries `opts` asks for (as [`super::read`]), then for each new one
/// as the writer adds it, following the writer's rotations. Returns, after emitting what is
/// left in the files, once `stop` is readable (or hung up: the caller's connection to the
/// monitor, readable when the container exits), once the log file or its directory is
/// removed, or once `opts.until` has passed. Never polls on a timer.
pub fn follow(
    dir: &Path,
    settings: &LogSettings,
    opts: &ReadOptions,
    stop: Option<BorrowedFd<'_>>,
    emit: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
) -> Result<()> {
    let (format, name) = readable(settings)?;
    // Watch before the first read, so that a write or rotation after that read wakes us.
    let watch = Watch::new(dir, name)?;
    let files = snapshot(dir, name, settings.max_file)?;
    let mut cursor = read_files(files, format, opts, emit)?;
    if opts.until.is_some_and(|until| until <= SystemTime::now()) {
        return Ok(());
    }
    let follower = Follower {
        dir,
        name,
        max_file: settings.max_file,
        format,
        opts,
    };
    loop {
        follower.catch_up(&mut cursor, emit)?;
        if watch.wait(stop, opts.until)? == Wake::Done {
            return follower.catch_up(&mut cursor, emit);
        }
    }
}

/// What a follow reads.
struct Follower<'a> {
    dir: &'a Path,
    name: &'a str,
    max_file: u32,
    format: Format,
    opts: &'a ReadOptions,
}

impl Follower<'_> {
    /// Emits the whole records written since `cursor`, in the files the writer rotated away
    /// meanwhile and then in the current one.
    fn catch_up(
        &self,
        cursor: &mut Cursor,
        emit: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
    ) -> Result<()> {
        loop {
            // Asked before draining: a file rotated away before the drain is complete after it.
            let held = cursor.file.as_ref().map(|f| f.id);
            let next = successor(self.dir, self.name, self.max_file, held)?;
            if let Some(file) = &cursor.file {
                let offset = cursor.offset;
                cursor.offset = self
                    .format
                    .drain(file, offset, &mut |entry| deliver(self.opts, emit, &entry))?;
            }
            match next {
                None => return Ok(()),
                Some(file) => {
                    *cursor = Cursor {
                        file: Some(file),
                        offset: 0,
                    }
                }
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The log may have changed.
    Changed,
    /// Stop after a last catch-up.
    Done,
}

/// An inotify watch on a directory, for the files whose names start with `name` (a
/// container's log, the event log).
pub(crate) struct Watch<'a> {
    fd: OwnedFd,
    name: &'a str,
}

impl<'a> Watch<'a> {
    pub(crate) fn new(dir: &Path, name: &'a str) -> Result<Watch<'a>> {
        let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
            .map_err(|e| Error::io("inotify_init1", e.into()))?;
        let events = WatchFlags::CREATE
            | WatchFlags::MODIFY
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        inotify::add_watch(&fd, dir, events)
            .map_err(|e| Error::io(format!("watch {}", dir.display()), e.into()))?;
        Ok(Watch { fd, name })
    }

    /// Blocks until the log changes, `stop` is readable or `until` passes.
    pub(crate) fn wait(
        &self,
        stop: Option<BorrowedFd<'_>>,
        until: Option<SystemTime>,
    ) -> Result<Wake> {
        loop {
            let Some(timeout) = timeout_until(until) else {
                return Ok(Wake::Done);
            };
            let mut fds = vec![PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            fds.extend(stop.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::io("poll the log watch", e.into())),
            }
            if fds
                .get(1)
                .and_then(|fd| fd.revents())
                .is_some_and(|r| !r.is_empty())
            {
                return Ok(Wake::Done);
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                if let Some(wake) = self.read_events()? {
                    return Ok(wake);
                }
            }
        }
    }

    /// Reads the queued events: `None` if none is about the log.
    fn read_events(&self) -> Result<Option<Wake>> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&self.fd, &mut buf);
        let mut wake = None;
        loop {
            let event = match events.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::AGAIN) => return Ok(wake),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("read the log watch", e.into())),
            };
            let flags = event.events();
            let about_log = event
                .file_name()
                .is_some_and(|n| n.to_bytes().starts_with(self.name.as_bytes()));
            let removed = (flags.contains(ReadFlags::DELETE)
                && event
                    .file_name()
                    .is_some_and(|n| n.to_bytes() == self.name.as_bytes()))
                || flags.intersects(
                    ReadFlags::DELETE_SELF
                        | ReadFlags::MOVE_SELF
                        | ReadFlags::IGNORED
                        | ReadFlags::UNMOUNT,
                );
            if removed {
                wake = Some(Wake::Done);
            } else if wake.is_none() && (about_log || flags.contains(ReadFlags::QUEUE_OVERFLOW)) {
                wake = Some(Wake::Changed);
            }
        }
    }
}

/// The poll timeout until `until` (rounded up to a millisecond); `None` once it has passed.
fn timeout_until(until: Option<SystemTime>) -> Option<PollTimeout> {
    let Some(until) = until else {
        return Some(PollTimeout::NONE);
    };
    let left = until.duration_since(SystemTime::now()).ok()?;
    if left.is_zero() {
        return None;
    }
    let millis = left.as_nanos().div_ceil(1_000_000);
    Some(PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX))
}
