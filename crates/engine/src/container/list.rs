//! `ps`: Docker's container summaries (the rows of `GET /containers/json`), each record
//! reconciled first so that what is shown is true.

use pelagos_model::record::{ContainerRecord, MountPoint};
use pelagos_model::state::{HealthStatus, Status};
use serde::Serialize;

use crate::error::Result;
use crate::Engine;

/// One row, with the API's field names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub state: String,
    /// Docker's human status: `Up 3 minutes (Paused)`, `Exited (0) 2 seconds ago`.
    pub status: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// Bytes in the container's writable layer (asked for with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<u64>,
    /// The writable layer plus the image (asked for with `size`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<u64>,
    pub mounts: Vec<MountPoint>,
    /// Its published ports (the API's `Port` objects).
    pub ports: Vec<SummaryPort>,
    /// Names of the networks it is attached to (the API nests them in `NetworkSettings`).
    #[serde(skip)]
    pub networks: Vec<String>,
}

/// One published port of a summary (the API's `Port`: `IP` and `PublicPort` absent when it
/// is only exposed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SummaryPort {
    #[serde(rename = "IP", skip_serializing_if = "String::is_empty")]
    pub ip: String,
    pub private_port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_port: Option<u16>,
    /// `tcp`, `udp`, `sctp`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// What `ps` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Stopped containers too.
    pub all: bool,
    /// Only the n newest (of every state) that pass the filter.
    pub limit: Option<usize>,
    /// Fill `size_rw` and `size_root_fs`.
    pub size: bool,
    pub filter: super::list_filter::PsFilter,
}

/// The containers (running ones only unless `all`), newest first.
pub fn list(engine: &Engine, all: bool) -> Result<Vec<ContainerSummary>> {
    list_with(
        engine,
        &ListOptions {
            all,
            ..ListOptions::default()
        },
    )
}

/// The containers `options` select, newest first.
pub fn list_with(engine: &Engine, options: &ListOptions) -> Result<Vec<ContainerSummary>> {
    Ok(select(engine, options)?
        .iter()
        .map(|r| summary_of(engine, r, options.size))
        .collect())
}

/// The records `options` select (reconciled), newest first: for front ends that show more
/// of a record than its summary (the API's `NetworkSettings`).
pub fn select(engine: &Engine, options: &ListOptions) -> Result<Vec<ContainerRecord>> {
    // As Docker: a limit or a status filter lists stopped containers too.
    let all = options.all || options.limit.is_some() || options.filter.wants_all();
    let mut records = Vec::new();
    for record in engine.containers().list()? {
        let Ok(record) = super::reconcile::truthful(engine, record) else {
            continue; // removed while we looked
        };
        if (all || record.state.status.is_live()) && options.filter.matches(engine, &record) {
            records.push(record);
        }
    }
    records
        .sort_by_cached_key(|r| std::cmp::Reverse(humantime::parse_rfc3339_weak(&r.created).ok()));
    records.truncate(options.limit.unwrap_or(usize::MAX));
    Ok(records)
}

/// The summary of one record, with its sizes when `size`.
pub fn summary_of(engine: &Engine, r: &ContainerRecord, size: bool) -> ContainerSummary {
    let mut s = summary(r);
    if size {
        fill_size(engine, r, &mut s);
    }
    s
}

/// Docker's `SizeRw` (the upper directory) and `SizeRootFs` (that plus the image).
fn fill_size(engine: &Engine, r: &ContainerRecord, s: &mut ContainerSummary) {
    let rw = crate::volumes::disk_usage(&engine.containers().dir_of(&r.id).join("upper"));
    let image = engine
        .images()
        .get(&r.image_id)
        .map(|i| i.size)
        .unwrap_or(0);
    s.size_rw = Some(rw);
    s.size_root_fs = Some(rw + image);
}

