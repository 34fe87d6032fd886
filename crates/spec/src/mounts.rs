//! The spec's mounts: Docker's defaults (/proc, a private /dev, /sys, /dev/shm, the /etc
//! files), then the container's binds, volumes and tmpfs, parents before children.

use std::path::Path;

use pelagos_model::config::{HostConfig, Mount};
use pelagos_model::mounts::clean;
use pelagos_model::record::MountPoint;
use pelagos_model::validate::IpcMode;
use serde_json::{json, Value};

use crate::input::SpecInput;
use crate::process::INIT_PATH;

/// /dev/shm's size when `ShmSize` is 0 (Docker's 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;

/// Every mount of the spec, in order.
pub fn mounts(input: &SpecInput<'_>, host: &HostConfig, ipc: IpcMode) -> Vec<Value> {
    let mut user = user_mounts(input.mounts, host);
    if let Some(init) = input.init.filter(|_| host.init == Some(true)) {
        user.push(
            json!({"destination": INIT_PATH, "type": "bind", "source": init,
                         "options": ["bind", "ro"]}),
        );
    }
    // Parents before children, whatever the order of the flags (moby sorts by depth).
    user.sort_by_key(|m| depth(m["destination"].as_str().unwrap_or_default()));
    let mut all = default_mounts(input, host, ipc);
    // A user mount replaces a default one at the same place (`--tmpfs /dev/shm`,
    // `-v ./hosts:/etc/hosts`).
    all.retain(|m| !user.iter().any(|u| clean_of(u) == clean_of(m)));
    all.extend(user);
    all
}

fn clean_of(m: &Value) -> String {
    clean(m["destination"].as_str().unwrap_or_default())
}

fn depth(path: &str) -> usize {
    clean(path).split('/').filter(|c| !c.is_empty()).count()
}

fn bind(dest: &str, src: &Path) -> Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
}

fn default_mounts(input: &SpecInput<'_>, host: &HostConfig, ipc: IpcMode) -> Vec<Value> {
    let rw = if host.privileged { "rw" } else { "ro" };
    let shm_size = if host.shm_size > 0 {
        host.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", rw]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", rw]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ];
    match (ipc, input.shm) {
        // A shareable container's own, or the donor's of `--ipc container:NAME`: POSIX shared
        // memory is shared with the IPC namespace.
        (IpcMode::Private | IpcMode::Container, Some(shm)) => mounts.push(bind("/dev/shm", shm)),
        (IpcMode::Private | IpcMode::Container, None) => mounts.push(json!({
            "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]})),
        (IpcMode::Host, _) => mounts.push(bind("/dev/shm", Path::new("/dev/shm"))),
        (IpcMode::None, _) => {}
    }
    mounts.extend([
        bind("/etc/resolv.conf", input.etc.resolv_conf),
        bind("/etc/hostname", input.etc.hostname),
        bind("/etc/hosts", input.etc.hosts),
    ]);
    mounts
}

/// Binds and volumes (resolved by the monitor), `Tmpfs` and tmpfs `Mounts`.
fn user_mounts(points: &[MountPoint], host: &HostConfig) -> Vec<Value> {
    let mut out: Vec<Value> = points.iter().map(|p| mount_point(p, host)).collect();
    for (dest, options) in &host.tmpfs {
        out.push(tmpfs(dest, options));
    }
    for m in host.mounts.iter().filter(|m| m.kind == "tmpfs") {
        out.push(tmpfs_mount(m));
    }
    out
}

/// A bind of a host directory or a volume's, recursive and rprivate unless asked otherwise.
fn mount_point(p: &MountPoint, host: &HostConfig) -> Value {
    let non_recursive = host.mounts.iter().any(|m| {
        m.kind == "bind"
            && clean(&m.target) == clean(&p.destination)
            && m.bind_options.as_ref().is_some_and(|b| b.non_recursive)
    });
    let propagation = if p.propagation.is_empty() {
        "rprivate"
    } else {
        p.propagation.as_str()
    };
    let mut options = vec![
        if non_recursive { "bind" } else { "rbind" }.to_string(),
        propagation.to_string(),
    ];
    if !p.rw {
        options.push("ro".into());
    }
    json!({"destination": p.destination, "type": "bind", "source": p.source, "options": options})
}

/// `--tmpfs DEST:OPTS`, with Docker's defaults `noexec,nosuid,nodev` unless the options
/// say otherwise.
fn tmpfs(dest: &str, opts: &str) -> Value {
    let mut options: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        if let Some(opp) = opposite {
            options.retain(|x| x != opp);
        }
        options.push(o.to_string());
    }
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

/// `--mount type=tmpfs`.
fn tmpfs_mount(m: &Mount) -> Value {
    let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
    if let Some(t) = &m.tmpfs_options {
        if t.size_bytes > 0 {
            options.push(format!("size={}", t.size_bytes));
        }
        if t.mode != 0 {
            options.push(format!("mode={:o}", t.mode));
        }
    }
    if m.read_only {
        options.push("ro".into());
    }
    json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": options})
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::TmpfsOptions;

    #[test]
    fn tmpfs_options() {
        let t = tmpfs("/run", "exec,size=1m");
        assert_eq!(t["options"], json!(["nosuid", "nodev", "exec", "size=1m"]));
        let m = tmpfs_mount(&Mount {
            kind: "tmpfs".into(),
            target: "/t".into(),
            tmpfs_options: Some(TmpfsOptions {
                size_bytes: 1 << 20,
                mode: 0o1777,
            }),
            ..Default::default()
        });
        assert_eq!(
            m["options"],
            json!(["nosuid", "nodev", "size=1048576", "mode=1777"])
        );
    }

    #[test]
    fn binds_are_recursive_and_private_by_default() {
        let p = MountPoint {
            kind: "bind".into(),
            source: "/h".into(),
            destination: "/d".into(),
            rw: false,
            ..Default::default()
        };
        let host = HostConfig::default();
        assert_eq!(
            mount_point(&p, &host)["options"],
            json!(["rbind", "rprivate", "ro"])
        );
        let host = HostConfig {
            mounts: vec![Mount {
                kind: "bind".into(),
                source: "/h".into(),
                target: "/d/".into(),
                bind_options: Some(pelagos_model::config::BindOptions {
                    propagation: "rslave".into(),
                    non_recursive: true,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let p = MountPoint {
            propagation: "rslave".into(),
            rw: true,
            ..p
        };
        assert_eq!(mount_point(&p, &host)["options"], json!(["bind", "rslave"]));
    }
}
