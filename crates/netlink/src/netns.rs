//! Running a step with the calling thread inside another network namespace, then returning
//! it to the one it was in: namespace membership is per thread, so no other thread notices.

use std::fs::File;
use std::os::fd::BorrowedFd;

use nix::sched::{setns, CloneFlags};

use crate::error::Error;

/// The calling thread's own network namespace (not the process's: a thread may have moved).
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Runs `step` with the calling thread in the network namespace `netns`, then moves the
/// thread back. Fails without running `step` if the thread cannot enter; if it cannot return,
/// the step's result is dropped and the error says the thread is stranded.
pub(crate) fn run_in<T>(netns: BorrowedFd<'_>, step: impl FnOnce() -> T) -> Result<T, Error> {
    let original =
        File::open(THREAD_NETNS).map_err(|e| Error::io(format!("open {THREAD_NETNS}"), e))?;
    setns(netns, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::io("enter the network namespace", e.into()))?;
    let result = step();
    setns(&original, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::io(
            "return to the thread's own network namespace (the thread is left in the other one)",
            e.into(),
        )
    })?;
    Ok(result)
}
