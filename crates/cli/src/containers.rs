//! Container commands: run, ps, rm, inspect, start, stop, restart, kill, wait, logs, exec,
//! pause, unpause, top, stats, commit. Thin: flags become the engine's typed requests, the
//! engine's views are printed as Docker prints them.

use std::io::Write;
use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use pelagos_engine::container::{self as verbs, start::StartOutcome};
use pelagos_model::protocol::{Attach, ExecSpec, WaitCondition};

use crate::cli::{
    Cli, CommitArgs, ExecArgs, InspectArgs, KillArgs, LogsArgs, NamesArgs, RmArgs, RunArgs,
    StatsArgs, StopArgs, TopArgs,
};
use crate::failure::Plain;
use crate::relay::{self, Ended, RelayOptions};
use crate::{engine, images};

/// Docker's short id (12 characters) unless `full`; ids shorter than that as they are.
fn display_id(id: &str, full: bool) -> &str {
    match id.get(..12) {
        Some(short) if !full => short,
        _ => id,
    }
}

/// The image to run, pulled as `--pull` says.
fn run_image(engine: &pelagos_engine::Engine, a: &RunArgs) -> Result<pelagos_image::ImageRecord> {
    match a.pull.as_str() {
        "always" => images::pull_image(
            engine,
            a.image(),
            a.platform.as_deref(),
            a.quiet,
            crate::progress::Out::Stderr,
        ),
        "missing" | "never" => match engine.images().get(a.image()) {
            Ok(image) => Ok(image),
            Err(_) if a.pull == "missing" => {
                if !a.quiet {
                    let _ = writeln!(
                        std::io::stderr(),
                        "Unable to find image '{}' locally",
                        pelagos_image::Reference::parse(a.image())
                            .map(|r| r.familiar())
                            .unwrap_or_else(|_| a.image().to_string())
                    );
                }
                images::pull_image(
                    engine,
                    a.image(),
                    a.platform.as_deref(),
                    a.quiet,
                    crate::progress::Out::Stderr,
                )
            }
            Err(e) => Err(e).context("--pull never"),
        },
        other => bail!("invalid --pull {other:?}: expected always, missing or never"),
    }
}

/// `create`: flags parsed and checked, the image pulled when missing, the container made
/// (not started); its id printed.
pub fn create(cli: &Cli, a: &RunArgs) -> Result<i32> {
    let (_, id) = create_container(cli, a)?;
    let _ = writeln!(std::io::stdout(), "{id}");
    Ok(0)
}

/// What `run` and `create` share: flags checked before anything is pulled or made.
fn create_container(cli: &Cli, a: &RunArgs) -> Result<(pelagos_engine::Engine, String)> {
    let request = crate::run_config::create_request(a)?;
    let engine = engine(cli)?;
    let request = verbs::create::with_defaults(&engine, request);
    verbs::create::validate(&request)?;
    let cidfile = a.cidfile.as_deref().map(CidFile::claim).transpose()?;
    let created = run_image(&engine, a)
        .and_then(|image| Ok(verbs::create::create(&engine, &image, request)?));
    let record = match (created, cidfile) {
        (Ok(record), Some(file)) => {
            file.write(record.id.as_ref())?;
            record
        }
        (Ok(record), None) => record,
        (Err(e), file) => {
            if let Some(file) = file {
                file.abandon();
            }
            return Err(e);
        }
    };
    Ok((engine, record.id.to_string()))
}

/// `attach`: the container's output (and our stdin unless `--no-stdin`, when it was created
/// with `-i`) until it exits or we detach; its exit code.
pub fn attach(cli: &Cli, a: &crate::cli::AttachArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let record = verbs::lookup(&engine, &a.container)?;
    let stdin = !a.no_stdin && record.config.open_stdin;
    let request = Attach {
        stdin,
        stdout: true,
        stderr: true,
        logs: false,
        detach_keys: a.detach_keys.clone(),
    };
    let mut client = match verbs::attach::attach(&engine, record.id.as_str(), request) {
        // Docker's CLI checks this itself, in these words.
        Err(e) if e.kind() == pelagos_model::ErrorKind::Conflict => {
            return Err(Plain::new(
                "You cannot attach to a stopped container, start it first",
                1,
            )
            .into())
        }
        other => other?,
    };
    let opts = RelayOptions {
        stdin,
        tty: record.config.tty,
        sig_proxy: a.sig_proxy,
    };
    match relay::relay_attached(&mut client, opts)? {
        Ended::Exited(code) => Ok(code),
        Ended::Detached => Ok(0),
    }
}

