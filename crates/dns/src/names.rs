//! The names file (`<dir>/names.json`): one network's container names and addresses, written
//! by the control plane under an flock on `<dir>/names.json.lock`, read by the resolver.
//!
//! Writers replace the file by rename, so a reader never sees half a file and needs no lock.
//! The lock orders writers with each other and with the resolver's decision to exit when
//! the file has no entries left (see the crate docs for the whole contract).

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The names file's name inside a network's directory.
pub const FILE_NAME: &str = "names.json";

/// How many hex digits of a container id resolve, as in Docker (`docker ps`'s short id).
pub const SHORT_ID_LEN: usize = 12;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Names {
    /// The network's search domain, if any (`dns.pelagos`): `db.dns.pelagos` answers as `db`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// One entry per container on the network.
    #[serde(default)]
    pub entries: Vec<Entry>,
}

/// One container: the names it answers to and its addresses on this network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The container's full id, the key writers use to replace or remove the entry; the
    /// resolver does not answer it (the short id is one of `names`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Name, network aliases, short id: matched case-insensitively. Several entries may
    /// share a name (a network alias): the answer then holds all their addresses.
    pub names: Vec<String>,
    /// IPv4 addresses (A records).
    #[serde(default)]
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 addresses (AAAA records).
    #[serde(default)]
    pub v6: Vec<Ipv6Addr>,
    /// The container's own upstream servers (`--dns`): the queries it sends that are not
    /// for a container go to these instead of the host's (as Docker's embedded resolver).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
}

impl Entry {
    /// A container's entry as Docker resolves it: its name, its aliases and its short id.
    pub fn container(
        id: &str,
        name: &str,
        aliases: &[String],
        v4: Vec<Ipv4Addr>,
        v6: Vec<Ipv6Addr>,
    ) -> Entry {
        let mut names = vec![name.trim_start_matches('/').to_string()];
        names.extend(aliases.iter().cloned());
        if let Some(short) = id.get(..SHORT_ID_LEN) {
            names.push(short.to_string());
        }
        names.dedup();
        Entry {
            id: id.to_string(),
            names,
            v4,
            v6,
            dns: Vec::new(),
        }
    }

    /// Refuse what could never be looked up.
    fn validate(&self) -> Result<()> {
        if self.names.is_empty() {
            return Err(Error::InvalidEntry(format!(
                "entry {:?} has no name",
                self.id
            )));
        }
        match self.names.iter().find(|n| !valid_name(n)) {
            Some(bad) => Err(Error::InvalidEntry(format!(
                "{bad:?} is not a DNS name (letters, digits, '-', '_', '.'; at most 253 characters)"
            ))),
            None => Ok(()),
        }
    }
}

/// A name the resolver can match: non-empty labels of DNS-safe characters.
fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The names file of the network directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The lock file that goes with the names file `file`: `<file>.lock`.
pub fn lock_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The names file, exclusively locked until this is dropped.
#[derive(Debug)]
pub struct Locked {
    file: PathBuf,
    _lock: Flock<File>,
}

impl Locked {
    /// The file's contents (empty when it does not exist).
    pub fn read(&self) -> Result<Names> {
        read_file(&self.file)
    }

    /// Replace the file with `names` (write a temporary file, then rename). Not synced to
    /// disk: the file only describes running containers, which a crash of the host ends (the
    /// engine's reconcile then removes their entries), and a sync would cost every `run` on a
    /// user network a disk flush.
    pub fn write(&self, names: &Names) -> Result<()> {
        names.entries.iter().try_for_each(Entry::validate)?;
        let text =
            serde_json::to_vec_pretty(names).map_err(|e| Error::InvalidEntry(e.to_string()))?;
        let mut tmp_name = self.file.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut out = File::create(&tmp).map_err(|e| Error::file("create", &tmp, e))?;
        out.write_all(&text)
            .map_err(|e| Error::file("write", &tmp, e))?;
        std::fs::rename(&tmp, &self.file).map_err(|e| Error::file("replace", &self.file, e))
    }
}

/// Lock the names file of the network directory `dir` (created if missing); blocks while
/// another writer or the exiting resolver holds it.
pub fn lock(dir: &Path) -> Result<Locked> {
    std::fs::create_dir_all(dir).map_err(|e| Error::file("create", dir, e))?;
    lock_file(&path(dir))
}

