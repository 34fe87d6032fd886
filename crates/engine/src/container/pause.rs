//! `pause` / `unpause`: the monitor freezes or thaws the container's cgroup and records the
//! status (Paused shows as such in `ps` and `inspect`).

use pelagos_model::protocol::Request;

use crate::error::Result;
use crate::Engine;

/// Freezes (`pause = true`) or thaws a running container.
pub fn pause(engine: &Engine, name_or_id: &str, pause: bool) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let mut client =
        super::monitor_of(engine, &record)?.ok_or_else(|| super::not_running(&record))?;
    client.call(if pause {
        &Request::Pause
    } else {
        &Request::Unpause
    })?;
    Ok(())
}
