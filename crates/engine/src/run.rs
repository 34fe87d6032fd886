//! Running a container from an image in the foreground: record, overlay root filesystem,
//! /etc files, spec with Docker's defaults, the runtime core's create/start/wait/delete, and
//! on every way out the mount undone and (with `--rm`) everything removed.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::Config as ImageConfig;
use pelagos_container::{CgroupManager, ContainerId, CreateOptions};
use pelagos_image::ImageRecord;

use crate::containers::{new_container_id, now_rfc3339, ContainerRecord};
use crate::error::{Error, Result};
use crate::spec::{self, EtcFiles, NetworkMode, SpecInput, SpecOptions};
use crate::{overlay, user, Engine};

/// A `docker run`, kept in the container's record so that `start` can run it again.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRequest {
    /// The image as the user named it (recorded).
    pub image_name: String,
    /// `--name`.
    pub name: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `--rm`.
    pub remove: bool,
    /// `-i`: keep our stdin for the container (otherwise it reads /dev/null).
    pub interactive: bool,
    /// Everything that shapes the spec.
    pub spec: SpecOptions,
    /// `--restart` (detached containers).
    #[serde(default)]
    pub restart: Option<String>,
}

/// Undoes a half-made container on every exit path.
struct Cleanup<'a> {
    engine: &'a Engine,
    id: ContainerId,
    rootfs: PathBuf,
    remove: bool,
    /// Anonymous volumes made for this container: removed with it (`--rm`, or a failed start).
    anonymous_volumes: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = overlay::unmount(&self.rootfs);
        if self.remove {
            let _ = self.engine.containers().remove(&self.id);
            for v in &self.anonymous_volumes {
                let _ = self.engine.volumes().remove(v, true, &|_| false);
            }
        }
    }
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}

/// Runs `image` as described by `req`, waits for it and returns its exit code (128+signal
/// when killed). Must be called from a single-threaded process (see `pelagos_container`).
pub fn run_foreground(engine: &Engine, image: &ImageRecord, req: &RunRequest) -> Result<i32> {
    // A Ctrl-C or SIGTERM while the container is being set up must not kill us between the
    // overlay mount and the cleanup: hold such signals until the wait, which forwards them to
    // the container (whose init unblocks every signal before it execs).
    hold_termination_signals()?;
    let config = engine.images().config(image)?;
    let record = new_record(engine, image, config.config().as_ref(), req)?;
    if !req.interactive {
        stdin_from_dev_null()?;
    }
    let mut launched = launch(engine, image, config.config().as_ref(), record, true)?;
    let pty = launched.created.pty_master.take();
    let waited = pelagos_container::wait::wait_foreground(launched.created.pid, pty);
    finish(engine, launched, waited)
}

/// Makes the record of a new container (its name reserved, the image's layers held).
pub(crate) fn new_record(
    engine: &Engine,
    image: &ImageRecord,
    image_config: Option<&ImageConfig>,
    req: &RunRequest,
) -> Result<ContainerRecord> {
    // Until the container's record names the image, a prune could take its layers.
    let _lease = engine.images().lease()?;
    let command = spec::command_line(image_config, &req.spec)?;
    engine.containers().create(
        ContainerRecord {
            id: new_container_id()?,
            name: String::new(),
            image: req.image_name.clone(),
            image_id: image.id.to_string(),
            command,
            created: now_rfc3339(),
            state: "created".into(),
            exit_code: None,
            finished: None,
            auto_remove: req.remove,
            stop_signal: image_config.and_then(|c| c.stop_signal().clone()),
            volumes: Vec::new(),
            anonymous_volumes: Vec::new(),
            run: Some(req.clone()),
            volumes_prepared: false,
            started: None,
            monitor_pid: None,
            stop_requested: false,
            restart_count: 0,
        },
        req.name.as_deref(),
    )
}

/// A started container and what undoes it.
pub(crate) struct Launched<'a> {
    pub(crate) created: pelagos_container::Created,
    pub(crate) record: ContainerRecord,
    cleanup: Cleanup<'a>,
}

