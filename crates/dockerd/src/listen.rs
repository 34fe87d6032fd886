//! Where the daemon listens: `-H` addresses parsed once into [`Address`]es, then bound.
//! Unix sockets get mode 0660 and the `-G` group; `fd://` takes systemd's sockets
//! (`LISTEN_FDS`); `tcp://` (and a TCP socket passed by `fd://`) needs TLS with client
//! verification ([`crate::tls`]): plain TCP would hand root to anyone who can reach the port,
//! so it is refused.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A parsed `-H` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `unix:///path`.
    Unix(PathBuf),
    /// `fd://` (every passed socket) or `fd://N` (the one with that number).
    Fd(Option<i32>),
    /// `tcp://host:port`.
    Tcp(String),
}

/// A bad `-H` value or a socket that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("invalid -H value {0:?}: expected unix:///PATH, fd://[N] or tcp://HOST:PORT")]
    Syntax(String),
    #[error("{0} without --tlsverify, --tlscacert, --tlscert and --tlskey is refused: plain TCP gives root on this host to anyone who reaches the port")]
    PlainTcp(String),
    #[error("fd://: {0}")]
    Activation(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

impl Address {
    /// Parses one `-H` value as dockerd does (`unix://` alone is the default socket).
    pub fn parse(text: &str) -> Result<Address, ListenError> {
        let syntax = || ListenError::Syntax(text.to_string());
        if let Some(path) = text.strip_prefix("unix://") {
            let path = if path.is_empty() {
                "/run/pelagos/docker.sock"
            } else {
                path
            };
            if !path.starts_with('/') {
                return Err(syntax());
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("fd://") {
            if rest.is_empty() {
                return Ok(Address::Fd(None));
            }
            return rest
                .parse()
                .map(|n| Address::Fd(Some(n)))
                .map_err(|_| syntax());
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            if rest.is_empty() || !rest.contains(':') {
                return Err(syntax());
            }
            return Ok(Address::Tcp(rest.trim_end_matches('/').to_string()));
        }
        Err(syntax())
    }
}

/// Binds a unix socket at `path` (a stale socket file is replaced), mode 0660, owned by
/// `group` when that group exists.
pub fn bind_unix(
    path: &Path,
    group: &str,
) -> Result<std::os::unix::net::UnixListener, ListenError> {
    let io = |what, source| ListenError::Io {
        what,
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory of", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(path).map_err(|e| io("cannot remove the stale socket", e))?
        }
        Ok(_) => {
            return Err(io(
                "refusing to replace a file that is not a socket:",
                std::io::Error::from_raw_os_error(libc::EEXIST),
            ))
        }
        Err(_) => {}
    }
    let listener =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| io("cannot listen on", e))?;
    if let Ok(Some(g)) = nix::unistd::Group::from_name(group) {
        nix::unistd::chown(path, None, Some(g.gid))
            .map_err(|e| io("cannot give the socket to its group:", e.into()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("cannot set the mode of", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| io("cannot make non-blocking", e))?;
    Ok(listener)
}

/// The sockets systemd passed (`LISTEN_PID` must be this process; fds from 3 on).
pub fn activation_fds(which: Option<i32>) -> Result<Vec<OwnedFd>, ListenError> {
    let err = |m: &str| ListenError::Activation(m.to_string());
    let pid: u32 = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| err("no sockets were passed (LISTEN_PID is not set)"))?;
    if pid != std::process::id() {
        return Err(err(
            "the passed sockets are for another process (LISTEN_PID)",
        ));
    }
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| err("no sockets were passed (LISTEN_FDS)"))?;
    let fds: Vec<i32> = (3..3 + count).collect();
    let chosen: Vec<i32> = match which {
        None => fds,
        Some(n) if fds.contains(&n) => vec![n],
        Some(n) => return Err(ListenError::Activation(format!("fd {n} was not passed"))),
    };
    Ok(chosen
        .into_iter()
        .map(|fd| {
            // SAFETY: systemd passed fds 3..3+LISTEN_FDS to this process (LISTEN_PID was
            // checked) and nothing else in the daemon owns them; each is taken once.
            unsafe { OwnedFd::from_raw_fd(fd) }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerds_addresses() {
        assert_eq!(
            Address::parse("unix:///tmp/d.sock").unwrap(),
            Address::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            Address::parse("unix://").unwrap(),
            Address::Unix("/run/pelagos/docker.sock".into())
        );
        assert_eq!(Address::parse("fd://").unwrap(), Address::Fd(None));
        assert_eq!(Address::parse("fd://3").unwrap(), Address::Fd(Some(3)));
        assert_eq!(
            Address::parse("tcp://127.0.0.1:2376").unwrap(),
            Address::Tcp("127.0.0.1:2376".into())
        );
        for bad in ["/tmp/x", "unix://rel", "fd://x", "tcp://", "http://a:1"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "keep").unwrap();
        assert!(bind_unix(&path, "nogroup-here").is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
        let sock = dir.path().join("s.sock");
        drop(bind_unix(&sock, "nogroup-here").unwrap());
        // A stale socket is replaced.
        let _l = bind_unix(&sock, "nogroup-here").unwrap();
        let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
    }
}
