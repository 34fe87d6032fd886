//! `inspect`: Docker's container JSON (`GET /containers/{id}/json`), the same object for
//! every front end.

use pelagos_model::config::{EndpointSettings, HostConfig};
use pelagos_model::record::ContainerRecord;
use pelagos_model::security::security_options;
use pelagos_model::state::Status;
use pelagos_model::validate::DEFAULT_BRIDGE_NETWORK;
use pelagos_spec::mounts::DEFAULT_SHM_SIZE;
use pelagos_spec::{hostname, system_paths};
use serde_json::{json, Value};

use crate::error::Result;
use crate::Engine;

/// Docker's zero time, printed for times that never happened.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The inspect object of a container.
pub fn inspect(engine: &Engine, name_or_id: &str) -> Result<Value> {
    let record = super::lookup(engine, name_or_id)?;
    Ok(view(engine, &record))
}

/// Docker's State object.
fn state(r: &ContainerRecord) -> Value {
    let s = &r.state;
    let mut v = json!({
        "Status": s.status.as_str(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": if s.status.is_live() { s.pid } else { 0 },
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at.as_deref().unwrap_or(ZERO_TIME),
        "FinishedAt": s.finished_at.as_deref().unwrap_or(ZERO_TIME),
    });
    if let Some(h) = &s.health {
        v["Health"] = serde_json::to_value(h).unwrap_or(Value::Null);
    }
    v
}

/// The whole object.
pub fn view(engine: &Engine, r: &ContainerRecord) -> Value {
    let dir = engine.containers().dir_of(&r.id);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let log_path = match r.host_config.log_config.kind.as_str() {
        "none" => String::new(),
        "local" => path("container.log.local"),
        _ => path("container.log"),
    };
    json!({
        "Id": r.id.as_str(),
        "Created": r.created,
        "Path": r.command.first().cloned().unwrap_or_default(),
        "Args": r.command.iter().skip(1).collect::<Vec<_>>(),
        "State": state(r),
        "Image": r.image_id,
        "ResolvConfPath": path("resolv.conf"),
        "HostnamePath": path("hostname"),
        "HostsPath": path("hosts"),
        "LogPath": log_path,
        "Name": format!("/{}", r.name),
        "RestartCount": r.state.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": host_config(r),
        "GraphDriver": graph_driver(engine, r, &path),
        "Mounts": r.mounts,
        "Config": config(r),
        "NetworkSettings": network_settings(r),
    })
}

/// The record's HostConfig with what pelagos applies where the record leaves it to the
/// defaults, as Docker's daemon fills them in at create.
fn host_config(r: &ContainerRecord) -> Value {
    let host = &r.host_config;
    let mut v = serde_json::to_value(host).unwrap_or(Value::Null);
    let security = security_options(&host.security_opt).unwrap_or_default();
    let (masked, readonly) = match system_paths(host, &security) {
        Some(paths) => (json!(paths.masked), json!(paths.readonly)),
        // Docker's daemon leaves a privileged container's lists nil.
        None if host.privileged => (Value::Null, Value::Null),
        // `systempaths=unconfined`: Docker's CLI sends empty lists.
        None => (json!([]), json!([])),
    };
    v["MaskedPaths"] = masked;
    v["ReadonlyPaths"] = readonly;
    fill_defaults(&mut v, host);
    v
}

/// The defaults Docker's daemon writes into an empty field at create, where pelagos applies
/// the same ones (cgroup v2: a private cgroup namespace; a private IPC namespace).
fn fill_defaults(v: &mut Value, host: &HostConfig) {
    let mut fill = |pointer: &str, empty: bool, value: Value| {
        if let Some(field) = v.pointer_mut(pointer).filter(|_| empty) {
            *field = value;
        }
    };
    fill(
        "/CgroupnsMode",
        host.cgroupns_mode.is_empty(),
        "private".into(),
    );
    fill("/IpcMode", host.ipc_mode.is_empty(), "private".into());
    let log_empty = host.log_config.kind.is_empty();
    fill("/LogConfig/Type", log_empty, "json-file".into());
    let restart_empty = host.restart_policy.name.is_empty();
    fill("/RestartPolicy/Name", restart_empty, "no".into());
    fill("/ShmSize", host.shm_size == 0, DEFAULT_SHM_SIZE.into());
}

/// The record's Config with the hostname the container really has (Docker stores it at
/// create).
fn config(r: &ContainerRecord) -> Value {
    let mut v = serde_json::to_value(&r.config).unwrap_or(Value::Null);
    if r.config.hostname.is_empty() {
        v["Hostname"] = hostname(&r.config, &r.host_config, r.id.as_str()).into();
    }
    v
}

/// The overlay's directories; `LowerDir` is the image's layers, top first, while the image
/// exists.
fn graph_driver(engine: &Engine, r: &ContainerRecord, path: &dyn Fn(&str) -> String) -> Value {
    let mut data = json!({
        "UpperDir": path("upper"),
        "WorkDir": path("work"),
        "MergedDir": path("rootfs"),
    });
    let images = engine.images();
    let lowers = images
        .get(&r.image_id)
        .ok()
        .and_then(|image| images.lowerdirs(&image).ok());
    if let Some(lowers) = lowers {
        let layers = images.layers_dir();
        let dirs: Vec<String> = lowers
            .iter()
            .map(|l| layers.join(l).to_string_lossy().into_owned())
            .collect();
        data["LowerDir"] = dirs.join(":").into();
    }
    json!({ "Name": "overlay2", "Data": data })
}

/// NetworkSettings: API 1.41's NetworkSettingsBase and DefaultNetworkSettings (the legacy
/// fields, filled for the default `bridge` network as Docker does), then the endpoint of
/// each network (`none` and `host` have an empty one).
fn network_settings(r: &ContainerRecord) -> Value {
    let mut networks = serde_json::Map::new();
    for (name, endpoint) in &r.networking.endpoints_config {
        networks.insert(name.clone(), json!(endpoint));
    }
    let mode = match r.host_config.network_mode.as_str() {
        "" | "default" => "none",
        m => m,
    };
    // `none` and `host` show an empty endpoint; another container's network and a network
    // the container was disconnected from show none.
    if networks.is_empty() && matches!(mode, "none" | "host") {
        networks.insert(mode.into(), json!(EndpointSettings::default()));
    }
    let default = r
        .networking
        .endpoints_config
        .get(DEFAULT_BRIDGE_NETWORK)
        .cloned()
        .unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": super::port::inspect_ports(r),
        "SandboxKey": "",
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": default.endpoint_id,
        "Gateway": default.gateway,
        "GlobalIPv6Address": default.global_ipv6_address,
        "GlobalIPv6PrefixLen": default.global_ipv6_prefix_len,
        "IPAddress": default.ip_address,
        "IPPrefixLen": default.ip_prefix_len,
        "IPv6Gateway": default.ipv6_gateway,
        "MacAddress": default.mac_address,
        "Networks": networks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_container::ContainerId;

    fn record(host_config: HostConfig) -> ContainerRecord {
        ContainerRecord {
            name: "web".into(),
            created: "2024-01-01T00:00:00Z".into(),
            image_id: "sha256:aa".into(),
            command: vec!["sh".into()],
            host_config,
            ..ContainerRecord::new(
                ContainerId::parse("0123456789abcdef0123").unwrap(),
                "busybox",
            )
        }
    }

    #[test]
    fn host_config_shows_the_paths_pelagos_masks() {
        let v = host_config(&record(HostConfig::default()));
        let masked: Vec<&str> = (v["MaskedPaths"].as_array().unwrap().iter())
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(masked, pelagos_spec::MASKED_PATHS);
        assert_eq!(v["ReadonlyPaths"][0], "/proc/bus");
        assert!(v["PidsLimit"].is_null() && v["OomKillDisable"].is_null());
        assert!(v.get("Annotations").is_none() && v.get("Tmpfs").is_none());
        assert_eq!(v["LogConfig"]["Type"], "json-file");
        assert_eq!(v["RestartPolicy"]["Name"], "no");
        assert_eq!(v["ShmSize"], 64 << 20);
        assert_eq!(v["IpcMode"], "private");

        let privileged = host_config(&record(HostConfig {
            privileged: true,
            ..HostConfig::default()
        }));
        assert!(privileged["MaskedPaths"].is_null());
        let unconfined = host_config(&record(HostConfig {
            security_opt: vec!["systempaths=unconfined".into()],
            ..HostConfig::default()
        }));
        assert_eq!(unconfined["ReadonlyPaths"], json!([]));
    }

    #[test]
    fn config_shows_the_short_id_as_hostname() {
        let v = config(&record(HostConfig::default()));
        assert_eq!(v["Hostname"], "0123456789ab");
        assert!(v["Volumes"].is_null());
    }

    #[test]
    fn network_settings_have_api_1_41_s_keys() {
        let v = network_settings(&record(HostConfig::default()));
        for key in [
            "EndpointID",
            "Gateway",
            "GlobalIPv6Address",
            "GlobalIPv6PrefixLen",
            "IPAddress",
            "IPPrefixLen",
            "IPv6Gateway",
            "LinkLocalIPv6Address",
            "LinkLocalIPv6PrefixLen",
            "MacAddress",
            "SecondaryIPAddresses",
            "SecondaryIPv6Addresses",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["Networks"]["none"].as_object().unwrap().len(), 13);
    }

    #[test]
    fn exposed_ports_without_a_binding_show_null() {
        let mut r = record(HostConfig::default());
        let binding = pelagos_model::config::PortBinding {
            host_ip: "0.0.0.0".into(),
            host_port: "8080".into(),
        };
        r.ports.insert("80/tcp".into(), vec![binding]);
        r.ports.insert("443/tcp".into(), Vec::new());
        let v = network_settings(&r);
        assert_eq!(
            v["Ports"],
            json!({"443/tcp": null, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
        );
    }

    #[test]
    fn the_default_bridge_fills_the_legacy_fields() {
        let mut r = record(HostConfig {
            network_mode: "bridge".into(),
            ..Default::default()
        });
        let endpoint = EndpointSettings {
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            ip_address: "172.17.0.2".into(),
            ip_prefix_len: 16,
            gateway: "172.17.0.1".into(),
            mac_address: "02:42:ac:11:00:02".into(),
            ..Default::default()
        };
        r.networking
            .endpoints_config
            .insert("bridge".into(), endpoint);
        let v = network_settings(&r);
        assert_eq!(v["IPAddress"], "172.17.0.2");
        assert_eq!(v["IPPrefixLen"], 16);
        assert_eq!(v["Gateway"], "172.17.0.1");
        assert_eq!(v["Networks"]["bridge"]["NetworkID"], "n1");
        assert_eq!(v["Networks"]["bridge"]["MacAddress"], "02:42:ac:11:00:02");
        assert_eq!(v["Networks"].as_object().unwrap().len(), 1);
    }
}
