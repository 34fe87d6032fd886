//! Detached containers: one small monitor process per container, forked (twice, in its own
//! session) by the CLI. The monitor creates and starts the container with its stdout and
//! stderr on pipes, writes them to `<container dir>/container.log` in Docker's json-file format,
//! waits for the container's exit, records the exit code and cleans up (`--rm` included). No
//! daemon: `logs`, `stop`, `kill`, `wait`, `exec` and `start` work from the record, the log and
//! the runtime state.

use std::fs;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pelagos_container::ContainerId;
use pelagos_image::ImageRecord;

use crate::containers::{now_rfc3339, ContainerRecord};
use crate::error::{Error, Result};
use crate::run::{dev_null, finish, launch, new_record, stdin_from_dev_null, RunRequest};
use crate::Engine;

/// The log file of a container.
pub const LOG_FILE: &str = "container.log";

fn sys(what: &str, e: nix::errno::Errno) -> Error {
    Error::io(what.to_string(), e.into())
}

/// `run -d`: makes the record (so a taken name fails here), then hands the container to a
/// monitor. Returns the id once the container runs, or the monitor's error.
pub fn run_detached(engine: &Engine, image: &ImageRecord, req: &RunRequest) -> Result<String> {
    let config = engine.images().config(image)?;
    let record = new_record(engine, image, config.config().as_ref(), req)?;
    let id = record.id.clone();
    spawn(engine, image, record, true)?;
    Ok(id.into())
}

/// `start`: runs a stopped container again under a new monitor (same id, root filesystem
/// changes and volumes). A running container is left alone.
pub fn start(engine: &Engine, name_or_id: &str) -> Result<String> {
    let found = engine.containers().get(name_or_id)?;
    if engine.is_running(&found.id) {
        return Ok(found.id.into());
    }
    let record = engine
        .containers()
        .modify(&found.id, |r| r.stop_requested = false)?;
    let image = engine.images().get(&record.image_id)?;
    let id = record.id.clone();
    spawn(engine, &image, record, false)?;
    Ok(id.into())
}

/// Forks the monitor (through an intermediate process, so it is nobody's child and has its
/// own session) and waits for its word: "ok", or the error that kept the container from
/// starting. Called from the single-threaded CLI.
fn spawn(
    engine: &Engine,
    image: &ImageRecord,
    record: ContainerRecord,
    is_new: bool,
) -> Result<()> {
    let record_name = record.name.clone();
    let (status_r, status_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys("pipe", e))?;
    // SAFETY: the CLI is single-threaded here (no runtime threads left), so the child may run
    // arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(|e| sys("fork the monitor", e))? {
        nix::unistd::ForkResult::Child => {
            drop(status_r);
            let _ = nix::unistd::setsid();
            // SAFETY: still single-threaded, as above.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    let code = monitor(engine, image, record, is_new, status_w);
                    std::process::exit(code);
                }
                _ => std::process::exit(0),
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(status_w);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut word = String::new();
            let _ = fs::File::from(status_r).read_to_string(&mut word);
            match word.strip_prefix("ok") {
                Some(_) => Ok(()),
                None if word.is_empty() => Err(Error::InvalidOption(format!(
                    "the monitor of container {} ended before the container started (killed, or \
                     out of memory?); `pelagos rm -f {}` removes what is left",
                    record_name, record_name
                ))),
                None => Err(Error::InvalidOption(
                    word.trim_start_matches("err ").to_string(),
                )),
            }
        }
    }
}

/// The monitor's life; returns its exit code.
fn monitor(
    engine: &Engine,
    image: &ImageRecord,
    record: ContainerRecord,
    is_new: bool,
    status_w: OwnedFd,
) -> i32 {
    let mut status = Some(fs::File::from(status_w));
    match monitor_inner(engine, image, record, is_new, &mut status) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(mut s) = status {
                let _ = write!(s, "err {e}");
            }
            1
        }
    }
}

