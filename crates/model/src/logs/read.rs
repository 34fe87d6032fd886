//! `logs` without `--follow`: the log's files oldest to newest, or their last `tail` entries
//! read from the end.

use std::io;
use std::path::Path;

use super::files::{snapshot, LogFile};
use super::format::Format;
use super::{tail, Driver, LogEntry, LogSettings, ReadOptions};
use crate::error::{Error, Result};

/// Docker's error for reading a log the driver does not keep.
const NO_READING: &str = "configured logging driver does not support reading";

/// Calls `emit` for the entries of the log in `dir` that `opts` asks for, oldest first.
/// A log not written yet has no entries; the `none` driver's log is an error.
pub fn read(
    dir: &Path,
    settings: &LogSettings,
    opts: &ReadOptions,
    emit: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
) -> Result<()> {
    let (format, name) = readable(settings)?;
    let files = snapshot(dir, name, settings.max_file)?;
    read_files(files, format, opts, emit)?;
    Ok(())
}

/// The format and file name of a driver that keeps a log.
pub(crate) fn readable(settings: &LogSettings) -> Result<(Format, &'static str)> {
    let format = match settings.driver {
        Driver::JsonFile => Format::Json,
        Driver::Local => Format::Local,
        Driver::None => return Err(Error::Invalid(NO_READING.to_string())),
    };
    let name = settings
        .file_name()
        .ok_or_else(|| Error::Invalid(NO_READING.to_string()))?;
    Ok((format, name))
}

/// Where a reader stands: the newest file read and the offset after its last whole record.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    pub file: Option<LogFile>,
    pub offset: u64,
}

/// Emits what `opts` asks for from `files` (oldest first); returns where it stopped.
pub(crate) fn read_files(
    mut files: Vec<LogFile>,
    format: Format,
    opts: &ReadOptions,
    emit: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
) -> Result<Cursor> {
    let offset = match opts.tail {
        Some(n) => {
            let (entries, end) = tail::tail(&files, format, opts, n)?;
            for entry in &entries {
                emit(entry).map_err(emit_error)?;
            }
            end
        }
        None => {
            let mut end = 0;
            for file in &files {
                end = format.drain(file, 0, &mut |entry| deliver(opts, emit, &entry))?;
            }
            end
        }
    };
    Ok(Cursor {
        file: files.pop(),
        offset,
    })
}

/// Emits `entry` if it passes the filters.
pub(crate) fn deliver(
    opts: &ReadOptions,
    emit: &mut dyn FnMut(&LogEntry) -> io::Result<()>,
    entry: &LogEntry,
) -> Result<()> {
    if opts.matches(entry) {
        emit(entry).map_err(emit_error)?;
    }
    Ok(())
}

fn emit_error(e: io::Error) -> Error {
    Error::io("write the log entries", e)
}
