//! Network commands: create, ls, inspect, rm, prune (records only: bridges, rules and
//! resolvers come with the monitor's networking), connect and disconnect.

use std::io::Write;

use anyhow::Result;
use pelagos_engine::network::{self as net, NetworkListFilter, NetworkRecord};
use pelagos_engine::Engine;
use pelagos_model::config::{EndpointIpamConfig, EndpointSettings};
use pelagos_model::ErrorKind;
use serde_json::{json, Value};

use crate::cli::{
    Cli, InspectArgs, NetworkCommand, NetworkConnectArgs, NetworkDisconnectArgs, NetworkLsArgs,
    NetworkPruneArgs, NetworkRmArgs,
};
use crate::failure::Plain;
use crate::format::{format_rows_with, label_method};

/// Docker's default `network ls` table.
const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

/// Column titles of `network ls --format table …`.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv4", "IPV4"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED"),
];

pub fn dispatch(cli: &Cli, cmd: &NetworkCommand) -> Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => {
            let request = crate::network_create::request(a)?;
            let checked = pelagos_network::NetworkCreate::parse(request)
                .map_err(pelagos_engine::Error::from)?;
            let record = net::create(&crate::engine(cli)?, &checked)?;
            writeln!(std::io::stdout(), "{}", record.id)?;
            Ok(0)
        }
        NetworkCommand::Ls(a) => list(cli, a),
        NetworkCommand::Inspect(a) => inspect(cli, a),
        NetworkCommand::Rm(a) => remove(cli, a),
        NetworkCommand::Prune(a) => prune(cli, a),
        NetworkCommand::Connect(a) => connect(cli, a),
        NetworkCommand::Disconnect(a) => disconnect(cli, a),
    }
}

/// `network connect [--ip IP] [--ip6 IP] [--alias A]... NETWORK CONTAINER`.
fn connect(cli: &Cli, a: &NetworkConnectArgs) -> Result<i32> {
    let ipam = (a.ip.is_some() || a.ip6.is_some()).then(|| EndpointIpamConfig {
        ipv4_address: a.ip.clone().unwrap_or_default(),
        ipv6_address: a.ip6.clone().unwrap_or_default(),
    });
    let settings = EndpointSettings {
        ipam_config: ipam,
        aliases: (!a.aliases.is_empty()).then(|| a.aliases.clone()),
        ..Default::default()
    };
    let engine = crate::engine(cli)?;
    daemon_outcome(net::connect::connect(
        &engine,
        &a.network,
        &a.container,
        settings,
    ))
}

/// `network disconnect [-f] NETWORK CONTAINER`.
fn disconnect(cli: &Cli, a: &NetworkDisconnectArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    daemon_outcome(net::connect::disconnect(
        &engine,
        &a.network,
        &a.container,
        a.force,
    ))
}

/// Docker's CLI: any error of the engine is `Error response from daemon: …`, exit 1.
fn daemon_outcome(outcome: pelagos_engine::Result<()>) -> Result<i32> {
    match outcome {
        Ok(()) => Ok(0),
        Err(e) => Err(Plain::new(format!("Error response from daemon: {e}"), 1).into()),
    }
}

fn list(cli: &Cli, a: &NetworkLsArgs) -> Result<i32> {
    let filter = NetworkListFilter::parse(&a.filter)?;
    let engine = crate::engine(cli)?;
    let mut all = net::list(&engine, &filter)?;
    all.sort_by(|x, y| crate::port::natural_cmp(&x.name, &y.name));
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for n in &all {
            writeln!(out, "{}", id(n, a.no_trunc))?;
        }
        return Ok(0);
    }
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => DEFAULT_TABLE,
        Some(f) => f,
    };
    let values: Vec<Value> = all.iter().map(|n| row(n, a.no_trunc)).collect();
    let rows = values
        .iter()
        .zip(all.iter().map(|n| label_method(&n.labels)));
    write!(out, "{}", format_rows_with(format, rows, HEADERS)?)?;
    Ok(0)
}

/// The id as `ls` shows it: 12 characters unless `--no-trunc`.
fn id(n: &NetworkRecord, no_trunc: bool) -> &str {
    match no_trunc {
        true => &n.id,
        false => n.short_id(),
    }
}

