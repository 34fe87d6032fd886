//! Harness for the `pelagos` CLI tests: a private store, state and cgroup parent per test,
//! a real registry with locally built images, and checks that nothing is left behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use pelagos_testkit::images::{BuiltImage, ImageBuilder};
use pelagos_testkit::registry::{Auth, Registry};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One test's world: its own --root, --runroot, client config and cgroup parent.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub runroot: PathBuf,
    pub config_dir: PathBuf,
    pub engine_config: PathBuf,
    pub cgroup_parent: String,
    /// Set by [`Env::in_new_netns`]: every `pelagos` runs in this holder's network namespace.
    pub netns: Option<NetnsHolder>,
}

pub use pelagos_testkit::netns::NetnsHolder;

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("pelagos-cli-")
            .tempdir()
            .expect("tempdir");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let env = Env {
            root: dir.path().join("root"),
            runroot: dir.path().join("run"),
            config_dir: dir.path().join("docker-config"),
            engine_config: dir.path().join("config.toml"),
            cgroup_parent: format!("/pelagos-it-cli-{}-{n}", std::process::id()),
            dir,
            netns: None,
        };
        std::fs::create_dir_all(&env.config_dir).expect("config dir");
        env.write_config("");
        env
    }

    /// Writes the engine's configuration file. Outside [`Env::in_new_netns`] it also says
    /// `default_network = "none"`: a container created without `--network` must not make the
    /// default bridge (and its NAT rules) in the machine's own network namespace.
    pub fn write_config(&self, text: &str) {
        const HOST_SAFE: &str = "default_network = \"none\"\n";
        let text = match (&self.netns, text.contains("[network]\n")) {
            (Some(_), _) => text.to_string(),
            (None, true) => text.replacen("[network]\n", &format!("[network]\n{HOST_SAFE}"), 1),
            (None, false) => format!("[network]\n{HOST_SAFE}{text}"),
        };
        std::fs::write(&self.engine_config, text).expect("write the engine's config");
    }

    /// From now on every `pelagos` (and so every monitor, which inherits it) runs in a new
    /// network namespace of the test's own: bridges, veths and nft tables live and die there.
    /// Pull images first: the registry is reachable from the test's own namespace only.
    pub fn in_new_netns(mut self) -> Env {
        self.netns = Some(NetnsHolder::start());
        // Docker's default network again: its bridge is made in the test's namespace.
        self.write_config("");
        self
    }

    /// The holder of [`Env::in_new_netns`].
    pub fn holder(&self) -> &NetnsHolder {
        self.netns.as_ref().expect("Env::in_new_netns first")
    }

    /// `pelagos` with this env's paths (in the env's netns, if it has one).
    pub fn cmd(&self) -> Command {
        let mut c = match &self.netns {
            Some(holder) => holder.cmd(env!("CARGO_BIN_EXE_pelagos")),
            None => Command::new(env!("CARGO_BIN_EXE_pelagos")),
        };
        c.env("PELAGOS_MONITOR", monitor_program())
            .env("PELAGOS_ROOT", &self.root)
            .env("PELAGOS_RUNROOT", &self.runroot)
            .env("PELAGOS_CONFIG", &self.engine_config)
            .env("DOCKER_CONFIG", &self.config_dir)
            .env("PELAGOS_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn pelagos")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pelagos {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects failure; returns (exit code, stderr).
    pub fn fail(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "pelagos {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn image_dir(&self) -> PathBuf {
        self.root.join("image")
    }

    /// Files (not directories) under the store's blobs/ and layers/sha256/.
    pub fn committed_blobs(&self) -> Vec<String> {
        list(&self.image_dir().join("blobs/sha256"))
    }

    pub fn committed_layers(&self) -> Vec<String> {
        list(&self.image_dir().join("layers/sha256"))
    }

    /// Nothing of a container is left: no mount under our dir, no record, no runtime state,
    /// no cgroup.
    pub fn assert_no_container_leftovers(&self) {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let ours = self.dir.path().to_string_lossy().into_owned();
        let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&ours)).collect();
        assert!(leaked.is_empty(), "mounts left: {leaked:?}");
        assert!(
            list(&self.root.join("containers")).is_empty(),
            "container records left"
        );
        let state: Vec<String> = list(&self.runroot)
            .into_iter()
            .filter(|n| n != "m")
            .collect();
        assert!(state.is_empty(), "runtime state left: {state:?}");
        let sockets = list(&self.runroot.join("m"));
        assert!(sockets.is_empty(), "monitor sockets left: {sockets:?}");
        let cg =
            Path::new("/sys/fs/cgroup/unified").join(self.cgroup_parent.trim_start_matches('/'));
        assert!(!cg.exists(), "cgroup {} left", cg.display());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Unmount whatever a failed test left under our directory, then the cgroup parent.
        let ours = self.dir.path().to_string_lossy().into_owned();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") {
            for mp in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
                if mp.starts_with(&ours) {
                    let _ = nix::mount::umount2(mp, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        let cg =
            Path::new("/sys/fs/cgroup/unified").join(self.cgroup_parent.trim_start_matches('/'));
        if let Ok(entries) = std::fs::read_dir(&cg) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    let _ = std::fs::write(e.path().join("cgroup.kill"), "1");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let _ = std::fs::remove_dir(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&cg);
    }
}

/// The `pelagos-monitor` program beside the `pelagos` under test (built by
/// `cargo build --workspace`, which scripts/test runs first).
pub fn monitor_program() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_pelagos")).with_file_name("pelagos-monitor");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p pelagos-monitor` first",
        path.display()
    );
    path
}

