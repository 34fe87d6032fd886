//! The runtime core gives a new container init or exec process the caller's descriptors 0-2.
//! The monitor is single-threaded, so it can put the wanted descriptors there around the
//! call and put its own (`/dev/null`) back afterwards.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// Descriptors 0-2 replaced until dropped.
pub struct StdioSwap {
    saved: [OwnedFd; 3],
}

impl StdioSwap {
    /// Puts `stdio` (stdin, stdout, stderr) on 0, 1 and 2.
    pub fn install(stdio: [BorrowedFd<'_>; 3]) -> Result<StdioSwap> {
        let saved = [dup_high(0)?, dup_high(1)?, dup_high(2)?];
        let swap = StdioSwap { saved };
        for (to, from) in stdio.iter().enumerate() {
            // dup2 clears close-on-exec on the copy: the new process keeps it.
            nix::unistd::dup2(from.as_raw_fd(), to as i32)
                .map_err(|e| Error::sys(format!("put a descriptor on {to}"), e))?;
        }
        Ok(swap)
    }
}

impl Drop for StdioSwap {
    fn drop(&mut self) {
        for (to, from) in self.saved.iter().enumerate() {
            let _ = nix::unistd::dup2(from.as_raw_fd(), to as i32);
        }
    }
}

/// A close-on-exec copy of `fd` above the standard descriptors.
fn dup_high(fd: i32) -> Result<OwnedFd> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| Error::sys(format!("save descriptor {fd}"), e))?;
    // SAFETY: fcntl just made this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}
