//! The files of a log on disk: the current one and the rotated ones (`<name>.1` the newest
//! rotated), opened as a consistent chain, and which file comes after one being read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::format::Source;
use crate::error::{Error, Result};

/// A file's identity (device, inode): a rotated file keeps it, a new current file has another.
pub(crate) type FileId = (u64, u64);

/// An open log file.
#[derive(Debug)]
pub(crate) struct LogFile {
    pub file: File,
    pub id: FileId,
    pub path: PathBuf,
}

impl LogFile {
    /// Opens `path` for reading; `None` if it does not exist.
    pub(crate) fn open(path: PathBuf) -> Result<Option<LogFile>> {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("open {}", path.display()), e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {}", path.display()), e))?;
        Ok(Some(LogFile {
            file,
            id: (meta.dev(), meta.ino()),
            path,
        }))
    }
}

impl Source for LogFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// The path of the `index`th file of the log (0: the current one).
pub(crate) fn log_path(dir: &Path, name: &str, index: u32) -> PathBuf {
    match index {
        0 => dir.join(name),
        i => dir.join(format!("{name}.{i}")),
    }
}

/// The identity of the file at `path`, if there is one.
fn id_of(path: &Path) -> Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("stat {}", path.display()), e)),
    }
}

/// The log's files, oldest first, the current one (if it exists) last. The current one is
/// opened first, then `.1`, `.2`, …: a file met twice (a rotation meanwhile) is skipped, so
/// the chain is whole and in order across one rotation.
pub(crate) fn snapshot(dir: &Path, name: &str, max_file: u32) -> Result<Vec<LogFile>> {
    let mut newest_first: Vec<LogFile> = Vec::new();
    if let Some(current) = LogFile::open(log_path(dir, name, 0))? {
        newest_first.push(current);
    }
    for index in 1..max_file {
        let Some(file) = LogFile::open(log_path(dir, name, index))? else {
            break;
        };
        if newest_first.iter().all(|seen| seen.id != file.id) {
            newest_first.push(file);
        }
    }
    newest_first.reverse();
    Ok(newest_first)
}

/// The file to read after `held` once `held` is read to its end: `None` while `held` is
/// still the current file (or the one after it is not created yet); without `held`, the
/// current file. Decided before `held` is drained: a file the writer has rotated away gets no
/// more writes.
pub(crate) fn successor(
    dir: &Path,
    name: &str,
    max_file: u32,
    held: Option<FileId>,
) -> Result<Option<LogFile>> {
    let Some(held) = held else {
        return LogFile::open(log_path(dir, name, 0));
    };
    if id_of(&log_path(dir, name, 0))? == Some(held) {
        return Ok(None);
    }
    for index in 1..max_file {
        if id_of(&log_path(dir, name, index))? == Some(held) {
            return LogFile::open(log_path(dir, name, index - 1));
        }
    }
    // `held` was rotated out of the chain while it was read: on with the oldest file left.
    for index in (0..max_file).rev() {
        if let Some(file) = LogFile::open(log_path(dir, name, index))? {
            return Ok(Some(file));
        }
    }
    Ok(None)
}
