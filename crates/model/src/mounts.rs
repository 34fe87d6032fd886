//! Docker's mount syntaxes and rules, shared by the CLI and the daemon: `Binds` entries
//! (`-v`) parsed into typed [`Mount`]s, every mount's fields checked, and the list of binds
//! and volumes a container needs (which its monitor resolves to host directories).

use std::path::Path;

use crate::config::{BindOptions, ContainerConfig, HostConfig, Mount, VolumeOptions};
use crate::record::MountPoint;

/// Bind propagation modes.
pub const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// A bind or volume the container needs, with the `-v` options it was given (Docker shows
/// them as the mount's `Mode`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlannedMount {
    /// Kind "bind" (source: host path) or "volume" (source: name, empty for anonymous).
    pub mount: Mount,
    /// `-v`'s options as written ("" for `--mount` and image volumes).
    pub mode: String,
    /// A missing bind source is created (`-v`, Docker's legacy behaviour; `--mount` binds
    /// must exist).
    pub create_source: bool,
}

impl PlannedMount {
    /// What inspect shows once the source is known: `source` is the host directory, `name`
    /// the volume's name (empty for a bind).
    pub fn mount_point(&self, source: &str, name: &str) -> MountPoint {
        let m = &self.mount;
        let propagation = m
            .bind_options
            .as_ref()
            .map(|b| b.propagation.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| if m.kind == "bind" { "rprivate" } else { "" }.into());
        MountPoint {
            kind: m.kind.clone(),
            name: name.to_string(),
            source: source.to_string(),
            destination: m.target.clone(),
            driver: if m.kind == "volume" {
                "local".into()
            } else {
                String::new()
            },
            mode: self.mode.clone(),
            rw: !m.read_only,
            propagation,
        }
    }

    /// Whether a new volume gets a copy of the image's files at its target.
    pub fn copies_up(&self) -> bool {
        self.mount.kind == "volume"
            && !self
                .mount
                .volume_options
                .as_ref()
                .is_some_and(|v| v.no_copy)
    }
}

/// Which of a mode's options are set, one of each class at most (moby's
/// `linuxValidMountMode`).
#[derive(Debug, Default)]
struct ModeOptions<'a> {
    read_only: Option<bool>,
    label: Option<&'a str>,
    propagation: Option<&'a str>,
    no_copy: Option<bool>,
}

fn parse_mode(mode: &str) -> Option<ModeOptions<'_>> {
    let mut out = ModeOptions::default();
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        let slot_taken = match o {
            "ro" | "rw" => out.read_only.replace(o == "ro").is_some(),
            "z" | "Z" => out.label.replace(o).is_some(),
            "nocopy" => out.no_copy.replace(true).is_some(),
            p if PROPAGATIONS.contains(&p) => out.propagation.replace(p).is_some(),
            _ => return None,
        };
        if slot_taken {
            return None;
        }
    }
    Some(out)
}

/// Parses one `Binds` entry (`-v`) with Docker's daemon rules: `dest` (anonymous volume),
/// `source:dest`, `source:dest:mode`; an absolute source is a host path, any other a volume
/// name. The error is Docker's reason, without the entry.
pub fn parse_bind(raw: &str) -> Result<PlannedMount, String> {
    let invalid_spec = || format!("invalid volume specification: '{raw}'");
    if raw.is_empty() || raw.starts_with(':') {
        return Err(invalid_spec());
    }
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts[..] {
        [target] => ("", target, ""),
        // A destination with a mode is not a volume (`/foo:rw`).
        [_, second] if parse_mode(second).is_some() => return Err(invalid_spec()),
        [source, target] => (source, target, ""),
        [source, target, mode] => (source, target, mode),
        _ => return Err(invalid_spec()),
    };
    let options = parse_mode(mode).ok_or_else(|| format!("invalid mode: {mode}"))?;
    let kind = if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    let mount = Mount {
        target: target.to_string(),
        source: source.to_string(),
        kind: kind.into(),
        read_only: options.read_only.unwrap_or(false),
        bind_options: options.propagation.map(|p| BindOptions {
            propagation: p.into(),
            non_recursive: false,
        }),
        volume_options: options.no_copy.map(|no_copy| VolumeOptions {
            no_copy,
            ..Default::default()
        }),
        ..Default::default()
    };
    check_mount(&mount, false).map_err(|e| format!("{}: {e}", invalid_spec()))?;
    Ok(PlannedMount {
        mount,
        mode: mode.to_string(),
        create_source: true,
    })
}

