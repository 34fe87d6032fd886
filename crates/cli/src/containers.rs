//! Container commands: run (foreground), ps, rm, inspect.

use std::io::Write;

use anyhow::{bail, Context, Result};
use pelagos_engine::run::{remove_container, run_foreground, RunRequest};
use pelagos_engine::spec::SpecOptions;
use serde_json::json;

use crate::cli::{
    Cli, CommitArgs, ExecArgs, InspectArgs, KillArgs, LogsArgs, NamesArgs, PsArgs, RmArgs, RunArgs,
    StatsArgs, StopArgs, TopArgs,
};
use crate::{engine, images};

/// `KEY=VALUE` lines of an env file (Docker's `--env-file`: `#` comments, blank lines, bare
/// `KEY` taken from our environment).
fn env_file(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read env file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Docker's short id (12 characters) unless `full`; ids shorter than that as they are.
fn display_id(id: &str, full: bool) -> &str {
    match id.get(..12) {
        Some(short) if !full => short,
        _ => id,
    }
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32> {
    if let Some(policy) = a.restart.as_deref() {
        let policy = pelagos_engine::monitor::RestartPolicy::parse(policy)?;
        if policy != pelagos_engine::monitor::RestartPolicy::No {
            if a.rm {
                bail!("conflicting options: --restart and --rm");
            }
            if !a.detach {
                bail!("--restart needs -d: only a detached container has a monitor to restart it");
            }
        }
    }
    let engine = engine(cli)?;
    let network = a.network.parse()?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(env_file(f)?);
    }
    env.extend(a.env.iter().cloned());
    let image = match a.pull.as_str() {
        "always" => images::pull_image(&engine, a.image(), a.platform.as_deref(), a.quiet)?,
        "missing" | "never" => match engine.images().get(a.image()) {
            Ok(image) => image,
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
                images::pull_image(&engine, a.image(), a.platform.as_deref(), a.quiet)?
            }
            Err(e) => return Err(e).context("--pull never"),
        },
        other => bail!("invalid --pull {other:?}: expected always, missing or never"),
    };
    let req = RunRequest {
        image_name: a.image().to_string(),
        name: a.name.clone(),
        user: a.user.clone(),
        remove: a.rm,
        interactive: a.interactive,
        restart: a.restart.clone(),
        spec: SpecOptions {
            cmd: a.command().to_vec(),
            entrypoint: a.entrypoint.clone(),
            env,
            workdir: a.workdir.clone(),
            hostname: a.hostname.clone(),
            read_only: a.read_only,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            network,
            tty: a.tty,
            privileged: a.privileged,
            volumes: a.volumes.clone(),
            mounts: a.mounts.clone(),
            tmpfs: a.tmpfs.clone(),
            ulimits: a.ulimits.clone(),
            shm_size: a.shm_size.clone(),
            limits: pelagos_engine::flags::Limits {
                memory: a.memory.clone(),
                memory_swap: a.memory_swap.clone(),
                cpus: a.cpus.clone(),
                cpu_shares: a.cpu_shares,
                cpuset_cpus: a.cpuset_cpus.clone(),
                pids_limit: a.pids_limit,
            },
        },
    };
    let _ = std::io::stdout().flush();
    if a.detach {
        let id = pelagos_engine::monitor::run_detached(&engine, &image, &req)?;
        let _ = writeln!(std::io::stdout(), "{id}");
        return Ok(0);
    }
    Ok(run_foreground(&engine, &image, &req)?)
}

pub fn ps(cli: &Cli, a: &PsArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut rows = vec![vec![
        "CONTAINER ID".to_string(),
        "IMAGE".into(),
        "COMMAND".into(),
        "CREATED".into(),
        "STATUS".into(),
        "NAMES".into(),
    ]];
    for r in engine.containers().list()? {
        let live = engine.is_running(&r.id);
        if !a.all && !live {
            continue;
        }
        if a.quiet {
            let id = display_id(&r.id, a.no_trunc);
            let _ = writeln!(std::io::stdout(), "{id}");
            continue;
        }
        let status = if live {
            "Up".to_string()
        } else {
            match r.exit_code {
                Some(c) => format!(
                    "Exited ({c}) {}",
                    crate::format::since(r.finished.as_deref())
                ),
                None => "Created".into(),
            }
        };
        let mut command = r.command.join(" ");
        if !a.no_trunc && command.chars().count() > 20 {
            command = command.chars().take(19).collect::<String>() + "…";
        }
        rows.push(vec![
            display_id(&r.id, a.no_trunc).to_string(),
            r.image.clone(),
            format!("\"{command}\""),
            crate::format::since(Some(&r.created)),
            status,
            r.name.clone(),
        ]);
    }
    if !a.quiet {
        images::print_table(&rows);
    }
    Ok(0)
}

