//! `version` and `info`: what is running where, for bug reports and scripts.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use std::collections::{HashMap, HashSet};

use crate::cli::{Cli, FormatArgs, PruneArgs, SystemPruneArgs};
use crate::format::{format_one, format_rows, headers, human_size, reclaimable_size};

fn print(value: &Value, format: Option<&str>, text: impl FnOnce() -> String) -> Result<i32> {
    let out = match format {
        Some("json") | Some("{{json .}}") => serde_json::to_string(value)?,
        Some(t) => format_one(t, value)?,
        None => text(),
    };
    let _ = writeln!(std::io::stdout(), "{out}");
    Ok(0)
}

/// `docker version`'s object: this CLI as the client, the engine (in this process: there is
/// no daemon) as the server.
pub fn version(a: &FormatArgs) -> Result<i32> {
    let server = pelagos_engine::system::version();
    let v = json!({
        "Client": {
            "Platform": {"Name": "pelagos"},
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": pelagos_engine::system::API_VERSION,
            "DefaultAPIVersion": pelagos_engine::system::API_VERSION,
            "Os": std::env::consts::OS,
            "Arch": server["Arch"],
            "Context": "default",
        },
        "Server": server,
    });
    print(&v, a.format.as_deref(), || version_text(&v))
}

fn version_text(v: &Value) -> String {
    let (c, e) = (&v["Client"], &v["Server"]);
    let runtime = &e["Components"][1];
    [
        "Client:".to_string(),
        format!(" Version:           {}", text(&c["Version"])),
        format!(" API version:       {}", text(&c["ApiVersion"])),
        format!(
            " OS/Arch:           {}/{}",
            text(&c["Os"]),
            text(&c["Arch"])
        ),
        " Context:           default".to_string(),
        String::new(),
        "Server: pelagos (daemonless: the engine runs in each command)".to_string(),
        " Engine:".to_string(),
        format!("  Version:          {}", text(&e["Version"])),
        format!(
            "  API version:      {} (minimum version {})",
            text(&e["ApiVersion"]),
            text(&e["MinAPIVersion"])
        ),
        format!(
            "  OS/Arch:          {}/{}",
            text(&e["Os"]),
            text(&e["Arch"])
        ),
        format!("  Kernel:           {}", text(&e["KernelVersion"])),
        "  Experimental:     false".to_string(),
        " pelagos-runtime:".to_string(),
        format!("  Version:          {}", text(&runtime["Version"])),
        format!(
            "  OCI runtime spec: {}",
            text(&runtime["Details"]["OciRuntimeSpec"])
        ),
    ]
    .join("\n")
}

/// A JSON value as text: strings without quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `docker info`'s object (the engine's, with the client's beside it as `ClientInfo`).
pub fn info(cli: &Cli, a: &FormatArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let mut v = pelagos_engine::system::info(&engine)?;
    if let Value::Object(map) = &mut v {
        map.insert(
            "ClientInfo".into(),
            json!({"Debug": false, "Context": "default", "Plugins": [], "Warnings": null}),
        );
    }
    print(&v, a.format.as_deref(), || info_text(&v))
}

