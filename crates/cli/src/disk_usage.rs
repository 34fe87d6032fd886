//! `system df` and `system df -v`: images, containers and volumes with their sizes, as
//! Docker's summary table or its verbose sections (`formatter/disk_usage.go`), from the
//! engine's measure ([`pelagos_engine::disk_usage::gather`], the daemon's too).

use std::io::Write;

use anyhow::Result;
use pelagos_engine::container::list::ContainerSummary;
use pelagos_engine::disk_usage::{gather, ImageUsage, Usage};
use pelagos_engine::volumes::VolumeRecord;
use pelagos_image::Reference;
use serde_json::{json, Value};

use crate::cli::{Cli, DfArgs};
use crate::format::{
    format_one, format_rows, headers, human_size, human_size_precision, reclaimable_size, since,
};

/// Docker's verbose tables, one per section.
const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINER_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUME_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";
const SUMMARY_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];
const VOLUME_HEADERS: &[(&str, &str)] = &[("Name", "VOLUME NAME"), ("Links", "LINKS")];
const BUILD_CACHE_HEADERS: &[(&str, &str)] = &[
    ("ID", "CACHE ID"),
    ("CacheType", "CACHE TYPE"),
    ("CreatedSince", "CREATED"),
    ("LastUsedSince", "LAST USED"),
    ("UsageCount", "USAGE"),
];

