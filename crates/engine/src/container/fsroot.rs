//! A container's root filesystem as a directory descriptor, for `cp`, `export` and `diff`.
//! Every path inside it is resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so
//! no symlink the container made (`/evil -> /`, `../../..` chains) can lead to the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use pelagos_image::ImageRecord;
use pelagos_model::record::{ContainerRecord, MountPoint};
use pelagos_model::store::OwnerLock;
use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::{Error, Result};
use crate::Engine;

/// Which tree of a running container to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What its processes see (`/proc/<pid>/root`, with its volumes and binds), as `docker cp`.
    Live,
    /// Its root filesystem alone, without the runtime's mounts (/proc, /sys, volumes), as
    /// `docker export`.
    Rootfs,
}

/// A directory that stands for `/` in every path resolved through it.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    /// The private mount namespace holding a stopped container's overlay, kept alive (and
    /// the overlay attached in it: the kernel refuses `..` after a jump to the root of a
    /// detached mount) until the root is dropped; then the namespace and its mount go.
    _namespace: Option<OwnedFd>,
}

impl RootDir {
    /// The host's own root (for the host side of `cp`).
    pub fn host() -> Result<RootDir> {
        Self::open_path(Path::new("/"))
    }

    fn open_path(path: &Path) -> Result<RootDir> {
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(format!("open {}", path.display()), e.into()))?;
        Ok(RootDir {
            fd,
            _namespace: None,
        })
    }

    /// The root's descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens `path` (absolute or not, always taken inside the root), following symlinks
    /// inside the root only; `O_NOFOLLOW` in `flags` keeps the last component unfollowed.
    pub fn open(&self, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
        let path = if path.trim_matches('/').is_empty() {
            "."
        } else {
            path
        };
        let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        loop {
            // EAGAIN: a rename or a mount anywhere on the host raced a `..` of the lookup
            // (the kernel refuses rather than risk an escape): look again.
            match rustix::fs::openat2(
                &self.fd,
                path,
                flags | OFlags::CLOEXEC,
                Mode::empty(),
                resolve,
            ) {
                Err(rustix::io::Errno::AGAIN) if tries < 1000 => {
                    tries += 1;
                    std::thread::yield_now();
                }
                other => return other.map_err(Into::into),
            }
        }
    }

    /// Opens the directory at `path` (every component followed inside the root).
    pub fn open_dir(&self, path: &str) -> std::io::Result<OwnedFd> {
        self.open(path, OFlags::PATH | OFlags::DIRECTORY)
    }
}

/// A container's root filesystem, opened for a copy: mounted privately (and held by the
/// container's owner lock) when the container is not running.
#[derive(Debug)]
pub struct ContainerFs {
    /// Declared before the lock: the overlay goes with the last descriptor, before the lock
    /// lets anyone start the container again.
    root: RootDir,
    /// The container's name, for messages.
    pub name: String,
    _lock: Option<OwnerLock>,
}

impl ContainerFs {
    /// The root, to resolve paths in.
    pub fn root(&self) -> &RootDir {
        &self.root
    }
}

/// How long a copy waits for another command holding a stopped container (an earlier copy
/// whose client already has what it wanted is still letting go of its mounts).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the root filesystem of a container, running or not.
pub fn open(engine: &Engine, name_or_id: &str, view: View) -> Result<ContainerFs> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    while std::time::Instant::now() < deadline {
        let record = super::lookup(engine, name_or_id)?;
        if record.state.status.is_live() {
            return open_live(engine, &record, view);
        }
        let Some(lock) = engine.containers().try_own(&record.id)? else {
            // Being started, removed or copied from right now: look again in a moment.
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let record = engine.containers().get(record.id.as_str())?;
        if record.state.status.is_live() {
            drop(lock);
            continue;
        }
        let root = mount_stopped(engine, &record, view)?;
        return Ok(ContainerFs {
            root,
            name: record.name,
            _lock: Some(lock),
        });
    }
    Err(Error::Conflict(format!(
        "container {name_or_id} is busy: another command is starting or removing it"
    )))
}

fn open_live(engine: &Engine, record: &ContainerRecord, view: View) -> Result<ContainerFs> {
    let root = match view {
        View::Live => {
            let pid = record.state.pid;
            // The pid is the container's only while its cgroup holds it (pids get reused).
            if pid <= 0 || !engine.runtime().pids(&record.id)?.contains(&pid) {
                return Err(super::not_running(record));
            }
            RootDir::open_path(&PathBuf::from(format!("/proc/{pid}/root")))?
        }
        View::Rootfs => {
            let dir = engine.containers().dir_of(&record.id);
            let rootfs = dir.join("rootfs");
            let root = RootDir::open_path(&rootfs)?;
            let parent = std::fs::metadata(&dir)
                .map_err(|e| Error::io(format!("stat {}", dir.display()), e))?;
            let own = rustix::fs::fstat(&root.fd)
                .map_err(|e| Error::io(format!("stat {}", rootfs.display()), e.into()))?;
            if std::os::unix::fs::MetadataExt::dev(&parent) == own.st_dev {
                return Err(super::not_running(record));
            }
            root
        }
    };
    Ok(ContainerFs {
        root,
        name: record.name.clone(),
        _lock: None,
    })
}

