//! Named and anonymous volumes, Docker's `local` driver: `<root>/volumes/<name>/_data` plus a
//! `volume.json` record. A new volume mounted where the image has files gets a copy of them
//! first (Docker's copy-up), read through the container's root without following symlinks out.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::{Event, EventLog};
use crate::kind::{ErrorKind, WireError};
use crate::mounts::PlannedMount;
use crate::names::{new_id, now_rfc3339};
use crate::record::MountPoint;
use crate::rootfs::{open_in_root, open_root};

const RECORD: &str = "volume.json";

/// What `volume inspect` shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeRecord {
    /// The volume's name (64 hex characters for anonymous volumes).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// The directory bind-mounted into containers.
    pub mountpoint: PathBuf,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// User labels; `com.docker.volume.anonymous` marks anonymous volumes, as Docker does.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
}

impl VolumeRecord {
    /// Whether the volume was made for one container (`-v /path`, an image VOLUME).
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// Docker's label for anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// The volume directory.
#[derive(Debug, Clone)]
pub struct Volumes {
    dir: PathBuf,
}

/// Docker's rule for volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_name(name: &str) -> Result<()> {
    crate::names::check_name("volume", name)
}

/// "No such volume" with the not-found kind (the model's error has no variant for volumes:
/// the kind travels as a wire error).
fn no_such_volume(name: &str) -> Error {
    Error::Remote(WireError::new(
        ErrorKind::NotFound,
        format!("get {name}: no such volume"),
    ))
}

/// A name that passed [`validate_name`]: one path component, so the directory it names lies
/// inside the volumes directory. Only these name directories.
struct VolumeName(String);

impl VolumeName {
    fn parse(name: &str) -> Result<VolumeName> {
        validate_name(name)?;
        Ok(VolumeName(name.to_string()))
    }
}

