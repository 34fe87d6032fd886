//! The lifecycle verbs on a container: create, start, run, kill, delete, state, pause,
//! resume, ps — the library API that `pelagos-runtime` and the higher layers call.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use pelagos_cgroups::Cgroup;

use crate::error::{Error, IoContext, Result, SysContext};
use crate::id::ContainerId;
use crate::init::launch::ParentDeath;
use crate::init::{self, InitContext, StartSignal};
use crate::spec::Bundle;
use crate::state::{self, SavedState, Status, EXEC_FIFO};
use crate::sync::{self, Msg, SyncSocket};
use crate::{hooks, namespaces, sys, threads};

pub use crate::annotations::SKIP_UNAVAILABLE_ANNOTATION;

/// How the container's cgroup is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupManager {
    #[default]
    Cgroupfs,
    /// `cgroupsPath` is `slice:prefix:name`.
    Systemd,
    /// No cgroup at all (crun's `--cgroup-manager disabled`).
    Disabled,
}

/// Options of `create` (and `run`); [`CreateOptions::new`] fills in the defaults.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub id: ContainerId,
    pub bundle: PathBuf,
    /// config.json path when not `<bundle>/config.json`.
    pub config: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub cgroup_manager: CgroupManager,
    /// `run --detach`: nobody stays to proxy a terminal, so one needs a console socket.
    pub detach: bool,
    /// Keep the caller's session keyring instead of joining a new one named after the id.
    pub no_new_keyring: bool,
    /// Environment entries added to the process's (socket activation's LISTEN_FDS/LISTEN_PID).
    pub extra_env: Vec<String>,
    /// Keep compiled seccomp filters in this directory and reuse them (see
    /// `pelagos_seccomp::compile_cached`); `None` compiles at every create.
    pub seccomp_cache: Option<PathBuf>,
    /// A signal the container's process gets when the caller of `create` dies (a monitor
    /// passes SIGKILL so that its container dies with it): `PR_SET_PDEATHSIG`, set right
    /// before the process's execve, after the user switch (a credential change clears it).
    /// If the caller is already gone by then (a `create` caller that exited before `start`),
    /// the process is not started. An execve that raises privileges (a set-user-ID or
    /// file-capability program, or root's permitted set growing to the bounding set without
    /// no_new_privs) clears it again: the kernel's rule. `None` (runc's behaviour) sets nothing.
    pub parent_death_signal: Option<i32>,
    /// Skip limits the host cannot enforce when the spec has no
    /// `run.pelagos.cgroup.skip-unavailable` annotation (the node's setting).
    pub skip_unavailable_default: bool,
}

impl CreateOptions {
    /// A container `id` from the bundle directory `bundle`, everything else at its default.
    pub fn new(id: ContainerId, bundle: impl Into<PathBuf>) -> CreateOptions {
        CreateOptions {
            id,
            bundle: bundle.into(),
            config: None,
            console_socket: None,
            pid_file: None,
            no_pivot: false,
            preserve_fds: 0,
            cgroup_manager: CgroupManager::default(),
            detach: false,
            no_new_keyring: false,
            extra_env: Vec::new(),
            seccomp_cache: None,
            parent_death_signal: None,
            skip_unavailable_default: false,
        }
    }
}

/// The runtime's view of its state directory (`--root`).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

/// A container created by `create`/`run` whose init is parked.
pub struct Created {
    pub id: ContainerId,
    pub pid: i32,
    pub dir: PathBuf,
    /// `run` keeps the sync socket to start the init without the fifo.
    sync: Option<SyncSocket>,
    /// A pty master received for `run` in the foreground with a terminal.
    pub pty_master: Option<OwnedFd>,
    /// What `run` needs later without reading the state directory again.
    saved: SavedState,
    hooks: Option<oci_spec::runtime::Hooks>,
}

/// Undo what a failed create made: the init, the cgroup, the state directory.
struct CreateGuard {
    dir: Option<PathBuf>,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
    /// A systemd scope started for the container (stopped again on failure).
    systemd_scope: Option<String>,
}

impl CreateGuard {
    /// Armed for the state directory just made; the cgroup and the init are added as made.
    fn new(dir: PathBuf) -> CreateGuard {
        CreateGuard {
            dir: Some(dir),
            cgroup: None,
            pid: None,
            systemd_scope: None,
        }
    }

    /// The container is created: keep everything.
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
        self.systemd_scope = None;
    }
}