/// Mounts the root filesystem, writes the /etc files, builds the spec and creates and starts
/// the container with the caller's stdio. `is_new`: a failure removes the record too (a
/// restarted container keeps it).
pub(crate) fn launch<'a>(
    engine: &'a Engine,
    image: &ImageRecord,
    image_config: Option<&ImageConfig>,
    record: ContainerRecord,
    is_new: bool,
) -> Result<Launched<'a>> {
    let id = record.id.clone();
    let req = record.run.clone().ok_or_else(|| {
        Error::InvalidOption(format!("container {} has no run options", record.name))
    })?;
    let dir = engine.containers().dir_of(&id);
    let rootfs = dir.join("rootfs");
    let mut cleanup = Cleanup {
        engine,
        id: id.clone(),
        rootfs: rootfs.clone(),
        // Until the container has run, a failure removes everything whatever --rm says.
        remove: is_new,
        anonymous_volumes: Vec::new(),
    };

    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [&upper, &work, &rootfs] {
        mkdir_existing_ok(d)?;
    }
    let mut lowers = engine.images().lowerdirs(image)?;
    if lowers.is_empty() {
        let empty = dir.join("empty");
        mkdir_existing_ok(&empty)?;
        lowers.push(empty.to_string_lossy().into_owned());
    }
    overlay::mount_overlay(
        &engine.images().layers_dir(),
        &lowers,
        &upper,
        &work,
        &rootfs,
        req.remove,
    )?;

    let hostname = match (&req.spec.hostname, req.spec.network) {
        (Some(h), _) => h.clone(),
        (None, NetworkMode::Host) => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| short_id(&id)),
        (None, NetworkMode::None) => short_id(&id),
    };
    let (hosts, hostname_file, resolv) = (
        dir.join("hosts"),
        dir.join("hostname"),
        dir.join("resolv.conf"),
    );
    let hosts_text = match req.spec.network {
        NetworkMode::Host => fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS.into()),
        NetworkMode::None => HOSTS.to_string(),
    };
    write(&hosts, &hosts_text)?;
    write(&hostname_file, &format!("{hostname}\n"))?;
    write(
        &resolv,
        &fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    )?;

    let user_spec = req.user.clone().unwrap_or_else(|| {
        image_config
            .and_then(|c| c.user().clone())
            .unwrap_or_default()
    });
    let resolved_user = user::resolve(&rootfs, &user_spec)?;
    let cwd = req
        .spec
        .workdir
        .clone()
        .or_else(|| image_config.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    // dockerd creates a missing working directory owned by root, whoever the user is.
    user::ensure_workdir(&rootfs, &cwd, &user::ResolvedUser::default())?;

    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "io.pelagos.container.name".into(),
        record.name.clone().into(),
    );
    annotations.insert("io.pelagos.image".into(), image.id.to_string().into());
    let cgroups_path = format!(
        "{}/{}",
        engine.options.cgroup_parent.trim_end_matches('/'),
        id
    );
    // Named and anonymous volumes become bind mounts of their directories (filled from the
    // image on first use); the image's VOLUMEs get anonymous ones, as in Docker. Done once:
    // a restarted container finds its volumes resolved in its record.
    let mut record = record;
    if !record.volumes_prepared {
        let mut spec_opts = req.spec.clone();
        let image_volumes: Vec<String> = image_config
            .and_then(|c| c.volumes().clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let used = prepare_volumes(engine, &rootfs, &mut spec_opts, &image_volumes)?;
        cleanup.anonymous_volumes = used.anonymous.clone();
        record.volumes = used.all;
        record.anonymous_volumes = used.anonymous;
        record.volumes_prepared = true;
        let mut resolved = req.clone();
        resolved.spec = spec_opts;
        record.run = Some(resolved);
        // Volumes in use must be on record before anything mounts them (a `volume prune` is
        // not to take them); without volumes the write waits for the "running" one below.
        if !record.volumes.is_empty() {
            engine.containers().update(&record)?;
        }
    }
    let spec_opts = record
        .run
        .as_ref()
        .map(|r| r.spec.clone())
        .unwrap_or_default();
    let oci = spec::build(
        &SpecInput {
            rootfs: &rootfs,
            image: image_config,
            user: &resolved_user,
            hostname: &hostname,
            cwd: &cwd,
            etc: EtcFiles {
                hosts: &hosts,
                hostname: &hostname_file,
                resolv_conf: &resolv,
            },
            cgroups_path: &cgroups_path,
            annotations,
        },
        &spec_opts,
    )?;

    let runtime = engine.runtime();
    let opts = CreateOptions {
        cgroup_manager: CgroupManager::Cgroupfs,
        // Every container of an image gets the same Docker profile: compile it once.
        seccomp_cache: Some(engine.options.root.join("cache/seccomp")),
        ..CreateOptions::new(id.clone(), dir.clone())
    };
    let mut created = runtime
        .create_with_spec(&opts, oci, true)
        .map_err(unenforceable_as_flag)?;
    if let Err(e) = runtime.start_created(&mut created) {
        let _ = runtime.delete_created(created);
        return Err(e.into());
    }
    cleanup.remove = req.remove;
    cleanup.anonymous_volumes = record.anonymous_volumes.clone();
    let started = now_rfc3339();
    let restart_count = record.restart_count;
    let record = engine.containers().modify(&id, |r| {
        r.volumes = record.volumes.clone();
        r.anonymous_volumes = record.anonymous_volumes.clone();
        r.volumes_prepared = record.volumes_prepared;
        r.run = record.run.clone();
        r.state = "running".into();
        r.exit_code = None;
        r.finished = None;
        r.started = Some(started);
        r.restart_count = restart_count;
    })?;
    Ok(Launched {
        created,
        record,
        cleanup,
    })
}

