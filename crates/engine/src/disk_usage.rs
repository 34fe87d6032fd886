//! What `system df` reports, gathered once for the CLI's tables and the daemon's
//! `GET /system/df` (the API's `SystemDataUsageResponse` of 1.41): layers counted once,
//! images with their shared size and containers, containers with their writable layer's
//! size, volumes with their size and users; no build cache (pelagos has no builder yet).

use std::collections::{HashMap, HashSet};

use pelagos_image::ImageRecord;
use serde_json::{json, Value};

use crate::container::list::{list_with, ContainerSummary, ListOptions};
use crate::error::Result;
use crate::volumes::VolumeRecord;
use crate::Engine;

/// An image with what `df` says about it.
pub struct ImageUsage {
    pub image: ImageRecord,
    /// Bytes of its layers that other images have too.
    pub shared: u64,
    /// Containers made from it.
    pub containers: usize,
}

/// Everything `df` reports, measured once.
pub struct Usage {
    /// Newest first.
    pub images: Vec<ImageUsage>,
    /// Each distinct layer's size, and whether an image a container uses has it.
    pub layers: HashMap<String, (u64, bool)>,
    pub containers: Vec<ContainerSummary>,
    /// Each volume with its size and how many containers use it.
    pub volumes: Vec<(VolumeRecord, u64, usize)>,
}

/// Measures images, containers (with sizes) and volumes now.
pub fn gather(engine: &Engine) -> Result<Usage> {
    let options = ListOptions {
        all: true,
        size: true,
        ..ListOptions::default()
    };
    let containers = list_with(engine, &options)?;
    let mut per_image: HashMap<&str, usize> = HashMap::new();
    let mut links: HashMap<&str, usize> = HashMap::new();
    for c in &containers {
        *per_image.entry(c.image_id.as_str()).or_default() += 1;
        let names: HashSet<&str> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.as_str())
            .collect();
        for n in names {
            *links.entry(n).or_default() += 1;
        }
    }
    let mut records = engine.images().list()?;
    records.sort_by(|x, y| y.created.cmp(&x.created).then(x.id.cmp(&y.id)));
    let mut layers: HashMap<String, (u64, bool)> = HashMap::new();
    let mut holders: HashMap<String, usize> = HashMap::new();
    for image in &records {
        let used = per_image.contains_key(image.id.to_string().as_str());
        for chain in &image.chain_ids {
            let size = engine.images().layer(chain)?.map(|l| l.size).unwrap_or(0);
            let entry = layers.entry(chain.to_string()).or_insert((size, false));
            entry.1 |= used;
            *holders.entry(chain.to_string()).or_default() += 1;
        }
    }
    let images = records
        .into_iter()
        .map(|image| {
            let shared = image
                .chain_ids
                .iter()
                .map(|c| c.to_string())
                .filter(|c| holders.get(c).is_some_and(|n| *n > 1))
                .map(|c| layers.get(&c).map_or(0, |l| l.0))
                .sum();
            let containers = per_image
                .get(image.id.to_string().as_str())
                .copied()
                .unwrap_or(0);
            ImageUsage {
                image,
                shared,
                containers,
            }
        })
        .collect();
    let volumes = engine
        .volumes()
        .list()?
        .into_iter()
        .map(|v| {
            let size = crate::volumes::disk_usage(&v.mountpoint);
            let n = links.get(v.name.as_str()).copied().unwrap_or(0);
            (v, size, n)
        })
        .collect();
    Ok(Usage {
        images,
        layers,
        containers,
        volumes,
    })
}

/// The whole answer of `GET /system/df`, measured now.
pub fn system_df(engine: &Engine) -> Result<Value> {
    Ok(api_view(&gather(engine)?))
}

/// The API's object of a [`Usage`].
pub fn api_view(u: &Usage) -> Value {
    let images: Vec<Value> = u
        .images
        .iter()
        .map(|i| {
            json!({
                "Id": i.image.id.to_string(),
                "ParentId": "",
                "RepoTags": i.image.repo_tags,
                "RepoDigests": i.image.repo_digests,
                "Created": created_seconds(i.image.created.as_deref()),
                "Size": i.image.size,
                "SharedSize": i.shared,
                "VirtualSize": i.image.size,
                "Labels": {},
                "Containers": i.containers,
            })
        })
        .collect();
    let volumes: Vec<Value> = u
        .volumes
        .iter()
        .map(|(v, size, users)| {
            let mut value = serde_json::to_value(v).unwrap_or_else(|_| json!({"Name": v.name}));
            value["Options"] = json!({});
            value["UsageData"] = json!({ "Size": size, "RefCount": users });
            value
        })
        .collect();
    json!({
        "LayersSize": u.layers.values().map(|(size, _)| size).sum::<u64>(),
        "Images": images,
        "Containers": u.containers,
        "Volumes": volumes,
        "BuildCache": [],
    })
}

/// Unix seconds of an RFC 3339 time (0 when there is none).
fn created_seconds(rfc3339: Option<&str>) -> i64 {
    let now = std::time::SystemTime::now();
    rfc3339
        .and_then(|t| pelagos_model::timestamp::parse(t, now).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}
