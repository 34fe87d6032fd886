//! `update`: new resource limits and restart policy for a container, running (its monitor
//! applies them to the cgroup at once) or not (kept for its next start); checked against what
//! the host can enforce first, as at create.

use pelagos_model::config::UpdateConfig;
use pelagos_model::events::Event;
use pelagos_model::protocol::Request;

use crate::error::{Error, Result};
use crate::Engine;

/// Applies `change` to the container `name_or_id`.
pub fn update(engine: &Engine, name_or_id: &str, change: &UpdateConfig) -> Result<()> {
    if change.is_empty() {
        return Err(Error::Invalid(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let record = super::lookup(engine, name_or_id)?;
    let host = change.applied_to(&record.host_config);
    super::create::check_enforceable(&host)?;
    if let Some(mut client) = super::monitor_of(engine, &record)? {
        client.call(&Request::Update(change.clone()))?;
        return Ok(());
    }
    if change.restart_policy.as_ref().is_some_and(|p| !p.is_none()) && host.auto_remove {
        return Err(Error::Invalid(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
                .into(),
        ));
    }
    // Nobody runs it: change the record under its owner lock (a start in progress holds it).
    let containers = engine.containers();
    let Some(_lock) = containers.try_own(&record.id)? else {
        return Err(Error::Conflict(format!(
            "container {} is busy: another command is starting or removing it",
            record.name
        )));
    };
    let updated = containers.modify(&record.id, |r| r.host_config = host)?;
    engine.emit(&Event::container(&updated, "update"));
    Ok(())
}