impl Volumes {
    /// The volumes under `dir` (created when missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Volumes> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Volumes { dir })
    }

    fn dir_of(&self, name: &VolumeName) -> PathBuf {
        self.dir.join(&name.0)
    }

    fn read(&self, name: &VolumeName) -> Result<Option<VolumeRecord>> {
        let path = self.dir_of(name).join(RECORD);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Record {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
        }
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<VolumeRecord> {
        self.existing(&VolumeName::parse(name)?)
    }

    fn existing(&self, name: &VolumeName) -> Result<VolumeRecord> {
        self.read(name)?.ok_or_else(|| no_such_volume(&name.0))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("read {}", self.dir.display()), e))?;
        for e in entries.flatten() {
            // Temporary and trash entries (`.name.*`) break the rule and are skipped.
            if let Some(Ok(name)) = e.file_name().to_str().map(VolumeName::parse) {
                if let Ok(Some(v)) = self.read(&name) {
                    out.push(v);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a volume (or returns the existing one of that name, as `docker volume create`
    /// does); `None` makes an anonymous one. The second value says whether it is new.
    pub fn create(
        &self,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
    ) -> Result<(VolumeRecord, bool)> {
        let (name, mut labels) = match name {
            Some(n) => (VolumeName::parse(n)?, labels),
            None => {
                let mut l = labels;
                l.insert(ANONYMOUS_LABEL.into(), String::new());
                (VolumeName::parse(&new_id()?)?, l)
            }
        };
        if let Some(existing) = self.read(&name)? {
            return Ok((existing, false));
        }
        let dir = self.dir_of(&name);
        let name = name.0;
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let data = tmp.join("_data");
        fs::create_dir_all(&data)
            .map_err(|e| Error::io(format!("create {}", data.display()), e))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(format!("chmod {}", data.display()), e))?;
        labels.retain(|k, _| !k.is_empty());
        let record = VolumeRecord {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: dir.join("_data"),
            created_at: now_rfc3339(),
            labels,
            scope: "local".into(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::Record {
            path: tmp.join(RECORD),
            reason: e.to_string(),
        })?;
        fs::write(tmp.join(RECORD), json)
            .map_err(|e| Error::io(format!("write {}", tmp.join(RECORD).display()), e))?;
        match fs::rename(&tmp, &dir) {
            Ok(()) => {
                self.events().emit(&Event::volume("create", &record.name));
                Ok((record, true))
            }
            Err(_) => {
                // Someone made it meanwhile: theirs counts.
                let _ = fs::remove_dir_all(&tmp);
                Ok((self.get(&name)?, false))
            }
        }
    }

    /// Removes a volume; refused while `users` names containers using it, unless `force`.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: &dyn Fn(&str) -> Vec<String>,
    ) -> Result<()> {
        let checked = VolumeName::parse(name)?;
        self.existing(&checked)?;
        let ids = users(name);
        if !force && !ids.is_empty() {
            // Docker's words, its ids as Go prints a slice.
            return Err(Error::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                ids.join(" ")
            )));
        }
        // Move aside first so that a half-removed volume is never seen as one.
        let dir = self.dir_of(&checked);
        let trash = self.dir.join(format!(".{name}.{}.rm", std::process::id()));
        fs::rename(&dir, &trash).map_err(|e| Error::io(format!("remove volume {name}"), e))?;
        self.events().emit(&Event::volume("destroy", name));
        fs::remove_dir_all(&trash).map_err(|e| Error::io(format!("remove volume {name}"), e))
    }

    /// The event log of the root the volumes live under (`<root>/volumes`).
    fn events(&self) -> EventLog {
        EventLog::new(self.dir.parent().unwrap_or(&self.dir))
    }

    /// `volume prune`: removes the volumes `select` picks (the caller's filters, unused ones
    /// only). Returns the removed names and the bytes reclaimed.
    pub fn prune(&self, select: &dyn Fn(&VolumeRecord) -> bool) -> Result<(Vec<String>, u64)> {
        let mut removed = Vec::new();
        let mut bytes = 0;
        for v in self.list()? {
            if select(&v) {
                bytes += disk_usage(&v.mountpoint);
                self.remove(&v.name, true, &|_| Vec::new())?;
                removed.push(v.name);
            }
        }
        Ok((removed, bytes))
    }

    /// Resolves a container's binds and volumes ([`crate::mounts::planned_mounts`]) to host
    /// directories at its first start: volumes are created when missing (anonymous ones
    /// always) and a new one gets the image's files at its target from `rootfs` unless
    /// `nocopy`; a missing `-v` host directory is created. On failure the anonymous volumes
    /// made here are removed again.
    pub fn prepare(&self, rootfs: &Path, planned: &[PlannedMount]) -> Result<PreparedMounts> {
        let mut out = PreparedMounts::default();
        let result = planned.iter().try_for_each(|p| {
            let point = self.prepare_one(rootfs, p, &mut out)?;
            out.mounts.push(point);
            Ok(())
        });
        if let Err(e) = result {
            for name in &out.anonymous {
                let _ = self.remove(name, true, &|_| Vec::new());
            }
            return Err(e);
        }
        Ok(out)
    }

    fn prepare_one(
        &self,
        rootfs: &Path,
        p: &PlannedMount,
        out: &mut PreparedMounts,
    ) -> Result<MountPoint> {
        let m = &p.mount;
        if m.kind == "bind" {
            if p.create_source && !Path::new(&m.source).exists() {
                fs::create_dir_all(&m.source).map_err(|e| {
                    Error::io(format!("create host directory {} for -v", m.source), e)
                })?;
            }
            return Ok(p.mount_point(&m.source, ""));
        }
        if m.kind != "volume" {
            return Err(Error::Invalid(format!(
                "mount at {}: a {:?} mount has no host directory to prepare",
                m.target, m.kind
            )));
        }
        let labels = m
            .volume_options
            .as_ref()
            .map(|v| v.labels.clone())
            .unwrap_or_default();
        let name = Some(m.source.as_str()).filter(|s| !s.is_empty());
        let (volume, new) = self.create(name, labels)?;
        if volume.is_anonymous() {
            out.anonymous.push(volume.name.clone());
        }
        if new && p.copies_up() {
            copy_up(rootfs, &m.target, &volume.mountpoint)?;
        }
        out.volumes.push(volume.name.clone());
        Ok(p.mount_point(&volume.mountpoint.to_string_lossy(), &volume.name))
    }
}

