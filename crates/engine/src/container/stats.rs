//! `stats`: the cgroup usage of a running container.

use pelagos_model::record::ContainerRecord;

use crate::error::{Error, Result};
use crate::Engine;

/// The record and one sample of its cgroup's usage.
pub fn stats(
    engine: &Engine,
    name_or_id: &str,
) -> Result<(ContainerRecord, pelagos_cgroups::Stats)> {
    let record = super::lookup(engine, name_or_id)?;
    let runtime = engine.runtime();
    let saved = runtime
        .load(&record.id)
        .map_err(|_| super::not_running(&record))?;
    let cgroup = runtime.cgroup_of(&saved)?;
    let stats = cgroup
        .stats()
        .map_err(|e| Error::Task(format!("stats of {}: {e}", record.name)))?;
    Ok((record, stats))
}
