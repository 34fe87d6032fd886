//! The container's filesystem: mounts of each type and their options, the read-only root,
//! rootfs propagation, masked and read-only paths, devices, /dev symlinks, sysctls, hostname
//! and domainname, --no-pivot, and mount destinations that try to leave the rootfs.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::*;

fn add_mount(c: &Container, m: Value) {
    c.bundle.edit(|cfg| {
        cfg["mounts"].as_array_mut().expect("mounts").push(m);
    });
}

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone)]
struct MountEntry {
    root: String,
    mount_point: String,
    mount_opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_opts: Vec<String>,
}

impl MountEntry {
    fn has_opt(&self, o: &str) -> bool {
        self.mount_opts.iter().any(|x| x == o)
    }
    fn has_super(&self, o: &str) -> bool {
        self.super_opts.iter().any(|x| x == o)
    }
    fn shared(&self) -> bool {
        self.optional.iter().any(|t| t.starts_with("shared:"))
    }
    fn slave(&self) -> bool {
        self.optional.iter().any(|t| t.starts_with("master:"))
    }
}

fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            let p: Vec<&str> = post.split(' ').collect();
            if f.len() < 6 || p.len() < 3 {
                return None;
            }
            Some(MountEntry {
                root: f[3].to_string(),
                mount_point: f[4].to_string(),
                mount_opts: f[5].split(',').map(str::to_string).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: p[0].to_string(),
                super_opts: p[2].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// All mounts stacked at `mp`, bottom first.
fn mounts_at<'a>(mi: &'a [MountEntry], mp: &str) -> Vec<&'a MountEntry> {
    mi.iter().filter(|m| m.mount_point == mp).collect()
}

/// The visible (top) mount at `mp`.
fn mount_at<'a>(mi: &'a [MountEntry], mp: &str) -> &'a MountEntry {
    mounts_at(mi, mp)
        .into_iter()
        .last()
        .unwrap_or_else(|| panic!("no mount at {mp} in the container:\n{mi:#?}"))
}

/// The container's own mountinfo, from a run that prints it after `pre` (whose output is
/// returned separately, before the marker line).
fn container_mountinfo(c: &Container, pre: &str) -> (String, Vec<MountEntry>) {
    let out = sh_ok(
        c,
        &format!("{pre}\necho ==MOUNTINFO==\ncat /proc/self/mountinfo"),
    );
    let (head, mi) = out
        .split_once("==MOUNTINFO==\n")
        .unwrap_or_else(|| panic!("no mountinfo marker in {out}"));
    (head.to_string(), parse_mountinfo(mi))
}

fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("read host mountinfo")
}

