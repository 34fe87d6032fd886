//! The answers to clients' requests (see `pelagos_model::protocol`): state, wait, stop,
//! kill, pause, remove, attach, resize, exec, network connect/disconnect (`connect.rs`), and
//! stdin of attached clients.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use pelagos_model::error::conflict;
use pelagos_model::protocol::{Attach, ExecSpec, Reply, Request, WaitCondition};
use pelagos_model::state::Status;

use crate::conn::{Attachment, Conn};
use crate::detach;
use crate::error::{Error, Result};
use crate::monitor::{ExecProc, Monitor};
use crate::{exec, log_sink, sys};

/// Docker's stop timeout when neither the request nor the container gives one.
const DEFAULT_STOP_TIMEOUT: i64 = 10;

impl Monitor {
    /// Answers one request of client `id`.
    pub fn on_request(&mut self, id: u64, request: Request, fds: Vec<OwnedFd>) {
        let done = match request {
            Request::Start { .. } => {
                Err(Error::Conflict("the container is started already".into()))
            }
            Request::State => Ok(Some(Reply::State(self.record.state.clone()))),
            Request::Wait { condition } => Ok(self.wait(id, condition)),
            Request::Stop {
                signal,
                timeout,
                restart,
            } => {
                self.restart_follows |= restart;
                self.stop(id, signal, timeout)
            }
            Request::Kill { signal } => self.kill(signal).map(|()| Some(Reply::Ok)),
            Request::Pause => self.pause(true).map(|()| Some(Reply::Ok)),
            Request::Unpause => self.pause(false).map(|()| Some(Reply::Ok)),
            Request::Remove { volumes } => self.remove(id, volumes).map(|()| None),
            Request::Attach(a) => self.attach(id, a).map(|()| Some(Reply::Attached)),
            Request::Resize { height, width } => {
                self.resize(height, width).map(|()| Some(Reply::Ok))
            }
            Request::Update(change) => self.update_config(&change).map(|()| Some(Reply::Ok)),
            Request::Connect { network, settings } => {
                self.connect(&network, settings).map(|()| Some(Reply::Ok))
            }
            Request::Disconnect { network } => self.disconnect(&network).map(|()| Some(Reply::Ok)),
            Request::Exec(spec) => {
                let started = self.exec(id, spec, fds).map(|()| None);
                // Whether it started or not, the runtime's code and heap are not needed now.
                self.shed_soon();
                started
            }
        };
        match done {
            Ok(Some(reply)) => self.reply(id, &reply),
            Ok(None) => {}
            Err(e) => self.reply(id, &Reply::Error(e.to_wire())),
        }
    }

    fn is_live(&self) -> bool {
        self.live.is_some()
    }

    fn exited(&self) -> Reply {
        Reply::Exited {
            exit_code: self.record.state.exit_code,
            status: self.record.state.status,
        }
    }

    /// `Wait`: an answer now when the condition holds, else the client waits.
    fn wait(&mut self, id: u64, condition: WaitCondition) -> Option<Reply> {
        let runs = self.is_live() || self.restart_at.is_some();
        match condition {
            WaitCondition::NotRunning if !runs => Some(self.exited()),
            WaitCondition::NotRunning | WaitCondition::NextExit => {
                self.exit_waiters.push(id);
                None
            }
            WaitCondition::Removed => {
                self.removal_waiters.push(id);
                None
            }
        }
    }

