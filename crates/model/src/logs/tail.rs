//! `--tail n`: records read backwards from the end of the newest file, chunk by chunk, and on
//! into older files only while fewer than n entries were found.

use super::format::{corrupt, read_full, Format, Source, Split, CHUNK};
use super::{LogEntry, ReadOptions};
use crate::error::Result;

/// A file read backwards: `buf` holds the bytes `[start, start + buf.len())` not yet
/// returned.
struct Backward<'a, S: ?Sized> {
    src: &'a S,
    start: u64,
    buf: Vec<u8>,
}

impl<'a, S: Source + ?Sized> Backward<'a, S> {
    fn new(src: &'a S, end: u64) -> Self {
        Backward {
            src,
            start: end,
            buf: Vec::new(),
        }
    }

    /// Puts the chunk before `start` in front of `buf`; false at the start of the file.
    fn load(&mut self) -> Result<bool> {
        if self.start == 0 {
            return Ok(false);
        }
        let len = usize::try_from(self.start.min(CHUNK as u64)).unwrap_or(CHUNK);
        let at = self.start - len as u64;
        let mut bytes = vec![0u8; len + self.buf.len()];
        if read_full(self.src, &mut bytes[..len], at)? < len {
            return Err(corrupt(self.src.path(), at));
        }
        bytes[len..].copy_from_slice(&self.buf);
        self.buf = bytes;
        self.start = at;
        Ok(true)
    }

    /// The record before the ones returned; `None` at the start of the file.
    fn previous(&mut self, format: Format) -> Result<Option<Vec<u8>>> {
        loop {
            if self.buf.is_empty() && self.start == 0 {
                return Ok(None);
            }
            match format.split_last(&self.buf, self.start == 0) {
                Split::Record(at) => return Ok(Some(self.buf.split_off(at))),
                Split::NeedMore if self.load()? => {}
                Split::NeedMore | Split::Corrupt => {
                    let at = self.start + self.buf.len() as u64;
                    return Err(corrupt(self.src.path(), at));
                }
            }
        }
    }
}

/// The last `n` entries of `files` (oldest first) that pass `opts`' filters, oldest first,
/// and the end of the newest file they were read up to (where a follow goes on).
pub(crate) fn tail<S: Source>(
    files: &[S],
    format: Format,
    opts: &ReadOptions,
    n: usize,
) -> Result<(Vec<LogEntry>, u64)> {
    let mut picked = Vec::new();
    let mut newest_end = 0;
    for (i, src) in files.iter().rev().enumerate() {
        let end = format.complete_end(src)?;
        if i == 0 {
            newest_end = end;
        }
        let mut back = Backward::new(src, end);
        while picked.len() < n {
            let Some(record) = back.previous(format)? else {
                break;
            };
            if let Some(entry) = format.decode(&record).filter(|e| opts.matches(e)) {
                picked.push(entry);
            }
        }
        if picked.len() >= n {
            break;
        }
    }
    picked.reverse();
    Ok((picked, newest_end))
}