impl Drop for CreateGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let p = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all();
            let _ = cg.destroy();
        }
        if let Some(rel) = &self.systemd_scope {
            let _ = pelagos_cgroups::systemd::stop_scope(rel);
        }
        if let Some(dir) = &self.dir {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// `<root>/<id>`: only a checked id names a directory, so none lies outside the root.
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.root.join(id.as_str())
    }

    /// Load a container's saved state; a missing one is `does not exist`. What state.json
    /// names that the verbs act on (its id, its cgroup) is checked against the frozen config
    /// first, so that an edited state.json cannot point kill, pause or delete elsewhere.
    pub fn load(&self, id: &ContainerId) -> Result<SavedState> {
        let saved = SavedState::load(&self.container_dir(id), id)?;
        self.check_saved_state(id, &saved)?;
        Ok(saved)
    }

    /// state.json's cgroup must be the one create made for the frozen config's
    /// `linux.cgroupsPath`: resolved the same way (cgroupfs or systemd form; `--cgroup-manager`
    /// is not saved), so it is normalised, has no `..` and stays under the cgroup2 root. An
    /// empty one (no cgroup) touches nothing.
    fn check_saved_state(&self, id: &ContainerId, saved: &SavedState) -> Result<()> {
        let untrusted = |reason: String| Error::UntrustedState {
            id: id.to_string(),
            reason,
        };
        if saved.id != *id {
            return Err(untrusted(format!(
                "state.json names the container {:?}",
                saved.id
            )));
        }
        if saved.cgroup.is_empty() {
            return Ok(());
        }
        /// The one field of the frozen config this check needs.
        #[derive(serde::Deserialize)]
        struct Frozen {
            linux: Option<FrozenLinux>,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct FrozenLinux {
            cgroups_path: Option<String>,
        }
        let path = self.container_dir(id).join(state::CONFIG_FILE);
        let data = fs::read(&path)
            .map_err(|e| untrusted(format!("cannot read {} to check it: {e}", path.display())))?;
        let frozen: Frozen = serde_json::from_slice(&data)
            .map_err(|e| untrusted(format!("cannot parse {} to check it: {e}", path.display())))?;
        let given = frozen.linux.and_then(|l| l.cgroups_path);
        let made_by = |systemd: bool| {
            Cgroup::resolve(given.as_deref(), systemd, id.as_str())
                .ok()
                .is_some_and(|cg| cg.relative() == saved.cgroup)
        };
        let trusted = if saved.systemd_scope {
            made_by(true)
        } else {
            made_by(false) || made_by(true)
        };
        if !trusted {
            return Err(untrusted(format!(
                "state.json names the cgroup {:?}, which is not the one linux.cgroupsPath {:?} of {} gives; \
                 refusing to act on it (remove {} by hand once the container's processes are gone)",
                saved.cgroup,
                given.unwrap_or_default(),
                path.display(),
                self.container_dir(id).display()
            )));
        }
        Ok(())
    }

    /// The frozen config taken at create.
    pub fn load_config(&self, id: &ContainerId) -> Result<Spec> {
        let path = self.container_dir(id).join(state::CONFIG_FILE);
        let data = fs::read(&path).io(|| format!("read {}", path.display()))?;
        crate::spec::parse_config(&data).map_err(|e| Error::InvalidConfig {
            path,
            reason: e.to_string(),
        })
    }

    pub fn status(&self, saved: &SavedState) -> Status {
        if !saved.init_alive() {
            return Status::Stopped;
        }
        if !saved.cgroup.is_empty() {
            if let Ok(cg) = Cgroup::from_relative(&saved.cgroup) {
                if cg.is_frozen().unwrap_or(false) {
                    return Status::Paused;
                }
            }
        }
        if saved.started {
            Status::Running
        } else {
            Status::Created
        }
    }

    /// `create`: set the container up and leave its init parked until `start`. Like every
    /// create and `exec`, it clones the caller (fork semantics) and changes process-wide state
    /// (namespaces, descriptors) for a moment: a caller with other threads gets
    /// `Error::MultiThreaded`.
    pub fn create(&self, opts: &CreateOptions) -> Result<Created> {
        threads::ensure_single_threaded("create")?;
        init::reserve_preserved_fds(opts.preserve_fds)?;
        let bundle = Bundle::load(&opts.bundle, opts.config.as_deref())?;
        self.create_inner(opts, bundle, false)
    }

    /// `create` from a spec held in memory (the higher layers build one from an image):
    /// `opts.bundle` is the directory relative paths in the spec resolve against.
    pub fn create_with_spec(
        &self,
        opts: &CreateOptions,
        spec: Spec,
        for_run: bool,
    ) -> Result<Created> {
        self.create_with_spec_overlapped(opts, spec, for_run, |_| ())
            .map(|(created, ())| created)
    }

    /// [`Runtime::create_with_spec`] with `meanwhile(pid)` run once, as soon as the init has
    /// its namespaces and is building its root filesystem: work done on the container's
    /// namespaces from outside (a network attached to it) then overlaps the init's own
    /// instead of following it. The user's program cannot start before `start`, so it still
    /// finds that work done. `meanwhile` runs in this thread with fds 0-2 as the caller left
    /// them; what it returns comes back beside the container (on its error the caller deletes
    /// the container). If the create fails after `meanwhile` ran, the init is killed and its
    /// namespaces go with it.
    pub fn create_with_spec_overlapped<T>(
        &self,
        opts: &CreateOptions,
        spec: Spec,
        for_run: bool,
        meanwhile: impl FnOnce(i32) -> T,
    ) -> Result<(Created, T)> {
        threads::ensure_single_threaded("create")?;
        let dir =
            std::path::absolute(&opts.bundle).io(|| format!("bundle {}", opts.bundle.display()))?;
        let bundle = Bundle::from_spec(dir, spec)?;
        let mut meanwhile = Some(meanwhile);
        let mut outcome = None;
        let created = self.create_inner_with(opts, bundle, for_run, &mut |pid| {
            if let Some(f) = meanwhile.take() {
                outcome = Some(f(pid));
            }
        })?;
        match outcome {
            Some(outcome) => Ok((created, outcome)),
            // Unreachable: a create that succeeded sent Go, which runs `meanwhile`.
            None => Err(Error::Child(
                "create finished without its init running".into(),
            )),
        }
    }

    /// The first half of `run`: like create, but the init waits on the sync socket.
    pub fn create_for_run(&self, opts: &CreateOptions) -> Result<Created> {
        threads::ensure_single_threaded("create")?;
        init::reserve_preserved_fds(opts.preserve_fds)?;
        let bundle = Bundle::load(&opts.bundle, opts.config.as_deref())?;
        self.create_inner(opts, bundle, true)
    }

    /// The create sequence, one function per step of docs/architecture.md ("create, step by
    /// step"). From `make_state_dir` on, `guard` undoes everything made so far on any error.
    fn create_inner(&self, opts: &CreateOptions, bundle: Bundle, for_run: bool) -> Result<Created> {
        self.create_inner_with(opts, bundle, for_run, &mut |_| {})
    }

    /// [`Runtime::create_inner`], calling `meanwhile(pid)` right after the init was told to go
    /// on (see [`Runtime::create_with_spec_overlapped`]).
    fn create_inner_with(
        &self,
        opts: &CreateOptions,
        mut bundle: Bundle,
        for_run: bool,
        meanwhile: &mut dyn FnMut(i32),
    ) -> Result<Created> {
        let prepared = prepare_bundle(opts, &mut bundle, for_run)?;
        let linux = &prepared.linux;
        let dir = self.make_state_dir(&opts.id)?;
        let mut guard = CreateGuard::new(dir.clone());
        freeze_config(opts, &bundle, &dir)?;
        let cg = make_cgroup(opts, &bundle, linux, &dir, &mut guard)?;
        let mut handles = write_fifo(&bundle, linux, &dir, for_run)?;
        handles.parent_death = prepared.parent_death;
        let channels = open_console_and_sync(opts, prepared.terminal)?;
        let mut init = clone_init(opts, &bundle, &cg, prepared.seccomp, handles, channels)?;
        guard.pid = Some(init.pid);
        configure_init(opts, &bundle, linux, &cg, &mut init, &mut guard)?;
        let (saved, state_json) = send_go(opts, &bundle, &cg, &init)?;
        meanwhile(init.pid);
        serve_init_until_ready(&bundle.spec, &init, &state_json)?;
        // `run` with a terminal and no console socket: the pty master comes to us.
        let pty_master = match init.pty_receiver.take() {
            Some(r) => Some(r.recv_console()?),
            None => None,
        };
        persist_state(&saved, &dir, opts.pid_file.as_deref())?;
        guard.disarm();
        Ok(Created {
            id: opts.id.clone(),
            pid: init.pid,
            dir,
            sync: for_run.then_some(init.sync),
            pty_master,
            saved,
            hooks: bundle.spec.hooks().clone(),
        })
    }

    /// Step 5: `mkdir <root>` (recursive) and `<root>/<id>`, both 0711; an existing container
    /// directory is `already exists`. The guard takes over from here.
    fn make_state_dir(&self, id: &ContainerId) -> Result<PathBuf> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .io(|| format!("create state root {}", self.root.display()))?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(e).io(|| format!("create {}", dir.display())),
        }
    }

    /// `start`: let the parked init run the user's program.
    pub fn start(&self, id: &ContainerId) -> Result<()> {
        let mut saved = self.load(id)?;
        let status = self.status(&saved);
        if status != Status::Created {
            return Err(Error::BadStatus {
                action: "start",
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        let spec = self.load_config(id)?;
        if spec.process().is_none() {
            return Err(Error::Spec(
                "process is not set in config.json: nothing to start".into(),
            ));
        }
        let dir = self.container_dir(id);
        let fifo_path = dir.join(EXEC_FIFO);
        let fifo = nix::fcntl::open(
            &fifo_path,
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .sys(|| format!("open {}", fifo_path.display()))?;
        // SAFETY: a fresh descriptor from a successful open.
        let fifo: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fifo) };
        // One byte: the init is past the fifo. End-of-file: it exec'd (or died). Anything
        // after the byte is the init's account of why the start failed.
        let mut got_byte = false;
        let mut failure = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fifo.as_raw_fd(), &mut buf) {
                Ok(0) if got_byte => break,
                Ok(n) if n > 0 => {
                    let rest = if got_byte { &buf[..n] } else { &buf[1..n] };
                    got_byte = true;
                    failure.extend_from_slice(rest);
                }
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                    if !got_byte && !saved.init_alive() {
                        return Err(Error::NotRunning(id.to_string()));
                    }
                    let mut pfd = libc::pollfd {
                        fd: fifo.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for the duration of the call.
                    unsafe { libc::poll(&mut pfd, 1, 50) };
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).sys(|| "read exec fifo".into()),
            }
        }
        if !failure.is_empty() {
            let _ = fs::remove_file(&fifo_path);
            return Err(sync::decode_failure(&failure));
        }
        let _ = fs::remove_file(&fifo_path);
        saved.started = true;
        saved.save(&dir)?;
        self.poststart(&saved, spec.hooks().as_ref())
    }

    /// `run`'s start: signal the init over the sync socket.
    pub fn start_created(&self, created: &mut Created) -> Result<()> {
        let sock = created
            .sync
            .take()
            .ok_or_else(|| Error::Child("container was not created for run".into()))?;
        sock.send(Msg::Start)?;
        // End-of-file on the socket means the init exec'd the user's program.
        sock.wait_exec()?;
        created.saved.started = true;
        created.saved.save(&created.dir)?;
        self.poststart(&created.saved, created.hooks.as_ref())
    }

    /// Run the poststart hooks. runtime-spec 1.2 (the version pelagos reports) makes a failing
    /// one an error that stops the container, as runc does: the rest are skipped, the
    /// container is killed and left `stopped` for `delete`.
    fn poststart(
        &self,
        saved: &SavedState,
        hooks: Option<&oci_spec::runtime::Hooks>,
    ) -> Result<()> {
        let Some(h) = hooks.and_then(|h| h.poststart().as_ref()) else {
            return Ok(());
        };
        let json = state_json(saved, Status::Running);
        if let Err(e) = hooks::run_all(h, &json) {
            if let Err(kill) = self.force_stop(saved) {
                tracing_warn(&format!(
                    "stop container {} after its poststart hook failed: {kill}",
                    saved.id
                ));
            }
            return Err(Error::Poststart {
                id: saved.id.to_string(),
                source: Box::new(e),
            });
        }
        Ok(())
    }

    /// `run`'s delete: stop and remove a container created here, from what is in memory.
    pub fn delete_created(&self, created: Created) -> Result<()> {
        self.remove(&created.saved, created.hooks.as_ref(), true)
    }

    /// `kill`: signal the init, or with `all` every process of the container.
    pub fn kill(&self, id: &ContainerId, signal: i32, all: bool) -> Result<()> {
        let saved = self.load(id)?;
        let status = self.status(&saved);
        if status == Status::Stopped {
            // As runc 1.2: `--all` on a stopped container is no error (containerd's runc v2
            // shim sends `kill --all ID 9` after the exit); what the init left in its cgroup
            // still gets the signal.
            return match all {
                true => signal_leftovers(&saved, signal),
                false => Err(Error::NotRunning(id.to_string())),
            };
        }
        if (all || !saved.own_pid_ns) && !saved.cgroup.is_empty() {
            let cg = Cgroup::from_relative(&saved.cgroup)?;
            if signal == libc::SIGKILL {
                cg.kill_all()?;
            } else {
                cg.signal_all(signal)?;
            }
            return Ok(());
        }
        let pidfd = sys::pidfd_open(saved.pid).map_err(|_| Error::NotRunning(id.to_string()))?;
        // The pidfd pins the process: check it is still the container's init.
        if !saved.init_alive() {
            return Err(Error::NotRunning(id.to_string()));
        }
        sys::pidfd_send_signal(&pidfd, signal).sys(|| format!("signal container {id}"))
    }

    /// `delete`: remove a stopped container; with `force` stop it first. Deleting one that
    /// is already gone with `force` succeeds, as containerd expects.
    pub fn delete(&self, id: &ContainerId, force: bool) -> Result<()> {
        let saved = match self.load(id) {
            Ok(s) => s,
            Err(Error::NotFound(_)) if force => {
                let _ = fs::remove_dir_all(self.container_dir(id));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let spec = self.load_config(id).ok();
        self.remove(
            &saved,
            spec.as_ref().and_then(|s| s.hooks().as_ref()),
            force,
        )
    }

    /// Stop (with `force`) and remove a container: cgroup, poststop hooks, state directory.
    fn remove(
        &self,
        saved: &SavedState,
        hooks: Option<&oci_spec::runtime::Hooks>,
        force: bool,
    ) -> Result<()> {
        let id = &saved.id;
        let status = self.status(saved);
        if status != Status::Stopped {
            if !force {
                return Err(Error::NotStopped {
                    id: id.to_string(),
                    status: status.to_string(),
                });
            }
            self.force_stop(saved)?;
        }
        if !saved.cgroup.is_empty() {
            let cg = Cgroup::from_saved(&saved.cgroup, saved.cgroup_owned_levels)?;
            // Processes outside the init's pid namespace may linger: end them too.
            let _ = cg.kill_all();
            if saved.systemd_scope {
                // systemd owns the scope's cgroup and removes it when the unit stops.
                pelagos_cgroups::systemd::stop_scope(&saved.cgroup)?;
            } else {
                cg.destroy()?;
            }
        }
        if let Some(h) = hooks.and_then(|h| h.poststop().as_ref()) {
            let json = state_json(saved, Status::Stopped);
            hooks::run_all_warn(h, &json, &mut |w| tracing_warn(&format!("poststop: {w}")));
        }
        fs::remove_dir_all(self.container_dir(id)).io(|| format!("remove state of container {id}"))
    }

    fn force_stop(&self, saved: &SavedState) -> Result<()> {
        let pidfd = sys::pidfd_open(saved.pid).ok();
        if !saved.cgroup.is_empty() {
            let cg = Cgroup::from_relative(&saved.cgroup)?;
            cg.kill_all()?;
        }
        if let Some(fd) = &pidfd {
            if saved.init_alive() {
                let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
            }
            if !sys::pidfd_wait_exit(fd, 10_000) {
                return Err(Error::Child(format!(
                    "container {} did not exit after SIGKILL",
                    saved.id
                )));
            }
        }
        Ok(())
    }

    /// The state report of one container.
    pub fn state(&self, id: &ContainerId) -> Result<String> {
        let saved = self.load(id)?;
        let status = self.status(&saved);
        serde_json::to_string_pretty(&saved.report(status)).map_err(|e| Error::Spec(e.to_string()))
    }

    /// All containers under the root, with their status.
    pub fn list(&self) -> Result<Vec<(SavedState, Status)>> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).io(|| format!("read {}", self.root.display())),
        };
        for entry in entries.flatten() {
            // A directory whose name breaks the id rule is no container of ours.
            let Ok(id) = ContainerId::parse_os(&entry.file_name()) else {
                continue;
            };
            if let Ok(saved) = SavedState::load(&self.container_dir(&id), &id) {
                let status = self.status(&saved);
                out.push((saved, status));
            }
        }
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(out)
    }

    pub fn pause(&self, id: &ContainerId) -> Result<()> {
        let saved = self.load(id)?;
        match self.status(&saved) {
            Status::Running | Status::Created => {}
            Status::Paused => return Err(Error::Paused(id.to_string())),
            s => {
                return Err(Error::BadStatus {
                    action: "pause",
                    id: id.to_string(),
                    status: s.to_string(),
                })
            }
        }
        self.cgroup_of(&saved)?.freeze().map_err(Into::into)
    }

    pub fn resume(&self, id: &ContainerId) -> Result<()> {
        let saved = self.load(id)?;
        let status = self.status(&saved);
        if status != Status::Paused {
            return Err(Error::BadStatus {
                action: "resume",
                id: id.to_string(),
                status: status.to_string(),
            });
        }
        self.cgroup_of(&saved)?.thaw().map_err(Into::into)
    }

    /// Host pids of the container's processes.
    pub fn pids(&self, id: &ContainerId) -> Result<Vec<i32>> {
        let saved = self.load(id)?;
        if saved.cgroup.is_empty() {
            return Ok(if saved.init_alive() {
                vec![saved.pid]
            } else {
                vec![]
            });
        }
        self.cgroup_of(&saved)?.procs().map_err(Into::into)
    }

    pub fn cgroup_of(&self, saved: &SavedState) -> Result<Cgroup> {
        if saved.cgroup.is_empty() {
            return Err(Error::Spec(format!(
                "container {} has no cgroup (cgroup manager disabled)",
                saved.id
            )));
        }
        Ok(Cgroup::from_relative(&saved.cgroup)?)
    }
}