/// A volume or bind of a stopped container, mounted for a copy.
#[derive(Debug)]
struct Bind {
    source: PathBuf,
    destination: String,
    rw: bool,
}

/// The volumes and binds among a container's mounts, parents before what nests in them.
fn binds_of(mounts: &[MountPoint]) -> Vec<Bind> {
    let mut binds: Vec<Bind> = mounts
        .iter()
        .filter(|m| m.kind == "bind" || m.kind == "volume")
        .map(|m| Bind {
            source: PathBuf::from(&m.source),
            destination: clean(&m.destination),
            rw: m.rw,
        })
        .collect();
    binds.sort_by_key(|b| b.destination.matches('/').count());
    binds
}

/// The volumes and binds a [`View::Live`] of a stopped container shows at their
/// destinations (moby mounts them for `docker cp`). A container that never started has its
/// volumes made (and filled from the image at `rootfs`) and recorded first, as its first
/// start would: its monitor then mounts these. The caller holds the owner lock.
fn live_binds(
    engine: &Engine,
    record: &ContainerRecord,
    image: &ImageRecord,
    view: View,
    rootfs: &Path,
) -> Result<Vec<Bind>> {
    if view != View::Live {
        return Ok(Vec::new());
    }
    if record.volumes_prepared {
        return Ok(binds_of(&record.mounts));
    }
    let config = engine.images().config(image)?;
    let image_volumes = config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    let planned =
        pelagos_model::mounts::planned_mounts(&record.config, &record.host_config, &image_volumes)?;
    if planned.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = engine.volumes().prepare(rootfs, &planned)?;
    let recorded = engine.containers().modify(&record.id, |r| {
        r.mounts = prepared.mounts.clone();
        r.anonymous_volumes = prepared.anonymous.clone();
        r.volumes_prepared = true;
    });
    match recorded {
        Ok(r) => Ok(binds_of(&r.mounts)),
        Err(e) => {
            // Volumes nobody records would never be removed.
            for name in &prepared.anonymous {
                let _ = engine.volumes().remove(name, true, &|_| Vec::new());
            }
            Err(e.into())
        }
    }
}

/// Mounts the overlay of a stopped container where only this call sees it, and returns a
/// descriptor of its root: the mount is made in a private mount namespace of a short-lived
/// thread (which may change its own working directory to shorten the lowerdir paths, as the
/// monitor does); a descriptor of that namespace keeps it (and the mount) alive until the
/// root is dropped. No other process sees the mount, and it goes with the namespace
/// whatever happens, even if this process is killed. The live view also gets the
/// container's volumes and binds, mounted in the same namespace.
fn mount_stopped(engine: &Engine, record: &ContainerRecord, view: View) -> Result<RootDir> {
    let image = engine.images().get(&record.image_id)?;
    let mut lowers = engine.images().lowerdirs(&image)?;
    let layers_dir = engine.images().layers_dir();
    let dir = engine.containers().dir_of(&record.id);
    let (upper, work, target) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    for d in [&upper, &work, &target] {
        std::fs::create_dir_all(d).map_err(|e| Error::io(format!("create {}", d.display()), e))?;
    }
    if lowers.is_empty() {
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty)
            .map_err(|e| Error::io(format!("create {}", empty.display()), e))?;
        lowers.push(empty.to_string_lossy().into_owned());
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={},index=off",
        lowers.join(":"),
        upper.display(),
        work.display()
    );
    let binds_for = |rootfs: &Path| live_binds(engine, record, &image, view, rootfs);
    std::thread::scope(|s| {
        s.spawn(|| mount_detached(&layers_dir, &data, &target, binds_for))
            .join()
            .unwrap_or_else(|_| Err(Error::Task("the mounting thread panicked".into())))
    })
}

/// Runs on its own thread: unshares the mount namespace (and with it the working directory),
/// mounts the overlay and the binds `binds_for` names (given the mounted root's path), and
/// opens the mount and the namespace.
fn mount_detached(
    layers_dir: &Path,
    data: &str,
    target: &Path,
    binds_for: impl FnOnce(&Path) -> Result<Vec<Bind>>,
) -> Result<RootDir> {
    let sys = |what: String| move |e: nix::errno::Errno| Error::io(what, e.into());
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
        .map_err(sys("unshare the mount namespace".into()))?;
    // Nothing mounted here may propagate back to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys("make the private namespace private".into()))?;
    nix::unistd::chdir(layers_dir).map_err(sys(format!("enter {}", layers_dir.display())))?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )
    .map_err(sys(format!("mount the overlay on {}", target.display())))?;
    let root = RootDir::open_path(target).and_then(|root| {
        for bind in binds_for(target)? {
            mount_bind(&root, &bind)?;
        }
        Ok(root)
    });
    let namespace = rustix::fs::open(
        "/proc/thread-self/ns/mnt",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    );
    match (root, namespace) {
        (Ok(mut root), Ok(ns)) => {
            root._namespace = Some(ns);
            Ok(root)
        }
        (root, ns) => {
            // The namespace dies with this thread; the mount would live on through `root`.
            let _ = umount2(target, MntFlags::MNT_DETACH);
            root?;
            Err(Error::io(
                "open the private mount namespace",
                ns.err()
                    .map(Into::into)
                    .unwrap_or_else(std::io::Error::last_os_error),
            ))
        }
    }
}

