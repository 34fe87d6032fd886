//! pelagos-monitor: the process plane. One small exec'd monitor per container, started by the
//! engine with `pelagos_model::spawn::start_monitor`, owns the container's whole life: it
//! mounts its root filesystem, creates and starts it in-process with the runtime core, logs
//! its output, serves the control socket (`pelagos_model::protocol`), runs execs and
//! healthchecks, applies the restart policy and cleans up at the end.
//!
//! Single-threaded, no async runtime: the runtime core forks its children from this process,
//! and its process-global moves (chdir for overlay mounts, dup2 onto 0-2) are safe here. It
//! deliberately holds no image store, registry or network code.

pub mod args;
pub mod conn;
pub mod connect;
pub mod detach;
pub mod dns;
pub mod error;
pub mod exec;
pub mod health;
pub mod launch;
pub mod life;
pub mod lines;
pub mod log_sink;
pub mod memory;
pub mod monitor;
pub mod mounts;
pub mod network;
pub mod overlay;
pub mod ports;
pub mod requests;
pub mod restart;
pub mod shm;
pub mod spec_adapter;
pub mod stdio;
pub mod sys;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use pelagos_model::launch::LaunchPlan;
use pelagos_model::protocol::Reply;
use pelagos_model::record::ContainerRecord;
use pelagos_model::spawn::{LISTEN_FD, LOCK_FD, STARTER_FD};
use pelagos_model::state::Owner;
use pelagos_model::store::{Containers, OwnerLock};

pub use error::{Error, Result};
use monitor::Monitor;

/// The program: checks its arguments and descriptors, detaches unless told not to (the first
/// process exits at once, the engine reaps it) and runs the monitor. Returns the exit code.
pub fn main() -> i32 {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pelagos-monitor: {e}");
            return 2;
        }
    };
    for fd in [LOCK_FD, LISTEN_FD, STARTER_FD] {
        if let Err(e) = sys::set_cloexec(fd) {
            eprintln!("pelagos-monitor: {e} (run by the engine with descriptors 3-5)");
            return 2;
        }
    }
    if !args.detach {
        return monitor(&args);
    }
    // SAFETY: nothing has started a thread: the child may run any code after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => 0,
        Ok(nix::unistd::ForkResult::Child) => monitor(&args),
        Err(_) => 1,
    }
}

fn monitor(args: &args::Args) -> i32 {
    sys::ignore_sigpipe();
    memory::tune_heap();
    run(args)
}

/// The monitor proper, with the descriptors the engine handed over.
fn run(args: &args::Args) -> i32 {
    // SAFETY: start_monitor put the owner lock, the listening socket and the starter
    // connection on these descriptors for us alone; each is wrapped once.
    let (lock, listener, starter) = unsafe {
        (
            OwnerLock::from_fd(OwnedFd::from_raw_fd(LOCK_FD)),
            UnixListener::from_raw_fd(LISTEN_FD),
            UnixStream::from_raw_fd(STARTER_FD),
        )
    };
    let socket = pelagos_model::protocol::socket_path(&args.runroot, &args.id);
    let (store, record, plan) = match open(args) {
        Ok(found) => found,
        Err(e) => {
            life::send_now(&starter, &Reply::Error(e.to_wire()));
            let _ = std::fs::remove_file(&socket);
            return 1;
        }
    };
    let mut m = match Monitor::new(
        store,
        &args.root,
        &args.runroot,
        record,
        plan,
        lock,
        listener,
    ) {
        Ok(m) => m,
        Err(e) => {
            life::send_now(&starter, &Reply::Error(e.to_wire()));
            let _ = std::fs::remove_file(&socket);
            return 1;
        }
    };
    let me = Owner {
        pid: std::process::id() as i32,
        start_time: sys::own_start_time(),
    };
    let _ = m.update(|r| r.state.owner = Some(me));
    m.await_start(starter);
    if !m.done && m.serve().is_err() {
        abort(&mut m);
    }
    m.shutdown();
    0
}

/// The record and the launch plan of the container.
fn open(args: &args::Args) -> Result<(Containers, ContainerRecord, LaunchPlan)> {
    let store = Containers::open(args.root.join("containers"))?;
    let record = store.get(args.id.as_str())?;
    let plan = LaunchPlan::load(&store.dir_of(&args.id))?;
    let _ = crate::exec::SECCOMP_CACHE.set(plan.seccomp_cache.clone());
    Ok((store, record, plan))
}

/// The loop failed (poll itself): end the container rather than leave it unowned.
fn abort(m: &mut Monitor) {
    m.removing = None;
    let _ = m.update(|r| r.state.stop_requested = true);
    m.kill_all();
    if let Some(l) = &m.live {
        pelagos_container::sys::pidfd_wait_exit(
            &l.pidfd,
            Duration::from_secs(10).as_millis() as i32,
        );
    }
    m.on_exit();
}
