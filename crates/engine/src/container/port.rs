//! `port`: where a container's ports are published on the host (Docker's
//! `NetworkSettings.Ports`), for `port` and `inspect` alike.

use pelagos_model::config::PortMap;
use pelagos_model::record::ContainerRecord;

use crate::error::Result;
use crate::Engine;

/// The container's ports: `"80/tcp"` → its host addresses, as its monitor recorded them
/// while it runs (none when stopped or without a bridge network); an exposed port that is
/// not published has none.
pub fn published(record: &ContainerRecord) -> PortMap {
    record.ports.clone()
}

/// `NetworkSettings.Ports` as inspect shows it: an exposed port that is not published maps
/// to `null`, as Docker's.
pub fn inspect_ports(record: &ContainerRecord) -> serde_json::Value {
    let ports: serde_json::Map<String, serde_json::Value> = (record.ports.iter())
        .map(|(key, bindings)| {
            let value = match bindings.is_empty() {
                true => serde_json::Value::Null,
                false => serde_json::json!(bindings),
            };
            (key.clone(), value)
        })
        .collect();
    serde_json::Value::Object(ports)
}

/// The container's name (without the leading `/`) and its published ports.
pub fn ports(engine: &Engine, name_or_id: &str) -> Result<(String, PortMap)> {
    let record = super::lookup(engine, name_or_id)?;
    Ok((record.name.clone(), published(&record)))
}
