//! The container process: args, env, cwd, user and groups, umask, capabilities,
//! no_new_privileges, rlimits, oom_score_adj, scheduler, I/O priority, personality, the
//! terminal through --console-socket, --preserve-fds and LISTEN_FDS, seccomp (errno, kill,
//! argument conditions, user notification through listenerPath).

#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// The value of a `Name:\tvalue` line of /proc/self/status text, whitespace-normalised.
fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in\n{status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Bit numbers of the capabilities used here.
fn cap_bit(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("add {other} to cap_bit"),
    }
}

fn cap_mask(names: &[&str]) -> String {
    let m = names.iter().fold(0u64, |m, n| m | (1u64 << cap_bit(n)));
    format!("{m:016x}")
}

/// Make `fd` the child's descriptor 3 (without close-on-exec) when `cmd` runs.
fn with_fd3(cmd: &mut Command, fd: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and only calls the
    // async-signal-safe dup2/fcntl.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn args_env_and_cwd_created_if_missing() {
    let c = Container::new("proc-args");
    c.bundle.edit(|cfg| {
        cfg["process"]["args"] = json!([
            "sh",
            "-c",
            "echo \"$0|$1|$FOO|$(pwd)\"; tr '\\0' '\\n' < /proc/1/environ; true",
            "zero",
            "one two"
        ]);
        cfg["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz", "HOME=/root"]);
        cfg["process"]["cwd"] = json!("/work/deep/dir");
    });
    let out = c.rt(&["run", &c.id]);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(
        out.stdout_text(),
        "zero|one two|bar baz|/work/deep/dir\nPATH=/bin\nFOO=bar baz\nHOME=/root\n"
    );
    assert!(c.bundle.rootfs().join("work/deep/dir").is_dir());
}

#[test]
fn missing_executable_fails_at_create() {
    let c = Container::new("proc-noexe");
    c.bundle.set_args(&["/no/such/program"]);
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("/no/such/program"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn user_uid_gid_and_additional_gids() {
    let c = Container::new("proc-user");
    c.bundle.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 3000]});
    });
    let out = sh_ok(&c, "id -u; id -g; cat /proc/self/status");
    let (ids, status) = out.split_at(out.find("Name:").expect("status"));
    assert_eq!(ids, "1000\n1001\n");
    assert_eq!(status_field(status, "Uid"), "1000 1000 1000 1000");
    assert_eq!(status_field(status, "Gid"), "1001 1001 1001 1001");
    assert_eq!(status_field(status, "Groups"), "2000 3000");
    // A non-root user ends with no capabilities at all (nothing ambient here).
    assert_eq!(status_field(status, "CapEff"), "0000000000000000");
    assert_eq!(status_field(status, "CapPrm"), "0000000000000000");
}

#[test]
fn umask_from_config_and_default() {
    let c = Container::new("proc-umask");
    c.bundle
        .edit(|cfg| cfg["process"]["user"]["umask"] = json!(0o077));
    let out = sh_ok(&c, "umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(out, "0077\n600\n");
    let c = Container::new("proc-umask-default");
    let out = sh_ok(&c, "umask; touch /tmp/f; stat -c %a /tmp/f");
    assert_eq!(out, "0022\n644\n");
}

#[test]
fn capabilities_all_sets_match_config() {
    let set = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_AUDIT_WRITE",
    ];
    let c = Container::new("proc-caps");
    c.bundle.edit(|cfg| {
        cfg["process"]["capabilities"] = json!({
            "bounding": set, "effective": set, "permitted": set,
            "inheritable": set, "ambient": set
        });
    });
    let status = sh_ok(&c, "cat /proc/self/status");
    let want = cap_mask(&set);
    for field in ["CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&status, field), want, "{field}");
    }
}

#[test]
fn capabilities_bounding_wider_than_effective() {
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
    ];
    let c = Container::new("proc-caps-bnd");
    c.bundle.edit(|cfg| {
        cfg["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]
        });
    });
    let status = sh_ok(&c, "cat /proc/self/status");
    assert_eq!(status_field(&status, "CapBnd"), cap_mask(&bounding));
    assert_eq!(status_field(&status, "CapEff"), cap_mask(&["CAP_KILL"]));
    assert_eq!(status_field(&status, "CapPrm"), cap_mask(&["CAP_KILL"]));
    assert_eq!(status_field(&status, "CapInh"), cap_mask(&[]));
    assert_eq!(status_field(&status, "CapAmb"), cap_mask(&[]));
}

