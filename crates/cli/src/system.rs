//! `version` and `info`: what is running where, for bug reports and scripts.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use std::collections::{HashMap, HashSet};

use crate::cli::{Cli, FormatArgs, PruneArgs, SystemPruneArgs};
use crate::format::{format_one, format_rows, headers, human_size};

fn print(value: &Value, format: Option<&str>, text: impl FnOnce() -> String) -> Result<i32> {
    let out = match format {
        Some("json") | Some("{{json .}}") => serde_json::to_string(value)?,
        Some(t) => format_one(t, value)?,
        None => text(),
    };
    let _ = writeln!(std::io::stdout(), "{out}");
    Ok(0)
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn version(a: &FormatArgs) -> Result<i32> {
    let v = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "OciRuntimeSpec": pelagos_container::OCI_VERSION,
        "Os": std::env::consts::OS,
        "Arch": pelagos_image::host_platform().1,
        "KernelVersion": kernel(),
    });
    print(&v, a.format.as_deref(), || {
        format!(
            "pelagos:\n Version:        {}\n OCI runtime spec: {}\n OS/Arch:        {}/{}\n Kernel:         {}",
            v["Version"].as_str().unwrap_or_default(),
            v["OciRuntimeSpec"].as_str().unwrap_or_default(),
            v["Os"].as_str().unwrap_or_default(),
            v["Arch"].as_str().unwrap_or_default(),
            v["KernelVersion"].as_str().unwrap_or_default(),
        )
    })
}

pub fn info(cli: &Cli, a: &FormatArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let images = engine.images().list()?.len();
    let containers = pelagos_engine::container::list::list(&engine, true)?;
    let stopped = containers.iter().filter(|c| c.state == "exited").count();
    let cgroup_root = pelagos_cgroups::v2_mountpoint()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("unavailable: {e}"));
    let controllers = pelagos_cgroups::available_controllers().unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                })
        })
        .unwrap_or(0)
        * 1024;
    let reg = engine.registries();
    let v = json!({
        "Containers": containers.len(),
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": "overlay",
        "DockerRootDir": engine.options.root.display().to_string(),
        "RunRoot": engine.options.runroot.display().to_string(),
        "CgroupVersion": "2",
        "CgroupRoot": cgroup_root,
        "CgroupControllers": controllers,
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "KernelVersion": kernel(),
        "OperatingSystem": os_name(),
        "NCPU": cpus,
        "MemTotal": mem_total,
        "InsecureRegistries": reg.insecure,
        "RegistryMirrors": reg.mirrors,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    });
    print(&v, a.format.as_deref(), || {
        let s = |k: &str| match &v[k] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!(
            "Containers: {}\n Stopped: {}\nImages: {}\nServer Version: {}\nStorage Driver: overlay\n\
             Pelagos Root Dir: {}\nRun Root: {}\nCgroup Version: 2 ({})\nCgroup Controllers: {}\n\
             Security Options:\n seccomp\n  Profile: builtin (Docker's default)\nKernel Version: {}\n\
             Operating System: {}\nCPUs: {}\nTotal Memory: {}\nInsecure Registries: {}\nRegistry Mirrors: {}",
            s("Containers"),
            s("ContainersStopped"),
            s("Images"),
            s("ServerVersion"),
            s("DockerRootDir"),
            s("RunRoot"),
            s("CgroupRoot"),
            controllers.join(" "),
            s("KernelVersion"),
            s("OperatingSystem"),
            cpus,
            crate::format::human_size(mem_total),
            v["InsecureRegistries"],
            v["RegistryMirrors"],
        )
    })
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
               "Reclaimable": human_size(reclaimable), "SizeBytes": size,
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
