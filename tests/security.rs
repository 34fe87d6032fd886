//! Escapes that runtimes have had: leaked descriptors and cwd outside the rootfs
//! (CVE-2024-21626 class), a container reaching the runtime binary or its memory through
//! /proc/1 while the init is still the runtime (CVE-2019-5736 class), the runtime's
//! environment, masked paths undone from inside, and masking through a planted /dev/null.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;
use support::*;

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    out.stdout_text()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Host-side fd numbers of `pid` and what they point to.
fn host_fds(pid: i64) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fds")
        .map(|e| {
            let e = e.unwrap();
            let target = std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect();
    v.sort_by_key(|(n, _)| n.parse::<i32>().unwrap_or(i32::MAX));
    v
}

/// The config's environment, plus the HOME the runtime adds from the container's passwd
/// when the config has none (root's, /root, in the test rootfs).
fn config_env(c: &Container) -> Vec<String> {
    let mut env: Vec<String> = c.bundle.config.borrow()["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    if !env.iter().any(|v| v.starts_with("HOME=")) {
        env.push("HOME=/root".to_string());
    }
    env
}

#[test]
fn container_processes_hold_only_stdio() {
    let c = Container::new("sec-fds");
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c.wait_status("running");
    let pid = c.state()["pid"].as_i64().unwrap();
    // The init after exec, seen from the host: 0, 1, 2 and nothing else (no leaked
    // directory, cgroup or state fds).
    let fds = host_fds(pid);
    let names: Vec<&str> = fds.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["0", "1", "2"], "{fds:?}");
    for (n, target) in &fds {
        assert!(
            !Path::new(target).is_dir(),
            "fd {n} is a directory: {target}"
        );
    }
    // Its cwd is the container's root (compared by inode: the path the host would print
    // is relative to a root it cannot reach).
    use std::os::unix::fs::MetadataExt;
    let cwd = std::fs::metadata(format!("/proc/{pid}/cwd")).unwrap();
    let root = std::fs::metadata(c.bundle.rootfs()).unwrap();
    assert_eq!((cwd.dev(), cwd.ino()), (root.dev(), root.ino()));
    // From inside: the init and an exec'd shell see the same.
    let out = c.rt(&[
        "exec",
        &c.id,
        "sh",
        "-c",
        // No pipelines: a shell holds the pipe's ends while it starts the pipeline.
        "ls /proc/1/fd; echo --; ls /proc/$$/fd; \
         for f in /proc/$$/fd/*; do test -d $f && echo DIR $f; done; true",
    ]);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(
        out.stdout_text(),
        "0\n1\n2\n--\n0\n1\n2\n",
        "{}",
        out.stderr_text()
    );
}

