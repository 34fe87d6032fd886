//! Namespaces: new ones differ from the host's, unlisted ones are inherited, joined ones are
//! the given files (checked by inode), a path of the wrong type is refused, user namespaces
//! with id mappings, time namespaces with offsets, cgroup namespaces.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

/// `readlink /proc/self/ns/X` for every namespace type, inside the container.
fn container_ns(c: &Container) -> BTreeMap<String, String> {
    let out = sh_ok(
        c,
        "for n in net ipc uts mnt pid cgroup user time; do echo \"$n $(readlink /proc/self/ns/$n)\"; done",
    );
    out.lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').expect("ns line");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ns_link_of(path: &Path, kind: &str) -> String {
    format!("{kind}:[{}]", std::fs::metadata(path).unwrap().ino())
}

#[test]
fn new_namespaces_differ_from_the_host() {
    let c = Container::new("ns-new");
    let inside = container_ns(&c);
    for n in ["net", "ipc", "uts", "mnt", "pid", "cgroup"] {
        assert_ne!(inside[n], host_ns(n), "{n} namespace is the host's");
        assert!(inside[n].starts_with(&format!("{n}:[")), "{inside:?}");
    }
    // Not requested: inherited from the runtime.
    for n in ["user", "time"] {
        assert_eq!(inside[n], host_ns(n), "{n} namespace should be inherited");
    }
    assert_eq!(
        sh_ok(&c, "echo $$"),
        "1\n",
        "pid 1 in the new pid namespace"
    );
}

#[test]
fn unlisted_namespaces_are_inherited() {
    let c = Container::new("ns-itype");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "pid"}]);
        cfg["hostname"] = json!("");
        // Without its own network/ipc namespace the container must not remount host-wide
        // filesystems fresh; keep the default mounts, the runtime falls back to binds.
    });
    let inside = container_ns(&c);
    for n in ["net", "ipc", "uts", "cgroup", "user", "time"] {
        assert_eq!(inside[n], host_ns(n), "{n} should be the host's");
    }
    for n in ["mnt", "pid"] {
        assert_ne!(inside[n], host_ns(n), "{n} should be new");
    }
}

/// A network namespace made with `ip netns add`, deleted on drop.
struct NetNs {
    name: String,
}

impl NetNs {
    fn new() -> NetNs {
        let name = unique("pelagos-it-netns");
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success(), "ip netns add {name}");
        NetNs { name }
    }
    fn path(&self) -> std::path::PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A process we started that holds new namespaces (`unshare ... sleep`), killed on drop.
struct Holder {
    child: std::process::Child,
}

impl Holder {
    fn new(flags: &[&str], kinds: &[&str]) -> Holder {
        let child = Command::new("unshare")
            .args(flags)
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare");
        let h = Holder { child };
        // unshare(2) happens before it execs sleep: wait for the namespaces to differ.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = kinds.iter().all(|k| {
                std::fs::read_link(h.ns(k))
                    .map(|l| l.to_string_lossy() != host_ns(k))
                    .unwrap_or(false)
            });
            if ready {
                return h;
            }
            assert!(Instant::now() < deadline, "unshare never unshared");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn ns(&self, kind: &str) -> std::path::PathBuf {
        Path::new("/proc")
            .join(self.child.id().to_string())
            .join("ns")
            .join(kind)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn joins_a_network_namespace_by_path() {
    let netns = NetNs::new();
    let c = Container::new("ns-join-net");
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": netns.path()}));
    });
    let inside = container_ns(&c);
    assert_eq!(inside["net"], ns_link_of(&netns.path(), "net"));
    assert_ne!(inside["net"], host_ns("net"));
    // Deleting the container leaves the joined namespace alone.
    c.assert_gone();
    assert!(netns.path().exists());
}

#[test]
fn joins_ipc_and_uts_of_a_running_process() {
    let holder = Holder::new(&["--ipc", "--uts"], &["ipc", "uts"]);
    let c = Container::new("ns-join-proc");
    c.bundle.edit(|cfg| {
        cfg["hostname"] = json!("");
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "ipc" && n["type"] != "uts");
        list.push(json!({"type": "ipc", "path": holder.ns("ipc")}));
        list.push(json!({"type": "uts", "path": holder.ns("uts")}));
    });
    let inside = container_ns(&c);
    assert_eq!(inside["ipc"], ns_link_of(&holder.ns("ipc"), "ipc"));
    assert_eq!(inside["uts"], ns_link_of(&holder.ns("uts"), "uts"));
    assert_ne!(inside["ipc"], host_ns("ipc"));
}

