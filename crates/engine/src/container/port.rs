//! `port`: where a container's ports are published on the host (Docker's
//! `NetworkSettings.Ports`), for `port` and `inspect` alike.

use pelagos_model::config::PortMap;
use pelagos_model::record::ContainerRecord;

use crate::error::Result;
use crate::Engine;

/// The container's published ports: `"80/tcp"` → its host addresses. None are published
/// until networking exists (issue 11): `-p` is kept in `HostConfig.PortBindings` but no
/// port is bound, as with Docker's `--network none`.
pub fn published(_record: &ContainerRecord) -> PortMap {
    PortMap::new()
}

/// The container's name (without the leading `/`) and its published ports.
pub fn ports(engine: &Engine, name_or_id: &str) -> Result<(String, PortMap)> {
    let record = super::lookup(engine, name_or_id)?;
    Ok((record.name.clone(), published(&record)))
}