/// A container's binds and volumes resolved by [`Volumes::prepare`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreparedMounts {
    /// In the planned order, for the spec and the record.
    pub mounts: Vec<MountPoint>,
    /// Every volume used.
    pub volumes: Vec<String>,
    /// The anonymous volumes made for this container (removed with it).
    pub anonymous: Vec<String>,
}

/// Bytes of the regular files below `dir` (symlinks not followed).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Docker's copy-up: the image's files at `dest` (resolved inside `rootfs`, never outside it)
/// are copied into the empty volume directory `data`, keeping modes, owners and times.
/// Nothing happens when the image has nothing there.
pub fn copy_up(rootfs: &Path, dest: &str, data: &Path) -> Result<()> {
    let root = open_root(rootfs)?;
    let src = match open_in_root(&root, dest, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => fd,
        Err(_) => return Ok(()),
    };
    // The resolved directory, reached through its descriptor: no path component is
    // re-resolved below this point except entries read from it.
    let from = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&src)
    ));
    let meta = fs::metadata(&from).map_err(|e| Error::io(format!("copy-up of {dest}"), e))?;
    copy_tree(&from, data, dest)?;
    // The volume's root takes the owner and mode of the image's directory.
    set_meta(data, &meta, dest)?;
    Ok(())
}

