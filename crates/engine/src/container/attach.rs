//! `attach`: a connection to the container's stdio through its monitor (output frames in,
//! stdin frames and requests such as resize and kill out).

use pelagos_model::protocol::{Attach, Client, Reply, Request};

use crate::error::{Error, Result};
use crate::Engine;

/// Attaches to a running container; the connection then carries its output.
pub fn attach(engine: &Engine, name_or_id: &str, attach: Attach) -> Result<Client> {
    let record = super::lookup(engine, name_or_id)?;
    let mut client = super::monitor_of(engine, &record)?.ok_or_else(|| {
        Error::Conflict(format!(
            "you cannot attach to a stopped container {}, start it first",
            record.name
        ))
    })?;
    match client.call(&Request::Attach(attach))? {
        Reply::Attached => Ok(client),
        other => Err(Error::Task(format!(
            "the monitor answered {other:?} to attach"
        ))),
    }
}

/// Sets the terminal size of a running container's tty (Docker's `resize`).
pub fn resize(engine: &Engine, name_or_id: &str, height: u16, width: u16) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let mut client =
        super::monitor_of(engine, &record)?.ok_or_else(|| super::not_running(&record))?;
    client.call(&Request::Resize { height, width })?;
    Ok(())
}