/// `update`: the flags parsed first (Docker's forms and errors), then each container changed;
/// the names printed, errors reported per container.
pub fn update(cli: &Cli, a: &crate::cli::UpdateArgs) -> Result<i32> {
    let change = update_config(a)?;
    if change.is_empty() {
        bail!("you must provide one or more flags when using this command");
    }
    let engine = engine(cli)?;
    let results = a
        .containers
        .iter()
        .map(|n| verbs::update::update(&engine, n, &change))
        .collect();
    Ok(report(&a.containers, results))
}

/// `update`'s flags as the typed change.
fn update_config(a: &crate::cli::UpdateArgs) -> Result<pelagos_model::config::UpdateConfig> {
    use pelagos_model::flags;
    let opt = |v: &Option<String>, f: &dyn Fn(&str) -> pelagos_model::Result<i64>| {
        v.as_deref().map(f).transpose()
    };
    let blkio_weight = match a.blkio_weight.as_deref() {
        None => None,
        Some(v) => Some(match v.parse::<u16>() {
            Ok(w) if w == 0 || (10..=1000).contains(&w) => w,
            _ => bail!(pelagos_model::Error::FlagValue {
                flag: "--blkio-weight".into(),
                value: v.into(),
                why: "Range of blkio weight is from 10 to 1000".into(),
            }),
        }),
    };
    Ok(pelagos_model::config::UpdateConfig {
        blkio_weight,
        cpu_shares: a.cpu_shares,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a
            .cpuset_cpus
            .as_deref()
            .map(|v| flags::cpuset("--cpuset-cpus", v))
            .transpose()?,
        cpuset_mems: a
            .cpuset_mems
            .as_deref()
            .map(|v| flags::cpuset("--cpuset-mems", v))
            .transpose()?,
        memory: opt(&a.memory, &flags::memory)?,
        memory_reservation: opt(&a.memory_reservation, &|v| {
            flags::bytes("--memory-reservation", v)
        })?,
        memory_swap: opt(&a.memory_swap, &flags::memory_swap)?,
        nano_cpus: opt(&a.cpus, &flags::cpus)?,
        pids_limit: a.pids_limit,
        restart_policy: a.restart.as_deref().map(flags::restart).transpose()?,
    })
}

/// `rename CONTAINER NEW_NAME`.
pub fn rename(cli: &Cli, a: &crate::cli::RenameArgs) -> Result<i32> {
    let engine = engine(cli)?;
    match verbs::rename::rename(&engine, &a.container, &a.new_name) {
        Ok(()) => Ok(0),
        // Docker's CLI adds its own line after the daemon's.
        Err(e) => Err(Plain::new(
            format!(
                "Error response from daemon: {e}\nError: failed to rename container named {}",
                a.container
            ),
            1,
        )
        .into()),
    }
}

/// `run`: flags are parsed and checked before anything is pulled or created; then create,
/// start (attached first in the foreground) and relay until the container exits.
pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32> {
    let (engine, id) = create_container(cli, a)?;
    let _ = std::io::stdout().flush();
    if a.detach {
        verbs::start::start(&engine, &id, None)?;
        let _ = writeln!(std::io::stdout(), "{id}");
        return Ok(0);
    }
    let opts = RelayOptions {
        stdin: a.interactive,
        tty: a.tty,
        sig_proxy: a.sig_proxy,
    };
    start_attached(&engine, &id, a.detach_keys.clone(), opts)
}

