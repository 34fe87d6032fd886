//! OCI seccomp filter flags: their kernel bits, the kernel support probe, and the final
//! `seccomp(2)` flag word for a filter.

use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccompFilterFlag;

use crate::error::SeccompError;

/// The OCI name of a filter flag and its kernel bit.
pub(crate) fn flag_bits(flag: LinuxSeccompFilterFlag) -> (&'static str, libc::c_ulong) {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
            ("SECCOMP_FILTER_FLAG_TSYNC", libc::SECCOMP_FILTER_FLAG_TSYNC)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
            ("SECCOMP_FILTER_FLAG_LOG", libc::SECCOMP_FILTER_FLAG_LOG)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => (
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
        ),
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        ),
    }
}

/// The `seccomp(2)` flags for the profile's flags; NEW_LISTENER (and TSYNC_ESRCH next to TSYNC)
/// is added for notify filters, WAIT_KILLABLE_RECV only applies to notify filters.
pub(crate) fn kernel_flags(
    flags: &[LinuxSeccompFilterFlag],
    notify: bool,
) -> Result<libc::c_ulong, SeccompError> {
    let mut bits = 0;
    for &flag in flags {
        let (name, bit) = flag_bits(flag);
        if !flag_supported(bit) {
            return Err(SeccompError::UnsupportedFlag(name.to_string()));
        }
        bits |= bit;
    }
    if notify {
        bits |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        if bits & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else {
        bits &= !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(bits)
}

/// Probe the kernel for a filter flag the way runc does: with a NULL program the kernel checks
/// the flags first (EINVAL if unknown) and then fails to copy the program (EFAULT), so nothing
/// is ever installed. WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
pub(crate) fn flag_supported(bit: libc::c_ulong) -> bool {
    let probe = if bit == libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
        bit | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        bit
    };
    // SAFETY: seccomp(2) with a NULL program pointer only reads user memory through that
    // pointer, which fails with EFAULT before any filter is prepared or installed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            probe,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}
