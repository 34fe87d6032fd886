//! The engine's `/version` and `/info` views with the Docker Engine API's field names
//! (`SystemVersion`, `SystemInfo` of API 1.41), so the CLI's `version`/`info` and the future
//! daemon's endpoints print the same objects with true figures of this host.

use serde_json::{json, Value};

use crate::container::list::list;
use crate::error::Result;
use crate::Engine;

/// The Docker Engine API version whose objects these views follow.
pub const API_VERSION: &str = "1.41";
/// The oldest API version a client may speak (as dockerd 25 and later).
pub const MIN_API_VERSION: &str = "1.24";

/// The engine's part of `docker version` (the `Server` object).
pub fn version() -> Value {
    let arch = pelagos_image::host_platform().1;
    let kernel = kernel_version();
    json!({
        "Platform": {"Name": "pelagos"},
        "Components": [
            {
                "Name": "Engine",
                "Version": env!("CARGO_PKG_VERSION"),
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "Os": std::env::consts::OS,
                    "Arch": arch,
                    "KernelVersion": kernel,
                    "Experimental": "false",
                },
            },
            {
                "Name": "pelagos-runtime",
                "Version": env!("CARGO_PKG_VERSION"),
                "Details": {"OciRuntimeSpec": pelagos_container::OCI_VERSION},
            },
        ],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": arch,
        "KernelVersion": kernel,
        "Experimental": false,
    })
}

/// `docker info`'s object (`SystemInfo`), counted from the store now.
pub fn info(engine: &Engine) -> Result<Value> {
    let containers = list(engine, true)?;
    let count = |state: &str| containers.iter().filter(|c| c.state == state).count();
    let controllers = pelagos_cgroups::available_controllers().unwrap_or_default();
    let has = |c: &str| controllers.iter().any(|x| x == c);
    let registries = engine.registries();
    let store = json!({
        "ID": machine_id(),
        "Containers": containers.len(),
        "ContainersRunning": count("running") + count("restarting"),
        "ContainersPaused": count("paused"),
        "ContainersStopped": count("exited") + count("created") + count("dead"),
        "Images": engine.images().list()?.len(),
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", backing_filesystem(&engine.options.root)]],
        "DockerRootDir": engine.options.root.display().to_string(),
        "RunRoot": engine.options.runroot.display().to_string(),
        "LoggingDriver": "json-file",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": registry_config(registries),
        "InsecureRegistries": registries.insecure,
        "RegistryMirrors": registries.mirrors,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"pelagos": {"path": "pelagos-runtime (in-process)"}},
        "DefaultRuntime": "pelagos",
        "LiveRestoreEnabled": true,
        "InitBinary": "docker-init",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": null,
            "Log": pelagos_model::validate::LOG_DRIVERS,
        },
        // No swarm: Docker's answer for a node outside one.
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null,
        },
    });
    let limits = json!({
        "MemoryLimit": has("memory"),
        "SwapLimit": has("memory"),
        "CpuCfsPeriod": has("cpu"),
        "CpuCfsQuota": has("cpu"),
        "CPUShares": has("cpu"),
        "CPUSet": has("cpuset"),
        "PidsLimit": has("pids"),
        "OomKillDisable": false,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2",
        "CgroupRoot": pelagos_cgroups::v2_mountpoint()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        "Warnings": warnings(&controllers)
            .into_iter()
            .chain(forwarding_warnings(engine))
            .collect::<Vec<_>>(),
        "CgroupControllers": controllers,
    });
    Ok(merged([store, limits, host()]))
}

/// The API's `RegistryConfig` (`ServiceConfig`): the insecure networks (loopback always, as
/// Docker's default), an index entry per insecure host and Docker Hub's, Hub's mirrors as URLs.
fn registry_config(registries: &pelagos_registry::RegistryConfig) -> Value {
    let url = |host: &String| match registries.is_insecure(host) {
        true => format!("http://{host}/"),
        false => format!("https://{host}/"),
    };
    let hub_mirrors: Vec<String> = registries
        .mirrors
        .get("docker.io")
        .map(|hosts| hosts.iter().map(url).collect())
        .unwrap_or_default();
    let (cidrs, hosts): (Vec<&String>, Vec<&String>) =
        registries.insecure.iter().partition(|e| e.contains('/'));
    let mut cidrs: Vec<String> = cidrs.into_iter().cloned().collect();
    if !cidrs.iter().any(|c| c == "127.0.0.0/8") {
        cidrs.insert(0, "127.0.0.0/8".into());
    }
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": hub_mirrors, "Secure": true, "Official": true}),
    );
    for host in hosts {
        index.insert(
            host.clone(),
            json!({"Name": host, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": cidrs,
        "IndexConfigs": index,
        "Mirrors": hub_mirrors,
    })
}

/// The machine: kernel, OS, CPUs, memory, name.
fn host() -> Value {
    json!({
        "IPv4Forwarding": ip_forwarding(),
        "Debug": false,
        "KernelVersion": kernel_version(),
        "OperatingSystem": os_release("PRETTY_NAME").unwrap_or_else(|| "unknown".into()),
        "OSVersion": os_release("VERSION_ID").unwrap_or_default(),
        "OSType": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "Name": nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        "Labels": [],
        "ExperimentalBuild": false,
        "Isolation": "",
    })
}

/// One object from several (their keys are distinct).
fn merged(parts: [Value; 3]) -> Value {
    let mut all = serde_json::Map::new();
    for part in parts {
        if let Value::Object(map) = part {
            all.extend(map);
        }
    }
    Value::Object(all)
}

/// Docker's warnings for limits the host cannot enforce.
fn warnings(controllers: &[String]) -> Vec<String> {
    ["memory", "cpu", "pids", "io", "cpuset"]
        .iter()
        .filter(|c| !controllers.iter().any(|x| x == *c))
        .map(|c| {
            format!("WARNING: No {c} limit support (no \"{c}\" controller in the cgroup v2 tree)")
        })
        .collect()
}

/// The networks whose first container made pelagos switch `net.ipv4.ip_forward` on (it was
/// off): the "said in `info`".
fn forwarding_warnings(engine: &Engine) -> Vec<String> {
    let networks = engine.networks();
    let Ok(list) = networks.list() else {
        return Vec::new();
    };
    list.iter()
        .filter(|n| {
            networks
                .dir_of(n)
                .join(pelagos_network::IP_FORWARD_FILE)
                .exists()
        })
        .map(|n| {
            format!(
                "WARNING: net.ipv4.ip_forward was off; pelagos switched it on for network {}",
                n.name
            )
        })
        .collect()
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A field of /etc/os-release.
fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|v| v.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
    })
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    kib * 1024
}

fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn ip_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1")
}

/// The filesystem type under the store, as `statfs` names it (Docker's "Backing Filesystem").
fn backing_filesystem(root: &std::path::Path) -> String {
    let magic = nix::sys::statfs::statfs(root)
        .or_else(|_| nix::sys::statfs::statfs("/"))
        .map(|s| s.filesystem_type().0);
    match magic {
        Ok(0xEF53) => "extfs".into(),
        Ok(0x5846_5342) => "xfs".into(),
        Ok(0x9123_683E) => "btrfs".into(),
        Ok(0x0102_1994) => "tmpfs".into(),
        Ok(m) => format!("{m:#x}"),
        Err(_) => "unknown".into(),
    }
}
