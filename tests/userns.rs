//! A container whose root is not host root (container 0 → host 100000): create, start, exec
//! and delete work with a 0700 `--root`; stdio, joined namespaces and bind sources behind
//! directories only host root may enter still work; /dev nodes are nosuid,noexec; an init that
//! fails before it is parked fails `create` and leaves nothing.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::json;
use support::*;

const HOST_ROOT: u32 = 100000;

/// A host directory only host root may enter (0700), removed on drop. Network namespaces
/// persisted inside it are unmounted first.
struct PrivateDir {
    path: PathBuf,
    netns: Vec<PathBuf>,
}

impl PrivateDir {
    fn new(name: &str) -> PrivateDir {
        let path = std::env::temp_dir().join(format!("pelagos-it-private-{}", unique(name)));
        std::fs::create_dir(&path).expect("mkdir private dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        PrivateDir {
            path,
            netns: Vec::new(),
        }
    }

    /// `unshare --net=FILE true`: a network namespace kept by a bind mount on FILE.
    fn persisted_netns(&mut self) -> PathBuf {
        let file = self.path.join("netns");
        std::fs::write(&file, "").expect("netns file");
        let st = Command::new("unshare")
            .arg(format!("--net={}", file.display()))
            .arg("true")
            .status()
            .expect("unshare --net");
        assert!(st.success(), "unshare --net={}", file.display());
        self.netns.push(file.clone());
        file
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        for f in &self.netns {
            let _ = nix::mount::umount2(f, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A container with a user namespace mapping 0 → 100000 (65536 ids), its rootfs owned by the
/// mapped root, and a state root that only host root may enter.
fn mapped_container(name: &str) -> Container {
    let c = Container::new(name);
    std::fs::create_dir(&c.root).expect("mkdir --root");
    std::fs::set_permissions(&c.root, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    // Closed to the mapped root: what works below works through handles, not by chance.
    let meta = std::fs::metadata(&c.root).expect("stat --root");
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o700, 0));
    let st = Command::new("chown")
        .args(["-R", "-h", &format!("{HOST_ROOT}:{HOST_ROOT}")])
        .arg(c.bundle.rootfs())
        .status()
        .expect("chown rootfs");
    assert!(st.success());
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]);
        cfg["linux"]["uidMappings"] = map.clone();
        cfg["linux"]["gidMappings"] = map;
    });
    c
}

/// The mount options (6th field of mountinfo) of the mount at `target`.
fn mount_options<'a>(mountinfo: &'a str, target: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[4] == target)
        .map(|f| f[5])
}

#[test]
fn mapped_root_container_lifecycle() {
    let c = mapped_container("userns-life");
    let mut private = PrivateDir::new("userns-life");
    let netns = private.persisted_netns();
    let shared = private.path.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("file"), "from the host\n").unwrap();
    c.bundle.edit(|cfg| {
        let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "network", "path": netns}));
        cfg["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt/shared", "type": "bind", "source": shared, "options": ["bind", "ro"]}));
    });
    c.bundle.set_args(&[
        "sh",
        "-c",
        "echo out; echo reopened > /dev/stdout; cat /mnt/shared/file; \
         readlink /proc/self/ns/net; cat /proc/self/mountinfo; echo END; exec sleep 1000",
    ]);

    // stdout is a pipe of ours (owned by host root), as under containerd or podman.
    let stderr = std::fs::File::create(c.bundle.dir.join("stderr")).unwrap();
    let mut create = c.command(&["create", "--bundle"]);
    create
        .arg(&c.bundle.dir)
        .arg(&c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = create.spawn().expect("spawn create");
    let pipe = child.stdout.take().expect("stdout pipe");
    let status = child.wait().expect("wait create");
    let err = std::fs::read_to_string(c.bundle.dir.join("stderr")).unwrap_or_default();
    assert!(status.success(), "create failed: {err}");
    assert_eq!(c.status(), "created");

    c.rt_ok(&["start", &c.id]);
    let mut out = String::new();
    let mut lines = BufReader::new(pipe);
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).expect("read container stdout") == 0 {
            break; // the container died: its output says why
        }
        out.push_str(&line);
        if line == "END\n" {
            break;
        }
    }
    assert!(out.starts_with("out\nreopened\nfrom the host\n"), "{out}");
    let net = format!("net:[{}]", std::fs::metadata(&netns).unwrap().ino());
    assert!(out.lines().any(|l| l == net), "joined {net}: {out}");
    for dev in ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/tty"] {
        let opts = mount_options(&out, dev).unwrap_or_else(|| panic!("{dev} not mounted: {out}"));
        let opts: Vec<&str> = opts.split(',').collect();
        assert!(
            opts.contains(&"nosuid") && opts.contains(&"noexec"),
            "{dev}: {opts:?}"
        );
    }
    assert_eq!(c.status(), "running");

    let exec = c.rt(&["exec", &c.id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert!(exec.status.success(), "exec: {}", exec.stderr_text());
    let text = exec.stdout_text();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields, ["0", "0", "100000", "65536"], "{text}");

    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    assert!(netns.exists(), "the joined namespace stays");
}

#[test]
fn mapped_root_init_failure_fails_create() {
    let c = mapped_container("userns-fail");
    c.bundle.edit(|cfg| {
        cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "not-a-number"});
    });
    let out = c.create();
    assert!(!out.status.success(), "create of a failing init succeeded");
    let err = out.stderr_text();
    assert!(
        err.contains("set sysctl net.ipv4.ip_forward=not-a-number"),
        "the init's own message: {err}"
    );
    c.assert_gone();
    assert!(pids_with_arg(&c.id).is_empty(), "an init was left running");
    assert!(
        std::fs::read_dir(&c.root).is_ok_and(|mut d| d.next().is_none()),
        "nothing under --root {}",
        c.root.display()
    );
}