fn list(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// A registry serving the given images (`name:tag` each), with their layouts kept alive.
pub struct Served {
    pub registry: Registry,
    pub layouts: tempfile::TempDir,
    pub built: Vec<BuiltImage>,
}

impl Served {
    pub fn start(auth: Auth, images: &[(&ImageBuilder, &str)]) -> Served {
        let registry = Registry::start(auth).expect("start registry");
        let layouts = tempfile::tempdir().expect("tempdir");
        let mut built = Vec::new();
        for (i, (image, name_tag)) in images.iter().enumerate() {
            let dir = layouts.path().join(format!("l{i}"));
            let tag = name_tag
                .rsplit_once(':')
                .map(|(_, t)| t)
                .unwrap_or("latest");
            built.push(image.write(&dir, tag).expect("write layout"));
            // skopeo_push copies Docker-format layouts through skopeo's dir: transport, which
            // keeps their media types.
            let creds = registry
                .auth()
                .credentials()
                .map(|(u, p)| format!("--dest-creds={u}:{p}"));
            let extra: Vec<&str> = creds.iter().map(String::as_str).collect();
            pelagos_testkit::images::skopeo_push(
                &dir,
                tag,
                &format!("{}/{name_tag}", registry.host()),
                &extra,
            )
            .expect("push image");
        }
        Served {
            registry,
            layouts,
            built,
        }
    }

    /// `HOST/name:tag`.
    pub fn image(&self, name_tag: &str) -> String {
        format!("{}/{name_tag}", self.registry.host())
    }
}

/// A registry serving busybox as `box:1` (`Cmd ["sh"]`), a fresh env, and the image pulled
/// into it: the setup most container tests start from.
#[allow(dead_code)] // Each test file uses its own subset of this module.
pub fn served_busybox() -> (Served, Env, String) {
    let image = pelagos_testkit::images::busybox()
        .expect("build busybox")
        .cmd(["sh"]);
    let served = Served::start(pelagos_testkit::registry::Auth::None, &[(&image, "box:1")]);
    let env = Env::new();
    let name = served.image("box:1");
    env.ok(&["pull", "-q", &name]);
    (served, env, name)
}

pub mod dockerd;
pub mod net;

/// Polls `done` until it holds, failing the test after 60 s (a loaded machine is slow, never
/// wrong): the one wait the CLI tests share.
#[allow(dead_code)] // Each test file uses its own subset of this module.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