fn info_text(v: &Value) -> String {
    let s = |k: &str| text(&v[k]);
    let list = |k: &str| {
        v[k].as_array()
            .map(|a| a.iter().map(text).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let mut lines = vec![
        "Client:".to_string(),
        " Context:    default".to_string(),
        " Debug Mode: false".to_string(),
        String::new(),
        "Server:".to_string(),
        format!(" Containers: {}", s("Containers")),
        format!("  Running: {}", s("ContainersRunning")),
        format!("  Paused: {}", s("ContainersPaused")),
        format!("  Stopped: {}", s("ContainersStopped")),
        format!(" Images: {}", s("Images")),
        format!(" Server Version: {}", s("ServerVersion")),
        " Storage Driver: overlay".to_string(),
        format!("  Backing Filesystem: {}", text(&v["DriverStatus"][0][1])),
        " Logging Driver: json-file".to_string(),
        " Cgroup Driver: cgroupfs".to_string(),
        format!(
            " Cgroup Version: 2 ({}: {})",
            s("CgroupRoot"),
            list("CgroupControllers")
        ),
        " Runtimes: pelagos".to_string(),
        " Default Runtime: pelagos".to_string(),
        " Init Binary: docker-init".to_string(),
        " Security Options:".to_string(),
        "  seccomp".to_string(),
        "   Profile: builtin".to_string(),
        "  cgroupns".to_string(),
        format!(" Kernel Version: {}", s("KernelVersion")),
        format!(" Operating System: {}", s("OperatingSystem")),
        format!(" OSType: {}", s("OSType")),
        format!(" Architecture: {}", s("Architecture")),
        format!(" CPUs: {}", s("NCPU")),
        format!(
            " Total Memory: {}",
            human_size(v["MemTotal"].as_u64().unwrap_or(0))
        ),
        format!(" Name: {}", s("Name")),
        format!(" ID: {}", s("ID")),
        format!(" Docker Root Dir: {}", s("DockerRootDir")),
        format!(" Run Root: {}", s("RunRoot")),
        " Debug Mode: false".to_string(),
        " Experimental: false".to_string(),
        " Insecure Registries:".to_string(),
        "  127.0.0.0/8".to_string(),
    ];
    lines.extend(
        v["InsecureRegistries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("  {}", text(r))),
    );
    if let Some(mirrors) = v["RegistryMirrors"].as_object().filter(|m| !m.is_empty()) {
        lines.push(" Registry Mirrors:".to_string());
        lines.extend(mirrors.iter().map(|(k, m)| format!("  {k}: {m}")));
    }
    lines.push(" Live Restore Enabled: true".to_string());
    lines.extend(v["Warnings"].as_array().into_iter().flatten().map(text));
    lines.join("\n")
}

fn confirm(force: bool, what: &str) -> Result<bool> {
    if force || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(true);
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

pub fn container_prune(cli: &Cli, a: &PruneArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    if !confirm(a.force, "all stopped containers")? {
        return Ok(0);
    }
    let (removed, bytes) = pelagos_engine::container::remove::prune(&engine)?;
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(0)
}

pub fn prune(cli: &Cli, a: &SystemPruneArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let what = format!(
        "all stopped containers, {}{}",
        if a.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        },
        if a.volumes {
            ", all anonymous volumes not used by at least one container"
        } else {
            ""
        }
    );
    if !confirm(a.force, &what)? {
        return Ok(0);
    }
    let (containers, mut bytes) = pelagos_engine::container::remove::prune(&engine)?;
    let in_use = engine.image_in_use_fn()?;
    let images = engine.images().prune(a.all, &in_use)?;
    bytes += images.reclaimed;
    let mut volumes = Vec::new();
    if a.volumes {
        let used = engine.containers().volumes_in_use()?;
        let (v, b) = engine.volumes().prune(false, &|n| used.contains(n))?;
        volumes = v;
        bytes += b;
    }
    let mut out = std::io::stdout().lock();
    for (title, items) in [
        ("Deleted Containers:", containers),
        ("Deleted Volumes:", volumes),
        (
            "Deleted Images:",
            images
                .deleted
                .iter()
                .map(|d| format!("deleted: {d}"))
                .collect(),
        ),
    ] {
        if !items.is_empty() {
            writeln!(out, "{title}")?;
            for i in items {
                writeln!(out, "{i}")?;
            }
            writeln!(out)?;
        }
    }
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(0)
}

/// `system df`: images, containers and volumes with their sizes and what could be reclaimed.
pub fn df(cli: &Cli, a: &FormatArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let images = engine.images().list()?;
    let containers = engine.containers().list()?;
    let used_images: HashSet<String> = containers.iter().map(|c| c.image_id.clone()).collect();
    // Layers are shared: count each once, and as reclaimable only when no used image has it.
    let mut layer_size: HashMap<String, u64> = HashMap::new();
    let mut used_layers: HashSet<String> = HashSet::new();
    for image in &images {
        for chain in &image.chain_ids {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                layer_size.entry(chain.to_string())
            {
                slot.insert(engine.images().layer(chain)?.map(|l| l.size).unwrap_or(0));
            }
            if used_images.contains(&image.id.to_string()) {
                used_layers.insert(chain.to_string());
            }
        }
    }
    let images_size: u64 = layer_size.values().sum();
    let images_reclaimable: u64 = layer_size
        .iter()
        .filter(|(k, _)| !used_layers.contains(*k))
        .map(|(_, v)| v)
        .sum();
    let mut c_size = 0;
    let mut c_reclaimable = 0;
    let mut c_active = 0;
    for c in &containers {
        let size =
            pelagos_engine::volumes::disk_usage(&engine.containers().dir_of(&c.id).join("upper"));
        c_size += size;
        if c.state.status.is_live() {
            c_active += 1;
        } else {
            c_reclaimable += size;
        }
    }
    let vols = engine.volumes().list()?;
    let used_vols = engine.containers().volumes_in_use()?;
    let mut v_size = 0;
    let mut v_reclaimable = 0;
    for v in &vols {
        let size = pelagos_engine::volumes::disk_usage(&v.mountpoint);
        v_size += size;
        if !used_vols.contains(&v.name) {
            v_reclaimable += size;
        }
    }
    let row = |t: &str, total: usize, active: usize, size: u64, reclaimable: u64| {
        json!({"Type": t, "TotalCount": total, "Active": active, "Size": human_size(size),
               "Reclaimable": reclaimable_size(reclaimable, size), "SizeBytes": size,
               "ReclaimableBytes": reclaimable})
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            images
                .iter()
                .filter(|i| used_images.contains(&i.id.to_string()))
                .count(),
            images_size,
            images_reclaimable,
        ),
        row(
            "Containers",
            containers.len(),
            c_active,
            c_size,
            c_reclaimable,
        ),
        row(
            "Local Volumes",
            vols.len(),
            vols.iter().filter(|v| used_vols.contains(&v.name)).count(),
            v_size,
            v_reclaimable,
        ),
        row("Build Cache", 0, 0, 0, 0),
    ];
    match a.format.as_deref() {
        Some("json") => {
            for r in &rows {
                let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(r)?);
            }
        }
        Some(t) if t != "table" => {
            let _ = write!(
                std::io::stdout(),
                "{}",
                format_rows(t, &rows, headers::DISK_USAGE)?
            );
        }
        _ => {
            let mut table = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()];
            for r in &rows {
                let s = |k: &str| match &r[k] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                table.push(vec![
                    s("Type"),
                    s("TotalCount"),
                    s("Active"),
                    s("Size"),
                    s("Reclaimable"),
                ]);
            }
            crate::images::print_table(&table);
        }
    }
    Ok(0)
}
