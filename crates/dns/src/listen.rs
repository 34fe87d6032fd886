//! The listening sockets: UDP and TCP on each of the network's gateway addresses,
//! non-blocking, bound with `IP_FREEBIND` so a gateway address the kernel still holds as
//! tentative (IPv6 duplicate address detection) or on a bridge not yet up can be bound.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrStorage,
};

use crate::error::{Error, Result};

/// Pending TCP connections the kernel queues.
const BACKLOG: i32 = 64;

/// The sockets of every listening address.
#[derive(Debug, Default)]
pub struct Listeners {
    /// One UDP socket per address.
    pub udp: Vec<UdpSocket>,
    /// One TCP listener per address.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Bind UDP and TCP on `port` of every address of `addrs`.
    pub fn bind(addrs: &[IpAddr], port: u16) -> Result<Listeners> {
        let mut listeners = Listeners::default();
        for ip in addrs {
            let addr = SocketAddr::new(*ip, port);
            let fail = |source| Error::Bind { addr, source };
            listeners.udp.push(UdpSocket::from(
                bound(addr, SockType::Datagram).map_err(fail)?,
            ));
            listeners.tcp.push(TcpListener::from(
                bound(addr, SockType::Stream).map_err(fail)?,
            ));
        }
        Ok(listeners)
    }

    /// Close every socket.
    pub fn close(&mut self) {
        self.udp.clear();
        self.tcp.clear();
    }
}

/// A non-blocking socket of `kind` bound to `addr` (and listening, for TCP).
fn bound(addr: SocketAddr, kind: SockType) -> std::io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket(family, kind, flags, None)?;
    // Best effort: without it, binding simply waits for the address to be usable.
    let _ = setsockopt(&fd, sockopt::IpFreebind, &true);
    if kind == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    if kind == SockType::Stream {
        listen(&fd, Backlog::new(BACKLOG)?)?;
    }
    Ok(fd)
}