/// Lock the names file `file` (its directory must exist).
pub fn lock_file(file: &Path) -> Result<Locked> {
    let lock = lock_path(file);
    let handle = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| Error::file("open", &lock, e))?;
    let held = Flock::lock(handle, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::file("lock", &lock, errno.into()))?;
    Ok(Locked {
        file: file.to_path_buf(),
        _lock: held,
    })
}

/// Read the names of the network directory `dir` without locking (writes are atomic).
pub fn read(dir: &Path) -> Result<Names> {
    read_file(&path(dir))
}

/// Read the names file `file`: a missing file has no entries.
pub fn read_file(file: &Path) -> Result<Names> {
    match std::fs::read(file) {
        Ok(text) => serde_json::from_slice(&text).map_err(|source| Error::Parse {
            path: file.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Names::default()),
        Err(e) => Err(Error::file("read", file, e)),
    }
}

/// Replace the names of the network directory `dir` under the lock.
pub fn write(dir: &Path, names: &Names) -> Result<()> {
    lock(dir)?.write(names)
}

/// Remove the entry of container `id` from the names of `dir` under the lock, if it is there
/// (nothing is created or written otherwise); whether it was.
pub fn forget(dir: &Path, id: &str) -> Result<bool> {
    if !path(dir).exists() {
        return Ok(false);
    }
    let locked = lock_file(&path(dir))?;
    let mut names = locked.read()?;
    let before = names.entries.len();
    names.entries.retain(|e| e.id != id);
    if names.entries.len() == before {
        return Ok(false);
    }
    locked.write(&names)?;
    Ok(true)
}

/// Read, change and write back the names of `dir` under the lock; returns what `change` does.
pub fn update<T>(dir: &Path, change: impl FnOnce(&mut Names) -> T) -> Result<T> {
    let locked = lock(dir)?;
    let mut names = locked.read()?;
    let result = change(&mut names);
    locked.write(&names)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Entry {
        Entry::container(
            "0123456789abcdef0123",
            "/db",
            &["database".to_string()],
            vec![Ipv4Addr::new(172, 18, 0, 2)],
            vec![],
        )
    }

    #[test]
    fn container_entry_has_name_aliases_and_short_id() {
        assert_eq!(db().names, ["db", "database", "0123456789ab"]);
    }

    #[test]
    fn write_then_read_round_trips_and_missing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Names::default());
        let names = Names {
            domain: Some("dns.pelagos".into()),
            entries: vec![db()],
        };
        write(dir.path(), &names).unwrap();
        assert_eq!(read(dir.path()).unwrap(), names);
        let text = std::fs::read_to_string(path(dir.path())).unwrap();
        assert!(text.contains("\"172.18.0.2\""), "{text}");
    }

    #[test]
    fn update_removes_by_id() {
        let dir = tempfile::tempdir().unwrap();
        update(dir.path(), |n| n.entries.push(db())).unwrap();
        let left = update(dir.path(), |n| {
            n.entries.retain(|e| e.id != "0123456789abcdef0123");
            n.entries.len()
        })
        .unwrap();
        assert_eq!(left, 0);
        assert!(read(dir.path()).unwrap().entries.is_empty());
    }

    #[test]
    fn forget_removes_only_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("never");
        assert!(!forget(&gone, "0123456789abcdef0123").unwrap());
        assert!(!gone.exists(), "nothing made for a network without names");
        let mut with_dns = db();
        with_dns.dns = vec!["9.9.9.9".parse().unwrap()];
        update(dir.path(), |n| n.entries.push(with_dns.clone())).unwrap();
        assert_eq!(read(dir.path()).unwrap().entries, [with_dns]);
        assert!(!forget(dir.path(), "other").unwrap());
        assert!(forget(dir.path(), "0123456789abcdef0123").unwrap());
        assert!(read(dir.path()).unwrap().entries.is_empty());
    }

    #[test]
    fn bad_names_are_refused_and_garbage_is_a_parse_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = db();
        bad.names.push("has space".into());
        let names = Names {
            domain: None,
            entries: vec![bad],
        };
        assert!(write(dir.path(), &names).unwrap_err().is_invalid_input());
        std::fs::write(path(dir.path()), b"{not json").unwrap();
        assert!(matches!(read(dir.path()), Err(Error::Parse { .. })));
    }
}