/// What `prepare_bundle` settles before anything is made on the host.
struct Prepared {
    terminal: bool,
    /// The filter the init will load.
    seccomp: Option<pelagos_seccomp::CompiledFilter>,
    linux: oci_spec::runtime::Linux,
    parent_death: Option<ParentDeath>,
}

/// Steps 3-4, before anything is made on the host: the launch stub, `extra_env` added to the
/// process, a terminal nobody could receive refused, seccomp compiled, the parent death
/// signal checked (with the caller's pidfd for the init).
fn prepare_bundle(opts: &CreateOptions, bundle: &mut Bundle, for_run: bool) -> Result<Prepared> {
    // The init makes its final execve from the sealed launch stub (CVE-2019-5736): made
    // here, before the clone, so a long-lived caller makes it once.
    crate::init::launch::launch_stub()?;
    if !opts.extra_env.is_empty() {
        if let Some(p) = bundle.spec.process_mut() {
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(opts.extra_env.iter().cloned());
            p.set_env(Some(env));
        }
    }
    let spec = &bundle.spec;
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if terminal && opts.console_socket.is_none() && (!for_run || opts.detach) {
        return Err(Error::Spec(
            "cannot allocate a tty when pelagos-runtime detaches without --console-socket".into(),
        ));
    }
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(match &opts.seccomp_cache {
            Some(dir) => pelagos_seccomp::compile_cached(s, dir)?,
            None => pelagos_seccomp::compile(s)?,
        }),
        None => None,
    };
    let linux = spec.linux().clone().unwrap_or_default();
    let parent_death = ParentDeath::of_caller(opts.parent_death_signal)?;
    Ok(Prepared {
        terminal,
        seccomp,
        linux,
        parent_death,
    })
}

