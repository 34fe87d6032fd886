//! Process control through the cgroup core files: freezing (cgroup.freeze), killing
//! (cgroup.kill), signalling, and waiting for a `cgroup.events` key to reach a value.

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::CgroupError;
use crate::fsutil;

/// How long freeze, thaw and destroy wait for the kernel.
pub(crate) const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Parse `cgroup.events` and return the value of `key`.
fn events_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Read `key` from `<dir>/cgroup.events`; `Ok(None)` when the cgroup no longer exists.
pub(crate) fn event(dir: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let path = dir.join("cgroup.events");
    let text = fsutil::read_opt(&path)?;
    Ok(text.and_then(|t| events_value(&t, key)))
}

/// Wait until `key` in `<dir>/cgroup.events` equals `want`, or the cgroup is gone (returns
/// `Ok(false)` then). Uses poll(2) on the file, which the kernel signals on every change.
pub(crate) fn wait_event(
    dir: &Path,
    key: &str,
    want: u64,
    what: &'static str,
) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.events");
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(CgroupError::io("open", path, e)),
    };
    let start = Instant::now();
    let mut text = String::with_capacity(64);
    loop {
        text.clear();
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut text))
            .map_err(|e| CgroupError::io("read", &path, e))?;
        if events_value(&text, key) == Some(want) {
            return Ok(true);
        }
        let elapsed = start.elapsed();
        if elapsed >= WAIT_TIMEOUT {
            return Err(CgroupError::Timeout {
                path: dir.to_owned(),
                what,
                millis: elapsed.as_millis(),
            });
        }
        // Wake on the kernel's change notification, but re-check at least every 10 ms.
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
        let _ = poll(&mut fds, PollTimeout::from(10u8));
    }
}

/// Freeze the cgroup and wait until the kernel reports it frozen; thaws again on timeout.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    fsutil::write(&dir.join("cgroup.freeze"), "1", "freeze")?;
    match wait_event(
        dir,
        "frozen",
        1,
        "become frozen (cgroup.events \"frozen 1\")",
    ) {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = fsutil::write_raw(&dir.join("cgroup.freeze"), "0");
            Err(e)
        }
    }
}

/// Thaw the cgroup and wait until the kernel reports it thawed.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fsutil::write(&dir.join("cgroup.freeze"), "0", "thaw")?;
    wait_event(dir, "frozen", 0, "thaw (cgroup.events \"frozen 0\")").map(drop)
}

/// Read every pid in `cgroup.procs` of `dir` and its descendants.
pub(crate) fn procs(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut out = Vec::new();
    collect_procs(dir, &mut out, true)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_procs(dir: &Path, out: &mut Vec<i32>, top: bool) -> Result<(), CgroupError> {
    let file = dir.join("cgroup.procs");
    match std::fs::read_to_string(&file) {
        Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        // A child removed meanwhile, or a threaded child that has no process list.
        Err(e) if !top && matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EOPNOTSUPP)) => {
            return Ok(())
        }
        Err(e) => return Err(CgroupError::io("read", file, e)),
    }
    for child in child_dirs(dir)? {
        collect_procs(&child, out, false)?;
    }
    Ok(())
}

/// Child cgroups (sub-directories) of `dir`; empty when `dir` vanished.
pub(crate) fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgroupError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list", dir, e))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn send(pid: i32, sig: i32) -> Result<(), CgroupError> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ESRCH) {
        return Ok(()); // exited meanwhile
    }
    Err(CgroupError::io("signal", format!("/proc/{pid}"), e))
}

/// Send `sig` to every process in the cgroup and its descendants.
pub(crate) fn signal_all(dir: &Path, sig: i32) -> Result<(), CgroupError> {
    if sig == libc::SIGKILL {
        return kill_all(dir);
    }
    for pid in procs(dir)? {
        send(pid, sig)?;
    }
    Ok(())
}

/// SIGKILL everything in the cgroup: `cgroup.kill` (Linux 5.14+) or, without it, freeze, kill
/// each listed process and thaw, so that nothing can fork in between.
pub(crate) fn kill_all(dir: &Path) -> Result<(), CgroupError> {
    match fsutil::write_raw(&dir.join("cgroup.kill"), "1") {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(CgroupError::io("write 1 to", dir.join("cgroup.kill"), e)),
    }
    if !dir.exists() {
        return Ok(());
    }
    let frozen = freeze(dir).is_ok();
    let result =
        procs(dir).and_then(|pids| pids.into_iter().try_for_each(|p| send(p, libc::SIGKILL)));
    if frozen {
        let _ = fsutil::write_raw(&dir.join("cgroup.freeze"), "0");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events() {
        let t = "populated 1\nfrozen 0\n";
        assert_eq!(events_value(t, "populated"), Some(1));
        assert_eq!(events_value(t, "frozen"), Some(0));
        assert_eq!(events_value(t, "nope"), None);
    }
}
