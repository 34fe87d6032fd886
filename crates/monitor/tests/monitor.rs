//! End-to-end tests of `pelagos-monitor`: a busybox root filesystem, a record and a launch
//! plan in a temporary root, the monitor started as the engine starts it, driven over its
//! control socket. Needs root (mounts, cgroups, namespaces).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pelagos_container::{ContainerId, Runtime};
use pelagos_model::config::{ContainerConfig, HealthConfig, RestartPolicy};
use pelagos_model::kind::ErrorKind;
use pelagos_model::launch::LaunchPlan;
use pelagos_model::protocol::{
    self, Attach, Client, ConnectError, ExecSpec, Frame, Reply, Request, WaitCondition,
};
use pelagos_model::record::ContainerRecord;
use pelagos_model::spawn::{start_monitor, MonitorCommand};
use pelagos_model::state::{HealthStatus, Status};
use pelagos_model::store::Containers;

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// A safety net against a hung monitor, not a timing assertion.
const HANG: Duration = Duration::from_secs(60);

/// One test's world: root, runroot, busybox rootfs, a cgroup parent of its own; everything
/// is removed on drop, also when the test failed.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    runroot: PathBuf,
    rootfs: PathBuf,
    cgroup_parent: String,
    store: Containers,
    ids: Vec<ContainerId>,
}

impl World {
    fn new() -> World {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let runroot = tmp.path().join("run");
        let rootfs = tmp.path().join("busybox");
        std::fs::create_dir_all(&rootfs).unwrap();
        let layer = pelagos_testkit::images::busybox_layer().unwrap();
        let mut archive = tar::Archive::new(std::io::Cursor::new(layer.tar_bytes().unwrap()));
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.unpack(&rootfs).unwrap();
        let store = Containers::open(root.join("containers")).unwrap();
        let suffix = pelagos_model::names::new_id().unwrap();
        World {
            cgroup_parent: format!("/pelagos-test-{}", &suffix[..12]),
            _tmp: tmp,
            root,
            runroot,
            rootfs,
            store,
            ids: Vec::new(),
        }
    }

    /// A record running `cmd` and its launch plan.
    fn create(&mut self, cmd: &[&str], change: impl FnOnce(&mut ContainerRecord)) -> ContainerId {
        let mut record = ContainerRecord {
            created: pelagos_model::names::now_rfc3339(),
            image_id: "sha256:test".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            config: ContainerConfig {
                env: vec![PATH.into()],
                ..Default::default()
            },
            ..ContainerRecord::new(pelagos_model::names::new_container_id().unwrap(), "busybox")
        };
        change(&mut record);
        let record = self.store.create(record, None).unwrap();
        let plan = LaunchPlan {
            layers_dir: self.root.join("layers"),
            lowerdirs: vec![self.rootfs.to_string_lossy().into_owned()],
            image_config: None,
            cgroup_parent: self.cgroup_parent.clone(),
            seccomp_cache: self.root.join("cache/seccomp"),
            volumes_dir: self.root.join("volumes"),
            init_path: None,
        };
        std::fs::create_dir_all(&plan.layers_dir).unwrap();
        plan.save(&self.store.dir_of(&record.id)).unwrap();
        self.ids.push(record.id.clone());
        record.id
    }

