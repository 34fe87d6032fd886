//! Container records of the high-level tools: `<root>/containers/<id>/container.json`, with
//! Docker-style ids and names, created and changed under a lock so that two `pelagos run
//! --name x` cannot both get the name.

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use pelagos_container::ContainerId;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The record's file name inside the container directory.
pub const RECORD_FILE: &str = "container.json";

/// What the engine remembers of a container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerRecord {
    /// 64 hex characters; checked when a record is read, since directories are named by it.
    pub id: ContainerId,
    /// Unique name (Docker's `--name`, or a generated one).
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (config digest).
    pub image_id: String,
    /// The process's argv.
    pub command: Vec<String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// "created", "running" or "exited".
    pub state: String,
    /// Exit code once exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// RFC 3339 time of exit.
    #[serde(default)]
    pub finished: Option<String>,
    /// `--rm`: removed when it exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// The signal `stop` sends first (the image's StopSignal, default SIGTERM).
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Volumes the container mounts (named and anonymous).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// The anonymous ones among them (removed with `--rm` or `rm -v`).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// How it was run (with volumes resolved once `volumes_prepared`): what `start` repeats.
    #[serde(default)]
    pub run: Option<crate::run::RunRequest>,
    /// Whether `run.spec` already has its volumes turned into binds.
    #[serde(default)]
    pub volumes_prepared: bool,
    /// RFC 3339 time of the last start.
    #[serde(default)]
    pub started: Option<String>,
    /// Pid of the monitor of a detached container.
    #[serde(default)]
    pub monitor_pid: Option<i32>,
    /// `stop` was asked: the monitor must not restart it.
    #[serde(default)]
    pub stop_requested: bool,
    /// How often the restart policy started it again.
    #[serde(default)]
    pub restart_count: u32,
}

/// The directory of all container records.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// An exclusive flock on the records directory, released on drop.
struct Lock(#[allow(dead_code)] fs::File);

const ADJECTIVES: [&str; 24] = [
    "azure", "brave", "calm", "deep", "eager", "fair", "gentle", "happy", "icy", "jolly", "keen",
    "lucid", "merry", "noble", "quiet", "rapid", "salty", "tidal", "vivid", "wise", "bold",
    "clever", "dreamy", "swift",
];
const CREATURES: [&str; 24] = [
    "albatross",
    "barracuda",
    "cuttlefish",
    "dolphin",
    "eel",
    "flounder",
    "grouper",
    "halibut",
    "jellyfish",
    "krill",
    "lobster",
    "marlin",
    "narwhal",
    "octopus",
    "pelican",
    "queenfish",
    "ray",
    "sardine",
    "tuna",
    "urchin",
    "walrus",
    "wrasse",
    "seal",
    "orca",
];

/// 64 random hex characters, as Docker's container ids.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("getrandom", e.into())),
        }
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh container id: 64 random hex characters.
pub fn new_container_id() -> Result<ContainerId> {
    Ok(ContainerId::parse(&new_id()?)?)
}

/// Docker's rule for container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "invalid {kind} name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Docker's rule for container names.
pub fn validate_name(name: &str) -> Result<()> {
    check_name("container", name)
}

