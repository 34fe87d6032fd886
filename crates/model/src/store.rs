//! The container records on disk: one directory per container under the root, a JSON record
//! written atomically, a store-wide lock for names, and a per-container owner lock that the
//! container's monitor holds for its whole life (so a dead monitor is seen at once: the kernel
//! drops its lock).

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use pelagos_container::ContainerId;

use crate::error::{Error, Result};
use crate::names::{generate_name, validate_name};
use crate::record::ContainerRecord;

/// The record's file name inside a container's directory.
pub const RECORD_FILE: &str = "container.json";
/// The owner lock's file name inside a container's directory.
pub const OWNER_LOCK_FILE: &str = "owner.lock";
/// Prefix of a directory being removed (renamed first, so the name is free at once).
const REMOVING_PREFIX: &str = ".removing-";
/// Prefix of a new container's directory until its record is complete (then renamed to its
/// id, so a creator killed midway leaves no record without its file).
const CREATING_PREFIX: &str = ".creating-";

/// The directory of all container records.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// An exclusive flock on the store, released on drop.
struct StoreLock(#[allow(dead_code)] fs::File);

/// The exclusive owner lock of one container (an open-file-description lock, so it passes to
/// an exec'd monitor with its descriptor and dies with the last holder).
#[derive(Debug)]
pub struct OwnerLock {
    fd: OwnedFd,
}

impl OwnerLock {
    /// The descriptor carrying the lock (to hand to a monitor).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The lock held by an inherited descriptor (in the monitor).
    pub fn from_fd(fd: OwnedFd) -> OwnerLock {
        OwnerLock { fd }
    }
}

fn ofd_lock(
    fd: &impl AsRawFd,
    cmd: libc::c_int,
    kind: libc::c_int,
) -> std::io::Result<libc::flock> {
    // SAFETY: flock is plain data; all-zero is a valid value (whole file from offset 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: fcntl with an OFD lock command reads/writes the flock we pass, which lives for
    // the call; the fd is open.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut fl as *mut libc::flock) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fl)
}

impl Containers {
    /// The records under `dir` (created when missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Containers> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Containers { dir })
    }

    /// The directory of one container: only a checked id names one, so none lies outside.
    pub fn dir_of(&self, id: &ContainerId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    fn lock(&self) -> Result<StoreLock> {
        let path = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("lock {}", path.display()), e.into()))?;
        Ok(StoreLock(f))
    }

    fn open_owner_file(&self, id: &ContainerId) -> Result<fs::File> {
        let path = self.dir_of(id).join(OWNER_LOCK_FILE);
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NoSuchContainer(id.to_string()),
                _ => Error::io(format!("open {}", path.display()), e),
            })
    }

    /// Takes the container's owner lock if nobody holds it; `None` when someone does (its
    /// monitor, or another command working on it).
    pub fn try_own(&self, id: &ContainerId) -> Result<Option<OwnerLock>> {
        let f = self.open_owner_file(id)?;
        match ofd_lock(&f, libc::F_OFD_SETLK, libc::F_WRLCK) {
            Ok(_) => Ok(Some(OwnerLock { fd: f.into() })),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
                Ok(None)
            }
            Err(e) => Err(Error::io(format!("lock the owner of {id}"), e)),
        }
    }

    /// Takes the owner lock, waiting for the current holder to let go.
    pub fn own_blocking(&self, id: &ContainerId) -> Result<OwnerLock> {
        let f = self.open_owner_file(id)?;
        loop {
            match ofd_lock(&f, libc::F_OFD_SETLKW, libc::F_WRLCK) {
                Ok(_) => return Ok(OwnerLock { fd: f.into() }),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Error::io(format!("lock the owner of {id}"), e)),
            }
        }
    }

    /// Whether someone holds the container's owner lock, tested without taking it.
    pub fn is_owned(&self, id: &ContainerId) -> Result<bool> {
        let f = match self.open_owner_file(id) {
            Ok(f) => f,
            Err(Error::NoSuchContainer(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        let fl = ofd_lock(&f, libc::F_OFD_GETLK, libc::F_WRLCK)
            .map_err(|e| Error::io(format!("test the owner lock of {id}"), e))?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    }

    /// All records (unreadable ones skipped: a directory being made or removed).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            if let Ok(r) = read(&entry.path().join(RECORD_FILE)) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Finds a container by full id, name (with or without Docker's leading `/`) or unique id
    /// prefix.
    pub fn get(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let wanted = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
        if let Ok(id) = ContainerId::parse(wanted) {
            if let Ok(r) = read(&self.dir_of(&id).join(RECORD_FILE)) {
                return Ok(r);
            }
        }
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == wanted) {
            return Ok(r.clone());
        }
        let matches: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| !wanted.is_empty() && r.id.as_str().starts_with(wanted))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer(name_or_id.to_string())),
            _ => Err(Error::Ambiguous(name_or_id.to_string())),
        }
    }

    /// Creates the directory and record of a new container; the name must be free (a
    /// generated one is picked when `name` is `None`).
    pub fn create(
        &self,
        mut record: ContainerRecord,
        name: Option<&str>,
    ) -> Result<ContainerRecord> {
        if let Some(n) = name {
            validate_name(n.strip_prefix('/').unwrap_or(n))?;
        }
        let _lock = self.lock()?;
        let taken: Vec<ContainerRecord> = self.list()?;
        record.name = match name {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(n);
                if let Some(other) = taken.iter().find(|r| r.name == n) {
                    return Err(Error::NameInUse {
                        name: n.to_string(),
                        id: other.id.to_string(),
                    });
                }
                n.to_string()
            }
            None => generate_name(record.id.as_str(), |n| taken.iter().any(|r| r.name == n)),
        };
        self.sweep_created();
        let dir = self.dir_of(&record.id);
        let staging = self.dir.join(format!("{CREATING_PREFIX}{}", record.id));
        fs::create_dir(&staging)
            .map_err(|e| Error::io(format!("create {}", staging.display()), e))?;
        let placed = write_record(&staging, &record).and_then(|()| {
            fs::rename(&staging, &dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))
        });
        if let Err(e) = placed {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        Ok(record)
    }

    /// Deletes the staging directories of creators killed before they renamed theirs into
    /// place. Under the store's lock, which every creator holds from first to last step.
    fn sweep_created(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .as_encoded_bytes()
                .starts_with(CREATING_PREFIX.as_bytes())
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Gives container `id` the name `new`, which must be free (checked and taken under the
    /// same lock as [`Containers::create`]). Returns the record with its new name.
    pub fn rename(&self, id: &ContainerId, new: &str) -> Result<ContainerRecord> {
        let new = new.strip_prefix('/').unwrap_or(new);
        validate_name(new)?;
        let _lock = self.lock()?;
        let taken = self.list()?;
        if let Some(other) = taken.iter().find(|r| r.name == new) {
            if other.id == *id {
                return Err(Error::Invalid(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            return Err(Error::NameInUse {
                name: new.to_string(),
                id: other.id.to_string(),
            });
        }
        self.change_locked(id, |r| r.name = new.to_string())
    }

    /// Changes a container's record under the lock, from its current state on disk, so that
    /// concurrent changes of other fields are kept. A record that is gone is
    /// [`Error::NoSuchContainer`].
    pub fn modify(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let _lock = self.lock()?;
        self.change_locked(id, change)
    }

    /// `modify`'s read-change-write, for a caller that holds the store's lock.
    fn change_locked(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let dir = self.dir_of(id);
        let mut record = match read(&dir.join(RECORD_FILE)) {
            Ok(r) => r,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchContainer(id.to_string()))
            }
            Err(e) => return Err(e),
        };
        change(&mut record);
        write_record(&dir, &record)?;
        Ok(record)
    }

    /// Removes a container's directory: renamed away first under the lock (the name and id
    /// are free at once, and a crash leaves no half-removed record), then deleted.
    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        let dir = self.dir_of(id);
        let trash = self.dir.join(format!("{REMOVING_PREFIX}{id}"));
        {
            let _lock = self.lock()?;
            match fs::rename(&dir, &trash) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(format!("remove {}", dir.display()), e)),
            }
        }
        match fs::remove_dir_all(&trash) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", trash.display()), e)),
        }
    }

    /// Deletes what removals interrupted by a crash left behind.
    pub fn sweep_removed(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry
                .file_name()
                .as_encoded_bytes()
                .starts_with(REMOVING_PREFIX.as_bytes())
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Volumes some container uses (what `volume rm`/`prune` must keep).
    pub fn volumes_in_use(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self
            .list()?
            .iter()
            .flat_map(|r| r.volume_names().map(str::to_string).collect::<Vec<_>>())
            .collect())
    }

    /// The ids of the containers using each volume (`volume rm` names them, as Docker).
    pub fn volume_users(&self) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let mut users: std::collections::HashMap<String, Vec<String>> = Default::default();
        for r in self.list()? {
            for v in r.volume_names() {
                users
                    .entry(v.to_string())
                    .or_default()
                    .push(r.id.to_string());
            }
        }
        Ok(users)
    }

    /// Image ids some container uses (what `image rm`/`prune` must keep).
    pub fn images_in_use(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self.list()?.into_iter().map(|r| r.image_id).collect())
    }
}

