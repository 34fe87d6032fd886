//! Extraction of a tar stream under a directory of a [`RootDir`]: each entry's parent is
//! resolved inside the root (`RESOLVE_IN_ROOT`), the entry made with `*at` calls relative to
//! it and never through a symlink in its last component, so neither the stream nor the tree
//! it lands in can write outside the root.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};

use super::fsroot::{clean, RootDir};
use crate::error::{Error, Result};

/// Owners of the extracted files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// As recorded in the stream (`cp -a`).
    Keep,
    /// All the same (`cp` into a container: its root; out of it: the caller).
    All { uid: u32, gid: u32 },
}

/// How to extract.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub owners: Owners,
    /// Docker's `RebaseArchiveEntries`: entries named `old` or `old/…` become `new/…`.
    pub rebase: Option<(String, String)>,
    /// Replace a directory by a non-directory entry (and the reverse) instead of refusing:
    /// Docker's `noOverwriteDirNonDir=false`, which the API allows and its CLI never asks.
    pub replace_dir_non_dir: bool,
}

fn io(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::io(what.to_owned(), e.into())
}

/// The entry's name after the rebase, relative and clean; `None` for the extraction
/// directory itself. Names leaving it (`../x`) are refused.
fn entry_name(raw: &[u8], rebase: &Option<(String, String)>) -> Result<Option<String>> {
    let name = String::from_utf8_lossy(raw);
    let mut name = clean(name.trim_start_matches('/'));
    if let Some((old, new)) = rebase {
        if name == *old {
            name = new.clone();
        } else if let Some(rest) = name.strip_prefix(&format!("{old}/")) {
            name = format!("{new}/{rest}");
        } else if old == "." {
            name = format!("{new}/{name}");
        }
        name = clean(&name);
    }
    if name == ".." || name.starts_with("../") {
        return Err(Error::Invalid(format!(
            "invalid path in archive: {}",
            String::from_utf8_lossy(raw)
        )));
    }
    Ok((name != ".").then_some(name))
}

/// Extracts `stream` under `dir` (a path inside `root`, which must be a directory); returns
/// the number of entries made.
pub fn extract(root: &RootDir, dir: &str, stream: impl Read, opts: &ExtractOptions) -> Result<u64> {
    let mut archive = tar::Archive::new(stream);
    let mut dirs: Vec<(String, Timestamps)> = Vec::new();
    let mut count = 0;
    for entry in archive
        .entries()
        .map_err(|e| io("read the tar stream", e))?
    {
        let mut entry = entry.map_err(|e| io("read the tar stream", e))?;
        let raw = entry.path_bytes().into_owned();
        let Some(name) = entry_name(&raw, &opts.rebase)? else {
            continue;
        };
        let full = format!("{}/{name}", dir.trim_end_matches('/'));
        let (parent, base) = full.rsplit_once('/').unwrap_or(("", full.as_str()));
        let parent_fd = parent_dir(root, dir, &name, opts.owners)?;
        let parent_fd = reopen_dir(&parent_fd, parent)?;
        let made = Entry {
            root,
            dir,
            parent: parent_fd.as_fd(),
            base,
            full: &full,
            opts,
        }
        .make(&mut entry)?;
        if let Some(times) = made {
            dirs.push((full.clone(), times));
        }
        count += 1;
    }
    // Directory times last: making their entries changed them.
    for (path, times) in dirs.iter().rev() {
        if let Ok(fd) = root.open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW) {
            let _ = rustix::fs::futimens(&fd, times);
        }
    }
    Ok(count)
}

