//! The resolver's event loop: one thread polls the listening sockets, the names file's
//! watch, the signal descriptor and the wake-up pipe of the forwarding threads; local
//! answers are sent at once, forwarded queries and TCP connections get a short-lived thread
//! each (bounded), whose UDP answers come back through a channel so that only this thread
//! ever holds the listening sockets (closing them closes the port at once).

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;

use crate::answer::{self, Decision, Transport};
use crate::error::{Error, Result};
use crate::listen::Listeners;
use crate::names;
use crate::pidfile::PidFile;
use crate::records::Records;
use crate::upstream::{self, Upstreams};
use crate::watch::Watcher;

/// Forwarding threads and TCP connections at most at once; past that, queries get SERVFAIL
/// and connections are closed (the client retries).
pub const MAX_BUSY: usize = 128;

/// A TCP client silent this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Stack of the helper threads: they parse and copy a few kilobytes at most.
const THREAD_STACK: usize = 256 * 1024;

/// Poll timeout: the names file is also checked this often, should an event be missed.
const RECHECK_MS: u16 = 5000;

/// What `pelagos-dns` is told on its command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The network's gateway addresses.
    pub listen: Vec<IpAddr>,
    /// The port (53).
    pub port: u16,
    /// The names file.
    pub names_file: PathBuf,
    /// The resolv.conf naming the upstream servers.
    pub upstream_from: PathBuf,
    /// The pid file, locked for the resolver's life, written once the sockets are bound.
    pub pidfile: Option<PathBuf>,
    /// Exit when the names file has no entries.
    pub exit_when_empty: bool,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// This signal (SIGTERM, SIGINT) arrived.
    Signal(u32),
    /// The names file has no entries left and `exit_when_empty` is set.
    Empty,
}

/// What the helper threads share with the loop.
#[derive(Debug)]
struct Shared {
    records: RwLock<Arc<Records>>,
    upstreams: Upstreams,
    busy: AtomicUsize,
}

