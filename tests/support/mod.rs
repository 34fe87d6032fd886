//! Test harness for integration tests: busybox bundles in private temp dirs, a private state
//! root and cgroup per container, the runtime binary driven through its CLI, and cleanup on
//! drop (also when the test fails).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::{json, Value};

/// The binary under test.
pub fn runtime_bin() -> PathBuf {
    std::env::var_os("PELAGOS_TEST_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pelagos-runtime")))
}

/// The cgroup2 mount (hybrid hosts: /sys/fs/cgroup/unified).
pub fn cgroup2_root() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in info.lines() {
        if let Some((_, post)) = line.split_once(" - ") {
            if post.starts_with("cgroup2 ") {
                if let Some(mp) = line.split(' ').nth(4) {
                    return PathBuf::from(mp);
                }
            }
        }
    }
    PathBuf::from("/sys/fs/cgroup")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique name for this test process and call.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// The parent cgroup all test containers of this process live under.
pub fn test_cgroup_parent() -> String {
    format!("/pelagos-it-{}", std::process::id())
}

/// A busybox root filesystem, made once per test process and copied per bundle.
fn busybox_template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Under cargo's temp dir for integration tests (target/tmp), not /tmp. Templates of
        // earlier test processes that are gone are removed here, since a test process has no
        // hook that runs at its exit.
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        if let Ok(entries) = std::fs::read_dir(base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("pelagos-it-rootfs-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = base.join(format!("pelagos-it-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir rootfs");
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox-static is required: apt-get install busybox-static");
        std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
        let list = Command::new(bin.join("busybox"))
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
        for d in ["proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(dir.join(d)).expect("mkdir");
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.join("etc/group"), "root:x:0:\nnobody:x:65534:\n").expect("group");
        dir
    })
}

/// A bundle directory with a busybox rootfs and an editable config.
pub struct Bundle {
    pub dir: PathBuf,
    pub config: std::cell::RefCell<Value>,
}