/// Starts `id` attached (output, and stdin when `opts.stdin`) and relays until it exits or
/// the client detaches; the container's exit code (0 after a detach).
fn start_attached(
    engine: &pelagos_engine::Engine,
    id: &str,
    detach_keys: Option<String>,
    opts: RelayOptions,
) -> Result<i32> {
    let attach = Attach {
        stdin: opts.stdin,
        stdout: true,
        stderr: true,
        logs: false,
        detach_keys,
    };
    let mut client = match verbs::start::start(engine, id, Some(attach.clone()))? {
        StartOutcome::Started(started) => started.client,
        // Docker's `start -a` of a running container attaches to it.
        StartOutcome::AlreadyRunning => verbs::attach::attach(engine, id, attach)?,
    };
    match relay::relay_attached(&mut client, opts)? {
        Ended::Exited(code) => Ok(code),
        Ended::Detached => Ok(0),
    }
}

/// `--cidfile`: claimed (made, empty) before the container is created, so that two runs
/// cannot share it; it gets the full id once created and stays after the container ends, as
/// in Docker.
struct CidFile {
    path: std::path::PathBuf,
    file: std::fs::File,
}

impl CidFile {
    fn claim(path: &std::path::Path) -> Result<CidFile> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                    "container ID file found, make sure the other container isn't running or \
                     delete {}",
                    path.display()
                ),
                _ => anyhow::Error::new(e).context(format!("create --cidfile {}", path.display())),
            })?;
        Ok(CidFile {
            path: path.to_path_buf(),
            file,
        })
    }

    fn write(mut self, id: &str) -> Result<()> {
        self.file
            .write_all(id.as_bytes())
            .with_context(|| format!("write the container id to {}", self.path.display()))
    }

    /// The container was not created: the file goes (Docker removes an unwritten one).
    fn abandon(self) {
        drop(self.file);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Prints each name whose result is Ok (Docker's output) and each error on stderr; 1 if any
/// failed.
fn report(names: &[String], results: Vec<pelagos_engine::Result<()>>) -> i32 {
    let mut failed = false;
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(()) => {
                let _ = writeln!(std::io::stdout(), "{n}");
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    i32::from(failed)
}

pub fn remove(cli: &Cli, a: &RmArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let results = verbs::remove::remove_many(&engine, &a.containers, a.force, a.volumes);
    // Docker's `rm -f` still says a container does not exist, but does not fail for it.
    let only_missing = results.iter().all(|r| match r {
        Err(e) => a.force && e.kind() == pelagos_model::ErrorKind::NotFound,
        Ok(()) => true,
    });
    let code = report(&a.containers, results);
    Ok(if only_missing { 0 } else { code })
}

/// `inspect`: containers first, then images, as Docker resolves names.
pub fn inspect(cli: &Cli, a: &InspectArgs) -> Result<i32> {
    let engine = engine(cli)?;
    // `container inspect` looks at containers only, and says so as the daemon does.
    let containers_only = matches!(cli.command, crate::cli::Command::Container(_));
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match verbs::inspect::inspect(&engine, name) {
            Ok(v) => values.push(v),
            Err(e) if containers_only => errors.push(format!("Error response from daemon: {e}")),
            Err(_) => match engine.images().get(name) {
                Ok(image) => values.push(images::inspect_value(&engine, &image)?),
                Err(_) => errors.push(format!("Error: No such object: {name}")),
            },
        }
    }
    images::print_inspect(&values, a.format.as_deref())?;
    if !errors.is_empty() {
        return Err(Plain::new(errors.join("\n"), 1).into());
    }
    Ok(0)
}

pub fn commit(cli: &Cli, a: &CommitArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let tag = a
        .reference
        .as_deref()
        .map(pelagos_image::Reference::parse)
        .transpose()?;
    let image = pelagos_engine::commit::commit(
        &engine,
        &a.container,
        &pelagos_engine::commit::CommitOptions {
            tag,
            changes: a.changes.clone(),
            message: a.message.clone(),
            author: a.author.clone(),
        },
    )?;
    let _ = writeln!(std::io::stdout(), "{}", image.id);
    Ok(0)
}

pub fn start(cli: &Cli, a: &crate::cli::StartArgs) -> Result<i32> {
    let engine = engine(cli)?;
    if a.attach || a.interactive {
        let [name] = a.containers.as_slice() else {
            bail!("you cannot start and attach multiple containers at once");
        };
        let record = verbs::lookup(&engine, name)?;
        let opts = RelayOptions {
            stdin: a.interactive && record.config.open_stdin,
            tty: record.config.tty,
            sig_proxy: true,
        };
        return start_attached(&engine, record.id.as_str(), a.detach_keys.clone(), opts);
    }
    let results: Vec<_> = a
        .containers
        .iter()
        .map(|n| verbs::start::start(&engine, n, None).map(|_| ()))
        .collect();
    let failed: Vec<&str> = a
        .containers
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| n.as_str())
        .collect();
    report(&a.containers, results);
    if failed.is_empty() {
        return Ok(0);
    }
    // Docker's CLI sums up after the daemon's errors.
    let summary = format!("Error: failed to start containers: {}", failed.join(", "));
    Err(Plain::new(summary, 1).into())
}

pub fn stop(cli: &Cli, a: &StopArgs, restart: bool) -> Result<i32> {
    let engine = engine(cli)?;
    let timeout = a.time.map(i64::from);
    let mut results = match restart {
        // A restart keeps an AutoRemove container (as Docker).
        true => verbs::for_each_parallel(&a.containers, |n| {
            verbs::stop::stop_for_restart(&engine, n, None, timeout)
        }),
        false => verbs::stop::stop_many(&engine, &a.containers, timeout),
    };
    if restart {
        for (n, r) in a.containers.iter().zip(results.iter_mut()) {
            if r.is_ok() {
                *r = verbs::start::start(&engine, n, None).map(|_| ());
            }
            if let (Ok(()), Ok(record)) = (&r, verbs::lookup(&engine, n)) {
                engine.emit(&pelagos_model::events::Event::container(&record, "restart"));
            }
        }
    }
    Ok(report(&a.containers, results))
}

pub fn kill(cli: &Cli, a: &KillArgs) -> Result<i32> {
    let signal = verbs::kill::parse_signal(&a.signal)?;
    let engine = engine(cli)?;
    let results = verbs::kill::kill_many(&engine, &a.containers, signal);
    Ok(report(&a.containers, results))
}

pub fn wait(cli: &Cli, a: &NamesArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut failed = false;
    for n in &a.containers {
        match verbs::wait::wait(&engine, n, WaitCondition::NotRunning) {
            Ok(code) => {
                let _ = writeln!(std::io::stdout(), "{code}");
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn logs(cli: &Cli, a: &LogsArgs) -> Result<i32> {
    let tail = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: expected a number or all"))?,
        ),
    };
    let engine = engine(cli)?;
    let now = std::time::SystemTime::now();
    let time = |v: &Option<String>| {
        v.as_deref()
            .map(|t| pelagos_model::timestamp::parse(t, now))
    };
    let options = pelagos_model::logs::ReadOptions {
        tail,
        since: time(&a.since).transpose()?,
        until: time(&a.until).transpose()?,
        stdout: true,
        stderr: true,
    };
    // Docker's `--details`: the attributes, query-escaped, before every line.
    let details = a
        .details
        .then(|| verbs::logs::attrs(&engine, &a.container))
        .transpose()?
        .map(verbs::logs::details_prefix);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    verbs::logs::logs(&engine, &a.container, &options, a.follow, &mut |e| {
        let out: &mut dyn Write = match e.stream {
            pelagos_model::logs::Stream::Stderr => &mut stderr,
            _ => &mut stdout,
        };
        if a.timestamps {
            write!(out, "{} ", humantime::format_rfc3339_nanos(e.time))?;
        }
        if let Some(prefix) = &details {
            out.write_all(prefix.as_bytes())?;
        }
        out.write_all(&e.bytes)?;
        out.flush()
    })?;
    Ok(0)
}

pub fn exec(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    let (container, cmd) = a
        .container_and_command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("exec needs a container and a command"))?;
    let engine = engine(cli)?;
    let spec = ExecSpec {
        cmd: cmd.to_vec(),
        env: a.env.clone(),
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        attach_stdin: a.interactive,
        privileged: a.privileged,
        detach: a.detach,
        console_size: if a.tty { relay::window_size() } else { None },
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let mut stdio = Vec::new();
    if !a.tty && !a.detach {
        if a.interactive {
            stdio.push(stdin.as_fd());
        }
        stdio.push(stdout.as_fd());
        stdio.push(stderr.as_fd());
    }
    let mut session = verbs::exec::exec(&engine, container, spec, &stdio)?;
    if a.detach {
        return Ok(0);
    }
    if let Some(master) = session.pty.take() {
        let ended = (!session.ended_already()).then(|| session.socket().as_fd());
        relay::relay_pty(master, ended, a.interactive)?;
    }
    Ok(session.wait()?)
}

pub fn pause(cli: &Cli, a: &NamesArgs, freeze: bool) -> Result<i32> {
    let engine = engine(cli)?;
    let results = a
        .containers
        .iter()
        .map(|n| verbs::pause::pause(&engine, n, freeze))
        .collect();
    Ok(report(&a.containers, results))
}

pub fn top(cli: &Cli, a: &TopArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let top = verbs::top::top(&engine, &a.container, &a.ps_args.join(" "))?;
    let mut rows = vec![top.titles];
    rows.extend(top.processes);
    std::io::stdout()
        .lock()
        // `docker top`'s tabwriter has a minimum width of 20.
        .write_all(crate::format::table_text(&rows, 20).as_bytes())?;
    Ok(0)
}

/// One `stats` row from two samples `interval` apart (CPU % needs a delta).
fn stats_row(
    engine: &pelagos_engine::Engine,
    name: &str,
    interval: std::time::Duration,
) -> anyhow::Result<serde_json::Value> {
    let (record, first) = pelagos_engine::container::stats::stats(engine, name)?;
    std::thread::sleep(interval);
    let (_, second) = pelagos_engine::container::stats::stats(engine, name)?;
    let usage = |s: &pelagos_cgroups::Stats| s.cpu.as_ref().map(|c| c.usage_usec).unwrap_or(0);
    let cpu = (usage(&second).saturating_sub(usage(&first))) as f64
        / interval.as_micros().max(1) as f64
        * 100.0;
    let mem = second.memory.as_ref().and_then(|m| m.current);
    let limit = second.memory.as_ref().and_then(|m| m.limit);
    let pids = second.pids.as_ref().map(|p| p.current);
    let human = |v: Option<u64>| {
        v.map(crate::format::bytes_size)
            .unwrap_or_else(|| "--".into())
    };
    Ok(serde_json::json!({
        "ID": display_id(&record.id, false),
        "Name": record.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human(mem), limit.map(crate::format::bytes_size).unwrap_or_else(|| "unlimited".into())),
        "MemPerc": match (mem, limit) {
            (Some(m), Some(l)) if l > 0 => format!("{:.2}%", m as f64 / l as f64 * 100.0),
            _ => "--".into(),
        },
        "PIDs": pids.map(|p| p.to_string()).unwrap_or_else(|| "--".into()),
    }))
}

pub fn stats(cli: &Cli, a: &StatsArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let names: Vec<String> = if a.containers.is_empty() {
        pelagos_engine::container::list::list(&engine, false)?
            .into_iter()
            .map(|r| r.id)
            .collect()
    } else {
        a.containers.clone()
    };
    loop {
        let interval = std::time::Duration::from_millis(if a.no_stream { 200 } else { 1000 });
        let mut rows = Vec::new();
        for n in &names {
            rows.push(stats_row(&engine, n, interval / names.len().max(1) as u32)?);
        }
        match a.format.as_deref() {
            Some("json") => {
                for r in &rows {
                    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(r)?);
                }
            }
            Some(t) if t != "table" => {
                let text = crate::format::format_rows(t, &rows, crate::format::headers::STATS)?;
                let _ = write!(std::io::stdout(), "{text}");
            }
            _ => {
                if !a.no_stream && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    let _ = write!(std::io::stdout(), "\x1b[2J\x1b[H");
                }
                let mut table = vec![[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "PIDS",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
                for r in &rows {
                    let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                    table.push(vec![
                        s("ID"),
                        s("Name"),
                        s("CPUPerc"),
                        s("MemUsage"),
                        s("MemPerc"),
                        s("PIDs"),
                    ]);
                }
                images::print_table(&table);
            }
        }
        if a.no_stream || names.is_empty() {
            return Ok(0);
        }
    }
}
