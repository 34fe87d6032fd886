//! `pelagos ps` / `container ls`: the engine's summaries rendered through Docker's ps
//! context (`.ID`, `.Command`, `.Status`, …, the method `.Label "k"`) with `--format`, `table`
//! and `json`.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use pelagos_engine::container::list::{self, ContainerSummary, ListOptions};
use pelagos_engine::container::list_filter::PsFilter;
use serde_json::{json, Value};

use crate::cli::{Cli, PsArgs};
use crate::engine;
use crate::format::{self, human_size_precision};

/// Docker's default `ps` table (`-s` adds `\t{{.Size}}`).
const TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Column titles of Docker's container formatter.
pub const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

pub fn ps(cli: &Cli, a: &PsArgs) -> Result<i32> {
    let format = match a.format.as_deref() {
        None | Some("table") if a.quiet => "{{.ID}}".to_string(),
        None | Some("table") if a.size => format!("{TABLE}\t{{{{.Size}}}}"),
        None | Some("table") => TABLE.to_string(),
        Some(f) => f.to_string(),
    };
    let engine = engine(cli)?;
    let options = ListOptions {
        all: a.all,
        limit: match (a.latest, a.last) {
            (true, _) => Some(1),
            (false, n) if n > 0 => Some(n as usize),
            _ => None,
        },
        // As Docker's CLI: a format that shows sizes asks for them.
        size: a.size || format.contains(".Size"),
        filter: PsFilter::parse(&engine, &a.filter)?,
    };
    let summaries = list::list_with(&engine, &options)?;
    let rows: Vec<Value> = summaries.iter().map(|s| context(s, !a.no_trunc)).collect();
    // `.Label "k"` reads the labels map, which the row (what `json` prints) does not hold.
    let methods = summaries.iter().map(|s| format::label_method(&s.labels));
    let text = format::format_rows_with(&format, rows.iter().zip(methods), HEADERS)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}

/// Docker's `ContainerContext`: every field as the string its method returns.
pub fn context(s: &ContainerSummary, trunc: bool) -> Value {
    let created = UNIX_EPOCH + std::time::Duration::from_secs(s.created.max(0) as u64);
    let age = SystemTime::now()
        .duration_since(created)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let names: Vec<&str> = s
        .names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    json!({
        "ID": if trunc { s.id.get(..12).unwrap_or(&s.id) } else { &s.id },
        "Image": image(&s.image, trunc),
        "Command": quote(&if trunc { ellipsis(&s.command, 20) } else { s.command.clone() }),
        "CreatedAt": created_at(s.created),
        "RunningFor": format!("{} ago", list::human_duration(age)),
        "Ports": crate::ps_ports::displayable_ports(&s.ports),
        "State": s.state,
        "Status": s.status,
        "Size": size(s),
        "Names": names.join(","),
        "Labels": s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Mounts": mounts(s, trunc),
        "Networks": s.networks.join(","),
        "LocalVolumes": s.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
        // Docker CLI 28: the image manifest's platform, nil when the daemon gives none (as
        // here, like API < 1.48).
        "Platform": Value::Null,
    })
}

/// An image named by its id is shown by its short id, as Docker's `TruncateID`.
fn image(image: &str, trunc: bool) -> String {
    match image.strip_prefix("sha256:") {
        Some(hex) if trunc => hex.get(..12).unwrap_or(hex).to_string(),
        _ => image.to_string(),
    }
}

/// `12B (virtual 4.26MB)`, as Docker's `HumanSizeWithPrecision(…, 3)`.
fn size(s: &ContainerSummary) -> String {
    let rw = human_size_precision(s.size_rw.unwrap_or(0), 3);
    match s.size_root_fs {
        Some(v) if v > 0 => format!("{rw} (virtual {})", human_size_precision(v, 3)),
        _ => rw,
    }
}

/// Volume names (a bind's source), each cut to 15 characters unless `--no-trunc`.
fn mounts(s: &ContainerSummary, trunc: bool) -> String {
    s.mounts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() {
                &m.source
            } else {
                &m.name
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Docker's `formatter.Ellipsis`: at most `max` characters, the last one `…` when cut.
fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    text.chars().take(max - 1).collect::<String>() + "…"
}

/// Go's `strconv.Quote` (the command is shown quoted; control characters escaped).
fn quote(text: &str) -> String {
    // A JSON string is Go's quoting for everything a command line holds in practice.
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// Go's `time.Time.String()` of a unix time in the local zone:
/// `2024-01-02 15:04:05 +0000 UTC`.
fn created_at(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) if t.offset().local_minus_utc() == 0 => {
            t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
        }
        // chrono knows offsets, not zone abbreviations: Go prints the offset then too
        // when it has no abbreviation.
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %z %z").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_cut_and_quoted_as_dockers() {
        assert_eq!(quote(&ellipsis("sleep 1000", 20)), "\"sleep 1000\"");
        assert_eq!(
            quote(&ellipsis("sh -c 'echo hello world; sleep 9'", 20)),
            "\"sh -c 'echo hello w…\""
        );
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn image_ids_are_shortened() {
        assert_eq!(image("sha256:0123456789abcdef00", true), "0123456789ab");
        assert_eq!(image("busybox", true), "busybox");
    }

    #[test]
    fn the_context_has_docker_cli_28_s_keys() {
        let summary = ContainerSummary {
            id: "0123456789abcdef".into(),
            names: vec!["/web".into()],
            image: "busybox".into(),
            image_id: "sha256:aa".into(),
            command: "sh".into(),
            created: 0,
            state: "running".into(),
            status: "Up 1 second".into(),
            labels: Default::default(),
            size_rw: None,
            size_root_fs: None,
            mounts: Vec::new(),
            ports: Vec::new(),
            networks: vec!["none".into()],
        };
        let v = context(&summary, true);
        assert!(v["Platform"].is_null());
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let mut titles: Vec<&str> = HEADERS.iter().map(|(k, _)| *k).collect();
        titles.sort();
        assert_eq!(keys, titles);
    }
}
