//! One function per subcommand, each a thin mapping of flags onto the library.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{bail, Context, Result};
use pelagos_container::{
    signal::parse_signal, wait::wait_foreground, CgroupManager, ContainerId, CreateOptions,
    ExecOptions, Runtime, Status,
};

use crate::cli::{Cli, Command, CreateFlags};
use crate::log::Logger;
use crate::node_config::NodeSettings;

pub fn dispatch(cli: &Cli, log: &mut Logger) -> Result<i32> {
    let rt = Runtime::new(&cli.root);
    let Some(cmd) = &cli.command else {
        bail!("no command given; see pelagos-runtime --help");
    };
    match cmd {
        Command::Create(a) => {
            let opts = create_options(cli, &a.flags, container_id(&a.id)?)?;
            let created = rt.create(&opts)?;
            send_pidfd(a.flags.pidfd_socket.as_deref(), created.pid)?;
            Ok(0)
        }
        Command::Start(a) => {
            rt.start(&container_id(&a.id)?)?;
            Ok(0)
        }
        Command::State(a) => {
            outln!("{}", rt.state(&container_id(&a.id)?)?);
            Ok(0)
        }
        Command::Kill(a) => {
            let id = container_id(&a.id)?;
            let sig = parse_signal(&a.signal)?;
            rt.kill(&id, sig, a.all)?;
            Ok(0)
        }
        Command::Delete(a) => {
            rt.delete(&container_id(&a.id)?, a.force)?;
            Ok(0)
        }
        Command::Run(a) => run(cli, &rt, a, log),
        Command::Exec(a) => exec(&rt, a),
        Command::List(a) => list(&rt, &a.format, a.quiet),
        Command::Ps(a) => ps(&rt, &container_id(&a.id)?, &a.format, &a.ps_args),
        Command::Pause(a) => {
            rt.pause(&container_id(&a.id)?)?;
            Ok(0)
        }
        Command::Resume(a) => {
            rt.resume(&container_id(&a.id)?)?;
            Ok(0)
        }
        Command::Update(a) => update(cli, &rt, a),
        Command::Events(a) => events(&rt, a),
        Command::Features => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&pelagos_container::features::features())?
            );
            Ok(0)
        }
        Command::Spec(a) => spec(a),
        Command::Checkpoint(_) | Command::Restore(_) => {
            bail!("checkpoint/restore is not supported by pelagos-runtime yet")
        }
    }
}

fn create_options(cli: &Cli, f: &CreateFlags, id: ContainerId) -> Result<CreateOptions> {
    let cgroup_manager = match cli.cgroup_manager.as_deref() {
        None if cli.systemd_cgroup => CgroupManager::Systemd,
        None | Some("cgroupfs") => CgroupManager::Cgroupfs,
        Some("systemd") => CgroupManager::Systemd,
        Some("disabled") => CgroupManager::Disabled,
        Some(other) => bail!("unknown --cgroup-manager {other:?}: cgroupfs, systemd or disabled"),
    };
    if f.preserve_fds < 0 {
        bail!("--preserve-fds must not be negative");
    }
    // systemd socket activation: LISTEN_FDS more descriptors after 3, meant for us when
    // LISTEN_PID names this process (or is absent). The container's process sees them as its
    // own: LISTEN_FDS=N and LISTEN_PID=1, as runc passes them.
    let listen_pid_ok = std::env::var("LISTEN_PID")
        .map(|p| p == std::process::id().to_string())
        .unwrap_or(true);
    let listen_fds: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &i32| *n > 0 && listen_pid_ok)
        .unwrap_or(0);
    let extra_env = if listen_fds > 0 {
        vec![
            format!("LISTEN_FDS={listen_fds}"),
            "LISTEN_PID=1".to_string(),
        ]
    } else {
        Vec::new()
    };
    let node = NodeSettings::read(&cli.config_file)?;
    Ok(CreateOptions {
        id,
        bundle: f.bundle.clone(),
        config: f.config.clone(),
        console_socket: f.console_socket.clone(),
        pid_file: f.pid_file.clone(),
        no_pivot: f.no_pivot,
        preserve_fds: f.preserve_fds + listen_fds,
        extra_env,
        cgroup_manager,
        detach: false,
        no_new_keyring: f.no_new_keyring,
        seccomp_cache: None,
        // runc sets none: the container outlives `pelagos-runtime run`'s process only when
        // that process is killed outright, as with runc.
        parent_death_signal: None,
        skip_unavailable_default: node.cgroup_skip_unavailable,
    })
}