/// The directory of entry `name` under `dir`, made (0755, owned as the stream's files
/// unless kept) when the stream lacks its entry, as Docker's untar does.
fn parent_dir(root: &RootDir, dir: &str, name: &str, owners: Owners) -> Result<OwnedFd> {
    let dir = dir.trim_end_matches('/');
    let rel_parent = name.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let mut at = dir.to_owned();
    for comp in rel_parent.split('/').filter(|c| !c.is_empty()) {
        let next = format!("{at}/{comp}");
        match root.open_dir(&next) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let p = root
                    .open_dir(&at)
                    .map_err(|e| io(&format!("open {at}"), e))?;
                let p = reopen_dir(&p, &at)?;
                match rustix::fs::mkdirat(&p, comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(io(&next, e)),
                }
                let (uid, gid) = match owners {
                    Owners::All { uid, gid } => (uid, gid),
                    Owners::Keep => (0, 0),
                };
                let _ = rustix::fs::chownat(
                    &p,
                    comp,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                );
            }
            _ => {}
        }
        at = next;
    }
    root.open_dir(&at).map_err(|e| io(&format!("open {at}"), e))
}

/// Removes `base` of `parent` and, for a directory, everything under it; never follows a
/// symlink (each level is opened `O_NOFOLLOW` relative to the one above).
fn remove_tree(parent: BorrowedFd<'_>, base: &str) -> std::io::Result<()> {
    let st = rustix::fs::statat(parent, base, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(rustix::fs::unlinkat(parent, base, AtFlags::empty())?);
    }
    let dir = rustix::fs::openat(
        parent,
        base,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    for name in names {
        remove_tree(dir.as_fd(), &name)?;
    }
    Ok(rustix::fs::unlinkat(parent, base, AtFlags::REMOVEDIR)?)
}

/// An `O_PATH` directory descriptor as one the `*at` calls that make entries accept.
fn reopen_dir(fd: &OwnedFd, what: &str) -> Result<OwnedFd> {
    rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(&format!("open {what}"), e))
}

struct Entry<'a> {
    root: &'a RootDir,
    dir: &'a str,
    parent: BorrowedFd<'a>,
    base: &'a str,
    full: &'a str,
    opts: &'a ExtractOptions,
}