use std::os::unix::fs::OpenOptionsExt;

fn read(path: &Path) -> Result<ContainerRecord> {
    let text = fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    serde_json::from_slice(&text).map_err(|e| Error::Record {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Replaces the record atomically (temp file + rename; flushed unless the container is
/// removed on exit anyway).
fn write_record(dir: &Path, record: &ContainerRecord) -> Result<()> {
    let tmp = dir.join(".container.json.tmp");
    let path = dir.join(RECORD_FILE);
    let text = serde_json::to_vec_pretty(record).map_err(|e| Error::Record {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut f =
        fs::File::create(&tmp).map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
    f.write_all(&text)
        .and_then(|_| {
            if record.host_config.auto_remove {
                Ok(())
            } else {
                f.sync_all()
            }
        })
        .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, &path).map_err(|e| Error::io(format!("rename {}", path.display()), e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::names::{new_container_id, now_rfc3339};

    pub(crate) fn record() -> ContainerRecord {
        ContainerRecord {
            created: now_rfc3339(),
            image_id: "sha256:aa".into(),
            command: vec!["true".into()],
            ..ContainerRecord::new(new_container_id().unwrap(), "busybox")
        }
    }

    #[test]
    fn names_are_unique_and_lookup_works() {
        let d = tempfile::tempdir().unwrap();
        let c = Containers::open(d.path()).unwrap();
        let a = c.create(record(), Some("web")).unwrap();
        let err = c.create(record(), Some("web")).unwrap_err();
        assert!(matches!(err, Error::NameInUse { .. }), "{err}");
        let b = c.create(record(), None).unwrap();
        assert_eq!(c.get("web").unwrap().id, a.id);
        assert_eq!(c.get("/web").unwrap().id, a.id);
        assert_eq!(c.get(&b.id.as_str()[..10]).unwrap().name, b.name);
        assert!(matches!(c.get("nope"), Err(Error::NoSuchContainer(_))));
        assert!(c.create(record(), Some("-bad")).is_err());
        c.modify(&a.id, |r| r.state.exit_code = 3).unwrap();
        assert_eq!(c.get("web").unwrap().state.exit_code, 3);
        c.remove(&a.id).unwrap();
        assert!(c.get("web").is_err());
        assert!(matches!(
            c.modify(&a.id, |_| {}),
            Err(Error::NoSuchContainer(_))
        ));
        assert_eq!(c.list().unwrap().len(), 1);
    }

    #[test]
    fn owner_lock_is_exclusive_and_testable() {
        let d = tempfile::tempdir().unwrap();
        let c = Containers::open(d.path()).unwrap();
        let a = c.create(record(), None).unwrap();
        assert!(!c.is_owned(&a.id).unwrap());
        let lock = c.try_own(&a.id).unwrap().expect("free");
        assert!(c.is_owned(&a.id).unwrap());
        assert!(c.try_own(&a.id).unwrap().is_none());
        drop(lock);
        assert!(!c.is_owned(&a.id).unwrap());
        assert!(c.try_own(&a.id).unwrap().is_some());
    }
}