    /// Starts the monitor of `id` and sends it `first`; the starter connection.
    fn spawn(&self, id: &ContainerId, first: Option<&Request>) -> Client {
        let lock = self.store.try_own(id).unwrap().expect("nobody owns it yet");
        // PELAGOS_MONITOR: another build of the monitor (the release one, to measure it).
        let program = std::env::var_os("PELAGOS_MONITOR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pelagos-monitor")));
        let client = start_monitor(
            MonitorCommand {
                program: &program,
                root: &self.root,
                runroot: &self.runroot,
                id,
                detach: true,
            },
            lock,
            first,
        )
        .unwrap();
        client.socket().set_read_timeout(Some(HANG)).unwrap();
        client
    }

    /// Starts the monitor and the container; the starter connection and the init's pid.
    fn start(&self, id: &ContainerId, attach: Option<Attach>) -> (Client, i32) {
        let mut c = self.spawn(id, Some(&Request::Start { attach }));
        match c.reply().unwrap().0 {
            Reply::Started { pid } => (c, pid),
            other => panic!("{other:?}"),
        }
    }

    fn connect(&self, id: &ContainerId) -> Client {
        let c = match Client::connect(&self.runroot, id) {
            Ok(c) => c,
            Err(ConnectError::NoMonitor) => panic!("no monitor for {id}"),
            Err(ConnectError::Other(e)) => panic!("{e}"),
        };
        c.socket().set_read_timeout(Some(HANG)).unwrap();
        c
    }

    fn record(&self, id: &ContainerId) -> ContainerRecord {
        self.store.get(id.as_str()).unwrap()
    }

    fn state(&self, id: &ContainerId) -> pelagos_model::state::ContainerState {
        match self.connect(id).call(&Request::State).unwrap() {
            Reply::State(s) => s,
            other => panic!("{other:?}"),
        }
    }

    /// Waits for the monitor of `id` to be gone (its owner lock released).
    fn wait_monitor_gone(&self, id: &ContainerId) {
        wait_until(|| !self.store.is_owned(id).unwrap_or(false));
    }

    fn rootfs_of(&self, id: &ContainerId) -> PathBuf {
        self.store.dir_of(id).join("rootfs")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for id in &self.ids {
            if let Ok(mut c) = Client::connect(&self.runroot, id) {
                let _ = c.socket().set_read_timeout(Some(Duration::from_secs(10)));
                let _ = c.call(&Request::Remove { volumes: true });
            }
            let _ = Runtime::new(&self.runroot).delete(id, true);
            let _ = nix::mount::umount2(
                &self.store.dir_of(id).join("rootfs"),
                nix::mount::MntFlags::MNT_DETACH,
            );
        }
        for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            let _ = std::fs::remove_dir(format!("{base}{}", self.cgroup_parent));
        }
    }
}

/// Polls `cond` until it holds (a hung condition fails after a minute).
fn wait_until(mut cond: impl FnMut() -> bool) {
    let limit = std::time::Instant::now() + HANG;
    while !cond() {
        assert!(std::time::Instant::now() < limit, "condition never held");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process runs (a zombie does not).
fn process_runs(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*want))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Output frames until `Exited`: (stdout, stderr, the exit reply).
fn output_until_exit(c: &mut Client) -> (Vec<u8>, Vec<u8>, Reply) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        match c.next_frame().unwrap() {
            Some(Frame::Data { stream, bytes }) if stream == protocol::STDOUT => out.extend(bytes),
            Some(Frame::Data { stream, bytes }) if stream == protocol::STDERR => err.extend(bytes),
            Some(Frame::Control { message, .. }) => return (out, err, message),
            other => panic!("{other:?}"),
        }
    }
}

fn attach_output() -> Attach {
    Attach {
        stdout: true,
        stderr: true,
        ..Default::default()
    }
}

/// A container that runs until it sees /tmp/go, then exits 3.
const WAIT_FOR_GO: &[&str] = &[
    "sh",
    "-c",
    "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3",
];

