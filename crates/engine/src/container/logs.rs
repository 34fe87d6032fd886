//! `logs`: reads the container's log through its driver (the tail from the end of the file),
//! and with `follow` keeps reading until the container stops, told by its monitor.

use std::os::fd::AsFd;

use pelagos_model::logs::{self, LogEntry, LogSettings, ReadOptions};
use pelagos_model::protocol::{Request, WaitCondition};

use crate::error::Result;
use crate::Engine;

/// Emits the container's log entries (then new ones with `follow`, until it stops).
pub fn logs(
    engine: &Engine,
    name_or_id: &str,
    options: &ReadOptions,
    follow: bool,
    emit: &mut dyn FnMut(&LogEntry) -> std::io::Result<()>,
) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let settings = LogSettings::from_config(&record.host_config.log_config)?;
    let dir = engine.containers().dir_of(&record.id);
    let watcher = if follow {
        super::monitor_of(engine, &record)?
    } else {
        None
    };
    match watcher {
        Some(mut client) => {
            // Readable once the container is no longer running: the end of the follow.
            client.send(
                &Request::Wait {
                    condition: WaitCondition::NotRunning,
                },
                &[],
            )?;
            logs::follow(
                &dir,
                &settings,
                options,
                Some(client.socket().as_fd()),
                emit,
            )?;
        }
        None => logs::read(&dir, &settings, options, emit)?,
    }
    Ok(())
}

/// The attributes `logs --details` shows with every entry: the labels and environment
/// variables named by the `labels` and `env` log options (they are fixed at creation, so
/// read from the record rather than stored with each entry).
pub fn attrs(engine: &Engine, name_or_id: &str) -> Result<Vec<(String, String)>> {
    let record = super::lookup(engine, name_or_id)?;
    let settings = LogSettings::from_config(&record.host_config.log_config)?;
    Ok(settings.attrs(&record.config.labels, &record.config.env))
}
