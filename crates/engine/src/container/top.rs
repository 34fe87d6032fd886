//! `top`: as Docker, the host's `ps` run with the user's options (default `-ef`), keeping
//! the rows whose PID is one of the container's (read from its cgroup).

use std::process::Command;

use crate::error::{Error, Result};
use crate::Engine;

/// What `ps` printed for the container: its titles and one row per process, each row with
/// as many fields as titles (the last holding the rest of the line, spaces and all).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopOutput {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// The container's processes as `ps <ps_args>` shows them.
pub fn top(engine: &Engine, name_or_id: &str, ps_args: &str) -> Result<TopOutput> {
    let ps_args = if ps_args.is_empty() { "-ef" } else { ps_args };
    check_ps_args(ps_args)?;
    let record = super::lookup(engine, name_or_id)?;
    if !record.state.status.is_live() {
        return Err(super::not_running(&record));
    }
    let pids = engine.runtime().pids(&record.id)?;
    let args: Vec<&str> = ps_args.split_ascii_whitespace().collect();
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // `-q` lists the container's processes whatever the other options select; some
    // options (such as `f`) refuse it, and then ps runs without it, as Docker's does.
    let output = match run_ps(args.iter().copied().chain([format!("-q{list}").as_str()])) {
        Ok(out) => out,
        Err(_) => run_ps(args.iter().copied())?,
    };
    parse(&output, &pids)
}

/// Docker refuses options that would rename the PID column (`-o user=PID`).
fn check_ps_args(ps_args: &str) -> Result<()> {
    for word in ps_args.split_ascii_whitespace().skip(1) {
        if let Some((k, v)) = word.split_once('=') {
            if v.starts_with("PID") && k != "pid" {
                return Err(Error::Invalid(format!(
                    "specifying \"{k}={v}\" is not allowed"
                )));
            }
        }
    }
    Ok(())
}

/// Runs the host's `ps`; a failure is the first line of what it said.
fn run_ps<'a>(args: impl Iterator<Item = &'a str>) -> Result<String> {
    let out = Command::new("ps")
        .args(args)
        .output()
        .map_err(|e| Error::Io {
            what: "ps".into(),
            source: e,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or_default().to_string();
        let why = if first.is_empty() {
            out.status.to_string()
        } else {
            first
        };
        return Err(Error::Invalid(format!("ps: {why}")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Docker's `parsePSOutput`: the rows whose PID is the container's.
fn parse(output: &str, pids: &[i32]) -> Result<TopOutput> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(String::from)
        .collect();
    let Some(pid_index) = titles.iter().position(|t| t == "PID") else {
        return Err(Error::Invalid(
            "Couldn't find PID field in ps output".into(),
        ));
    };
    let mut processes = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let pid: i32 = pid
            .parse()
            .map_err(|e| Error::Invalid(format!("Unexpected pid '{pid}': {e}")))?;
        if pids.contains(&pid) && fields.len() >= titles.len() {
            let last = titles.len() - 1;
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            processes.push(row);
        }
    }
    Ok(TopOutput { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_containers_rows_and_joins_the_last_column() {
        let out = "UID PID PPID C STIME TTY TIME CMD\n\
                   root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                   root 42 1 0 10:01 ? 00:00:00 sleep 1000\n";
        let top = parse(out, &[42]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 1);
        assert_eq!(top.processes[0][7], "sleep 1000");
        assert!(parse("UID CMD\nroot x\n", &[1]).is_err());
        assert!(check_ps_args("-o user=PID").is_err());
        assert!(check_ps_args("-o pid,comm").is_ok());
    }
}
