//! The runtime core called in-process, as a container's monitor calls it: the kinds of the
//! failures that cross from the container's processes (create, start, exec of a missing or
//! non-executable program), the parent death signal, and the refusal of a threaded caller.
//!
//! `harness = false`: libtest runs every test on a thread of its own, and create and exec
//! refuse a process with other threads, so `main` runs the cases itself, one after another on
//! the main thread. Helpers that must die or exit on cue are this binary again, run with
//! `PELAGOS_LIBRARY_TEST_HELPER` set.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use pelagos_container::{
    ContainerId, CreateOptions, Error, ErrorKind, ExecOptions, Runtime, Status,
};
use support::Container;

const HELPER_ENV: &str = "PELAGOS_LIBRARY_TEST_HELPER";

type Case = (&'static str, fn());

const CASES: &[Case] = &[
    (
        "missing_program_is_executable_not_found",
        missing_program_is_executable_not_found,
    ),
    (
        "non_executable_file_is_not_executable",
        non_executable_file_is_not_executable,
    ),
    (
        "failed_execve_reports_kind_errno_and_stage",
        failed_execve_reports_kind_errno_and_stage,
    ),
    (
        "exec_failures_carry_their_kinds",
        exec_failures_carry_their_kinds,
    ),
    ("threaded_callers_are_refused", threaded_callers_are_refused),
    ("init_dies_with_its_creator", init_dies_with_its_creator),
    (
        "exec_process_dies_with_its_caller",
        exec_process_dies_with_its_caller,
    ),
    (
        "creator_gone_before_start_stops_the_start",
        creator_gone_before_start_stops_the_start,
    ),
];

fn main() {
    if let Ok(role) = std::env::var(HELPER_ENV) {
        helper(&role);
        return;
    }
    // `cargo test -- NAME`: run the cases whose name contains NAME; flags are libtest's.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<&Case> = CASES
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, case) in &chosen {
        let ok = std::panic::catch_unwind(case).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(*name);
        }
    }
    let result = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {result}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        chosen.len() - failed.len(),
        failed.len(),
        CASES.len() - chosen.len()
    );
    if !failed.is_empty() {
        eprintln!("failed: {failed:?}");
        std::process::exit(101);
    }
}

/// A container under test driven through the library; its `Container` removes it all on drop.
struct Lib {
    c: Container,
    rt: Runtime,
    id: ContainerId,
}

impl Lib {
    fn new(name: &str, args: &[&str]) -> Lib {
        let c = Container::new(name);
        c.bundle.set_args(args);
        let rt = Runtime::new(&c.root);
        let id = ContainerId::parse(&c.id).expect("id");
        Lib { c, rt, id }
    }

    fn opts(&self) -> CreateOptions {
        CreateOptions::new(self.id.clone(), &self.c.bundle.dir)
    }