fn monitor_inner(
    engine: &Engine,
    image: &ImageRecord,
    record: ContainerRecord,
    is_new: bool,
    status: &mut Option<fs::File>,
) -> Result<()> {
    let id = record.id.clone();
    let dir = engine.containers().dir_of(&id);
    let policy = RestartPolicy::parse(
        record
            .run
            .as_ref()
            .and_then(|r| r.restart.as_deref())
            .unwrap_or("no"),
    )?;
    let config = engine.images().config(image)?;
    let image_config = config.config().as_ref();
    let (mut record, mut is_new, mut restarts) = (record, is_new, 0u32);
    loop {
        let started = Instant::now();
        let code = run_once(engine, image, image_config, record, is_new, status, &dir)?;
        // Restart unless the policy says no, or someone stopped or removed the container.
        let Ok(now) = engine.containers().get(&id) else {
            return Ok(());
        };
        if now.stop_requested || !policy.wants(code, restarts) {
            return Ok(());
        }
        // Docker's backoff: 100 ms doubling, from scratch after a run of 10 s or more.
        if started.elapsed() >= Duration::from_secs(10) {
            restarts = 0;
        }
        let delay = Duration::from_millis(100u64 << restarts.min(7));
        std::thread::sleep(delay);
        restarts += 1;
        let Ok(again) = engine.containers().get(&id) else {
            return Ok(());
        };
        if again.stop_requested {
            return Ok(());
        }
        record = engine
            .containers()
            .modify(&id, |r| r.restart_count = again.restart_count + 1)?;
        is_new = false;
    }
}

/// One life of the container: create with the log pipes, start, copy output, record the end.
fn run_once(
    engine: &Engine,
    image: &ImageRecord,
    image_config: Option<&oci_spec::image::Config>,
    record: ContainerRecord,
    is_new: bool,
    status: &mut Option<fs::File>,
    dir: &std::path::Path,
) -> Result<i32> {
    // The container's stdio: /dev/null in, pipes out. The init inherits fds 0-2 at create.
    let null_in = dev_null(nix::fcntl::OFlag::O_RDONLY)?;
    let null_out = dev_null(nix::fcntl::OFlag::O_WRONLY)?;
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys("pipe", e))?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| sys("pipe", e))?;
    for (from, to) in [(&null_in, 0), (&out_w, 1), (&err_w, 2)] {
        nix::unistd::dup2(from.as_raw_fd(), to).map_err(|e| sys("dup2", e))?;
    }
    drop((out_w, err_w));
    let launched = launch(engine, image, image_config, record, is_new);
    // Our own 1 and 2 no longer lead to the pipes: they reach EOF when the container's
    // processes are gone.
    for to in [1, 2] {
        let _ = nix::unistd::dup2(null_out.as_raw_fd(), to);
    }
    let mut launched = launched?;
    let pid = launched.created.pid;
    let pty = launched.created.pty_master.take();
    let me = std::process::id() as i32;
    launched.record = engine
        .containers()
        .modify(&launched.record.id, |r| r.monitor_pid = Some(me))?;
    // The CLI waits for EOF on this pipe: say "ok" and close it.
    if let Some(mut s) = status.take() {
        let _ = s.write_all(b"ok");
    }

    let mut log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(LOG_FILE))
        .map_err(|e| Error::io(format!("open {}", dir.join(LOG_FILE).display()), e))?;
    let code = pump(pid, pty, out_r, err_r, &mut log);
    finish(
        engine,
        launched,
        code.map_err(|e| pelagos_container::Error::Child(e.to_string())),
    )
}

/// `--restart`: when the monitor starts a container again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never (the default).
    No,
    /// After any exit.
    Always,
    /// After any exit (`stop` prevents it, as for every policy here).
    UnlessStopped,
    /// After a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
}

