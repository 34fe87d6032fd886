//! The log writer a container's monitor drives from its poll loop: synchronous, on regular
//! files, rotating at `max-size`; a failed write is returned for the caller to count and the
//! writer goes on with the next one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::files::{log_path, LogFile};
use super::format::{Format, Record};
use super::{Driver, LogSettings, Stream, MAX_ENTRY};
use crate::error::{Error, Result};

/// Docker's mode of log files.
const MODE: u32 = 0o640;

/// Writes a container's log; see [`LogWriter::write`] and [`LogWriter::append`].
#[derive(Debug)]
pub struct LogWriter {
    /// `None` for the `none` driver.
    sink: Option<Sink>,
    /// Per stream, bytes of [`LogWriter::append`] not ended by a newline yet.
    pending: [Vec<u8>; 2],
}

#[derive(Debug)]
struct Sink {
    dir: PathBuf,
    name: &'static str,
    format: Format,
    max_size: Option<u64>,
    max_file: u32,
    /// `None` after a failed rotation: reopened by the next write.
    file: Option<File>,
    /// Bytes of whole records in `file`.
    size: u64,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (creates, or appends to) the log in the container's directory `dir`. A record
    /// torn by a crash at the end of the file is cut off first.
    pub fn open(dir: &Path, settings: &LogSettings) -> Result<LogWriter> {
        let format = match settings.driver {
            Driver::JsonFile => Format::Json,
            Driver::Local => Format::Local,
            Driver::None => {
                return Ok(LogWriter {
                    sink: None,
                    pending: Default::default(),
                })
            }
        };
        let mut sink = Sink {
            dir: dir.to_path_buf(),
            name: settings.file_name().unwrap_or(super::JSON_FILE_NAME),
            format,
            max_size: settings.max_size,
            max_file: settings.max_file.max(1),
            file: None,
            size: 0,
            buf: Vec::new(),
        };
        sink.reopen()?;
        Ok(LogWriter {
            sink: Some(sink),
            pending: Default::default(),
        })
    }

    /// The current log file (`None` for the `none` driver).
    pub fn path(&self) -> Option<PathBuf> {
        self.sink.as_ref().map(|s| log_path(&s.dir, s.name, 0))
    }

    /// Writes one message of `stream`, timed now. `bytes` is a line, with or without its
    /// newline: a line is stored with its newline, as Docker does. With `partial` and no
    /// newline at the end, `bytes` is a piece of a longer line and is stored without one.
    /// More than [`MAX_ENTRY`] bytes are split into partial entries.
    pub fn write(&mut self, stream: Stream, bytes: &[u8], partial: bool) -> Result<()> {
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let (line, newline) = match bytes.strip_suffix(b"\n") {
            Some(line) => (line, true),
            None => (bytes, false),
        };
        let ends_line = newline || !partial;
        if line.is_empty() && !ends_line {
            return Ok(());
        }
        let time = SystemTime::now();
        let mut pieces = line.chunks(MAX_ENTRY).peekable();
        let mut first_error = None;
        if pieces.peek().is_none() {
            first_error = sink.write_entry(stream, time, b"", true).err();
        }
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none() && ends_line;
            if let Err(e) = sink.write_entry(stream, time, piece, last) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes bytes as read from the container's `stream`: an entry for each whole line, and a
    /// partial entry for each [`MAX_ENTRY`] bytes without a newline, as Docker's copier does;
    /// the rest waits for more bytes or [`LogWriter::finish`].
    pub fn append(&mut self, stream: Stream, chunk: &[u8]) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending[stream.index()]);
        pending.extend_from_slice(chunk);
        let mut done = 0;
        let mut first_error = None;
        loop {
            let rest = &pending[done..];
            let (len, partial) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) if i < MAX_ENTRY => (i + 1, false),
                _ if rest.len() >= MAX_ENTRY => (MAX_ENTRY, true),
                _ => break,
            };
            if let Err(e) = self.write(stream, &rest[..len], partial) {
                first_error.get_or_insert(e);
            }
            done += len;
        }
        pending.drain(..done);
        self.pending[stream.index()] = pending;
        first_error.map_or(Ok(()), Err)
    }

    /// At the end of `stream`: writes what [`LogWriter::append`] holds back as a last line
    /// (stored with a newline, as Docker does at the end of a stream).
    pub fn finish(&mut self, stream: Stream) -> Result<()> {
        let rest = std::mem::take(&mut self.pending[stream.index()]);
        if rest.is_empty() {
            return Ok(());
        }
        self.write(stream, &rest, false)
    }
}