    /// `Stop`: the stop signal, SIGKILL after the timeout; the client gets `Exited`.
    fn stop(
        &mut self,
        id: u64,
        signal: Option<i32>,
        timeout: Option<i64>,
    ) -> Result<Option<Reply>> {
        if !self.is_live() {
            if self.restart_at.is_some() {
                self.end_restarting()?;
            }
            return Ok(Some(self.exited()));
        }
        let signal = match signal {
            Some(s) => s,
            None => self.stop_signal()?,
        };
        let timeout = timeout
            .or(self.record.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        self.update(|r| r.state.stop_requested = true)?;
        self.exit_waiters.push(id);
        if timeout == 0 {
            self.kill_all();
            return Ok(None);
        }
        self.signal(signal, true)?;
        if timeout > 0 {
            let at = Instant::now() + Duration::from_secs(timeout.unsigned_abs());
            self.stop_deadline = Some(self.stop_deadline.map_or(at, |d| d.min(at)));
        }
        Ok(None)
    }

    /// The container's stop signal (Config.StopSignal, else SIGTERM).
    fn stop_signal(&self) -> Result<i32> {
        match self.record.config.stop_signal.as_deref() {
            None | Some("") => Ok(libc::SIGTERM),
            Some(s) => Ok(pelagos_container::signal::parse_signal(s)?),
        }
    }

    /// Signals the init; with `thaw` a paused container is thawed after, so that it can act
    /// on it (Docker does so for its stop signal).
    fn signal(&mut self, signal: i32, thaw: bool) -> Result<()> {
        self.runtime.kill(&self.id, signal, false)?;
        self.emit("kill", &[("signal", &signal.to_string())]);
        if thaw && self.record.state.status == Status::Paused {
            self.runtime.resume(&self.id)?;
            self.update(|r| r.state.status = Status::Running)?;
        }
        Ok(())
    }

    /// SIGKILL to every process of the container (frozen ones too).
    pub fn kill_all(&mut self) {
        if self.runtime.kill(&self.id, libc::SIGKILL, true).is_ok() {
            self.emit("kill", &[("signal", &libc::SIGKILL.to_string())]);
        }
    }

    /// `Kill`. As in Docker, the stop signal or SIGKILL also ends the restart policy.
    fn kill(&mut self, signal: i32) -> Result<()> {
        let ends_policy = signal == libc::SIGKILL || signal == self.stop_signal()?;
        if !self.is_live() {
            if self.restart_at.is_some() && ends_policy {
                return self.end_restarting();
            }
            return Err(Error::Conflict(conflict::not_running(&self.record.id)));
        }
        if ends_policy {
            self.update(|r| r.state.stop_requested = true)?;
        }
        self.signal(signal, ends_policy)
    }

    /// `Pause` / `Unpause`: freeze or thaw every process.
    /// `docker update`: new limits on the running container's cgroup and a new restart
    /// policy, both kept in the record.
    fn update_config(&mut self, change: &pelagos_model::config::UpdateConfig) -> Result<()> {
        let host = change.applied_to(&self.record.host_config);
        if change.restart_policy.as_ref().is_some_and(|p| !p.is_none()) && host.auto_remove {
            return Err(Error::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        let policy = crate::restart::Policy::of(&host.restart_policy)?;
        let limits = pelagos_model::config::UpdateConfig {
            restart_policy: None,
            ..change.clone()
        };
        if self.is_live() && !limits.is_empty() {
            let resources = pelagos_spec::resources::resources(&host);
            let resources: oci_spec::runtime::LinuxResources =
                serde_json::from_value(serde_json::Value::Object(resources))
                    .map_err(|e| Error::Invalid(format!("resources: {e}")))?;
            let saved = self.runtime.load(&self.id)?;
            self.runtime
                .cgroup_of(&saved)?
                .apply(&resources, false)
                .map_err(|e| Error::Invalid(format!("update the container's cgroup: {e}")))?;
        }
        self.update(|r| r.host_config = host)?;
        self.policy = policy;
        self.emit("update", &[]);
        Ok(())
    }

    fn pause(&mut self, freeze: bool) -> Result<()> {
        let status = self.record.state.status;
        match (freeze, status) {
            (true, Status::Running) => {
                self.runtime.pause(&self.id)?;
                self.update(|r| r.state.status = Status::Paused)?;
                self.emit("pause", &[]);
                Ok(())
            }
            (false, Status::Paused) => {
                self.runtime.resume(&self.id)?;
                self.update(|r| r.state.status = Status::Running)?;
                self.emit("unpause", &[]);
                Ok(())
            }
            (true, Status::Paused) => {
                Err(Error::Conflict(conflict::already_paused(&self.record.id)))
            }
            (false, _) => Err(Error::Conflict(conflict::not_paused(&self.record.id))),
            _ => Err(Error::Conflict(conflict::not_running(&self.record.id))),
        }
    }

    /// `Remove`: kill, then (at the exit) clean up, delete the record, answer `Removed`.
    fn remove(&mut self, id: u64, volumes: bool) -> Result<()> {
        self.removal_waiters.push(id);
        let volumes = volumes || self.removing.unwrap_or(false);
        self.removing = Some(volumes);
        self.update(|r| r.state.status = Status::Removing)?;
        if self.is_live() {
            self.kill_all();
        } else {
            self.restart_at = None;
            self.finish_removal(volumes);
        }
        Ok(())
    }

    /// `Attach`: the client gets the container's output (after its log with `logs`), and its
    /// stdin frames go to the container.
    fn attach(&mut self, id: u64, a: Attach) -> Result<()> {
        let tty = self.record.config.tty;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        set_attachment(conn, &a, tty)?;
        self.events.emit(&pelagos_model::events::Event::container(
            &self.record,
            "attach",
        ));
        if a.logs {
            log_sink::replay(
                &self.dir,
                &self.record.host_config.log_config,
                |stream, bytes| {
                    let s = match stream {
                        log_sink::Stream::Stdout => pelagos_model::protocol::STDOUT,
                        log_sink::Stream::Stderr => pelagos_model::protocol::STDERR,
                    };
                    let room = conn.has_room(bytes.len() + pelagos_model::protocol::HEADER_LEN);
                    if room {
                        conn.output(s, bytes);
                    }
                    room
                },
            );
        }
        Ok(())
    }

    /// `Resize`: the terminal's size.
    fn resize(&mut self, height: u16, width: u16) -> Result<()> {
        match self.live.as_ref().and_then(|l| l.pty.as_ref()) {
            Some(pty) => {
                sys::set_winsize(pty.as_fd(), height, width)?;
                let (h, w) = (height.to_string(), width.to_string());
                self.emit("resize", &[("height", &h), ("width", &w)]);
                Ok(())
            }
            None if self.record.config.tty => {
                Err(Error::Conflict(conflict::not_running(&self.record.id)))
            }
            None => Err(Error::Invalid(format!(
                "container {} has no terminal to resize",
                self.record.name
            ))),
        }
    }

    /// `Exec`: a process in the container; answered `ExecStarted` (with its pty's master),
    /// then `ExecExited` unless detached.
    fn exec(&mut self, id: u64, spec: ExecSpec, fds: Vec<OwnedFd>) -> Result<()> {
        let Some(live) = &self.live else {
            return Err(Error::Conflict(conflict::not_running(&self.record.id)));
        };
        if self.record.state.status == Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                self.record.name
            )));
        }
        let process = exec::build_process(&self.runtime, &self.id, live.pid, &spec)?;
        let exec_id = pelagos_model::names::new_id()?;
        // Docker's words: the entrypoint, a space, then the arguments (a trailing space
        // when there are none).
        let command = match spec.cmd.split_first() {
            Some((entry, args)) => format!("{entry} {}", args.join(" ")),
            None => String::new(),
        };
        self.emit(&format!("exec_create: {command}"), &[("execID", &exec_id)]);
        let stdio = exec_stdio(&spec, fds)?;
        let started = exec::spawn(
            &self.runtime,
            &self.id,
            process,
            [stdio[0].as_fd(), stdio[1].as_fd(), stdio[2].as_fd()],
        )?;
        drop(stdio);
        self.emit(&format!("exec_start: {command}"), &[("execID", &exec_id)]);
        let reply = Reply::ExecStarted { pid: started.pid };
        if let Some(c) = self.conns.get_mut(&id) {
            c.reply_with_fds(&reply, started.pty.into_iter().collect());
        }
        self.execs.push(ExecProc {
            pid: started.pid,
            pidfd: started.pidfd,
            conn: (!spec.detach).then_some(id),
            exec_id,
        });
        Ok(())
    }

    /// Stdin bytes of client `id` (an empty frame closes the container's stdin).
    pub fn on_stdin(&mut self, id: u64, bytes: Vec<u8>) {
        let stdin_once = self.record.config.stdin_once;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(att) = conn.attachment.as_mut().filter(|a| a.stdin) else {
            return;
        };
        if bytes.is_empty() {
            self.close_stdin();
            return;
        }
        let (pass, detached) = match &mut att.detach {
            Some(m) => match m.scan(&bytes) {
                detach::Scan::Pass(b) => (b, false),
                detach::Scan::Detach(b) => (b, true),
            },
            None => (bytes, false),
        };
        if detached {
            conn.attachment = None;
            conn.reply_and_close(&Reply::Detached);
        }
        if let Some(l) = &mut self.live {
            l.stdin_pending.extend_from_slice(&pass);
            self.flush_stdin();
        }
        if detached && stdin_once {
            self.close_stdin();
        }
    }

    /// Closes the container's stdin pipe (its end of file).
    pub fn close_stdin(&mut self) {
        if let Some(l) = &mut self.live {
            if l.stdin.is_some() {
                self.flush_stdin();
            }
        }
        if let Some(l) = &mut self.live {
            l.stdin = None;
        }
    }

    /// A client attached to stdin went away or ended its input: with StdinOnce, the
    /// container's stdin ends with it.
    pub fn stdin_client_left(&mut self) {
        if self.record.config.stdin_once {
            self.close_stdin();
        }
    }
}

