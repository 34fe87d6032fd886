//! Load a [`CompiledFilter`] into the calling thread with one raw `seccomp(2)` syscall; safe to
//! call in a forked child right before execve (no allocation, no libseccomp).

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use crate::compile::CompiledFilter;
use crate::error::SeccompError;

impl CompiledFilter {
    /// Load the filter into the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER)` and the
    /// profile's flags. Returns the user-notification listener fd (close-on-exec) when the
    /// filter uses `SCMP_ACT_NOTIFY`, otherwise `None`.
    ///
    /// The caller must have set `PR_SET_NO_NEW_PRIVS` or still hold `CAP_SYS_ADMIN`. This
    /// performs no heap allocation, so it is usable between fork and execve.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let prog = libc::sock_fprog {
            // `compile` guarantees at most BPF_MAXINSNS (4096) instructions.
            len: u16::try_from(self.program.len()).map_err(|_| SeccompError::Load(Errno::E2BIG))?,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `self.program`, which outlives the call; the kernel only reads
        // (copies) the program and never writes through the pointer.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if ret < 0 {
            return Err(SeccompError::Load(Errno::last()));
        }
        if !self.notify {
            // With TSYNC (and no TSYNC_ESRCH) a positive value is the thread that failed to sync.
            return match ret {
                0 => Ok(None),
                tid => Err(SeccompError::TsyncFailed(tid)),
            };
        }
        let fd = RawFd::try_from(ret).map_err(|_| SeccompError::Load(Errno::EBADF))?;
        // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns a new
        // file descriptor that nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
