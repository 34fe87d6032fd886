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
use crate::init::{self, InitContext, StartSignal};
use crate::spec::Bundle;
use crate::state::{self, SavedState, Status, EXEC_FIFO};
use crate::sync::{self, Msg, SyncSocket};
use crate::{hooks, namespaces, sys};

/// Annotation by which a user opts out of cgroup limits this host cannot enforce.
pub const SKIP_UNAVAILABLE_ANNOTATION: &str = "run.pelagos.cgroup.skip-unavailable";

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

    /// `create`: set the container up and leave its init parked until `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<Created> {
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
        let dir =
            std::path::absolute(&opts.bundle).io(|| format!("bundle {}", opts.bundle.display()))?;
        let bundle = Bundle::from_spec(dir, spec)?;
        self.create_inner(opts, bundle, for_run)
    }

    /// The first half of `run`: like create, but the init waits on the sync socket.
    pub fn create_for_run(&self, opts: &CreateOptions) -> Result<Created> {
        init::reserve_preserved_fds(opts.preserve_fds)?;
        let bundle = Bundle::load(&opts.bundle, opts.config.as_deref())?;
        self.create_inner(opts, bundle, true)
    }

    fn create_inner(
        &self,
        opts: &CreateOptions,
        mut bundle: Bundle,
        for_run: bool,
    ) -> Result<Created> {
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
                "cannot allocate a tty when pelagos-runtime detaches without --console-socket"
                    .into(),
            ));
        }
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(match &opts.seccomp_cache {
                Some(dir) => pelagos_seccomp::compile_cached(s, dir)?,
                None => pelagos_seccomp::compile(s)?,
            }),
            None => None,
        };

        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&self.root)
            .io(|| format!("create state root {}", self.root.display()))?;
        let dir = self.container_dir(&opts.id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(opts.id.to_string()))
            }
            Err(e) => return Err(e).io(|| format!("create {}", dir.display())),
        }
        let mut guard = CreateGuard {
            dir: Some(dir.clone()),
            cgroup: None,
            pid: None,
            systemd_scope: None,
        };

        let annotations = spec.annotations().clone().unwrap_or_default();
        let skip_unavailable = annotations
            .get(SKIP_UNAVAILABLE_ANNOTATION)
            .is_some_and(|v| v == "true");
        let linux = spec.linux().clone().unwrap_or_default();
        // With systemd running, systemd makes the cgroup: a scope around the init's pid,
        // started right after the clone. Until then the init waits for Go.
        let systemd_scope =
            opts.cgroup_manager == CgroupManager::Systemd && pelagos_cgroups::systemd::is_running();
        let mut scope_resources = None;
        let cgroup = match opts.cgroup_manager {
            CgroupManager::Disabled => None,
            m => {
                let path = linux
                    .cgroups_path()
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned());
                let mut cg =
                    Cgroup::resolve(path.as_deref(), m == CgroupManager::Systemd, &opts.id)?;
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
                if systemd_scope {
                    scope_resources = Some(res);
                } else {
                    cg.create()?;
                    guard.cgroup = Some(cg.clone());
                    cg.apply(&res, skip_unavailable)?;
                }
                Some(cg)
            }
        };
        let cgroup_fd = match (&cgroup, systemd_scope) {
            (Some(c), false) => Some(c.open_dir_fd()?),
            _ => None,
        };

        // Freeze the config: later edits of the bundle must not affect this container.
        // The bytes as read when nothing was changed since: no second serialization.
        let frozen = match (&bundle.raw_config, opts.extra_env.is_empty()) {
            (Some(raw), true) => std::borrow::Cow::Borrowed(raw.as_slice()),
            _ => std::borrow::Cow::Owned(
                serde_json::to_vec(spec).map_err(|e| Error::Spec(e.to_string()))?,
            ),
        };
        fs::write(dir.join(state::CONFIG_FILE), &frozen).io(|| "save config".into())?;
        let ns = &bundle.namespaces;
        let host_root = if ns.creates(LinuxNamespaceType::User) {
            crate::userns::host_root(&linux)
        } else {
            None
        };
        let start = if for_run {
            StartSignal::Sync
        } else {
            StartSignal::Fifo(create_exec_fifo(&dir.join(EXEC_FIFO), host_root)?)
        };
        if ns.creates(LinuxNamespaceType::User) {
            let uid = spec.process().as_ref().map_or(0, |p| p.user().uid());
            let maps = linux.uid_mappings().as_deref().unwrap_or(&[]);
            if let Some(host_uid) = crate::userns::host_id(maps, uid) {
                crate::userns::chown_stdio(host_uid)?;
            }
        }
        // The init cannot open bind sources its mapped root may not reach: the runtime opens
        // them in the init's mount namespace right after the clone and sends them over.
        let mounts = spec.mounts().as_deref().unwrap_or(&[]);
        let bind_sources = if ns.creates(LinuxNamespaceType::User)
            && ns.creates(LinuxNamespaceType::Mount)
            && mounts.iter().any(crate::rootfs::is_bind)
        {
            Some(bind_source_pair()?)
        } else {
            None
        };

        let (console, pty_receiver) = open_console(terminal, opts.console_socket.as_deref())?;

        let (parent_sock, child_sock) = sync::pair()?;
        let has_runtime_hooks = spec.hooks().as_ref().is_some_and(|h| {
            #[allow(deprecated)]
            let pre = h.prestart().as_ref().is_some_and(|v| !v.is_empty());
            pre || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
        });

        let restore = enter_parent_namespaces(&bundle)?;
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
        let forked = sys::clone3(
            flags.bits() as u64,
            cgroup_fd.as_ref().map(|f| f.as_raw_fd()),
        );
        let forked = match forked {
            Ok(f) => f,
            Err(e) => {
                restore.restore();
                return Err(e).sys(|| "clone the container init".into());
            }
        };
        let pid = match forked {
            sys::Forked::Child => {
                drop(parent_sock);
                let bind_sources = bind_sources.map(|(_, init_end)| init_end);
                init::run(InitContext {
                    bundle: &bundle,
                    sync: child_sock,
                    start,
                    console,
                    preserve_fds: opts.preserve_fds,
                    seccomp,
                    no_pivot: opts.no_pivot,
                    session_keyring: (!opts.no_new_keyring).then(|| opts.id.to_string()),
                    cgroup_dir: cgroup.as_ref().map(|c| c.path().to_path_buf()),
                    has_runtime_hooks,
                    late_cgroupns,
                    bind_sources,
                })
            }
            sys::Forked::Parent(pid) => pid,
        };
        restore.restore();
        guard.pid = Some(pid);
        drop(child_sock);
        drop(console);

        if let (Some(cg), Some(res)) = (&cgroup, &scope_resources) {
            pelagos_cgroups::systemd::start_scope(
                cg.relative(),
                pid,
                &format!("pelagos container {}", opts.id),
                res,
            )?;
            guard.systemd_scope = Some(cg.relative().to_string());
            guard.cgroup = Some(cg.clone());
            cg.apply(res, skip_unavailable)?;
        }
        if ns.creates(LinuxNamespaceType::User) {
            write_id_maps(pid, &linux)?;
        }
        if let Some((runtime_end, init_end)) = bind_sources {
            drop(init_end);
            let mnt_ns = namespaces::open_ns(Path::new(&format!("/proc/{pid}/ns/mnt")))?;
            crate::userns::send_bind_sources(mounts, &bundle.dir, &mnt_ns, &runtime_end)?;
            // Closing our end tells the init that every source was sent.
        }
        if let Some(score) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
            fs::write(format!("/proc/{pid}/oom_score_adj"), score.to_string())
                .io(|| format!("set oomScoreAdj {score}"))?;
        }
        let pid_start_time = sys::process_start_time(pid).unwrap_or(0);
        let saved = SavedState {
            id: opts.id.clone(),
            pid,
            pid_start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: state::now_rfc3339_nano(),
            annotations,
            owner: String::new(),
            cgroup: cgroup
                .as_ref()
                .map(|c| c.relative().to_string())
                .unwrap_or_default(),
            cgroup_owned_levels: cgroup.as_ref().map(|c| c.owned_levels()).unwrap_or(0),
            systemd_scope,
            own_pid_ns: ns.creates(LinuxNamespaceType::Pid),
            started: false,
        };
        let state_json = state_json(&saved, Status::Creating);
        parent_sock.send_payload(Msg::Go, &state_json)?;

        let mut pty_master = None;
        loop {
            match parent_sock.recv_with_fd()? {
                (Msg::SeccompFd, Some(listener)) => {
                    crate::seccomp_agent::hand_over(seccomp.as_ref(), listener, pid, &state_json)?;
                }
                (Msg::RunHooks, _) => {
                    if let Some(h) = spec.hooks() {
                        #[allow(deprecated)]
                        if let Some(pre) = h.prestart() {
                            hooks::run_all(pre, &state_json)?;
                        }
                        if let Some(cr) = h.create_runtime() {
                            hooks::run_all(cr, &state_json)?;
                        }
                    }
                    parent_sock.send(Msg::HooksDone)?;
                }
                (Msg::Ready, _) => break,
                (other, _) => {
                    return Err(Error::Child(format!(
                        "sync protocol: unexpected {other:?} during create"
                    )))
                }
            }
        }
        if let Some(r) = pty_receiver {
            pty_master = Some(r.recv_console()?);
        }
        saved.save(&dir)?;
        if let Some(pf) = &opts.pid_file {
            write_pid_file(pf, pid)?;
        }
        guard.dir = None;
        guard.cgroup = None;
        guard.pid = None;
        guard.systemd_scope = None;
        Ok(Created {
            id: opts.id.clone(),
            pid,
            dir,
            sync: for_run.then_some(parent_sock),
            pty_master,
            saved,
            hooks: spec.hooks().clone(),
        })
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
            return Err(Error::Child(String::from_utf8_lossy(&failure).into_owned()));
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
            return Err(Error::NotRunning(id.to_string()));
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

/// The resources to apply: the config's, with device rules completed as runc does — the
/// user's rules, then the devices every container needs, then one allow rule per
/// `linux.devices` node (the eBPF filter takes the last matching rule). Any device not
/// allowed so is denied, also when the config lists no rules: safe by default.
pub fn effective_resources(
    resources: Option<&oci_spec::runtime::LinuxResources>,
    devices: &[oci_spec::runtime::LinuxDevice],
) -> oci_spec::runtime::LinuxResources {
    let mut res = resources.cloned().unwrap_or_default();
    let mut rules = res.devices().clone().unwrap_or_default();
    rules.extend(pelagos_cgroups::default_device_rules());
    // Fifos are not devices: the device controller has no say over them.
    rules.extend(
        devices
            .iter()
            .filter(|d| !matches!(d.typ(), oci_spec::runtime::LinuxDeviceType::P))
            .map(oci_spec::runtime::LinuxDeviceCgroup::from),
    );
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
/// still run in the runtime's.
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