    /// A file `path` in the rootfs with `text` and `mode`.
    fn put_file(&self, path: &str, text: &str, mode: u32) {
        let host = self.c.bundle.rootfs().join(path.trim_start_matches('/'));
        std::fs::write(&host, text).expect("write rootfs file");
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// create + start through the sync socket (`run`), as a monitor does; the init is our
    /// child. Returns its pid.
    fn run_detached(&self) -> i32 {
        let mut created = self.rt.create_for_run(&self.opts()).expect("create");
        self.rt.start_created(&mut created).expect("start");
        created.pid
    }

    /// The container's process with other `args` and `cwd`, for exec.
    fn exec_opts(&self, args: &[&str], cwd: &str) -> ExecOptions {
        let spec = self.rt.load_config(&self.id).expect("frozen config");
        let mut p = spec.process().clone().expect("process");
        p.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
        p.set_cwd(PathBuf::from(cwd));
        ExecOptions::new(p)
    }

    /// Stop and remove the container, reaping an init that is our child.
    fn remove(&self, init_pid: i32) {
        self.rt.delete(&self.id, true).expect("delete --force");
        reap(init_pid);
        self.c.assert_gone();
    }
}

fn reap(pid: i32) {
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}

/// The kind, errno and stage an error carries, with its text for failure messages.
fn parts(e: &Error) -> (ErrorKind, Option<i32>, Option<&str>) {
    (e.kind(), e.errno(), e.stage())
}

fn missing_program_is_executable_not_found() {
    let l = Lib::new("lib-noexe", &["/no/such/program"]);
    let e = l.rt.create(&l.opts()).err().expect("create must fail");
    assert_eq!(
        parts(&e),
        (ErrorKind::ExecutableNotFound, None, Some("process"))
    );
    assert_eq!(
        e.to_string(),
        "exec: \"/no/such/program\": no such file or directory"
    );
    l.c.assert_gone();

    l.c.bundle.set_args(&["no-such-program-pelagos"]);
    let e =
        l.rt.create_for_run(&l.opts())
            .err()
            .expect("create must fail");
    assert_eq!(e.kind(), ErrorKind::ExecutableNotFound, "{e}");
    assert!(
        e.to_string()
            .ends_with("executable file not found in $PATH"),
        "{e}"
    );
    l.c.assert_gone();
}

fn non_executable_file_is_not_executable() {
    for program in ["/etc/passwd", "/tmp"] {
        let l = Lib::new("lib-noperm", &[program]);
        let e = l.rt.create(&l.opts()).err().expect("create must fail");
        assert_eq!(e.kind(), ErrorKind::NotExecutable, "{e}");
        assert_eq!(
            e.to_string(),
            format!("exec: {program:?}: permission denied")
        );
        l.c.assert_gone();
    }
}

/// Files that pass the checks at create but that execve refuses: the launch stub's report
/// names the kind, the errno and the `exec` stage, through the sync socket (`run`) and
/// through the exec fifo (`start`).
fn failed_execve_reports_kind_errno_and_stage() {
    let l = Lib::new("lib-interp", &["/missing-interp"]);
    l.put_file("/missing-interp", "#!/no/such/interpreter\n", 0o755);
    let mut created = l.rt.create_for_run(&l.opts()).expect("create");
    let e =
        l.rt.start_created(&mut created)
            .expect_err("start must fail");
    assert_eq!(
        parts(&e),
        (
            ErrorKind::ExecutableNotFound,
            Some(libc::ENOENT),
            Some("exec")
        )
    );
    assert_eq!(
        e.to_string(),
        "exec /missing-interp: no such file or directory"
    );
    l.remove(created.pid);

    let l = Lib::new("lib-format", &["/bad-format"]);
    l.put_file("/bad-format", "neither ELF nor a script\n", 0o755);
    let created = l.rt.create(&l.opts()).expect("create");
    let e = l.rt.start(&l.id).expect_err("start must fail");
    assert_eq!(
        parts(&e),
        (ErrorKind::NotExecutable, Some(libc::ENOEXEC), Some("exec"))
    );
    assert_eq!(e.to_string(), "exec /bad-format: exec format error");
    l.remove(created.pid);
}

fn exec_failures_carry_their_kinds() {
    let l = Lib::new("lib-exec", &["sleep", "1000"]);
    l.put_file("/missing-interp", "#!/no/such/interpreter\n", 0o755);
    let init = l.run_detached();
    let cases: [(&[&str], &str, ErrorKind, Option<&str>); 5] = [
        (
            &["/no/such/program"],
            "/",
            ErrorKind::ExecutableNotFound,
            Some("process"),
        ),
        (
            &["no-such-program"],
            "/",
            ErrorKind::ExecutableNotFound,
            Some("process"),
        ),
        (
            &["/etc/passwd"],
            "/",
            ErrorKind::NotExecutable,
            Some("process"),
        ),
        (
            &["/missing-interp"],
            "/",
            ErrorKind::ExecutableNotFound,
            Some("exec"),
        ),
        // A cwd the container does not have is the caller's mistake: InvalidArgument.
        (
            &["true"],
            "/no/such/dir",
            ErrorKind::InvalidArgument,
            Some("cwd"),
        ),
    ];
    for (args, cwd, kind, stage) in cases {
        let e =
            l.rt.exec(&l.id, &l.exec_opts(args, cwd))
                .err()
                .expect("exec must fail");
        assert_eq!(
            (e.kind(), e.stage()),
            (kind, stage),
            "{args:?} in {cwd}: {e}"
        );
    }
    let e =
        l.rt.exec(&l.id, &l.exec_opts(&["true"], "/no/such/dir"))
            .err()
            .expect("fails");
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(
        e.to_string().starts_with("chdir to cwd /no/such/dir: "),
        "{e}"
    );
    // The container is unharmed, and a good exec still works.
    let ok =
        l.rt.exec(&l.id, &l.exec_opts(&["true"], "/"))
            .expect("exec true");
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ok.pid), None);
    assert!(
        matches!(status, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
        "{status:?}"
    );
    l.remove(init);
}

