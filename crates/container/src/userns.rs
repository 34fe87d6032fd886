//! What a container whose root is not the host's root needs from the runtime (host root):
//! the ids its root maps to, its stdio handed over, and bind mount sources opened for it.
//! Once the init is in its user namespace it cannot reach host paths that only host root
//! may traverse (a 0700 `--root` or bundle parent), nor reopen host-root-owned stdio.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxIdMapping, Mount};

use crate::error::{Error, Result, SysContext};
use crate::namespaces;

/// The host id that `id` inside the container maps to, if any mapping covers it.
pub fn host_id(maps: &[LinuxIdMapping], id: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = id.checked_sub(m.container_id())?;
        (offset < m.size()).then(|| m.host_id().checked_add(offset))?
    })
}

/// The host uid and gid of the container's root (runc's `HostRootUID`/`HostRootGID`).
pub fn host_root(linux: &oci_spec::runtime::Linux) -> Option<(u32, u32)> {
    let uid = host_id(linux.uid_mappings().as_deref().unwrap_or(&[]), 0)?;
    let gid = host_id(linux.gid_mappings().as_deref().unwrap_or(&[]), 0)?;
    Some((uid, gid))
}

/// Give the container's user its stdio (fds 0-2, which the init inherits), runc's
/// `fixStdioPermissions`: the uid only (the gid stays), skipped for /dev/null and for what
/// the user already owns. runc does this in its init, from inside the user namespace, where
/// the kernel refuses to chown a host-root-owned pipe (EPERM, which runc ignores): the
/// container then cannot reopen `/dev/stdout`. pelagos's init is born in the user namespace,
/// so the runtime does it, as host root, and only for what the caller's plumbing is made
/// of: pipes and terminals owned by host root.
pub fn chown_stdio(host_uid: u32) -> Result<()> {
    if host_uid == 0 {
        return Ok(());
    }
    let null = nix::sys::stat::stat("/dev/null").sys(|| "stat /dev/null".into())?;
    for fd in 0..3 {
        let Ok(st) = nix::sys::stat::fstat(fd) else {
            continue; // closed: nothing to hand over
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let is_pipe = kind == SFlag::S_IFIFO;
        let is_tty = kind == SFlag::S_IFCHR && nix::unistd::isatty(fd).unwrap_or(false);
        if st.st_uid != 0 || st.st_rdev == null.st_rdev || !(is_pipe || is_tty) {
            continue;
        }
        nix::unistd::fchown(fd, Some(host_uid.into()), None)
            .sys(|| format!("give stdio fd {fd} to the container's uid {host_uid}"))?;
    }
    Ok(())
}

/// The bind mount's source on the host: absolute, or relative to the bundle.
pub fn bind_source(m: &Mount, bundle: &Path) -> Result<PathBuf> {
    let src = m.source().as_ref().ok_or_else(|| {
        Error::Spec(format!(
            "bind mount {} has no source",
            m.destination().display()
        ))
    })?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        bundle.join(src)
    })
}

/// Open the sources of the bind mounts among `mounts` as the runtime (host root) inside the
/// mount namespace at `mnt_ns` (the init's, still a copy of the host's), and send them to
/// the init over `sock`, one message each: the mount's index and the descriptor. Opened in
/// the container's mount namespace, a source is a mount of that namespace, which the init
/// may bind from, with the flags the kernel locked when it copied the namespace (runc's
/// parent opens them the same way; a tree cloned with `open_tree` in the host's namespace
/// would arrive unlocked, and the container's root could then clear a host mount's
/// read-only flag on its copy). It moves the whole process into that mount namespace and
/// back (and resets its cwd): only `create` calls it, behind its single-thread check.
pub(crate) fn send_bind_sources(
    mounts: &[Mount],
    bundle: &Path,
    mnt_ns: &OwnedFd,
    sock: &OwnedFd,
) -> Result<()> {
    let own_ns = namespaces::open_ns(Path::new("/proc/self/ns/mnt"))?;
    // setns into a mount namespace resets the cwd and root: keep the cwd to come back to
    // (relative --pid-file paths are resolved after this).
    let cwd = open_dir(Path::new("."))?;
    nix::sched::setns(mnt_ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .sys(|| "enter the container's mount namespace".into())?;
    let opened = open_bind_sources(mounts, bundle);
    let back = nix::sched::setns(&own_ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .sys(|| "return to the runtime's mount namespace".into())
        .and_then(|()| nix::unistd::fchdir(cwd.as_raw_fd()).sys(|| "return to the cwd".into()));
    let opened = opened?;
    back?;
    for (index, fd) in opened {
        let payload = (index as u32).to_le_bytes();
        let iov = [std::io::IoSlice::new(&payload)];
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .sys(|| "send a bind mount source to the init".into())?;
    }
    Ok(())
}

fn open_bind_sources(mounts: &[Mount], bundle: &Path) -> Result<Vec<(usize, OwnedFd)>> {
    let mut opened = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        if !crate::mount_opts::is_bind(m) {
            continue;
        }
        let source = bind_source(m, bundle)?;
        let fd = nix::fcntl::open(
            &source,
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| Error::Spec(format!("mount source {}: {e}", source.display())))?;
        // SAFETY: a fresh descriptor from a successful open.
        opened.push((index, unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    Ok(opened)
}

fn open_dir(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("open {}", path.display()))?;
    // SAFETY: a fresh descriptor from a successful open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The init's side: the sources [`send_bind_sources`] sent, by mount index, until the
/// runtime closes its end.
pub fn receive_bind_sources(sock: &OwnedFd, count: usize) -> Result<Vec<Option<OwnedFd>>> {
    let mut sources: Vec<Option<OwnedFd>> = (0..count).map(|_| None).collect();
    loop {
        let mut payload = [0u8; 4];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut payload)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).sys(|| "receive bind mount sources".into()),
        };
        if msg.bytes == 0 {
            return Ok(sources);
        }
        let mut fd = None;
        for c in msg.cmsgs().sys(|| "receive bind mount sources".into())? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for f in fds {
                    // SAFETY: SCM_RIGHTS just installed this descriptor; nothing owns it.
                    fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
                }
            }
        }
        let index = u32::from_le_bytes(payload) as usize;
        match (fd, sources.get_mut(index)) {
            (Some(fd), Some(slot)) => *slot = Some(fd),
            _ => {
                return Err(Error::Child(format!(
                    "bind mount source {index}: malformed message from the runtime"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(container: u32, host: u32, size: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({
            "containerID": container, "hostID": host, "size": size
        }))
        .unwrap()
    }

    #[test]
    fn host_ids_follow_the_mappings() {
        let maps = [map(0, 100000, 1000), map(1000, 5000, 10)];
        assert_eq!(host_id(&maps, 0), Some(100000));
        assert_eq!(host_id(&maps, 999), Some(100999));
        assert_eq!(host_id(&maps, 1000), Some(5000));
        assert_eq!(host_id(&maps, 1010), None);
        assert_eq!(host_id(&[map(1, 100000, 10)], 0), None);
        assert_eq!(host_id(&[map(0, u32::MAX, 10)], 5), None);
    }
}
