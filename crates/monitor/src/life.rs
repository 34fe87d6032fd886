//! The container's life as the monitor leads it: the starter's `Start`, each start and
//! exit, the restart policy, the end (unmount, `AutoRemove`), the removal, timers, and the
//! monitor's own exit.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use pelagos_model::protocol::{self, Attach, Frame, FrameReader, Reply, Request};
use pelagos_model::state::{Health, HealthStatus, Status};

use crate::conn::Conn;
use crate::error::{Error, Result};
use crate::health::{self, Checker, Settings};
use crate::launch::{self, Launched, Launcher};
use crate::monitor::{Live, Monitor};
use crate::restart::Policy;
use crate::{log_sink, overlay, requests, sys};

/// How long the monitor tries to deliver its last answers before it exits.
const LAST_WORDS: Duration = Duration::from_secs(2);

impl Monitor {
    /// Waits on the starter connection for `Start` and starts the container. End of file
    /// before it leaves the container as it is.
    pub fn await_start(&mut self, starter: UnixStream) {
        let mut reader = FrameReader::default();
        loop {
            match reader.next_frame::<Request>() {
                Ok(Some(Frame::Control {
                    message: Request::Start { attach },
                    ..
                })) => return self.start(starter, reader, attach),
                Ok(Some(Frame::Control { .. })) => {
                    let e = Error::Conflict("the container is not started yet".into());
                    send_now(&starter, &Reply::Error(e.to_wire()));
                }
                Ok(Some(Frame::Data { .. })) => {}
                Ok(None) if reader.at_eof() => return self.leave(),
                Ok(None) => {
                    if reader.fill_with(starter.as_fd(), &mut self.buf).is_err() {
                        self.done = true;
                        return;
                    }
                }
                Err(e) => {
                    send_now(&starter, &Reply::Error(Error::Model(e).to_wire()));
                    self.done = true;
                    return;
                }
            }
        }
    }

    /// The first start, answered on the starter connection (attached first when asked, so
    /// that no output is missed).
    fn start(&mut self, starter: UnixStream, reader: FrameReader, attach: Option<Attach>) {
        let mut conn = match Conn::new(starter, reader) {
            Ok(c) => c,
            Err(_) => {
                self.done = true;
                return;
            }
        };
        let attached = attach.as_ref().map_or(Ok(()), |a| {
            requests::set_attachment(&mut conn, a, self.record.config.tty)
        });
        if attach.is_some() && attached.is_ok() {
            self.emit("attach", &[]);
        }
        let id = self.add_conn(conn);
        match attached.and_then(|()| self.first_launch()) {
            Ok(pid) => self.reply(id, &Reply::Started { pid }),
            Err(e) => {
                // The starter gets the error, not the `Exited` of an attached client.
                if let Some(c) = self.conns.get_mut(&id) {
                    c.attachment = None;
                }
                self.launch_failed(&e, Status::Created);
                if let Some(c) = self.conns.get_mut(&id) {
                    c.reply_and_close(&Reply::Error(e.to_wire()));
                }
            }
        }
    }

    fn first_launch(&mut self) -> Result<i32> {
        self.policy = Policy::of(&self.record.host_config.restart_policy)?;
        Settings::of(&self.record.config)?;
        self.log = log_sink::open(&self.dir, &self.record.host_config.log_config)?;
        if self.record.state.stop_requested {
            self.update(|r| r.state.stop_requested = false)?;
        }
        self.launch()
    }

    /// One start; its init's pid.
    fn launch(&mut self) -> Result<i32> {
        let launcher = Launcher {
            store: &self.store,
            runtime: &self.runtime,
            plan: &self.plan,
            dir: &self.dir,
            root: &self.root,
            previous_ipv4: &self.last_ipv4,
        };
        let launched = launcher.launch(&mut self.record)?;
        self.on_started(launched)
    }

