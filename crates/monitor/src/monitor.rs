//! The monitor's state and its one loop: poll(2) over the control socket, the clients, the
//! container's output and stdin, the pidfds of its init, of exec'd processes and of a
//! healthcheck probe, with the timers (stop's SIGKILL, restart backoff, probes) as the
//! timeout. Requests are in `requests.rs`, the container's life in `life.rs`.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pelagos_container::{ContainerId, Created, Runtime};
use pelagos_model::events::{Event, EventLog};
use pelagos_model::launch::LaunchPlan;
use pelagos_model::protocol::{self, Frame, FrameReader, Reply};
use pelagos_model::record::ContainerRecord;
use pelagos_model::store::{Containers, OwnerLock};

use crate::conn::Conn;
use crate::error::Result;
use crate::health::Checker;
use crate::lines::Lines;
use crate::log_sink::{self, LogSink, Stream};
use crate::memory::{Image, Scratch};
use crate::restart::{Backoff, Policy};
use crate::sys;

/// Size of the one read buffer, reused for every read.
const READ_BUF: usize = 64 * 1024;
/// Stdin bytes held for a slow container before its clients are read no more.
pub const STDIN_LIMIT: usize = 64 * 1024;
/// Activity is followed by a shedding of memory this much later (at most one per period).
const SHED_DELAY: Duration = Duration::from_secs(1);

/// The running container: its init and the monitor's ends of its stdio.
pub struct Live {
    pub created: Created,
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub stdin: Option<OwnedFd>,
    pub stdin_pending: Vec<u8>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub pty: Option<OwnedFd>,
    /// No process has the terminal open (polling its master would spin).
    pub pty_closed: bool,
    pub started: Instant,
    /// Its bridge networks' endpoints in join order (released at its exit).
    pub networks: Vec<crate::network::Endpoint>,
}

/// A process exec'd in the container, and who waits for its exit.
pub struct ExecProc {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub conn: Option<u64>,
    /// Docker's exec id, for its events.
    pub exec_id: String,
}

/// A source of the container's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Stdout,
    Stderr,
    Pty,
}

/// What a polled descriptor is.
#[derive(Debug, Clone, Copy)]
enum Token {
    Listener,
    Conn(u64),
    Output(Source),
    Stdin,
    Exec(i32),
    ProbeOutput,
    ProbeExit,
    Init,
}

/// Everything the monitor holds.
pub struct Monitor {
    pub id: ContainerId,
    pub store: Containers,
    pub runtime: Runtime,
    pub plan: LaunchPlan,
    /// The container's directory.
    pub dir: PathBuf,
    pub socket_path: PathBuf,
    /// The record as last written.
    pub record: ContainerRecord,
    /// Held for the whole life; released by the kernel when the monitor exits.
    /// The container's owner lock, held until the monitor's last write (see `Monitor::leave`).
    pub lock: Option<OwnerLock>,
    listener: UnixListener,
    pub conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    pub live: Option<Live>,
    /// Restarting: when the next start is due.
    pub restart_at: Option<Instant>,
    pub policy: Policy,
    pub backoff: Backoff,
    /// Restarts made by this monitor (on-failure's count).
    pub restarts: u32,
    /// Stop: when SIGKILL follows the stop signal.
    pub stop_deadline: Option<Instant>,
    /// Clients answered `Exited` at the next exit.
    pub exit_waiters: Vec<u64>,
    /// Clients answered `Removed` at the removal.
    pub removal_waiters: Vec<u64>,
    /// A removal under way (with the anonymous volumes?).
    pub removing: Option<bool>,
    /// The record is gone.
    pub removed: bool,
    /// A restart's stop: the record outlives this run even with AutoRemove.
    pub restart_follows: bool,
    pub execs: Vec<ExecProc>,
    pub health: Option<Checker>,
    pub log: Box<dyn LogSink>,
    pub lines: Lines,
    /// The one read buffer.
    pub buf: Scratch,
    /// When to give back memory a burst of work left resident (see `memory`).
    pub shed_at: Option<Instant>,
    /// Code pages to drop right before the next sleep.
    pending_drop: Option<Image>,
    /// Leave the loop.
    pub done: bool,
    /// Where the container's events go (`docker events`).
    pub events: EventLog,
    /// The engine's root (networks live under it).
    pub root: PathBuf,
    /// The addresses of the last start by network name (tried first by the next).
    pub last_ipv4: BTreeMap<String, std::net::Ipv4Addr>,
    /// Firewall handles that deleted a container's port rules, dropped (their netlink
    /// sockets closed, an RCU grace period for the kernel) after the round's replies are
    /// sent: nobody waits for that close.
    pub spent_firewalls: Vec<pelagos_firewall::Firewall>,
}

