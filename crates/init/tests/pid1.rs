//! The installed init run as pid 1 of a new pid namespace (needs root): exit codes, signal
//! forwarding, reaping of orphans, exec failures; and `install` from several processes at once.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pelagos_init::{install, INIT_BYTES};

/// Polls give up after this long: generous, it only bounds a failing test.
const DEADLINE: Duration = Duration::from_secs(60);

/// A test's own directory with the init installed in it.
struct Setup {
    dir: tempfile::TempDir,
    init: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let init = install(&dir.path().join("bin")).unwrap();
    Setup { dir, init }
}

/// The init as pid 1 of a new pid namespace, killed (with its namespace) if the test fails.
struct Pid1(Child);

impl Pid1 {
    /// `unshare(CLONE_NEWPID)` only changes where the calling thread's children go, so a
    /// thread of its own spawns the init, which becomes pid 1 of the new namespace.
    fn spawn(mut command: Command) -> Pid1 {
        let child = std::thread::spawn(move || {
            // SAFETY: unshare takes a flag; CLONE_NEWPID affects only this thread's children.
            let r = unsafe { libc::unshare(libc::CLONE_NEWPID) };
            assert_eq!(
                r,
                0,
                "unshare(CLONE_NEWPID): {}",
                std::io::Error::last_os_error()
            );
            // A file just written can be "busy" for a moment: a process another test thread
            // forked meanwhile holds a copy of the writer's descriptor until it execs.
            let mut tries = 0;
            loop {
                match command.spawn() {
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    spawned => break spawned.unwrap(),
                }
            }
        })
        .join()
        .unwrap();
        Pid1(child)
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// The init's exit status; fails the test (and kills the init) if it does not exit.
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(start.elapsed() < DEADLINE, "the init did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The exit status and what the init wrote on the pipes it was given.
    fn wait_with_output(&mut self) -> Output {
        let stdout = read_in_background(self.0.stdout.take());
        let stderr = read_in_background(self.0.stderr.take());
        let status = self.wait();
        Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut bytes).unwrap();
        }
        bytes
    })
}

impl Drop for Pid1 {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn init_command(init: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(init);
    command.args(args).stdin(Stdio::null());
    command
}

/// Runs the init with `args` as pid 1 and returns its output.
fn run_as_pid1(init: &Path, args: &[&str], path_var: Option<&Path>) -> Output {
    let mut command = init_command(init, args);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(path) = path_var {
        command.env("PATH", path);
    }
    Pid1::spawn(command).wait_with_output()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_commands_exit_code_is_the_inits() {
    let s = setup();
    let cases: &[(&[&str], i32)] = &[
        (&["--", "true"], 0),
        (&["true"], 0),
        (&["--", "sh", "-c", "exit 3"], 3),
        (&["--", "sh", "-c", "exit $#", "sh", "a", "b", "c", "d"], 4),
        (&["--", "sh", "-c", "kill -KILL $$"], 128 + libc::SIGKILL),
        (&["--", "sh", "-c", "kill -TERM $$"], 128 + libc::SIGTERM),
        (&["--", "sh", "-c", "[ $$ = 2 ]"], 0), // the init is pid 1 and the command its child
    ];
    for (args, want) in cases {
        let out = run_as_pid1(&s.init, args, None);
        assert_eq!(code(&out), Some(*want), "{args:?}: {out:?}");
    }
}

#[test]
fn no_command_is_a_usage_error() {
    let s = setup();
    for args in [&[][..], &["--"][..]] {
        let out = run_as_pid1(&s.init, args, None);
        assert_eq!(code(&out), Some(1), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage"),
            "{out:?}"
        );
    }
}

#[test]
fn signals_sent_to_the_init_reach_the_command() {
    let s = setup();
    // TERM is trapped (exit 7); HUP and USR1 are not, so they kill the command: 128+N.
    for (sig, trap, want) in [
        (libc::SIGTERM, "trap 'exit 7' TERM;", 7),
        (libc::SIGHUP, "", 128 + libc::SIGHUP),
        (libc::SIGUSR1, "", 128 + libc::SIGUSR1),
    ] {
        let ready = s.dir.path().join(format!("ready-{sig}"));
        let script = format!("{trap} : > \"$1\"; while :; do sleep 0.05; done");
        let args = ["--", "sh", "-c", &script, "sh", ready.to_str().unwrap()];
        let mut pid1 = Pid1::spawn(init_command(&s.init, &args));
        wait_for("the command's trap", || ready.exists());
        // SAFETY: kill takes a pid we spawned and a signal number.
        assert_eq!(unsafe { libc::kill(pid1.pid(), sig) }, 0);
        assert_eq!(pid1.wait().code(), Some(want), "signal {sig}");
    }
}

/// State and parent pid of a host process, from `/proc/PID/stat`; None once it is gone.
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.next()?.parse().ok()?))
}

/// Zombies whose parent is `parent`.
fn zombie_children(parent: i32) -> Vec<i32> {
    let pids = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok());
    pids.filter(|&pid| state_and_parent(pid) == Some(('Z', parent)))
        .collect()
}