fn run(cli: &Cli, rt: &Runtime, a: &crate::cli::RunArgs, log: &mut Logger) -> Result<i32> {
    let mut opts = create_options(cli, &a.flags, container_id(&a.id)?)?;
    opts.detach = a.detach;
    if !a.detach && !a.no_subreaper {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    let mut created = rt.create_for_run(&opts)?;
    send_pidfd(a.flags.pidfd_socket.as_deref(), created.pid)?;
    if let Err(e) = rt.start_created(&mut created) {
        let _ = rt.delete_created(created);
        return Err(e.into());
    }
    if a.detach {
        return Ok(0);
    }
    let code = wait_foreground(created.pid, created.pty_master.take())?;
    if !a.keep {
        if let Err(e) = rt.delete_created(created) {
            log.warn(&format!("delete after run: {e}"));
        }
    }
    Ok(code)
}

fn exec(rt: &Runtime, a: &crate::cli::ExecArgs) -> Result<i32> {
    let id = container_id(&a.id)?;
    let spec = rt.load_config(&id).map_err(|e| match e {
        pelagos_container::Error::Io { .. } => anyhow::anyhow!("container {id} does not exist"),
        e => e.into(),
    })?;
    let process = crate::process_flags::exec_process(a, &spec)?;
    if process.terminal().unwrap_or(false) && a.detach && a.console_socket.is_none() {
        bail!("cannot allocate a tty when exec detaches without --console-socket");
    }
    let opts = ExecOptions {
        process,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        sub_cgroup: a.cgroup.clone(),
        ignore_paused: a.ignore_paused,
        parent_death_signal: None,
        seccomp_cache: None,
    };
    let mut execed = rt.exec(&id, &opts)?;
    send_pidfd(a.pidfd_socket.as_deref(), execed.pid)?;
    if a.detach {
        return Ok(0);
    }
    Ok(wait_foreground(execed.pid, execed.pty_master.take())?)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let all = rt.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for (s, _) in &all {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let items: Vec<serde_json::Value> = all
                .iter()
                .map(|(s, st)| {
                    serde_json::json!({
                        "ociVersion": pelagos_container::OCI_VERSION,
                        "id": s.id,
                        "pid": if *st == Status::Stopped { 0 } else { s.pid },
                        "status": st.to_string(),
                        "bundle": s.bundle,
                        "rootfs": s.rootfs,
                        "created": s.created,
                        "annotations": s.annotations,
                        "owner": s.owner,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&items)?)?;
        }
        "table" => {
            writeln!(
                out,
                "{:<12} {:<10} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            )?;
            for (s, st) in &all {
                let pid = if *st == Status::Stopped { 0 } else { s.pid };
                writeln!(
                    out,
                    "{:<12} {:<10} {:<10} {:<40} {:<31} {}",
                    s.id,
                    pid,
                    st,
                    s.bundle.display(),
                    s.created,
                    if s.owner.is_empty() { "root" } else { &s.owner }
                )?;
            }
        }
        other => bail!("invalid --format {other:?}: table or json"),
    }
    Ok(0)
}

fn ps(rt: &Runtime, id: &ContainerId, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = rt.pids(id)?;
    match format {
        "json" => outln!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("ps output has no PID column")?;
            outln!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    outln!("{line}");
                }
            }
        }
        other => bail!("invalid --format {other:?}: table or json"),
    }
    Ok(0)
}

