//! The container's binds and volumes resolved at its first start: the model plans them
//! (`Binds`, `Mounts`, `Config.Volumes`, the image's VOLUMEs nobody covered) and its volume
//! store makes the volumes, copying the image's files into new ones (Docker's copy-up).

use std::path::Path;

use oci_spec::image::Config as ImageConfig;
use pelagos_model::record::{ContainerRecord, MountPoint};
use pelagos_model::volumes::Volumes;

use crate::error::Result;

/// What the first start resolved.
#[derive(Debug, Default)]
pub struct Prepared {
    pub mounts: Vec<MountPoint>,
    /// Volumes made for this container alone.
    pub anonymous: Vec<String>,
}

/// Resolves every mount point of `record`, making volumes in `store` (on failure the
/// anonymous volumes made so far are removed again by the store).
pub fn prepare(
    record: &ContainerRecord,
    image: Option<&ImageConfig>,
    rootfs: &Path,
    store: &Volumes,
) -> Result<Prepared> {
    let image_volumes: Vec<String> = image.and_then(|c| c.volumes().clone()).unwrap_or_default();
    let planned =
        pelagos_model::mounts::planned_mounts(&record.config, &record.host_config, &image_volumes)?;
    let prepared = store.prepare(rootfs, &planned)?;
    Ok(Prepared {
        mounts: prepared.mounts,
        anonymous: prepared.anonymous,
    })
}
