//! A network namespace of a test's own (`unshare --net sleep infinity`): bridges, veths and
//! nft tables that tests make live and die there, never in the machine's namespace.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A network namespace of the test's own: `unshare --net sleep infinity`, killed by pid
/// when dropped (the namespace goes with it once nothing else is in it).
pub struct NetnsHolder {
    child: std::process::Child,
}

impl NetnsHolder {
    pub fn start() -> NetnsHolder {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net");
        let holder = NetnsHolder { child };
        // unshare execs sleep once the namespace is made: wait for the link to differ.
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_link(holder.path()).ok().as_ref() == Some(&ours)
            || std::fs::read_link(holder.path()).is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "unshare --net did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        holder
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/proc/<pid>/ns/net`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.pid()))
    }

    /// `program args…` run in the namespace (`nsenter --net=…`).
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    /// Runs `program args…` in the namespace; its stdout, or a panic with its output.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .expect("spawn nsenter");
        assert!(
            out.status.success(),
            "{program} {args:?} in the test netns failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The names of the namespace's links (`ip -br link`).
    pub fn links(&self) -> Vec<String> {
        self.ok("ip", &["-br", "link"])
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }
}

impl Drop for NetnsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
