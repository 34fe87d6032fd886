//! `wait`: blocks until the container meets a condition (not running, its next exit, its
//! removal) and returns its exit code, asking the monitor rather than polling records.

use std::time::Duration;

use pelagos_model::protocol::{Reply, Request, WaitCondition};
use pelagos_model::state::Status;

use crate::error::{Error, Result};
use crate::Engine;

/// How long to look again for a monitor or a removal when none is there to ask.
const RECHECK: Duration = Duration::from_millis(100);

/// Waits for `condition`; the exit code (the last one for a container already stopped).
pub fn wait(engine: &Engine, name_or_id: &str, condition: WaitCondition) -> Result<i32> {
    let mut record = super::lookup(engine, name_or_id)?;
    loop {
        if let Some(mut client) = super::monitor_of(engine, &record)? {
            match client.call(&Request::Wait { condition }) {
                Ok(Reply::Exited { exit_code, .. }) => return Ok(exit_code),
                Ok(Reply::Removed) => return Ok(record.state.exit_code),
                Ok(other) => {
                    return Err(Error::Task(format!(
                        "the monitor answered {other:?} to wait"
                    )))
                }
                // A monitor that ended without answering: look at the record again.
                Err(_) => {}
            }
        } else if condition == WaitCondition::NotRunning && !record.state.status.is_live() {
            return Ok(record.state.exit_code);
        }
        // No monitor (yet, or any more): a next exit needs a start, a removal the record gone.
        std::thread::sleep(RECHECK);
        record = match super::lookup(engine, record.id.as_str()) {
            Ok(r) => r,
            Err(Error::Model(e)) if matches!(*e, pelagos_model::Error::NoSuchContainer(_)) => {
                return match condition {
                    WaitCondition::Removed => Ok(record.state.exit_code),
                    _ => Err(pelagos_model::Error::NoSuchContainer(record.name.clone()).into()),
                }
            }
            Err(e) => return Err(e),
        };
        if condition == WaitCondition::NotRunning && record.state.status == Status::Exited {
            return Ok(record.state.exit_code);
        }
    }
}