/// The path of a descriptor for mount(2): the kernel follows it to the very file, so a
/// destination resolved inside the root stays there whatever symlinks the container made.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/thread-self/fd/{}", fd.as_raw_fd())
}

/// Binds a volume or bind's source at its destination inside the root (resolved in the
/// root: a symlink the container made cannot send it to the host), made first when the
/// image lacks it, as moby does; read-only when the container has it so.
fn mount_bind(root: &RootDir, bind: &Bind) -> Result<()> {
    let source = rustix::fs::open(&bind.source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::io(format!("open {}", bind.source.display()), e.into()))?;
    let is_dir = rustix::fs::fstat(&source)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_dir())
        .map_err(|e| Error::io(format!("stat {}", bind.source.display()), e.into()))?;
    let at = |what: &str| {
        let dest = bind.destination.clone();
        let what = what.to_string();
        move |e: std::io::Error| Error::io(format!("{what} {dest} for the copy"), e)
    };
    let dest = match root.open(&bind.destination, OFlags::PATH) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_mountpoint(root, &bind.destination, is_dir).map_err(at("make"))?;
            root.open(&bind.destination, OFlags::PATH)
        }
        other => other,
    }
    .map_err(at("open"))?;
    mount(
        Some(fd_path(&source).as_str()),
        fd_path(&dest).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| at("mount")(e.into()))?;
    if !bind.rw {
        // The bind itself, looked up again: the descriptor names what lies under it.
        let mounted = root
            .open(&bind.destination, OFlags::PATH)
            .map_err(at("open"))?;
        mount(
            None::<&str>,
            fd_path(&mounted).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| at("make read-only")(e.into()))?;
    }
    Ok(())
}

/// Makes a missing mount point inside the root (its missing parents as directories).
fn make_mountpoint(root: &RootDir, path: &str, is_dir: bool) -> std::io::Result<()> {
    let (dir, base) = split_dir_entry(path);
    if base.is_empty() || base == "." || base == ".." {
        return Ok(());
    }
    let parent = match root.open_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            make_mountpoint(root, &dir, true)?;
            root.open_dir(&dir)?
        }
        other => other?,
    };
    let made = match is_dir {
        true => rustix::fs::mkdirat(&parent, base.as_str(), Mode::from_raw_mode(0o755)),
        false => rustix::fs::openat(
            &parent,
            base.as_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    match made {
        Err(rustix::io::Errno::EXIST) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Splits a path as Docker's `SplitPathDirEntry`: the cleaned parent and the last component
/// (`.` when the path ends in `/.`).
pub fn split_dir_entry(path: &str) -> (String, String) {
    let cleaned = clean(path);
    let cleaned = if ends_in_dot(path) {
        format!("{}/.", cleaned.trim_end_matches('/'))
    } else {
        cleaned
    };
    match cleaned.rsplit_once('/') {
        Some(("", base)) => ("/".into(), base.into()),
        Some((dir, base)) => (dir.into(), base.into()),
        None => (".".into(), cleaned),
    }
}

/// Whether the path names the current directory of another (`x/.`, `.`).
pub fn ends_in_dot(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// Whether the path asserts a directory (`x/`, `x/.`).
pub fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || ends_in_dot(path)
}

/// Lexical cleaning as Go's `filepath.Clean`.
pub fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_clean_as_docker_does() {
        assert_eq!(clean("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(clean(""), ".");
        assert_eq!(split_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_dir_entry("/x"), ("/".into(), "x".into()));
        assert_eq!(split_dir_entry("x"), (".".into(), "x".into()));
        assert!(asserts_directory("/a/") && asserts_directory("/a/.") && !asserts_directory("/a"));
    }

    #[test]
    fn mount_points_are_made_inside_the_root_whatever_its_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../..", d.path().join("up")).unwrap();
        let root = RootDir::open_path(d.path()).unwrap();
        make_mountpoint(&root, "/a/b/c", true).unwrap();
        assert!(d.path().join("a/b/c").is_dir());
        make_mountpoint(&root, "/up/file", false).unwrap();
        assert!(d.path().join("file").is_file());
        // `escape` names a host directory: inside the root it leads nowhere, so nothing is
        // made, there or on the host.
        assert!(make_mountpoint(&root, "/escape/data/vol", true).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // Made already: no error.
        make_mountpoint(&root, "/a/b/c", true).unwrap();
    }
}
