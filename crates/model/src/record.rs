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
}

impl ContainerRecord {
    /// Names of every volume it uses.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.as_str())
    }
}
