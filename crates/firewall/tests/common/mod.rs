//! Test helpers: network namespaces the test owns (a `sleep` holder started with
//! `unshare --net`, killed by pid on drop), commands run in them with `nsenter`, and
//! firewall calls made from a thread that joined one.

#![allow(dead_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Output, Stdio};

/// A network namespace held open by a child process.
pub struct Netns {
    holder: Child,
}

impl Netns {
    /// A new namespace, its loopback up.
    pub fn new() -> Netns {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let ns = Netns { holder };
        ns.wait_until_unshared();
        ns.sh("ip link set lo up");
        ns
    }

    /// `/proc/PID/ns/net`.
    pub fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.holder.id())
    }

    fn wait_until_unshared(&self) {
        let own = std::fs::metadata("/proc/self/ns/net")
            .expect("own netns")
            .ino();
        for _ in 0..1000 {
            if std::fs::metadata(self.path()).is_ok_and(|m| m.ino() != own) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("unshare --net did not unshare");
    }

    /// Runs `sh -c SCRIPT` in the namespace; panics with its output if it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = self.try_sh(script);
        assert!(
            out.status.success(),
            "{script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `sh -c SCRIPT` in the namespace.
    pub fn try_sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .args(["sh", "-c", script])
            .output()
            .expect("nsenter")
    }

    /// Starts a long-running program in the namespace (killed on drop of the result).
    pub fn spawn(&self, args: &[&str]) -> Killed {
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.path()))
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter");
        Killed(child)
    }

    /// Runs `f` on a thread that joined the namespace (membership is per thread).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(self.path()).expect("open netns");
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    // SAFETY: setns on a valid open namespace fd; it changes only this
                    // thread's network namespace, and the thread ends after `f`.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .expect("thread in netns")
        })
    }

    /// `nft -j list table inet pelagos` as JSON, `None` if there is no such table.
    pub fn pelagos_table(&self) -> Option<serde_json::Value> {
        let out = self.try_sh("nft -j list table inet pelagos");
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("nft json"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A child killed (by its pid) and reaped on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The rules of a listing as (chain, comment, expr) without handles, sorted.
pub fn rules(table: &serde_json::Value) -> Vec<(String, Option<String>, String)> {
    let mut out: Vec<_> = objects(table, "rule")
        .map(|r| {
            (
                r["chain"].as_str().unwrap_or_default().to_owned(),
                r["comment"].as_str().map(str::to_owned),
                r["expr"].to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The names of a listing's chains, sorted.
pub fn chains(table: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<_> = objects(table, "chain")
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    out.sort();
    out
}

fn objects<'a>(
    table: &'a serde_json::Value,
    kind: &'a str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    table["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |o| o.get(kind))
}