impl Bundle {
    pub fn busybox(id: &str) -> Bundle {
        let dir = std::env::temp_dir().join(format!("pelagos-it-bundle-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir bundle");
        let status = Command::new("cp")
            .args(["-a"])
            .arg(busybox_template())
            .arg(dir.join("rootfs"))
            .status()
            .expect("cp rootfs");
        assert!(status.success());
        let config = default_config(&format!("{}/{id}", test_cgroup_parent()));
        let b = Bundle {
            dir,
            config: std::cell::RefCell::new(config),
        };
        b.save();
        b
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    pub fn save(&self) {
        let text = serde_json::to_string_pretty(&*self.config.borrow()).expect("json");
        std::fs::write(self.dir.join("config.json"), text).expect("write config");
    }

    /// Edit the config and save it.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config.borrow_mut());
        self.save();
    }

    pub fn set_args(&self, args: &[&str]) {
        self.edit(|c| c["process"]["args"] = json!(args));
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// runc-like default config: every namespace but user and time, the usual mounts, Docker's
/// masked and read-only paths.
pub fn default_config(cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "pelagos-test",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// The output of one runtime call, with text helpers.
pub trait OutputText {
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
}

impl OutputText for Output {
    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One container under test: its own id, state root, bundle and cgroup. Dropping it force-
/// deletes the container and removes everything the test made.
pub struct Container {
    pub id: String,
    pub root: PathBuf,
    pub bundle: Bundle,
}

impl Container {
    pub fn new(name: &str) -> Container {
        let id = unique(name);
        let root = std::env::temp_dir().join(format!("pelagos-it-root-{id}"));
        let bundle = Bundle::busybox(&id);
        Container { id, root, bundle }
    }

    /// Run the runtime with `--root` set and the bundle as working directory.
    pub fn rt(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn runtime")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runtime_bin());
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle.dir);
        cmd
    }

    /// Run and require success; returns stdout.
    pub fn rt_ok(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            out.status.success(),
            "pelagos-runtime {args:?} failed ({:?}): {}",
            out.status,
            out.stderr_text()
        );
        out.stdout_text()
    }

    /// `create` with the bundle; stdio of the container goes to files in the bundle dir.
    pub fn create(&self) -> Output {
        let stdout = std::fs::File::create(self.bundle.dir.join("stdout")).expect("stdout file");
        let stderr = std::fs::File::create(self.bundle.dir.join("stderr")).expect("stderr file");
        let mut cmd = self.command(&["create", "--bundle"]);
        cmd.arg(&self.bundle.dir).arg(&self.id);
        cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let status = cmd.status().expect("spawn runtime");
        let read = |name: &str| std::fs::read(self.bundle.dir.join(name)).unwrap_or_default();
        Output {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }

    pub fn create_ok(&self) {
        let out = self.create();
        assert!(out.status.success(), "create failed: {}", out.stderr_text());
    }

    /// What the container printed so far (for create/start: captured in files).
    pub fn container_stdout(&self) -> String {
        std::fs::read_to_string(self.bundle.dir.join("stdout")).unwrap_or_default()
    }

    pub fn state(&self) -> Value {
        serde_json::from_str(&self.rt_ok(&["state", &self.id])).expect("state json")
    }

    pub fn status(&self) -> String {
        self.state()["status"].as_str().unwrap_or("").to_string()
    }

    /// Wait until the status is `want` (bounded).
    pub fn wait_status(&self, want: &str) {
        for _ in 0..500 {
            if self.status() == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {} never reached status {want}", self.id);
    }

    pub fn cgroup_dir(&self) -> PathBuf {
        cgroup2_root().join(format!("{}/{}", test_cgroup_parent(), self.id).trim_start_matches('/'))
    }

    /// Nothing of the container is left: no state dir, no cgroup.
    pub fn assert_gone(&self) {
        assert!(!self.root.join(&self.id).exists(), "state dir left behind");
        assert!(
            !self.cgroup_dir().exists(),
            "cgroup left behind: {}",
            self.cgroup_dir().display()
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.rt(&["delete", "--force", &self.id]);
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir(self.cgroup_dir());
        // The per-process parent goes when its last container does.
        let _ =
            std::fs::remove_dir(cgroup2_root().join(test_cgroup_parent().trim_start_matches('/')));
    }
}

// ---- Helpers for the lifecycle, hooks and errors tests (appended) ----

/// Poll `f` every 10 ms for up to 5 s; panic naming `what` if it never holds.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// Whether `pid` is a live (not zombie) process on the host.
pub fn pid_alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Host pids (other than ours) with `arg` as one whole argument of their command line: the
/// parked init of a container is a copy of `pelagos-runtime create ... ID`, so a leftover init
/// or hook of a failed create shows up here.
pub fn pids_with_arg(arg: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me || !pid_alive(pid.into()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// A failed runtime call as callers expect it: exit code 1 and exactly one line on stderr,
/// which contains `words`. Returns that line.
pub fn assert_one_line_error(out: &Output, words: &str) -> String {
    let err = out.stderr_text();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1, got {:?}; stderr: {err}",
        out.status
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err:?}");
    assert!(
        lines[0].contains(words),
        "error line does not contain {words:?}: {}",
        lines[0]
    );
    lines[0].to_string()
}

static RT_FILES: AtomicUsize = AtomicUsize::new(0);

impl Container {
    /// Run the runtime with its stdout/stderr in fresh files of the bundle dir (for calls that
    /// leave a process holding their stdio, such as `run -d` and `exec -d`, where a pipe would
    /// never reach end-of-file). Returns what was written by the time the call returned.
    pub fn rt_files(&self, args: &[&str]) -> Output {
        let n = RT_FILES.fetch_add(1, Ordering::SeqCst);
        let out_path = self.bundle.dir.join(format!("rt-{n}.out"));
        let err_path = self.bundle.dir.join(format!("rt-{n}.err"));
        let stdout = std::fs::File::create(&out_path).expect("stdout file");
        let stderr = std::fs::File::create(&err_path).expect("stderr file");
        let status = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .expect("spawn runtime");
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    /// The init's host pid from `state`.
    pub fn pid(&self) -> i64 {
        self.state()["pid"].as_i64().unwrap_or(0)
    }
}

/// Run `script` with `sh -c` in the container (`run`, foreground); returns the output.
pub fn sh(c: &Container, script: &str) -> Output {
    c.bundle.set_args(&["sh", "-c", script]);
    c.rt(&["run", &c.id])
}

/// Like [`sh`], but the run must exit 0; returns stdout.
pub fn sh_ok(c: &Container, script: &str) -> String {
    let out = sh(c, script);
    assert!(
        out.status.success(),
        "container script failed ({:?})\nscript: {script}\nstdout: {}\nstderr: {}",
        out.status,
        out.stdout_text(),
        out.stderr_text()
    );
    out.stdout_text()
}
