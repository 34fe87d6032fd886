//! The guard of the calls that clone the caller (fork semantics) or change process-wide state:
//! they refuse to run in a process with other threads instead of being unsound there.

use crate::error::{Error, Result};

/// `PF_EXITING` in the flags of /proc/PID/task/TID/stat: the thread is past the point of
/// running user code.
const PF_EXITING: u64 = 0x4;

/// Fail with `Error::MultiThreaded` unless the calling process has exactly one live thread.
/// A cloned child continues on a copy of the caller's memory: a lock another thread held at
/// that moment (the allocator's, stdio's) would stay locked forever in the child. One
/// directory read of /proc/self/task when the process is single-threaded.
pub(crate) fn ensure_single_threaded(verb: &'static str) -> Result<()> {
    let threads = live_threads();
    if threads > 1 {
        return Err(Error::MultiThreaded { verb, threads });
    }
    Ok(())
}

/// The threads of this process that can still run user code. A thread that was just joined
/// may still be listed for a moment while the kernel finishes its exit (`PF_EXITING` set):
/// it does not count. Unreadable /proc counts as one thread (the caller itself).
fn live_threads() -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return 1;
    };
    let tids: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if tids.len() <= 1 {
        return 1;
    }
    tids.iter().filter(|tid| thread_is_live(tid)).count().max(1)
}

/// Whether the thread `tid` of this process exists and is not exiting.
fn thread_is_live(tid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false; // gone since the directory was read
    };
    match stat_state_and_flags(&stat) {
        Some((state, flags)) => !matches!(state, 'Z' | 'X') && flags & PF_EXITING == 0,
        None => true,
    }
}

/// The state (field 3) and flags (field 9) of a stat line; the command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last ')'.
fn stat_state_and_flags(stat: &str) -> Option<(char, u64)> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let flags = fields.nth(5)?.parse().ok()?;
    Some((state, flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::ErrorKind;

    #[test]
    fn stat_fields_after_the_command_name() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0";
        assert_eq!(stat_state_and_flags(line), Some(('S', 4194560)));
        let exiting = "7 (t) R 1 7 7 0 -1 4194564 0 0";
        let (_, flags) = stat_state_and_flags(exiting).unwrap();
        assert_ne!(flags & PF_EXITING, 0);
        assert_eq!(stat_state_and_flags("garbage"), None);
    }

    #[test]
    fn a_second_thread_is_refused_and_named() {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || stop_rx.recv());
        let err = ensure_single_threaded("create").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let text = err.to_string();
        assert!(
            text.starts_with("create must be called from a single-threaded process (found "),
            "{text}"
        );
        // The test harness runs this test on a thread of its own: at least 3 here.
        assert!(live_threads() >= 3);
        stop_tx.send(()).unwrap();
        worker.join().unwrap().unwrap();
    }
}
