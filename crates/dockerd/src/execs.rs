//! The daemon's exec instances (Docker's exec ids): what `POST /containers/{id}/exec` asked
//! for, then whether it runs, its pid, its exit code, kept in memory as moby does.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use pelagos_model::protocol::ExecSpec;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// The body of `POST /containers/{id}/exec` (moby's `ExecConfig`); unknown fields ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub working_dir: String,
    #[serde(deserialize_with = "null_as_default")]
    pub user: String,
    pub privileged: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub detach_keys: String,
    pub console_size: Option<[u16; 2]>,
    #[serde(deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
}

/// Go clients send `null` for empty lists and strings.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl ExecConfig {
    /// The monitor's request for this exec started with `tty` and `console_size` (the start
    /// body's, which win over the create's).
    pub fn spec(&self, tty: bool, console_size: Option<[u16; 2]>) -> ExecSpec {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ExecSpec {
            cmd: self.cmd.clone(),
            env: self.env.clone(),
            user: non_empty(&self.user),
            workdir: non_empty(&self.working_dir),
            tty,
            attach_stdin: self.attach_stdin,
            privileged: self.privileged,
            detach: false,
            console_size: console_size
                .or(self.console_size)
                .filter(|[h, w]| *h > 0 && *w > 0)
                .map(|[h, w]| (h, w)),
        }
    }
}

/// Where an exec is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running,
    Ended,
}

/// One exec instance.
#[derive(Debug)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub phase: Phase,
    /// Whether it was started with a tty (the start body may set it).
    pub tty: bool,
    pub pid: i32,
    pub exit_code: Option<i32>,
    /// The pty's master while it runs with a tty (for resize).
    pub pty: Option<Arc<OwnedFd>>,
}

impl ExecInstance {
    /// `GET /exec/{id}/json` (moby's `ExecInspect`).
    pub fn inspect(&self) -> serde_json::Value {
        let (entrypoint, arguments) = match self.config.cmd.split_first() {
            Some((e, a)) => (e.clone(), a.to_vec()),
            None => (String::new(), Vec::new()),
        };
        serde_json::json!({
            "ID": self.id,
            "Running": self.phase == Phase::Running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": entrypoint,
                "arguments": arguments,
                "privileged": self.config.privileged,
                "user": self.config.user,
            },
            "OpenStdin": self.config.attach_stdin,
            "OpenStderr": self.config.attach_stderr,
            "OpenStdout": self.config.attach_stdout,
            "CanRemove": false,
            "ContainerID": self.container_id,
            "DetachKeys": self.config.detach_keys,
            "Pid": self.pid,
        })
    }
}

/// Every exec instance of this daemon's life.
#[derive(Debug, Default)]
pub struct Execs {
    map: Mutex<HashMap<String, ExecInstance>>,
}

/// moby's words for an unknown exec id.
fn no_such_exec(id: &str) -> ApiError {
    ApiError::not_found(format!("No such exec instance: {id}"))
}

impl Execs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ExecInstance>> {
        // A panic while holding the lock left plain data: keep using it.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new exec; its id.
    pub fn create(&self, container_id: String, config: ExecConfig) -> ApiResult<String> {
        let id = pelagos_model::names::new_id()?;
        let tty = config.tty;
        self.lock().insert(
            id.clone(),
            ExecInstance {
                id: id.clone(),
                container_id,
                config,
                phase: Phase::Created,
                tty,
                pid: 0,
                exit_code: None,
                pty: None,
            },
        );
        Ok(id)
    }

    /// Marks `id` started (409 if it ran or runs already); its container and config.
    pub fn begin(&self, id: &str, tty: bool) -> ApiResult<(String, ExecConfig)> {
        let mut map = self.lock();
        let exec = map.get_mut(id).ok_or_else(|| no_such_exec(id))?;
        match exec.phase {
            Phase::Running => Err(ApiError::conflict(format!(
                "Error: Exec command {id} is already running"
            ))),
            Phase::Ended => Err(ApiError::conflict(format!(
                "Error: Exec command {id} has already run"
            ))),
            Phase::Created => {
                exec.phase = Phase::Running;
                exec.tty = tty;
                Ok((exec.container_id.clone(), exec.config.clone()))
            }
        }
    }

    /// The process started: its pid and pty master.
    pub fn started(&self, id: &str, pid: i32, pty: Option<Arc<OwnedFd>>) {
        if let Some(exec) = self.lock().get_mut(id) {
            exec.pid = pid;
            exec.pty = pty;
        }
    }

    /// The process ended (`None`: it could not start or its end is unknown).
    pub fn ended(&self, id: &str, exit_code: Option<i32>) {
        if let Some(exec) = self.lock().get_mut(id) {
            exec.phase = Phase::Ended;
            exec.exit_code = exit_code;
            exec.pty = None;
        }
    }

    /// `GET /exec/{id}/json`.
    pub fn inspect(&self, id: &str) -> ApiResult<serde_json::Value> {
        self.lock()
            .get(id)
            .map(ExecInstance::inspect)
            .ok_or_else(|| no_such_exec(id))
    }

    /// Sets the terminal size of a running exec's pty. One without a tty has nothing to
    /// resize, which moby (containerd) answers with success.
    pub fn resize(&self, id: &str, height: u16, width: u16) -> ApiResult<()> {
        let map = self.lock();
        let exec = map.get(id).ok_or_else(|| no_such_exec(id))?;
        let pty = match (&exec.pty, exec.phase) {
            (Some(pty), Phase::Running) => pty.clone(),
            (None, Phase::Running) if !exec.tty => return Ok(()),
            (None, Phase::Running) => {
                return Err(ApiError::conflict(format!(
                    "exec {id} has not started its terminal yet"
                )))
            }
            _ => {
                return Err(ApiError::conflict(format!(
                    "Exec process {id} is not running"
                )))
            }
        };
        drop(map);
        set_window_size(&pty, height, width)
    }
}

/// TIOCSWINSZ on a pty master.
pub fn set_window_size(master: &OwnedFd, height: u16, width: u16) -> ApiResult<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass, valid for the call; the fd is open.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(ApiError::internal(format!("resize the exec's tty: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_parse_go_nulls_and_start_once() {
        let c: ExecConfig =
            serde_json::from_str(r#"{"Cmd":["sh","-c","x"],"Env":null,"User":"1","Tty":true}"#)
                .unwrap();
        assert_eq!(c.cmd, ["sh", "-c", "x"]);
        assert!(c.env.is_empty());
        let spec = c.spec(false, Some([24, 80]));
        assert_eq!(spec.user.as_deref(), Some("1"));
        assert_eq!(spec.console_size, Some((24, 80)));
        assert!(!spec.tty);
        let execs = Execs::default();
        let id = execs.create("c".into(), c).unwrap();
        execs.begin(&id, true).unwrap();
        assert_eq!(execs.begin(&id, true).unwrap_err().status, 409);
        execs.ended(&id, Some(3));
        let v = execs.inspect(&id).unwrap();
        assert_eq!(v["ExitCode"], 3);
        assert_eq!(v["Running"], false);
        assert_eq!(v["ProcessConfig"]["arguments"][1], "x");
        assert_eq!(execs.inspect("nope").unwrap_err().status, 404);
    }
}