    fn on_started(&mut self, l: Launched) -> Result<i32> {
        let now = Instant::now();
        let pid = l.pid;
        let started_at = pelagos_model::names::now_rfc3339();
        let health = Settings::of(&self.record.config)?;
        let has_health = health.is_some();
        self.update(|r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.started_at = Some(started_at);
            r.state.exit_code = 0;
            r.state.error.clear();
            r.state.oom_killed = false;
            // What the networks' attachments got (inspect's endpoints and ports).
            for endpoint in &l.networks {
                if let Some(settings) = r.networking.endpoints_config.get_mut(endpoint.name()) {
                    endpoint.fill(settings);
                }
            }
            r.ports = l.ports;
            if has_health {
                let log = r.state.health.take().map(|h| h.log).unwrap_or_default();
                r.state.health = Some(Health {
                    status: HealthStatus::Starting,
                    failing_streak: 0,
                    log,
                });
            }
        })?;
        self.live = Some(Live {
            created: l.created,
            pid,
            pidfd: l.pidfd,
            stdin: l.stdin,
            stdin_pending: Vec::new(),
            stdout: l.stdout,
            stderr: l.stderr,
            pty: l.pty,
            pty_closed: false,
            started: now,
            networks: l.networks,
        });
        self.health = health.map(|s| Checker::new(s, now));
        self.emit("start", &[]);
        // What creating the container needed is not needed again.
        self.shed_soon();
        Ok(pid)
    }

    /// A start failed: the record says why, with Docker's exit code for it, and the
    /// container's life ends (`status` Created for the first start, else Exited).
    fn launch_failed(&mut self, e: &Error, status: Status) {
        let code = pelagos_model::kind::exit_code(e.kind());
        let message = e.to_string();
        let _ = self.update(|r| {
            r.state.status = status;
            r.state.pid = 0;
            r.state.error = message;
            r.state.exit_code = code;
        });
        self.finish();
        self.answer_exit(code, status);
    }

    /// The container's init exited.
    pub fn on_exit(&mut self) {
        let Some(live) = self.live.take() else { return };
        let code = sys::reap(live.pid).unwrap_or(128 + libc::SIGKILL);
        let oom_killed = self.oom_killed();
        // Kills what is left in its cgroup and deletes the runtime's state.
        let _ = self.runtime.delete_created(live.created);
        self.release_networks(live.networks);
        self.drain_output([live.stdout, live.stderr, live.pty]);
        // Attached clients get the last output before anyone hears of the exit, as Docker's
        // `die` comes after its streams are copied (compose stops reading at `die`).
        self.send_queued_output();
        self.stop_deadline = None;
        self.on_probe_exit();
        self.health = None;
        self.reap_execs();
        if oom_killed {
            self.emit("oom", &[]);
        }
        self.after_exit(code, oom_killed, live.started.elapsed());
        self.shed_soon();
    }

    /// Gives back the networks' leases (and veths) of a container that ended; the record's
    /// endpoints keep only what was asked. A restart tries the same addresses first.
    fn release_networks(&mut self, endpoints: Vec<crate::network::Endpoint>) {
        if endpoints.is_empty() {
            return;
        }
        for endpoint in endpoints {
            self.last_ipv4
                .insert(endpoint.name().to_string(), endpoint.ipv4());
            // Its socket closes once the exit's answers are sent (see `Endpoint::release`).
            if let Ok(Some(firewall)) = endpoint.release() {
                self.spent_firewalls.push(firewall);
            }
        }
        let asked_mac = self.record.config.mac_address.clone();
        // A record about to be removed (`--rm`, `rm -f`) is not worth a write.
        let going = self.removing.is_some() || self.removes_at_end();
        if !self.removed && !going {
            let _ = self.update(|r| {
                let first = r.networks_in_order().first().map(|n| n.to_string());
                for (name, settings) in r.networking.endpoints_config.iter_mut() {
                    let asked = asked_mac
                        .as_deref()
                        .filter(|_| Some(name) == first.as_ref());
                    settings.clear_attachment(asked);
                }
                r.ports.clear();
            });
        }
    }

    /// Whether the kernel's OOM killer killed a process of the container (its cgroup's
    /// memory.events, read before the cgroup goes).
    fn oom_killed(&self) -> bool {
        let Ok(saved) = self.runtime.load(&self.id) else {
            return false;
        };
        let Ok(cgroup) = self.runtime.cgroup_of(&saved) else {
            return false;
        };
        cgroup.oom_kill_count().is_ok_and(|n| n > 0)
    }

    /// Records the exit, answers waiters, then restarts, ends or finishes a removal.
    fn after_exit(&mut self, code: i32, oom_killed: bool, ran: Duration) {
        let restart = self.removing.is_none()
            && !self.record.state.stop_requested
            && self.policy.wants(code, self.restarts);
        let status = if restart {
            Status::Restarting
        } else {
            Status::Exited
        };
        if self.removing.is_none() {
            let finished = pelagos_model::names::now_rfc3339();
            let _ = self.update(|r| {
                r.state.status = status;
                r.state.pid = 0;
                r.state.exit_code = code;
                r.state.oom_killed = oom_killed;
                r.state.finished_at = Some(finished);
                if !restart {
                    // This monitor's last write but for a removal (see `disown`).
                    r.state.owner = None;
                }
            });
        }
        // `die` after the record says so, as moby: a client that acts on the event (the docker
        // CLI below API 1.25 removes a `--rm` container when it sees `die`) finds it exited.
        self.emit("die", &[("exitCode", &code.to_string())]);
        // What ends here is done before anyone hears of the exit: a foreground `run` (or a
        // `wait`) that returns finds the root filesystem unmounted and, with AutoRemove, the
        // record gone.
        match (self.removing, restart) {
            (Some(volumes), _) => {
                // Not written (the record goes), but the removal's answer carries it.
                self.record.state.exit_code = code;
                self.finish_removal(volumes);
                self.answer_exit(code, status);
            }
            (None, true) => {
                self.answer_exit(code, status);
                self.schedule_restart(ran);
            }
            (None, false) => {
                self.finish();
                self.answer_exit(code, status);
            }
        }
    }

    /// Exit waiters and attached clients get `Exited`.
    fn answer_exit(&mut self, exit_code: i32, status: Status) {
        let reply = Reply::Exited { exit_code, status };
        for id in std::mem::take(&mut self.exit_waiters) {
            self.reply(id, &reply);
        }
        for c in self.conns.values_mut() {
            if c.attachment.take().is_some() {
                c.reply_and_close(&reply);
            }
        }
    }

    fn schedule_restart(&mut self, ran: Duration) {
        let delay = self.backoff.next(ran);
        self.restart_at = Some(Instant::now() + delay);
        self.restarts += 1;
        let _ = self.update(|r| r.state.restart_count += 1);
    }

    /// The backoff is over: start again.
    fn restart(&mut self) {
        self.restart_at = None;
        if let Err(e) = self.launch() {
            self.launch_failed(&e, Status::Exited);
        }
    }

    /// A stop (or kill) during the backoff: no restart; the container stays exited.
    pub fn end_restarting(&mut self) -> Result<()> {
        self.restart_at = None;
        self.update(|r| {
            r.state.stop_requested = true;
            r.state.status = Status::Exited;
        })?;
        let code = self.record.state.exit_code;
        self.finish();
        self.answer_exit(code, Status::Exited);
        Ok(())
    }

    /// The end of the container's life without removal: unmount; with AutoRemove the record
    /// and its anonymous volumes go too.
    pub fn finish(&mut self) {
        self.unmount();
        if self.record.host_config.auto_remove && !self.removes_at_end() {
            // Mounted volatile (AutoRemove) and kept for a restart: mountable again.
            let (upper, work) = (self.dir.join("upper"), self.dir.join("work"));
            let _ = overlay::settle_volatile(&upper, &work);
        }
        self.stop_listening();
        let removed = self.removes_at_end().then(|| self.remove_record(true));
        self.leave();
        if let Some(reply) = removed {
            self.answer_removal(&reply);
        }
    }

    /// Whether the end of this run removes the container: AutoRemove, unless a restart's
    /// stop ended it.
    fn removes_at_end(&self) -> bool {
        self.record.host_config.auto_remove && !self.restart_follows
    }

    /// The end of a `Remove`.
    pub fn finish_removal(&mut self, volumes: bool) {
        self.unmount();
        self.stop_listening();
        let reply = self.remove_record(volumes || self.record.host_config.auto_remove);
        self.leave();
        self.answer_removal(&reply);
    }

    /// No new clients from now on: whoever gets a last answer finds no monitor after it.
    /// The record is final, so the owner lock goes too: a client that heard the last answer
    /// can start or remove the container at once.
    pub fn leave(&mut self) {
        if self.lock.is_some() {
            self.stop_listening();
            self.disown();
            self.lock = None;
        }
        self.done = true;
    }

    /// The control socket goes first when a container ends for good: a client that looks
    /// while the record is being removed finds no monitor to ask and waits for the owner lock,
    /// which goes with the monitor's last write. Only while the lock is held: after it, the
    /// path may be another monitor's.
    fn stop_listening(&mut self) {
        if self.lock.is_some() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
    }

    /// The record no longer names this monitor as its owner: the last write to the record,
    /// made before the last answers, so that a client that heard them reads a record nobody
    /// changes any more.
    fn disown(&mut self) {
        if !self.removed && self.record.state.owner.is_some() {
            let _ = self.update(|r| r.state.owner = None);
        }
    }

    fn unmount(&mut self) {
        let _ = overlay::unmount(&launch::rootfs_of(&self.dir));
        let _ = crate::shm::unmount(&self.dir);
    }

    /// Deletes the record (and the anonymous volumes); removal waiters get the outcome.
    fn remove_record(&mut self, volumes: bool) -> Reply {
        match self.store.remove(&self.id) {
            Ok(()) => {
                self.removed = true;
                self.emit("destroy", &[]);
                if volumes {
                    self.remove_anonymous_volumes();
                }
                Reply::Removed {
                    exit_code: self.record.state.exit_code,
                }
            }
            Err(e) => Reply::Error(Error::Model(e).to_wire()),
        }
    }

    /// Removal waiters get the outcome: after `leave`, so that whoever hears `Removed` finds
    /// no socket, record or lock of this container left.
    fn answer_removal(&mut self, reply: &Reply) {
        for id in std::mem::take(&mut self.removal_waiters) {
            if let Some(c) = self.conns.get_mut(&id) {
                c.reply_and_close(reply);
            }
        }
    }

    fn remove_anonymous_volumes(&self) {
        let Ok(store) = pelagos_model::volumes::Volumes::open(&self.plan.volumes_dir) else {
            return;
        };
        for v in &self.record.anonymous_volumes {
            let _ = store.remove(v, true, &|_| Vec::new());
        }
    }

    /// What is due now: stop's SIGKILL, a restart, a probe's timeout or the next probe.
    pub fn on_timers(&mut self, now: Instant) {
        if self.stop_deadline.is_some_and(|d| d <= now) {
            self.stop_deadline = None;
            self.kill_all();
        }
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart();
        }
        let running = self.record.state.status == Status::Running;
        let (Some(h), Some(live)) = (&mut self.health, &self.live) else {
            return;
        };
        h.enforce_timeout(now);
        if running && h.due(now) {
            if let Some(entry) = h.start(&self.runtime, &self.id, live.pid, now) {
                self.record_probe(entry);
            }
            self.shed_soon();
        }
    }

    /// The probe exited (or the container did): its result goes into State.Health.
    pub fn on_probe_exit(&mut self) {
        let Some(h) = &mut self.health else { return };
        if h.probe.is_none() {
            return;
        }
        if let Some(entry) = h.finish(&mut self.buf) {
            self.record_probe(entry);
        }
    }

    fn record_probe(&mut self, entry: pelagos_model::state::HealthLog) {
        let Some(h) = &self.health else { return };
        let in_start = h.in_start_period(Instant::now());
        let retries = h.settings.retries;
        let before = self.record.state.health.as_ref().map(|h| h.status);
        let _ = self.update(|r| {
            let state = r.state.health.get_or_insert_with(Health::default);
            health::apply(state, entry, in_start, retries);
        });
        let after = self.record.state.health.as_ref().map(|h| h.status);
        if let Some(status) = after.filter(|a| Some(*a) != before) {
            self.emit(&format!("health_status: {}", status.as_str()), &[]);
        }
    }

    /// The monitor's last steps: no new clients, the owner no longer recorded, the last
    /// answers delivered.
    pub fn shutdown(&mut self) {
        self.leave();
        self.flush_all(LAST_WORDS);
    }
}

/// Sends one answer on a blocking socket (before the loop runs).
pub fn send_now(sock: &UnixStream, reply: &Reply) {
    let Ok(bytes) = protocol::control_frame(reply, 0) else {
        return;
    };
    let mut sent = 0;
    while sent < bytes.len() {
        match protocol::send_with_fds(sock.as_fd(), &bytes[sent..], &[]) {
            Ok(n) => sent += n,
            Err(_) => return,
        }
    }
}
