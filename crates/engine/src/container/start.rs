//! `start`: take the container's owner lock, write its launch plan, start its monitor with
//! the lock and the control socket, and ask it to start the container (attaching first when
//! asked, so no output is missed).

use pelagos_model::launch::LaunchPlan;
use pelagos_model::protocol::{Attach, Client, Reply, Request};
use pelagos_model::record::ContainerRecord;
use pelagos_model::spawn::{start_monitor, MonitorCommand};
use pelagos_model::state::Status;

use crate::error::{Error, Result};
use crate::Engine;

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// The container's init (host pid).
    pub pid: i32,
    /// The connection that started it: attached when asked, else only good for requests.
    pub client: Client,
}

/// What `start` found.
#[derive(Debug)]
pub enum StartOutcome {
    Started(Started),
    /// It was running already (Docker answers 304 and the CLI says nothing).
    AlreadyRunning,
}

/// Starts a created or stopped container under a new monitor.
pub fn start(engine: &Engine, name_or_id: &str, attach: Option<Attach>) -> Result<StartOutcome> {
    let record = super::lookup(engine, name_or_id)?;
    let Some(lock) = engine
        .containers()
        .try_own(&record.id)
        .map_err(removed_while_starting)?
    else {
        return match super::monitor_of(engine, &record)? {
            Some(_) => Ok(StartOutcome::AlreadyRunning),
            None => Err(Error::Conflict(format!(
                "container {} is busy: another command is starting or removing it",
                record.name
            ))),
        };
    };
    // Under the lock: the record as it is now (a racing `rm` may have removed it).
    let record = engine
        .containers()
        .get(record.id.as_str())
        .map_err(removed_while_starting)?;
    if record.state.status == Status::Removing {
        return Err(Error::Conflict(format!(
            "container {} is being removed",
            record.name
        )));
    }
    plan(engine, &record)?.save(&engine.containers().dir_of(&record.id))?;
    let program = engine.monitor_program()?;
    let mut client = start_monitor(
        MonitorCommand {
            program: &program,
            root: &engine.options.root,
            runroot: &engine.options.runroot,
            id: &record.id,
            detach: !engine.options.short_lived,
        },
        lock,
        Some(&Request::Start { attach }),
    )?;
    match client.reply()?.0 {
        Reply::Started { pid } => Ok(StartOutcome::Started(Started { pid, client })),
        Reply::Error(e) => Err(pelagos_model::Error::from(e).into()),
        other => Err(Error::Task(format!(
            "the monitor answered {other:?} to start"
        ))),
    }
}

/// A container removed between lookup and lock is "removed while starting".
fn removed_while_starting(e: pelagos_model::Error) -> Error {
    match e {
        pelagos_model::Error::NoSuchContainer(id) => {
            pelagos_model::Error::NoSuchContainer(format!("{id} (removed while starting)")).into()
        }
        other => other.into(),
    }
}

/// The monitor's inputs for this start.
fn plan(engine: &Engine, record: &ContainerRecord) -> Result<LaunchPlan> {
    let image = engine.images().get(&record.image_id)?;
    let config = engine.images().config(&image)?;
    let init_path = if record.host_config.init == Some(true) {
        Some(engine.init_program()?)
    } else {
        None
    };
    Ok(LaunchPlan {
        layers_dir: engine.images().layers_dir(),
        lowerdirs: engine.images().lowerdirs(&image)?,
        image_config: config.config().clone(),
        cgroup_parent: engine.options.cgroup_parent.clone(),
        seccomp_cache: engine.options.root.join("cache/seccomp"),
        volumes_dir: engine.options.root.join("volumes"),
        init_path,
    })
}