/// create, exec and the foreground wait refuse a process with a second thread, before they
/// make anything; once the thread is joined, create works.
fn threaded_callers_are_refused() {
    let l = Lib::new("lib-threads", &["sleep", "1000"]);
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || stopped.recv());
    let refused = |e: Error, verb: &str| {
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert_eq!(
            e.to_string(),
            format!("{verb} must be called from a single-threaded process (found 2 threads)")
        );
    };
    refused(l.rt.create(&l.opts()).err().expect("refused"), "create");
    refused(
        l.rt.create_for_run(&l.opts()).err().expect("refused"),
        "create",
    );
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(l.c.bundle.config.borrow().clone()).expect("spec");
    let e =
        l.rt.create_with_spec(&l.opts(), spec, true)
            .err()
            .expect("refused");
    refused(e, "create");
    let p = oci_spec::runtime::Process::default();
    refused(
        l.rt.exec(&l.id, &ExecOptions::new(p))
            .err()
            .expect("refused"),
        "exec",
    );
    let e = pelagos_container::wait::wait_foreground(1, None).expect_err("refused");
    refused(e, "the foreground wait");
    assert!(
        !l.c.root.join(&l.c.id).exists(),
        "a refused create made its state dir"
    );
    stop.send(()).expect("stop the thread");
    worker.join().expect("join").expect("recv");
    let init = l.run_detached();
    l.remove(init);
}

/// This binary run as a helper; killed (SIGKILL) and reaped on drop, so a failed test does
/// not leave it running.
struct Helper(Child);

