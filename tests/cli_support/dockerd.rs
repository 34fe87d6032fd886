//! A private Docker daemon (Debian's docker.io, started by tests/scripts/private-dockerd in its
//! own mount and pid namespaces) for tests that compare pelagos with Docker's own behaviour.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

/// The docker CLI 28 these hosts carry, before Debian's 20.10 client on the PATH.
pub fn docker_cli() -> &'static str {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the docker CLI is installed on these hosts (/usr/local/bin/docker)")
}

/// A running dockerd on `<dir>/docker.sock`. Dropping it ends the daemons, their containers,
/// cgroups and mounts, and removes the directory (the script does it, also when this process
/// dies: it ends when its stdin closes).
pub struct Dockerd {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    config: tempfile::TempDir,
}

impl Dockerd {
    /// Starts the daemon and waits until it answers; `cgroup_parent` is its containers'
    /// parent in the v2 tree (the test's own).
    pub fn start(cgroup_parent: &str) -> Dockerd {
        assert!(
            Path::new("/usr/sbin/dockerd").exists(),
            "dockerd is missing: scripts/deps installs Debian's docker.io (its service stays off)"
        );
        let dir = tempfile::Builder::new()
            .prefix("pelagos-dockerd-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/private-dockerd");
        let mut child = Command::new(script)
            .arg(&dir)
            .arg(format!("{cgroup_parent}-docker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tests/scripts/private-dockerd");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let daemon = Dockerd {
            child,
            stdin,
            dir,
            config: tempfile::tempdir().expect("tempdir"),
        };
        assert_eq!(line.trim(), "ready", "private-dockerd did not start");
        daemon.wait_until_serving();
        daemon
    }

    fn wait_until_serving(&self) {
        for _ in 0..600 {
            if self.run(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        panic!("dockerd did not answer in 30 s; its log ends:\n{tail:#?}");
    }

    /// `docker` talking to this daemon, with a client config of its own.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(docker_cli());
        c.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", self.config.path())
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("spawn docker")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // EOF on the script's stdin: it kills everything of the daemon and cleans up.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