#[test]
fn cwd_through_proc_self_fd_stays_inside() {
    for n in 3..=8 {
        let c = Container::new("sec-cwd");
        let escape = format!(
            "../../../../../../../../tmp/pelagos-it-bundle-{}/config.json",
            c.id
        );
        c.bundle
            .edit(|cfg| cfg["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let out = sh(
            &c,
            &format!("pwd; if test -e {escape}; then echo ESCAPED; fi; true"),
        );
        let stdout = out.stdout_text();
        assert!(
            !stdout.contains("ESCAPED"),
            "cwd fd {n} reached the host: {stdout}"
        );
        assert!(
            !stdout.contains("unreachable"),
            "cwd fd {n} is outside the root: {stdout}"
        );
        if out.status.success() {
            assert!(stdout.starts_with('/'), "{stdout}");
        } else {
            assert!(!out.stderr_text().is_empty(), "a refusal must say why");
        }
    }
}

#[test]
fn exec_cwd_through_proc_self_fd_stays_inside() {
    let c = Container::new("sec-exec-cwd");
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let escape = format!(
        "../../../../../../../../tmp/pelagos-it-bundle-{}/config.json",
        c.id
    );
    for n in 3..=8 {
        let cwd = format!("/proc/self/fd/{n}");
        let script = format!("pwd; if test -e {escape}; then echo ESCAPED; fi; true");
        let out = c.rt(&["exec", "--cwd", &cwd, &c.id, "sh", "-c", &script]);
        let stdout = out.stdout_text();
        assert!(!stdout.contains("ESCAPED"), "exec cwd fd {n}: {stdout}");
        assert!(!stdout.contains("unreachable"), "exec cwd fd {n}: {stdout}");
        if !out.status.success() {
            assert!(!out.stderr_text().is_empty());
        }
    }
}

#[test]
fn exec_into_a_created_container_cannot_reach_the_runtime() {
    let bin = runtime_bin();
    let before = sha256(&bin);
    let c = Container::new("sec-5736");
    c.bundle.set_args(&["sleep", "30"]);
    // stdio to files: a pipe would be held open by the parked init.
    let err_path = c.bundle.dir.join("create.err");
    let mut cmd = c.command(&["create", "--bundle"]);
    cmd.arg(&c.bundle.dir)
        .arg(&c.id)
        .env("SECRET_PELAGOS", "xyz")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let status = cmd.status().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert_eq!(c.status(), "created");
    // Precondition: the parked init still runs the runtime's file (through its read-only
    // handle: the link names no host path).
    let pid = c.state()["pid"].as_i64().unwrap();
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata(format!("/proc/{pid}/exe")).unwrap();
    let file = std::fs::metadata(&bin).unwrap();
    assert_eq!((exe.dev(), exe.ino()), (file.dev(), file.ino()));
    let script = "\
        try() { if (eval \"$2\") >/dev/null 2>&1; then echo \"$1 OPEN\"; else echo \"$1 denied\"; fi; }; \
        try environ 'cat /proc/1/environ'; \
        try exe-link 'readlink /proc/1/exe'; \
        try exe-read 'head -c 1 /proc/1/exe'; \
        try exe-write 'echo x >> /proc/1/exe'; \
        try mem 'head -c 1 /proc/1/mem'; \
        try fd-links 'for f in /proc/1/fd/*; do readlink $f && exit 0; done; exit 1'; \
        try fd-walk 'for f in /proc/1/fd/*; do ls $f/ && exit 0; done; exit 1'; \
        try cwd 'ls /proc/1/cwd/'; \
        try root 'ls /proc/1/root/'; \
        true";
    let out = c.rt(&["exec", &c.id, "sh", "-c", script]);
    assert!(out.status.success(), "{}", out.stderr_text());
    let want = "environ denied\nexe-link denied\nexe-read denied\nexe-write denied\n\
                mem denied\nfd-links denied\nfd-walk denied\ncwd denied\nroot denied\n";
    assert_eq!(out.stdout_text(), want);
    // The runc CVE-2024-21626 vector: an exec whose cwd is a descriptor of the parked init.
    let escape = format!(
        "../../../../../../../../tmp/pelagos-it-bundle-{}/config.json",
        c.id
    );
    for n in 3..=10 {
        let cwd = format!("/proc/1/fd/{n}");
        let script = format!("pwd; if test -e {escape}; then echo ESCAPED; fi; true");
        let out = c.rt(&["exec", "--cwd", &cwd, &c.id, "sh", "-c", &script]);
        let stdout = out.stdout_text();
        assert!(!stdout.contains("ESCAPED"), "exec cwd {cwd}: {stdout}");
        assert!(!stdout.contains("unreachable"), "exec cwd {cwd}: {stdout}");
        if !out.status.success() {
            assert!(!out.stderr_text().is_empty());
        }
    }
    assert_eq!(c.status(), "created", "the init survived");
    // Control: once started, pid 1 is the container's own (dumpable) program, and the same
    // probes work: the denials above came from the parked init being protected.
    c.rt_ok(&["start", &c.id]);
    let out = c.rt(&["exec", &c.id, "sh", "-c", script]);
    let text = out.stdout_text();
    let open: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix(" OPEN"))
        .collect();
    for probe in ["environ", "exe-link", "exe-read", "fd-links", "cwd", "root"] {
        assert!(
            open.contains(&probe),
            "control {probe}: {}",
            out.stdout_text()
        );
    }
    drop(c);
    assert_eq!(sha256(&bin), before, "the runtime binary changed");
}

