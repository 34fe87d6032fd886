//! `top`: the processes of a running container, read from its cgroup and /proc.

use std::fs;

use crate::error::Result;
use crate::Engine;

/// One process of a container.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// Host pid.
    pub pid: i32,
    /// Parent's host pid.
    pub ppid: i32,
    /// Real uid.
    pub uid: u32,
    /// CPU time (user + system), seconds.
    pub cpu_seconds: f64,
    /// The command line.
    pub command: String,
}

/// The container's processes.
pub fn top(engine: &Engine, name_or_id: &str) -> Result<Vec<ProcessInfo>> {
    let record = super::lookup(engine, name_or_id)?;
    if !record.state.status.is_live() {
        return Err(super::not_running(&record));
    }
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let mut out = Vec::new();
    for pid in engine.runtime().pids(&record.id)? {
        if let Some(p) = process(pid, ticks) {
            out.push(p);
        }
    }
    Ok(out)
}

fn process(pid: i32, ticks: f64) -> Option<ProcessInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces and parentheses).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let uid = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().and_then(|u| u.parse().ok()))
        })
        .unwrap_or(0);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(ProcessInfo {
        pid,
        ppid: num(1) as i32,
        uid,
        cpu_seconds: (num(11) + num(12)) as f64 / ticks,
        command,
    })
}