/// Current time in RFC 3339 with nanoseconds, as Docker prints it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
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

    fn lock(&self) -> Result<Lock> {
        let path = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("lock {}", path.display()), e.into()))?;
        Ok(Lock(f))
    }

    /// All records (unreadable ones skipped: a directory being removed).
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("read {}", self.dir.display()), e))?;
        for entry in entries.flatten() {
            if let Ok(r) = self.read(&entry.path().join(RECORD_FILE)) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created));
        Ok(out)
    }

    fn read(&self, path: &Path) -> Result<ContainerRecord> {
        let text = fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&text).map_err(|e| Error::Record {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Finds a container by full id, unique id prefix or name.
    pub fn get(&self, name_or_id: &str) -> Result<ContainerRecord> {
        let all = self.list()?;
        if let Some(r) = all
            .iter()
            .find(|r| r.id == name_or_id || r.name == name_or_id)
        {
            return Ok(r.clone());
        }
        let matches: Vec<&ContainerRecord> = all
            .iter()
            .filter(|r| !name_or_id.is_empty() && r.id.starts_with(name_or_id))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchContainer(name_or_id.to_string())),
            _ => Err(Error::InvalidOption(format!(
                "container id prefix {name_or_id:?} is ambiguous"
            ))),
        }
    }

    /// Creates the directory and record of a new container; the name must be free (a
    /// generated one is picked when `name` is `None`).
    pub fn create(
        &self,
        mut record: ContainerRecord,
        name: Option<&str>,
    ) -> Result<ContainerRecord> {
        let _lock = self.lock()?;
        let taken: Vec<ContainerRecord> = self.list()?;
        record.name = match name {
            Some(n) => {
                validate_name(n)?;
                if let Some(other) = taken.iter().find(|r| r.name == n) {
                    return Err(Error::NameInUse {
                        name: n.to_string(),
                        id: other.id.to_string(),
                    });
                }
                n.to_string()
            }
            None => generate_name(&record.id, |n| taken.iter().any(|r| r.name == n)),
        };
        let dir = self.dir_of(&record.id);
        fs::create_dir(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        if let Err(e) = self.write_unlocked(&record) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(record)
    }

    /// Changes a container's record under the lock, from its current state on disk, so that
    /// concurrent changes of other fields (a `stop` request during a monitor's update) are
    /// kept. Returns the new record; a record that is gone is [`Error::NoSuchContainer`].
    pub fn modify(
        &self,
        id: &ContainerId,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord> {
        let _lock = self.lock()?;
        let path = self.dir_of(id).join(RECORD_FILE);
        let mut record = match self.read(&path) {
            Ok(r) => r,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoSuchContainer(id.to_string()))
            }
            Err(e) => return Err(e),
        };
        change(&mut record);
        self.write_unlocked(&record)?;
        Ok(record)
    }

    /// Replaces a container's record atomically.
    pub fn update(&self, record: &ContainerRecord) -> Result<()> {
        let _lock = self.lock()?;
        self.write_unlocked(record)
    }

    fn write_unlocked(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.dir_of(&record.id);
        let tmp = dir.join(".container.json.tmp");
        let path = dir.join(RECORD_FILE);
        let text = serde_json::to_vec_pretty(record).map_err(|e| Error::Record {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = fs::File::create(&tmp)
            .map_err(|e| Error::io(format!("create {}", tmp.display()), e))?;
        f.write_all(&text)
            // A --rm container's record dies with it: not worth a disk flush per change.
            .and_then(|_| {
                if record.auto_remove {
                    Ok(())
                } else {
                    f.sync_all()
                }
            })
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(format!("rename {}", path.display()), e))
    }

    /// Removes a container's directory (its record, upper layer and files).
    pub fn remove(&self, id: &ContainerId) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.dir_of(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
        }
    }

    /// Volumes some container uses (what `volume rm`/`prune` must keep).
    pub fn volumes_in_use(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self.list()?.into_iter().flat_map(|r| r.volumes).collect())
    }

    /// Image ids some container uses (what `image rm`/`prune` must keep).
    pub fn images_in_use(&self) -> Result<std::collections::HashSet<String>> {
        Ok(self.list()?.into_iter().map(|r| r.image_id).collect())
    }
}

fn generate_name(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let seed = u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    for attempt in 0..ADJECTIVES.len() as u64 * CREATURES.len() as u64 {
        let n = seed.wrapping_add(attempt.wrapping_mul(7919));
        let name = format!(
            "{}_{}",
            ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
            CREATURES[((n / ADJECTIVES.len() as u64) % CREATURES.len() as u64) as usize]
        );
        if !taken(&name) {
            return name;
        }
    }
    format!("pelagos_{}", id.get(..12).unwrap_or(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: ContainerId) -> ContainerRecord {
        ContainerRecord {
            id,
            name: String::new(),
            image: "busybox".into(),
            image_id: "sha256:aa".into(),
            command: vec!["true".into()],
            created: now_rfc3339(),
            state: "created".into(),
            exit_code: None,
            finished: None,
            auto_remove: false,
            stop_signal: None,
            volumes: Vec::new(),
            anonymous_volumes: Vec::new(),
            run: None,
            volumes_prepared: false,
            started: None,
            monitor_pid: None,
            stop_requested: false,
            restart_count: 0,
        }
    }

    #[test]
    fn ids_are_unique_hex() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id().unwrap());
    }

    #[test]
    fn names_are_unique_and_lookup_works() {
        let d = tempfile::tempdir().unwrap();
        let c = Containers::open(d.path()).unwrap();
        let a = c
            .create(record(new_container_id().unwrap()), Some("web"))
            .unwrap();
        let err = c
            .create(record(new_container_id().unwrap()), Some("web"))
            .unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        let b = c.create(record(new_container_id().unwrap()), None).unwrap();
        assert!(b.name.contains('_'), "{}", b.name);
        assert_eq!(c.get("web").unwrap().id, a.id);
        assert_eq!(c.get(&b.id[..10]).unwrap().name, b.name);
        assert!(matches!(c.get("nope"), Err(Error::NoSuchContainer(_))));
        assert!(c
            .create(record(new_container_id().unwrap()), Some("-bad"))
            .is_err());
        let mut a2 = a.clone();
        a2.state = "exited".into();
        a2.exit_code = Some(3);
        c.update(&a2).unwrap();
        assert_eq!(c.get("web").unwrap().exit_code, Some(3));
        c.remove(&a.id).unwrap();
        assert!(c.get("web").is_err());
        assert_eq!(c.images_in_use().unwrap().len(), 1);
    }
}
