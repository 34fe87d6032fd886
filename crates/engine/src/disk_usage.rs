//! `GET /system/df`'s object (the API's `SystemDataUsageResponse` of 1.41): layers counted
//! once, images with their shared size and containers, containers with their writable
//! layer's size, volumes with `UsageData`; no build cache (pelagos has no builder yet).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::container::list::{list_with, ListOptions};
use crate::error::Result;
use crate::Engine;

/// The whole answer of `GET /system/df`, measured now.
pub fn system_df(engine: &Engine) -> Result<Value> {
    let options = ListOptions {
        all: true,
        size: true,
        ..ListOptions::default()
    };
    let containers = list_with(engine, &options)?;
    let mut per_image: HashMap<&str, usize> = HashMap::new();
    let mut refs: HashMap<&str, usize> = HashMap::new();
    for c in &containers {
        *per_image.entry(c.image_id.as_str()).or_default() += 1;
        let volumes: HashSet<&str> = c
            .mounts
            .iter()
            .filter(|m| m.kind == "volume")
            .map(|m| m.name.as_str())
            .collect();
        for v in volumes {
            *refs.entry(v).or_default() += 1;
        }
    }
    let images = engine.images().list()?;
    // Each layer's size and how many images hold it, for LayersSize and SharedSize.
    let mut layers: HashMap<String, (u64, usize)> = HashMap::new();
    for image in &images {
        for chain in &image.chain_ids {
            let size = engine.images().layer(chain)?.map_or(0, |l| l.size);
            layers.entry(chain.to_string()).or_insert((size, 0)).1 += 1;
        }
    }
    let image_views: Vec<Value> = images
        .iter()
        .map(|image| {
            let shared: u64 = image
                .chain_ids
                .iter()
                .filter_map(|c| layers.get(&c.to_string()))
                .filter(|(_, holders)| *holders > 1)
                .map(|(size, _)| size)
                .sum();
            let id = image.id.to_string();
            json!({
                "Id": id,
                "ParentId": "",
                "RepoTags": image.repo_tags,
                "RepoDigests": image.repo_digests,
                "Created": created_seconds(image.created.as_deref()),
                "Size": image.size,
                "SharedSize": shared,
                "VirtualSize": image.size,
                "Labels": {},
                "Containers": per_image.get(id.as_str()).copied().unwrap_or(0),
            })
        })
        .collect();
    let volume_views: Vec<Value> = engine
        .volumes()
        .list()?
        .into_iter()
        .map(|v| {
            let size = crate::volumes::disk_usage(&v.mountpoint);
            let count = refs.get(v.name.as_str()).copied().unwrap_or(0);
            let mut value = serde_json::to_value(&v).unwrap_or_else(|_| json!({"Name": v.name}));
            value["Options"] = json!({});
            value["UsageData"] = json!({ "Size": size, "RefCount": count });
            value
        })
        .collect();
    Ok(json!({
        "LayersSize": layers.values().map(|(size, _)| size).sum::<u64>(),
        "Images": image_views,
        "Containers": containers,
        "Volumes": volume_views,
        "BuildCache": [],
    }))
}

/// Unix seconds of an RFC 3339 time (0 when there is none).
fn created_seconds(rfc3339: Option<&str>) -> i64 {
    let now = std::time::SystemTime::now();
    rfc3339
        .and_then(|t| pelagos_model::timestamp::parse(t, now).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}
