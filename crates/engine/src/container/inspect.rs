//! `inspect`: Docker's container JSON (`GET /containers/{id}/json`), the same object for
//! every front end.

use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;
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
        "HostConfig": r.host_config,
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {
                "UpperDir": path("upper"),
                "WorkDir": path("work"),
                "MergedDir": path("rootfs"),
            },
        },
        "Mounts": r.mounts,
        "Config": r.config,
        "NetworkSettings": network_settings(r),
    })
}

/// NetworkSettings for the modes that exist so far (none and host).
fn network_settings(r: &ContainerRecord) -> Value {
    let mode = match r.host_config.network_mode.as_str() {
        "" | "default" => "none",
        m => m,
    };
    json!({
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": false,
        "Ports": {},
        "SandboxKey": "",
        "Networks": { mode: {
            "NetworkID": "",
            "EndpointID": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "MacAddress": "",
        }},
    })
}