impl Monitor {
    /// A monitor for the container `record`, holding its owner lock and its socket.
    pub fn new(
        store: Containers,
        root: &std::path::Path,
        runroot: &std::path::Path,
        record: ContainerRecord,
        plan: LaunchPlan,
        lock: OwnerLock,
        listener: UnixListener,
    ) -> Result<Monitor> {
        sys::set_nonblocking(listener.as_fd())?;
        let id = record.id.clone();
        Ok(Monitor {
            dir: store.dir_of(&id),
            socket_path: protocol::socket_path(runroot, &id),
            runtime: Runtime::new(runroot),
            id,
            store,
            plan,
            record,
            lock: Some(lock),
            listener,
            conns: BTreeMap::new(),
            next_conn: 0,
            live: None,
            restart_at: None,
            policy: Policy::No,
            backoff: Backoff::default(),
            restarts: 0,
            stop_deadline: None,
            exit_waiters: Vec::new(),
            removal_waiters: Vec::new(),
            removing: None,
            removed: false,
            restart_follows: false,
            execs: Vec::new(),
            health: None,
            log: Box::new(log_sink::Discard),
            lines: Lines::default(),
            buf: Scratch::new(READ_BUF)?,
            shed_at: None,
            spent_firewalls: Vec::new(),
            pending_drop: None,
            done: false,
            events: EventLog::new(root),
            root: root.to_path_buf(),
            last_ipv4: BTreeMap::new(),
        })
    }

    /// Records the container's event `action` with extra attributes; never fails.
    pub fn emit(&self, action: &str, attributes: &[(&str, &str)]) {
        let event = attributes
            .iter()
            .fold(Event::container(&self.record, action), |e, (k, v)| {
                e.with(k, *v)
            });
        self.events.emit(&event);
    }

    /// Adds a client; its id.
    pub fn add_conn(&mut self, conn: Conn) -> u64 {
        self.next_conn += 1;
        self.conns.insert(self.next_conn, conn);
        self.next_conn
    }

