//! CVE-2019-5736: no process that enters a container may have a writable host binary as its
//! executable. Binaries that create containers re-execute themselves once, at start, from a
//! read-only handle on their own file; create and exec refuse to clone otherwise.
//!
//! The init and exec children are clones of the caller, and until their final `execve` their
//! `/proc/self/exe` is the caller's executable. A container command `#!/proc/self/exe` (or a
//! symlink to it, `/proc/thread-self/exe`, a binfmt_misc interpreter) makes the kernel run that
//! file inside the container; a payload then keeps a handle on it and writes it once nothing
//! executes it any more. Nothing here looks at what the container runs: the executable itself
//! cannot be written through any handle a container can reach.
//!
//! How (measured in docs/benchmarks.md, cheapest first):
//! 1. a detached, read-only bind mount of the binary (`open_tree(OPEN_TREE_CLONE)` +
//!    `mount_setattr(MOUNT_ATTR_RDONLY)`), never attached anywhere: opening it for writing
//!    fails with `EROFS` whatever the file's mode, and no mount event reaches the host. The
//!    page cache is shared with the installed binary, so memory stays as it was.
//! 2. where the caller may not make mounts (no `CAP_SYS_ADMIN` over its mount namespace): a
//!    sealed memfd copy (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`).

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, IoContext, Result, SysContext};

/// Set in the re-executed image's environment (and removed from it at once), so that a kernel
/// that would not report the handle as read-only ends in an error instead of a loop.
const REEXEC_MARKER: &str = "_PELAGOS_SEALED_EXE";

/// Chooses the method for measurement: `memfd` skips the bind mount.
pub const METHOD_ENV: &str = "PELAGOS_SEALED_EXE_METHOD";

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;

/// Whether this process runs from a sealed executable: 0 unknown, 1 yes, 2 no.
static SEALED: AtomicU8 = AtomicU8::new(0);

/// How the running executable is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// A mount that refuses writes (our detached bind mount, or a read-only filesystem).
    ReadOnlyMount,
    /// A memfd sealed against writes.
    SealedMemfd,
}

/// Make sure this process runs from a read-only handle on its executable, re-executing it
/// (same pid, arguments, environment and descriptors) if it does not. Call it first thing in
/// `main` of any binary that creates containers or execs into them, before threads exist and
/// before anything with side effects: on success it either returns at once or never returns.
pub fn ensure() -> Result<Protection> {
    let reexecuted = std::env::var_os(REEXEC_MARKER).is_some();
    if reexecuted {
        // Called at the start of main, before any thread exists (documented contract).
        std::env::remove_var(REEXEC_MARKER);
    }
    if let Some(p) = current_protection()? {
        SEALED.store(1, Ordering::Relaxed);
        return Ok(p);
    }
    if reexecuted {
        return Err(Error::Spec(
            "re-executed from a read-only copy of the runtime binary, but /proc/self/exe is \
             still writable; refusing to enter containers"
                .into(),
        ));
    }
    let handle = match std::env::var(METHOD_ENV).as_deref() {
        Ok("memfd") => sealed_memfd_copy()?,
        _ => read_only_bind().or_else(|_| sealed_memfd_copy())?,
    };
    reexec(&handle)
}

/// For create and exec: refuse to clone into a container from a writable executable.
pub fn require() -> Result<()> {
    match SEALED.load(Ordering::Relaxed) {
        1 => return Ok(()),
        2 => return Err(not_sealed()),
        _ => {}
    }
    let sealed = current_protection()?.is_some();
    SEALED.store(if sealed { 1 } else { 2 }, Ordering::Relaxed);
    if sealed {
        Ok(())
    } else {
        Err(not_sealed())
    }
}

fn not_sealed() -> Error {
    Error::Spec(
        "this process runs from a writable executable that a container could overwrite \
         (CVE-2019-5736); call pelagos_container::sealed_exe::ensure() at the start of main"
            .into(),
    )
}

/// How `/proc/self/exe` is protected against writes, if it is.
pub fn current_protection() -> Result<Option<Protection>> {
    let exe = nix::fcntl::open(
        "/proc/self/exe",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| "open /proc/self/exe".into())?;
    // SAFETY: a fresh descriptor from a successful open, owned here only.
    let exe = unsafe { OwnedFd::from_raw_fd(exe) };
    let vfs = nix::sys::statvfs::fstatvfs(&exe).sys(|| "statvfs /proc/self/exe".into())?;
    if vfs.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Ok(Some(Protection::ReadOnlyMount));
    }
    let seals = nix::fcntl::fcntl(exe.as_raw_fd(), nix::fcntl::FcntlArg::F_GET_SEALS).unwrap_or(0);
    let needed = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    if seals & needed == needed {
        return Ok(Some(Protection::SealedMemfd));
    }
    Ok(None)
}

/// A detached read-only bind mount of the running binary, as an `O_PATH` descriptor.
fn read_only_bind() -> Result<OwnedFd> {
    let path = c"/proc/self/exe";
    // SAFETY: open_tree reads a NUL-terminated path that lives for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    };
    let fd = nix::errno::Errno::result(fd).sys(|| "clone a mount of the runtime binary".into())?;
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    crate::sys::mount_setattr(
        tree.as_raw_fd(),
        false,
        crate::sys::MOUNT_ATTR_RDONLY
            | crate::sys::MOUNT_ATTR_NODEV
            | crate::sys::MOUNT_ATTR_NOSUID,
        0,
    )
    .sys(|| "make the runtime binary's mount read-only".into())?;
    Ok(tree)
}

/// A memfd holding a copy of the running binary, sealed against any change.
fn sealed_memfd_copy() -> Result<OwnedFd> {
    let mut source = std::fs::File::open("/proc/self/exe").io(|| "open /proc/self/exe".into())?;
    let name = c"pelagos-sealed-exe";
    // MFD_EXEC: keep the copy executable where vm.memfd_noexec=1 makes memfds noexec.
    const MFD_EXEC: libc::c_uint = 0x10;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create reads a NUL-terminated name that lives for the call.
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), flags | MFD_EXEC) };
    if fd < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINVAL {
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable anyway.
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
    }
    let fd = nix::errno::Errno::result(fd).sys(|| "memfd_create for the runtime binary".into())?;
    // SAFETY: memfd_create returned a new descriptor that nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut copy = std::fs::File::from(memfd);
    std::io::copy(&mut source, &mut copy).io(|| "copy the runtime binary into a memfd".into())?;
    let memfd = OwnedFd::from(copy);
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    nix::fcntl::fcntl(
        memfd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_ADD_SEALS(nix::fcntl::SealFlag::from_bits_truncate(seals)),
    )
    .sys(|| "seal the memfd copy of the runtime binary".into())?;
    Ok(memfd)
}

/// execveat(handle, "", argv, envp + marker, AT_EMPTY_PATH): same process, new image.
fn reexec(handle: &OwnedFd) -> Result<Protection> {
    let args = std::env::args_os()
        .map(cstring)
        .collect::<Result<Vec<CString>>>()?;
    let mut env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            cstring(kv)
        })
        .collect::<Result<Vec<CString>>>()?;
    env.push(cstring(OsString::from(format!("{REEXEC_MARKER}=1")))?);
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated strings that outlive
    // the call; on success the call does not return.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            handle.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    let err = nix::errno::Errno::result(ret).map(drop);
    err.sys(|| "re-execute the runtime from its read-only copy".into())?;
    Err(Error::Spec("execveat returned without error".into()))
}

fn cstring(s: OsString) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::Spec("an argument contains a NUL byte".into()))
}
