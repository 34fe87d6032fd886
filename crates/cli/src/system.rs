//! `version` and `info`: what is running where, for bug reports and scripts.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{Cli, FormatArgs};
use crate::format::render;

fn print(value: &Value, format: Option<&str>, text: impl FnOnce() -> String) -> Result<i32> {
    let out = match format {
        Some("json") | Some("{{json .}}") => serde_json::to_string(value)?,
        Some(t) => render(t, value).map_err(anyhow::Error::msg)?,
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
    let containers = engine.containers().list()?;
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