    /// Queues an answer to client `id` (gone clients are skipped).
    pub fn reply(&mut self, id: u64, reply: &Reply) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.reply(reply);
        }
    }

    /// Changes the record on disk and keeps the result.
    pub fn update(&mut self, change: impl FnOnce(&mut ContainerRecord)) -> Result<()> {
        self.record = self.store.modify(&self.id, change)?;
        Ok(())
    }

    /// Serves until the container's life is over.
    pub fn serve(&mut self) -> Result<()> {
        while !self.done {
            let (mut fds, tokens) = self.poll_set();
            let timeout = self.timeout_ms();
            let events = match self.pending_drop.take() {
                Some(image) => crate::memory::poll_dropping(&image, &mut fds, timeout)?,
                None => sys::poll(&mut fds, timeout)?,
            };
            for (pfd, token) in fds.iter().zip(tokens) {
                if pfd.revents != 0 && !self.done {
                    self.dispatch(token, pfd.revents);
                }
            }
            let now = Instant::now();
            if !self.done {
                self.on_timers(now);
            }
            self.flush_conns();
            self.spent_firewalls.clear();
            self.shed_when_due(events > 0, now);
        }
        Ok(())
    }

    /// Sheds memory a second after activity began, and at once after a burst (a start, an
    /// exec) asked for it; here, at the top of the loop, the stack is shallow.
    fn shed_when_due(&mut self, active: bool, now: Instant) {
        if self.shed_at.is_some_and(|t| t <= now) {
            self.buf.release();
            self.pending_drop = Some(crate::memory::shed());
            self.shed_at = None;
        } else if active && self.shed_at.is_none() {
            self.shed_at = Some(now + SHED_DELAY);
        }
    }

    /// Asks for memory to be shed at the end of this round (after a burst of work).
    pub fn shed_soon(&mut self) {
        self.shed_at = Some(Instant::now());
    }

    fn poll_set(&self) -> (Vec<libc::pollfd>, Vec<Token>) {
        let mut set = PollSet::default();
        set.add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
        for (id, c) in &self.conns {
            let mut events = 0;
            if !c.eof && self.may_read(c) {
                events |= libc::POLLIN;
            }
            if c.wants_write() {
                events |= libc::POLLOUT;
            }
            set.add(c.fd().as_raw_fd(), events, Token::Conn(*id));
        }
        if let Some(l) = &self.live {
            let pty = l.pty.as_ref().filter(|_| !l.pty_closed);
            let sources = [
                (l.stdout.as_ref(), Source::Stdout),
                (l.stderr.as_ref(), Source::Stderr),
                (pty, Source::Pty),
            ];
            for (fd, src) in sources {
                if let Some(fd) = fd {
                    set.add(fd.as_raw_fd(), libc::POLLIN, Token::Output(src));
                }
            }
            if let Some(fd) = l.stdin.as_ref().or(l.pty.as_ref()) {
                if !l.stdin_pending.is_empty() {
                    set.add(fd.as_raw_fd(), libc::POLLOUT, Token::Stdin);
                }
            }
        }
        for e in &self.execs {
            set.add(e.pidfd.as_raw_fd(), libc::POLLIN, Token::Exec(e.pid));
        }
        if let Some(p) = self.health.as_ref().and_then(|h| h.probe.as_ref()) {
            if let Some(fd) = &p.output {
                set.add(fd.as_raw_fd(), libc::POLLIN, Token::ProbeOutput);
            }
            set.add(p.pidfd.as_raw_fd(), libc::POLLIN, Token::ProbeExit);
        }
        // Last: the container's output of this round is read before its exit is handled.
        if let Some(l) = &self.live {
            set.add(l.pidfd.as_raw_fd(), libc::POLLIN, Token::Init);
        }
        (set.fds, set.tokens)
    }

    /// A client attached to stdin is not read while the container's stdin is full.
    fn may_read(&self, c: &Conn) -> bool {
        !feeds_stdin(c)
            || self
                .live
                .as_ref()
                .is_none_or(|l| l.stdin_pending.len() < STDIN_LIMIT)
    }

    fn timeout_ms(&self) -> i32 {
        let probe = self.health.as_ref().filter(|h| {
            h.probe.is_some() || self.record.state.status == pelagos_model::state::Status::Running
        });
        let next = [
            self.stop_deadline,
            self.restart_at,
            probe.map(|h| h.deadline()),
            self.shed_at,
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            None => -1,
            Some(t) => {
                let wait = t.saturating_duration_since(Instant::now());
                // Rounded up: waking early would spin until the deadline.
                let ms = wait.as_millis() + u128::from(wait.subsec_nanos() % 1_000_000 != 0);
                ms.min(i32::MAX as u128) as i32
            }
        }
    }

    fn dispatch(&mut self, token: Token, revents: i16) {
        match token {
            Token::Listener => self.accept(),
            Token::Conn(id) => self.on_conn(id, revents),
            Token::Output(src) => self.on_output(src),
            Token::Stdin => self.flush_stdin(),
            Token::Exec(pid) => self.on_exec_exit(pid),
            Token::ProbeOutput => {
                if let Some(h) = &mut self.health {
                    h.read_output(&mut self.buf);
                }
            }
            Token::ProbeExit => self.on_probe_exit(),
            Token::Init => self.on_exit(),
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            if let Ok(c) = Conn::new(sock, FrameReader::default()) {
                self.add_conn(c);
            }
        }
    }

    fn on_conn(&mut self, id: u64, revents: i16) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if revents & libc::POLLOUT != 0 {
            c.flush();
        }
        if revents & libc::POLLIN != 0 {
            c.fill(&mut self.buf);
        } else if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            c.dead = true;
        }
        let mut frames = Vec::new();
        loop {
            match c.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    c.reply_and_close(&Reply::Error(crate::error::Error::Model(e).to_wire()));
                    c.eof = true;
                    break;
                }
            }
        }
        let stdin_ended = c.eof && feeds_stdin(c);
        for f in frames {
            match f {
                Frame::Control { message, fds } => self.on_request(id, message, fds),
                Frame::Data { stream, bytes } if stream == protocol::STDIN => {
                    self.on_stdin(id, bytes)
                }
                Frame::Data { .. } => {}
            }
        }
        if stdin_ended {
            self.stdin_client_left();
        }
    }

    /// Sends what clients can take; drops the dead ones.
    fn flush_conns(&mut self) {
        let mut gone = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            if c.wants_write() || c.closing {
                c.flush();
            }
            if c.dead {
                gone.push(*id);
            }
        }
        for id in gone {
            if self.conns.remove(&id).is_some_and(|c| feeds_stdin(&c)) {
                self.stdin_client_left();
            }
        }
    }

    fn on_output(&mut self, src: Source) {
        let Some(l) = &mut self.live else { return };
        let slot = match src {
            Source::Stdout => &mut l.stdout,
            Source::Stderr => &mut l.stderr,
            Source::Pty => &mut l.pty,
        };
        let Some(fd) = slot.as_ref() else { return };
        match sys::read_some(fd.as_fd(), &mut self.buf) {
            sys::Read::Data(n) => self.fan_out(src, n),
            sys::Read::Eof if src == Source::Pty => {
                // The master stays: it is the container's stdin and size too.
                l.pty_closed = true;
            }
            sys::Read::Eof => {
                *slot = None;
                self.lines.flush(stream_of(src), &mut *self.log);
            }
            sys::Read::WouldBlock => {}
        }
    }

    /// Logs `n` bytes of output in the buffer and sends them to attached clients.
    pub fn fan_out(&mut self, src: Source, n: usize) {
        let stream = stream_of(src);
        let bytes = &self.buf[..n];
        self.lines.push(stream, bytes, &mut *self.log);
        let frame_stream = match stream {
            Stream::Stdout => protocol::STDOUT,
            Stream::Stderr => protocol::STDERR,
        };
        for c in self.conns.values_mut() {
            let wants = c.attachment.as_ref().is_some_and(|a| match stream {
                Stream::Stdout => a.stdout,
                Stream::Stderr => a.stderr,
            });
            if wants {
                c.output(frame_stream, bytes);
            }
        }
    }

    /// Sends clients what their sockets take now of their queued output (the loop sends
    /// the rest and drops the dead).
    pub fn send_queued_output(&mut self) {
        for c in self.conns.values_mut().filter(|c| c.wants_write()) {
            c.flush();
        }
    }

    /// Reads what is left of the container's output (its processes are gone).
    pub fn drain_output(&mut self, outputs: [Option<OwnedFd>; 3]) {
        let sources = [Source::Stdout, Source::Stderr, Source::Pty];
        for (fd, src) in outputs.into_iter().zip(sources) {
            let Some(fd) = fd else { continue };
            while let sys::Read::Data(n) = sys::read_some(fd.as_fd(), &mut self.buf) {
                self.fan_out(src, n);
            }
        }
        self.lines.flush_all(&mut *self.log);
    }

    /// Writes pending stdin to the container (its pipe or terminal).
    pub fn flush_stdin(&mut self) {
        let Some(l) = &mut self.live else { return };
        let Some(fd) = l.stdin.as_ref().or(l.pty.as_ref()) else {
            l.stdin_pending.clear();
            return;
        };
        while !l.stdin_pending.is_empty() {
            match sys::write_some(fd.as_fd(), &l.stdin_pending) {
                Ok(0) => return,
                Ok(n) => {
                    l.stdin_pending.drain(..n);
                }
                Err(_) => {
                    // Nobody reads it any more.
                    l.stdin_pending = Vec::new();
                    l.stdin = None;
                    return;
                }
            }
        }
        if l.stdin_pending.capacity() > STDIN_LIMIT {
            l.stdin_pending = Vec::new();
        }
    }

    fn on_exec_exit(&mut self, pid: i32) {
        let Some(pos) = self.execs.iter().position(|e| e.pid == pid) else {
            return;
        };
        let e = self.execs.remove(pos);
        let exit_code = sys::reap(e.pid).unwrap_or(-1);
        self.emit_exec_die(&e.exec_id, exit_code);
        if let Some(conn) = e.conn {
            self.reply(conn, &Reply::ExecExited { exit_code });
        }
    }

    fn emit_exec_die(&self, exec_id: &str, exit_code: i32) {
        let code = exit_code.to_string();
        self.emit("exec_die", &[("execID", exec_id), ("exitCode", &code)]);
    }

    /// Reaps every exec'd process (the container is gone, so they are too).
    pub fn reap_execs(&mut self) {
        for e in std::mem::take(&mut self.execs) {
            let exit_code = sys::reap(e.pid).unwrap_or(-1);
            self.emit_exec_die(&e.exec_id, exit_code);
            if let Some(conn) = e.conn {
                self.reply(conn, &Reply::ExecExited { exit_code });
            }
        }
    }

    /// Sends what is queued to every client, for at most `limit`.
    pub fn flush_all(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            self.flush_conns();
            let pending: Vec<RawFd> = self
                .conns
                .values()
                .filter(|c| c.wants_write())
                .map(|c| c.fd().as_raw_fd())
                .collect();
            let left = deadline.saturating_duration_since(Instant::now());
            if pending.is_empty() || left.is_zero() {
                return;
            }
            let mut fds: Vec<libc::pollfd> = pending
                .iter()
                .map(|fd| libc::pollfd {
                    fd: *fd,
                    events: libc::POLLOUT,
                    revents: 0,
                })
                .collect();
            if sys::poll(&mut fds, left.as_millis().max(1) as i32).is_err() {
                return;
            }
        }
    }
}

/// Whether a client is attached to the container's stdin.
fn feeds_stdin(c: &Conn) -> bool {
    c.attachment.as_ref().is_some_and(|a| a.stdin)
}

/// The log stream of an output source (a terminal has only one).
fn stream_of(src: Source) -> Stream {
    match src {
        Source::Stderr => Stream::Stderr,
        Source::Stdout | Source::Pty => Stream::Stdout,
    }
}

#[derive(Default)]
struct PollSet {
    fds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
}

impl PollSet {
    fn add(&mut self, fd: RawFd, events: i16, token: Token) {
        self.fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        self.tokens.push(token);
    }
}
