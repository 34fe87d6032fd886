//! Test support: network namespaces held by a child the test starts (and kills by pid on
//! drop), work done on a thread moved into one, and commands run inside one with nsenter.
#![allow(dead_code)]

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

/// A network namespace of its own, alive while its holder (`unshare --net sleep infinity`) is.
pub struct Netns {
    holder: Child,
    /// An fd of the namespace.
    pub fd: File,
}

impl Netns {
    /// Starts a holder and waits until it has exec'd `sleep`, which it does only after
    /// `unshare(CLONE_NEWNET)`: before that, its `ns/net` is still the test's.
    pub fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare --net sleep infinity");
        let mut netns = NetnsGuard(Some(holder));
        let pid = netns.pid();
        let deadline = Instant::now() + Duration::from_secs(30);
        while fs::read_to_string(format!("/proc/{pid}/comm")).map_or(true, |c| c.trim() != "sleep")
        {
            assert!(Instant::now() < deadline, "holder {pid} never exec'd sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
        let fd = File::open(format!("/proc/{pid}/ns/net")).expect("open the holder's ns/net");
        Netns {
            holder: netns.0.take().expect("holder"),
            fd,
        }
    }

    /// `/proc/PID/ns/net` of the holder.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    /// Runs `work` on a thread that has entered this namespace.
    pub fn run<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
                    work()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `program args` inside this namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// `ip ARGS` inside this namespace, its stdout; panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let output = self.exec("ip", args);
        assert!(
            output.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Whether one `busybox ping -c1 -W1 ADDRESS` from inside this namespace is answered.
    pub fn ping(&self, address: &str) -> bool {
        self.exec("busybox", &["ping", "-c1", "-W1", address])
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Kills a holder that never became ready.
struct NetnsGuard(Option<Child>);

impl NetnsGuard {
    fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