impl Helper {
    /// SIGKILL the helper and reap it.
    fn kill(mut self) {
        self.0.kill().expect("SIGKILL the helper");
        self.0.wait().expect("reap the helper");
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Run this binary as a helper with `role` for `l`'s container; its first line on stdout is
/// returned (a helper that failed prints its error instead, and the test stops on it).
fn spawn_helper(role: &str, l: &Lib) -> (Helper, String) {
    let child = Command::new(std::env::current_exe().expect("current exe"))
        .env(HELPER_ENV, role)
        .arg(&l.c.root)
        .arg(&l.c.bundle.dir)
        .arg(&l.c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn helper");
    let mut helper = Helper(child);
    let mut line = String::new();
    let stdout = helper.0.stdout.take().expect("helper stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read helper");
    (helper, line.trim().to_string())
}

fn pid_of(line: &str) -> i32 {
    line.parse()
        .unwrap_or_else(|_| panic!("helper failed: {line}"))
}

/// Wait (at most 10 s) for `pid`, which is not our child, to exit; whether it did.
fn exits(pidfd: &std::os::fd::OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd that lives for the call.
    unsafe { libc::poll(&mut pfd, 1, 10_000) > 0 }
}

/// The container's process must not hold its creator's pidfd (the launch stub closes it):
/// with CAP_KILL it could signal the monitor through it.
fn assert_no_pidfd(pid: i32) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list fds");
    for fd in fds.flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert_ne!(
            target,
            Path::new("anon_inode:[pidfd]"),
            "pid {pid} holds a pidfd"
        );
    }
}

/// A monitor-like helper creates and starts the container with parent_death_signal=SIGKILL;
/// SIGKILLing the helper kills the container's process.
fn init_dies_with_its_creator() {
    // With no_new_privs, and without it (Docker's default), where the final execve of a root
    // process keeps the signal as long as it does not widen the permitted set.
    for no_new_privileges in [true, false] {
        init_dies_with_its_creator_nnp(no_new_privileges);
    }
}

fn init_dies_with_its_creator_nnp(no_new_privileges: bool) {
    let l = Lib::new("lib-pdeath", &["sleep", "1000"]);
    l.c.bundle.edit(|cfg| {
        cfg["process"]["noNewPrivileges"] = serde_json::json!(no_new_privileges);
    });
    let (child, line) = spawn_helper("run", &l);
    let init = pid_of(&line);
    let pidfd = pelagos_container::sys::pidfd_open(init).expect("pidfd of the init");
    assert!(
        support::pid_alive(init.into()),
        "the init runs while its creator lives"
    );
    assert_no_pidfd(init);
    child.kill();
    assert!(exits(&pidfd), "the init outlived its creator");
    let saved = l.rt.load(&l.id).expect("state");
    assert_eq!(l.rt.status(&saved), Status::Stopped);
    l.rt.delete(&l.id, false).expect("delete");
    l.c.assert_gone();
}

/// An exec'd process with parent_death_signal dies with the process that exec'd it; the
/// container's init (created without one) lives on.
fn exec_process_dies_with_its_caller() {
    let l = Lib::new("lib-pdeath-exec", &["sleep", "1000"]);
    let init = l.run_detached();
    let (child, line) = spawn_helper("exec", &l);
    let execed = pid_of(&line);
    let pidfd = pelagos_container::sys::pidfd_open(execed).expect("pidfd of the exec'd process");
    assert_no_pidfd(execed);
    child.kill();
    assert!(exits(&pidfd), "the exec'd process outlived its caller");
    assert!(
        support::pid_alive(init.into()),
        "the init died with the exec's caller"
    );
    l.remove(init);
}

/// A `create` caller that asked for a parent death signal and exited before `start`: the
/// launch stub finds it gone and does not start the program; `start` says why.
fn creator_gone_before_start_stops_the_start() {
    let l = Lib::new("lib-pdeath-gone", &["sleep", "1000"]);
    let (mut child, line) = spawn_helper("create", &l);
    pid_of(&line);
    assert!(child.0.wait().expect("helper exits").success());
    let e = l.rt.start(&l.id).expect_err("start must fail");
    assert_eq!(
        parts(&e),
        (ErrorKind::Internal, Some(libc::ESRCH), Some("parent")),
        "{e}"
    );
    assert!(
        e.to_string().contains("exited before its program started"),
        "{e}"
    );
    l.rt.delete(&l.id, true).expect("delete");
    l.c.assert_gone();
}

/// The helper side: `run` (create + start with parent_death_signal, print the init's pid,
/// wait to be killed), `exec` (exec `sleep` with it, print the pid, wait), `create` (create
/// with it, print the init's pid, exit).
fn helper(role: &str) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, bundle, id] = &args[..] else {
        println!("usage: root bundle id");
        return;
    };
    let outcome = (|| -> Result<i32, Error> {
        let rt = Runtime::new(root);
        let id = ContainerId::parse(id)?;
        let opts = CreateOptions {
            parent_death_signal: Some(libc::SIGKILL),
            ..CreateOptions::new(id.clone(), Path::new(bundle))
        };
        match role {
            "run" => {
                let mut created = rt.create_for_run(&opts)?;
                rt.start_created(&mut created)?;
                Ok(created.pid)
            }
            "create" => rt.create(&opts).map(|c| c.pid),
            _ => {
                let spec = rt.load_config(&id)?;
                let mut p = spec.process().clone().unwrap_or_default();
                p.set_args(Some(vec!["sleep".into(), "1000".into()]));
                let opts = ExecOptions {
                    parent_death_signal: Some(libc::SIGKILL),
                    ..ExecOptions::new(p)
                };
                rt.exec(&id, &opts).map(|e| e.pid)
            }
        }
    })();
    match outcome {
        Ok(pid) => println!("{pid}"),
        Err(e) => println!("{role}: {e}"),
    }
    if role != "create" {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