fn set_meta(path: &Path, meta: &fs::Metadata, what: &str) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| Error::io(format!("copy-up of {what}: chown"), e))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| Error::io(format!("copy-up of {what}: chmod"), e))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path, what: &str) -> Result<()> {
    let entries = fs::read_dir(from).map_err(|e| Error::io(format!("copy-up of {what}"), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("copy-up of {what}"), e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta =
            fs::symlink_metadata(&src).map_err(|e| Error::io(format!("copy-up of {what}"), e))?;
        let t = meta.file_type();
        let io = |e| Error::io(format!("copy-up of {what}: {}", dst.display()), e);
        if t.is_dir() {
            fs::create_dir(&dst).map_err(io)?;
            copy_tree(&src, &dst, what)?;
        } else if t.is_file() {
            fs::copy(&src, &dst).map_err(io)?;
        } else if t.is_symlink() {
            let target = fs::read_link(&src).map_err(io)?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io)?;
        } else {
            continue; // devices, fifos, sockets: not copied (Docker skips them too)
        }
        set_meta(&dst, &meta, what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_remove_and_prune() {
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::open(d.path()).unwrap();
        let (a, new) = v.create(Some("data"), BTreeMap::new()).unwrap();
        assert!(new && a.mountpoint.is_dir());
        let (again, new) = v.create(Some("data"), BTreeMap::new()).unwrap();
        assert!(!new);
        assert_eq!(again, a);
        let (anon, _) = v.create(None, BTreeMap::new()).unwrap();
        assert!(anon.is_anonymous() && anon.name.len() == 64);
        assert_eq!(v.list().unwrap().len(), 2);
        assert!(v.create(Some("-bad"), BTreeMap::new()).is_err());
        let err = v
            .remove("data", false, &|n| {
                if n == "data" {
                    vec!["c1".into()]
                } else {
                    Vec::new()
                }
            })
            .unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        // prune takes what it is told to.
        let (removed, _) = v.prune(&|v| v.is_anonymous()).unwrap();
        assert_eq!(removed, vec![anon.name.clone()]);
        v.remove("data", false, &|_| Vec::new()).unwrap();
        assert!(v.list().unwrap().is_empty());
        assert!(v
            .get("data")
            .unwrap_err()
            .to_string()
            .contains("no such volume"));
    }

    #[test]
    fn prepare_resolves_binds_and_volumes() {
        let d = tempfile::tempdir().unwrap();
        let v = Volumes::open(d.path().join("volumes")).unwrap();
        let rootfs = d.path().join("rootfs");
        fs::create_dir_all(rootfs.join("srv")).unwrap();
        fs::write(rootfs.join("srv/file"), "image data").unwrap();
        let host_dir = d.path().join("made-by-v");
        let host = crate::config::HostConfig {
            binds: vec![
                format!("{}:/h:ro", host_dir.display()),
                "data:/srv".into(),
                "quiet:/srv2:nocopy".into(),
            ],
            ..Default::default()
        };
        let config = crate::config::ContainerConfig::default();
        let planned =
            crate::mounts::planned_mounts(&config, &host, &["/anon".to_string()]).unwrap();
        let prepared = v.prepare(&rootfs, &planned).unwrap();
        assert!(host_dir.is_dir(), "-v creates the host directory");
        let m = &prepared.mounts;
        assert_eq!(m.len(), 4);
        assert_eq!(
            (m[0].kind.as_str(), m[0].rw, m[0].mode.as_str()),
            ("bind", false, "ro")
        );
        assert_eq!((m[1].kind.as_str(), m[1].name.as_str()), ("volume", "data"));
        let data = Path::new(&m[1].source);
        assert_eq!(fs::read_to_string(data.join("file")).unwrap(), "image data");
        assert_eq!(prepared.anonymous.len(), 1);
        assert_eq!(prepared.volumes.len(), 3);
        // A failure removes the anonymous volumes made on the way.
        let bad = vec![
            PlannedMount {
                mount: crate::config::Mount {
                    kind: "volume".into(),
                    target: "/a".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
            PlannedMount {
                mount: crate::config::Mount {
                    kind: "volume".into(),
                    source: "-bad".into(),
                    target: "/b".into(),
                    ..Default::default()
                },
                ..Default::default()
            },
        ];
        let before = v.list().unwrap().len();
        assert!(v.prepare(&rootfs, &bad).is_err());
        assert_eq!(v.list().unwrap().len(), before);
        let err = v.get("nope").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn copy_up_keeps_metadata_and_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let rootfs = d.path().join("rootfs");
        let outside = d.path().join("outside");
        fs::create_dir_all(rootfs.join("srv/sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "no").unwrap();
        fs::write(rootfs.join("srv/file"), "image data").unwrap();
        fs::set_permissions(rootfs.join("srv/file"), fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::lchown(rootfs.join("srv/sub"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("srv/link")).unwrap();
        std::os::unix::fs::symlink(&outside, rootfs.join("escape")).unwrap();
        let data = d.path().join("data");
        fs::create_dir(&data).unwrap();
        copy_up(&rootfs, "/srv", &data).unwrap();
        assert_eq!(fs::read_to_string(data.join("file")).unwrap(), "image data");
        assert_eq!(
            fs::metadata(data.join("file")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(fs::metadata(data.join("sub")).unwrap().uid(), 1000);
        assert_eq!(
            fs::read_link(data.join("link")).unwrap(),
            Path::new("/etc/passwd")
        );
        // A symlink in the image pointing outside resolves inside the root: nothing copied.
        let data2 = d.path().join("data2");
        fs::create_dir(&data2).unwrap();
        copy_up(&rootfs, "/escape", &data2).unwrap();
        assert!(fs::read_dir(&data2).unwrap().next().is_none());
        // Nothing at the destination: nothing to do.
        copy_up(&rootfs, "/nothing/here", &data2).unwrap();
    }
}