/// The container's cgroup as `make_cgroup` left it.
struct CgroupSetup {
    cgroup: Option<Cgroup>,
    /// The directory the init is cloned into (`CLONE_INTO_CGROUP`); none with a systemd scope.
    fd: Option<OwnedFd>,
    /// systemd makes the cgroup: a scope around the init's pid, started after the clone.
    systemd_scope: bool,
    /// The resources to apply once that scope exists.
    scope_resources: Option<oci_spec::runtime::LinuxResources>,
    skip_unavailable: bool,
}

/// Step 6: resolve and check the cgroup, then create it (a provisional state.json naming it at
/// once, the config being frozen already), apply the limits and open its
/// directory for the clone; with a systemd scope all that waits for the init's pid.
fn make_cgroup(
    opts: &CreateOptions,
    bundle: &Bundle,
    linux: &oci_spec::runtime::Linux,
    dir: &Path,
    guard: &mut CreateGuard,
) -> Result<CgroupSetup> {
    let spec = &bundle.spec;
    let skip_unavailable = crate::annotations::skip_unavailable(
        spec.annotations().as_ref(),
        opts.skip_unavailable_default,
    );
    // With systemd running, systemd makes the cgroup: a scope around the init's pid,
    // started right after the clone. Until then the init waits for Go.
    let systemd_scope =
        opts.cgroup_manager == CgroupManager::Systemd && pelagos_cgroups::systemd::is_running();
    let mut setup = CgroupSetup {
        cgroup: None,
        fd: None,
        systemd_scope,
        scope_resources: None,
        skip_unavailable,
    };
    if opts.cgroup_manager == CgroupManager::Disabled {
        return Ok(setup);
    }
    let (mut cg, res) = checked_cgroup(opts, linux, skip_unavailable)?;
    if systemd_scope {
        setup.scope_resources = Some(res);
    } else {
        cg.create()?;
        guard.cgroup = Some(cg.clone());
        saved_state(opts, bundle, Some(&cg), false, 0).save(dir)?;
        cg.apply(&res, skip_unavailable)?;
        setup.fd = Some(cg.open_dir_fd()?);
    }
    setup.cgroup = Some(cg);
    Ok(setup)
}

