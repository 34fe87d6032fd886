//! What the control plane hands a container's monitor at each start, beside the record:
//! the image's layers and config and the host paths the monitor needs, so the monitor never
//! opens the image store. Written as `launch.json` in the container's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file name in the container's directory.
pub const LAUNCH_FILE: &str = "launch.json";

/// A shareable container's /dev/shm mount point in its directory (the monitor mounts it; a
/// reconcile after a dead monitor unmounts it).
pub const SHM_DIR: &str = "shm";

/// Inputs of one start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// The store's layer directory (overlay lowerdirs are relative to it when short).
    pub layers_dir: PathBuf,
    /// The image's layers, top first, as overlayfs lowerdirs.
    pub lowerdirs: Vec<String>,
    /// The image's config (`None` for an image without one).
    pub image_config: Option<oci_spec::image::Config>,
    /// Parent cgroup of containers (`/pelagos`).
    pub cgroup_parent: String,
    /// Compiled seccomp filters are cached here.
    pub seccomp_cache: PathBuf,
    /// Where volumes live (`<root>/volumes`).
    pub volumes_dir: PathBuf,
    /// The host path of the container init for `--init`.
    pub init_path: Option<PathBuf>,
}

impl LaunchPlan {
    /// Writes the plan into the container's directory (atomically).
    pub fn save(&self, container_dir: &Path) -> Result<()> {
        let path = container_dir.join(LAUNCH_FILE);
        let tmp = container_dir.join(".launch.json.tmp");
        let text = serde_json::to_vec(self)
            .map_err(|e| Error::Invalid(format!("encode the launch plan: {e}")))?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// Reads the plan of the container in `container_dir`.
    pub fn load(container_dir: &Path) -> Result<LaunchPlan> {
        let path = container_dir.join(LAUNCH_FILE);
        let text =
            std::fs::read(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
        serde_json::from_slice(&text).map_err(|e| Error::Record {
            path,
            reason: e.to_string(),
        })
    }
}
