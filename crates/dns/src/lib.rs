//! `pelagos-dns`: the resolver of one pelagos network, modelled on podman's aardvark-dns.
//! It answers A, AAAA and PTR queries for the names, aliases and short ids of the network's
//! containers and forwards every other query to the host's resolvers.
//!
//! It deliberately does not cache, recurse, sign, serve zones or know about other networks:
//! one small process per network, listening on the network's gateway address(es), port 53,
//! UDP and TCP, in the host's network namespace. Per network rather than per host because
//! a container must only resolve the containers it shares a network with, and the address
//! a query arrives on already says which network that is. The release binary runs in about
//! 2.5 MiB of RSS, 0.3 MiB of it private (the rest is the shared C library and the 1 MiB
//! binary), with one thread when idle: no tokio, one poll loop plus a short-lived thread
//! per forwarded query or TCP client.
//!
//! # Contract with the control plane and the monitor
//!
//! Layout: `<root>/networks/<id>/dns/{names.json, names.json.lock, dns.pid}` ([`DIR_NAME`],
//! [`names::FILE_NAME`], [`PID_FILE_NAME`]); the upstreams: [`upstream::host_resolv_conf`].
//!
//! 1. Attaching a container: take the names lock ([`names::lock`]), add the container's
//!    [`names::Entry`] (`Entry::container(id, name, aliases, v4, v6)`), write, then, still
//!    under the lock, ask [`pidfile::status`]: if `NotRunning`, `posix_spawn`
//!    `pelagos-dns --listen GW4[,GW6] --names <dir>/names.json --upstream-from /etc/resolv.conf
//!    --pidfile <dir>/dns.pid --exit-when-empty` (stdio to a log or /dev/null, its own
//!    session; it never forks). Release the lock. A running resolver sees the new file by
//!    itself (inotify); nothing else is needed.
//! 2. Ready: the pid file holds the pid once every socket is bound (`Status::Running`);
//!    `Starting` means binding is under way. A caller that must not let a container query
//!    before that polls `status`; a query that arrives earlier is simply retried by the
//!    container's resolver.
//! 3. Detaching: remove the entry under the lock ([`names::update`]). With
//!    `--exit-when-empty` the resolver, on seeing no entries, takes the same lock, reads the
//!    file again and, if still empty, closes its sockets and drops its pid-file lock before
//!    releasing the names lock, then exits 0. So a container attached concurrently either
//!    finds the resolver running or starts a new one that can bind.
//! 4. Liveness is the pid file's OFD lock, not the pid: a resolver killed by SIGKILL is
//!    `NotRunning` at once. SIGTERM/SIGINT: exit 0 after closing the sockets; SIGHUP:
//!    re-read the names file. Exit 1 with a message on stderr when it cannot start (a bad
//!    names file, an address it cannot bind, another resolver holding the pid file).
//!
//! Not found means forwarded (no NXDOMAIN of our own); a known name without an address of
//! the asked type gets an empty answer, never a forwarded one.

pub mod answer;
pub mod error;
pub mod listen;
pub mod names;
pub mod pidfile;
pub mod records;
pub mod server;
pub mod upstream;
pub mod watch;

pub use error::{Error, Result};

/// The resolver's directory inside a network's directory.
pub const DIR_NAME: &str = "dns";
/// The pid file's name inside [`DIR_NAME`].
pub const PID_FILE_NAME: &str = "dns.pid";
pub use names::{Entry, Names};
pub use server::{Config, Exit, Server};