/// Resolve the cgroup's path and check `linux.resources` against the host (warnings go to
/// the warning sink), before anything is made.
fn checked_cgroup(
    opts: &CreateOptions,
    linux: &oci_spec::runtime::Linux,
    skip_unavailable: bool,
) -> Result<(Cgroup, oci_spec::runtime::LinuxResources)> {
    let path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let systemd = opts.cgroup_manager == CgroupManager::Systemd;
    let cg = Cgroup::resolve(path.as_deref(), systemd, &opts.id)?;
    let res = effective_resources(
        linux.resources().as_ref(),
        linux.devices().as_deref().unwrap_or(&[]),
    );
    let warnings = cg
        .check_resources(&res, skip_unavailable)
        .map_err(|e| match e {
            e @ pelagos_cgroups::CgroupError::ControllerUnavailable { .. } => {
                Error::CgroupUnenforceable(e)
            }
            e => e.into(),
        })?;
    for w in warnings {
        tracing_warn(&w);
    }
    Ok((cg, res))
}

/// What the init gets, made before the clone, to learn when to start and to receive its bind
/// mount sources.
struct InitHandles {
    /// (runtime's end, init's end) of the pair bind mount sources travel on.
    bind_sources: Option<(OwnedFd, OwnedFd)>,
    start: StartSignal,
    parent_death: Option<ParentDeath>,
}

/// Step 7: make the exec fifo (`create` only) (config.json was frozen before the cgroup),
/// give fds 0-2 to the container's user, and open the pair for bind mount sources.
fn write_fifo(
    bundle: &Bundle,
    linux: &oci_spec::runtime::Linux,
    dir: &Path,
    for_run: bool,
) -> Result<InitHandles> {
    let ns = &bundle.namespaces;
    let host_root = if ns.creates(LinuxNamespaceType::User) {
        crate::userns::host_root(linux)
    } else {
        None
    };
    let start = if for_run {
        StartSignal::Sync
    } else {
        StartSignal::Fifo(create_exec_fifo(&dir.join(EXEC_FIFO), host_root)?)
    };
    if ns.creates(LinuxNamespaceType::User) {
        chown_stdio_to_process_user(&bundle.spec, linux)?;
    }
    // The init cannot open bind sources its mapped root may not reach: the runtime opens
    // them in the init's mount namespace right after the clone and sends them over.
    let mounts = bundle.spec.mounts().as_deref().unwrap_or(&[]);
    let bind_sources = if ns.creates(LinuxNamespaceType::User)
        && ns.creates(LinuxNamespaceType::Mount)
        && mounts.iter().any(crate::rootfs::is_bind)
    {
        Some(bind_source_pair()?)
    } else {
        None
    };
    Ok(InitHandles {
        bind_sources,
        start,
        parent_death: None,
    })
}

/// Freeze the config: later edits of the bundle must not affect this container. The bytes as
/// read when nothing was changed since: no second serialization.
fn freeze_config(opts: &CreateOptions, bundle: &Bundle, dir: &Path) -> Result<()> {
    let frozen = match (&bundle.raw_config, opts.extra_env.is_empty()) {
        (Some(raw), true) => std::borrow::Cow::Borrowed(raw.as_slice()),
        _ => std::borrow::Cow::Owned(
            serde_json::to_vec(&bundle.spec).map_err(|e| Error::Spec(e.to_string()))?,
        ),
    };
    fs::write(dir.join(state::CONFIG_FILE), &frozen).io(|| "save config".into())
}

/// With a new user namespace: fds 0-2 owned by host root go to the host uid of
/// `process.user.uid` (`userns::chown_stdio`, runc's `fixStdioPermissions`).
fn chown_stdio_to_process_user(spec: &Spec, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let uid = spec.process().as_ref().map_or(0, |p| p.user().uid());
    let maps = linux.uid_mappings().as_deref().unwrap_or(&[]);
    match crate::userns::host_id(maps, uid) {
        Some(host_uid) => crate::userns::chown_stdio(host_uid),
        None => Ok(()),
    }
}

/// The console and sync sockets, each with the runtime's end and the init's.
struct Channels {
    init_sync: SyncSocket,
    sync: SyncSocket,
    /// `run` in the foreground with a terminal: where the pty master arrives.
    pty_receiver: Option<SyncSocket>,
    console: Option<OwnedFd>,
}

/// Steps 8-9: the console (`--console-socket`, or for `run` a private pair to receive the pty
/// master) and the sync socketpair.
fn open_console_and_sync(opts: &CreateOptions, terminal: bool) -> Result<Channels> {
    let (console, pty_receiver) = open_console(terminal, opts.console_socket.as_deref())?;
    let (sync, init_sync) = sync::pair()?;
    Ok(Channels {
        init_sync,
        sync,
        pty_receiver,
        console,
    })
}

