//! Container verbs of the control plane, one file each. They read and write records, start
//! monitors with `posix_spawn` and talk to them over their control sockets; none forks, sets
//! signals, changes directory or touches fds 0-2, so a threaded daemon calls them as the CLI
//! does.

pub mod attach;
pub mod cp;
pub mod create;
pub mod diff;
pub mod endpoint;
pub mod exec;
pub mod export;
pub mod fsroot;
pub mod inspect;
pub mod kill;
pub mod list;
pub mod list_filter;
pub mod logs;
pub mod pause;
pub mod port;
pub mod reconcile;
pub mod remove;
pub mod rename;
pub mod start;
pub mod stats;
pub mod stats_view;
pub mod stop;
pub mod tar_in;
pub mod tar_out;
pub mod top;
pub mod update;
pub mod wait;

use pelagos_model::protocol::{Client, ConnectError};
use pelagos_model::record::ContainerRecord;

use crate::error::{Error, Result};
use crate::Engine;

/// The monitor of a container, if one listens.
pub(crate) fn monitor_of(engine: &Engine, record: &ContainerRecord) -> Result<Option<Client>> {
    match Client::connect(&engine.options.runroot, &record.id) {
        Ok(c) => Ok(Some(c)),
        Err(ConnectError::NoMonitor) => Ok(None),
        Err(ConnectError::Other(e)) => Err(e.into()),
    }
}

/// The container's record as it truly is: a record claiming a live state whose monitor is
/// gone is reconciled first (see [`reconcile`]).
pub fn lookup(engine: &Engine, name_or_id: &str) -> Result<ContainerRecord> {
    let record = engine.containers().get(name_or_id)?;
    reconcile::truthful(engine, record)
}

/// Docker's "Container ID is not running" as a conflict.
pub(crate) fn not_running(record: &ContainerRecord) -> Error {
    Error::Conflict(pelagos_model::error::conflict::not_running(&record.id))
}

/// Runs `f` for every name at once (each on its own thread: the work is waiting on monitors),
/// results in the order of `names`.
pub fn for_each_parallel<T: Send>(
    names: &[String],
    f: impl Fn(&str) -> Result<T> + Sync,
) -> Vec<Result<T>> {
    if names.len() <= 1 {
        return names.iter().map(|n| f(n)).collect();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|n| {
                let f = &f;
                scope.spawn(move || f(n))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Task("a worker thread panicked".into())))
            })
            .collect()
    })
}
