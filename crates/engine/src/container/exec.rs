//! `exec`: the monitor starts a process in the running container with the caller's
//! descriptors as its stdio (or a pty whose master comes back), and reports its exit code.

use std::os::fd::{BorrowedFd, OwnedFd};

use pelagos_model::protocol::{Client, ExecSpec, Reply, Request};

use crate::error::{Error, Result};
use crate::Engine;

/// A started exec.
#[derive(Debug)]
pub struct ExecSession {
    client: Client,
    /// Host pid of the process.
    pub pid: i32,
    /// The pty's master when the exec has a tty.
    pub pty: Option<OwnedFd>,
}

impl ExecSession {
    /// Waits for the process to end; its exit code (128+signal when killed).
    pub fn wait(mut self) -> Result<i32> {
        match self.client.reply()?.0 {
            Reply::ExecExited { exit_code } => Ok(exit_code),
            Reply::Error(e) => Err(pelagos_model::Error::from(e).into()),
            other => Err(Error::Task(format!(
                "the monitor answered {other:?} for an exec"
            ))),
        }
    }

    /// The connection (to poll it for the exit while relaying a pty).
    pub fn socket(&self) -> &std::os::unix::net::UnixStream {
        self.client.socket()
    }

    /// Whether the exit was already read with the start (then polling the socket would wait
    /// for bytes that were already taken).
    pub fn ended_already(&self) -> bool {
        self.client.has_buffered()
    }
}

/// Starts `spec` in the container. `stdio`: stdin (when `spec.attach_stdin`), stdout, stderr
/// for a process without a tty; nothing with one.
pub fn exec(
    engine: &Engine,
    name_or_id: &str,
    spec: ExecSpec,
    stdio: &[BorrowedFd<'_>],
) -> Result<ExecSession> {
    if spec.cmd.is_empty() {
        return Err(Error::Invalid("exec needs a command".into()));
    }
    let record = super::lookup(engine, name_or_id)?;
    let mut client =
        super::monitor_of(engine, &record)?.ok_or_else(|| super::not_running(&record))?;
    client.send(&Request::Exec(spec), stdio)?;
    match client.reply()? {
        (Reply::ExecStarted { pid }, mut fds) => Ok(ExecSession {
            client,
            pid,
            pty: fds.pop(),
        }),
        (Reply::Error(e), _) => Err(pelagos_model::Error::from(e).into()),
        (other, _) => Err(Error::Task(format!(
            "the monitor answered {other:?} to exec"
        ))),
    }
}
