//! `kill`: a signal to a running container's init, through its monitor.

use pelagos_model::protocol::Request;

use crate::error::{Error, Result};
use crate::Engine;

/// Parses a signal name or number (`KILL`, `SIGKILL`, `9`).
pub fn parse_signal(text: &str) -> Result<i32> {
    pelagos_container::signal::parse_signal(text)
        .map_err(|_| Error::Invalid(format!("invalid signal: {text}")))
}

/// Sends `signal` to the container.
pub fn kill(engine: &Engine, name_or_id: &str, signal: i32) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let mut client =
        super::monitor_of(engine, &record)?.ok_or_else(|| super::not_running(&record))?;
    client.call(&Request::Kill { signal })?;
    Ok(())
}

/// Signals every named container at once; each error says which container, as Docker's.
pub fn kill_many(engine: &Engine, names: &[String], signal: i32) -> Vec<Result<()>> {
    super::for_each_parallel(names, |n| {
        kill(engine, n, signal).map_err(|e| e.context(format!("Cannot kill container: {n}")))
    })
}
