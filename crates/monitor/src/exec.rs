//! Processes run in the running container (`exec`, healthcheck probes): the process built
//! from the container's frozen spec (its environment merged with the request's, the user
//! resolved in the container's root, the working directory), started in-process by the
//! runtime core with the given descriptors as stdio.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::Process;
use pelagos_container::{ContainerId, ExecOptions, Runtime};
use pelagos_model::protocol::ExecSpec;

use crate::error::{Error, Result};
use crate::spec_adapter;
use crate::stdio::StdioSwap;

/// A started process of the container.
pub struct Started {
    pub pid: i32,
    /// Readable once it exited.
    pub pidfd: OwnedFd,
    /// Its terminal's master, when it has one.
    pub pty: Option<OwnedFd>,
}

/// The process `spec` asks for, from the container's frozen spec. `init_pid` is the
/// container's init (its root resolves the user).
pub fn build_process(
    runtime: &Runtime,
    id: &ContainerId,
    init_pid: i32,
    spec: &ExecSpec,
) -> Result<Process> {
    if spec.cmd.is_empty() {
        return Err(Error::Invalid("exec needs a command".into()));
    }
    let frozen = runtime.load_config(id)?;
    let mut p = frozen.process().clone().unwrap_or_default();
    p.set_args(Some(spec.cmd.clone()));
    p.set_terminal(Some(spec.tty));
    let mut env = p.env().clone().unwrap_or_default();
    if spec.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    for e in &spec.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(w) = spec.workdir.as_ref().filter(|w| !w.is_empty()) {
        p.set_cwd(PathBuf::from(w));
    }
    if let Some(u) = spec.user.as_ref().filter(|u| !u.is_empty()) {
        let root = PathBuf::from(format!("/proc/{init_pid}/root"));
        let resolved = spec_adapter::resolve_user(&root, u, &[])?;
        let mut user = p.user().clone();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.additional_gids));
        p.set_user(user);
    }
    if let Some((rows, cols)) = spec.console_size {
        let size = oci_spec::runtime::BoxBuilder::default()
            .height(rows)
            .width(cols)
            .build()
            .map_err(|e| Error::Invalid(format!("console size: {e}")))?;
        p.set_console_size(Some(size));
    }
    if spec.privileged {
        let all = spec_adapter::all_capabilities();
        let sets = serde_json::json!({
            "bounding": all, "effective": all, "permitted": all,
        });
        let caps = serde_json::from_value(sets)
            .map_err(|e| Error::Internal(format!("capabilities for a privileged exec: {e}")))?;
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Where compiled seccomp filters are cached (the launch plan's), set once at start-up: an
/// exec into a container with Docker's profile then loads it instead of compiling it.
pub static SECCOMP_CACHE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Starts `process` in the container with `stdio` as its descriptors 0-2 (ignored for a
/// tty, whose master comes back).
pub fn spawn(
    runtime: &Runtime,
    id: &ContainerId,
    process: Process,
    stdio: [BorrowedFd<'_>; 3],
) -> Result<Started> {
    let opts = ExecOptions {
        // The process dies with the monitor, as the container does.
        parent_death_signal: Some(libc::SIGKILL),
        seccomp_cache: SECCOMP_CACHE.get().cloned(),
        ..ExecOptions::new(process)
    };
    let execed = {
        let _swap = StdioSwap::install(stdio)?;
        runtime.exec(id, &opts)?
    };
    let pidfd = match pelagos_container::sys::pidfd_open(execed.pid) {
        Ok(fd) => fd,
        Err(e) => {
            // It ran and is gone already: reap it so no zombie stays.
            let _ = crate::sys::reap(execed.pid);
            return Err(Error::sys("pidfd_open of an exec'd process", e));
        }
    };
    Ok(Started {
        pid: execed.pid,
        pidfd,
        pty: execed.pty_master,
    })
}