/// The runtime's side of the init once it is cloned.
struct Cloned {
    pid: i32,
    sync: SyncSocket,
    pty_receiver: Option<SyncSocket>,
    seccomp: Option<pelagos_seccomp::CompiledFilter>,
    bind_sources: Option<(OwnedFd, OwnedFd)>,
    /// The runtime's copy of the exec fifo handle, kept open until create returns.
    _start: StartSignal,
}

/// Steps 10-11: enter the parent-side namespaces, `clone3` the init into its new namespaces and
/// its cgroup, restore ours. The child does not return from here: it becomes the init.
fn clone_init(
    opts: &CreateOptions,
    bundle: &Bundle,
    cg: &CgroupSetup,
    seccomp: Option<pelagos_seccomp::CompiledFilter>,
    handles: InitHandles,
    ch: Channels,
) -> Result<Cloned> {
    let restore = enter_parent_namespaces(bundle)?;
    let (flags, late_cgroupns) = init_clone_flags(bundle, cg.systemd_scope);
    let cgroup_fd = cg.fd.as_ref().map(|f| f.as_raw_fd());
    // SAFETY: create checked that the caller is single-threaded; the child only runs
    // `become_init`, which ends in execve or _exit.
    let forked = unsafe { sys::clone3(flags.bits() as u64, cgroup_fd) };
    let forked = match forked {
        Ok(f) => f,
        Err(e) => {
            restore.restore();
            return Err(e).sys(|| "clone the container init".into());
        }
    };
    let pid = match forked {
        sys::Forked::Child => become_init(opts, bundle, cg, late_cgroupns, seccomp, handles, ch),
        sys::Forked::Parent(pid) => pid,
    };
    restore.restore();
    drop(ch.init_sync);
    drop(ch.console);
    Ok(Cloned {
        pid,
        sync: ch.sync,
        pty_receiver: ch.pty_receiver,
        seccomp,
        bind_sources: handles.bind_sources,
        _start: handles.start,
    })
}

/// The `CLONE_NEW*` flags of the clone, and whether the init unshares its cgroup namespace
/// itself, late (once moved into its systemd scope).
fn init_clone_flags(bundle: &Bundle, systemd_scope: bool) -> (CloneFlags, bool) {
    let ns = &bundle.namespaces;
    // With a joined user namespace the init unshares the new ones after joining it, so
    // they belong to it (a new pid namespace is refused in that case by NamespacePlan).
    let mut flags = if ns.joins(LinuxNamespaceType::User) {
        CloneFlags::empty()
    } else {
        ns.clone_flags()
    };
    // A cgroup namespace is rooted where its creator is: with a systemd scope the init
    // is moved after the clone, so it unshares its cgroup namespace once it is there.
    let late_cgroupns = systemd_scope && flags.contains(CloneFlags::CLONE_NEWCGROUP);
    if late_cgroupns {
        flags.remove(CloneFlags::CLONE_NEWCGROUP);
    }
    (flags, late_cgroupns)
}

/// The child's side of `clone_init`: close the runtime's ends and run the init, which never
/// returns (nothing of the runtime's, the guard included, is dropped in this copy).
fn become_init(
    opts: &CreateOptions,
    bundle: &Bundle,
    cg: &CgroupSetup,
    late_cgroupns: bool,
    seccomp: Option<pelagos_seccomp::CompiledFilter>,
    handles: InitHandles,
    ch: Channels,
) -> ! {
    drop(ch.sync);
    let bind_sources = handles.bind_sources.map(|(_, init_end)| init_end);
    init::run(InitContext {
        bundle,
        sync: ch.init_sync,
        start: handles.start,
        console: ch.console,
        preserve_fds: opts.preserve_fds,
        seccomp,
        no_pivot: opts.no_pivot,
        session_keyring: (!opts.no_new_keyring).then(|| opts.id.to_string()),
        cgroup_dir: cg.cgroup.as_ref().map(|c| c.path().to_path_buf()),
        has_runtime_hooks: has_runtime_hooks(&bundle.spec),
        late_cgroupns,
        bind_sources,
        parent_death: handles.parent_death,
    })
}

/// Whether the runtime has `prestart` or `createRuntime` hooks to run for the init.
fn has_runtime_hooks(spec: &Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        #[allow(deprecated)]
        let pre = h.prestart().as_ref().is_some_and(|v| !v.is_empty());
        pre || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    })
}

/// Step 12, while the init waits for Go: move it into its systemd scope, write its id maps,
/// send it the bind mount sources, set its OOM score.
fn configure_init(
    opts: &CreateOptions,
    bundle: &Bundle,
    linux: &oci_spec::runtime::Linux,
    cg: &CgroupSetup,
    init: &mut Cloned,
    guard: &mut CreateGuard,
) -> Result<()> {
    let pid = init.pid;
    start_systemd_scope(opts, cg, pid, guard)?;
    if bundle.namespaces.creates(LinuxNamespaceType::User) {
        write_id_maps(pid, linux)?;
    }
    if let Some((runtime_end, init_end)) = init.bind_sources.take() {
        drop(init_end);
        let mnt_ns = namespaces::open_ns(Path::new(&format!("/proc/{pid}/ns/mnt")))?;
        let mounts = bundle.spec.mounts().as_deref().unwrap_or(&[]);
        crate::userns::send_bind_sources(mounts, &bundle.dir, &mnt_ns, &runtime_end)?;
        // Closing our end tells the init that every source was sent.
    }
    let process = bundle.spec.process().as_ref();
    if let Some(score) = process.and_then(|p| p.oom_score_adj()) {
        fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
            .io(|| format!("set oomScoreAdj {score}"))?;
    }
    Ok(())
}

/// With a systemd scope: start it around the init's pid (the guard stops it on failure),
/// then apply the limits to its cgroup.
fn start_systemd_scope(
    opts: &CreateOptions,
    cg: &CgroupSetup,
    pid: i32,
    guard: &mut CreateGuard,
) -> Result<()> {
    let (Some(c), Some(res)) = (&cg.cgroup, &cg.scope_resources) else {
        return Ok(());
    };
    pelagos_cgroups::systemd::start_scope(
        c.relative(),
        pid,
        &format!("pelagos container {}", opts.id),
        res,
    )?;
    guard.systemd_scope = Some(c.relative().to_string());
    guard.cgroup = Some(c.clone());
    c.apply(res, cg.skip_unavailable)?;
    Ok(())
}

