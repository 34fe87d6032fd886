//! Docker's views of a stored image, shared by the CLI and the daemon: `ImageInspect` and the
//! history entries (`docker history`).

use pelagos_image::{ImageRecord, Reference};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::Engine;

/// A stored reference as Docker shows it (`busybox:latest`, `HOST/box:1`).
pub fn familiar(full: &str) -> String {
    Reference::parse(full)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| full.to_string())
}

/// The image's config, parsed as JSON.
pub fn raw_config(engine: &Engine, image: &ImageRecord) -> Result<Value> {
    serde_json::from_slice(&engine.images().config_bytes(image)?)
        .map_err(|e| Error::Invalid(format!("image config {} is not JSON: {e}", image.id)))
}

/// Docker's `ImageInspect` object.
pub fn inspect(engine: &Engine, image: &ImageRecord) -> Result<Value> {
    let raw = raw_config(engine, image)?;
    let layers_dir = engine.images().layers_dir();
    let lowers: Vec<String> = engine
        .images()
        .lowerdirs(image)?
        .iter()
        .map(|l| layers_dir.join(l).to_string_lossy().into_owned())
        .collect();
    Ok(json!({
        "Id": image.id.to_string(),
        "RepoTags": image.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": image.repo_digests.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
        "Created": image.created.clone().unwrap_or_default(),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": image.architecture,
        "Variant": image.variant,
        "Os": image.os,
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lowers.join(":")}},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": image.added},
        "Descriptor": {
            "mediaType": image.manifest_media_type,
            "digest": image.manifest_digest.to_string(),
        },
    }))
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When (RFC 3339), if recorded.
    pub created: Option<String>,
    /// The instruction that made it.
    pub created_by: String,
    /// Its comment.
    pub comment: String,
    /// The size of its layer (0 for an empty layer).
    pub size: u64,
}

/// The history of an image, oldest first: the config's `history`, each non-empty entry
/// sized by its layer; one entry per layer when the config has none (imports, some builders).
pub fn history(engine: &Engine, image: &ImageRecord) -> Result<Vec<HistoryEntry>> {
    let raw = raw_config(engine, image)?;
    let mut layer_sizes = Vec::new();
    for chain in &image.chain_ids {
        layer_sizes.push(engine.images().layer(chain)?.map(|l| l.size).unwrap_or(0));
    }
    let entries = raw["history"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return Ok(layer_sizes
            .into_iter()
            .map(|size| HistoryEntry {
                created: None,
                created_by: String::new(),
                comment: String::new(),
                size,
            })
            .collect());
    }
    let mut sizes = layer_sizes.into_iter();
    Ok(entries
        .iter()
        .map(|h| {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            HistoryEntry {
                created: h["created"].as_str().map(String::from),
                created_by: text("created_by"),
                comment: text("comment"),
                size: if empty { 0 } else { sizes.next().unwrap_or(0) },
            }
        })
        .collect())
}
