//! `version` and `info`: what is running where, for bug reports and scripts; the prunes of
//! containers and of everything (`system prune`).

use std::io::Write;

use anyhow::Result;
use pelagos_engine::container::remove;
use pelagos_engine::image_prune::ImagePruneFilter;
use pelagos_engine::volumes::VolumePruneFilter;
use pelagos_model::filters::PruneFilter;
use serde_json::{json, Value};

use crate::cli::{Cli, FormatArgs, PruneArgs, SystemPruneArgs};
use crate::format::{format_one, human_size};

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

pub(crate) fn confirm(force: bool, what: &str) -> Result<bool> {
    if force || !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Ok(true);
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

pub fn container_prune(cli: &Cli, a: &PruneArgs) -> Result<i32> {
    let filter = PruneFilter::parse(&a.filter, remove::PRUNE_KEYS)?;
    let engine = crate::engine(cli)?;
    if !confirm(a.force, "all stopped containers")? {
        return Ok(0);
    }
    let (removed, bytes) = remove::prune(&engine, &filter)?;
    let mut out = std::io::stdout().lock();
    print_section(&mut out, "Deleted Containers:", &removed)?;
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(0)
}

/// A title, one line per item and a blank line; nothing without items.
fn print_section(out: &mut impl Write, title: &str, items: &[String]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "{title}")?;
    for i in items {
        writeln!(out, "{i}")?;
    }
    writeln!(out)
}

/// `system prune`'s filters, every part's checked before anything is removed (as Docker,
/// the containers' first: `dangling` is refused there).
struct SystemPruneFilters {
    containers: PruneFilter,
    networks: PruneFilter,
    images: ImagePruneFilter,
    volumes: Option<VolumePruneFilter>,
}

impl SystemPruneFilters {
    fn parse(a: &SystemPruneArgs) -> Result<SystemPruneFilters> {
        let containers = PruneFilter::parse(&a.filter, remove::PRUNE_KEYS)?;
        let networks = pelagos_engine::network::prune_filter(&a.filter)?;
        let images = ImagePruneFilter::parse(&a.filter, a.all)?;
        // `-a` is for images only: volumes stay anonymous ones (`all=true` is refused by the
        // containers' filter above).
        let volumes = match a.volumes {
            false => None,
            true => Some(VolumePruneFilter::parse(&a.filter, false)?),
        };
        Ok(SystemPruneFilters {
            containers,
            networks,
            images,
            volumes,
        })
    }
}

pub fn prune(cli: &Cli, a: &SystemPruneArgs) -> Result<i32> {
    let until = a.filter.iter().any(|f| {
        f.split_once('=')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("until"))
    });
    if a.volumes && until {
        // Docker's CLI refuses it before asking the daemon, in these words.
        let _ = writeln!(
            std::io::stderr(),
            r#"ERROR: The "until" filter is not supported with "--volumes""#
        );
        return Ok(1);
    }
    let filters = SystemPruneFilters::parse(a)?;
    let engine = crate::engine(cli)?;
    let what = format!(
        "all stopped containers, all networks not used by at least one container, {}{}",
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
    let (containers, mut bytes) = remove::prune(&engine, &filters.containers)?;
    let networks = crate::network::prune_names(&engine, &filters.networks)?;
    let mut volumes = Vec::new();
    if let Some(filter) = &filters.volumes {
        let (v, b) = pelagos_engine::volumes::prune(&engine, filter)?;
        volumes = v;
        bytes += b;
    }
    let images = pelagos_engine::image_prune::prune(&engine, &filters.images)?;
    bytes += images.reclaimed;
    let deleted: Vec<String> = images
        .deleted
        .iter()
        .map(|d| format!("deleted: {d}"))
        .collect();
    let mut out = std::io::stdout().lock();
    print_section(&mut out, "Deleted Containers:", &containers)?;
    print_section(&mut out, "Deleted Networks:", &networks)?;
    print_section(&mut out, "Deleted Volumes:", &volumes)?;
    print_section(&mut out, "Deleted Images:", &deleted)?;
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(0)
}