impl Shared {
    /// The current records.
    fn records(&self) -> Arc<Records> {
        match self.records.read() {
            Ok(records) => Arc::clone(&records),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replace the records.
    fn install(&self, records: Records) {
        match self.records.write() {
            Ok(mut current) => *current = Arc::new(records),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(records),
        }
    }
}

/// One of the `MAX_BUSY` places for a helper thread, given back on drop.
struct Slot(Arc<Shared>);

impl Slot {
    /// A place, if one is free.
    fn take(shared: &Arc<Shared>) -> Option<Slot> {
        let was = shared.busy.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(Arc::clone(shared));
        (was < MAX_BUSY).then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A forwarded answer on its way back to a UDP client.
struct Reply {
    socket: usize,
    client: SocketAddr,
    bytes: Vec<u8>,
}

/// The running resolver.
#[derive(Debug)]
pub struct Server {
    config: Config,
    listeners: Listeners,
    pidfile: Option<PidFile>,
    watcher: Watcher,
    shared: Arc<Shared>,
    replies: Receiver<Reply>,
    reply_to: Sender<Reply>,
    wake_read: OwnedFd,
    wake_write: Arc<OwnedFd>,
}

impl Server {
    /// Claim the pid file, load the names, bind every address, then publish the pid.
    pub fn bind(config: Config) -> Result<Server> {
        let pidfile = config.pidfile.as_deref().map(PidFile::claim).transpose()?;
        let mut watcher = Watcher::new(&config.names_file)?;
        watcher.changed();
        let records = Records::new(&names::read_file(&config.names_file)?);
        let listeners = Listeners::bind(&config.listen, config.port)?;
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .map_err(|e| Error::sys("pipe2", e))?;
        let (reply_to, replies) = channel();
        let shared = Arc::new(Shared {
            records: RwLock::new(Arc::new(records)),
            upstreams: Upstreams::from_file(&config.upstream_from),
            busy: AtomicUsize::new(0),
        });
        let mut server = Server {
            config,
            listeners,
            pidfile,
            watcher,
            shared,
            replies,
            reply_to,
            wake_read,
            wake_write: Arc::new(wake_write),
        };
        if let Some(pidfile) = &mut server.pidfile {
            pidfile.publish()?;
        }
        Ok(server)
    }

    /// The bound UDP addresses (the same for TCP).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Serve until a terminating signal arrives on `signals` (SIGHUP reloads the names) or,
    /// with `exit_when_empty`, the names file has no entries left.
    pub fn serve(mut self, signals: &SignalFd) -> Result<Exit> {
        loop {
            if self.config.exit_when_empty && self.shared.records().is_empty() && self.retire()? {
                return Ok(Exit::Empty);
            }
            let ready = self.wait(signals)?;
            if ready[0] {
                if let Some(exit) = self.on_signal(signals) {
                    self.listeners.close();
                    return Ok(exit);
                }
            }
            if ready[1] || ready.iter().all(|r| !r) {
                let notified = self.watcher.drain();
                self.reload(notified);
            }
            if ready[2] {
                self.send_replies();
            }
            self.serve_ready(&ready[3..]);
        }
    }

    /// Poll every descriptor; readiness in the order signals, watch, wake pipe, UDP
    /// sockets, TCP listeners (all false on timeout).
    fn wait(&self, signals: &SignalFd) -> Result<Vec<bool>> {
        let fds = [signals.as_fd(), self.watcher.fd(), self.wake_read.as_fd()];
        let udp = self.listeners.udp.iter().map(AsFd::as_fd);
        let tcp = self.listeners.tcp.iter().map(AsFd::as_fd);
        let mut pollfds: Vec<PollFd> = fds
            .into_iter()
            .chain(udp)
            .chain(tcp)
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut pollfds, PollTimeout::from(RECHECK_MS)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::sys("poll", e)),
        }
        let readable = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;
        Ok(pollfds
            .iter()
            .map(|p| p.revents().is_some_and(|r| r.intersects(readable)))
            .collect())
    }

    /// A signal: SIGHUP reloads, anything else (SIGTERM, SIGINT) ends the loop.
    fn on_signal(&mut self, signals: &SignalFd) -> Option<Exit> {
        while let Ok(Some(info)) = signals.read_signal() {
            if info.ssi_signo == libc::SIGHUP as u32 {
                self.reload(true);
            } else {
                return Some(Exit::Signal(info.ssi_signo));
            }
        }
        None
    }

    /// Re-read the names file if it changed (or anyway when `force`d); a file that does not
    /// parse leaves the previous records in place.
    fn reload(&mut self, force: bool) {
        if !self.watcher.changed() && !force {
            return;
        }
        match names::read_file(&self.config.names_file) {
            Ok(names) => self.shared.install(Records::new(&names)),
            Err(e) => eprintln!("pelagos-dns: keeping the previous names: {e}"),
        }
    }

    /// The names file looks empty: under its lock, look again and, if it still is, close
    /// the sockets and release the pid file before the lock, so that a container starting
    /// now either finds us running or starts a resolver that can bind.
    fn retire(&mut self) -> Result<bool> {
        let lock = names::lock_file(&self.config.names_file)?;
        let names = lock.read()?;
        if !names.entries.is_empty() {
            self.shared.install(Records::new(&names));
            return Ok(false);
        }
        self.listeners.close();
        self.pidfile = None;
        drop(lock);
        Ok(true)
    }

    /// Send the answers the forwarding threads have finished.
    fn send_replies(&self) {
        let mut drained = [0u8; 64];
        while matches!(nix::unistd::read(self.wake_read.as_raw_fd(), &mut drained), Ok(n) if n > 0)
        {
        }
        while let Ok(reply) = self.replies.try_recv() {
            if let Some(socket) = self.listeners.udp.get(reply.socket) {
                let _ = socket.send_to(&reply.bytes, reply.client);
            }
        }
    }

    /// Read every ready UDP socket and accept on every ready TCP listener.
    fn serve_ready(&self, ready: &[bool]) {
        let (udp_ready, tcp_ready) = ready.split_at(self.listeners.udp.len().min(ready.len()));
        for (index, _) in udp_ready.iter().enumerate().filter(|(_, r)| **r) {
            self.read_datagrams(index);
        }
        for (index, _) in tcp_ready.iter().enumerate().filter(|(_, r)| **r) {
            self.accept_connections(index);
        }
    }

    /// Answer or forward every datagram waiting on UDP socket `index`.
    fn read_datagrams(&self, index: usize) {
        let socket = &self.listeners.udp[index];
        let mut buf = [0u8; 4096];
        while let Ok((len, client)) = socket.recv_from(&mut buf) {
            let packet = &buf[..len];
            match answer::decide(packet, &self.shared.records(), Transport::Udp) {
                Decision::Reply(bytes) => drop(socket.send_to(&bytes, client)),
                Decision::Drop => {}
                Decision::Forward { limit } => self.forward_udp(index, packet, client, limit),
            }
        }
    }

    /// Forward `packet` on a thread; its answer comes back through the channel.
    fn forward_udp(&self, socket: usize, packet: &[u8], client: SocketAddr, limit: usize) {
        let query = packet.to_vec();
        let own = self.shared.records().upstreams_of(client.ip()).to_vec();
        let reply_to = self.reply_to.clone();
        let wake = Arc::clone(&self.wake_write);
        let spawned = Slot::take(&self.shared).map(|slot| {
            spawn_helper(move || {
                let shared = &slot.0;
                let answer = upstream::forward(&query, &shared.upstreams, &own, limit);
                if let Some(bytes) = answer.or_else(|| answer::servfail_for(&query)) {
                    let _ = reply_to.send(Reply {
                        socket,
                        client,
                        bytes,
                    });
                    let _ = nix::unistd::write(&*wake, &[1]);
                }
            })
        });
        if spawned != Some(true) {
            if let Some(bytes) = answer::servfail_for(packet) {
                let _ = self.listeners.udp[socket].send_to(&bytes, client);
            }
        }
    }

    /// Accept every pending connection on TCP listener `index`, one thread each.
    fn accept_connections(&self, index: usize) {
        while let Ok((stream, _)) = self.listeners.tcp[index].accept() {
            if let Some(slot) = Slot::take(&self.shared) {
                spawn_helper(move || serve_tcp(stream, &slot.0));
            }
        }
    }
}

/// Start a helper thread with a small stack; false if the system refused.
fn spawn_helper(work: impl FnOnce() + Send + 'static) -> bool {
    let builder = std::thread::Builder::new().stack_size(THREAD_STACK);
    builder.spawn(work).is_ok()
}

/// Answer the queries of one TCP client until it closes, errs or idles.
fn serve_tcp(mut stream: TcpStream, shared: &Shared) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TCP_IDLE)));
    if setup
        .and_then(|()| stream.set_write_timeout(Some(TCP_IDLE)))
        .is_err()
    {
        return;
    }
    let Ok(client) = stream.peer_addr() else {
        return;
    };
    while let Ok(query) = upstream::read_framed(&mut stream) {
        let records = shared.records();
        let reply = match answer::decide(&query, &records, Transport::Tcp) {
            Decision::Reply(bytes) => Some(bytes),
            Decision::Drop => None,
            Decision::Forward { limit } => {
                let own = records.upstreams_of(client.ip());
                upstream::forward(&query, &shared.upstreams, own, limit)
                    .or_else(|| answer::servfail_for(&query))
            }
        };
        let Some(reply) = reply else { return };
        if upstream::write_framed(&mut stream, &reply).is_err() {
            return;
        }
    }
}
