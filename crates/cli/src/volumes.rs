//! Volume commands: create, ls, inspect, rm, prune.

use std::io::Write;

use anyhow::{bail, Result};
use pelagos_engine::volumes::{VolumeListFilter, VolumePruneFilter};

use crate::cli::{Cli, VolumeCommand};
use crate::format::{format_rows_with, headers, human_size, label_method};
use crate::images::print_table;

pub fn dispatch(cli: &Cli, cmd: &VolumeCommand) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let volumes = engine.volumes();
    let mut out = std::io::stdout().lock();
    match cmd {
        VolumeCommand::Create(a) => {
            let mut labels = std::collections::BTreeMap::new();
            for l in &a.labels {
                let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                labels.insert(k.to_string(), v.to_string());
            }
            let (v, _) = volumes.create(a.name.as_deref(), labels)?;
            writeln!(out, "{}", v.name)?;
        }
        VolumeCommand::Ls(a) => {
            let filter = VolumeListFilter::parse(&a.filter)?;
            let all = pelagos_engine::volumes::list(&engine, &filter)?;
            if a.quiet {
                for v in &all {
                    writeln!(out, "{}", v.name)?;
                }
                return Ok(0);
            }
            match a.format.as_deref() {
                Some("json") => {
                    for v in &all {
                        writeln!(out, "{}", serde_json::to_string(v)?)?;
                    }
                }
                Some(t) if t != "table" => {
                    let values = all
                        .iter()
                        .map(serde_json::to_value)
                        .collect::<Result<Vec<_>, _>>()?;
                    let methods = all.iter().map(|v| label_method(&v.labels));
                    let rows = values.iter().zip(methods);
                    write!(out, "{}", format_rows_with(t, rows, headers::VOLUMES)?)?;
                }
                _ => {
                    let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
                    rows.extend(all.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
                    drop(out);
                    print_table(&rows);
                }
            }
        }
        VolumeCommand::Inspect(a) => {
            let mut values = Vec::new();
            let mut errors = Vec::new();
            for n in &a.names {
                match volumes.get(n) {
                    Ok(v) => values.push(serde_json::to_value(v)?),
                    Err(e) => errors.push(format!("Error response from daemon: {e}")),
                }
            }
            drop(out);
            // As Docker: what was found (maybe `[]`), then what was not.
            crate::images::print_inspect(&values, a.format.as_deref())?;
            if !errors.is_empty() {
                return Err(crate::failure::Plain::new(errors.join("\n"), 1).into());
            }
        }
        VolumeCommand::Rm(a) => {
            let users = engine.containers().volume_users()?;
            let mut failed = false;
            for n in &a.names {
                let users_of = |v: &str| users.get(v).cloned().unwrap_or_default();
                match volumes.remove(n, a.force, &users_of) {
                    Ok(()) => writeln!(out, "{n}")?,
                    Err(e) => {
                        let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(i32::from(failed));
        }
        VolumeCommand::Prune(a) => {
            let filter = VolumePruneFilter::parse(&a.filter, a.all)?;
            if !a.force && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                bail!("volume prune removes data: confirm with -f");
            }
            let (removed, bytes) = pelagos_engine::volumes::prune(&engine, &filter)?;
            if !removed.is_empty() {
                writeln!(out, "Deleted Volumes:")?;
                for r in &removed {
                    writeln!(out, "{r}")?;
                }
                writeln!(out)?;
            }
            writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
        }
    }
    Ok(0)
}