#[test]
fn the_runtime_environment_is_not_visible() {
    let c = Container::new("sec-env");
    c.bundle.set_args(&[
        "sh",
        "-c",
        "cat /proc/1/environ | tr '\\0' '\\n'; echo ---; env | grep -c SECRET_PELAGOS; true",
    ]);
    let out = c
        .command(&["run", &c.id])
        .env("SECRET_PELAGOS", "xyz")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    let text = out.stdout_text();
    let (environ, count) = text.split_once("---\n").unwrap();
    let lines: Vec<&str> = environ.lines().collect();
    assert_eq!(
        lines,
        config_env(&c),
        "the init's environment is the config's"
    );
    assert_eq!(count, "0\n");
    assert!(!text.contains("xyz"));

    // An exec'd process does not inherit the caller's environment either.
    let c = Container::new("sec-env-exec");
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let out = c
        .command(&[
            "exec",
            &c.id,
            "sh",
            "-c",
            "env; tr '\\0' '\\n' < /proc/1/environ; true",
        ])
        .env("SECRET_PELAGOS", "xyz")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(
        !out.stdout_text().contains("SECRET_PELAGOS"),
        "{}",
        out.stdout_text()
    );
    // Seen from the host too: the running init's environment is the config's.
    let pid = c.state()["pid"].as_i64().unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(vars, config_env(&c));
}

#[test]
fn masked_paths_cannot_be_unmounted() {
    let c = Container::new("sec-unmask");
    let out = sh(
        &c,
        "umount /proc/keys; echo u1=$?; umount -l /proc/timer_list; echo u2=$?; \
         umount /proc/acpi; echo u3=$?; mount -o remount,rw /proc/sys; echo r=$?; \
         mount --bind /proc/self/environ /proc/keys; echo b=$?; \
         wc -c < /proc/keys; wc -c < /proc/timer_list; ls -A /proc/acpi | wc -l",
    );
    let lines: Vec<String> = out
        .stdout_text()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(
        lines,
        ["u1=1", "u2=1", "u3=1", "r=1", "b=1", "0", "0", "0"],
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("Operation not permitted"),
        "{}",
        out.stderr_text()
    );
}

/// Bundle directory `devdir` to be the container's /dev (bound from the bundle, so the
/// runtime does not populate it), with `null` planted as a symlink to /etc/passwd.
fn plant_dev_null(c: &Container) {
    let dev = c.bundle.dir.join("devdir");
    std::fs::create_dir(&dev).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dev.join("null")).unwrap();
    c.bundle.edit(|cfg| {
        let mounts = cfg["mounts"].as_array_mut().unwrap();
        let at = mounts
            .iter()
            .position(|m| m["destination"] == "/dev")
            .unwrap();
        mounts[at] = json!({"destination": "/dev", "type": "bind", "source": "devdir",
                            "options": ["rbind", "nosuid"]});
    });
}

