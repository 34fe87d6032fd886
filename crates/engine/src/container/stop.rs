//! `stop`, `kill`'s gentle sibling: the monitor sends the stop signal, SIGKILL after the
//! timeout, ends any restart policy, and answers once the exit is recorded. Several
//! containers are stopped at once.

use pelagos_model::events::Event;
use pelagos_model::protocol::{Reply, Request};

use crate::error::{Error, Result};
use crate::Engine;

/// Stops one container; `timeout` in seconds (`None`: its StopTimeout or 10). A container
/// that is not running is left as it is.
pub fn stop(engine: &Engine, name_or_id: &str, timeout: Option<i64>) -> Result<()> {
    stop_with_signal(engine, name_or_id, None, timeout)
}

/// Stops one container with `signal` (`None`: its StopSignal or SIGTERM), SIGKILL after
/// `timeout` seconds (the API's `signal` and `t`).
pub fn stop_with_signal(
    engine: &Engine,
    name_or_id: &str,
    signal: Option<i32>,
    timeout: Option<i64>,
) -> Result<()> {
    stop_request(engine, name_or_id, signal, timeout, false)
}

/// The stop of a `restart`, a start to follow: as [`stop_with_signal`], but a container
/// with AutoRemove is kept (moby removes it only when a run ends otherwise).
pub fn stop_for_restart(
    engine: &Engine,
    name_or_id: &str,
    signal: Option<i32>,
    timeout: Option<i64>,
) -> Result<()> {
    stop_request(engine, name_or_id, signal, timeout, true)
}

fn stop_request(
    engine: &Engine,
    name_or_id: &str,
    signal: Option<i32>,
    timeout: Option<i64>,
    restart: bool,
) -> Result<()> {
    let record = super::lookup(engine, name_or_id)?;
    let Some(mut client) = super::monitor_of(engine, &record)? else {
        return Ok(());
    };
    let request = Request::Stop {
        signal,
        timeout,
        restart,
    };
    match client.call(&request) {
        Ok(Reply::Exited { .. }) | Ok(Reply::Removed { .. }) => {
            engine.emit(&Event::container(&record, "stop"));
            Ok(())
        }
        Ok(other) => Err(Error::Task(format!(
            "the monitor answered {other:?} to stop"
        ))),
        // The monitor went away as it stopped (a `--rm` container removed on exit).
        Err(e) if super::reconcile::gone(engine, &record) => {
            let _ = e;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Stops every named container at once; one result per name, in order.
pub fn stop_many(engine: &Engine, names: &[String], timeout: Option<i64>) -> Vec<Result<()>> {
    super::for_each_parallel(names, |n| stop(engine, n, timeout))
}
