//! `pelagos events` / `system events`: the event log under the root, filtered as Docker's
//! `--filter`, from `--since` (else from now) and, without `--until`, followed until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pelagos_model::events::{Event, EventLog, Filter, TimeRange};
use pelagos_model::timestamp;

use crate::cli::{Cli, EventsArgs};

pub fn events(cli: &Cli, a: &EventsArgs) -> Result<i32> {
    let filter = Filter::parse(&a.filter)?;
    let now = SystemTime::now();
    let since = a
        .since
        .as_deref()
        .map(|s| timestamp::parse(s, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| timestamp::parse(s, now))
        .transpose()?;
    let range = TimeRange {
        // Without --since, Docker shows only what happens from now on.
        since: Some(since.unwrap_or(now)),
        until,
    };
    // Parsed once, before anything is read (`json` is `{{json .}}`, as Docker's).
    let template = a
        .format
        .as_deref()
        .map(pelagos_template::Template::parse_format)
        .transpose()
        .map_err(|e| anyhow::anyhow!("bad --format: {e}"))?;
    let log = EventLog::new(&cli.root);
    let mut out = std::io::stdout().lock();
    let mut print = |e: &Event| -> std::io::Result<()> {
        if !filter.matches(e) {
            return Ok(());
        }
        let line = match &template {
            Some(t) => t
                .render(&serde_json::to_value(e)?)
                .map_err(std::io::Error::other)?,
            None => e.to_text(),
        };
        writeln!(out, "{line}")?;
        out.flush()
    };
    if until.is_some_and(|u| u <= now) {
        log.read(&range, &mut print)?;
        return Ok(0);
    }
    // SIGINT and SIGTERM end the follow cleanly: blocked, and read from a signalfd the
    // follow watches beside the log.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().context("block SIGINT and SIGTERM")?;
    let stop = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    log.follow(&range, Some(std::os::fd::AsFd::as_fd(&stop)), &mut print)?;
    Ok(0)
}
