//! Behaviour tests: load compiled filters in forked children and watch what syscalls do.
//!
//! Children only make raw syscalls and leave with `_exit`; the exit code carries the verdict.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::LinuxSeccomp;
use serde_json::{json, Value};

use crate::{compile, docker_default, recv_fd, send_fd, CompiledFilter};

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile is valid OCI")
}

/// Fork, run `child` (which must be async-signal-safe), `_exit` with its result, and wait.
fn in_child(child: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child only runs `child`, which makes raw syscalls, then `_exit`s.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = child();
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

fn exit_code(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        other => panic!("child did not exit normally: {other:?}"),
    }
}

/// Set no_new_privs, disable core dumps and load `filter`; false on any failure.
fn apply(filter: &CompiledFilter) -> bool {
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls with valid arguments.
    let ok = unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core) == 0
            && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    };
    ok && matches!(filter.load(), Ok(None))
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

/// getcwd(buf, size) as a raw syscall: Ok(len) or Err(errno).
fn getcwd(buf: *mut u8, size: usize) -> Result<i64, i32> {
    // SAFETY: the kernel writes at most `size` bytes into `buf`, which callers size accordingly.
    let r = unsafe { libc::syscall(libc::SYS_getcwd, buf, size) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

#[test]
fn errno_rules_with_argument_conditions() {
    let filter = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .expect("compile");
    let status = in_child(|| {
        if !apply(&filter) {
            return 100;
        }
        let mut buf = [0u8; 4096];
        let mut failures = 0;
        if getcwd(buf.as_mut_ptr(), buf.len()) != Err(libc::ENOSYS) {
            failures |= 1;
        }
        let root = c"/";
        // SAFETY: valid NUL-terminated path; "/" exists so a real mkdirat fails with EEXIST.
        let blocked =
            unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, root.as_ptr(), 0o700) };
        if blocked != -1 || errno() != libc::ENOSYS {
            failures |= 2;
        }
        // SAFETY: as above.
        let passed =
            unsafe { libc::syscall(libc::SYS_mkdirat, libc::AT_FDCWD, root.as_ptr(), 0o755) };
        if passed != -1 || errno() != libc::EEXIST {
            failures |= 4;
        }
        failures
    });
    assert_eq!(exit_code(status), 0);
}

#[test]
fn every_operator_matches_like_libseccomp_documents() {
    // (op, value, valueTwo, a size that matches, a size that does not)
    let cases: [(&str, u64, u64, usize, usize); 7] = [
        ("SCMP_CMP_NE", 100, 0, 200, 100),
        ("SCMP_CMP_LT", 100, 0, 50, 100),
        ("SCMP_CMP_LE", 100, 0, 100, 101),
        ("SCMP_CMP_EQ", 100, 0, 100, 101),
        ("SCMP_CMP_GE", 100, 0, 100, 99),
        ("SCMP_CMP_GT", 100, 0, 101, 100),
        ("SCMP_CMP_MASKED_EQ", 0xf00, 0x100, 0x1ff, 0x2ff),
    ];
    for (op, value, value_two, hit, miss) in cases {
        let filter = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]
        })))
        .expect("compile");
        let status = in_child(|| {
            if !apply(&filter) {
                return 100;
            }
            let mut buf = [0u8; 4096];
            let mut failures = 0;
            if getcwd(buf.as_mut_ptr(), hit) != Err(libc::ENOSYS) {
                failures |= 1;
            }
            if getcwd(buf.as_mut_ptr(), miss) == Err(libc::ENOSYS) {
                failures |= 2;
            }
            failures
        });
        assert_eq!(exit_code(status), 0, "{op}");
    }
}

#[test]
fn conditions_on_different_args_are_anded_and_repeated_args_ored() {
    let filter = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_NE"},
                {"index": 1, "value": 100, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [
                {"index": 1, "value": 200, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 300, "op": "SCMP_CMP_EQ"}]}
        ]
    })))
    .expect("compile");
    let status = in_child(|| {
        if !apply(&filter) {
            return 100;
        }
        let mut buf = [0u8; 4096];
        let mut failures = 0;
        if getcwd(buf.as_mut_ptr(), 100) != Err(libc::ENOSYS) {
            failures |= 1;
        }
        // Only one of the AND-ed conditions holds: the real syscall runs (EFAULT on NULL).
        if getcwd(std::ptr::null_mut(), 100) == Err(libc::ENOSYS) {
            failures |= 2;
        }
        if getcwd(buf.as_mut_ptr(), 200) != Err(libc::ENOSYS)
            || getcwd(buf.as_mut_ptr(), 300) != Err(libc::ENOSYS)
        {
            failures |= 4;
        }
        if getcwd(buf.as_mut_ptr(), 400) == Err(libc::ENOSYS) {
            failures |= 8;
        }
        failures
    });
    assert_eq!(exit_code(status), 0);
}

