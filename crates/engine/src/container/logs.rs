//! `logs`: reads the container's log through its driver (the tail from the end of the file),
//! and with `follow` keeps reading until the container stops, told by its monitor.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use pelagos_model::logs::{self, LogEntry, LogSettings, ReadOptions};
use pelagos_model::protocol::{Request, WaitCondition};

use crate::error::{Error, Result};
use crate::Engine;

/// Emits the container's log entries (then new ones with `follow`, until it stops).
pub fn logs(
    engine: &Engine,
    name_or_id: &str,
    options: &ReadOptions,
    follow: bool,
    emit: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    read_logs(engine, name_or_id, options, follow, None, emit)
}

/// As [`logs`], and a follow also ends when `cancel` becomes readable or hangs up: the read
/// end of a pipe whose writer belongs to a client that may vanish (a daemon's follower), so
/// a quiet container does not keep a gone client's reader waiting.
pub fn logs_cancellable(
    engine: &Engine,
    name_or_id: &str,
    options: &ReadOptions,
    follow: bool,
    cancel: BorrowedFd<'_>,
    emit: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    read_logs(engine, name_or_id, options, follow, Some(cancel), emit)
}

fn read_logs(
    engine: &Engine,
    name_or_id: &str,
    options: &ReadOptions,
    follow: bool,
    cancel: Option<BorrowedFd<'_>>,
    emit: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let settings = LogSettings::from_config(&record.host_config.log_config)?;
    let dir = engine.containers().dir_of(&record.id);
    let watcher = if follow {
        super::monitor_of(engine, &record)?
    } else {
        None
    };
    match watcher {
        Some(mut client) => {
            // Readable once the container is no longer running: the end of the follow.
            client.send(
                &Request::Wait {
                    condition: WaitCondition::NotRunning,
                },
                &[],
            )?;
            let either = cancel
                .map(|c| either_readable(client.socket().as_fd(), c))
                .transpose()
                .map_err(|e| Error::io("watch the follower's end", e))?;
            let stop = match &either {
                Some(fd) => fd.as_fd(),
                None => client.socket().as_fd(),
            };
            logs::follow(&dir, &settings, options, Some(stop), emit)?;
        }
        None => logs::read(&dir, &settings, options, emit)?,
    }
    Ok(())
}

/// An epoll descriptor that is readable when `a` or `b` is readable or hangs up (the follow
/// waits on one descriptor).
fn either_readable(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
    // that nothing else owns.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` was just returned by epoll_create1 and is owned by nobody else.
    let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
    for fd in [a, b] {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd.as_raw_fd() as u64,
        };
        // SAFETY: both descriptors are open for the call; `event` is a valid epoll_event
        // the kernel only reads.
        let rc = unsafe {
            libc::epoll_ctl(
                epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(epoll)
}

/// The attributes `logs --details` shows with every entry: the labels and environment
/// variables named by the `labels` and `env` log options (they are fixed at creation, so
/// read from the record rather than stored with each entry).
pub fn attrs(engine: &Engine, name_or_id: &str) -> Result<Vec<(String, String)>> {
    let record = super::lookup(engine, name_or_id)?;
    let settings = LogSettings::from_config(&record.host_config.log_config)?;
    Ok(settings.attrs(&record.config.labels, &record.config.env))
}

/// moby's `details` prefix of every log line: the log's attributes as `key=value`, both
/// query-escaped, sorted, joined by commas, then a space.
pub fn details_prefix(mut attrs: Vec<(String, String)>) -> String {
    attrs.sort();
    let pairs: Vec<String> = attrs
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    format!("{} ", pairs.join(","))
}

/// Go's `url.QueryEscape`: unreserved characters kept, space as `+`, the rest `%XX`
/// (written here: a few lines, where a URL crate would be a new dependency).
fn query_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