#[test]
fn ambient_capabilities_for_a_non_root_user() {
    let c = Container::new("proc-caps-amb");
    c.bundle.edit(|cfg| {
        cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        cfg["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"],
            "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
    });
    let status = sh_ok(&c, "cat /proc/self/status");
    let nbs = cap_mask(&["CAP_NET_BIND_SERVICE"]);
    // Across execve a non-root process keeps exactly its ambient set.
    assert_eq!(status_field(&status, "CapAmb"), nbs);
    assert_eq!(status_field(&status, "CapEff"), nbs);
    assert_eq!(status_field(&status, "CapPrm"), nbs);
    assert_eq!(
        status_field(&status, "CapInh"),
        cap_mask(&["CAP_NET_BIND_SERVICE", "CAP_KILL"])
    );
    assert_eq!(
        status_field(&status, "CapBnd"),
        cap_mask(&["CAP_NET_BIND_SERVICE", "CAP_KILL", "CAP_CHOWN"])
    );
}

#[test]
fn without_cap_net_raw_ping_is_denied() {
    let c = Container::new("proc-noraw");
    let out = sh(&c, "ping -c 1 -W 1 127.0.0.1");
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("permission denied"),
        "{}",
        out.stderr_text()
    );
    // With CAP_NET_RAW the raw socket opens (the new netns has its loopback down, so the
    // ping itself still fails, but not for lack of permission).
    let c = Container::new("proc-raw");
    c.bundle.edit(|cfg| {
        for set in ["bounding", "effective", "permitted"] {
            cfg["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_NET_RAW"));
        }
    });
    let out = sh(&c, "ping -c 1 -W 1 127.0.0.1");
    assert!(
        !out.stderr_text().contains("permission denied"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn unknown_capability_is_refused_at_create() {
    let c = Container::new("proc-badcap");
    c.bundle.edit(|cfg| {
        cfg["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_PELAGOS_BOGUS"));
    });
    let out = c.create();
    assert!(!out.status.success());
    assert!(
        out.stderr_text().contains("CAP_PELAGOS_BOGUS"),
        "{}",
        out.stderr_text()
    );
    c.assert_gone();
}

#[test]
fn no_new_privileges_on_and_off() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let c = Container::new("proc-nnp");
        c.bundle
            .edit(|cfg| cfg["process"]["noNewPrivileges"] = json!(nnp));
        let status = sh_ok(&c, "cat /proc/self/status");
        assert_eq!(status_field(&status, "NoNewPrivs"), want, "nnp {nnp}");
    }
}

#[test]
fn rlimits_are_applied() {
    let c = Container::new("proc-rlimits");
    c.bundle.edit(|cfg| {
        cfg["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1234, "hard": 2345},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 512, "hard": 1024}
        ]);
    });
    let out = sh_ok(
        &c,
        "ulimit -n; ulimit -H -n; ulimit -c; grep -E '^Max (open files|processes)' /proc/self/limits",
    );
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "1234",
            "2345",
            "0",
            "Max processes 512 1024 processes",
            "Max open files 1234 2345 files"
        ]
    );
}

