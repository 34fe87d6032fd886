//! Hand a seccomp user-notification listener fd to a seccomp agent the way runc does, plus the
//! allocation-free SCM_RIGHTS helpers used for it.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use serde_json::{json, Value};

use crate::error::SeccompError;

/// Room for one `cmsghdr` carrying a single fd (CMSG_SPACE(sizeof(int)) is 24 on 64-bit).
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Connect to the seccomp agent's AF_UNIX SOCK_STREAM socket at `path` (close-on-exec).
///
/// Call this before loading a filter whose profile could block `connect`/`socket`.
pub fn connect_listener(path: &Path) -> Result<OwnedFd, SeccompError> {
    UnixStream::connect(path)
        .map(OwnedFd::from)
        .map_err(|source| SeccompError::Connect {
            path: path.to_path_buf(),
            source,
        })
}

/// Send the listener fd to the agent connected on `sock`: the OCI "containerProcessState" JSON
/// (`ociVersion`, `fds: ["seccompFd"]`, `pid`, `metadata`, `state`) in one `sendmsg` with the
/// fd attached as SCM_RIGHTS. `state` is the container's state object (as in `runc state`).
pub fn send_listener_fd(
    sock: impl AsFd,
    listener: impl AsFd,
    pid: i32,
    metadata: Option<&str>,
    state: &Value,
) -> Result<(), SeccompError> {
    let oci_version = state
        .get("ociVersion")
        .and_then(Value::as_str)
        .unwrap_or(oci_spec::runtime::VERSION);
    let mut message = json!({
        "ociVersion": oci_version,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let (Some(meta), Some(obj)) = (metadata.filter(|m| !m.is_empty()), message.as_object_mut()) {
        obj.insert("metadata".to_string(), Value::String(meta.to_string()));
    }
    let bytes = serde_json::to_vec(&message)?;
    send_fd(sock, listener, &bytes)
}

/// Send `data` with `fd` attached (SCM_RIGHTS) over a connected AF_UNIX socket; the fd travels
/// with the first byte, any rest of `data` a short write left is sent after it. Does not
/// allocate, so it may be used in a forked child. `data` must not be empty.
pub fn send_fd(sock: impl AsFd, fd: impl AsFd, data: &[u8]) -> Result<(), SeccompError> {
    let sock = sock.as_fd().as_raw_fd();
    let fd: RawFd = fd.as_fd().as_raw_fd();
    if data.is_empty() {
        return Err(SeccompError::FdPassing {
            what: "sendmsg",
            errno: Errno::EINVAL,
        });
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut cmsg_buf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    // SAFETY: msg_control points at a suitably aligned buffer of at least msg_controllen bytes,
    // so CMSG_FIRSTHDR returns a pointer inside it, and CMSG_DATA leaves room for one int.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    let mut sent = loop {
        // SAFETY: msg and everything it points to are valid for the duration of the call.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        match usize::try_from(n) {
            Ok(n) => break n,
            Err(_) if Errno::last() == Errno::EINTR => continue,
            Err(_) => return Err(fd_error("sendmsg")),
        }
    };
    while sent < data.len() {
        let rest = &data[sent..];
        // SAFETY: `rest` is a valid readable buffer of `rest.len()` bytes.
        let n = unsafe { libc::send(sock, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        match usize::try_from(n) {
            Ok(n) => sent += n,
            Err(_) if Errno::last() == Errno::EINTR => continue,
            Err(_) => return Err(fd_error("send")),
        }
    }
    Ok(())
}

/// Receive bytes into `buf` and at most one SCM_RIGHTS fd (close-on-exec) from `sock`, e.g. the
/// runtime receiving the listener fd from the container init. Extra fds are closed.
pub fn recv_fd(sock: impl AsFd, buf: &mut [u8]) -> Result<(usize, Option<OwnedFd>), SeccompError> {
    let sock = sock.as_fd().as_raw_fd();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cmsg_buf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is a plain C struct for which all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.0.as_mut_ptr().cast();
    msg.msg_controllen = cmsg_buf.0.len() as _;
    let n = loop {
        // SAFETY: msg points at valid, writable buffers of the advertised sizes.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        match usize::try_from(n) {
            Ok(n) => break n,
            Err(_) if Errno::last() == Errno::EINTR => continue,
            Err(_) => return Err(fd_error("recvmsg")),
        }
    };
    let mut received = None;
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/NXTHDR walk only
    // within that buffer and CMSG_DATA of an SCM_RIGHTS header holds whole ints.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let header = libc::CMSG_LEN(0) as usize;
                let count = ((*cmsg).cmsg_len as usize).saturating_sub(header)
                    / std::mem::size_of::<RawFd>();
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for i in 0..count {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    if received.is_none() {
                        received = Some(fd);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 && received.is_none() {
        return Err(SeccompError::FdPassing {
            what: "recvmsg (control data truncated)",
            errno: Errno::EMSGSIZE,
        });
    }
    Ok((n, received))
}

fn fd_error(what: &'static str) -> SeccompError {
    SeccompError::FdPassing {
        what,
        errno: Errno::last(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pelagos-seccomp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    #[test]
    fn listener_fd_and_state_reach_the_agent() {
        let dir = temp_dir("agent");
        let path = dir.join("agent.sock");
        let agent = UnixListener::bind(&path).expect("bind");

        let sock = connect_listener(&path).expect("connect");
        let (mut conn, _) = agent.accept().expect("accept");
        let (pipe_r, pipe_w) = nix::unistd::pipe().expect("pipe");
        let state = json!({"ociVersion": "1.0.2", "id": "ctr", "status": "creating", "pid": 42, "bundle": "/b"});
        send_listener_fd(&sock, &pipe_r, 42, Some("meta=1"), &state).expect("send");
        drop(sock);

        let mut buf = vec![0u8; 65536];
        let (n, fd) = recv_fd(&conn, &mut buf).expect("recv");
        let mut bytes = buf[..n].to_vec();
        conn.read_to_end(&mut bytes).expect("read rest");
        let got: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(got["ociVersion"], "1.0.2");
        assert_eq!(got["fds"], json!(["seccompFd"]));
        assert_eq!(got["pid"], 42);
        assert_eq!(got["metadata"], "meta=1");
        assert_eq!(got["state"], state);

        // The received fd is the pipe's read end: data written to the pipe comes out of it.
        let fd = fd.expect("an fd arrived");
        nix::unistd::write(&pipe_w, b"ok").expect("write");
        let mut out = [0u8; 2];
        nix::unistd::read(fd.as_raw_fd(), &mut out).expect("read");
        assert_eq!(&out, b"ok");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn metadata_is_omitted_when_absent_and_connect_errors_name_the_path() {
        let (a, b) = UnixStream::pair().expect("pair");
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        send_listener_fd(&a, &r, 7, None, &json!({"id": "x"})).expect("send");
        let mut buf = vec![0u8; 4096];
        let (n, fd) = recv_fd(&b, &mut buf).expect("recv");
        assert!(fd.is_some());
        let got: Value = serde_json::from_slice(&buf[..n]).expect("json");
        assert!(got.get("metadata").is_none());
        assert_eq!(got["ociVersion"], oci_spec::runtime::VERSION);

        let err = connect_listener(Path::new("/nonexistent/pelagos.sock")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/pelagos.sock"),
            "{err}"
        );
    }
}
