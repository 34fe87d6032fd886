//! Container logs: Docker's `json-file` format, a compact binary `local` format and `none`;
//! the writer a container's monitor drives from its poll loop, and the readers of `logs`.
//!
//! * [`LogSettings::from_config`]: a container's `LogConfig`, checked as Docker does;
//! * [`LogWriter`]: single-threaded and synchronous, rotates at `max-size` keeping `max-file`
//!   files (`container.log`, `container.log.1` the newest rotated, …);
//! * [`read`]: everything, or the last `tail` entries read from the end of the files;
//! * [`follow`]: [`read`], then new entries as they are written, woken by inotify.

mod files;
pub(crate) mod follow;
mod format;
mod json_file;
mod local;
mod read;
mod settings;
mod tail;
mod writer;

use std::time::SystemTime;

pub use follow::follow;
pub use json_file::format_time;
pub use read::read;
pub use settings::{Driver, LogSettings};
pub use writer::LogWriter;

/// The file the `json-file` driver writes in the container's directory.
pub const JSON_FILE_NAME: &str = "container.log";
/// The file the `local` driver writes in the container's directory.
pub const LOCAL_FILE_NAME: &str = "container.log.local";
/// The longest entry: longer lines are split into partial entries, as Docker does at 16 KiB.
pub const MAX_ENTRY: usize = 16 * 1024;

/// The container's stream an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Docker's name: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// The stream number of Docker's frame header ([`crate::protocol::STDOUT`], `STDERR`).
    pub fn frame_stream(self) -> u8 {
        match self {
            Stream::Stdout => crate::protocol::STDOUT,
            Stream::Stderr => crate::protocol::STDERR,
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// One entry of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: Stream,
    /// When the monitor read it.
    pub time: SystemTime,
    /// The bytes, with the line's newline unless `partial`.
    pub bytes: Vec<u8>,
    /// A piece of a longer line (no newline at the end); the next entry of the stream goes on.
    pub partial: bool,
}

/// What to read (`docker logs --tail --since --until`, the streams asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Only the last n entries that pass the other filters.
    pub tail: Option<usize>,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries at or before this time; a follow ends at this time.
    pub until: Option<SystemTime>,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for ReadOptions {
    /// Everything, both streams.
    fn default() -> ReadOptions {
        ReadOptions {
            tail: None,
            since: None,
            until: None,
            stdout: true,
            stderr: true,
        }
    }
}

impl ReadOptions {
    /// Whether an entry passes the stream and time filters (not the tail).
    pub fn matches(&self, entry: &LogEntry) -> bool {
        let stream = match entry.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        stream
            && self.since.is_none_or(|since| entry.time >= since)
            && self.until.is_none_or(|until| entry.time <= until)
    }
}

#[cfg(test)]
mod tests;