#[test]
fn bind_mounts_file_and_directory_from_the_bundle() {
    let c = Container::new("fs-bind");
    let data = c.bundle.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("inner.txt"), "from-dir\n").unwrap();
    let file = c.bundle.dir.join("file.txt");
    std::fs::write(&file, "from-file\n").unwrap();
    // A relative source is taken from the bundle; an absolute one as is.
    add_mount(
        &c,
        json!({"destination": "/mnt/dir", "type": "bind", "source": "data", "options": ["rbind", "rw"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/etc/file.txt", "type": "bind", "source": file, "options": ["bind", "ro"]}),
    );
    let out = sh_ok(
        &c,
        "cat /mnt/dir/inner.txt; cat /etc/file.txt; echo new > /mnt/dir/created; \
         if echo x 2>/dev/null > /etc/file.txt; then echo FILE-WRITABLE; else echo file-ro; fi",
    );
    assert_eq!(out, "from-dir\nfrom-file\nfile-ro\n");
    assert_eq!(
        std::fs::read_to_string(data.join("created")).unwrap(),
        "new\n"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "from-file\n");
    // The destinations were created inside the rootfs, not on the host.
    assert!(c.bundle.rootfs().join("mnt/dir").is_dir());
    assert!(c.bundle.rootfs().join("etc/file.txt").is_file());
    assert!(
        !host_mountinfo().contains(&c.id),
        "a mount leaked to the host"
    );
}

#[test]
fn bind_is_not_recursive_but_rbind_is() {
    // The host's /dev has submounts (/dev/shm, /dev/pts): a good rbind source that the
    // container only ever sees read-only.
    let c = Container::new("fs-rbind");
    add_mount(
        &c,
        json!({"destination": "/mnt/bind", "type": "bind", "source": "/dev", "options": ["bind", "ro"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/mnt/rbind", "type": "bind", "source": "/dev", "options": ["rbind", "ro"]}),
    );
    let (_, mi) = container_mountinfo(&c, "true");
    assert!(mount_at(&mi, "/mnt/bind").has_opt("ro"));
    assert!(
        mounts_at(&mi, "/mnt/bind/shm").is_empty(),
        "a plain bind must not carry submounts"
    );
    assert!(mount_at(&mi, "/mnt/rbind").has_opt("ro"));
    let sub = mount_at(&mi, "/mnt/rbind/shm");
    // `ro` is a per-mount flag: only the top of an rbind becomes read-only.
    assert!(
        sub.has_opt("rw"),
        "`ro` must not reach submounts (that is `rro`): {sub:?}"
    );
}

#[test]
fn rro_and_rnosuid_reach_submounts() {
    let c = Container::new("fs-rro");
    add_mount(
        &c,
        json!({"destination": "/mnt/hostdev", "type": "bind", "source": "/dev",
               "options": ["rbind", "rro", "rnosuid", "rnoexec"]}),
    );
    let (head, mi) = container_mountinfo(
        &c,
        "if touch /mnt/hostdev/shm/pelagos-rro 2>/dev/null; then echo SUB-WRITABLE; \
         else echo sub-ro; fi",
    );
    assert_eq!(head, "sub-ro\n");
    for mp in ["/mnt/hostdev", "/mnt/hostdev/shm", "/mnt/hostdev/pts"] {
        let all = mounts_at(&mi, mp);
        assert!(!all.is_empty(), "{mp} missing in the container");
        for m in all {
            assert!(
                m.has_opt("ro") && m.has_opt("nosuid") && m.has_opt("noexec"),
                "{mp} lacks ro,nosuid,noexec: {m:?}"
            );
        }
    }
    // Nothing was written to the host's /dev/shm.
    assert!(!Path::new("/dev/shm/pelagos-rro").exists());
}

#[test]
fn rnorelatime_and_rnostrictatime_reach_submounts() {
    // The atime setting is one value per mount: rnorelatime leaves strictatime (mountinfo
    // shows neither relatime nor noatime), rnostrictatime the default relatime.
    let c = Container::new("fs-ratime");
    add_mount(
        &c,
        json!({"destination": "/mnt/strict", "type": "bind", "source": "/dev",
               "options": ["rbind", "rnorelatime"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/mnt/relative", "type": "bind", "source": "/dev",
               "options": ["rbind", "rnoatime", "rnostrictatime"]}),
    );
    let (_, mi) = container_mountinfo(&c, "true");
    for mp in ["/mnt/strict", "/mnt/strict/shm"] {
        let all = mounts_at(&mi, mp);
        assert!(!all.is_empty(), "{mp} missing in the container");
        for m in all {
            assert!(
                !m.has_opt("relatime") && !m.has_opt("noatime"),
                "{mp} is not strictatime: {m:?}"
            );
        }
    }
    for mp in ["/mnt/relative", "/mnt/relative/shm"] {
        let all = mounts_at(&mi, mp);
        assert!(!all.is_empty(), "{mp} missing in the container");
        for m in all {
            assert!(m.has_opt("relatime"), "{mp} is not relatime: {m:?}");
        }
    }
}

#[test]
fn tmpfs_with_size_and_mode() {
    let c = Container::new("fs-tmpfs");
    add_mount(
        &c,
        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "size=2m", "mode=1770"]}),
    );
    let (head, mi) = container_mountinfo(&c, "stat -c %a /mnt/t; echo hi > /mnt/t/f; cat /mnt/t/f");
    assert_eq!(head, "1770\nhi\n");
    let m = mount_at(&mi, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs");
    assert!(m.has_super("size=2048k"), "{m:?}");
    assert!(m.has_super("mode=1770"), "{m:?}");
    assert!(m.has_opt("nosuid") && m.has_opt("nodev"), "{m:?}");
    // The tmpfs is the container's: nothing in the rootfs directory underneath.
    assert!(!c.bundle.rootfs().join("mnt/t/f").exists());
}

#[test]
fn tmpfs_without_mode_keeps_the_mode_of_the_directory_it_covers() {
    let c = Container::new("fs-tmpfs-mode");
    std::fs::create_dir_all(c.bundle.rootfs().join("srv/data")).unwrap();
    std::fs::set_permissions(
        c.bundle.rootfs().join("srv/data"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    add_mount(
        &c,
        json!({"destination": "/srv/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/srv/fresh", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}),
    );
    let (head, _) = container_mountinfo(&c, "stat -c %a /srv/data /srv/fresh");
    // An existing directory's mode is kept; a directory made for the mount gets tmpfs's own.
    assert_eq!(
        head,
        "750
1777
"
    );
}

#[test]
fn proc_sysfs_devpts_mqueue_shm_and_dev_are_mounted() {
    let c = Container::new("fs-kernelfs");
    let (head, mi) = container_mountinfo(
        &c,
        "cat /proc/1/comm; \
         if touch /sys/kernel/pelagos 2>/dev/null; then echo SYS-WRITABLE; else echo sys-ro; fi; \
         stat -c %a /dev/shm",
    );
    assert_eq!(
        head, "sh\nsys-ro\n1777\n",
        "/proc shows the container's pid 1"
    );
    let expect = [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ];
    for (mp, fstype) in expect {
        assert_eq!(mount_at(&mi, mp).fstype, fstype, "{mp}");
    }
    let sys = mount_at(&mi, "/sys");
    assert!(
        sys.has_opt("ro") && sys.has_opt("nosuid") && sys.has_opt("noexec"),
        "{sys:?}"
    );
    let pts = mount_at(&mi, "/dev/pts");
    assert!(
        pts.has_super("ptmxmode=666") && pts.has_super("mode=620") && pts.has_super("gid=5"),
        "{pts:?}"
    );
    // tmpfs does not print its default mode (1777): `stat` above checked it.
    let shm = mount_at(&mi, "/dev/shm");
    assert!(shm.has_super("size=65536k"), "{shm:?}");
    let dev = mount_at(&mi, "/dev");
    assert!(
        dev.has_super("mode=755") && dev.has_opt("nosuid"),
        "{dev:?}"
    );
    let cg = mount_at(&mi, "/sys/fs/cgroup");
    assert!(cg.has_opt("ro"), "{cg:?}");
}

#[test]
fn cgroup2_mount_shows_the_container_cgroup_as_root() {
    let c = Container::new("fs-cgroup");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cgroup.procs; echo ---; ls /sys/fs/cgroup; echo ---; \
         grep ' /sys/fs/cgroup ' /proc/self/mountinfo; grep '^0::' /proc/self/cgroup",
    ]);
    c.create_ok();
    // On the host, the container's own cgroup holds the init.
    let pid = c.state()["pid"].as_i64().expect("pid");
    let host_procs = std::fs::read_to_string(c.cgroup_dir().join("cgroup.procs")).unwrap();
    assert_eq!(host_procs.trim(), pid.to_string());
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    let out = c.container_stdout();
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let pids: Vec<i64> = parts[0]
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    assert!(
        pids.contains(&1),
        "the container's cgroup.procs lists its pid 1: {pids:?}"
    );
    assert!(pids.len() >= 2, "sh and cat: {pids:?}");
    let listing = parts[1];
    assert!(listing.lines().any(|l| l == "cgroup.procs"), "{listing}");
    assert!(
        !listing.contains("pelagos-it") && !listing.contains(&c.id),
        "the container sees a cgroup above its own: {listing}"
    );
    let mi = parse_mountinfo(parts[2].lines().next().unwrap_or(""));
    assert_eq!(mi.len(), 1, "{}", parts[2]);
    assert_eq!(
        mi[0].root, "/",
        "the mount's root is the container's cgroup"
    );
    assert_eq!(mi[0].fstype, "cgroup2");
    assert!(parts[2].lines().any(|l| l == "0::/"), "{}", parts[2]);
}

#[test]
fn cgroup_mount_without_cgroup_namespace_binds_only_the_own_cgroup() {
    let c = Container::new("fs-cgroup-nons");
    c.bundle.edit(|cfg| {
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "cgroup");
    });
    let (head, mi) = container_mountinfo(
        &c,
        "cat /sys/fs/cgroup/cgroup.procs; echo ---; ls /sys/fs/cgroup",
    );
    let (procs, listing) = head.split_once("---\n").unwrap();
    assert!(procs.lines().any(|l| l.trim() == "1"), "{procs}");
    assert!(
        !listing.contains("pelagos-it") && !listing.contains(&c.id),
        "the container sees other cgroups: {listing}"
    );
    let m = mount_at(&mi, "/sys/fs/cgroup");
    assert_eq!(
        m.root,
        format!("{}/{}", test_cgroup_parent(), c.id),
        "{m:?}"
    );
    assert!(m.has_opt("ro"), "{m:?}");
}

#[test]
fn ro_and_noexec_are_enforced() {
    let c = Container::new("fs-opts");
    std::fs::create_dir(c.bundle.dir.join("data")).unwrap();
    add_mount(
        &c,
        json!({"destination": "/mnt/ro", "type": "bind", "source": "data", "options": ["bind", "ro"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/mnt/nx", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/mnt/ex", "type": "tmpfs", "source": "tmpfs", "options": ["exec"]}),
    );
    let out = sh(
        &c,
        "touch /mnt/ro/x; echo ro-rc=$?; \
         cp /bin/busybox /mnt/nx/; /mnt/nx/busybox true; echo nx-rc=$?; \
         cp /bin/busybox /mnt/ex/; /mnt/ex/busybox true; echo ex-rc=$?",
    );
    let stdout = out.stdout_text();
    let stderr = out.stderr_text();
    assert!(stdout.contains("ro-rc=1"), "{stdout}{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(stdout.contains("nx-rc=126"), "{stdout}{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stdout.contains("ex-rc=0"), "{stdout}{stderr}");
    assert!(!c.bundle.dir.join("data/x").exists());
}

#[test]
fn nosuid_is_enforced() {
    // A setuid-root busybox executed by uid 1000: on a suid mount the kernel marks the exec
    // secure (AT_SECURE=1, the process becomes undumpable so its auxv is unreadable); on a
    // nosuid mount the bit is ignored (AT_SECURE=0).
    let c = Container::new("fs-nosuid");
    let dir = c.bundle.dir.join("suid");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(c.bundle.rootfs().join("bin/busybox"), dir.join("busybox")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("busybox"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    add_mount(
        &c,
        json!({"destination": "/mnt/suid", "type": "bind", "source": "suid", "options": ["bind"]}),
    );
    add_mount(
        &c,
        json!({"destination": "/mnt/nosuid", "type": "bind", "source": "suid", "options": ["bind", "nosuid"]}),
    );
    c.bundle.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        cfg["process"]["noNewPrivileges"] = json!(false);
    });
    let secure = |path: &str| -> String {
        let out = sh(
            &c,
            &format!("{path} od -An -tu8 -v /proc/self/auxv 2>&1 | tr -s ' \\n' ' '"),
        );
        let text = out.stdout_text();
        let words: Vec<&str> = text.split_whitespace().collect();
        if text.contains("Permission denied") {
            return "secure".into();
        }
        match words.chunks(2).find(|kv| kv[0] == "23") {
            Some(kv) if kv.len() == 2 && kv[1] == "1" => "secure".into(),
            Some(kv) if kv.len() == 2 && kv[1] == "0" => "plain".into(),
            _ => format!("unexpected: {text} {}", out.stderr_text()),
        }
    };
    assert_eq!(secure("/mnt/suid/busybox"), "secure", "control: suid works");
    assert_eq!(secure("/mnt/nosuid/busybox"), "plain", "nosuid ignored");
}

#[test]
fn mount_propagation_options() {
    let c = Container::new("fs-prop");
    std::fs::create_dir(c.bundle.dir.join("data")).unwrap();
    for (dest, prop) in [
        ("/mnt/shared", "shared"),
        ("/mnt/private", "private"),
        ("/mnt/unbindable", "unbindable"),
        ("/mnt/rshared", "rshared"),
    ] {
        add_mount(
            &c,
            json!({"destination": dest, "type": "bind", "source": "data", "options": ["rbind", prop]}),
        );
    }
    let (_, mi) = container_mountinfo(&c, "true");
    assert!(mount_at(&mi, "/mnt/shared").shared(), "{mi:#?}");
    assert!(mount_at(&mi, "/mnt/rshared").shared(), "{mi:#?}");
    let p = mount_at(&mi, "/mnt/private");
    assert!(!p.shared() && !p.slave(), "{p:?}");
    let u = mount_at(&mi, "/mnt/unbindable");
    assert!(u.optional.iter().any(|t| t == "unbindable"), "{u:?}");
    // None of this reached the host.
    assert!(!host_mountinfo().contains(&c.id));
}

#[test]
fn readonly_root_with_writable_tmp() {
    let c = Container::new("fs-rootro");
    c.bundle.edit(|cfg| cfg["root"]["readonly"] = json!(true));
    add_mount(
        &c,
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}),
    );
    let out = sh(
        &c,
        "touch /pelagos-root; echo root-rc=$?; touch /tmp/ok && echo tmp-ok; \
         grep -c ' / / ro' /proc/self/mountinfo",
    );
    let stdout = out.stdout_text();
    assert!(
        stdout.contains("root-rc=1"),
        "{stdout}{}",
        out.stderr_text()
    );
    assert!(out.stderr_text().contains("Read-only file system"));
    assert!(stdout.contains("tmp-ok"), "{stdout}{}", out.stderr_text());
    assert!(!c.bundle.rootfs().join("pelagos-root").exists());
}

#[test]
fn rootfs_propagation_shared_slave_private() {
    for (prop, want_shared) in [("shared", true), ("slave", false), ("private", false)] {
        let c = Container::new("fs-rootprop");
        c.bundle
            .edit(|cfg| cfg["linux"]["rootfsPropagation"] = json!(prop));
        let (_, mi) = container_mountinfo(&c, "true");
        let root = mount_at(&mi, "/");
        assert_eq!(
            root.shared(),
            want_shared,
            "rootfsPropagation {prop}: {root:?}"
        );
        if prop == "private" {
            assert!(!root.slave(), "{root:?}");
        }
        assert!(!host_mountinfo().contains(&c.id), "{prop}: leaked to host");
    }
}

#[test]
fn rootfs_propagation_unknown_word_is_refused() {
    let c = Container::new("fs-rootprop-bad");
    c.bundle
        .edit(|cfg| cfg["linux"]["rootfsPropagation"] = json!("sideways"));
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("rootfsPropagation"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn masked_paths_hide_files_and_directories() {
    let c = Container::new("fs-masked");
    let rootfs = c.bundle.rootfs();
    std::fs::create_dir(rootfs.join("secretdir")).unwrap();
    std::fs::write(rootfs.join("secretdir/key"), "s3cret\n").unwrap();
    std::fs::write(rootfs.join("etc/secret.conf"), "s3cret\n").unwrap();
    c.bundle.edit(|cfg| {
        let m = cfg["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.push(json!("/secretdir"));
        m.push(json!("/etc/secret.conf"));
        m.push(json!("/does/not/exist"));
    });
    let (head, mi) = container_mountinfo(
        &c,
        "for f in /proc/kcore /proc/keys /proc/timer_list; do \
           test -e $f && echo \"$f $(wc -c < $f) $(stat -c %t:%T $f)\"; done; \
         ls -A /proc/acpi | wc -l; \
         ls -A /secretdir | wc -l; wc -c < /etc/secret.conf; \
         if touch /secretdir/x 2>/dev/null; then echo DIR-WRITABLE; else echo dir-ro; fi",
    );
    let lines: Vec<&str> = head.lines().map(str::trim).collect();
    // /proc/kcore only exists with CONFIG_PROC_KCORE; the others always do.
    let want_files: Vec<String> = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .iter()
        .filter(|f| Path::new(f).exists())
        .map(|f| format!("{f} 0 1:3"))
        .collect();
    let n = want_files.len();
    assert!(n >= 2, "host lacks /proc/keys and /proc/timer_list?");
    assert_eq!(lines[..n], want_files[..], "{head}");
    assert_eq!(lines[n..], ["0", "0", "0", "dir-ro"], "{head}");
    let d = mount_at(&mi, "/secretdir");
    assert_eq!(d.fstype, "tmpfs");
    assert!(d.has_opt("ro"), "{d:?}");
    // The image's files are untouched underneath.
    assert_eq!(
        std::fs::read_to_string(rootfs.join("secretdir/key")).unwrap(),
        "s3cret\n"
    );
    assert!(
        !rootfs.join("does").exists(),
        "a missing masked path is skipped, not created"
    );
}

#[test]
fn readonly_paths_cannot_be_written() {
    let c = Container::new("fs-ropaths");
    std::fs::create_dir(c.bundle.rootfs().join("data")).unwrap();
    c.bundle.edit(|cfg| {
        cfg["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/data"));
        // Even with CAP_SYS_ADMIN, the mount itself is what refuses the write.
        cfg["process"]["capabilities"] = json!({
            "bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"],
            "permitted": ["CAP_SYS_ADMIN"]
        });
    });
    let (head, mi) = container_mountinfo(
        &c,
        "echo pelagos > /proc/sys/kernel/domainname; echo sys-rc=$?; \
         touch /data/x; echo data-rc=$?",
    );
    assert!(
        head.contains("sys-rc=") && !head.contains("sys-rc=0"),
        "{head}"
    );
    assert!(head.contains("data-rc=1"), "{head}");
    for mp in ["/proc/sys", "/data", "/proc/sysrq-trigger", "/proc/irq"] {
        if mp.starts_with("/proc/") && !Path::new(mp).exists() {
            continue; // not built into this kernel
        }
        assert!(mount_at(&mi, mp).has_opt("ro"), "{mp}");
    }
    let out = sh(&c, "echo pelagos > /proc/sys/kernel/domainname");
    assert!(
        out.stderr_text().contains("Read-only file system"),
        "{}",
        out.stderr_text()
    );
    assert!(!c.bundle.rootfs().join("data/x").exists());
}

#[test]
fn default_devices_exist_with_right_numbers_and_modes() {
    let c = Container::new("fs-devices");
    let out = sh_ok(
        &c,
        "stat -c '%n %F %t:%T %a %u:%g' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; \
         head -c 5 /dev/zero | wc -c; \
         if echo x 2>/dev/null > /dev/full; then echo FULL-ACCEPTS; else echo full-enospc; fi",
    );
    let want = "/dev/null character special file 1:3 666 0:0\n\
                /dev/zero character special file 1:5 666 0:0\n\
                /dev/full character special file 1:7 666 0:0\n\
                /dev/random character special file 1:8 666 0:0\n\
                /dev/urandom character special file 1:9 666 0:0\n\
                /dev/tty character special file 5:0 666 0:0\n\
                5\nfull-enospc\n";
    assert_eq!(out, want);
}

#[test]
fn custom_devices_from_linux_devices() {
    let c = Container::new("fs-customdev");
    c.bundle.edit(|cfg| {
        cfg["linux"]["devices"] = json!([
            {"path": "/dev/myfull", "type": "c", "major": 1, "minor": 7,
             "fileMode": 0o640, "uid": 1000, "gid": 1001},
            {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5},
            {"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 0o600}
        ]);
    });
    let out = sh(
        &c,
        "stat -c '%n %F %t:%T %a %u:%g' /dev/myfull /dev/sub/myzero /dev/myfifo; \
         head -c 3 /dev/sub/myzero | wc -c; \
         echo x > /dev/myfull",
    );
    let want = "/dev/myfull character special file 1:7 640 1000:1001\n\
                /dev/sub/myzero character special file 1:5 666 0:0\n\
                /dev/myfifo fifo 0:0 600 0:0\n\
                3\n";
    assert_eq!(out.stdout_text(), want, "{}", out.stderr_text());
    // Mode 0640 owned by 1000:1001: root without CAP_DAC_OVERRIDE may not open it.
    assert!(
        out.stderr_text().contains("Permission denied"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn dev_pts_ptmx_and_fd_symlinks() {
    let c = Container::new("fs-devlinks");
    let out = sh_ok(
        &c,
        "for l in ptmx fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done; \
         ls /dev/pts; test -c /dev/pts/ptmx && echo ptmx-char",
    );
    let want = "ptmx -> pts/ptmx\nfd -> /proc/self/fd\nstdin -> /proc/self/fd/0\n\
                stdout -> /proc/self/fd/1\nstderr -> /proc/self/fd/2\nptmx\nptmx-char\n";
    assert_eq!(out, want);
}

#[test]
fn namespaced_sysctls_are_set_in_the_container_only() {
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shmmax = std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap();
    let want_fwd = if host_fwd.trim() == "1" { "0" } else { "1" };
    let c = Container::new("fs-sysctl");
    c.bundle.edit(|cfg| {
        cfg["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": want_fwd,
            "kernel.shmmax": "123456789"
        });
    });
    let out = sh_ok(
        &c,
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    assert_eq!(out, format!("{want_fwd}\n123456789\n"));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmax").unwrap(),
        host_shmmax
    );
}

#[test]
fn host_wide_sysctls_are_refused() {
    // Values equal to the host's current ones, so even a runtime that wrote them would change
    // nothing.
    let panic = std::fs::read_to_string("/proc/sys/kernel/panic").unwrap();
    let fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let c = Container::new("fs-sysctl-host");
    c.bundle
        .edit(|cfg| cfg["linux"]["sysctl"] = json!({"kernel.panic": panic.trim()}));
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("kernel.panic"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();

    let c = Container::new("fs-sysctl-nonet");
    c.bundle.edit(|cfg| {
        cfg["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": fwd.trim()});
        cfg["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "network");
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("net.ipv4.ip_forward"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn hostname_and_domainname_sysctls_are_refused() {
    // They conflict with the config's own hostname/domainname fields (runc refuses
    // kernel.hostname for that reason); refused at create even with a new uts namespace.
    for (key, field) in [
        ("kernel.hostname", "hostname"),
        ("kernel/domainname", "domainname"),
    ] {
        let c = Container::new("fs-sysctl-uts");
        c.bundle
            .edit(|cfg| cfg["linux"]["sysctl"] = json!({key: "from-sysctl"}));
        let out = c.create();
        let line = assert_one_line_error(&out, key);
        assert!(line.contains("conflicts") && line.contains(field), "{line}");
        c.assert_gone();
    }
}

#[test]
fn hostname_and_domainname() {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let c = Container::new("fs-uts");
    c.bundle.edit(|cfg| {
        cfg["hostname"] = json!("box-one");
        cfg["domainname"] = json!("pelagos.example");
    });
    let out = sh_ok(&c, "hostname; cat /proc/sys/kernel/domainname; uname -n");
    assert_eq!(out, "box-one\npelagos.example\nbox-one\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
}

#[test]
fn no_pivot_run_works() {
    let c = Container::new("fs-nopivot");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "test -e /bin/busybox && echo in-rootfs; test -e /etc/debian_version && echo HOST-VISIBLE; \
         cat /proc/1/comm; echo done > /tmp/nopivot",
    ]);
    let out = c.rt(&["run", "--no-pivot", &c.id]);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "in-rootfs\nsh\n");
    assert_eq!(
        std::fs::read_to_string(c.bundle.rootfs().join("tmp/nopivot")).unwrap(),
        "done\n"
    );
    c.assert_gone();
}

#[test]
fn symlink_at_mount_destination_stays_in_the_rootfs() {
    let c = Container::new("fs-symlink-dest");
    let evil = format!("pelagos-evil-{}", c.id);
    let host_target = Path::new("/etc").join(&evil);
    std::fs::create_dir(c.bundle.rootfs().join("mnt")).unwrap();
    std::os::unix::fs::symlink("/etc", c.bundle.rootfs().join("mnt/x")).unwrap();
    std::fs::create_dir(c.bundle.dir.join("data")).unwrap();
    std::fs::write(c.bundle.dir.join("data/marker"), "bundle-data\n").unwrap();
    add_mount(
        &c,
        json!({"destination": format!("/mnt/x/{evil}"), "type": "bind", "source": "data", "options": ["rbind"]}),
    );
    let etc_before: Vec<_> = std::fs::read_dir("/etc")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out = sh(&c, &format!("cat /etc/{evil}/marker"));
    // Either refused or mounted inside the rootfs; never on the host.
    assert!(
        !host_target.exists(),
        "the runtime created {} on the host",
        host_target.display()
    );
    assert!(!host_mountinfo().contains(&evil), "mounted on the host");
    if out.status.success() {
        assert_eq!(out.stdout_text(), "bundle-data\n");
        assert!(c.bundle.rootfs().join("etc").join(&evil).is_dir());
    } else {
        assert!(!out.stderr_text().is_empty());
    }
    let etc_after: Vec<_> = std::fs::read_dir("/etc")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(!etc_after
        .iter()
        .any(|n| n.to_string_lossy().contains("pelagos-evil")));
    assert!(etc_after.len() <= etc_before.len() + 1, "host /etc grew");
}

#[test]
fn proc_as_a_symlink_is_refused() {
    let c = Container::new("fs-proc-symlink");
    let rootfs = c.bundle.rootfs();
    std::fs::remove_dir(rootfs.join("proc")).unwrap();
    std::fs::create_dir(rootfs.join("fakeproc")).unwrap();
    std::os::unix::fs::symlink("/fakeproc", rootfs.join("proc")).unwrap();
    let out = c.create();
    assert!(
        !out.status.success(),
        "create with /proc a symlink succeeded"
    );
    let err = out.stderr_text();
    assert!(
        err.contains("/proc") && err.contains("symlink"),
        "error should name /proc and the symlink: {err}"
    );
    c.assert_gone();
    // Nothing was mounted through the link.
    assert_eq!(
        std::fs::read_dir(rootfs.join("fakeproc")).unwrap().count(),
        0
    );
}

#[test]
fn dotdot_in_bind_destination_stays_inside() {
    let c = Container::new("fs-dotdot");
    let name = format!("pelagos-dotdot-{}", c.id);
    std::fs::create_dir(c.bundle.dir.join("data")).unwrap();
    std::fs::write(c.bundle.dir.join("data/marker"), "inside\n").unwrap();
    add_mount(
        &c,
        json!({"destination": format!("/mnt/../../../../../../tmp/{name}"), "type": "bind",
               "source": "data", "options": ["bind"]}),
    );
    let out = sh(&c, &format!("cat /tmp/{name}/marker"));
    let host = std::env::temp_dir().join(&name);
    let host_root = Path::new("/tmp").join(&name);
    assert!(!host.exists() && !host_root.exists(), "created on the host");
    assert!(!host_mountinfo().contains(&name), "mounted on the host");
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "inside\n");
    assert!(c.bundle.rootfs().join("tmp").join(&name).is_dir());
}

#[test]
fn bind_through_a_symlink_into_proc_sys_is_refused() {
    // The image has /pp -> /proc/sys; a bind mount at /pp/kernel/domainname would cover a
    // procfs file. runc (1.1.12, 1.2) allows only a short list of /proc files as mount
    // targets, and judges the destination where it really leads.
    let c = Container::new("fs-proc-through-link");
    std::os::unix::fs::symlink("/proc/sys", c.bundle.rootfs().join("pp")).unwrap();
    std::fs::write(c.bundle.dir.join("fake"), "fake\n").unwrap();
    add_mount(
        &c,
        json!({"destination": "/pp/kernel/domainname", "type": "bind",
               "source": "fake", "options": ["bind"]}),
    );
    let out = c.create();
    let line = assert_one_line_error(&out, "/pp/kernel/domainname");
    assert!(
        line.contains("inside /proc") && line.contains("/proc/sys/kernel/domainname"),
        "{line}"
    );
    c.assert_gone();
}

#[test]
fn mounts_on_proc_follow_runc_rules() {
    // A tmpfs on /proc itself is refused: only proc (or a bind of a procfs) goes there.
    let c = Container::new("fs-proc-tmpfs");
    c.bundle.edit(|cfg| {
        let mounts = cfg["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["destination"] != "/proc");
        mounts.insert(
            0,
            json!({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let out = c.create();
    let line = assert_one_line_error(&out, "/proc");
    assert!(line.contains("only a proc mount"), "{line}");
    c.assert_gone();

    // A tmpfs over /proc/sys is refused; a bind over /proc/uptime (lxcfs's use) works.
    let c = Container::new("fs-proc-sys-tmpfs");
    add_mount(
        &c,
        json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
    );
    let out = c.create();
    let line = assert_one_line_error(&out, "/proc/sys");
    assert!(line.contains("inside /proc"), "{line}");
    c.assert_gone();

    let c = Container::new("fs-proc-uptime");
    std::fs::write(c.bundle.dir.join("uptime"), "12345.67 890.12\n").unwrap();
    add_mount(
        &c,
        json!({"destination": "/proc/uptime", "type": "bind",
               "source": "uptime", "options": ["bind", "ro"]}),
    );
    assert_eq!(sh_ok(&c, "cat /proc/uptime"), "12345.67 890.12\n");
}

#[test]
fn dangling_symlink_at_a_mount_destination_is_named() {
    // /link -> /nowhere/at/all: a bind mount at /link/file fails with an error naming the
    // destination and the dangling link; nothing is created at the link's target.
    let c = Container::new("fs-dangling");
    let rootfs = c.bundle.rootfs();
    std::os::unix::fs::symlink("/nowhere/at/all", rootfs.join("link")).unwrap();
    std::fs::write(c.bundle.dir.join("file"), "x\n").unwrap();
    add_mount(
        &c,
        json!({"destination": "/link/file", "type": "bind",
               "source": "file", "options": ["bind"]}),
    );
    let out = c.create();
    let line = assert_one_line_error(&out, "/link/file");
    assert!(
        line.contains("dangling") && line.contains("/link") && line.contains("/nowhere/at/all"),
        "{line}"
    );
    c.assert_gone();
    assert!(
        !rootfs.join("nowhere").exists(),
        "created at the link's target"
    );
}