/// Makes `conn` an attached client.
pub fn set_attachment(conn: &mut Conn, a: &Attach, tty: bool) -> Result<()> {
    let detach = match (tty && a.stdin, a.detach_keys.as_deref()) {
        (false, _) => None,
        (true, keys) => Some(detach::Matcher::new(detach::parse(
            keys.unwrap_or(detach::DEFAULT_KEYS),
        )?)),
    };
    conn.attachment = Some(Attachment {
        stdin: a.stdin,
        stdout: a.stdout,
        stderr: a.stderr,
        detach,
    });
    Ok(())
}

/// An exec's stdio from the descriptors sent with it: stdin (with `attach_stdin`), stdout,
/// stderr; none at all (or a tty) means /dev/null.
fn exec_stdio(spec: &ExecSpec, mut fds: Vec<OwnedFd>) -> Result<[OwnedFd; 3]> {
    let want = if spec.attach_stdin { 3 } else { 2 };
    if spec.tty || fds.is_empty() {
        return Ok([
            sys::dev_null(false)?,
            sys::dev_null(true)?,
            sys::dev_null(true)?,
        ]);
    }
    if fds.len() != want {
        return Err(Error::Invalid(format!(
            "exec: {want} descriptors expected (stdin when attached, stdout, stderr), {} sent",
            fds.len()
        )));
    }
    let stdin = match spec.attach_stdin {
        true => fds.remove(0),
        false => sys::dev_null(false)?,
    };
    let mut rest = fds.into_iter();
    match (rest.next(), rest.next()) {
        (Some(out), Some(err)) => Ok([stdin, out, err]),
        _ => Err(Error::Invalid(
            "exec: stdout and stderr descriptors are missing".into(),
        )),
    }
}