#[test]
fn masking_uses_the_host_dev_null_not_the_containers() {
    let host_passwd = std::fs::read("/etc/passwd").unwrap();
    let c = Container::new("sec-devnull");
    let image_passwd = std::fs::read(c.bundle.rootfs().join("etc/passwd")).unwrap();
    plant_dev_null(&c);
    let out = sh(
        &c,
        "readlink /dev/null; wc -c < /proc/keys; stat -c '%F %t:%T' /proc/keys; \
         echo pwned > /proc/keys; grep -c root /etc/passwd; true",
    );
    assert!(out.status.success(), "{}", out.stderr_text());
    let lines: Vec<String> = out
        .stdout_text()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(
        lines,
        ["/etc/passwd", "0", "character special file 1:3", "1"],
        "{}",
        out.stderr_text()
    );
    assert_eq!(
        std::fs::read(c.bundle.rootfs().join("etc/passwd")).unwrap(),
        image_passwd
    );
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);

    // The same with the runtime populating the image's own /dev (no /dev mount): the planted
    // symlink is replaced by a real node and masking still uses the host's null device.
    let c = Container::new("sec-devnull-image");
    std::fs::create_dir_all(c.bundle.rootfs().join("dev")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", c.bundle.rootfs().join("dev/null")).unwrap();
    c.bundle.edit(|cfg| {
        cfg["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
    let out = sh(
        &c,
        "stat -c '%F %t:%T' /dev/null /proc/keys; wc -c < /proc/keys; grep -c root /etc/passwd",
    );
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(
        out.stdout_text(),
        "character special file 1:3\ncharacter special file 1:3\n0\n1\n"
    );
    assert_eq!(
        std::fs::read(c.bundle.rootfs().join("etc/passwd")).unwrap(),
        image_passwd
    );
    assert_eq!(std::fs::read("/etc/passwd").unwrap(), host_passwd);
}

// ---- CVE-2019-5736: the runtime binary cannot be overwritten from a container ------------

/// The payload library (`tests/payloads/take_the_binary.c`): preloaded into the program the
/// kernel runs for `#!/proc/self/exe`, it keeps a handle on that program's file and execs
/// `/attack.sh` with it. Built in the test with `cc`; `-DBACKGROUND` for hooks.
const PAYLOAD_C: &str = include_str!("payloads/take_the_binary.c");

/// Tries while the host's runtime still executes the file (ETXTBSY, up to ~20 s), then the
/// last error is the result. `written` means the host binary was replaced.
const ATTACK_SH: &str = r#"fd=$1
echo started > /result
i=0
while [ $i -lt 200 ]; do
    if ( printf PWNED 1<> /proc/self/fd/$fd ) 2>/err; then echo written > /result; exit 0; fi
    grep -q busy /err || break
    i=$((i+1)); sleep 0.1
done
cat /err > /result
"#;

/// A copy of the runtime under test (so a failing test cannot break the build's binary), a
/// bundle whose rootfs can run that copy (its loader and libraries, copied from the host), a
/// preloaded payload and a command script `#!/proc/self/exe`.
struct OverwriteAttack {
    dir: ScratchDir,
    victim: std::path::PathBuf,
    before: String,
    c: Container,
}

impl OverwriteAttack {
    /// With the payload preloaded (for a dynamic runtime).
    fn new(name: &str) -> OverwriteAttack {
        OverwriteAttack::with_payload(name, &[])
    }

    /// With the payload built with `defines` (e.g. `-DBACKGROUND`).
    fn with_payload(name: &str, defines: &[&str]) -> OverwriteAttack {
        let a = OverwriteAttack::without_payload(name);
        let rootfs = a.c.bundle.rootfs();
        let src = a.dir.path().join("payload.c");
        std::fs::write(&src, PAYLOAD_C).unwrap();
        let built = Command::new("cc")
            .args(defines)
            .args(["-shared", "-fPIC", "-o"])
            .arg(rootfs.join("payload.so"))
            .arg(&src)
            .output()
            .expect("cc (gcc) builds the payload");
        assert!(built.status.success(), "cc: {}", built.stderr_text());
        std::fs::write(rootfs.join("etc/ld.so.preload"), "/payload.so\n").unwrap();
        a
    }

    fn without_payload(name: &str) -> OverwriteAttack {
        let dir = ScratchDir::new(name);
        let victim = dir.path().join("pelagos-runtime");
        std::fs::copy(runtime_bin(), &victim).expect("copy the runtime");
        let c = Container::new(name);
        let rootfs = c.bundle.rootfs();
        for lib in dynamic_libraries(&victim) {
            let dest = rootfs.join(lib.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&lib, &dest).expect("copy a library");
        }
        std::fs::write(rootfs.join("attack.sh"), ATTACK_SH).unwrap();
        write_executable(&rootfs.join("evil.sh"), "#!/proc/self/exe\n");
        write_executable(&rootfs.join("evil-link.sh"), "#!/proc/thread-self/exe\n");
        std::os::unix::fs::symlink("/proc/self/exe", rootfs.join("self-link")).unwrap();
        write_executable(&rootfs.join("evil-symlink.sh"), "#!/self-link\n");
        let before = sha256(&victim);
        OverwriteAttack {
            dir,
            victim,
            before,
            c,
        }
    }

    /// Run the victim copy with `--root` of the test container. Its stderr goes to a file:
    /// a container's processes inherit it and may outlive the call.
    fn victim_ok(&self, args: &[&str]) {
        let (ok, text) = self.victim(args);
        assert!(ok, "{args:?}: {text}");
    }

    /// `create` or `run --detach` of the test's bundle by the victim copy.
    fn victim_bundle_ok(&self, verb: &str) {
        let bundle = self.c.bundle.dir.to_str().unwrap();
        let mut args = vec![verb];
        if verb == "run" {
            args.push("--detach");
        }
        args.extend(["--bundle", bundle, &self.c.id]);
        self.victim_ok(&args);
    }

    /// Run the victim copy; whether it succeeded, and its stderr.
    fn victim(&self, args: &[&str]) -> (bool, String) {
        let stderr_path = self.dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let status = Command::new(&self.victim)
            .arg("--root")
            .arg(&self.c.root)
            .args(args)
            .current_dir(&self.c.bundle.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .expect("spawn the victim runtime");
        let text = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        (status.success(), text)
    }

    /// The attack script's verdict once it has one, or what it left when the attacked
    /// process `pid` is gone (bounded: the script ends by itself within about 20 s).
    fn settle(&self, pid: i64) -> String {
        let result = self.c.bundle.rootfs().join("result");
        let read = || {
            std::fs::read_to_string(&result)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        for _ in 0..1200 {
            let text = read();
            if !text.is_empty() && text != "started" {
                return text;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return read();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        read()
    }

    /// The container's processes could not write the runtime binary: no `written` verdict
    /// and the file's digest unchanged. (With the old runtime the payload ran in the runtime
    /// binary and wrote it; now `/proc/self/exe` is the sealed launch stub.)
    fn assert_binary_unchanged(&self, pid: i64) {
        let verdict = self.settle(pid);
        eprintln!("attack verdict: {verdict:?}");
        assert_ne!(verdict, "written", "the container wrote the runtime binary");
        assert_eq!(
            sha256(&self.victim),
            self.before,
            "the runtime binary changed (verdict {verdict:?}); kept in {}",
            self.dir.path().display()
        );
    }

    fn init_pid(&self) -> i64 {
        self.c.state()["pid"].as_i64().unwrap_or(0)
    }

    /// `exec --detach` of `args`; the exec'd process's pid.
    fn exec_detached(&self, args: &[&str]) -> i64 {
        let pid_file = self.dir.path().join(unique("exec.pid"));
        let mut full = vec![
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &self.c.id,
        ];
        full.extend_from_slice(args);
        self.victim_ok(&full);
        std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

/// A directory of the test's own, removed when dropped (also when the test fails).
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(unique(&format!("pelagos-it-{name}")));
        std::fs::create_dir_all(&dir).expect("mkdir scratch");
        ScratchDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The loader and libraries a dynamic executable needs (none for a static one).
fn dynamic_libraries(exe: &Path) -> Vec<std::path::PathBuf> {
    let out = Command::new("ldd").arg(exe).output().expect("ldd");
    out.stdout_text()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(std::path::PathBuf::from)
        })
        .collect()
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_through_create_and_start() {
    let a = OverwriteAttack::new("sec-5736-start");
    a.c.bundle.set_args(&["/evil.sh"]);
    a.victim_bundle_ok("create");
    let pid = a.init_pid();
    a.victim_ok(&["start", &a.c.id]);
    a.assert_binary_unchanged(pid);
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_through_run() {
    let a = OverwriteAttack::new("sec-5736-run");
    a.c.bundle.set_args(&["/evil-link.sh"]);
    a.victim_bundle_ok("run");
    a.assert_binary_unchanged(a.init_pid());
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_through_exec() {
    let a = OverwriteAttack::new("sec-5736-exec");
    a.c.bundle.set_args(&["sleep", "60"]);
    a.victim_bundle_ok("run");
    let pid = a.exec_detached(&["/evil-symlink.sh"]);
    a.assert_binary_unchanged(pid);
}

/// Static and dynamic builds alike, no payload: whatever the kernel runs for an exec'd
/// `#!/proc/self/exe --log=/fifo` script (the old runtime blocked opening its log, a fifo), a
/// second process of the container takes a handle on its `/proc/PID/exe`, lets it finish
/// (opening the fifo), and writes through the handle once nothing executes the file.
#[test]
fn a_handle_on_the_runtime_binary_held_inside_cannot_write_it() {
    let a = OverwriteAttack::without_payload("sec-5736-held");
    let rootfs = a.c.bundle.rootfs();
    write_executable(
        &rootfs.join("evil-fifo.sh"),
        "#!/proc/self/exe --log=/fifo\n",
    );
    nix_mkfifo(&rootfs.join("fifo"));
    std::fs::write(
        rootfs.join("watch.sh"),
        r#"pid=$1
[ -e /proc/$pid/exe ] || { echo no-process > /result; exit 0; }
exec 3< /proc/$pid/exe
exec 4<> /fifo
while [ -e /proc/$pid ]; do sleep 0.1; done
exec sh /attack.sh 3
"#,
    )
    .unwrap();
    a.c.bundle.set_args(&["sleep", "60"]);
    a.victim_bundle_ok("run");
    let runtime_pid = a.exec_detached(&["/evil-fifo.sh"]);
    let pid = pid_in_container(runtime_pid).unwrap_or_else(|| "gone".to_string());
    let watcher = a.exec_detached(&["sh", "/watch.sh", &pid]);
    a.assert_binary_unchanged(watcher);
}

/// The pid of host process `pid` in its innermost pid namespace (NSpid's last field).
fn pid_in_container(pid: i64) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last().map(str::to_string)
}

fn nix_mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

// ---- /dev/console: the pty is bound onto the inode checked (CVE-2025-52565 class) --------

/// A container with a terminal served on a console socket and no /dev tmpfs in its config, so
/// that its /dev/console is whatever the image put there (`plant` makes it, in the rootfs).
struct ImageConsole {
    c: Container,
    socket: std::path::PathBuf,
    _listener: std::os::unix::net::UnixListener,
}

impl ImageConsole {
    fn new(name: &str, plant: impl FnOnce(&Path)) -> ImageConsole {
        let c = Container::new(name);
        plant(&c.bundle.rootfs());
        c.bundle.edit(|cfg| {
            cfg["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/dev");
            cfg["process"]["terminal"] = json!(true);
        });
        let socket = c.bundle.dir.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        ImageConsole {
            c,
            socket,
            _listener: listener,
        }
    }

    /// `create --console-socket`, bounded: a create that blocks (opening a fifo planted at
    /// /dev/console would) is killed and fails the test.
    fn create(&self) -> std::process::Output {
        let stdout = std::fs::File::create(self.c.bundle.dir.join("stdout")).unwrap();
        let stderr = std::fs::File::create(self.c.bundle.dir.join("stderr")).unwrap();
        let mut child = self
            .c
            .command(&[
                "create",
                "--bundle",
                self.c.bundle.dir.to_str().unwrap(),
                "--console-socket",
                self.socket.to_str().unwrap(),
                &self.c.id,
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn runtime");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("create with /dev/console from the image hangs");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let read = |name: &str| std::fs::read(self.c.bundle.dir.join(name)).unwrap_or_default();
        std::process::Output {
            status,
            stdout: read("stdout"),
            stderr: read("stderr"),
        }
    }
}

#[test]
fn dev_console_of_the_image_must_be_a_file_or_device_reached_without_symlinks() {
    let image_passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n";
    let symlink_to = |target: &'static str| {
        move |rootfs: &Path| std::os::unix::fs::symlink(target, rootfs.join("dev/console")).unwrap()
    };
    type Plant = Box<dyn FnOnce(&Path)>;
    let cases: Vec<(&str, Plant, &str)> = vec![
        (
            "sec-console-passwd",
            Box::new(symlink_to("/etc/passwd")),
            "symbolic link",
        ),
        (
            "sec-console-rel",
            Box::new(symlink_to("../etc/passwd")),
            "symbolic link",
        ),
        (
            "sec-console-proc",
            Box::new(symlink_to("/proc/sys/kernel/hostname")),
            "symbolic link",
        ),
        (
            "sec-console-fifo",
            Box::new(|rootfs: &Path| nix_mkfifo(&rootfs.join("dev/console"))),
            "a fifo",
        ),
        (
            "sec-console-dir",
            Box::new(|rootfs: &Path| std::fs::create_dir(rootfs.join("dev/console")).unwrap()),
            "a directory",
        ),
        // /dev itself a symlink to a directory holding a regular "console".
        (
            "sec-console-devlink",
            Box::new(|rootfs: &Path| {
                std::fs::remove_dir(rootfs.join("dev")).unwrap();
                std::fs::create_dir(rootfs.join("devices")).unwrap();
                std::fs::write(rootfs.join("devices/console"), "").unwrap();
                std::os::unix::fs::symlink("devices", rootfs.join("dev")).unwrap();
            }),
            "symbolic link",
        ),
    ];
    for (name, plant, reason) in cases {
        let ic = ImageConsole::new(name, plant);
        check_console_refused(&ic, name, reason);
        // The symlink's targets are what they were, seen by a container of the same image
        // (no terminal): no pty covers them.
        assert_eq!(
            std::fs::read_to_string(ic.c.bundle.rootfs().join("etc/passwd")).unwrap(),
            image_passwd
        );
        if name == "sec-console-passwd" || name == "sec-console-proc" {
            ic.c.bundle
                .edit(|cfg| cfg["process"]["terminal"] = json!(false));
            let seen = sh_ok(
                &ic.c,
                "cat /etc/passwd /proc/sys/kernel/hostname; \
                 grep -c -e ' /etc/passwd ' -e ' /proc/sys/kernel/hostname ' /proc/self/mountinfo || true",
            );
            assert_eq!(seen, format!("{image_passwd}pelagos-test\n0\n"), "{name}");
        }
    }
}

fn check_console_refused(ic: &ImageConsole, name: &str, reason: &str) {
    let out = ic.create();
    let err = out.stderr_text();
    assert!(!out.status.success(), "{name}: create succeeded");
    assert!(
        err.contains("/dev/console") && err.contains(reason),
        "{name}: {err}"
    );
    eprintln!("{name}: {}", err.trim());
    ic.c.assert_gone();
}

/// A /dev/console that is a file of a kernel interface (here bound there by the config from
/// the host's procfs) is not covered either.
#[test]
fn dev_console_on_procfs_is_not_covered() {
    let ic = ImageConsole::new("sec-console-procfs", |rootfs| {
        std::fs::write(rootfs.join("dev/console"), "").unwrap()
    });
    ic.c.bundle.edit(|cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/dev/console",
            "type": "bind",
            "source": "/proc/sys/kernel/ostype",
            "options": ["bind", "ro"]
        }))
    });
    check_console_refused(&ic, "sec-console-procfs", "procfs");
}

/// The working case of the same path: the image's own regular /dev/console is covered by the
/// pty (a character device of the pty major, 136) and the file itself is left as it was.
#[test]
fn dev_console_of_the_image_is_covered_by_the_pty() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let ic = ImageConsole::new("sec-console-file", |rootfs| {
        std::fs::write(rootfs.join("dev/console"), "image console\n").unwrap()
    });
    ic.c.bundle.set_args(&[
        "sh",
        "-c",
        "stat -c '%F %t' /dev/console; echo console-ok > /dev/console",
    ]);
    let out = ic.create();
    assert!(out.status.success(), "{}", out.stderr_text());
    let listener = &ic._listener;
    let (stream, _) = listener.accept().expect("the runtime connects");
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let master = msg
        .cmsgs()
        .unwrap()
        .find_map(|m| match m {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("the pty master");
    // SAFETY: SCM_RIGHTS just installed this descriptor in our table; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    ic.c.rt_ok(&["start", &ic.c.id]);
    let mut text = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        let mut chunk = [0u8; 512];
        match nix::unistd::read(master.as_raw_fd(), &mut chunk) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => panic!("read the pty: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert_eq!(text, "character special file 88\nconsole-ok\n");
    ic.c.wait_status("stopped");
    assert_eq!(
        std::fs::read_to_string(ic.c.bundle.rootfs().join("dev/console")).unwrap(),
        "image console\n"
    );
}

/// A startContainer hook runs in the container after pivot_root, so its file is the image's;
/// its process is a fork of the init, i.e. of the runtime. A hook file `#!/proc/self/exe`
/// must not make the kernel run the runtime's binary in the container.
#[test]
fn the_runtime_binary_cannot_be_overwritten_through_a_start_container_hook() {
    let a = OverwriteAttack::with_payload("sec-5736-hook", &["-DBACKGROUND"]);
    a.c.bundle.edit(|cfg| {
        cfg["process"]["args"] = json!(["sleep", "60"]);
        cfg["hooks"] = json!({"startContainer": [{"path": "/evil.sh"}]});
    });
    a.victim_bundle_ok("create");
    let pid = a.init_pid();
    // The hook fails now (the kernel runs the launch stub for it, not the runtime): start
    // reports it; before, the hook "succeeded" and the payload ran on in the background.
    let (_started, _) = a.victim(&["start", &a.c.id]);
    a.assert_binary_unchanged(pid);
}
