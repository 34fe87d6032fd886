//! Tar streams of trees read through directory descriptors: each directory is opened with
//! `O_NOFOLLOW` relative to its parent's descriptor, so a symlink swapped in while the walk
//! runs is archived as a symlink, never followed. The `tar` crate writes the headers.

use std::collections::HashMap;
use std::ffi::{CStr, OsStr};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::error::{Error, Result};

/// Filesystems whose contents are the kernel's, not the container's: a live container's
/// /proc, /sys, /dev/pts… are archived as empty directories.
const KERNEL_FILESYSTEMS: [i64; 10] = [
    libc::PROC_SUPER_MAGIC,
    libc::SYSFS_MAGIC,
    libc::CGROUP_SUPER_MAGIC,
    libc::CGROUP2_SUPER_MAGIC,
    libc::DEVPTS_SUPER_MAGIC,
    // mqueue's magic (not in the libc crate).
    0x1980_0202,
    libc::SECURITYFS_MAGIC,
    libc::DEBUGFS_MAGIC,
    libc::TRACEFS_MAGIC,
    libc::BPF_FS_MAGIC,
];

/// Counts what passes through a writer.
pub struct Counting<W> {
    inner: W,
    /// Bytes written so far.
    pub count: u64,
}

impl<W> Counting<W> {
    pub fn new(inner: W) -> Counting<W> {
        Counting { inner, count: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A tar stream being written.
pub struct TarOut<W: Write> {
    tar: tar::Builder<W>,
    /// First name archived for each (device, inode) with more than one link.
    links: HashMap<(u64, u64), String>,
}

fn io(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::io(what.to_owned(), e.into())
}

impl<W: Write> TarOut<W> {
    pub fn new(out: W) -> TarOut<W> {
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        TarOut {
            tar,
            links: HashMap::new(),
        }
    }

    /// Ends the stream (its two zero blocks) and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.tar
            .into_inner()
            .map_err(|e| io("finish the tar stream", e))
    }

    /// Archives `name` of `dir` (and all below it when a directory) as `tar_name`.
    pub fn append(&mut self, dir: BorrowedFd<'_>, name: &OsStr, tar_name: &str) -> Result<()> {
        let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io(tar_name, e))?;
        self.append_stat(dir, name, tar_name, &st)
    }

    /// Archives an already opened directory (the root of a copy) as `tar_name` ("" for the
    /// top of an export: only its contents, named without a prefix).
    pub fn append_dir_fd(&mut self, fd: &OwnedFd, tar_name: &str) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(|e| io(tar_name, e))?;
        if !tar_name.is_empty() {
            self.header(tar_name, &st, tar::EntryType::Directory, std::io::empty())?;
        }
        let dir = rustix::fs::openat(
            fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(tar_name, e))?;
        self.children(dir, tar_name)
    }

    /// Archives `name` of `dir`, stat'ed as `st`, as `tar_name`.
    pub fn append_stat(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        tar_name: &str,
        st: &Stat,
    ) -> Result<()> {
        let kind = FileType::from_raw_mode(st.st_mode);
        match kind {
            FileType::Directory => {
                self.header(tar_name, st, tar::EntryType::Directory, std::io::empty())?;
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io(tar_name, e))?;
                self.children(fd, tar_name)
            }
            FileType::RegularFile => self.regular(dir, name, tar_name, st),
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(dir, name, Vec::new()).map_err(|e| io(tar_name, e))?;
                let mut h = header_of(st, tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut h, tar_name, OsStr::from_bytes(target.to_bytes()))
                    .map_err(|e| io(tar_name, e))
            }
            FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                let t = match kind {
                    FileType::CharacterDevice => tar::EntryType::Char,
                    FileType::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                self.header(tar_name, st, t, std::io::empty())
            }
            // Sockets cannot be archived (Docker skips them too).
            _ => Ok(()),
        }
    }

    fn regular(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        tar_name: &str,
        st: &Stat,
    ) -> Result<()> {
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let mut h = header_of(st, tar::EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                return self
                    .tar
                    .append_link(&mut h, tar_name, first)
                    .map_err(|e| io(tar_name, e));
            }
            self.links.insert(key, tar_name.to_owned());
        }
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(tar_name, e))?;
        // The size as stat'ed: a file growing meanwhile is cut there, one shrinking fails
        // the copy (the tar crate checks), never a corrupt stream.
        let file = std::fs::File::from(fd).take(st.st_size as u64);
        self.header(tar_name, st, tar::EntryType::Regular, file)
    }

    fn header(
        &mut self,
        tar_name: &str,
        st: &Stat,
        kind: tar::EntryType,
        data: impl Read,
    ) -> Result<()> {
        let mut h = header_of(st, kind);
        let name = match kind {
            tar::EntryType::Directory => format!("{}/", tar_name.trim_end_matches('/')),
            _ => tar_name.to_owned(),
        };
        self.tar
            .append_data(&mut h, name, data)
            .map_err(|e| io(tar_name, e))
    }

    /// The entries of an open directory, sorted by name, below `prefix`.
    fn children(&mut self, dir: OwnedFd, prefix: &str) -> Result<()> {
        if is_kernel_fs(&dir) {
            return Ok(());
        }
        let mut names: Vec<Vec<u8>> = Vec::new();
        let reader = rustix::fs::Dir::read_from(&dir).map_err(|e| io(prefix, e))?;
        for entry in reader {
            let entry = entry.map_err(|e| io(prefix, e))?;
            let n: &CStr = entry.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_bytes().to_vec());
            }
        }
        names.sort();
        for n in names {
            let name = OsStr::from_bytes(&n);
            let child = match prefix {
                "" => name.to_string_lossy().into_owned(),
                p => format!("{}/{}", p.trim_end_matches('/'), name.to_string_lossy()),
            };
            match self.append(dir.as_fd(), name, &child) {
                // Gone since the listing (a running container's file): nothing to copy.
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
                other => other?,
            }
        }
        Ok(())
    }
}

fn is_kernel_fs(dir: &OwnedFd) -> bool {
    rustix::fs::fstatfs(dir)
        .map(|s| KERNEL_FILESYSTEMS.contains(&{ s.f_type }))
        .unwrap_or(false)
}

/// A header with the file's type, mode, owner, time and size (and device numbers).
fn header_of(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(match kind {
        tar::EntryType::Regular => st.st_size as u64,
        _ => 0,
    });
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        let _ = h.set_device_major(rustix::fs::major(st.st_rdev));
        let _ = h.set_device_minor(rustix::fs::minor(st.st_rdev));
    }
    h
}