impl Sink {
    /// One entry; `ends_line`: the line's newline is added.
    fn write_entry(
        &mut self,
        stream: Stream,
        time: SystemTime,
        piece: &[u8],
        ends_line: bool,
    ) -> Result<()> {
        let mut bytes = piece.to_vec();
        if ends_line {
            bytes.push(b'\n');
        }
        self.buf.clear();
        self.format.encode(
            &Record {
                stream,
                time,
                bytes: &bytes,
                partial: !ends_line,
            },
            &mut self.buf,
        );
        self.write_record()
    }

    /// Writes `buf`, rotating first if it would take the file past `max_size`.
    fn write_record(&mut self) -> Result<()> {
        let len = self.buf.len() as u64;
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + len > max)
        {
            self.rotate()?;
        }
        let path = log_path(&self.dir, self.name, 0);
        let file = match &mut self.file {
            Some(file) => file,
            closed => {
                let (file, size) = open_current(&path, self.format)?;
                self.size = size;
                closed.insert(file)
            }
        };
        match file.write_all(&self.buf) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(e) => {
                // Best effort: cut a torn record so that readers and later records stay
                // aligned (O_APPEND writes go on at the new end).
                let _ = file.set_len(self.size);
                Err(Error::io(format!("write {}", path.display()), e))
            }
        }
    }

    /// Opens the current file (after a crash or a failed rotation).
    fn reopen(&mut self) -> Result<()> {
        let (file, size) = open_current(&log_path(&self.dir, self.name, 0), self.format)?;
        self.file = Some(file);
        self.size = size;
        Ok(())
    }

    /// Docker's rotation: `<name>.N-2` → `.N-1` (the oldest dropped), …, `<name>` → `.1`, a new
    /// `<name>`. With one file the old one is dropped once the new one exists, so that a
    /// follower never sees the current file deleted.
    fn rotate(&mut self) -> Result<()> {
        self.file = None;
        for index in (1..self.max_file.saturating_sub(1)).rev() {
            self.rename(index, index + 1)?;
        }
        self.rename(0, 1)?;
        // The old file is rotated: a failed reopen must not rotate the next file early.
        self.size = 0;
        self.reopen()?;
        if self.max_file == 1 {
            let old = log_path(&self.dir, self.name, 1);
            match std::fs::remove_file(&old) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::io(format!("remove {}", old.display()), e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn rename(&self, from: u32, to: u32) -> Result<()> {
        let (from, to) = (
            log_path(&self.dir, self.name, from),
            log_path(&self.dir, self.name, to),
        );
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(
                format!("rotate {} to {}", from.display(), to.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}

/// Opens the current log file for appending, creating it; returns it with the size of its
/// whole records, a record torn by a crash at its end cut off.
fn open_current(path: &Path, format: Format) -> Result<(File, u64)> {
    let what = |verb: &str, e| Error::io(format!("{verb} {}", path.display()), e);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(MODE)
        .open(path)
        .map_err(|e| what("open", e))?;
    let reader = LogFile::open(path.to_path_buf())?
        .ok_or_else(|| what("open", io::ErrorKind::NotFound.into()))?;
    let end = format.complete_end(&reader)?;
    if reader.file.metadata().map_err(|e| what("stat", e))?.len() > end {
        file.set_len(end).map_err(|e| what("truncate", e))?;
    }
    Ok((file, end))
}
