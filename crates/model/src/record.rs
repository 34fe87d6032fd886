//! A container's record: who it is, the typed Docker config it was made with, what its
//! volumes resolved to, and its state. One JSON file per container under the root.

use pelagos_container::ContainerId;
use serde::{Deserialize, Serialize};

use crate::config::{ContainerConfig, HostConfig, NetworkingConfig, PortMap};
use crate::state::ContainerState;

/// A resolved mount as Docker's inspect shows it in `Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// "bind", "volume", "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// Everything known about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: ContainerId,
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image's id (`sha256:…`).
    pub image_id: String,
    /// The command it runs: entrypoint and cmd resolved against the image's.
    pub command: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking: NetworkingConfig,
    pub state: ContainerState,
    /// Volumes and binds as resolved at the first start.
    #[serde(default)]
    pub mounts: Vec<MountPoint>,
    /// Whether `mounts` is filled (volumes made and copied up).
    #[serde(default)]
    pub volumes_prepared: bool,
    /// Volumes made for this container alone (removed with it under `--rm`).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// Where its ports are published while it runs (Docker's `NetworkSettings.Ports`:
    /// `"80/tcp"` → `[{"HostIp": "0.0.0.0", "HostPort": "8080"}]`); empty when stopped.
    #[serde(default, skip_serializing_if = "PortMap::is_empty")]
    pub ports: PortMap,
    /// The networks of `networking` in the order they were joined (its map is by name): the
    /// first is `eth0` and the default route, the next `eth1`, …
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_order: Vec<String>,
    /// `HostConfig.NetworkMode` as an API client sent it when the engine resolved it to the
    /// configured default network (`default`, also for nothing sent): moby's inspect shows
    /// it so. Empty when the mode was named.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub asked_network_mode: String,
}

impl ContainerRecord {
    /// A record of container `id` from `image` with everything else empty (not created, no
    /// config): what a creator fills in, and a base for tests' records.
    pub fn new(id: ContainerId, image: impl Into<String>) -> ContainerRecord {
        ContainerRecord {
            id,
            name: String::new(),
            created: String::new(),
            image: image.into(),
            image_id: String::new(),
            command: Vec::new(),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            networking: NetworkingConfig::default(),
            state: ContainerState::default(),
            mounts: Vec::new(),
            volumes_prepared: false,
            anonymous_volumes: Vec::new(),
            ports: PortMap::default(),
            network_order: Vec::new(),
            asked_network_mode: String::new(),
        }
    }

    /// The names of its networks in the order they were joined (those `network_order` does
    /// not list, from older records, after them by name).
    pub fn networks_in_order(&self) -> Vec<&str> {
        let endpoints = &self.networking.endpoints_config;
        let listed = self
            .network_order
            .iter()
            .filter(|n| endpoints.contains_key(n.as_str()));
        let rest = endpoints.keys().filter(|n| !self.network_order.contains(n));
        let mut out: Vec<&str> = Vec::new();
        for name in listed.chain(rest) {
            if !out.contains(&name.as_str()) {
                out.push(name);
            }
        }
        out
    }

    /// Names of every volume it uses.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::EndpointSettings;

    #[test]
    fn networks_in_join_order_then_unlisted_by_name() {
        let mut r = crate::store::tests::record();
        for name in ["zeta", "alpha", "mid", "old"] {
            r.networking
                .endpoints_config
                .insert(name.into(), EndpointSettings::default());
        }
        r.network_order = vec!["zeta".into(), "gone".into(), "mid".into(), "zeta".into()];
        assert_eq!(r.networks_in_order(), ["zeta", "mid", "alpha", "old"]);
        r.network_order.clear();
        assert_eq!(r.networks_in_order(), ["alpha", "mid", "old", "zeta"]);
    }
}