/// After the container's process ended: delete it from the runtime, record how it ended (or
/// remove it with `--rm`), unmount.
pub(crate) fn finish(
    engine: &Engine,
    launched: Launched<'_>,
    waited: pelagos_container::Result<i32>,
) -> Result<i32> {
    let Launched {
        created,
        record,
        cleanup,
    } = launched;
    let deleted = engine.runtime().delete_created(created);
    let code = waited?;
    deleted?;
    if !record.auto_remove {
        let finished = now_rfc3339();
        engine.containers().modify(&record.id, |r| {
            r.state = "exited".into();
            r.exit_code = Some(code);
            r.finished = Some(finished);
        })?;
    }
    drop(cleanup);
    Ok(code)
}

fn mkdir_existing_ok(path: &Path) -> Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io(format!("create {}", path.display()), e)),
    }
}

fn hold_termination_signals() -> Result<()> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| Error::io("block termination signals", e.into()))
}

/// The runtime's hint for a limit the host cannot enforce names an OCI annotation; a CLI user
/// asked with a flag, so name the flag instead.
fn unenforceable_as_flag(e: pelagos_container::Error) -> Error {
    let pelagos_container::Error::CgroupUnenforceable(
        pelagos_cgroups::CgroupError::ControllerUnavailable {
            controller,
            mount,
            offers,
            field,
        },
    ) = &e
    else {
        return e.into();
    };
    let flag = match field.trim_start_matches("linux.resources.") {
        "memory.limit" => "--memory",
        "memory.swap" => "--memory-swap",
        "cpu.quota" | "cpu.period" => "--cpus",
        "cpu.shares" => "--cpu-shares",
        "cpu.cpus" => "--cpuset-cpus",
        "pids.limit" => "--pids-limit",
        _ => return e.into(),
    };
    Error::InvalidOption(format!(
        "{flag} cannot be enforced on this host: its cgroup v2 tree ({}) has no \"{controller}\" \
         controller (it offers: {offers}); run without {flag}",
        mount.display()
    ))
}

/// The volumes a container uses.
struct UsedVolumes {
    all: Vec<String>,
    anonymous: Vec<String>,
}

