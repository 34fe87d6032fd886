//! `User` and `GroupAdd` resolved in the container's own /etc/passwd and /etc/group, read
//! inside the root filesystem so that symlinks in the image never reach host files.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

use pelagos_model::rootfs::{open_in_root, open_root};
use pelagos_model::{Error, Result};
use rustix::fs::{Mode, OFlags};

/// The uid, gid and supplementary groups a process runs with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (from /etc/group membership and `GroupAdd`).
    pub additional_gids: Vec<u32>,
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
    resolve_with_groups(rootfs, spec, &[])
}

/// [`resolve`], plus `HostConfig.GroupAdd` (group names or gids) as supplementary groups.
pub fn resolve_with_groups(
    rootfs: &Path,
    spec: &str,
    group_add: &[String],
) -> Result<ResolvedUser> {
    // No user is root, with root's groups as Docker gives them.
    let spec = match spec.trim() {
        "" => "0",
        given => given,
    };
    let root = open_root(rootfs)?;
    let passwd = read_in_root(&root, "/etc/passwd")?.unwrap_or_default();
    let groups = read_in_root(&root, "/etc/group")?.unwrap_or_default();
    let mut user = resolve_in(&passwd, &groups, spec)?;
    for g in group_add {
        let gid = group_id(&groups, g.trim())?;
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    Ok(user)
}

/// A group's id: a number as it is, a name looked up in the container's /etc/group.
fn group_id(groups: &str, group: &str) -> Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    entries(groups, true)
        .find(|e| e.name == group)
        .map(|e| e.id)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unable to find group {group}: no matching entries in group file"
            ))
        })
}

fn resolve_in(passwd: &str, groups: &str, spec: &str) -> Result<ResolvedUser> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, mut gid, name) = match user.parse::<u32>() {
        Ok(uid) => match entries(passwd, false).find(|e| e.id == uid) {
            Some(e) => (uid, e.gid, Some(e.name)),
            None => (uid, 0, None),
        },
        Err(_) => match entries(passwd, false).find(|e| e.name == user) {
            Some(e) => (e.id, e.gid, Some(e.name)),
            None => {
                return Err(Error::Invalid(format!(
                    "unable to find user {user}: no matching entries in passwd file"
                )))
            }
        },
    };
    if let Some(g) = group {
        gid = group_id(groups, g)?;
    }
    // Docker's (runc's) supplementary groups: the primary group, then, unless a group was
    // given, every group that lists the user.
    let mut additional_gids = vec![gid];
    if let (None, Some(name)) = (group, name) {
        for e in entries(groups, true) {
            if e.members.contains(&name) && e.id != gid {
                additional_gids.push(e.id);
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
        return Err(Error::Invalid(format!(
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
        // Supplementary groups as Docker sets them: the primary one, then memberships
        // unless a group was given.
        let root = resolve(d.path(), "").unwrap();
        assert_eq!((root.uid, root.gid, root.additional_gids), (0, 0, vec![0]));
        let app = resolve(d.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1001, vec![1001, 10])
        );
        let given = resolve(d.path(), "app:audio").unwrap();
        assert_eq!(given.additional_gids, vec![29]);
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
    fn group_add_names_and_ids() {
        let d = rootfs();
        let u = resolve_with_groups(
            d.path(),
            "app",
            &["audio".into(), "4242".into(), "10".into()],
        )
        .unwrap();
        assert_eq!(u.additional_gids, vec![1001, 10, 29, 4242]);
        let root = resolve_with_groups(d.path(), "", &["wheel".into()]).unwrap();
        assert_eq!((root.uid, root.additional_gids), (0, vec![0, 10]));
        let err = resolve_with_groups(d.path(), "", &["nogroup".into()]).unwrap_err();
        assert!(
            err.to_string().contains("unable to find group nogroup"),
            "{err}"
        );
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