#[test]
fn rlimit_above_the_hard_limit_fails_at_create() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|v| v.parse().ok())
        .expect("hard nofile of the test process");
    let c = Container::new("proc-rlimit-fail");
    c.bundle.edit(|cfg| {
        cfg["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1000}]);
    });
    let out = c.create();
    assert!(
        !out.status.success(),
        "raising the hard limit needs CAP_SYS_RESOURCE"
    );
    let err = out.stderr_text();
    assert!(
        err.to_lowercase().contains("rlimit") && err.to_lowercase().contains("nofile"),
        "the error names the rlimit: {err}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    c.assert_gone();
}

#[test]
fn oom_score_adj_is_set() {
    let c = Container::new("proc-oom");
    c.bundle
        .edit(|cfg| cfg["process"]["oomScoreAdj"] = json!(500));
    assert_eq!(sh_ok(&c, "cat /proc/self/oom_score_adj"), "500\n");
}

#[test]
fn scheduler_policy_batch_and_idle() {
    // /proc/PID/stat field 41 is the policy (3 batch, 5 idle), field 19 the nice value.
    for (policy, nice, want) in [("SCHED_BATCH", 7, "3 7"), ("SCHED_IDLE", 0, "5 0")] {
        let c = Container::new("proc-sched");
        c.bundle.edit(|cfg| {
            cfg["process"]["scheduler"] = json!({"policy": policy, "nice": nice});
        });
        let out = sh_ok(&c, "awk '{print $41, $19}' /proc/self/stat");
        assert_eq!(out.trim(), want, "{policy}");
    }
}

#[test]
fn scheduler_flag_reset_on_fork_in_the_spec_spelling() {
    // runtime-spec spells it SCHED_FLAG_RESET_ON_FORK (oci-spec-rs: SCHED_RESET_ON_FORK). With
    // it, the process keeps its negative nice but its children start at nice 0.
    let c = Container::new("proc-sched-reset");
    c.bundle.edit(|cfg| {
        cfg["process"]["scheduler"] = json!({
            "policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]
        });
    });
    let out = sh_ok(
        &c,
        "read -r own < /proc/$$/stat; set -- $own; shift 18; echo \"$1\"; \
         awk '{print $19}' /proc/self/stat; true",
    );
    // (`; true`: sh would exec its last command instead of forking it.)
    assert_eq!(out, "-5\n0\n");
}

#[test]
fn io_priority_classes() {
    for (class, prio, want) in [
        ("IOPRIO_CLASS_BE", 6, "best-effort: prio 6"),
        ("IOPRIO_CLASS_IDLE", 0, "idle"),
        ("IOPRIO_CLASS_RT", 2, "realtime: prio 2"),
    ] {
        let c = Container::new("proc-ioprio");
        c.bundle.edit(|cfg| {
            cfg["process"]["ioPriority"] = json!({"class": class, "priority": prio});
        });
        let out = sh_ok(&c, "ionice -p $$");
        assert_eq!(out.trim(), want, "{class}");
    }
}

#[test]
fn personality_linux32() {
    let c = Container::new("proc-pers");
    c.bundle
        .edit(|cfg| cfg["linux"]["personality"] = json!({"domain": "LINUX32"}));
    assert_eq!(sh_ok(&c, "uname -m"), "i686\n");
}

/// Receive one fd sent with SCM_RIGHTS on `stream`.
fn recv_one_fd(stream: &std::os::unix::net::UnixStream) -> (Vec<u8>, OwnedFd) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = vec![0u8; 65536];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let mut fd = None;
    for cmsg in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for f in fds {
                // SAFETY: SCM_RIGHTS just installed this descriptor in our table.
                let owned = unsafe { OwnedFd::from_raw_fd(f) };
                fd.get_or_insert(owned);
            }
        }
    }
    let n = msg.bytes;
    buf.truncate(n);
    (buf, fd.expect("no fd in the message"))
}

