//! The container's binds and volumes resolved at its first start: `Binds`, `Mounts` of type
//! bind and volume, `Config.Volumes` and the image's VOLUMEs nobody covered become the
//! record's mount points; new volumes get the image's files first (Docker's copy-up).

use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use pelagos_model::config::Mount;
use pelagos_model::record::{ContainerRecord, MountPoint};

use crate::error::{Error, Result};
use crate::spec_adapter::{self, VolumeStore};

/// Bind propagation modes Docker accepts.
const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// What the first start resolved.
#[derive(Debug, Default)]
pub struct Prepared {
    pub mounts: Vec<MountPoint>,
    /// Volumes made for this container alone.
    pub anonymous: Vec<String>,
}

/// Resolves every mount point of `record`, making volumes in `store`. On failure the
/// anonymous volumes made so far are removed again.
pub fn prepare(
    record: &ContainerRecord,
    image: Option<&ImageConfig>,
    rootfs: &Path,
    store: &VolumeStore,
) -> Result<Prepared> {
    let mut out = Prepared::default();
    match prepare_into(&mut out, record, image, rootfs, store) {
        Ok(()) => Ok(out),
        Err(e) => {
            for v in &out.anonymous {
                let _ = store.remove(v);
            }
            Err(e)
        }
    }
}

fn prepare_into(
    out: &mut Prepared,
    record: &ContainerRecord,
    image: Option<&ImageConfig>,
    rootfs: &Path,
    store: &VolumeStore,
) -> Result<()> {
    let mut attach = Attach { out, rootfs, store };
    for bind in &record.host_config.binds {
        attach.bind_flag(bind)?;
    }
    for m in &record.host_config.mounts {
        attach.typed(m)?;
    }
    let config_volumes = record.config.volumes.iter().flat_map(|v| v.keys().cloned());
    let image_volumes = image.and_then(|c| c.volumes().clone()).unwrap_or_default();
    for dest in config_volumes.chain(image_volumes) {
        let dest = dest.trim_end_matches('/');
        if dest.starts_with('/') && !covered(record, &attach.out.mounts, dest) {
            attach.volume(None, dest, String::new(), true, false)?;
        }
    }
    Ok(())
}

/// Whether a user mount is at `dest` already.
fn covered(record: &ContainerRecord, mounts: &[MountPoint], dest: &str) -> bool {
    mounts.iter().any(|m| m.destination == dest)
        || record.host_config.tmpfs.contains_key(dest)
        || record.host_config.mounts.iter().any(|m| m.target == dest)
}

struct Attach<'a> {
    out: &'a mut Prepared,
    rootfs: &'a Path,
    store: &'a VolumeStore,
}

impl Attach<'_> {
    /// One `Binds` entry (`-v`): `HOST:DEST[:OPTS]`, `NAME:DEST[:OPTS]` or `DEST`.
    fn bind_flag(&mut self, spec: &str) -> Result<()> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dest, mode) = match parts.as_slice() {
            [dest] => return self.volume(None, dest, String::new(), true, false),
            [src, dest] => (*src, *dest, ""),
            [src, dest, mode] => (*src, *dest, *mode),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid volume specification {spec:?}"
                )))
            }
        };
        let (rw, propagation, no_copy) = bind_mode(spec, mode)?;
        if src.starts_with('/') {
            self.out.mounts.push(MountPoint {
                kind: "bind".into(),
                source: src.into(),
                destination: dest.into(),
                mode: mode.into(),
                rw,
                propagation: propagation.unwrap_or("rprivate").into(),
                ..Default::default()
            });
            return Ok(());
        }
        spec_adapter::validate_volume_name(src).map_err(|_| {
            Error::Invalid(format!(
                "invalid volume specification {spec:?}: {src:?} is neither an absolute host \
                 path nor a volume name"
            ))
        })?;
        self.volume(Some(src), dest, mode.into(), rw, no_copy)
    }

    /// One typed `Mounts` entry of type bind or volume (tmpfs mounts go to the spec as they are).
    fn typed(&mut self, m: &Mount) -> Result<()> {
        match m.kind.as_str() {
            "tmpfs" => Ok(()),
            "bind" => {
                if !Path::new(&m.source).exists() {
                    return Err(Error::Invalid(format!(
                        "invalid mount config for type \"bind\": bind source path does not \
                         exist: {}",
                        m.source
                    )));
                }
                let propagation = m.bind_options.as_ref().map(|b| b.propagation.as_str());
                self.out.mounts.push(MountPoint {
                    kind: "bind".into(),
                    source: m.source.clone(),
                    destination: m.target.clone(),
                    rw: !m.read_only,
                    propagation: propagation.filter(|p| !p.is_empty()).unwrap_or("rprivate").into(),
                    ..Default::default()
                });
                Ok(())
            }
            "volume" => {
                let name = Some(m.source.as_str()).filter(|s| !s.is_empty());
                let no_copy = m.volume_options.as_ref().is_some_and(|o| o.no_copy);
                let mode = if m.read_only { "ro" } else { "" };
                self.volume(name, &m.target, mode.into(), !m.read_only, no_copy)
            }
            other => Err(Error::Invalid(format!(
                "invalid mount config: mount type {other:?} is not supported (bind, volume, tmpfs are)"
            ))),
        }
    }

    /// A named (or with `None` a new anonymous) volume at `dest`.
    fn volume(
        &mut self,
        name: Option<&str>,
        dest: &str,
        mode: String,
        rw: bool,
        no_copy: bool,
    ) -> Result<()> {
        let v = self.store.create(name)?;
        if v.anonymous {
            self.out.anonymous.push(v.name.clone());
        }
        if v.new && !no_copy {
            spec_adapter::copy_up(self.rootfs, dest, &v.mountpoint)?;
        }
        self.out.mounts.push(MountPoint {
            kind: "volume".into(),
            name: v.name,
            source: v.mountpoint.to_string_lossy().into_owned(),
            destination: dest.into(),
            driver: "local".into(),
            mode,
            rw,
            propagation: String::new(),
        });
        Ok(())
    }
}