#[test]
fn output_reaches_the_attached_client_and_the_log() {
    let mut w = World::new();
    let id = w.create(&["sh", "-c", "echo out; echo err >&2; exit 3"], |_| {});
    let (mut c, _) = w.start(&id, Some(attach_output()));
    let (out, err, exit) = output_until_exit(&mut c);
    assert_eq!(String::from_utf8_lossy(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(
        exit,
        Reply::Exited {
            exit_code: 3,
            status: Status::Exited
        }
    );
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!((r.state.status, r.state.exit_code), (Status::Exited, 3));
    assert!(r.state.owner.is_none() && r.state.finished_at.is_some());
    let log = std::fs::read_to_string(w.store.dir_of(&id).join("container.log")).unwrap();
    assert!(log.contains(r#""log":"out\n","stream":"stdout""#), "{log}");
    assert!(log.contains(r#""log":"err\n","stream":"stderr""#), "{log}");
    assert!(!is_mounted(&w.rootfs_of(&id)));
    assert!(!protocol::socket_path(&w.runroot, &id).exists());
    assert!(!w.runroot.join(id.as_str()).exists());
}

#[test]
fn wait_gets_the_exit_code() {
    let mut w = World::new();
    let id = w.create(WAIT_FOR_GO, |_| {});
    let (_starter, _) = w.start(&id, None);
    let mut waiter = w.connect(&id);
    waiter
        .send(
            &Request::Wait {
                condition: WaitCondition::NotRunning,
            },
            &[],
        )
        .unwrap();
    // Answers come in order: once State is answered, the Wait is registered.
    waiter.send(&Request::State, &[]).unwrap();
    assert!(matches!(waiter.reply().unwrap().0, Reply::State(_)));
    std::fs::write(w.rootfs_of(&id).join("tmp/go"), "").unwrap();
    let exit = waiter.reply().unwrap().0;
    assert_eq!(
        exit,
        Reply::Exited {
            exit_code: 3,
            status: Status::Exited
        }
    );
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm() {
    let mut w = World::new();
    let id = w.create(
        &["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
        |_| {},
    );
    let (_starter, pid) = w.start(&id, None);
    let reply = w
        .connect(&id)
        .call(&Request::Stop {
            signal: None,
            timeout: Some(1),
            restart: false,
        })
        .unwrap();
    assert_eq!(
        reply,
        Reply::Exited {
            exit_code: 137,
            status: Status::Exited
        }
    );
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!((r.state.status, r.state.exit_code), (Status::Exited, 137));
    assert!(r.state.stop_requested);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn stop_during_restart_backoff_answers_at_once() {
    let mut w = World::new();
    let id = w.create(&["sh", "-c", "exit 1"], |r| {
        r.host_config.restart_policy = RestartPolicy {
            name: "always".into(),
            maximum_retry_count: 0,
        };
    });
    let (_starter, _) = w.start(&id, None);
    // After four restarts the backoff is 1.6 s: long enough to find it restarting.
    wait_until(|| {
        let s = w.state(&id);
        s.status == Status::Restarting && s.restart_count >= 4
    });
    let reply = w
        .connect(&id)
        .call(&Request::Stop {
            signal: None,
            timeout: None,
            restart: false,
        })
        .unwrap();
    assert!(
        matches!(
            reply,
            Reply::Exited {
                exit_code: 1,
                status: Status::Exited
            }
        ),
        "{reply:?}"
    );
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!(r.state.status, Status::Exited);
    assert!(r.state.stop_requested);
    assert!(!is_mounted(&w.rootfs_of(&id)));
}

#[test]
fn on_failure_restarts_at_most_n_times() {
    let mut w = World::new();
    let id = w.create(&["sh", "-c", "exit 2"], |r| {
        r.host_config.restart_policy = RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: 2,
        };
    });
    let (_starter, _) = w.start(&id, None);
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!((r.state.status, r.state.exit_code), (Status::Exited, 2));
    assert_eq!(r.state.restart_count, 2);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
    s
}

#[test]
fn exec_runs_with_the_descriptors_sent_and_reports_missing_commands() {
    let mut w = World::new();
    let id = w.create(&["sleep", "1000"], |_| {});
    let (_starter, _) = w.start(&id, None);
    let mut c = w.connect(&id);
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let spec = ExecSpec {
        cmd: strings(&["sh", "-c", "echo hi; echo oops >&2"]),
        ..Default::default()
    };
    c.send(&Request::Exec(spec), &[out_w.as_fd(), err_w.as_fd()])
        .unwrap();
    drop((out_w, err_w));
    assert!(matches!(c.reply().unwrap().0, Reply::ExecStarted { .. }));
    assert_eq!(c.reply().unwrap().0, Reply::ExecExited { exit_code: 0 });
    assert_eq!(read_all(out_r), "hi\n");
    assert_eq!(read_all(err_r), "oops\n");

    let missing = ExecSpec {
        cmd: strings(&["no-such-command"]),
        ..Default::default()
    };
    match c.call(&Request::Exec(missing)) {
        Err(pelagos_model::Error::Remote(e)) => {
            assert_eq!(e.kind, ErrorKind::ExecutableNotFound, "{e}")
        }
        other => panic!("{other:?}"),
    }
    let code = ExecSpec {
        cmd: strings(&["sh", "-c", "exit 5"]),
        ..Default::default()
    };
    assert!(matches!(
        c.call(&Request::Exec(code)).unwrap(),
        Reply::ExecStarted { .. }
    ));
    assert_eq!(c.reply().unwrap().0, Reply::ExecExited { exit_code: 5 });
}

#[test]
fn pause_and_unpause_show_in_the_state() {
    let mut w = World::new();
    let id = w.create(&["sleep", "1000"], |_| {});
    let (_starter, _) = w.start(&id, None);
    let mut c = w.connect(&id);
    assert_eq!(c.call(&Request::Pause).unwrap(), Reply::Ok);
    assert_eq!(w.state(&id).status, Status::Paused);
    assert_eq!(w.record(&id).state.status, Status::Paused);
    assert!(c.call(&Request::Pause).is_err());
    assert_eq!(c.call(&Request::Unpause).unwrap(), Reply::Ok);
    assert_eq!(w.state(&id).status, Status::Running);
}

#[test]
fn remove_leaves_nothing_behind() {
    let mut w = World::new();
    let id = w.create(&["sleep", "1000"], |r| {
        r.host_config.binds = vec!["/scratch".into()];
    });
    let (_starter, pid) = w.start(&id, None);
    let monitor = w
        .record(&id)
        .state
        .owner
        .expect("the monitor is recorded")
        .pid;
    let anonymous = w.record(&id).anonymous_volumes;
    assert_eq!(anonymous.len(), 1);
    let volume_dir = w.root.join("volumes").join(&anonymous[0]);
    assert!(volume_dir.exists());
    let mut c = w.connect(&id);
    c.send(&Request::Remove { volumes: true }, &[]).unwrap();
    assert!(matches!(c.reply().unwrap().0, Reply::Removed { .. }));
    assert!(c.next_frame().unwrap().is_none());
    wait_until(|| !process_runs(monitor));
    assert!(w.store.get(id.as_str()).is_err());
    assert!(!w.store.dir_of(&id).exists());
    assert!(!protocol::socket_path(&w.runroot, &id).exists());
    assert!(!is_mounted(&w.rootfs_of(&id)));
    assert!(!w.runroot.join(id.as_str()).exists());
    assert!(!volume_dir.exists());
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn a_starter_that_leaves_without_start_leaves_the_container_created() {
    let mut w = World::new();
    let id = w.create(&["true"], |_| {});
    let starter = w.spawn(&id, None);
    drop(starter);
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!(r.state.status, Status::Created);
    assert!(r.state.owner.is_none());
    assert!(!protocol::socket_path(&w.runroot, &id).exists());
    assert!(!is_mounted(&w.rootfs_of(&id)));
}

#[test]
fn a_missing_command_fails_the_start_with_127() {
    let mut w = World::new();
    let id = w.create(&["no-such-command"], |_| {});
    let mut starter = w.spawn(&id, None);
    match starter.call(&Request::Start { attach: None }) {
        Err(pelagos_model::Error::Remote(e)) => {
            assert_eq!(e.kind, ErrorKind::ExecutableNotFound, "{e}")
        }
        other => panic!("{other:?}"),
    }
    w.wait_monitor_gone(&id);
    let r = w.record(&id);
    assert_eq!((r.state.status, r.state.exit_code), (Status::Created, 127));
    assert!(
        r.state.error.contains("no-such-command"),
        "{}",
        r.state.error
    );
    assert!(!is_mounted(&w.rootfs_of(&id)));
    assert!(!w.runroot.join(id.as_str()).exists());
}

#[test]
fn auto_remove_deletes_the_record_at_exit() {
    let mut w = World::new();
    let id = w.create(WAIT_FOR_GO, |r| r.host_config.auto_remove = true);
    let (_starter, _) = w.start(&id, None);
    let mut waiter = w.connect(&id);
    waiter
        .send(
            &Request::Wait {
                condition: WaitCondition::Removed,
            },
            &[],
        )
        .unwrap();
    waiter.send(&Request::State, &[]).unwrap();
    assert!(matches!(waiter.reply().unwrap().0, Reply::State(_)));
    std::fs::write(w.rootfs_of(&id).join("tmp/go"), "").unwrap();
    assert_eq!(waiter.reply().unwrap().0, Reply::Removed { exit_code: 3 });
    w.wait_monitor_gone(&id);
    assert!(!w.store.dir_of(&id).exists());
}

#[test]
fn healthchecks_mark_the_container_healthy_or_unhealthy() {
    let mut w = World::new();
    let health = |test: &[&str]| HealthConfig {
        test: strings(test),
        interval: 100_000_000,
        retries: 1,
        ..Default::default()
    };
    let good = w.create(&["sleep", "1000"], |r| {
        r.config.healthcheck = Some(health(&["CMD-SHELL", "echo fine"]))
    });
    let bad = w.create(&["sleep", "1000"], |r| {
        r.config.healthcheck = Some(health(&["CMD", "false"]))
    });
    let _a = w.start(&good, None);
    let _b = w.start(&bad, None);
    let status = |id| w.record(id).state.health.map(|h| h.status);
    wait_until(|| status(&good) == Some(HealthStatus::Healthy));
    wait_until(|| status(&bad) == Some(HealthStatus::Unhealthy));
    let log = w.record(&good).state.health.unwrap().log;
    assert_eq!(log.last().map(|l| l.output.as_str()), Some("fine\n"));
    assert!(log.len() <= 5);
}

#[test]
fn stdin_reaches_the_container_and_detach_keys_detach_a_tty_client() {
    let mut w = World::new();
    let id = w.create(&["sh", "-c", "read line; echo got $line"], |r| {
        r.config.open_stdin = true;
    });
    let attach = Attach {
        stdin: true,
        ..attach_output()
    };
    let (mut c, _) = w.start(&id, Some(attach));
    c.send_stdin(b"hello\n").unwrap();
    let (out, _, exit) = output_until_exit(&mut c);
    assert_eq!(String::from_utf8_lossy(&out), "got hello\n");
    assert!(matches!(exit, Reply::Exited { exit_code: 0, .. }));

    let tty = w.create(&["sh"], |r| {
        r.config.tty = true;
        r.config.open_stdin = true;
    });
    let attach = Attach {
        stdin: true,
        stdout: true,
        ..Default::default()
    };
    let (mut c, _) = w.start(&tty, Some(attach));
    c.send(
        &Request::Resize {
            height: 40,
            width: 100,
        },
        &[],
    )
    .unwrap();
    c.send_stdin(b"stty size; echo done\n").unwrap();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("40 100") {
        match c.next_frame().unwrap() {
            Some(Frame::Data { bytes, .. }) => out.extend(bytes),
            Some(Frame::Control { message, .. }) => assert_eq!(message, Reply::Ok),
            None => panic!("closed: {}", String::from_utf8_lossy(&out)),
        }
    }
    c.send_stdin(b"\x10\x11").unwrap();
    loop {
        match c.next_frame().unwrap() {
            Some(Frame::Data { .. }) => {}
            Some(Frame::Control { message, .. }) => {
                assert_eq!(message, Reply::Detached);
                break;
            }
            None => panic!("closed before Detached"),
        }
    }
    assert_eq!(w.state(&tty).status, Status::Running);
}

/// The container's init carries the parent-death signal SIGKILL: it dies with its monitor,
/// and the monitor's owner lock is free at once.
#[test]
fn killing_the_monitor_kills_the_container() {
    let mut w = World::new();
    let id = w.create(&["sleep", "1000"], |_| {});
    let (_starter, pid) = w.start(&id, None);
    let owner = w.record(&id).state.owner.expect("the monitor is recorded");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(owner.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    w.wait_monitor_gone(&id);
    assert!(!w.store.is_owned(&id).unwrap());
    wait_until(|| !Path::new(&format!("/proc/{pid}")).exists());
}

/// The monitor's memory while a container runs (`PELAGOS_MONITOR=<release build> cargo test
/// -p pelagos-monitor --test monitor -- --ignored --nocapture monitor_memory`).
#[test]
#[ignore = "a measurement: prints the monitor's smaps_rollup"]
fn monitor_memory() {
    let mut w = World::new();
    let id = w.create(&["sleep", "1000"], |_| {});
    let (_starter, _) = w.start(&id, Some(attach_output()));
    let monitor = w
        .record(&id)
        .state
        .owner
        .expect("the monitor is recorded")
        .pid;
    let rollup = || {
        let text = std::fs::read_to_string(format!("/proc/{monitor}/smaps_rollup")).unwrap();
        text.lines()
            .filter(|l| l.starts_with("Rss") || l.starts_with("Pss"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    w.state(&id);
    // The monitor sheds what a burst of work left resident a second after it.
    let idle = || std::thread::sleep(Duration::from_secs(2));
    idle();
    println!("after start: {}", rollup());
    let mut c = w.connect(&id);
    let (out_r, out_w) = pipe();
    let spec = ExecSpec {
        cmd: strings(&["true"]),
        ..Default::default()
    };
    c.send(&Request::Exec(spec), &[out_w.as_fd(), out_w.as_fd()])
        .unwrap();
    drop(out_w);
    assert!(matches!(c.reply().unwrap().0, Reply::ExecStarted { .. }));
    assert_eq!(c.reply().unwrap().0, Reply::ExecExited { exit_code: 0 });
    drop(out_r);
    idle();
    println!("after an exec: {}", rollup());
    if std::env::var_os("PELAGOS_SMAPS").is_some() {
        let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).unwrap();
        for l in status.lines() {
            if l.starts_with("Threads:") || l.starts_with("SigCgt:") {
                println!("{l}");
            }
        }
        let smaps = std::fs::read_to_string(format!("/proc/{monitor}/smaps")).unwrap();
        for l in smaps.lines() {
            let head = l.split_whitespace().next().unwrap_or("");
            if !head.ends_with(':')
                || ["Rss:", "Pss:", "Private_Dirty:", "Anonymous:"].contains(&head)
            {
                println!("{l}");
            }
        }
    }
}