/// Accept one connection within `limit`.
fn accept_within(listener: &UnixListener, limit: Duration) -> std::os::unix::net::UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "nobody connected to the socket");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Read `fd` until EOF/EIO or `limit`.
fn read_all_within(fd: &OwnedFd, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n <= 0 {
            continue;
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => panic!("read pty: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `create` with extra flags; the container's stdio goes to files as in the harness.
fn create_with(c: &Container, extra: &[&str]) -> Output {
    let stdout = std::fs::File::create(c.bundle.dir.join("stdout")).unwrap();
    let stderr = std::fs::File::create(c.bundle.dir.join("stderr")).unwrap();
    let mut args = vec!["create", "--bundle"];
    let dir = c.bundle.dir.to_string_lossy().into_owned();
    args.push(&dir);
    args.extend_from_slice(extra);
    args.push(&c.id);
    let status = c
        .command(&args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()
        .expect("spawn runtime");
    Output {
        status,
        stdout: std::fs::read(c.bundle.dir.join("stdout")).unwrap_or_default(),
        stderr: std::fs::read(c.bundle.dir.join("stderr")).unwrap_or_default(),
    }
}

#[test]
fn terminal_through_console_socket() {
    let c = Container::new("proc-tty");
    let sock = c.bundle.dir.join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    c.bundle.edit(|cfg| {
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["consoleSize"] = json!({"height": 33, "width": 101});
        cfg["process"]["args"] = json!(["sh", "-c", "tty; stty size; echo out-$((6*7))"]);
    });
    let out = create_with(&c, &["--console-socket", sock.to_str().unwrap()]);
    assert!(out.status.success(), "{}", out.stderr_text());
    let stream = accept_within(&listener, Duration::from_secs(10));
    let (_, master) = recv_one_fd(&stream);
    // The fd is a pty master: TIOCGPTN tells its slave's number.
    let mut ptn: u32 = 0;
    // SAFETY: TIOCGPTN writes one u32 through the valid pointer.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut ptn) };
    assert_eq!(r, 0, "the received fd is not a pty master");
    c.rt_ok(&["start", &c.id]);
    let text = read_all_within(&master, Duration::from_secs(10));
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert_eq!(
        lines,
        [format!("/dev/pts/{ptn}").as_str(), "33 101", "out-42"],
        "{text:?}"
    );
    c.wait_status("stopped");
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let c = Container::new("proc-tty-nosock");
    c.bundle
        .edit(|cfg| cfg["process"]["terminal"] = json!(true));
    let out = c.create();
    assert!(!out.status.success());
    let err = out.stderr_text();
    assert!(
        err.contains("tty") && err.contains("console-socket"),
        "{err}"
    );
    c.assert_gone();
}

#[test]
fn foreground_run_and_exec_proxy_a_terminal() {
    // run and exec in the foreground with terminal:true and no --console-socket: the runtime
    // receives the pty master itself (a message carrying the pty's name, as on a console
    // socket) and proxies it to its own stdio. script(1) gives the runtime a terminal.
    let c = Container::new("proc-tty-fg");
    c.bundle.edit(|cfg| {
        cfg["process"]["terminal"] = json!(true);
        cfg["process"]["args"] = json!(["sh", "-c", "tty; test -t 1 && echo tty-out; sleep 30"]);
    });
    let rt = runtime_bin();
    let root = c.root.display().to_string();
    let run = format!("{} --root {root} run {}", rt.display(), c.id);
    let child = Command::new("script")
        .args(["-qec", &run, "/dev/null"])
        .current_dir(&c.bundle.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn script");
    wait_until("the container runs", || {
        let out = c.rt(&["state", &c.id]);
        out.status.success() && out.stdout_text().contains("\"running\"")
    });
    let exec = format!("{} --root {root} exec -t {} tty", rt.display(), c.id);
    let out = Command::new("script")
        .args(["-qec", &exec, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script exec");
    let exec_text = String::from_utf8_lossy(&out.stdout).into_owned();
    c.rt_ok(&["kill", &c.id, "KILL"]);
    let run_out = child.wait_with_output().expect("wait script");
    let run_text = String::from_utf8_lossy(&run_out.stdout);
    assert!(
        run_text.contains("/dev/pts/0") && run_text.contains("tty-out"),
        "{run_text}"
    );
    assert!(exec_text.contains("/dev/pts/1"), "{exec_text}");
    c.assert_gone();
}

#[test]
fn preserve_fds_passes_fd_3() {
    let c = Container::new("proc-preserve");
    let path = c.bundle.dir.join("fd3.txt");
    let file = std::fs::File::create(&path).unwrap();
    c.bundle.set_args(&[
        "sh",
        "-c",
        "echo preserved >&3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let mut cmd = c.command(&["run", "--preserve-fds", "1", &c.id]);
    cmd.stdin(Stdio::null());
    with_fd3(&mut cmd, file.as_raw_fd());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "preserved\n");
    // ls's own directory fd is the 4th.
    assert_eq!(out.stdout_text(), "0 1 2 3 4 ");

    // Without --preserve-fds the same fd does not reach the container.
    std::fs::write(&path, "").unwrap();
    let mut cmd = c.command(&["run", &c.id]);
    cmd.stdin(Stdio::null());
    with_fd3(&mut cmd, file.as_raw_fd());
    let out = cmd.output().unwrap();
    assert_eq!(out.stdout_text(), "0 1 2 3 ", "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("Bad file descriptor"),
        "{}",
        out.stderr_text()
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

/// Run the runtime the way systemd socket activation does: LISTEN_FDS=1, LISTEN_PID = the
/// runtime's own pid (set by a shell that then execs it), the socket at fd 3.
fn run_socket_activated(c: &Container, fd: RawFd) -> Output {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$@\"")
        .arg("sh")
        .arg(runtime_bin())
        .arg("--root")
        .arg(&c.root)
        .args(["run", &c.id])
        .current_dir(&c.bundle.dir)
        .env("LISTEN_FDS", "1")
        .stdin(Stdio::null());
    with_fd3(&mut cmd, fd);
    cmd.output().unwrap()
}

#[test]
fn listen_fds_are_passed_through() {
    let c = Container::new("proc-listen");
    let path = c.bundle.dir.join("listen.txt");
    let file = std::fs::File::create(&path).unwrap();
    c.bundle.set_args(&["sh", "-c", "echo activated >&3"]);
    let out = run_socket_activated(&c, file.as_raw_fd());
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "activated\n");
}

#[test]
fn listen_fds_env_reaches_the_container() {
    // runc appends LISTEN_FDS=<n> and LISTEN_PID=1 to the process env when it passes
    // socket-activation fds: without them sd_listen_fds() in the container finds nothing.
    let c = Container::new("proc-listen-env");
    let path = c.bundle.dir.join("listen.txt");
    let file = std::fs::File::create(&path).unwrap();
    c.bundle
        .set_args(&["sh", "-c", "echo \"fds=$LISTEN_FDS pid=$LISTEN_PID\""]);
    let out = run_socket_activated(&c, file.as_raw_fd());
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "fds=1 pid=1\n");
}

fn set_seccomp(c: &Container, profile: Value) {
    c.bundle.edit(|cfg| cfg["linux"]["seccomp"] = profile);
}

#[test]
fn seccomp_errno_denies_mkdir() {
    let c = Container::new("proc-seccomp-errno");
    set_seccomp(
        &c,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        }),
    );
    let out = sh(
        &c,
        "mkdir /tmp/d; echo rc=$?; touch /tmp/f && echo touch-ok",
    );
    assert_eq!(
        out.stdout_text(),
        "rc=1\ntouch-ok\n",
        "{}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("Operation not permitted"),
        "{}",
        out.stderr_text()
    );
    assert!(!c.bundle.rootfs().join("tmp/d").exists());
    let status = sh_ok(&c, "cat /proc/self/status");
    assert_eq!(status_field(&status, "Seccomp"), "2");
}

#[test]
fn seccomp_kill_ends_the_process() {
    let c = Container::new("proc-seccomp-kill");
    set_seccomp(
        &c,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]
        }),
    );
    c.bundle
        .set_args(&["sh", "-c", "echo before; exec mkdir /tmp/d"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.stdout_text(), "before\n");
    assert_eq!(
        out.status.code(),
        Some(128 + libc::SIGSYS),
        "killed by SIGSYS: {}",
        out.stderr_text()
    );
    assert!(!c.bundle.rootfs().join("tmp/d").exists());
}

#[test]
fn seccomp_argument_condition() {
    let c = Container::new("proc-seccomp-arg");
    set_seccomp(
        &c,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}
            ]
        }),
    );
    let out = sh(
        &c,
        "touch /tmp/f; chmod 750 /tmp/f; echo a=$?; chmod 777 /tmp/f; echo b=$?; stat -c %a /tmp/f",
    );
    assert_eq!(
        out.stdout_text(),
        "a=0\nb=1\n750\n",
        "{}",
        out.stderr_text()
    );
    assert!(out.stderr_text().contains("Operation not permitted"));
}