/// The options of a `-v`: (read-write, propagation, nocopy).
fn bind_mode<'a>(spec: &str, mode: &'a str) -> Result<(bool, Option<&'a str>, bool)> {
    let (mut rw, mut propagation, mut no_copy) = (true, None, false);
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => rw = false,
            "rw" => rw = true,
            "z" | "Z" => {}
            "nocopy" => no_copy = true,
            p if PROPAGATIONS.contains(&p) => propagation = Some(p),
            other => {
                return Err(Error::Invalid(format!(
                    "invalid volume specification {spec:?}: unknown option {other:?}"
                )))
            }
        }
    }
    Ok((rw, propagation, no_copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(binds: &[&str]) -> ContainerRecord {
        let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": "b".repeat(64), "name": "x", "created": "", "image": "i", "image_id": "sha256:1",
            "command": ["true"], "config": {}, "host_config": {}, "state": {"status": "created"}
        }))
        .unwrap();
        r.host_config.binds = binds.iter().map(|s| s.to_string()).collect();
        r
    }

    #[test]
    fn binds_volumes_and_image_volumes_resolve() {
        let d = tempfile::tempdir().unwrap();
        let rootfs = d.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("data")).unwrap();
        std::fs::write(rootfs.join("data/seed"), "from image").unwrap();
        let store = VolumeStore::open(&d.path().join("volumes")).unwrap();
        let mut r = record(&["/host:/h:ro,rshared", "named:/n", "/anon"]);
        r.config.volumes = Some([("/n".to_string(), serde_json::json!({}))].into());
        let image: ImageConfig = serde_json::from_value(serde_json::json!({
            "Volumes": {"/data": {}, "/h": {}}
        }))
        .unwrap();
        let p = prepare(&r, Some(&image), &rootfs, &store).unwrap();
        let dests: Vec<&str> = p.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(dests, vec!["/h", "/n", "/anon", "/data"]);
        assert_eq!(p.mounts[0].kind, "bind");
        assert!(!p.mounts[0].rw);
        assert_eq!(p.mounts[0].propagation, "rshared");
        assert_eq!(p.mounts[1].name, "named");
        assert_eq!(p.anonymous.len(), 2);
        let data = Path::new(&p.mounts[3].source).join("seed");
        assert_eq!(std::fs::read_to_string(data).unwrap(), "from image");
        assert!(prepare(&record(&["bad name:/x"]), None, &rootfs, &store).is_err());
        // A failure removes the anonymous volumes made before it.
        let before = std::fs::read_dir(d.path().join("volumes")).unwrap().count();
        assert!(prepare(&record(&["/a1", "/x:/y:bogus"]), None, &rootfs, &store).is_err());
        let after = std::fs::read_dir(d.path().join("volumes")).unwrap().count();
        assert_eq!(before, after);
    }
}