#[test]
fn orphans_that_exit_are_reaped() {
    let s = setup();
    let orphan_file = s.dir.path().join("orphan");
    let go = s.dir.path().join("go");
    // The subshell exits at once, so the inner sh is orphaned onto the init; it records its
    // host pid (/proc is the host's) and exits. The command then waits for `go`.
    let script = r#"
        (sh -c 'read pid rest < /proc/self/stat; echo $pid > "$0.tmp"; mv "$0.tmp" "$0"' "$1" &)
        while [ ! -e "$2" ]; do sleep 0.05; done"#;
    let args = [
        "--",
        "sh",
        "-c",
        script,
        "sh",
        orphan_file.to_str().unwrap(),
        go.to_str().unwrap(),
    ];
    let mut pid1 = Pid1::spawn(init_command(&s.init, &args));
    wait_for("the orphan's pid", || orphan_file.exists());
    let orphan: i32 = fs::read_to_string(&orphan_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Without reaping, the orphan would stay a zombie child of the init until the init exits.
    wait_for("the orphan to be reaped", || {
        state_and_parent(orphan).is_none() && zombie_children(pid1.pid()).is_empty()
    });
    fs::write(&go, b"").unwrap();
    assert_eq!(pid1.wait().code(), Some(0));
}

#[test]
fn a_missing_command_exits_127_naming_it() {
    let s = setup();
    let empty_dir = s.dir.path().join("empty");
    fs::create_dir(&empty_dir).unwrap();
    let missing = s.dir.path().join("no-such-program");
    for (args, text) in [
        (
            vec!["--", "no-such-program"],
            "executable file not found in $PATH",
        ),
        (
            vec!["--", missing.to_str().unwrap()],
            "no such file or directory",
        ),
    ] {
        let out = run_as_pid1(&s.init, &args, Some(&empty_dir));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), Some(127), "{args:?}: {out:?}");
        assert!(
            stderr.contains(args[1]) && stderr.contains(text),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn a_command_that_cannot_be_executed_exits_126_naming_it() {
    let s = setup();
    let bin = s.dir.path().join("path");
    fs::create_dir(&bin).unwrap();
    let not_executable = bin.join("not-executable");
    fs::write(&not_executable, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&not_executable, fs::Permissions::from_mode(0o644)).unwrap();
    // Found on PATH (execvp reports EACCES once no directory has a runnable one) and by path.
    for name in ["not-executable", not_executable.to_str().unwrap()] {
        let out = run_as_pid1(&s.init, &["--", name], Some(&bin));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), Some(126), "{name}: {out:?}");
        assert!(
            stderr.contains(name) && stderr.contains("permission denied"),
            "{stderr}"
        );
    }
}

#[test]
fn the_command_is_found_on_path_and_gets_the_environment() {
    let s = setup();
    let bin = s.dir.path().join("path");
    fs::create_dir(&bin).unwrap();
    let script = bin.join("say-foo");
    fs::write(&script, "#!/bin/sh\necho \"$FOO\"\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = init_command(&s.init, &["--", "say-foo"]);
    command
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("FOO", "bar");
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = Pid1::spawn(command).wait_with_output();
    assert_eq!(code(&out), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar\n");
}

#[test]
fn the_command_leads_its_own_group_with_the_signals_it_would_have_had() {
    let s = setup();
    // Prints whether pid == pgrp, then the blocked and ignored signals; compared with the same
    // script started without the init (a threaded parent's posix_spawn ignores glibc's
    // internal signals 32 and 33, so "none" would not be the right expectation).
    let script = r#"
        read pid comm state ppid pgrp rest < /proc/self/stat
        [ "$pid" = "$pgrp" ] && echo leader || echo "pgrp $pgrp of $pid"
        while read key value; do
            case "$key" in SigBlk:|SigIgn:) echo "$key $value";; esac
        done < /proc/self/status"#;
    let under_init = run_as_pid1(&s.init, &["--", "sh", "-c", script], None);
    let direct = Command::new("sh").args(["-c", script]).output().unwrap();
    assert_eq!(code(&under_init), Some(0), "{under_init:?}");
    let (under_init, direct) = (
        String::from_utf8_lossy(&under_init.stdout),
        String::from_utf8_lossy(&direct.stdout),
    );
    assert!(under_init.starts_with("leader\n"), "{under_init}");
    assert_eq!(
        under_init.lines().skip(1).collect::<Vec<_>>(),
        direct.lines().skip(1).collect::<Vec<_>>()
    );
}

#[test]
fn on_a_terminal_the_command_gets_the_foreground() {
    let s = setup();
    // script(1) runs the init on a new pty; the command checks tpgid == its own group.
    let check = r#"read pid comm state ppid pgrp session tty tpgid rest < /proc/self/stat; [ "$tpgid" = "$pgrp" ]"#;
    let inner = format!("{} -- sh -c '{check}'", s.init.display());
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), Some(0), "{out:?}");
}

const INSTALL_DIR_VAR: &str = "PELAGOS_INIT_TEST_INSTALL_DIR";

/// Not a test by itself: the body of each process of the concurrent-install test.
#[test]
fn install_in_a_child_process() {
    let Some(dir) = std::env::var_os(INSTALL_DIR_VAR) else {
        return;
    };
    println!("installed={}", install(Path::new(&dir)).unwrap().display());
}

#[test]
fn concurrent_installs_from_processes_return_the_same_verified_path() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("bin");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<Child> = (0..6)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "install_in_a_child_process", "--nocapture"])
                .env(INSTALL_DIR_VAR, &target)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let paths: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let line = stdout.lines().find_map(|l| l.strip_prefix("installed="));
            line.unwrap().to_string()
        })
        .collect();
    assert!(paths.iter().all(|p| p == &paths[0]), "{paths:?}");
    assert_eq!(fs::read(&paths[0]).unwrap(), INIT_BYTES);
    let mode = fs::metadata(&paths[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o555);
    assert_eq!(fs::read_dir(&target).unwrap().count(), 1, "temp files left");
}
