//! What a registry holds under a reference, without pulling it (Docker's
//! `GET /distribution/{name}/json`): the descriptor of the manifest the reference names and
//! the platforms it serves.

use pelagos_image::{Algorithm, Digest, Reference};
use serde::Deserialize;

use crate::client::{
    fetch_blob_on, fetch_manifest, parse_manifest, top_reference, verify_bytes, Client, Endpoint,
};
use crate::error::RegistryError;
use crate::manifest::Parsed;
use crate::platform::Platform;

/// The manifest (or index) a reference names, and its platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionInfo {
    /// Its media type (an index / manifest list, or an image manifest).
    pub media_type: String,
    pub digest: Digest,
    /// Its size in bytes, as served.
    pub size: u64,
    /// An index's entries' platforms, or the platform in an image manifest's config.
    pub platforms: Vec<Platform>,
}

/// The platform fields of an image config.
#[derive(Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl Client {
    /// Reads the manifest `reference` names from its registry (no mirror: the descriptor is
    /// the registry's own) and the platforms it serves.
    pub async fn inspect_distribution(
        &self,
        reference: &Reference,
    ) -> Result<DistributionInfo, RegistryError> {
        self.on_endpoint(reference.api_host(), |ep| inspect_on(ep, reference))
            .await
    }
}

async fn inspect_on(
    ep: Endpoint,
    reference: &Reference,
) -> Result<DistributionInfo, RegistryError> {
    ep.prepare().await;
    let host = ep.host.clone();
    let label = reference.familiar();
    let what = format!("manifest {label}");
    let top = fetch_manifest(&ep, &top_reference(&ep, reference), &what).await?;
    let digest = match &reference.digest {
        Some(pinned) => {
            verify_bytes(&top, pinned, &host, &what)?;
            pinned.clone()
        }
        None => Digest::of_bytes(Algorithm::Sha256, &top),
    };
    let size = top.len() as u64;
    let (media_type, platforms) = match parse_manifest(&top, &label, &host)? {
        Parsed::Index {
            media_type,
            entries,
        } => {
            let platforms = entries.into_iter().filter_map(|e| e.platform).collect();
            (media_type, platforms)
        }
        Parsed::Image {
            media_type, config, ..
        } => {
            // As moby: a config that cannot be read or names no platform adds none.
            let platform = fetch_blob_on(ep.clone(), &reference.repository, &config)
                .await
                .ok()
                .and_then(|blob| serde_json::from_slice::<ConfigPlatform>(&blob).ok())
                .filter(|c| !c.os.is_empty() || !c.architecture.is_empty())
                .map(|c| Platform::new(&c.os, &c.architecture, c.variant.as_deref()));
            (media_type, platform.into_iter().collect())
        }
        Parsed::Schema1 { media_type } => {
            return Err(RegistryError::Schema1Unsupported {
                reference: label,
                media_type,
            })
        }
    };
    Ok(DistributionInfo {
        media_type,
        digest,
        size,
        platforms,
    })
}