impl Entry<'_> {
    /// Makes the entry; a directory's times are returned to be set at the end.
    fn make<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Option<Timestamps>> {
        let h = entry.header().clone();
        let kind = h.entry_type();
        let mode = Mode::from_raw_mode(h.mode().map_err(|e| io(self.full, e))? & 0o7777);
        let mtime = h.mtime().unwrap_or(0) as i64;
        let times = Timestamps {
            last_access: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
            last_modification: Timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        };
        let (uid, gid) = match self.opts.owners {
            Owners::Keep => (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32),
            Owners::All { uid, gid } => (uid, gid),
        };
        let existing = rustix::fs::statat(self.parent, self.base, AtFlags::SYMLINK_NOFOLLOW).ok();
        let existing_dir = existing
            .as_ref()
            .map(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
        if kind.is_dir() {
            match existing_dir {
                Some(true) => {}
                Some(false) if self.opts.replace_dir_non_dir => {
                    rustix::fs::unlinkat(self.parent, self.base, AtFlags::empty())
                        .map_err(|e| io(self.full, e))?;
                    rustix::fs::mkdirat(self.parent, self.base, Mode::from_raw_mode(0o700))
                        .map_err(|e| io(self.full, e))?
                }
                Some(false) => {
                    return Err(Error::Invalid(format!(
                        "cannot overwrite non-directory {:?} with directory",
                        self.full
                    )))
                }
                None => rustix::fs::mkdirat(self.parent, self.base, Mode::from_raw_mode(0o700))
                    .map_err(|e| io(self.full, e))?,
            }
            let fd = rustix::fs::openat(
                self.parent,
                self.base,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io(self.full, e))?;
            self.own_fd(&fd, uid, gid, mode)?;
            return Ok(Some(times));
        }
        match existing_dir {
            Some(true) if self.opts.replace_dir_non_dir => {
                remove_tree(self.parent, self.base).map_err(|e| io(self.full, e))?
            }
            Some(true) => {
                return Err(Error::Invalid(format!(
                    "cannot overwrite directory {:?} with non-directory",
                    self.full
                )))
            }
            Some(false) => rustix::fs::unlinkat(self.parent, self.base, AtFlags::empty())
                .map_err(|e| io(self.full, e))?,
            None => {}
        }
        self.make_file(entry, kind, &h, mode, (uid, gid), &times)?;
        Ok(None)
    }

    fn make_file<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        h: &tar::Header,
        mode: Mode,
        (uid, gid): (u32, u32),
        times: &Timestamps,
    ) -> Result<()> {
        let at = self.full;
        if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::Invalid(format!("symlink {at} without a target")))?;
            rustix::fs::symlinkat(&*target, self.parent, self.base).map_err(|e| io(at, e))?;
            self.own_at(uid, gid)?;
            let _ = rustix::fs::utimensat(self.parent, self.base, times, AtFlags::SYMLINK_NOFOLLOW);
            return Ok(());
        }
        if kind.is_hard_link() {
            return self.hard_link(entry);
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            let file_type = match kind {
                k if k.is_character_special() => FileType::CharacterDevice,
                k if k.is_block_special() => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let dev = rustix::fs::makedev(
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            rustix::fs::mknodat(self.parent, self.base, file_type, mode, dev)
                .map_err(|e| io(at, e))?;
            self.own_at(uid, gid)?;
            let _ = rustix::fs::utimensat(self.parent, self.base, times, AtFlags::SYMLINK_NOFOLLOW);
            return Ok(());
        }
        // Regular (and any type the kernel has no node for: its data as a file, as Docker).
        let fd = rustix::fs::openat(
            self.parent,
            self.base,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| io(at, e))?;
        let mut file = std::fs::File::from(fd);
        std::io::copy(entry, &mut file).map_err(|e| io(at, e))?;
        let fd = OwnedFd::from(file);
        self.own_fd(&fd, uid, gid, mode)?;
        rustix::fs::futimens(&fd, times).map_err(|e| io(at, e))
    }

    /// A hard link to an entry extracted before (its name is relative to the extraction
    /// directory, like every entry's).
    fn hard_link<R: Read>(&self, entry: &tar::Entry<'_, R>) -> Result<()> {
        let at = self.full;
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| Error::Invalid(format!("hard link {at} without a target")))?;
        let Some(target) = entry_name(&target, &self.opts.rebase)? else {
            return Err(Error::Invalid(format!("hard link {at} to a directory")));
        };
        let full = format!("{}/{target}", self.dir.trim_end_matches('/'));
        let (tparent, tbase) = full.rsplit_once('/').unwrap_or(("", full.as_str()));
        let tparent_fd = self
            .root
            .open_dir(tparent)
            .map_err(|e| io(&format!("open {tparent}"), e))?;
        // Flags 0: a symlink as the target is linked itself, never followed.
        rustix::fs::linkat(&tparent_fd, tbase, self.parent, self.base, AtFlags::empty())
            .map_err(|e| io(at, e))
    }

    fn own_fd(&self, fd: &OwnedFd, uid: u32, gid: u32, mode: Mode) -> Result<()> {
        let at = self.full;
        rustix::fs::fchown(
            fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| io(at, e))?;
        // After chown, which clears set-id bits.
        rustix::fs::fchmod(fd, mode).map_err(|e| io(at, e))
    }

    fn own_at(&self, uid: u32, gid: u32) -> Result<()> {
        rustix::fs::chownat(
            self.parent,
            self.base,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io(self.full, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_rebased_and_kept_inside() {
        let rb = Some(("a".to_string(), "b".to_string()));
        assert_eq!(entry_name(b"a/x", &rb).unwrap().as_deref(), Some("b/x"));
        assert_eq!(entry_name(b"a", &rb).unwrap().as_deref(), Some("b"));
        assert_eq!(entry_name(b"ab", &rb).unwrap().as_deref(), Some("ab"));
        let dot = Some((".".to_string(), "d".to_string()));
        assert_eq!(entry_name(b"./x", &dot).unwrap().as_deref(), Some("d/x"));
        assert_eq!(entry_name(b"./", &None).unwrap(), None);
        assert!(entry_name(b"../etc/passwd", &None).is_err());
        assert!(entry_name(b"a/../../x", &None).is_err());
    }
}
