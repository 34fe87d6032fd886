//! The truth about containers whose monitor is gone. A monitor holds its container's owner
//! lock for its whole life and the kernel kills the container with it (parent-death signal),
//! so a record that claims a live status while nobody holds the lock belongs to a dead
//! monitor: whoever looks first takes the lock, cleans up what is left (runtime state,
//! cgroup, root filesystem mount) and records how it ended.

use pelagos_model::names::now_rfc3339;
use pelagos_model::protocol::socket_path;
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;
use pelagos_model::store::OwnerLock;

use crate::error::Result;
use crate::Engine;

/// State.Error of a container whose monitor died.
pub const MONITOR_DIED: &str = "its monitor died (killed?) and the container was killed with it";

/// `record`, reconciled when its monitor died.
pub fn truthful(engine: &Engine, record: ContainerRecord) -> Result<ContainerRecord> {
    let needs_owner = record.state.status.is_live() || record.state.status == Status::Removing;
    if !needs_owner || engine.containers().is_owned(&record.id)? {
        return Ok(record);
    }
    let Some(lock) = engine.containers().try_own(&record.id)? else {
        // Someone (a new monitor, another reconciler) took it meanwhile: theirs to tell.
        return Ok(engine.containers().get(record.id.as_str())?);
    };
    let record = engine.containers().get(record.id.as_str())?;
    if !(record.state.status.is_live() || record.state.status == Status::Removing) {
        return Ok(record);
    }
    release_resources(engine, &record)?;
    if record.state.status == Status::Removing || record.host_config.auto_remove {
        super::remove::delete_stopped(engine, &record, record.host_config.auto_remove, lock)?;
        return Err(pelagos_model::Error::NoSuchContainer(record.name.clone()).into());
    }
    let finished = now_rfc3339();
    let updated = engine.containers().modify(&record.id, |r| {
        r.state.status = Status::Exited;
        r.state.exit_code = 137;
        r.state.pid = 0;
        r.state.error = MONITOR_DIED.into();
        r.state.finished_at = Some(finished);
        r.state.owner = None;
        r.state.health = None;
        r.ports.clear();
    })?;
    drop(lock);
    Ok(updated)
}

/// Whether the container is gone (removed) or no longer has a live monitor.
pub(crate) fn gone(engine: &Engine, record: &ContainerRecord) -> bool {
    match engine.containers().get(record.id.as_str()) {
        Err(_) => true,
        Ok(r) => !engine.containers().is_owned(&r.id).unwrap_or(true),
    }
}

/// Whether the container is gone, or its monitor within a moment: a monitor killed while it
/// answers resets the connection a little before the kernel frees its owner lock.
pub(crate) fn gone_soon(engine: &Engine, record: &ContainerRecord) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !gone(engine, record) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// What a container without a monitor may still hold: its runtime state and cgroup (the
/// process itself died with the monitor, or is killed here), the root filesystem mount and
/// the control socket's file.
pub(crate) fn release_resources(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    let runtime = engine.runtime();
    match runtime.load(&record.id) {
        // A monitor killed during `create` leaves a state directory without its state
        // file: the forced delete removes that too.
        Ok(_) | Err(pelagos_container::Error::NotFound(_)) => runtime.delete(&record.id, true)?,
        Err(_) => {}
    }
    let dir = engine.containers().dir_of(&record.id);
    unmount(&dir.join("rootfs"))?;
    unmount(&dir.join(pelagos_model::launch::SHM_DIR))?;
    let _ = std::fs::remove_file(socket_path(&engine.options.runroot, &record.id));
    super::endpoint::release_ports(engine, record)?;
    // Names before leases: a name without its lease would keep the resolver running.
    super::endpoint::release_names(engine, record)?;
    super::endpoint::release_leases(engine, record)
}

/// Unmounts a root filesystem if mounted (lazily, as a process may still hold it open).
pub(crate) fn unmount(rootfs: &std::path::Path) -> Result<()> {
    match rustix::mount::unmount(rootfs, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(crate::error::Error::io(
            format!("unmount {}", rootfs.display()),
            e.into(),
        )),
    }
}

/// Keeps the type in the signature readable where a lock is passed on.
pub(crate) type Held = OwnerLock;
