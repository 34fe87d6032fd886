//! What the readers and the writer share: the two file formats behind one type, the
//! positioned reads they use, and the forward walk over a file's records.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::{json_file, local, LogEntry, Stream};
use crate::error::{Error, Result};

/// Bytes read at a time, forwards or backwards.
pub(crate) const CHUNK: usize = 64 * 1024;

/// A log file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Local,
}

/// An entry to write, borrowed.
pub(crate) struct Record<'a> {
    pub stream: Stream,
    pub time: SystemTime,
    pub bytes: &'a [u8],
    pub partial: bool,
}

/// Where a record of a buffer ends (forwards) or starts (backwards).
#[derive(Debug)]
pub(crate) enum Split {
    Record(usize),
    /// The buffer holds no whole record: read more.
    NeedMore,
    /// The bytes cannot be a record.
    Corrupt,
}

/// A file read at offsets: a log file, or in tests one that counts what is read.
pub(crate) trait Source {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn size(&self) -> io::Result<u64>;
    fn path(&self) -> &Path;
}

impl Format {
    pub(crate) fn encode(self, record: &Record<'_>, out: &mut Vec<u8>) {
        match self {
            Format::Json => json_file::encode(record, out),
            Format::Local => local::encode(record, out),
        }
    }

    pub(crate) fn split_first(self, buf: &[u8]) -> Split {
        match self {
            Format::Json => json_file::split_first(buf),
            Format::Local => local::split_first(buf),
        }
    }

    pub(crate) fn split_last(self, buf: &[u8], at_start: bool) -> Split {
        match self {
            Format::Json => json_file::split_last(buf, at_start),
            Format::Local => local::split_last(buf, at_start),
        }
    }

    /// The entry of a record; `None` for a json line that is no entry (skipped, as a torn
    /// line left by a crash).
    pub(crate) fn decode(self, record: &[u8]) -> Option<LogEntry> {
        match self {
            Format::Json => json_file::decode(record),
            Format::Local => local::decode(record),
        }
    }

    /// Calls `on_entry` for each whole record from `offset` on; returns the offset after the
    /// last whole record (a record being written is left for the next call).
    pub(crate) fn drain<S: Source + ?Sized>(
        self,
        src: &S,
        offset: u64,
        on_entry: &mut dyn FnMut(LogEntry) -> Result<()>,
    ) -> Result<u64> {
        match self.walk(src, offset, Some(on_entry))? {
            (end, false) => Ok(end),
            (end, true) => Err(corrupt(src.path(), end)),
        }
    }

    /// The offset after the last whole record: the size, unless the file ends in a record
    /// being written or torn by a crash. Reads little unless a `local` file ends torn.
    pub(crate) fn complete_end<S: Source + ?Sized>(self, src: &S) -> Result<u64> {
        let size = src.size().map_err(|e| read_error(src.path(), e))?;
        match self {
            Format::Json => json_end(src, size),
            Format::Local if local_ends_whole(src, size)? => Ok(size),
            Format::Local => Ok(self.walk(src, 0, None)?.0),
        }
    }

    /// The forward walk: (the offset after the last whole record, whether a corrupt record
    /// stopped it).
    fn walk<S: Source + ?Sized>(
        self,
        src: &S,
        mut offset: u64,
        mut on_entry: Option<&mut dyn FnMut(LogEntry) -> Result<()>>,
    ) -> Result<(u64, bool)> {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = read_full(src, &mut chunk, offset + buf.len() as u64)?;
            if n == 0 {
                return Ok((offset, false));
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut used = 0;
            let corrupt = loop {
                match self.split_first(&buf[used..]) {
                    Split::Record(len) => {
                        if let Some(on_entry) = on_entry.as_deref_mut() {
                            if let Some(entry) = self.decode(&buf[used..used + len]) {
                                on_entry(entry)?;
                            }
                        }
                        used += len;
                    }
                    Split::NeedMore => break false,
                    Split::Corrupt => break true,
                }
            };
            buf.drain(..used);
            offset += used as u64;
            if corrupt {
                return Ok((offset, true));
            }
        }
    }
}

/// After the last newline of a json-file log.
fn json_end<S: Source + ?Sized>(src: &S, size: u64) -> Result<u64> {
    let mut end = size;
    let mut chunk = vec![0u8; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let want = usize::try_from(end - start).unwrap_or(CHUNK);
        let n = read_full(src, &mut chunk[..want], start)?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Whether a `local` log's last bytes are a whole record.
fn local_ends_whole<S: Source + ?Sized>(src: &S, size: u64) -> Result<bool> {
    if size == 0 {
        return Ok(true);
    }
    let mut trailer = [0u8; 4];
    let at = size.saturating_sub(4);
    if size < 4 || read_full(src, &mut trailer, at)? < 4 {
        return Ok(false);
    }
    let total = u64::from(u32::from_le_bytes(trailer)) + 8;
    if total > size || total > local::MAX_RECORD as u64 {
        return Ok(false);
    }
    let mut record = vec![0u8; usize::try_from(total).unwrap_or(0)];
    let n = read_full(src, &mut record, size - total)?;
    Ok(n == record.len() && matches!(local::split_first(&record), Split::Record(_)))
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full<S: Source + ?Sized>(src: &S, buf: &mut [u8], offset: u64) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(src.path(), e)),
        }
    }
    Ok(done)
}

pub(crate) fn read_error(path: &Path, e: io::Error) -> Error {
    Error::io(format!("read {}", path.display()), e)
}

pub(crate) fn corrupt(path: &Path, offset: u64) -> Error {
    read_error(
        path,
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt log record at byte {offset}"),
        ),
    )
}