#[test]
fn seccomp_notify_sends_listener_fd_to_agent() {
    let c = Container::new("proc-seccomp-notify");
    let sock = c.bundle.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    set_seccomp(
        &c,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "pelagos-meta",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    c.bundle.set_args(&[
        "sh",
        "-c",
        "mkdir /tmp/n; echo rc=$?; test -d /tmp/n && echo EXISTS; echo end",
    ]);

    let agent = std::thread::spawn(move || {
        let (msg, fd) = agent_accept(&listener);
        (msg, serve_notifications(&fd))
    });
    let out = c.rt(&["run", &c.id]);
    let (msg, answered) = agent.join().expect("agent thread");
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "rc=1\nend\n", "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("Invalid cross-device link"),
        "the agent's answer reached mkdir: {}",
        out.stderr_text()
    );
    assert!(
        answered
            .iter()
            .all(|nr| *nr == libc::SYS_mkdir || *nr == libc::SYS_mkdirat),
        "{answered:?}"
    );
    assert!(!answered.is_empty());
    assert_eq!(msg["fds"], json!(["seccompFd"]), "{msg}");
    assert_eq!(msg["metadata"], "pelagos-meta", "{msg}");
    assert_eq!(msg["state"]["id"], c.id.as_str(), "{msg}");
    assert!(msg["ociVersion"].is_string(), "{msg}");
    assert_eq!(
        Path::new(msg["state"]["bundle"].as_str().unwrap_or("")),
        c.bundle.dir.as_path(),
        "{msg}"
    );
    // runtime-spec: `pid` is the container process's pid as seen by the runtime (the agent
    // reads /proc/PID/mem with it), i.e. the host pid, the same as state.pid here.
    assert_eq!(
        msg["pid"], msg["state"]["pid"],
        "containerProcessState.pid must be the host pid: {msg}"
    );
}

