//! `--user` and the image's `User` resolved against the container's own /etc/passwd and
//! /etc/group, read inside the root filesystem so that symlinks in the image cannot point
//! the engine at host files.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};

/// The uid, gid and supplementary groups a process runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership).
    pub additional_gids: Vec<u32>,
}

/// Opens `path` (absolute inside the container) beneath `root`, resolving `..` and symlinks as
/// if `root` were `/`.
pub(crate) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    rustix::fs::openat2(
        root.as_fd(),
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(std::io::Error::from)
}

pub(crate) fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::io(
            format!("open root filesystem {}", rootfs.display()),
            e.into(),
        )
    })
}

/// Reads a small file of the container (`/etc/passwd`); `None` if it does not exist.
fn read_in_root(root: &OwnedFd, path: &str) -> Result<Option<String>> {
    match open_in_root(root, path, OFlags::RDONLY) {
        Ok(fd) => {
            let mut text = String::new();
            std::fs::File::from(fd)
                .take(16 << 20)
                .read_to_string(&mut text)
                .map_err(|e| Error::io(format!("read {path} of the image"), e))?;
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("open {path} of the image"), e)),
    }
}

struct Entry<'a> {
    name: &'a str,
    id: u32,
    gid: u32,
    members: Vec<&'a str>,
}

/// Parses passwd (`name:x:uid:gid:...`) or group (`name:x:gid:members`) lines.
fn entries(text: &str, group: bool) -> impl Iterator<Item = Entry<'_>> {
    text.lines().filter_map(move |line| {
        let f: Vec<&str> = line.split(':').collect();
        if line.starts_with('#') || f.len() < if group { 3 } else { 4 } {
            return None;
        }
        let id = f[2].parse().ok()?;
        Some(Entry {
            name: f[0],
            id,
            gid: if group { id } else { f[3].parse().ok()? },
            members: if group {
                f.get(3)
                    .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            },
        })
    })
}

/// Resolves Docker's user syntax (`name`, `uid`, `name:group`, `uid:gid`; empty = root) in
/// the container's root filesystem, with Docker's error words for unknown names.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let root = open_root(rootfs)?;
    let passwd = read_in_root(&root, "/etc/passwd")?.unwrap_or_default();
    let groups = read_in_root(&root, "/etc/group")?.unwrap_or_default();

    let (uid, mut gid, name) = match user.parse::<u32>() {
        Ok(uid) => match entries(&passwd, false).find(|e| e.id == uid) {
            Some(e) => (uid, e.gid, Some(e.name.to_string())),
            None => (uid, 0, None),
        },
        Err(_) => match entries(&passwd, false).find(|e| e.name == user) {
            Some(e) => (e.id, e.gid, Some(e.name.to_string())),
            None => {
                return Err(Error::InvalidOption(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )))
            }
        },
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => entries(&groups, true)
                .find(|e| e.name == g)
                .map(|e| e.id)
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional_gids = Vec::new();
    if group.is_none() {
        if let Some(name) = &name {
            for e in entries(&groups, true) {
                if e.members.contains(&name.as_str()) && e.id != gid {
                    additional_gids.push(e.id);
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// Creates the working directory inside the root filesystem when missing (as Docker does),
/// owned by the container's user, never following a symlink out of the root.
pub fn ensure_workdir(rootfs: &Path, dir: &str, user: &ResolvedUser) -> Result<()> {
    if !dir.starts_with('/') {
        return Err(Error::InvalidOption(format!(
            "the working directory {dir:?} is not an absolute path"
        )));
    }
    let root = open_root(rootfs)?;
    let mut current = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        let parent = if current.is_empty() {
            "/".to_string()
        } else {
            current.clone()
        };
        current.push('/');
        current.push_str(part);
        match open_in_root(&root, &current, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("working directory {current}"), e)),
        }
        let parent_fd = open_in_root(&root, &parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| Error::io(format!("working directory {parent}"), e))?;
        match rustix::fs::mkdirat(&parent_fd, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(Error::io(format!("create {current}"), e.into())),
        }
        rustix::fs::chownat(
            &parent_fd,
            part,
            Some(rustix::fs::Uid::from_raw(user.uid)),
            Some(rustix::fs::Gid::from_raw(user.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io(format!("chown {current}"), e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\naudio:x:29:other\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_and_ids_resolve_like_docker() {
        let d = rootfs();
        assert_eq!(resolve(d.path(), "").unwrap(), ResolvedUser::default());
        let app = resolve(d.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1001, vec![10])
        );
        let by_id = resolve(d.path(), "1000").unwrap();
        assert_eq!((by_id.uid, by_id.gid), (1000, 1001));
        let unknown_id = resolve(d.path(), "4242:77").unwrap();
        assert_eq!((unknown_id.uid, unknown_id.gid), (4242, 77));
        assert_eq!(resolve(d.path(), "app:audio").unwrap().gid, 29);
        let err = resolve(d.path(), "nobody").unwrap_err().to_string();
        assert!(err.contains("unable to find user nobody"), "{err}");
        assert!(resolve(d.path(), "app:nogroup").is_err());
    }

    #[test]
    fn passwd_symlinked_out_of_the_root_is_read_inside_it() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        // An absolute symlink resolves inside the root, where nothing is: no user found.
        std::os::unix::fs::symlink("/etc/shadow-of-host", d.path().join("etc/passwd")).unwrap();
        assert!(resolve(d.path(), "root").is_err());
    }

    #[test]
    fn workdir_is_created_inside_the_root() {
        let d = rootfs();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        let user = ResolvedUser {
            uid: 1000,
            gid: 1001,
            additional_gids: vec![],
        };
        ensure_workdir(d.path(), "/srv/app", &user).unwrap();
        assert!(d.path().join("srv/app").is_dir());
        // The link's target is re-rooted inside the rootfs: whether that succeeds or not,
        // nothing is created outside.
        let _ = ensure_workdir(d.path(), "/link/x", &user);
        assert!(!outside.path().join("x").exists());
        assert!(ensure_workdir(d.path(), "relative", &user).is_err());
    }
}
