//! `rename`: a container's new name, checked and taken under the store's lock, as running
//! or stopped; the `rename` event carries the old name (Docker's `oldName`).

use pelagos_model::events::Event;

use crate::error::Result;
use crate::Engine;

/// Renames the container `name_or_id` to `new`.
pub fn rename(engine: &Engine, name_or_id: &str, new: &str) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let renamed = engine.containers().rename(&record.id, new)?;
    let mut event = Event::container(&renamed, "rename");
    event
        .actor
        .attributes
        .insert("oldName".into(), format!("/{}", record.name));
    engine.emit(&event);
    Ok(())
}