impl RestartPolicy {
    /// Docker's syntax: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(text: &str) -> Result<RestartPolicy> {
        let bad = || {
            Error::InvalidOption(format!(
                "invalid --restart {text:?}: expected no, always, unless-stopped or on-failure[:N]"
            ))
        };
        Ok(match text.split_once(':') {
            None => match text {
                "" | "no" => RestartPolicy::No,
                "always" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                "on-failure" => RestartPolicy::OnFailure(0),
                _ => return Err(bad()),
            },
            Some(("on-failure", n)) => RestartPolicy::OnFailure(n.parse().map_err(|_| bad())?),
            Some(_) => return Err(bad()),
        })
    }

    fn wants(self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// Copies the container's output into the log until it exits; its exit code.
fn pump(
    pid: i32,
    pty: Option<OwnedFd>,
    out: OwnedFd,
    err: OwnedFd,
    log: &mut fs::File,
) -> Result<i32> {
    let pidfd = pelagos_container::sys::pidfd_open(pid).map_err(|e| sys("pidfd_open", e))?;
    let mut sources: Vec<(OwnedFd, &'static str, Vec<u8>)> =
        vec![(out, "stdout", Vec::new()), (err, "stderr", Vec::new())];
    if let Some(p) = pty {
        sources.push((p, "stdout", Vec::new()));
    }
    let mut buf = vec![0u8; 65536];
    let mut exited = false;
    loop {
        let mut fds: Vec<libc::pollfd> = sources
            .iter()
            .map(|(fd, ..)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        fds.push(libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        let timeout = if exited { 0 } else { -1 };
        // SAFETY: `fds` is a valid array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = nix::errno::Errno::last();
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return Err(sys("poll", e));
        }
        let mut closed = Vec::new();
        for (i, (fd, stream, pending)) in sources.iter_mut().enumerate() {
            if fds[i].revents == 0 {
                continue;
            }
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(_) => closed.push(i),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    write_lines(log, stream, pending, false);
                }
            }
        }
        for i in closed.into_iter().rev() {
            let (_, stream, mut pending) = sources.remove(i);
            write_lines(log, stream, &mut pending, true);
        }
        if fds.last().is_some_and(|p| p.revents != 0) {
            exited = true;
        }
        if exited && (sources.is_empty() || n == 0) {
            break;
        }
    }
    for (_, stream, mut pending) in sources {
        write_lines(log, stream, &mut pending, true);
    }
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => Ok(c),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => Ok(128 + s as i32),
        Ok(other) => Err(Error::InvalidOption(format!(
            "unexpected wait status {other:?}"
        ))),
        Err(e) => Err(sys("waitpid", e)),
    }
}

/// Writes complete lines (and with `all` the rest) of `pending` as json-file log entries.
fn write_lines(log: &mut fs::File, stream: &str, pending: &mut Vec<u8>, all: bool) {
    let mut out = Vec::new();
    while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=pos).collect();
        entry(&mut out, stream, &line);
    }
    // A very long line without newline is cut into entries, as Docker does at 16 KiB.
    if (all || pending.len() >= 16 * 1024) && !pending.is_empty() {
        let line: Vec<u8> = std::mem::take(pending);
        entry(&mut out, stream, &line);
    }
    let _ = log.write_all(&out);
}

fn entry(out: &mut Vec<u8>, stream: &str, line: &[u8]) {
    let v = serde_json::json!({
        "log": String::from_utf8_lossy(line),
        "stream": stream,
        "time": now_rfc3339(),
    });
    if let Ok(text) = serde_json::to_string(&v) {
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
}

/// One entry of a container's log.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LogEntry {
    /// The text, with its newline.
    pub log: String,
    /// "stdout" or "stderr".
    pub stream: String,
    /// RFC 3339 time.
    pub time: String,
}

