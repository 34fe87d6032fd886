//! The [`Cgroup`] handle: one container's cgroup directory, its creation with controller
//! delegation along the path, resource application, process control and removal.

use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::error::CgroupError;
use crate::host::{self, HostInfo};
use crate::stats::{self, Stats};
use crate::{bpf, devices, freezer, fsutil, path, resources};

/// A container's cgroup in the v2 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// Absolute directory, e.g. `/sys/fs/cgroup/pelagos/abc`.
    path: PathBuf,
    /// Path below the v2 root, e.g. `/pelagos/abc`.
    rel: String,
    /// How many trailing components of `rel` `destroy` removes (the leaf is the last one).
    owned: usize,
    /// The leaf was made by this handle's `create` and has no device program yet, so the first
    /// `apply` need not look for one to replace.
    fresh: std::cell::Cell<bool>,
}

impl Cgroup {
    /// Resolve the OCI `linux.cgroupsPath` for container `id`:
    /// none or empty -> `/pelagos/<id>`; `/a/b` -> `/a/b`; `a/b` -> `/pelagos/a/b`;
    /// with `systemd`, `slice:prefix:name` -> `/<expanded slice>/<prefix>-<name>.scope`
    /// (none -> `/system.slice/pelagos-<id>.scope`). Rejects "..", NUL and the root itself.
    /// Nothing is created; the result owns no directory until [`Cgroup::create`].
    pub fn resolve(
        cgroups_path: Option<&str>,
        systemd: bool,
        id: &str,
    ) -> Result<Cgroup, CgroupError> {
        let rel = path::resolve(cgroups_path, systemd, id)?;
        Self::build(rel, 0)
    }

    /// Reload a cgroup from its saved [`Cgroup::relative`] path. `destroy` then removes the leaf
    /// and its child cgroups but no ancestor.
    pub fn from_relative(rel: &str) -> Result<Cgroup, CgroupError> {
        Self::from_saved(rel, 1)
    }

    /// Reload a cgroup with the [`Cgroup::owned_levels`] saved after `create`, so that `destroy`
    /// also removes the ancestors `create` made (e.g. `/pelagos` when it did not exist).
    pub fn from_saved(rel: &str, owned_levels: usize) -> Result<Cgroup, CgroupError> {
        let rel = path::normalize(rel)?;
        Self::build(rel, owned_levels)
    }

    fn build(rel: String, owned: usize) -> Result<Cgroup, CgroupError> {
        let root = host::v2_mountpoint()?;
        let depth = rel.split('/').filter(|c| !c.is_empty()).count();
        Ok(Cgroup {
            path: root.join(rel.trim_start_matches('/')),
            owned: owned.min(depth),
            rel,
            fresh: std::cell::Cell::new(false),
        })
    }

    /// The absolute directory of the cgroup.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path below the v2 root, starting with '/'; what `/proc/<pid>/cgroup` shows.
    pub fn relative(&self) -> &str {
        &self.rel
    }

    /// How many trailing path components `destroy` will remove: after `create`, the number of
    /// directories it made (0 when the leaf already existed). Save it with the relative path.
    pub fn owned_levels(&self) -> usize {
        self.owned
    }

    /// Validate `res` against this host's v2 controllers without touching anything. Returns the
    /// warnings for settings that are ignored (v1-only knobs, and with `skip_unavailable`, limits
    /// whose controller is missing).
    pub fn check_resources(
        &self,
        res: &LinuxResources,
        skip_unavailable: bool,
    ) -> Result<Vec<String>, CgroupError> {
        Ok(resources::plan(res, &HostInfo::current()?, skip_unavailable)?.warnings)
    }