/// `system df [-v] [--format]`.
pub fn df(cli: &Cli, a: &DfArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let usage = gather(&engine)?;
    let format = a.format.as_deref().unwrap_or("table");
    let text = match (a.verbose, format) {
        (true, "table") => verbose_table(&usage)?,
        // Docker runs a verbose custom format once, over every section, without a newline.
        (true, custom) => {
            let body = custom
                .strip_prefix("table")
                .unwrap_or(custom)
                .trim_matches(' ');
            let body = body.replace("\\t", "\t").replace("\\n", "\n");
            format_one(&body, &verbose_object(&usage, false))?
        }
        (false, "json") => summary_rows(&usage)
            .iter()
            .map(|r| Ok(serde_json::to_string(r)? + "\n"))
            .collect::<Result<String>>()?,
        (false, "table") => format_rows(SUMMARY_TABLE, &summary_rows(&usage), headers::DISK_USAGE)?,
        (false, custom) => format_rows(custom, &summary_rows(&usage), headers::DISK_USAGE)?,
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(0)
}

fn summary_row(kind: &str, total: usize, active: usize, size: u64, free: u64) -> Value {
    json!({"Type": kind, "TotalCount": total, "Active": active, "Size": human_size(size),
           "Reclaimable": reclaimable_size(free, size), "SizeBytes": size,
           "ReclaimableBytes": free})
}

/// The four summary rows: layers counted once, reclaimable when no used image has them.
fn summary_rows(u: &Usage) -> Vec<Value> {
    let images_size = u.layers.values().map(|l| l.0).sum();
    let images_free = u.layers.values().filter(|l| !l.1).map(|l| l.0).sum();
    let images_active = u.images.iter().filter(|i| i.containers > 0).count();
    let live =
        |c: &&ContainerSummary| matches!(c.state.as_str(), "running" | "paused" | "restarting");
    let c_size = u.containers.iter().map(|c| c.size_rw.unwrap_or(0)).sum();
    let c_free = u
        .containers
        .iter()
        .filter(|c| !live(c))
        .map(|c| c.size_rw.unwrap_or(0))
        .sum();
    let c_active = u.containers.iter().filter(live).count();
    let v_size = u.volumes.iter().map(|v| v.1).sum();
    let v_free = u.volumes.iter().filter(|v| v.2 == 0).map(|v| v.1).sum();
    let v_active = u.volumes.iter().filter(|v| v.2 > 0).count();
    let mut build_cache = summary_row("Build Cache", 0, 0, 0, 0);
    build_cache["Reclaimable"] = json!("0B");
    vec![
        summary_row(
            "Images",
            u.images.len(),
            images_active,
            images_size,
            images_free,
        ),
        summary_row("Containers", u.containers.len(), c_active, c_size, c_free),
        summary_row("Local Volumes", u.volumes.len(), v_active, v_size, v_free),
        build_cache,
    ]
}

/// The verbose sections as Docker prints them by default.
fn verbose_table(u: &Usage) -> Result<String> {
    let v = verbose_object(u, true);
    let rows = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    Ok([
        "Images space usage:\n\n".to_string(),
        format_rows(IMAGE_TABLE, &rows("Images"), IMAGE_HEADERS)?,
        "\nContainers space usage:\n\n".to_string(),
        format_rows(CONTAINER_TABLE, &rows("Containers"), crate::ps::HEADERS)?,
        "\nLocal Volumes space usage:\n\n".to_string(),
        format_rows(VOLUME_TABLE, &rows("Volumes"), VOLUME_HEADERS)?,
        "\nBuild cache usage: 0B\n\n".to_string(),
        format_rows(BUILD_CACHE_TABLE, &[], BUILD_CACHE_HEADERS)?,
    ]
    .concat())
}

/// Docker's `diskUsageContext`: every section's rows (ids and commands cut when `trunc`).
fn verbose_object(u: &Usage, trunc: bool) -> Value {
    let containers: Vec<Value> = u
        .containers
        .iter()
        .map(|c| {
            // Docker hides the virtual size here.
            let mut c = c.clone();
            c.size_root_fs = None;
            crate::ps::context(&c, trunc)
        })
        .collect();
    json!({
        "Images": u.images.iter().map(|i| image_row(i, trunc)).collect::<Vec<_>>(),
        "Containers": containers,
        "Volumes": u.volumes.iter().map(volume_row).collect::<Vec<_>>(),
        "BuildCache": [],
    })
}

/// Docker's image context for `df -v`: the first tag only (`<none>` without one).
fn image_row(u: &ImageUsage, trunc: bool) -> Value {
    let image = &u.image;
    let (repo, tag) = image
        .repo_tags
        .first()
        .and_then(|t| Reference::parse(t).ok())
        .and_then(|r| Some((r.familiar_name(), r.tag.clone()?)))
        .unwrap_or_else(|| ("<none>".into(), "<none>".into()));
    let id = match trunc {
        true => image.id.hex().chars().take(12).collect(),
        false => image.id.to_string(),
    };
    let size = |b: u64| human_size_precision(b, 3);
    json!({
        "Containers": u.containers.to_string(),
        "CreatedAt": image.created.clone().unwrap_or_default(),
        "CreatedSince": since(image.created.as_deref()),
        "Digest": "<none>",
        "ID": id,
        "Repository": repo,
        "SharedSize": size(u.shared),
        "Size": size(image.size),
        "Tag": tag,
        "UniqueSize": size(image.size.saturating_sub(u.shared)),
        "VirtualSize": size(image.size),
    })
}

/// Docker's volume context with usage data.
fn volume_row((v, size, links): &(VolumeRecord, u64, usize)) -> Value {
    let labels: Vec<String> = v.labels.iter().map(|(k, x)| format!("{k}={x}")).collect();
    json!({
        "Availability": "N/A",
        "Driver": v.driver,
        "Group": "N/A",
        "Labels": labels.join(","),
        "Links": links.to_string(),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Scope": v.scope,
        "Size": human_size(*size),
        "Status": "N/A",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaimable_shows_a_share() {
        assert_eq!(reclaimable_size(0, 0), "0B");
        assert_eq!(reclaimable_size(500, 1000), "500B (50%)");
        assert_eq!(reclaimable_size(1000, 1000), "1kB (100%)");
    }

    #[test]
    fn empty_verbose_output_has_every_section_and_header() {
        let usage = Usage {
            images: Vec::new(),
            layers: std::collections::HashMap::new(),
            containers: Vec::new(),
            volumes: Vec::new(),
        };
        assert_eq!(
            verbose_table(&usage).unwrap(),
            "Images space usage:\n\n\
             REPOSITORY   TAG       IMAGE ID   CREATED   SIZE      SHARED SIZE   UNIQUE SIZE   CONTAINERS\n\
             \nContainers space usage:\n\n\
             CONTAINER ID   IMAGE     COMMAND   LOCAL VOLUMES   SIZE      CREATED   STATUS    NAMES\n\
             \nLocal Volumes space usage:\n\n\
             VOLUME NAME   LINKS     SIZE\n\
             \nBuild cache usage: 0B\n\n\
             CACHE ID   CACHE TYPE   SIZE      CREATED   LAST USED   USAGE     SHARED\n"
        );
    }
}