/// `logs`: calls `emit` for the entries (the last `tail`), then with `follow` for new ones
/// until the container is no longer running.
pub fn logs(
    engine: &Engine,
    name_or_id: &str,
    tail: Option<usize>,
    follow: bool,
    emit: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    let record = engine.containers().get(name_or_id)?;
    let path: PathBuf = engine.containers().dir_of(&record.id).join(LOG_FILE);
    let file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
            fs::File::open(&path).map_err(|e| Error::io(format!("open {}", path.display()), e))?
        }
        Err(e) => return Err(Error::io(format!("open {}", path.display()), e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut first: Vec<LogEntry> = Vec::new();
    let mut line = String::new();
    while reader
        .read_line(&mut line)
        .map_err(|e| Error::io("read the log", e))?
        > 0
    {
        if line.ends_with('\n') {
            if let Ok(e) = serde_json::from_str(&line) {
                first.push(e);
            }
            line.clear();
        } else {
            break;
        }
    }
    let skip = tail.map(|t| first.len().saturating_sub(t)).unwrap_or(0);
    for e in &first[skip..] {
        emit(e).map_err(|e| Error::io("write the log", e))?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        // Done once whoever watches the container has recorded its end (after draining its
        // output into the log), or removed it; checked before reading, so nothing written
        // before that is missed.
        let running = match engine.containers().get(&record.id) {
            Ok(r) => r.state == "running" || engine.is_running(&record.id),
            Err(_) => false,
        };
        let n = reader
            .read_line(&mut line)
            .map_err(|e| Error::io("read the log", e))?;
        if n > 0 && line.ends_with('\n') {
            if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
                emit(&e).map_err(|e| Error::io("write the log", e))?;
            }
            line.clear();
            continue;
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the monitor has recorded the end of the container (or removed it).
fn wait_recorded(engine: &Engine, id: &ContainerId, limit: Duration) -> Result<Option<i32>> {
    let deadline = Instant::now() + limit;
    loop {
        match engine.containers().get(id) {
            Err(Error::NoSuchContainer(_)) => return Ok(None),
            Err(e) => return Err(e),
            Ok(r) if r.state != "running" && !engine.is_running(id) => return Ok(r.exit_code),
            // Its monitor died (killed, or the machine's OOM killer): nobody will record the
            // end, so do it here, as the monitor would have.
            Ok(r) if r.monitor_pid.is_some_and(|p| !pid_alive(p)) && !engine.is_running(id) => {
                return orphaned(engine, &r);
            }
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            return Err(Error::InvalidOption(format!(
                "container {id} did not stop within {limit:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cleans up after a container whose monitor is gone: the runtime's state, the root
/// filesystem mount, and the record says it exited (code unknown: 137, as if killed).
fn orphaned(engine: &Engine, record: &ContainerRecord) -> Result<Option<i32>> {
    let runtime = engine.runtime();
    if runtime.load(&record.id).is_ok() {
        runtime.delete(&record.id, true)?;
    }
    crate::overlay::unmount(&engine.containers().dir_of(&record.id).join("rootfs"))?;
    if record.auto_remove {
        engine.containers().remove(&record.id)?;
        return Ok(None);
    }
    let finished = now_rfc3339();
    let r = engine.containers().modify(&record.id, |r| {
        r.state = "exited".into();
        r.exit_code = Some(137);
        r.finished = Some(finished);
    })?;
    Ok(r.exit_code)
}

/// Whether a process runs (a zombie waiting for its reaper does not).
fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// `stop`: the image's StopSignal (SIGTERM by default), then SIGKILL after `timeout`; returns
/// once the container's end is recorded and its monitor (which might otherwise restart it) is
/// gone.
pub fn stop(engine: &Engine, name_or_id: &str, timeout: Duration) -> Result<()> {
    let found = engine.containers().get(name_or_id)?;
    // Tell the monitor not to restart it, whatever its policy.
    let record = engine
        .containers()
        .modify(&found.id, |r| r.stop_requested = true)?;
    let id = record.id.clone();
    let signal = pelagos_container::signal::parse_signal(
        record.stop_signal.as_deref().unwrap_or("SIGTERM"),
    )?;
    let runtime = engine.runtime();
    let begun = Instant::now();
    let (mut signalled_pid, mut killed) = (None, false);
    loop {
        let live_pid = runtime
            .load(&id)
            .ok()
            .filter(|_| engine.is_running(&id))
            .map(|s| s.pid);
        if let Some(pid) = live_pid {
            // A monitor that restarted it just before seeing the request gets it stopped too.
            if signalled_pid != Some(pid) {
                let _ = runtime.kill(&id, signal, false);
                signalled_pid = Some(pid);
            } else if !killed && begun.elapsed() >= timeout {
                let _ = runtime.kill(&id, libc::SIGKILL, true);
                killed = true;
            }
        }
        let monitor_alive = match engine.containers().get(&id) {
            Ok(r) => r.monitor_pid.is_some_and(pid_alive),
            Err(_) => false,
        };
        if live_pid.is_none() && !monitor_alive {
            break;
        }
        if begun.elapsed() > timeout + Duration::from_secs(10) {
            return Err(Error::InvalidOption(format!(
                "container {} did not stop",
                record.name
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_recorded(engine, &id, Duration::from_secs(10))?;
    Ok(())
}

/// `kill`: a signal to the container's init.
pub fn kill(engine: &Engine, name_or_id: &str, signal: &str) -> Result<()> {
    let record = engine.containers().get(name_or_id)?;
    if !engine.is_running(&record.id) {
        return Err(Error::InvalidOption(format!(
            "cannot kill container {}: it is not running",
            record.name
        )));
    }
    let sig = pelagos_container::signal::parse_signal(signal)?;
    Ok(engine.runtime().kill(&record.id, sig, false)?)
}

/// `wait`: blocks until the container stops; its exit code.
pub fn wait(engine: &Engine, name_or_id: &str) -> Result<i32> {
    let record = engine.containers().get(name_or_id)?;
    let code = wait_recorded(engine, &record.id, Duration::from_secs(u64::MAX / 4))?;
    Ok(code.unwrap_or(0))
}

/// What `exec` runs.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command.
    pub cmd: Vec<String>,
    /// `-e`.
    pub env: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
}

/// `exec`: a new process in the running container with its namespaces, cgroup, capabilities
/// and seccomp filter; waits for it in the foreground and returns its exit code.
pub fn exec(engine: &Engine, name_or_id: &str, req: &ExecRequest) -> Result<i32> {
    let record = engine.containers().get(name_or_id)?;
    if !engine.is_running(&record.id) {
        return Err(Error::InvalidOption(format!(
            "container {} is not running",
            record.name
        )));
    }
    if req.cmd.is_empty() {
        return Err(Error::InvalidOption("exec needs a command".into()));
    }
    let runtime = engine.runtime();
    let spec = runtime.load_config(&record.id)?;
    let saved = runtime.load(&record.id)?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(req.cmd.clone()));
    process.set_terminal(Some(req.tty));
    let mut env = process.env().clone().unwrap_or_default();
    for e in &req.env {
        let key = e.split('=').next().unwrap_or_default().to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e.clone());
    }
    process.set_env(Some(env));
    if let Some(w) = &req.workdir {
        process.set_cwd(PathBuf::from(w));
    }
    if let Some(u) = &req.user {
        let root = PathBuf::from(format!("/proc/{}/root", saved.pid));
        let resolved = crate::user::resolve(&root, u)?;
        let mut user = process.user().clone();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.additional_gids));
        process.set_user(user);
    }
    if !req.interactive {
        stdin_from_dev_null()?;
    }
    let opts = pelagos_container::ExecOptions {
        process,
        pid_file: None,
        console_socket: None,
        preserve_fds: 0,
        sub_cgroup: None,
        ignore_paused: false,
    };
    let mut execed = runtime.exec(&record.id, &opts)?;
    Ok(pelagos_container::wait::wait_foreground(
        execed.pid,
        execed.pty_master.take(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_like_docker() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure(3)
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        assert!(!RestartPolicy::OnFailure(2).wants(0, 0));
        assert!(RestartPolicy::OnFailure(2).wants(1, 1));
        assert!(!RestartPolicy::OnFailure(2).wants(1, 2));
        assert!(RestartPolicy::Always.wants(0, 100));
    }
}

/// `pause` / `unpause`: freeze or thaw every process of a running container.
pub fn pause(engine: &Engine, name_or_id: &str, freeze: bool) -> Result<()> {
    let record = engine.containers().get(name_or_id)?;
    let runtime = engine.runtime();
    if runtime.load(&record.id).is_err() {
        return Err(Error::InvalidOption(format!(
            "container {} is not running",
            record.name
        )));
    }
    if freeze {
        runtime.pause(&record.id)?;
    } else {
        runtime.resume(&record.id)?;
    }
    Ok(())
}

/// One process of a container for `top`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: i32,
    /// Parent's host pid.
    pub ppid: i32,
    /// Real uid.
    pub uid: u32,
    /// CPU time (user + system), seconds.
    pub cpu_seconds: f64,
    /// The command line.
    pub command: String,
}

/// `top`: the container's processes (from its cgroup), read from /proc.
pub fn top(engine: &Engine, name_or_id: &str) -> Result<Vec<ProcessInfo>> {
    let record = engine.containers().get(name_or_id)?;
    if !engine.is_running(&record.id) {
        return Err(Error::InvalidOption(format!(
            "container {} is not running",
            record.name
        )));
    }
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut out = Vec::new();
    for pid in engine.runtime().pids(&record.id)? {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // exited meanwhile
        };
        // Fields after the command (which may hold spaces and parentheses).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let uid = fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| v.split_whitespace().next().and_then(|u| u.parse().ok()))
            })
            .unwrap_or(0);
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let command = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        out.push(ProcessInfo {
            pid,
            ppid: num(1) as i32,
            uid,
            cpu_seconds: (num(11) + num(12)) as f64 / ticks,
            command,
        });
    }
    Ok(out)
}

/// `stats --no-stream`: the cgroup's usage of a running container.
pub fn stats(
    engine: &Engine,
    name_or_id: &str,
) -> Result<(ContainerRecord, pelagos_cgroups::Stats)> {
    let record = engine.containers().get(name_or_id)?;
    let runtime = engine.runtime();
    let saved = runtime
        .load(&record.id)
        .map_err(|_| Error::InvalidOption(format!("container {} is not running", record.name)))?;
    let cgroup = runtime.cgroup_of(&saved)?;
    let stats = cgroup
        .stats()
        .map_err(|e| Error::InvalidOption(format!("stats of {}: {e}", record.name)))?;
    Ok((record, stats))
}