    /// `mkdir -p` the cgroup, enabling in every ancestor's `cgroup.subtree_control` all the
    /// controllers it offers. Records the directories made so `destroy` removes exactly those; on
    /// failure removes them again before returning the error.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        // A shared parent made by pelagos is removed by the last container deleted under it;
        // a create racing that removal finds a directory gone midway: walk again.
        let mut attempts = 0;
        loop {
            match self.create_once() {
                Err(e) if attempts < 4 && e.is_not_found() => attempts += 1,
                other => return other,
            }
        }
    }

    fn create_once(&mut self) -> Result<(), CgroupError> {
        let root = host::v2_mountpoint()?;
        let mut offered = host::available_controllers()?;
        let comps: Vec<String> = self
            .rel
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let mut dir = root;
        let mut dir_is_new = false;
        let mut created: Vec<PathBuf> = Vec::new();
        // Only a contiguous tail of the path counts as ours.
        let mut tail = 0;
        let result = (|| {
            for (i, comp) in comps.iter().enumerate() {
                let is_leaf = i + 1 == comps.len();
                let enabled = enable_controllers(&dir, &offered, dir_is_new)?;
                let child = dir.join(comp);
                match std::fs::create_dir(&child) {
                    Ok(()) => {
                        mark_created(&child);
                        created.push(child.clone());
                        tail += 1;
                        dir_is_new = true;
                        offered = enabled;
                    }
                    // A parent another pelagos container made counts as ours too: whoever is
                    // deleted last removes it (rmdir fails while others still use it). An
                    // existing leaf is never ours: its processes belong to someone else.
                    Err(e)
                        if e.kind() == ErrorKind::AlreadyExists
                            && !is_leaf
                            && is_marked(&child) =>
                    {
                        tail += 1;
                        dir_is_new = false;
                        offered = enabled;
                    }
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        tail = 0;
                        dir_is_new = false;
                        // A child's cgroup.controllers is its parent's subtree_control.
                        offered = enabled;
                    }
                    Err(e) => return Err(CgroupError::io("create cgroup", child, e)),
                }
                dir = child;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                // A repeated `create` finds everything existing; keep what the first one made.
                self.fresh
                    .set(created.last().is_some_and(|d| *d == self.path));
                self.owned = self.owned.max(tail);
                Ok(())
            }
            Err(e) => {
                for d in created.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
                Err(e)
            }
        }
    }

    /// Apply `res` to the (created) cgroup: interface files, then the eBPF device filter when
    /// `devices` is non-empty. Same validation and `skip_unavailable` meaning as `check_resources`.
    pub fn apply(&self, res: &LinuxResources, skip_unavailable: bool) -> Result<(), CgroupError> {
        let plan = resources::plan(res, &HostInfo::current()?, skip_unavailable)?;
        resources::write_plan(&self.path, &plan)?;
        if !plan.devices.is_empty() {
            let insns = devices::compile(&plan.devices)?;
            let fd = self.open_dir_fd()?;
            bpf::install(fd.as_fd(), &self.path, &insns, !self.fresh.replace(false))?;
        }
        Ok(())
    }

    /// Open the cgroup directory (O_DIRECTORY | O_CLOEXEC), e.g. for clone3's CLONE_INTO_CGROUP.
    pub fn open_dir_fd(&self) -> Result<OwnedFd, CgroupError> {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.path)
            .map(OwnedFd::from)
            .map_err(|e| CgroupError::io("open", &self.path, e))
    }

    /// Move process `pid` into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        fsutil::write(
            &self.path.join("cgroup.procs"),
            &pid.to_string(),
            "cgroup.procs",
        )
    }

    /// All pids in the cgroup and its child cgroups, sorted.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        freezer::procs(&self.path)
    }

    /// Freeze every process (cgroup.freeze) and wait until the kernel reports "frozen 1".
    pub fn freeze(&self) -> Result<(), CgroupError> {
        freezer::freeze(&self.path)
    }

    /// Thaw the cgroup and wait until the kernel reports "frozen 0".
    pub fn thaw(&self) -> Result<(), CgroupError> {
        freezer::thaw(&self.path)
    }

    /// Whether `cgroup.events` reports the cgroup frozen.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        match freezer::event(&self.path, "frozen")? {
            Some(v) => Ok(v == 1),
            None => Err(CgroupError::io(
                "read the frozen state from",
                self.path.join("cgroup.events"),
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )),
        }
    }

    /// SIGKILL every process in the cgroup tree (does not wait; `destroy` does). A cgroup that no
    /// longer exists has nothing to kill.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        freezer::kill_all(&self.path)
    }

    /// Send `sig` to every process in the cgroup tree (SIGKILL goes through `kill_all`).
    pub fn signal_all(&self, sig: i32) -> Result<(), CgroupError> {
        freezer::signal_all(&self.path, sig)
    }

    /// Wait (up to 5 s) until the cgroup is empty, then remove the leaf's child cgroups, the leaf
    /// and the ancestors this handle owns, leaf first. Idempotent; never removes the v2 root or an
    /// ancestor another cgroup still uses.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if self.owned == 0 {
            return Ok(());
        }
        if freezer::wait_event(
            &self.path,
            "populated",
            0,
            "become empty (cgroup.events \"populated 0\")",
        )? {
            let deadline = Instant::now() + freezer::WAIT_TIMEOUT;
            remove_tree(&self.path, deadline)?;
        }
        let mut dir = self.path.clone();
        for _ in 1..self.owned {
            if !dir.pop() {
                break;
            }
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                // Still used by another cgroup: leave it and everything above.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => break,
                Err(e) => return Err(CgroupError::io("remove cgroup", dir, e)),
            }
        }
        Ok(())
    }

    /// Usage statistics (see [`Stats`]).
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        stats::read(&self.path)
    }

    /// The `oom_kill` count of `memory.events`; 0 when the memory controller is not enabled.
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        Ok(stats::memory_events(&self.path)?.map_or(0, |e| e.oom_kill))
    }
}

