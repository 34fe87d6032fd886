//! `rm`: a container with a monitor is removed by its monitor (killing it first with
//! `force`); one without is removed here under its owner lock. The record is renamed away
//! before its files go, so a crash mid-way leaves no half-removed container visible.

use std::time::{Duration, UNIX_EPOCH};

use pelagos_model::events::Event;
use pelagos_model::filters::PruneFilter;
use pelagos_model::protocol::{Reply, Request};
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;

use super::reconcile::Held;
use crate::error::{Error, Result};
use crate::Engine;

/// Removes a container; `force` kills a running one, `volumes` removes its anonymous volumes.
pub fn remove(engine: &Engine, name_or_id: &str, force: bool, volumes: bool) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    for _ in 0..50 {
        if let Some(mut client) = super::monitor_of(engine, &record)? {
            // A monitor outlives its container's exit by a moment (unmounting, answering):
            // a container whose record says it ended is stopped, as moby's is once `die` is
            // out (the docker CLI below API 1.25 removes `--rm` containers on that event).
            if !force && !has_ended(engine, &record)? {
                return Err(still_running(&record));
            }
            return match client.call(&Request::Remove { volumes }) {
                Ok(Reply::Removed { .. }) => Ok(()),
                Ok(other) => Err(Error::Task(format!("the monitor answered {other:?} to rm"))),
                // It ended meanwhile: finish below on the next round.
                Err(_) if super::reconcile::gone_soon(engine, &record) => continue,
                Err(e) => Err(e.into()),
            };
        }
        match engine.containers().try_own(&record.id) {
            Ok(Some(lock)) => {
                let now = match engine.containers().get(record.id.as_str()) {
                    Ok(r) => r,
                    Err(pelagos_model::Error::NoSuchContainer(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                return delete_stopped(engine, &now, volumes, lock);
            }
            Ok(None) => {
                // A start or another removal holds it: wait for that to finish, then look again.
                drop(engine.containers().own_blocking(&record.id)?);
            }
            Err(pelagos_model::Error::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflict(format!(
        "container {} keeps changing state; try again",
        record.name
    )))
}

/// Removes every named container at once.
pub fn remove_many(
    engine: &Engine,
    names: &[String],
    force: bool,
    volumes: bool,
) -> Vec<Result<()>> {
    super::for_each_parallel(names, |n| remove(engine, n, force, volumes))
}

/// Removes a container nobody runs, holding its owner lock: marked Removing first, so that
/// a crash anywhere below shows as "Removal In Progress" and the next `rm` finishes it.
pub(crate) fn delete_stopped(
    engine: &Engine,
    record: &ContainerRecord,
    volumes: bool,
    lock: Held,
) -> Result<()> {
    engine
        .containers()
        .modify(&record.id, |r| r.state.status = Status::Removing)?;
    super::reconcile::release_resources(engine, record)?;
    let anonymous = record.anonymous_volumes.clone();
    engine.containers().remove(&record.id)?;
    engine.emit(&Event::container(record, "destroy"));
    drop(lock);
    if volumes || record.host_config.auto_remove {
        for v in anonymous {
            let _ = engine.volumes().remove(&v, true, &|_| Vec::new());
        }
    }
    Ok(())
}

/// Docker's refusal to remove a live container without `--force`.
/// Whether the container's record, read now, says it is no longer running.
fn has_ended(engine: &Engine, record: &ContainerRecord) -> Result<bool> {
    match engine.containers().get(record.id.as_str()) {
        Ok(now) => Ok(matches!(now.state.status, Status::Exited | Status::Created)),
        Err(pelagos_model::Error::NoSuchContainer(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

fn still_running(record: &ContainerRecord) -> Error {
    let id = &record.id;
    Error::Conflict(match record.state.status {
        Status::Paused => format!(
            "You cannot remove a paused container {id}. Unpause and then stop the container \
             before attempting removal or force remove"
        ),
        Status::Restarting => format!(
            "You cannot remove a restarting container {id}. Stop the container before \
             attempting removal or force remove"
        ),
        _ => format!(
            "You cannot remove a running container {id}. Stop the container before attempting \
             removal or force remove"
        ),
    })
}

/// The keys `container prune --filter` accepts (moby's `containersAcceptedFilters`).
pub const PRUNE_KEYS: &[&str] = &["until", "label", "label!"];

/// `container prune`: removes every container that is not running and that `filter`
/// selects (`until`: created before; `label`, `label!`); their ids and the bytes their
/// writable layers held.
pub fn prune(engine: &Engine, filter: &PruneFilter) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut bytes = 0;
    for r in super::list::list(engine, true)? {
        if matches!(r.state.as_str(), "running" | "paused" | "restarting") {
            continue;
        }
        let created = u64::try_from(r.created)
            .ok()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        if !filter.selects(&r.labels, created) {
            continue;
        }
        let Ok(id) = pelagos_container::ContainerId::parse(&r.id) else {
            continue;
        };
        let upper = engine.containers().dir_of(&id).join("upper");
        let size = crate::volumes::disk_usage(&upper);
        match remove(engine, &r.id, false, false) {
            Ok(()) => {
                bytes += size;
                removed.push(r.id);
            }
            // Started meanwhile: not prunable any more.
            Err(e) if e.kind() == pelagos_model::ErrorKind::Conflict => {}
            Err(e) => return Err(e),
        }
    }
    Ok((removed, bytes))
}