/// Seconds since the Unix epoch of an RFC 3339 time (0 when unparsable).
pub fn unix_seconds(time: &str) -> i64 {
    humantime::parse_rfc3339_weak(time)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Docker's "3 minutes" for the time since `time`.
pub fn human_since(time: Option<&str>) -> String {
    let Some(t) = time.and_then(|t| humantime::parse_rfc3339_weak(t).ok()) else {
        return "Less than a second".into();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    human_duration(secs)
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 2 * 3600 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        s if s < 30 * 24 * 3600 * 2 => format!("{} weeks", s / (7 * 86400)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        s => format!("{} years", s / (365 * 86400)),
    }
}

/// Docker's STATUS column for a record.
pub fn status_text(r: &ContainerRecord) -> String {
    let up = || format!("Up {}", human_since(r.state.started_at.as_deref()));
    let health = match r.state.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    };
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("{}{health}", up()),
        Status::Paused => format!("{} (Paused)", up()),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            human_since(r.state.finished_at.as_deref())
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            human_since(r.state.finished_at.as_deref())
        ),
        Status::Dead => "Dead".into(),
    }
}

fn summary(r: &ContainerRecord) -> ContainerSummary {
    ContainerSummary {
        id: r.id.to_string(),
        names: vec![format!("/{}", r.name)],
        image: r.image.clone(),
        image_id: r.image_id.clone(),
        command: summary_command(&r.command),
        created: unix_seconds(&r.created),
        state: r.state.status.as_str().into(),
        status: status_text(r),
        labels: r.config.labels.clone(),
        size_rw: None,
        size_root_fs: None,
        mounts: r.mounts.clone(),
        ports: summary_ports(r),
        networks: network_names(r),
    }
}

/// The record's ports (`NetworkSettings.Ports`) as the API's list: each published one, and
/// each exposed one without a host port.
fn summary_ports(r: &ContainerRecord) -> Vec<SummaryPort> {
    let mut out = Vec::new();
    for (key, bindings) in &r.ports {
        let (port, kind) = key.split_once('/').unwrap_or((key, "tcp"));
        let Ok(private_port) = port.parse::<u16>() else {
            continue;
        };
        if bindings.is_empty() {
            out.push(SummaryPort {
                ip: String::new(),
                private_port,
                public_port: None,
                kind: kind.to_string(),
            });
        }
        for b in bindings {
            out.push(SummaryPort {
                ip: b.host_ip.clone(),
                private_port,
                public_port: b.host_port.parse().ok(),
                kind: kind.to_string(),
            });
        }
    }
    out
}

/// The networks' names: the endpoints, else the network mode (`default` is `bridge`).
fn network_names(r: &ContainerRecord) -> Vec<String> {
    if !r.networking.endpoints_config.is_empty() {
        return r.networking.endpoints_config.keys().cloned().collect();
    }
    match r.host_config.network_mode.as_str() {
        "" | "default" => vec!["bridge".into()],
        mode => vec![mode.into()],
    }
}

/// Docker's list form of a command: the program, then its arguments, each with a space
/// wrapped in single quotes (moby's `daemon/list.go`).
fn summary_command(command: &[String]) -> String {
    let Some((program, args)) = command.split_first() else {
        return String::new();
    };
    if args.is_empty() {
        return program.clone();
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.contains(' ') {
            true => format!("'{a}'"),
            false => a.clone(),
        })
        .collect();
    format!("{program} {}", args.join(" "))
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_commands_quote_arguments_with_spaces() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary_command(&words(&["sh", "-c", "exit 3"])),
            "sh -c 'exit 3'"
        );
        assert_eq!(summary_command(&words(&["sleep", "1"])), "sleep 1");
        assert_eq!(summary_command(&words(&["sh"])), "sh");
        assert_eq!(summary_command(&[]), "");
    }

    use super::*;

    #[test]
    fn exposed_ports_are_summary_ports_without_a_host_side() {
        let mut r = ContainerRecord {
            name: "web".into(),
            ..ContainerRecord::new(
                pelagos_container::ContainerId::parse("0123456789abcdef0123").unwrap(),
                "busybox",
            )
        };
        r.ports.insert("53/udp".into(), Vec::new());
        let ports = summary_ports(&r);
        assert_eq!(
            ports,
            [SummaryPort {
                ip: String::new(),
                private_port: 53,
                public_port: None,
                kind: "udp".into(),
            }]
        );
        assert_eq!(
            serde_json::to_value(&ports[0]).unwrap(),
            serde_json::json!({"PrivatePort": 53, "Type": "udp"})
        );
    }

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(5), "5 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(180), "3 minutes");
        assert_eq!(human_duration(3 * 3600), "3 hours");
    }
}