/// The seccomp agent's side of one connection: the containerProcessState JSON and the
/// listener fd.
fn agent_accept(listener: &UnixListener) -> (Value, OwnedFd) {
    let mut stream = accept_within(listener, Duration::from_secs(10));
    let (mut bytes, fd) = recv_one_fd(&stream);
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    bytes.extend(rest);
    let msg: Value = serde_json::from_slice(&bytes).expect("agent message is JSON");
    (msg, fd)
}

/// Answer every notification on `fd` with EXDEV until the filter's last user is gone (or
/// 10 s); returns the syscall numbers seen.
fn serve_notifications(fd: &OwnedFd) -> Vec<i64> {
    let mut answered = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n <= 0 {
            continue;
        }
        if pfd.revents & libc::POLLIN == 0 {
            break; // POLLHUP: no task uses the filter any more
        }
        // SAFETY: seccomp_notif is plain data; all-zero is valid and required by RECV.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: RECV fills the seccomp_notif we pass.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
        if r < 0 {
            continue; // the task was interrupted or is gone
        }
        answered.push(req.data.nr as i64);
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: -libc::EXDEV,
            flags: 0,
        };
        // SAFETY: SEND reads the seccomp_notif_resp we pass.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    }
    answered
}

/// A notify filter on mkdir with its agent's socket in the bundle: the listening socket.
fn with_mkdir_agent(c: &Container) -> UnixListener {
    let sock = c.bundle.dir.join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    set_seccomp(
        c,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    listener
}

#[test]
fn seccomp_notify_for_exec_processes() {
    let c = Container::new("proc-seccomp-notify-exec");
    let listener = with_mkdir_agent(&c);
    c.bundle.set_args(&["sleep", "30"]);
    let agent = std::thread::spawn(move || {
        let (init_msg, _init_fd) = agent_accept(&listener);
        let (exec_msg, fd) = agent_accept(&listener);
        (init_msg, exec_msg, serve_notifications(&fd))
    });
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let init_pid = c.state()["pid"].clone();
    let out = c.rt(&["exec", &c.id, "sh", "-c", "mkdir /tmp/e; echo rc=$?"]);
    c.rt_ok(&["kill", &c.id, "KILL"]);
    let (init_msg, exec_msg, answered) = agent.join().expect("agent thread");
    assert_eq!(out.stdout_text(), "rc=1\n", "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("Invalid cross-device link"),
        "{}",
        out.stderr_text()
    );
    assert!(!answered.is_empty());
    assert_eq!(init_msg["pid"], init_pid, "{init_msg}");
    let exec_pid = exec_msg["pid"].as_i64().unwrap_or(0);
    assert!(
        exec_pid > 1 && json!(exec_pid) != init_pid,
        "the exec process's host pid: {exec_msg}"
    );
    assert_eq!(exec_msg["state"]["id"], c.id.as_str());
}

/// An allow-list with only what `execve` and busybox's `echo` need: the runtime may make no
/// syscall of its own once the filter is on (close_range, getcwd, umask, sigaction... before).
fn execve_only_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{
            "names": ["execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list",
                      "rseq", "prlimit64", "mprotect", "getrandom", "readlink", "getuid",
                      "prctl", "write", "exit", "exit_group"],
            "action": "SCMP_ACT_ALLOW"
        }]
    })
}

