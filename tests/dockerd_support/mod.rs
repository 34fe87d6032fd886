//! Harness for the pelagos-dockerd tests: a daemon per test on its own socket, data root,
//! exec root, pid file and cgroup parent; the real docker CLI 28 pointed at it; a registry
//! with locally built images; and cleanup of everything the daemon's containers made, also
//! when a test fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use pelagos_testkit::netns::NetnsHolder;
use pelagos_testkit::registry::{Auth, Registry};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The docker CLI 28 these hosts carry, before Debian's 20.10 client on the PATH.
pub fn docker_cli() -> &'static str {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the docker CLI is installed on these hosts (/usr/local/bin/docker)")
}

/// A binary built beside pelagos-dockerd (`cargo build --workspace` runs before the tests).
pub fn sibling(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_pelagos-dockerd")).with_file_name(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// One test's daemon.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub config_file: PathBuf,
    pub docker_config: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    pub netns: Option<NetnsHolder>,
    child: Option<Child>,
}

/// How to start a daemon.
#[derive(Default)]
pub struct Options {
    /// In a network namespace of the test's own (bridges and ports allowed); otherwise the
    /// configuration says `default_network = "none"`.
    pub netns: bool,
    /// Extra text for config.toml.
    pub config: String,
    /// Extra daemon flags.
    pub flags: Vec<String>,
}

impl Daemon {
    /// A daemon with default options.
    pub fn start() -> Daemon {
        Daemon::start_with(Options::default())
    }