#[test]
fn namespace_path_of_the_wrong_type_is_refused() {
    let netns = NetNs::new();
    let c = Container::new("ns-wrongtype");
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "ipc");
        list.push(json!({"type": "ipc", "path": netns.path()}));
    });
    let out = c.create();
    assert!(!out.status.success(), "an ipc namespace given a netns file");
    let err = out.stderr_text();
    assert!(
        err.contains(&netns.name) && err.contains("ipc"),
        "the error names the path and the expected type: {err}"
    );
    c.assert_gone();

    let c = Container::new("ns-notns");
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": "/etc/hostname"}));
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("not a namespace"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();

    let c = Container::new("ns-missing");
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": "/var/run/netns/pelagos-it-no-such-ns"}));
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("pelagos-it-no-such-ns"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn user_namespace_with_id_mappings() {
    let c = Container::new("ns-user");
    let data = c.bundle.rootfs().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(100000), Some(100000)).unwrap();
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let out = sh_ok(
        &c,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
         touch /data/f; stat -c %u:%g /data/f; stat -c %u /bin/busybox; \
         readlink /proc/self/ns/user",
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines[0], "0 100000 65536", "{out}");
    assert_eq!(lines[1], "0 200000 65536", "{out}");
    assert_eq!(lines[2..5], ["0", "0", "0:0"], "{out}");
    // A file of the host's root is unmapped inside: the overflow uid.
    assert_eq!(lines[5], "65534", "{out}");
    assert_ne!(lines[6], host_ns("user"));
    // On the host the new file belongs to the mapped ids.
    let meta = std::fs::metadata(data.join("f")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (100000, 200000));
}

#[test]
fn user_namespace_without_mappings_is_refused() {
    let c = Container::new("ns-user-nomap");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("uidMappings"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn time_namespace_with_offsets() {
    let c = Container::new("ns-time");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        cfg["linux"]["timeOffsets"] = json!({
            "boottime": {"secs": 31_536_000, "nanosecs": 0},
            "monotonic": {"secs": 7200, "nanosecs": 500}
        });
    });
    let out = sh_ok(
        &c,
        "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/time",
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(lines.contains(&"monotonic 7200 500".to_string()), "{out}");
    assert!(lines.contains(&"boottime 31536000 0".to_string()), "{out}");
    let uptime: f64 = lines[2].parse().expect("uptime");
    let host_uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime >= 31_536_000.0 + host_uptime - 60.0 && uptime <= 31_536_000.0 + host_uptime + 60.0,
        "container uptime {uptime}, host {host_uptime}"
    );
    assert_ne!(lines[3], host_ns("time"));
}

#[test]
fn cgroup_namespace_makes_the_own_cgroup_root() {
    let c = Container::new("ns-cgroup");
    let out = sh_ok(&c, "grep '^0::' /proc/self/cgroup");
    assert_eq!(out, "0::/\n");

    let c = Container::new("ns-cgroup-none");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    let out = sh_ok(&c, "grep '^0::' /proc/self/cgroup");
    assert_eq!(out, format!("0::{}/{}\n", test_cgroup_parent(), c.id));
}

#[test]
fn without_a_mount_namespace_the_process_sees_the_host_filesystem() {
    // runc: no mount namespace, no rootfs setup (no pivot, no chroot, mounts ignored); the
    // process runs in the runtime's filesystem.
    let marker = std::env::temp_dir().join(unique("pelagos-it-nomnt-marker"));
    std::fs::write(&marker, "host file\n").unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _marker = Remove(marker.clone());
    let c = Container::new("ns-nomnt");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        cfg["linux"]["maskedPaths"] = json!([]);
        cfg["linux"]["readonlyPaths"] = json!([]);
    });
    let out = sh_ok(
        &c,
        &format!("cat {}; readlink /proc/self/ns/mnt", marker.display()),
    );
    assert_eq!(out, format!("host file\n{}\n", host_ns("mnt")));
    c.assert_gone();

    // What it could not hide without one is refused, as runc does.
    let c = Container::new("ns-nomnt-masked");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
    });
    let out = c.create();
    assert!(!out.status.success());
    let err = out.stderr_text();
    assert!(
        err.contains("maskedPaths") && err.contains("mount namespace"),
        "{err}"
    );
    c.assert_gone();
}

#[test]
fn a_joined_mount_namespace_gets_the_rootfs() {
    let holder = Holder::new(&["--mount"], &["mnt"]);
    let c = Container::new("ns-join-mnt");
    std::fs::write(c.bundle.rootfs().join("marker"), "in the rootfs\n").unwrap();
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "mount");
        list.push(json!({"type": "mount", "path": holder.ns("mnt")}));
    });
    let out = sh_ok(&c, "cat /marker; readlink /proc/self/ns/mnt");
    assert_eq!(
        out,
        format!("in the rootfs\n{}\n", ns_link_of(&holder.ns("mnt"), "mnt"))
    );
}

#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    let holder = Holder::new(&["--uts"], &["uts"]);
    let c = Container::new("ns-join-uts-host");
    c.bundle.edit(|cfg| {
        cfg["hostname"] = json!("joined-host");
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "uts");
        list.push(json!({"type": "uts", "path": holder.ns("uts")}));
    });
    assert_eq!(sh_ok(&c, "hostname"), "joined-host\n");
    // Set in the joined namespace itself: its holder sees it.
    let seen = Command::new("nsenter")
        .arg(format!("--uts={}", holder.ns("uts").display()))
        .arg("hostname")
        .output()
        .expect("nsenter");
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "joined-host\n");

    // Without any uts namespace of its own, a hostname is refused (runc's rule).
    let c = Container::new("ns-no-uts-host");
    c.bundle.edit(|cfg| {
        cfg["hostname"] = json!("nope");
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "uts");
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(out.stderr_text().contains("uts"), "{}", out.stderr_text());
    c.assert_gone();
}