/// docker/cli's network context: every field a string, as `--format json` prints them.
fn row(n: &NetworkRecord, no_trunc: bool) -> Value {
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "ID": id(n, no_trunc),
        "Name": n.name,
        "Driver": n.driver,
        "Scope": n.scope,
        "IPv4": "true",
        "IPv6": n.enable_ipv6.to_string(),
        "Internal": n.internal.to_string(),
        "Labels": labels.join(","),
        "CreatedAt": go_time(&n.created),
    })
}

/// Go's `time.Time.String()` of an RFC 3339 time in the local zone:
/// `2024-01-02 15:04:05.123456789 +0000 UTC`, trailing zeros of the fraction dropped.
fn go_time(rfc3339: &str) -> String {
    use chrono::{DateTime, Local};
    let Ok(t) = DateTime::parse_from_rfc3339(rfc3339) else {
        return String::new();
    };
    let t = t.with_timezone(&Local);
    let nanos = format!("{:09}", t.timestamp_subsec_nanos());
    let fraction = match nanos.trim_end_matches('0') {
        "" => String::new(),
        digits => format!(".{digits}"),
    };
    let zone = match t.offset().local_minus_utc() {
        0 => "+0000 UTC".to_string(),
        _ => t.format("%z %z").to_string(),
    };
    format!("{}{fraction} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

fn inspect(cli: &Cli, a: &InspectArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for name in &a.names {
        match net::inspect(&engine, name) {
            Ok(r) => values.push(serde_json::to_value(r)?),
            Err(e) => errors.push(format!("Error response from daemon: {e}")),
        }
    }
    // As Docker: what was found (maybe `[]`), then what was not.
    crate::images::print_inspect(&values, a.format.as_deref())?;
    if !errors.is_empty() {
        return Err(Plain::new(errors.join("\n"), 1).into());
    }
    Ok(0)
}

fn remove(cli: &Cli, a: &NetworkRmArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let mut failed = false;
    for (name, outcome) in a
        .networks
        .iter()
        .zip(net::remove_many(&engine, &a.networks))
    {
        match outcome {
            Ok(_) => writeln!(std::io::stdout(), "{name}")?,
            Err(e) if a.force && e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

fn prune(cli: &Cli, a: &NetworkPruneArgs) -> Result<i32> {
    let filter = net::prune_filter(&a.filter)?;
    let engine = crate::engine(cli)?;
    if !crate::system::confirm(
        a.force,
        "all custom networks not used by at least one container",
    )? {
        return Ok(0);
    }
    let removed = prune_names(&engine, &filter)?;
    if !removed.is_empty() {
        let mut out = std::io::stdout().lock();
        writeln!(out, "Deleted Networks:")?;
        for name in &removed {
            writeln!(out, "{name}")?;
        }
        writeln!(out)?;
    }
    Ok(0)
}

/// The names of the networks a prune removed (also `system prune`'s).
pub fn prune_names(
    engine: &Engine,
    filter: &pelagos_model::filters::PruneFilter,
) -> Result<Vec<String>> {
    Ok(net::prune(engine, filter)?
        .into_iter()
        .map(|r| r.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_go_prints_them() {
        // The test's local zone is whatever the host's is: the shape is checked, not the hour.
        let t = go_time("2024-01-02T15:04:05.120000000Z");
        assert!(t.starts_with("2024-01-0") && t.contains(".12 "), "{t}");
        assert_eq!(go_time("garbage"), "");
        let whole = go_time("2024-01-02T15:04:05Z");
        assert!(!whole.contains('.'), "{whole}");
    }

    #[test]
    fn rows_carry_dockers_fields() {
        let n: NetworkRecord = serde_json::from_value(json!({
            "Name": "app", "Id": "0123456789abcdef0123", "Created": "2024-01-02T15:04:05Z",
            "Scope": "local", "Driver": "bridge", "EnableIPv6": true,
            "IPAM": {"Driver": "default", "Config": [], "Options": {}},
            "Internal": false, "Attachable": false, "Ingress": false, "Options": {},
            "Labels": {"b": "2", "a": "1"}
        }))
        .unwrap();
        let r = row(&n, false);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["IPv6"], "true");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(row(&n, true)["ID"], "0123456789abcdef0123");
        let values = [r];
        let rows = values.iter().zip([label_method(&n.labels)]);
        assert_eq!(
            format_rows_with(DEFAULT_TABLE, rows, HEADERS).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n0123456789ab   app       bridge    local\n"
        );
    }
}