#[test]
fn kill_trap_trace_and_log_actions() {
    for (action, expect_sigsys) in [
        ("SCMP_ACT_KILL", true),
        ("SCMP_ACT_KILL_THREAD", true),
        ("SCMP_ACT_KILL_PROCESS", true),
        ("SCMP_ACT_TRAP", true),
        ("SCMP_ACT_TRACE", false),
        ("SCMP_ACT_LOG", false),
    ] {
        let filter = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["getcwd"], "action": action}]
        })))
        .expect("compile");
        let status = in_child(|| {
            if !apply(&filter) {
                return 100;
            }
            let mut buf = [0u8; 4096];
            match getcwd(buf.as_mut_ptr(), buf.len()) {
                // TRACE without a tracer fails the syscall with ENOSYS.
                Err(libc::ENOSYS) if action == "SCMP_ACT_TRACE" => 0,
                Ok(_) if action == "SCMP_ACT_LOG" => 0,
                _ => 1,
            }
        });
        if expect_sigsys {
            assert!(
                matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
                "{action}: {status:?}"
            );
        } else {
            assert_eq!(exit_code(status), 0, "{action}");
        }
    }
}

#[test]
fn docker_default_blocks_privileged_syscalls_without_caps() {
    let without = compile(&docker_default(&[])).expect("compile docker default");
    let with = compile(&docker_default(&["CAP_SYS_ADMIN".to_string()])).expect("compile");
    for (filter, unshare_ok) in [(&without, false), (&with, true)] {
        let status = in_child(|| {
            if !apply(filter) {
                return 100;
            }
            let mut failures = 0;
            // SAFETY: unshare(0) changes nothing; the others are harmless queries.
            unsafe {
                let r = libc::syscall(libc::SYS_unshare, 0);
                if unshare_ok != (r == 0) || (!unshare_ok && errno() != libc::EPERM) {
                    failures |= 1;
                }
                if libc::syscall(libc::SYS_getpid) <= 0 {
                    failures |= 2;
                }
                let r = libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize);
                if !unshare_ok && (r != -1 || errno() != libc::ENOSYS) {
                    failures |= 4;
                }
            }
            failures
        });
        assert_eq!(exit_code(status), 0, "unshare allowed: {unshare_ok}");
    }
}

#[test]
fn notify_returns_a_listener_that_can_answer_syscalls() {
    let filter = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/unused.sock",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]
    })))
    .expect("compile");
    assert!(filter.uses_notify());
    let (parent_sock, child_sock) = UnixStream::pair().expect("socketpair");

    // SAFETY: the child only makes raw syscalls and `_exit`s.
    let child = match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = (|| {
                // SAFETY: prctl with integer arguments.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    return 100;
                }
                let Ok(Some(listener)) = filter.load() else {
                    return 101;
                };
                if send_fd(&child_sock, &listener, b"L").is_err() {
                    return 102;
                }
                drop(listener);
                // SAFETY: getppid has no arguments; the agent (our parent) answers 4242.
                match unsafe { libc::syscall(libc::SYS_getppid) } {
                    4242 => 0,
                    _ => 1,
                }
            })();
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_sock);

    let mut buf = [0u8; 8];
    let (n, listener) = recv_fd(&parent_sock, &mut buf).expect("recv listener");
    assert_eq!(&buf[..n], b"L");
    let listener = listener.expect("listener fd");
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    assert_eq!(ready, 1, "no notification within 10s");

    // SAFETY: seccomp_notif is plain data; all-zero is what NOTIF_RECV expects.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `req` is a writable seccomp_notif, the listener a seccomp notify fd.
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(i64::from(req.data.nr), libc::SYS_getppid);
    assert_eq!(req.pid as i32, child.as_raw());
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 4242,
        error: 0,
        flags: 0,
    };
    // SAFETY: `resp` is a valid seccomp_notif_resp for the pending notification.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
    assert_eq!(exit_code(waitpid(child, None).expect("waitpid")), 0);
}