    /// A daemon with `options`, answering `/_ping` before this returns.
    pub fn start_with(options: Options) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("pelagos-dockerd-it-")
            .tempdir()
            .expect("tempdir");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let mut d = Daemon {
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            config_file: dir.path().join("config.toml"),
            docker_config: dir.path().join("docker-config"),
            socket: dir.path().join("docker.sock"),
            cgroup_parent: format!("/pelagos-it-dockerd-{}-{n}", std::process::id()),
            netns: options.netns.then(NetnsHolder::start),
            dir,
            child: None,
        };
        std::fs::create_dir_all(&d.docker_config).expect("docker config dir");
        let host_safe = if d.netns.is_some() {
            ""
        } else {
            "default_network = \"none\"\n"
        };
        let config = if options.config.contains("[network]\n") {
            options
                .config
                .replacen("[network]\n", &format!("[network]\n{host_safe}"), 1)
        } else {
            format!("[network]\n{host_safe}{}", options.config)
        };
        std::fs::write(&d.config_file, config).expect("write config.toml");
        d.spawn(&options.flags);
        d
    }

    fn spawn(&mut self, flags: &[String]) {
        let program = sibling("pelagos-dockerd");
        let mut c = match &self.netns {
            Some(h) => h.cmd(&program),
            None => Command::new(&program),
        };
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.root)
            .arg("--exec-root")
            .arg(&self.runroot)
            .arg("--config-file")
            .arg(&self.config_file)
            .arg("--pidfile")
            .arg(self.dir.path().join("dockerd.pid"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .args(flags)
            .env("PELAGOS_MONITOR", sibling("pelagos-monitor"))
            .env_remove("PELAGOS_ROOT")
            .env_remove("PELAGOS_RUNROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("dockerd.log")).expect("log"));
        self.child = Some(c.spawn().expect("spawn pelagos-dockerd"));
        self.wait_until_serving();
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("pelagos-dockerd exited ({status}): {}", self.log());
            }
            if self.socket.exists() {
                if let Ok(out) = self
                    .docker(&["version", "--format", "{{.Server.APIVersion}}"])
                    .output()
                {
                    if out.status.success() {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "pelagos-dockerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Kills the daemon with `signal` and waits for it (its containers keep running).
    pub fn stop_daemon(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) of our own child by pid; no memory is involved.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same socket and roots (after [`Daemon::stop_daemon`]).
    pub fn restart_daemon(&mut self) {
        self.stop_daemon(libc::SIGTERM);
        self.spawn(&[]);
    }

    /// The docker CLI against this daemon (its own client config dir).
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut c = Command::new(docker_cli());
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs the docker CLI; its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.docker(args).output().expect("spawn docker")
    }

    /// Runs the docker CLI, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}): {}{}\n--- daemon log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the docker CLI, which must fail; its exit code and stderr.
    pub fn fail(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "docker {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The `pelagos` CLI on the same data root (the daemon and the CLI share everything).
    pub fn pelagos(&self, args: &[&str]) -> Command {
        let mut c = match &self.netns {
            Some(h) => h.cmd(sibling("pelagos")),
            None => Command::new(sibling("pelagos")),
        };
        c.env("PELAGOS_MONITOR", sibling("pelagos-monitor"))
            .env("PELAGOS_ROOT", &self.root)
            .env("PELAGOS_RUNROOT", &self.runroot)
            .env("PELAGOS_CONFIG", &self.config_file)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("PELAGOS_CGROUP_PARENT", &self.cgroup_parent)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Pulls `image` into the daemon's store with the `pelagos` CLI run in the machine's own
    /// network namespace: a daemon in a test netns cannot reach the registry on the host's
    /// loopback, but shares the store with the CLI.
    pub fn pull_on_host(&self, image: &str) {
        let out = Command::new(sibling("pelagos"))
            .env("PELAGOS_ROOT", &self.root)
            .env("PELAGOS_RUNROOT", &self.runroot)
            .env("PELAGOS_CONFIG", &self.config_file)
            .env("DOCKER_CONFIG", &self.docker_config)
            .args(["pull", "-q", image])
            .stdin(Stdio::null())
            .output()
            .expect("spawn pelagos pull");
        assert!(
            out.status.success(),
            "pelagos pull {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Raw HTTP over the socket (`curl --unix-socket`): status code and body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(&self.socket)
            .arg(format!("http://localhost{path}"));
        match method {
            // -X HEAD would wait for a body that never comes.
            "HEAD" => c.arg("--head"),
            _ => c.args(["-X", method]),
        };
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = c.output().expect("spawn curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Nothing of a container is left: no mount under our dir, no record, no runtime state,
    /// no monitor socket, no cgroup.
    pub fn assert_no_container_leftovers(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let ours = self.dir.path().to_string_lossy().into_owned();
        let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&ours)).collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:?}");
        assert!(
            names(&self.root.join("containers")).is_empty(),
            "container records left"
        );
        let sockets = names(&self.runroot.join("m"));
        assert!(sockets.is_empty(), "monitor sockets left: {sockets:?}");
        let cg =
            Path::new("/sys/fs/cgroup/unified").join(self.cgroup_parent.trim_start_matches('/'));
        assert!(!cg.exists(), "cgroup {} left", cg.display());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_daemon(libc::SIGTERM);
        // The containers outlive the daemon (their monitors own them): remove them through
        // the CLI, then whatever a failed test left mounted or in cgroups.
        if let Ok(out) = self.pelagos(&["ps", "-aq"]).output() {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = self.pelagos(&["rm", "-f"]).args(&ids).output();
            }
        }
        let _ = self.pelagos(&["network", "prune", "-f"]).output();
        let ours = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            for mp in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
                if mp.starts_with(&ours) {
                    let _ = nix_umount(mp);
                }
            }
        }
        let cg =
            Path::new("/sys/fs/cgroup/unified").join(self.cgroup_parent.trim_start_matches('/'));
        if let Ok(entries) = std::fs::read_dir(&cg) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::write(e.path().join("cgroup.kill"), "1");
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&cg);
    }
}

fn nix_umount(path: &str) -> std::io::Result<()> {
    let c = std::ffi::CString::new(path)
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: umount2 with a valid NUL-terminated path; no memory is shared.
    match unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// A registry serving busybox as `box:1` (`Cmd ["sh"]`); `image` is its reference.
pub struct ServedBusybox {
    pub registry: Registry,
    pub layouts: tempfile::TempDir,
    pub image: String,
}

/// Starts a registry with busybox pushed as `HOST/box:1`.
pub fn served_busybox() -> ServedBusybox {
    let image = pelagos_testkit::images::busybox()
        .expect("build busybox")
        .cmd(["sh"]);
    let registry = Registry::start(Auth::None).expect("start registry");
    let layouts = tempfile::tempdir().expect("tempdir");
    let dir = layouts.path().join("box");
    image.write(&dir, "1").expect("write layout");
    let reference = format!("{}/box:1", registry.host());
    pelagos_testkit::images::skopeo_push(&dir, "1", &reference, &[]).expect("push image");
    ServedBusybox {
        registry,
        layouts,
        image: reference,
    }
}

/// Polls `done` until it holds, failing after 60 s (a loaded machine is slow, never wrong).
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
