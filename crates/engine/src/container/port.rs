//! `port`: where a container's ports are published on the host (Docker's
//! `NetworkSettings.Ports`), for `port` and `inspect` alike.

use pelagos_model::config::PortMap;
use pelagos_model::record::ContainerRecord;

use crate::error::Result;
use crate::Engine;

/// The container's published ports: `"80/tcp"` → its host addresses, as its monitor
/// recorded them while it runs (none when stopped or without a bridge network).
pub fn published(record: &ContainerRecord) -> PortMap {
    record.ports.clone()
}

/// The container's name (without the leading `/`) and its published ports.
pub fn ports(engine: &Engine, name_or_id: &str) -> Result<(String, PortMap)> {
    let record = super::lookup(engine, name_or_id)?;
    Ok((record.name.clone(), published(&record)))
}
