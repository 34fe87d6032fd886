//! Test helpers: a per-test cgroup path under `/pelagos-test-cgroups-<pid>` in the v2 tree with a
//! Drop guard that kills, reaps and removes everything the test made, also when it panics.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::{fsutil, host};

/// Tests that touch the real cgroup tree run one at a time: they share the test parent and
/// the root's subtree_control.
static LOCK: Mutex<()> = Mutex::new(());

pub(crate) struct TestCgroup {
    /// Relative path of this test's directory, e.g. `/pelagos-test-cgroups-123/freeze`.
    pub rel: String,
    pub dir: PathBuf,
    parent: PathBuf,
    children: Vec<Pid>,
    root_enabled_before: Vec<String>,
    _lock: MutexGuard<'static, ()>,
}

impl TestCgroup {
    pub(crate) fn new(test: &str) -> TestCgroup {
        let lock = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let root = host::v2_mountpoint().expect("cgroup2 mount");
        let parent_rel = format!("/pelagos-test-cgroups-{}", std::process::id());
        let rel = format!("{parent_rel}/{test}");
        let root_enabled_before =
            host::read_list(&root.join("cgroup.subtree_control")).unwrap_or_default();
        TestCgroup {
            dir: root.join(rel.trim_start_matches('/')),
            parent: root.join(parent_rel.trim_start_matches('/')),
            rel,
            children: Vec::new(),
            root_enabled_before,
            _lock: lock,
        }
    }

    /// Fork a child that sleeps until killed; reaped by Drop if the test does not.
    pub(crate) fn spawn_sleeper(&mut self) -> Pid {
        // SAFETY: the child only calls pause(2) and never returns into Rust code of the parent.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => loop {
                // SAFETY: pause is async-signal-safe and has no preconditions.
                unsafe { libc::pause() };
            },
            ForkResult::Parent { child } => {
                self.children.push(child);
                child
            }
        }
    }

    /// Forget a child the test reaped itself.
    pub(crate) fn reaped(&mut self, pid: Pid) {
        self.children.retain(|p| *p != pid);
    }
}

fn remove_tree(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    for _ in 0..500 {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => break,
        }
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = fsutil::write_raw(&self.dir.join("cgroup.kill"), "1");
        for pid in self.children.drain(..) {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        remove_tree(&self.dir);
        let _ = std::fs::remove_dir(&self.parent);
        // Give the root back the subtree_control it had (best effort).
        if let Ok(root) = host::v2_mountpoint() {
            let file = root.join("cgroup.subtree_control");
            for c in host::read_list(&file).unwrap_or_default() {
                if !self.root_enabled_before.contains(&c) {
                    let _ = fsutil::write_raw(&file, &format!("-{c}"));
                }
            }
        }
    }
}