pub fn remove(cli: &Cli, a: &RmArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut failed = false;
    for name in &a.containers {
        match remove_container(&engine, name, a.force, a.volumes) {
            Ok(_) => {
                let _ = writeln!(std::io::stdout(), "{name}");
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `inspect`: containers first, then images, as Docker resolves names.
pub fn inspect(cli: &Cli, a: &InspectArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut values = Vec::new();
    let mut missing = Vec::new();
    for name in &a.names {
        if let Ok(r) = engine.containers().get(name) {
            values.push(json!({
                "Id": r.id,
                "Name": format!("/{}", r.name),
                "Created": r.created,
                "Path": r.command.first().cloned().unwrap_or_default(),
                "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
                "Image": r.image_id,
                "Config": {"Image": r.image, "StopSignal": r.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into())},
                "State": {
                    "Status": r.state,
                    "Running": r.state == "running",
                    "ExitCode": r.exit_code.unwrap_or(0),
                    "FinishedAt": r.finished.clone().unwrap_or_default(),
                },
                "HostConfig": {"AutoRemove": r.auto_remove},
            }));
        } else if let Ok(image) = engine.images().get(name) {
            values.push(images::inspect_value(&engine, &image)?);
        } else {
            missing.push(name.clone());
        }
    }
    images::print_inspect(&values, a.format.as_deref())?;
    if !missing.is_empty() {
        bail!("No such object: {}", missing.join(", "));
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

/// Runs `f` for each name, printing the name on success (Docker's output) and errors on
/// stderr; exit code 1 if any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> Result<i32> {
    let mut failed = false;
    for n in names {
        match f(n) {
            Ok(()) => {
                let _ = writeln!(std::io::stdout(), "{n}");
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn start(cli: &Cli, a: &NamesArgs) -> Result<i32> {
    let engine = engine(cli)?;
    each(&a.containers, |n| {
        pelagos_engine::monitor::start(&engine, n)?;
        Ok(())
    })
}

pub fn stop(cli: &Cli, a: &StopArgs, restart: bool) -> Result<i32> {
    let engine = engine(cli)?;
    let timeout = std::time::Duration::from_secs(a.time);
    each(&a.containers, |n| {
        pelagos_engine::monitor::stop(&engine, n, timeout)?;
        if restart {
            pelagos_engine::monitor::start(&engine, n)?;
        }
        Ok(())
    })
}

pub fn kill(cli: &Cli, a: &KillArgs) -> Result<i32> {
    let engine = engine(cli)?;
    each(&a.containers, |n| {
        pelagos_engine::monitor::kill(&engine, n, &a.signal)?;
        Ok(())
    })
}

pub fn wait(cli: &Cli, a: &NamesArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let mut failed = false;
    for n in &a.containers {
        match pelagos_engine::monitor::wait(&engine, n) {
            Ok(code) => {
                let _ = writeln!(std::io::stdout(), "{code}");
            }
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn logs(cli: &Cli, a: &LogsArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let tail = match a.tail.as_str() {
        "all" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}"))?,
        ),
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    pelagos_engine::monitor::logs(&engine, &a.container, tail, a.follow, &mut |e| {
        let out: &mut dyn Write = if e.stream == "stderr" {
            &mut stderr
        } else {
            &mut stdout
        };
        if a.timestamps {
            write!(out, "{} ", e.time)?;
        }
        out.write_all(e.log.as_bytes())?;
        out.flush()
    })?;
    Ok(0)
}

pub fn exec(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let (container, cmd) = a
        .container_and_command
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("exec needs a container and a command"))?;
    Ok(pelagos_engine::monitor::exec(
        &engine,
        container,
        &pelagos_engine::monitor::ExecRequest {
            cmd: cmd.to_vec(),
            env: a.env.clone(),
            user: a.user.clone(),
            workdir: a.workdir.clone(),
            tty: a.tty,
            interactive: a.interactive,
        },
    )?)
}

pub fn pause(cli: &Cli, a: &NamesArgs, freeze: bool) -> Result<i32> {
    let engine = engine(cli)?;
    each(&a.containers, |n| {
        pelagos_engine::monitor::pause(&engine, n, freeze)?;
        Ok(())
    })
}

pub fn top(cli: &Cli, a: &TopArgs) -> Result<i32> {
    let engine = engine(cli)?;
    let procs = pelagos_engine::monitor::top(&engine, &a.container)?;
    let mut rows = vec![["UID", "PID", "PPID", "TIME", "CMD"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for p in procs {
        let secs = p.cpu_seconds as u64;
        rows.push(vec![
            p.uid.to_string(),
            p.pid.to_string(),
            p.ppid.to_string(),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            p.command,
        ]);
    }
    images::print_table(&rows);
    Ok(0)
}

/// One `stats` row from two samples `interval` apart (CPU % needs a delta).
fn stats_row(
    engine: &pelagos_engine::Engine,
    name: &str,
    interval: std::time::Duration,
) -> anyhow::Result<serde_json::Value> {
    let (record, first) = pelagos_engine::monitor::stats(engine, name)?;
    std::thread::sleep(interval);
    let (_, second) = pelagos_engine::monitor::stats(engine, name)?;
    let usage = |s: &pelagos_cgroups::Stats| s.cpu.as_ref().map(|c| c.usage_usec).unwrap_or(0);
    let cpu = (usage(&second).saturating_sub(usage(&first))) as f64
        / interval.as_micros().max(1) as f64
        * 100.0;
    let mem = second.memory.as_ref().and_then(|m| m.current);
    let limit = second.memory.as_ref().and_then(|m| m.limit);
    let pids = second.pids.as_ref().map(|p| p.current);
    let human = |v: Option<u64>| {
        v.map(crate::format::human_size)
            .unwrap_or_else(|| "--".into())
    };
    Ok(serde_json::json!({
        "ID": display_id(&record.id, false),
        "Name": record.name,
        "CPUPerc": format!("{cpu:.2}%"),
        "MemUsage": format!("{} / {}", human(mem), limit.map(crate::format::human_size).unwrap_or_else(|| "unlimited".into())),
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
        engine
            .containers()
            .list()?
            .into_iter()
            .filter(|r| engine.is_running(&r.id))
            .map(|r| r.id.into())
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
            Some(t) => {
                for r in &rows {
                    let line = crate::format::render(t, r).map_err(anyhow::Error::msg)?;
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
            }
            None => {
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