/// A container path: absolute, not `/`.
pub fn check_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    if target.split('/').all(|c| c.is_empty() || c == ".") {
        return Err("invalid specification: destination can't be '/'".into());
    }
    Ok(())
}

/// Docker's checks of one `Mount` (moby's `validateMountConfig`), with its words:
/// `invalid mount config for type "bind": …`. `source_must_exist`: a bind's source must
/// already exist (`--mount` and `HostConfig.Mounts`; `-v` creates it).
pub fn check_mount(m: &Mount, source_must_exist: bool) -> Result<(), String> {
    let wrap = |e: String| format!("invalid mount config for type {:?}: {e}", m.kind);
    let extra = |field: &str| wrap(format!("field {field} must not be specified"));
    check_target(&m.target).map_err(wrap)?;
    match m.kind.as_str() {
        "bind" => {
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            if m.source.is_empty() {
                return Err(wrap("field Source must not be empty".into()));
            }
            if !m.source.starts_with('/') {
                return Err(wrap(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            if let Some(b) = &m.bind_options {
                if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                    return Err(wrap(format!("invalid propagation mode: {}", b.propagation)));
                }
            }
            if source_must_exist && !Path::new(&m.source).exists() {
                return Err(wrap(format!(
                    "bind source path does not exist: {}",
                    m.source
                )));
            }
        }
        "volume" => {
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            if m.source.is_empty() && m.read_only {
                return Err(wrap(
                    "must not set ReadOnly mode when using anonymous volumes".into(),
                ));
            }
            if !m.source.is_empty() {
                crate::names::check_name("volume", &m.source).map_err(|_| {
                    format!(
                        "{:?} includes invalid characters for a local volume name, only \
                         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a \
                         host directory, use absolute path",
                        m.source
                    )
                })?;
            }
            if let Some(d) = m
                .volume_options
                .as_ref()
                .and_then(|v| v.driver_config.as_ref())
            {
                if !matches!(d.name.as_str(), "" | "local") || !d.options.is_empty() {
                    return Err(wrap(format!(
                        "volume driver {:?} with options is not supported: only \"local\" \
                         without options",
                        d.name
                    )));
                }
            }
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(extra("Source"));
            }
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if m.tmpfs_options.as_ref().is_some_and(|t| t.size_bytes < 0) {
                return Err(wrap("invalid tmpfs size: it cannot be negative".into()));
            }
        }
        "" => return Err("invalid mount config: field Type must not be empty".into()),
        other => return Err(format!("mount type unknown: {other:?}")),
    }
    Ok(())
}

/// The binds and volumes of a container, in Docker's order: `Binds`, then bind and volume
/// `Mounts`, then anonymous volumes for `Config.Volumes` and the image's `VOLUME`s that no
/// mount covers (tmpfs mounts count as cover). Tmpfs mounts are not in the list (the spec
/// builds them from the config).
pub fn planned_mounts(
    config: &ContainerConfig,
    host: &HostConfig,
    image_volumes: &[String],
) -> Result<Vec<PlannedMount>, crate::Error> {
    let mut out = Vec::new();
    for b in &host.binds {
        out.push(
            parse_bind(b).map_err(|e| crate::Error::Invalid(format!("Binds entry {b:?}: {e}")))?,
        );
    }
    for m in host.mounts.iter().filter(|m| m.kind != "tmpfs") {
        out.push(PlannedMount {
            mount: m.clone(),
            mode: String::new(),
            create_source: false,
        });
    }
    let tmpfs_targets: Vec<String> = host
        .tmpfs
        .keys()
        .cloned()
        .chain(
            host.mounts
                .iter()
                .filter(|m| m.kind == "tmpfs")
                .map(|m| m.target.clone()),
        )
        .map(|t| clean(&t))
        .collect();
    let anonymous = config
        .volumes
        .iter()
        .flat_map(|v| v.keys())
        .chain(image_volumes);
    for dest in anonymous {
        let dest = clean(dest);
        let covered =
            out.iter().any(|p| clean(&p.mount.target) == dest) || tmpfs_targets.contains(&dest);
        if !dest.starts_with('/') || covered {
            continue;
        }
        out.push(PlannedMount {
            mount: Mount {
                target: dest,
                kind: "volume".into(),
                ..Default::default()
            },
            mode: String::new(),
            create_source: false,
        });
    }
    Ok(out)
}

/// A container path without `.` components, repeated or trailing slashes.
pub fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if path.starts_with('/') {
        format!("/{}", parts.join("/"))
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_with_dockers_rules() {
        let b = parse_bind("/host:/ctr:ro,rslave").unwrap();
        assert_eq!(b.mount.kind, "bind");
        assert!(b.mount.read_only);
        assert_eq!(b.mount.bind_options.as_ref().unwrap().propagation, "rslave");
        assert_eq!(b.mode, "ro,rslave");
        let v = parse_bind("data:/d:nocopy").unwrap();
        assert_eq!(
            (v.mount.kind.as_str(), v.mount.source.as_str()),
            ("volume", "data")
        );
        assert!(!v.copies_up());
        let anon = parse_bind("/only").unwrap();
        assert_eq!(
            (anon.mount.kind.as_str(), anon.mount.source.as_str()),
            ("volume", "")
        );
        assert!(anon.copies_up());
        assert_eq!(parse_bind("relpath:/x:zz").unwrap_err(), "invalid mode: zz");
        for bad in [
            "",
            "/foo:rw",
            "a:b:c:d",
            "/x:relative",
            "/x:/",
            "/h:/c:ro,rw",
            ":/x",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
        let err = parse_bind("data:/d:rshared").unwrap_err();
        assert!(err.contains("BindOptions"), "{err}");
        let err = parse_bind("/h:/d:nocopy").unwrap_err();
        assert!(err.contains("VolumeOptions"), "{err}");
        let err = parse_bind("-bad:/d").unwrap_err();
        assert!(err.contains("invalid characters"), "{err}");
    }

    #[test]
    fn mounts_are_checked() {
        let bind = |source: &str, target: &str| Mount {
            kind: "bind".into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        };
        assert!(check_mount(&bind("/", "/x"), true).is_ok());
        let err = check_mount(&bind("/does/not/exist", "/x"), true).unwrap_err();
        assert_eq!(
            err,
            "invalid mount config for type \"bind\": bind source path does not exist: \
             /does/not/exist"
        );
        assert!(check_mount(&bind("/does/not/exist", "/x"), false).is_ok());
        assert!(check_mount(&bind("/", "/"), false).is_err());
        assert!(check_mount(&bind("/", "rel"), false).is_err());
        let tmpfs = Mount {
            kind: "tmpfs".into(),
            source: "x".into(),
            target: "/t".into(),
            ..Default::default()
        };
        assert!(check_mount(&tmpfs, false).unwrap_err().contains("Source"));
        let npipe = Mount {
            kind: "npipe".into(),
            target: "/t".into(),
            ..Default::default()
        };
        assert!(check_mount(&npipe, false).unwrap_err().contains("unknown"));
    }

    #[test]
    fn planned_mounts_cover_image_volumes_once() {
        let config = ContainerConfig {
            volumes: Some([("/anon".to_string(), serde_json::json!({}))].into()),
            ..Default::default()
        };
        let host = HostConfig {
            binds: vec!["/h:/data/".into()],
            tmpfs: [("/run".to_string(), String::new())].into(),
            ..Default::default()
        };
        let image = vec!["/data".to_string(), "/run".into(), "/var/lib/x".into()];
        let planned = planned_mounts(&config, &host, &image).unwrap();
        let targets: Vec<&str> = planned.iter().map(|p| p.mount.target.as_str()).collect();
        assert_eq!(targets, ["/data/", "/anon", "/var/lib/x"]);
        let mp = planned[0].mount_point("/h", "");
        assert_eq!((mp.propagation.as_str(), mp.rw), ("rprivate", true));
        let mp = planned[2].mount_point("/v/_data", "abc");
        assert_eq!((mp.driver.as_str(), mp.propagation.as_str()), ("local", ""));
    }
}
