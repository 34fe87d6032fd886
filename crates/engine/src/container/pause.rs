//! `pause` / `unpause`: the monitor freezes or thaws the container's cgroup and records the
//! status (Paused shows as such in `ps` and `inspect`).

use pelagos_model::protocol::Request;

use pelagos_model::error::conflict;

use crate::error::{Error, Result};
use crate::Engine;

/// Freezes (`pause = true`) or thaws a running container.
pub fn pause(engine: &Engine, name_or_id: &str, pause: bool) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let Some(mut client) = super::monitor_of(engine, &record)? else {
        // Docker's words: unpause only asks whether it is paused.
        return Err(match pause {
            true => super::not_running(&record),
            false => Error::Conflict(conflict::not_paused(&record.id)),
        });
    };
    client.call(if pause {
        &Request::Pause
    } else {
        &Request::Unpause
    })?;
    Ok(())
}