/// Rewrites `-v NAME:/dst`, `-v /dst` and `--mount type=volume` into binds of volume
/// directories, creating (and copying up into) volumes as needed, plus anonymous volumes for
/// the image's VOLUME paths nobody mounted over.
fn prepare_volumes(
    engine: &Engine,
    rootfs: &Path,
    opts: &mut SpecOptions,
    image_volumes: &[String],
) -> Result<UsedVolumes> {
    let mut used = UsedVolumes {
        all: Vec::new(),
        anonymous: Vec::new(),
    };
    let attach = |name: Option<&str>, dest: &str, used: &mut UsedVolumes| -> Result<String> {
        let (v, new) = engine.volumes().create(name, Default::default())?;
        if new {
            crate::volumes::copy_up(rootfs, dest, &v.mountpoint)?;
        }
        if v.is_anonymous() {
            used.anonymous.push(v.name.clone());
        }
        used.all.push(v.name.clone());
        Ok(v.mountpoint.to_string_lossy().into_owned())
    };
    let mut rewritten = Vec::new();
    for spec in &opts.volumes {
        let parts: Vec<&str> = spec.split(':').collect();
        let out = match parts.as_slice() {
            [dest] if dest.starts_with('/') => format!("{}:{dest}", attach(None, dest, &mut used)?),
            [src, dest, rest @ ..] if !src.starts_with('/') && !src.is_empty() => {
                crate::volumes::validate_name(src).map_err(|_| {
                    Error::InvalidOption(format!(
                        "invalid -v {spec:?}: {src:?} is neither an absolute host path nor a \
                         volume name"
                    ))
                })?;
                let mut s = format!("{}:{dest}", attach(Some(src), dest, &mut used)?);
                for r in rest {
                    s.push(':');
                    s.push_str(r);
                }
                s
            }
            _ => spec.clone(),
        };
        rewritten.push(out);
    }
    opts.volumes = rewritten;
    let mut mounts = Vec::new();
    for m in &opts.mounts {
        if !m.split(',').any(|f| f == "type=volume") {
            mounts.push(m.clone());
            continue;
        }
        let (mut source, mut target, mut ro) = (None, None, false);
        for field in m.split(',') {
            let (k, v) = field.split_once('=').unwrap_or((field, ""));
            match k {
                "type" => {}
                "source" | "src" => source = Some(v),
                "target" | "destination" | "dst" => target = Some(v),
                "readonly" | "ro" => ro = matches!(v, "" | "true" | "1"),
                other => {
                    return Err(Error::InvalidOption(format!(
                        "invalid --mount {m:?}: unknown field {other:?} for a volume"
                    )))
                }
            }
        }
        let target = target.ok_or_else(|| {
            Error::InvalidOption(format!("invalid --mount {m:?}: target is required"))
        })?;
        let dir = attach(source.filter(|s| !s.is_empty()), target, &mut used)?;
        opts.volumes
            .push(format!("{dir}:{target}{}", if ro { ":ro" } else { "" }));
    }
    opts.mounts = mounts;
    // The image's VOLUMEs that no user mount covers.
    let covered = |dest: &str| {
        opts.volumes
            .iter()
            .any(|v| v.split(':').nth(1) == Some(dest))
            || opts.tmpfs.iter().any(|t| t.split(':').next() == Some(dest))
            || opts.mounts.iter().any(|m| {
                m.split(',').any(|f| {
                    f.split_once('=').is_some_and(|(k, v)| {
                        matches!(k, "target" | "destination" | "dst") && v == dest
                    })
                })
            })
    };
    let mut extra = Vec::new();
    for dest in image_volumes {
        let dest = dest.trim_end_matches('/');
        if !dest.starts_with('/') || covered(dest) {
            continue;
        }
        extra.push(format!("{}:{dest}", attach(None, dest, &mut used)?));
    }
    opts.volumes.extend(extra);
    Ok(used)
}

/// `/dev/null`, opened close-on-exec.
pub(crate) fn dev_null(flags: nix::fcntl::OFlag) -> Result<std::os::fd::OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::io("open /dev/null", e.into()))?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Docker gives a container (or an exec) without `-i` an empty stdin.
pub(crate) fn stdin_from_dev_null() -> Result<()> {
    let null = dev_null(nix::fcntl::OFlag::O_RDONLY)?;
    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0)
        .map_err(|e| Error::io("redirect stdin", e.into()))?;
    Ok(())
}

/// Docker's 12-character short id (the default hostname).
fn short_id(id: &ContainerId) -> String {
    id.get(..12).unwrap_or(id).to_string()
}

/// Removes a stopped container's record and files (`pelagos rm`); with `force` a container
/// whose runtime state still exists is killed and deleted first.
pub fn remove_container(
    engine: &Engine,
    name_or_id: &str,
    force: bool,
    remove_volumes: bool,
) -> Result<String> {
    let record = engine.containers().get(name_or_id)?;
    let runtime = engine.runtime();
    if engine.is_running(&record.id) {
        if !force {
            return Err(Error::ContainerRunning(record.name));
        }
        // Kill it and let whoever watches it (its monitor, or a foreground `run`) record the
        // end and clean up; a container with --rm is then gone already.
        crate::monitor::stop(engine, &record.id, std::time::Duration::ZERO)?;
        if matches!(
            engine.containers().get(&record.id),
            Err(Error::NoSuchContainer(_))
        ) {
            return Ok(record.id.into());
        }
    }
    if runtime.load(&record.id).is_ok() {
        runtime.delete(&record.id, true)?;
    }
    let rootfs = engine.containers().dir_of(&record.id).join("rootfs");
    overlay::unmount(&rootfs)?;
    engine.containers().remove(&record.id)?;
    if remove_volumes {
        for v in &record.anonymous_volumes {
            engine.volumes().remove(v, true, &|_| false)?;
        }
    }
    Ok(record.id.into())
}

/// `container prune`: removes every container that is not running (their anonymous volumes
/// stay, as in Docker). Returns the removed ids and the bytes their directories held.
pub fn prune_containers(engine: &Engine) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut bytes = 0;
    for r in engine.containers().list()? {
        let running = engine.is_running(&r.id);
        if running {
            continue;
        }
        bytes += crate::volumes::disk_usage(&engine.containers().dir_of(&r.id).join("upper"));
        removed.push(remove_container(engine, &r.id, false, false)?);
    }
    Ok((removed, bytes))
}