/// End of step 12: the state (status `creating`, what hooks get on stdin) goes to the init
/// with Go, after the init's start time is read.
fn send_go(
    opts: &CreateOptions,
    bundle: &Bundle,
    cg: &CgroupSetup,
    init: &Cloned,
) -> Result<(SavedState, Vec<u8>)> {
    let saved = saved_state(opts, bundle, cg.cgroup.as_ref(), cg.systemd_scope, init.pid);
    let state_json = state_json(&saved, Status::Creating);
    init.sync.send_payload(Msg::Go, &state_json)?;
    Ok((saved, state_json))
}

/// The state of a container whose init is `pid`. Saved first with pid 0 right after the
/// cgroup is made (step 6, the config frozen before it), before any process exists: a
/// `delete --force` after a create that was killed (SIGKILL runs no guard) then finds the
/// cgroup to remove.
fn saved_state(
    opts: &CreateOptions,
    bundle: &Bundle,
    cgroup: Option<&Cgroup>,
    systemd_scope: bool,
    pid: i32,
) -> SavedState {
    SavedState {
        id: opts.id.clone(),
        pid,
        pid_start_time: match pid {
            0 => 0,
            p => sys::process_start_time(p).unwrap_or(0),
        },
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: state::now_rfc3339_nano(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        owner: String::new(),
        cgroup: cgroup.map(|c| c.relative().to_string()).unwrap_or_default(),
        cgroup_owned_levels: cgroup.map(|c| c.owned_levels()).unwrap_or(0),
        systemd_scope,
        own_pid_ns: bundle.namespaces.creates(LinuxNamespaceType::Pid),
        started: false,
    }
}

/// Step 13: serve the init until it is parked: hand a seccomp listener to the agent, run the
/// runtime's hooks when asked. Ready ends it; anything else (Failed, end-of-file) is an error.
fn serve_init_until_ready(spec: &Spec, init: &Cloned, state_json: &[u8]) -> Result<()> {
    loop {
        match init.sync.recv_with_fd()? {
            (Msg::SeccompFd, Some(listener)) => {
                let filter = init.seccomp.as_ref();
                crate::seccomp_agent::hand_over(filter, listener, init.pid, state_json)?;
            }
            (Msg::RunHooks, _) => {
                run_runtime_hooks(spec, state_json)?;
                init.sync.send(Msg::HooksDone)?;
            }
            (Msg::Ready, _) => return Ok(()),
            (other, _) => {
                return Err(Error::Child(format!(
                    "sync protocol: unexpected {other:?} during create"
                )))
            }
        }
    }
}

/// `prestart` (deprecated) then `createRuntime` hooks, in the runtime's namespaces.
fn run_runtime_hooks(spec: &Spec, state_json: &[u8]) -> Result<()> {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    if let Some(pre) = h.prestart() {
        hooks::run_all(pre, state_json)?;
    }
    if let Some(cr) = h.create_runtime() {
        hooks::run_all(cr, state_json)?;
    }
    Ok(())
}

/// Step 15: state.json, then the pid file (callers poll for it), the last things before the
/// guard is disarmed.
fn persist_state(saved: &SavedState, dir: &Path, pid_file: Option<&Path>) -> Result<()> {
    saved.save(dir)?;
    if let Some(pf) = pid_file {
        write_pid_file(pf, saved.pid)?;
    }
    Ok(())
}

/// The resources to apply: the config's, with device rules completed as runc does — the
/// user's rules, then the devices every container needs, then one `rwm` allow rule per
/// `linux.devices` node the user's rules do not name (the eBPF filter takes the last matching
/// rule: a rule naming the node, as Docker's `--device /dev/x:/dev/x:r` gives, keeps its
/// access). Any device not allowed so is denied, also when the config lists no rules.
pub fn effective_resources(
    resources: Option<&oci_spec::runtime::LinuxResources>,
    devices: &[oci_spec::runtime::LinuxDevice],
) -> oci_spec::runtime::LinuxResources {
    let mut res = resources.cloned().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    let named = |d: &oci_spec::runtime::LinuxDevice| {
        rules.iter().any(|r| {
            r.allow()
                && r.typ() == Some(d.typ())
                && r.major() == Some(d.major())
                && r.minor() == Some(d.minor())
        })
    };
    // Fifos are not devices: the device controller has no say over them.
    let node_rules: Vec<_> = devices
        .iter()
        .filter(|d| !matches!(d.typ(), oci_spec::runtime::LinuxDeviceType::P) && !named(d))
        .map(oci_spec::runtime::LinuxDeviceCgroup::from)
        .collect();
    rules.extend(pelagos_cgroups::default_device_rules());
    rules.extend(node_rules);
    res.set_devices(Some(rules));
    res
}

/// The console for a process with a terminal: the caller's socket, or (in the foreground)
/// a socketpair whose other end the runtime keeps to receive the pty master and proxy it.
pub(crate) fn open_console(
    terminal: bool,
    socket: Option<&Path>,
) -> Result<(Option<OwnedFd>, Option<SyncSocket>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(path) = socket {
        let s = std::os::unix::net::UnixStream::connect(path)
            .io(|| format!("connect to console socket {}", path.display()))?;
        return Ok((Some(s.into()), None));
    }
    let (ours, theirs) = sync::pair()?;
    Ok((Some(theirs.into_fd()), Some(ours)))
}

/// The state JSON hooks receive on stdin.
pub(crate) fn state_json(saved: &SavedState, status: Status) -> Vec<u8> {
    serde_json::to_vec(&saved.report(status)).unwrap_or_default()
}

/// Namespaces the runtime itself enters so the init is born in them, and a way back so hooks
/// still run in the runtime's. setns changes the whole (single-threaded) process: this runs
/// only inside `create_inner`, behind create's single-thread check.
struct ParentNamespaces {
    saved: Vec<(CloneFlags, OwnedFd)>,
}

impl ParentNamespaces {
    fn restore(self) {
        for (flag, fd) in self.saved {
            let _ = nix::sched::setns(fd, flag);
        }
    }
}

/// The joined namespaces the runtime enters before the clone, with the file of its own to
/// come back to. pid and time apply "for children". ipc, uts, net and cgroup are joined here,
/// with the runtime's privileges, because an init born in a new user namespace may not enter
/// a namespace the host's user namespace owns (runc's nsexec also joins them before it
/// unshares the user namespace). User and mount are joined by the init.
const JOINED_BY_RUNTIME: [(LinuxNamespaceType, &str); 6] = [
    (LinuxNamespaceType::Pid, "/proc/self/ns/pid_for_children"),
    (LinuxNamespaceType::Time, "/proc/self/ns/time_for_children"),
    (LinuxNamespaceType::Ipc, "/proc/self/ns/ipc"),
    (LinuxNamespaceType::Uts, "/proc/self/ns/uts"),
    (LinuxNamespaceType::Network, "/proc/self/ns/net"),
    (LinuxNamespaceType::Cgroup, "/proc/self/ns/cgroup"),
];

fn enter_parent_namespaces(bundle: &Bundle) -> Result<ParentNamespaces> {
    let ns = &bundle.namespaces;
    let mut entered = ParentNamespaces { saved: Vec::new() };
    for (t, own) in JOINED_BY_RUNTIME {
        let joined = ns.joined(t);
        let create_time = t == LinuxNamespaceType::Time && ns.creates(t);
        if joined.is_none() && !create_time {
            continue;
        }
        let own = match namespaces::open_ns(Path::new(own)) {
            Ok(fd) => fd,
            Err(e) => {
                entered.restore();
                return Err(e);
            }
        };
        entered.saved.push((namespaces::clone_flag(t), own));
        let res = match joined {
            Some(j) => j.enter(),
            None => nix::sched::unshare(namespaces::clone_flag(t))
                .sys(|| "unshare time namespace".into())
                .and_then(|()| write_time_offsets(bundle)),
        };
        if let Err(e) = res {
            entered.restore();
            return Err(e);
        }
    }
    Ok(entered)
}

fn write_time_offsets(bundle: &Bundle) -> Result<()> {
    let Some(offsets) = bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
    else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        let name = match clock.as_str() {
            "monotonic" => "monotonic",
            "boottime" => "boottime",
            other => {
                return Err(Error::Spec(format!(
                    "linux.timeOffsets: unknown clock {other:?} (monotonic or boottime)"
                )))
            }
        };
        text.push_str(&format!(
            "{name} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    fs::write("/proc/self/timens_offsets", text).io(|| "write time namespace offsets".into())
}

fn write_id_maps(pid: i32, linux: &oci_spec::runtime::Linux) -> Result<()> {
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    fs::write(format!("/proc/{pid}/uid_map"), fmt(linux.uid_mappings()))
        .io(|| format!("write uid_map {:?}", linux.uid_mappings()))?;
    fs::write(format!("/proc/{pid}/gid_map"), fmt(linux.gid_mappings()))
        .io(|| format!("write gid_map {:?}", linux.gid_mappings()))
}

/// `mkfifo exec.fifo`, 0622 whatever the umask (runc), owned by the container's root when it
/// is not host root (runc chowns it the same way), and opened `O_PATH` for the init.
fn create_exec_fifo(path: &Path, host_root: Option<(u32, u32)>) -> Result<OwnedFd> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o622);
    nix::unistd::mkfifo(path, mode).sys(|| format!("mkfifo {}", path.display()))?;
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("open {}", path.display()))?;
    // SAFETY: a fresh descriptor from a successful open.
    let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) };
    // O_PATH descriptors take no fchmod/fchown: go through the magic link, which names
    // exactly this inode.
    let by_fd = sys::fd_path(fd.as_raw_fd());
    nix::sys::stat::fchmodat(
        None,
        by_fd.as_str(),
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .sys(|| format!("chmod {}", path.display()))?;
    if let Some((uid, gid)) = host_root {
        nix::unistd::fchownat(
            None,
            by_fd.as_str(),
            Some(uid.into()),
            Some(gid.into()),
            nix::fcntl::AtFlags::empty(),
        )
        .sys(|| format!("chown {} to the container's root", path.display()))?;
    }
    Ok(fd)
}