/// The extended attribute that marks a cgroup directory as made by pelagos (cgroupfs keeps
/// `user.*` xattrs since Linux 5.7; on older kernels nothing is marked and shared parents stay).
const CREATED_XATTR: &std::ffi::CStr = c"user.pelagos.created";

fn mark_created(dir: &Path) {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: both strings are NUL-terminated and the one-byte value lives for the call.
    unsafe {
        libc::setxattr(
            path.as_ptr(),
            CREATED_XATTR.as_ptr(),
            b"1".as_ptr().cast(),
            1,
            0,
        )
    };
}

fn is_marked(dir: &Path) -> bool {
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 1];
    // SAFETY: both strings are NUL-terminated; the kernel writes at most buf.len() bytes.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            CREATED_XATTR.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1
}

/// Make sure `dir`'s `cgroup.subtree_control` enables every controller in `offered` and return
/// what it enables afterwards. `dir_is_new`: created just now, so nothing is enabled yet.
fn enable_controllers(
    dir: &Path,
    offered: &[String],
    dir_is_new: bool,
) -> Result<Vec<String>, CgroupError> {
    let file = dir.join("cgroup.subtree_control");
    let mut enabled = if dir_is_new {
        Vec::new()
    } else {
        host::read_list(&file)?
    };
    let missing: Vec<&String> = offered.iter().filter(|c| !enabled.contains(c)).collect();
    if missing.is_empty() {
        return Ok(enabled);
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fsutil::write_raw(&file, &all.join(" ")).is_ok() {
        enabled.extend(missing.into_iter().cloned());
        return Ok(enabled);
    }
    // One at a time, so that one refusing controller does not block the others.
    for c in missing {
        match fsutil::write_raw(&file, &format!("+{c}")) {
            Ok(()) => enabled.push(c.clone()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBUSY | libc::ENOTSUP)) => {}
            Err(source) => {
                return Err(CgroupError::Write {
                    path: file,
                    value: format!("+{c}"),
                    field: "controller delegation".into(),
                    source,
                });
            }
        }
    }
    Ok(enabled)
}

/// rmdir `dir` after its child cgroups, retrying EBUSY (exiting tasks) until `deadline`.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    for child in freezer::child_dirs(dir)? {
        remove_tree(&child, deadline)?;
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(CgroupError::io("remove cgroup", dir, e)),
        }
    }
}

#[cfg(test)]
mod tests;