#[test]
fn seccomp_is_the_last_step_before_execve() {
    let c = Container::new("proc-seccomp-last");
    set_seccomp(&c, execve_only_profile());
    c.bundle.set_args(&["echo", "ran"]);
    // run: the Start message, then execve.
    let out = c.rt(&["run", &c.id]);
    assert!(out.status.success(), "run: {}", out.stderr_text());
    assert_eq!(out.stdout_text(), "ran\n");
    // create + start: the exec fifo, then execve.
    let c = Container::new("proc-seccomp-last-fifo");
    set_seccomp(&c, execve_only_profile());
    c.bundle.set_args(&["echo", "ran"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    assert_eq!(c.container_stdout(), "ran\n");
    // exec into a running container under the same profile.
    let c = Container::new("proc-seccomp-last-exec");
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let mut cfg = c.bundle.config.borrow().clone();
    cfg["linux"]["seccomp"] = execve_only_profile();
    let frozen = c.root.join(&c.id).join("config.json");
    std::fs::write(&frozen, cfg.to_string()).unwrap();
    let out = c.rt(&["exec", &c.id, "echo", "exec-ran"]);
    assert!(out.status.success(), "exec: {}", out.stderr_text());
    assert_eq!(out.stdout_text(), "exec-ran\n");
}

#[test]
fn seccomp_notify_listener_reaches_the_agent_during_create() {
    let c = Container::new("proc-seccomp-notify-create");
    let listener = with_mkdir_agent(&c);
    c.bundle.set_args(&["sh", "-c", "mkdir /tmp/n; echo rc=$?"]);
    c.create_ok();
    // Before `start`: the runtime connected and sent during create, so the connection and
    // its message are already queued on our socket.
    listener.set_nonblocking(true).unwrap();
    let queued = listener.accept();
    assert!(
        queued.is_ok(),
        "the agent had no connection when create returned"
    );
    let (stream, _) = queued.unwrap();
    stream.set_nonblocking(false).unwrap();
    // Sent already: a runtime that sends only at start would leave this read waiting.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (bytes, fd) = recv_one_fd(&stream);
    let msg: Value = serde_json::from_slice(&bytes).expect("containerProcessState JSON");
    assert_eq!(msg["state"]["id"], c.id.as_str(), "{msg}");
    assert_eq!(msg["state"]["status"], "creating", "{msg}");
    let agent = std::thread::spawn(move || serve_notifications(&fd));
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    let answered = agent.join().expect("agent");
    assert!(!answered.is_empty());
    assert_eq!(c.container_stdout(), "rc=1\n");
}

#[test]
fn home_comes_from_the_containers_passwd() {
    let c = Container::new("proc-home");
    c.bundle.edit(|cfg| {
        cfg["process"]["env"] = json!(["PATH=/bin"]);
    });
    c.bundle.set_args(&["sh", "-c", "echo $HOME"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.stdout_text(), "/root\n", "{}", out.stderr_text());
    // A user without a passwd entry gets /; an explicit HOME is kept.
    let c = Container::new("proc-home-none");
    c.bundle.edit(|cfg| {
        cfg["process"]["env"] = json!(["PATH=/bin"]);
        cfg["process"]["user"] = json!({"uid": 4321, "gid": 4321});
    });
    c.bundle.set_args(&["sh", "-c", "echo $HOME"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.stdout_text(), "/\n", "{}", out.stderr_text());
    // exec: the same rule, for the exec'd process's user.
    let c = Container::new("proc-home-exec");
    c.bundle
        .edit(|cfg| cfg["process"]["env"] = json!(["PATH=/bin"]));
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let out = c.rt(&["exec", &c.id, "sh", "-c", "echo $HOME"]);
    assert_eq!(out.stdout_text(), "/root\n", "{}", out.stderr_text());
    let out = c.rt(&["exec", "--env", "HOME=/x", &c.id, "sh", "-c", "echo $HOME"]);
    assert_eq!(out.stdout_text(), "/x\n", "{}", out.stderr_text());
}

#[test]
fn exec_processes_lead_their_own_session() {
    let c = Container::new("proc-exec-setsid");
    c.bundle.set_args(&["sleep", "30"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    // Fields 1 and 6 of /proc/PID/stat: pid and session id (comm "(sh)" has no spaces).
    let out = c.rt(&["exec", &c.id, "sh", "-c", "cut -d' ' -f1,6 /proc/$$/stat"]);
    let text = out.stdout_text();
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "{text} {}", out.stderr_text());
    assert_eq!(
        fields[0], fields[1],
        "the exec'd shell is its session's leader"
    );
}