fn update(cli: &Cli, rt: &Runtime, a: &crate::cli::UpdateArgs) -> Result<i32> {
    use oci_spec::runtime::LinuxResources;
    let id = container_id(&a.id)?;
    let mut res: LinuxResources = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            serde_json::from_reader(std::io::stdin()).context("invalid resources JSON on stdin")?
        }
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("read {}", p.display()))?,
        )
        .with_context(|| format!("invalid resources JSON {}", p.display()))?,
        None => LinuxResources::default(),
    };
    let mut v = serde_json::to_value(&res)?;
    let set = |v: &mut serde_json::Value, section: &str, key: &str, val: serde_json::Value| {
        if let Some(obj) = v.as_object_mut() {
            let s = obj.entry(section).or_insert_with(|| serde_json::json!({}));
            if let Some(so) = s.as_object_mut() {
                so.insert(key.to_string(), val);
            }
        }
    };
    if let Some(m) = &a.memory {
        set(&mut v, "memory", "limit", parse_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_reservation {
        set(&mut v, "memory", "reservation", parse_bytes(m)?.into());
    }
    if let Some(m) = &a.memory_swap {
        set(&mut v, "memory", "swap", parse_bytes(m)?.into());
    }
    if let Some(x) = a.cpu_shares {
        set(&mut v, "cpu", "shares", x.into());
    }
    if let Some(x) = a.cpu_quota {
        set(&mut v, "cpu", "quota", x.into());
    }
    if let Some(x) = a.cpu_period {
        set(&mut v, "cpu", "period", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&mut v, "cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set(&mut v, "cpu", "mems", x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        set(&mut v, "pids", "limit", x.into());
    }
    if let Some(x) = a.blkio_weight {
        set(&mut v, "blockIO", "weight", x.into());
    }
    res = serde_json::from_value(v).context("invalid resource values")?;
    let saved = rt.load(&id)?;
    if rt.status(&saved) == Status::Stopped {
        bail!("container not running: {id}");
    }
    let cg = rt.cgroup_of(&saved)?;
    if res.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        // New device rules replace the filter: keep the defaults and the config's devices.
        let spec = rt.load_config(&id)?;
        let devices = spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default();
        res = pelagos_container::container::effective_resources(Some(&res), &devices);
    }
    let node = NodeSettings::read(&cli.config_file)?;
    let skip = pelagos_container::annotations::skip_unavailable(
        Some(&saved.annotations),
        node.cgroup_skip_unavailable,
    );
    for w in cg.check_resources(&res, skip)? {
        eprintln!("warning: {w}");
    }
    cg.apply(&res, skip)?;
    Ok(0)
}

fn events(rt: &Runtime, a: &crate::cli::EventsArgs) -> Result<i32> {
    let id = container_id(&a.id)?;
    let interval = parse_duration(&a.interval)?;
    let mut last_oom = None;
    loop {
        let saved = rt.load(&id)?;
        if rt.status(&saved) == Status::Stopped {
            bail!("container not running: {id}");
        }
        let cg = rt.cgroup_of(&saved)?;
        let stats = cg.stats()?;
        outln!(
            "{}",
            serde_json::json!({"type": "stats", "id": id.as_str(), "data": stats})
        );
        if a.stats {
            return Ok(0);
        }
        let oom = cg.oom_kill_count().ok();
        if last_oom.is_some() && oom > last_oom {
            outln!("{}", serde_json::json!({"type": "oom", "id": id.as_str()}));
        }
        last_oom = oom;
        std::thread::sleep(interval);
    }
}

fn spec(a: &crate::cli::SpecArgs) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("file {} exists: remove it first", path.display());
    }
    let mut spec = if a.rootless.as_deref().is_some_and(|v| v != "false") {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    if let Some(p) = spec.process_mut() {
        p.set_terminal(Some(true));
    }
    spec.set_hostname(Some("pelagos".into()));
    spec.set_version(pelagos_container::OCI_VERSION.into());
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

/// The id argument of a verb, checked before any path is built from it (runc: `invalid id
/// format`); ids that are not UTF-8 break the rule too.
fn container_id(raw: &OsStr) -> Result<ContainerId> {
    Ok(ContainerId::parse_os(raw)?)
}

fn send_pidfd(socket: Option<&Path>, pid: i32) -> Result<()> {
    let Some(path) = socket else { return Ok(()) };
    let pidfd = pelagos_container::sys::pidfd_open(pid).context("pidfd_open")?;
    let sock = std::os::unix::net::UnixStream::connect(path)
        .with_context(|| format!("connect to pidfd socket {}", path.display()))?;
    pelagos_seccomp::send_fd(&sock, &pidfd, b"pidfd").context("send pidfd")?;
    let _ = sock.as_raw_fd();
    Ok(())
}

fn parse_bytes(text: &str) -> Result<i64> {
    pelagos_cgroups::parse_size(text).ok_or_else(|| anyhow::anyhow!("invalid size {text:?}"))
}

fn parse_duration(text: &str) -> Result<std::time::Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid interval {text:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => bail!("invalid interval {text:?}"),
    };
    if secs <= 0.0 {
        bail!("invalid interval {text:?}");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("4m").unwrap(), 4 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12q").is_err());
        assert_eq!(parse_duration("5s").unwrap().as_secs(), 5);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("0s").is_err());
    }
}