/// The socket pair bind mount sources travel on: (runtime's end, init's end).
/// `kill --all` of a stopped container: what its init left in the cgroup (a container
/// sharing the host's pid namespace) gets `signal`; a cgroup already gone holds nothing.
fn signal_leftovers(saved: &SavedState, signal: i32) -> Result<()> {
    if saved.cgroup.is_empty() {
        return Ok(());
    }
    let cg = Cgroup::from_relative(&saved.cgroup)?;
    if !cg.path().exists() {
        return Ok(());
    }
    match signal {
        libc::SIGKILL => cg.kill_all()?,
        _ => cg.signal_all(signal)?,
    }
    Ok(())
}

fn bind_source_pair() -> Result<(OwnedFd, OwnedFd)> {
    nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .sys(|| "socketpair for bind mount sources".into())
}

/// Write the pid file atomically (callers poll for it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("pelagos-tmp");
    let mut f = fs::File::create(&tmp).io(|| format!("write pid file {}", path.display()))?;
    write!(f, "{pid}").io(|| format!("write pid file {}", path.display()))?;
    fs::rename(&tmp, path).io(|| format!("write pid file {}", path.display()))
}

type WarningSink = Box<dyn Fn(&str) + Send + Sync>;
static WARNING_SINK: std::sync::OnceLock<WarningSink> = std::sync::OnceLock::new();

/// Send warnings somewhere other than stderr (the binary's `--log` file): under containerd
/// the runtime's stderr during `create` is the container's stderr, so a warning printed
/// there shows up as container output. Only the first call takes effect.
pub fn set_warning_sink(sink: WarningSink) {
    let _ = WARNING_SINK.set(sink);
}

/// Warnings go to the sink set with [`set_warning_sink`], else to stderr.
fn tracing_warn(msg: &str) {
    match WARNING_SINK.get() {
        Some(sink) => sink(msg),
        None => eprintln!("warning: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources,
    };

    use super::effective_resources;

    fn node(minor: i64) -> LinuxDevice {
        LinuxDeviceBuilder::default()
            .path(format!("/dev/n{minor}"))
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(minor)
            .build()
            .unwrap()
    }

    fn access_of(rules: &[LinuxDeviceCgroup], minor: i64) -> Vec<String> {
        rules
            .iter()
            .filter(|r| r.major() == Some(10) && r.minor() == Some(minor))
            .map(|r| r.access().clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_node_named_by_a_rule_keeps_that_rules_access() {
        let mut named = LinuxDeviceCgroup::default();
        named.set_allow(true);
        named.set_typ(Some(LinuxDeviceType::C));
        named.set_major(Some(10));
        named.set_minor(Some(1));
        named.set_access(Some("r".into()));
        let mut res = LinuxResources::default();
        res.set_devices(Some(vec![named]));
        let out = effective_resources(Some(&res), &[node(1), node(2)]);
        let rules = out.devices().clone().unwrap();
        assert_eq!(access_of(&rules, 1), ["r"]);
        assert_eq!(access_of(&rules, 2), ["rwm"]);
    }
}
