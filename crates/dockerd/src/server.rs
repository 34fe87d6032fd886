//! The daemon's life: pid file (locked for the daemon's life: one daemon per pid file),
//! engine opened, listeners bound, every listener served until SIGINT or SIGTERM. Running
//! containers are left to their monitors when the daemon ends.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use axum::extract::Request;
use pelagos_engine::{Engine, EngineOptions};
use tokio::task::JoinSet;

use crate::flags::Flags;
use crate::listen::{activation_fds, bind_unix, Address, ListenError};
use crate::state::AppState;

/// Why the daemon could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("cannot open the engine: {0}")]
    Engine(#[from] pelagos_engine::Error),
    #[error("pid file {0} is held by a running pelagos-dockerd: stop it first, or give another --pidfile")]
    AlreadyRunning(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// A held pid file, removed when dropped.
pub struct PidFile {
    path: PathBuf,
    _file: File,
}

impl PidFile {
    /// Creates and locks `path`, writing this process's pid.
    pub fn hold(path: &Path) -> Result<PidFile, ServeError> {
        let io = |what: &str, source| ServeError::Io {
            what: format!("{what} {}", path.display()),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory of", e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| io("cannot open the pid file", e))?;
        // SAFETY: flock on an fd this function owns; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(ServeError::AlreadyRunning(path.to_path_buf()));
        }
        file.set_len(0)
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("cannot write the pid file", e))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The engine's options from the flags: a daemon's monitors always detach.
pub fn engine_options(flags: &Flags) -> EngineOptions {
    EngineOptions {
        root: flags.data_root.clone(),
        runroot: flags.exec_root.clone(),
        config_file: flags.config_file.clone(),
        cgroup_parent: flags.cgroup_parent.clone(),
        monitor_program: std::env::var_os("PELAGOS_MONITOR").map(Into::into),
        short_lived: false,
        ..EngineOptions::default()
    }
}

/// A bound listener.
enum Bound {
    Unix(tokio::net::UnixListener),
    Tls(tokio::net::TcpListener, tokio_rustls::TlsAcceptor),
}

/// Binds every address before anything is served: a bad `-H` fails the start.
fn bind_all(flags: &Flags) -> Result<Vec<Bound>, ServeError> {
    let tls = crate::tls::tls_files(flags);
    let acceptor = |what: &str| match &tls {
        Some(files) => crate::tls::acceptor(files).map_err(ServeError::from),
        None => Err(ListenError::PlainTcp(what.to_string()).into()),
    };
    let addresses = flags
        .hosts()
        .iter()
        .map(|h| Address::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    let mut bound = Vec::new();
    for address in addresses {
        match address {
            Address::Unix(path) => {
                let l = bind_unix(&path, &flags.group)?;
                bound.push(Bound::Unix(to_tokio_unix(l)?));
            }
            Address::Fd(which) => {
                for fd in activation_fds(which)? {
                    bound.push(activated(fd, &acceptor)?);
                }
            }
            Address::Tcp(addr) => {
                let acceptor = acceptor(&format!("tcp://{addr}"))?;
                bound.push(Bound::Tls(bind_tcp(&addr)?, acceptor));
            }
        }
    }
    Ok(bound)
}

fn to_tokio_unix(
    l: std::os::unix::net::UnixListener,
) -> Result<tokio::net::UnixListener, ServeError> {
    tokio::net::UnixListener::from_std(l).map_err(|source| ServeError::Io {
        what: "cannot register a unix listener".into(),
        source,
    })
}

/// Binds `host:port` for TLS.
fn bind_tcp(addr: &str) -> Result<tokio::net::TcpListener, ServeError> {
    let io = |source| ServeError::Io {
        what: format!("cannot listen on tcp://{addr}"),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(io)?;
    listener.set_nonblocking(true).map_err(io)?;
    tokio::net::TcpListener::from_std(listener).map_err(io)
}

/// A socket systemd passed: unix, or TCP served with TLS (refused without the TLS flags).
fn activated(
    fd: std::os::fd::OwnedFd,
    acceptor: &dyn Fn(&str) -> Result<tokio_rustls::TlsAcceptor, ServeError>,
) -> Result<Bound, ServeError> {
    let io = |source| ServeError::Io {
        what: "fd://: a passed socket".into(),
        source,
    };
    use nix::sys::socket::SockaddrLike;
    let family = nix::sys::socket::getsockname::<nix::sys::socket::SockaddrStorage>(fd.as_raw_fd())
        .map_err(|e| io(e.into()))?
        .family();
    if family == Some(nix::sys::socket::AddressFamily::Unix) {
        let l = std::os::unix::net::UnixListener::from(fd);
        l.set_nonblocking(true).map_err(io)?;
        return to_tokio_unix(l).map(Bound::Unix);
    }
    let acceptor = acceptor("a passed TCP socket")?;
    let l = std::net::TcpListener::from(fd);
    l.set_nonblocking(true).map_err(io)?;
    let l = tokio::net::TcpListener::from_std(l).map_err(io)?;
    Ok(Bound::Tls(l, acceptor))
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(flags: Flags) -> Result<(), ServeError> {
    let _pid = PidFile::hold(&flags.pidfile)?;
    let mut engine = Engine::open(engine_options(&flags))?;
    extend_registries(&mut engine, &flags)?;
    let state = AppState::new(engine);
    let listeners = bind_all(&flags)?;
    let app = crate::routes::router(state);
    let app = tower::Layer::layer(&axum::middleware::from_fn(crate::version::negotiate), app);
    // Outermost, so that refusals of the version check are covered too.
    let app = tower::Layer::layer(&axum::middleware::from_fn(crate::drain::drain_unread), app);
    let mut tasks = JoinSet::new();
    for listener in listeners {
        // Each unix connection's fd comes with its requests (see `hijack::PeerFd`).
        let service = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<
            crate::hijack::PeerFd,
        >(app.clone());
        match listener {
            Bound::Unix(l) => tasks.spawn(async move { axum::serve(l, service).await }),
            Bound::Tls(l, acceptor) => tasks.spawn(crate::tls::serve(l, acceptor, app.clone())),
        };
    }
    tracing::info!("pelagos-dockerd listening on {}", flags.hosts().join(", "));
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutting down: containers keep running"),
        Some(done) = tasks.join_next() => {
            if let Ok(Err(e)) = done {
                return Err(ServeError::Io { what: "serving".into(), source: e });
            }
        }
    }
    Ok(())
}

/// `--insecure-registry` and `--registry-mirror` on top of the configuration file's.
fn extend_registries(engine: &mut Engine, flags: &Flags) -> Result<(), ServeError> {
    let registries = engine.registries_mut();
    for entry in &flags.insecure_registries {
        registries
            .add_insecure(entry)
            .map_err(pelagos_engine::Error::from)?;
    }
    for mirror in &flags.registry_mirrors {
        registries
            .add_hub_mirror(mirror)
            .map_err(pelagos_engine::Error::from)?;
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
