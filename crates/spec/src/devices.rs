//! `--device`: the host's device nodes (`HostConfig.Devices`) looked up on the host, then
//! made in the container (`linux.devices`) with a cgroup rule of their permissions.

use std::path::Path;

use nix::sys::stat::{major, minor, stat, SFlag};
use pelagos_model::config::HostConfig;
use pelagos_model::{Error, Result};
use serde_json::{json, Value};

/// One host device node as the container gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    pub path_in_container: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    /// Permission bits of the host's node.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The cgroup rule's access (`rwm` when the mapping gives none).
    pub permissions: String,
}

/// Every `HostConfig.Devices` node, looked up on the host: a missing one, or a path that is
/// not a device node, is an error naming it (Docker also takes a directory of devices: not
/// supported here).
pub fn host_devices(host: &HostConfig) -> Result<Vec<HostDevice>> {
    host.devices
        .iter()
        .map(|d| {
            let found = lookup(Path::new(&d.path_on_host))?;
            Ok(HostDevice {
                path_in_container: d.path_in_container.clone(),
                permissions: match d.cgroup_permissions.as_str() {
                    "" => "rwm".to_string(),
                    p => p.to_string(),
                },
                ..found
            })
        })
        .collect()
}

fn lookup(path: &Path) -> Result<HostDevice> {
    let gathering = |why: String| {
        Error::Invalid(format!(
            "error gathering device information while adding custom device {:?}: {why}",
            path.display().to_string()
        ))
    };
    let st = stat(path).map_err(|e| gathering(e.desc().to_lowercase()))?;
    let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFCHR => 'c',
        SFlag::S_IFBLK => 'b',
        _ => return Err(gathering("not a device node".into())),
    };
    Ok(HostDevice {
        path_in_container: String::new(),
        kind,
        major: major(st.st_rdev),
        minor: minor(st.st_rdev),
        file_mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        permissions: String::new(),
    })
}

/// `linux.devices` entries.
pub fn device_nodes(devices: &[HostDevice]) -> Vec<Value> {
    devices
        .iter()
        .map(|d| {
            json!({"path": d.path_in_container, "type": d.kind.to_string(), "major": d.major,
                   "minor": d.minor, "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid})
        })
        .collect()
}

/// `linux.resources.devices` allow rules, after the deny-all one.
pub fn cgroup_rules(devices: &[HostDevice]) -> Vec<Value> {
    devices
        .iter()
        .map(|d| {
            json!({"allow": true, "type": d.kind.to_string(), "major": d.major,
                   "minor": d.minor, "access": d.permissions})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::DeviceMapping;

    #[test]
    fn host_devices_are_looked_up() {
        let host = |path: &str| HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: path.into(),
                path_in_container: "/dev/mine".into(),
                cgroup_permissions: String::new(),
            }],
            ..Default::default()
        };
        let null = host_devices(&host("/dev/null")).unwrap();
        assert_eq!((null[0].kind, null[0].major, null[0].minor), ('c', 1, 3));
        assert_eq!(null[0].permissions, "rwm");
        assert_eq!(null[0].path_in_container, "/dev/mine");
        let e = host_devices(&host("/dev/nope")).unwrap_err().to_string();
        assert!(
            e.contains("\"/dev/nope\": no such file or directory"),
            "{e}"
        );
        let e = host_devices(&host("/etc")).unwrap_err().to_string();
        assert!(e.contains("not a device node"), "{e}");
    }
}
