//! `wait`: blocks until the container meets a condition (not running, its next exit, its
//! removal) and returns its exit code, asking the monitor rather than polling records.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use pelagos_model::protocol::{Client, Reply, Request, WaitCondition};
use pelagos_model::record::ContainerRecord;
use pelagos_model::state::Status;

use crate::error::{Error, Result};
use crate::Engine;

/// How long to look again for a monitor or a removal when none is there to ask.
const RECHECK: Duration = Duration::from_millis(100);

/// Ends a [`wait_cancellable`] from another thread: a daemon's client that went away must
/// not keep a thread blocked on the monitor until the container exits. It also wakes a wait
/// that found no monitor to ask ([`WaitCancel::poke`]): a daemon that starts the container
/// says so, instead of the wait seeing it only at its next look.
#[derive(Debug, Default)]
pub struct WaitCancel {
    cancelled: AtomicBool,
    /// The monitor connection being waited on, shut down to wake the blocked read.
    socket: Mutex<Option<UnixStream>>,
    /// Set by a poke, cleared by the nap it ends.
    poked: Mutex<bool>,
    wake: Condvar,
}

impl WaitCancel {
    /// Ends the wait (now, or as soon as it looks again).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.poke();
        if let Ok(socket) = self.socket.lock() {
            if let Some(s) = socket.as_ref() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Makes a wait that found no monitor look again now (its container was just started).
    pub fn poke(&self) {
        if let Ok(mut poked) = self.poked.lock() {
            *poked = true;
            self.wake.notify_all();
        }
    }

    /// Sleeps up to `limit`, less when poked.
    fn nap(&self, limit: Duration) {
        let Ok(poked) = self.poked.lock() else {
            return std::thread::sleep(limit);
        };
        if let Ok((mut poked, _)) = self.wake.wait_timeout_while(poked, limit, |p| !*p) {
            *poked = false;
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Watches `client`'s connection: a cancel shuts it down (at once if it came first).
    fn watch(&self, client: &Client) {
        if let (Ok(clone), Ok(mut socket)) = (client.socket().try_clone(), self.socket.lock()) {
            *socket = Some(clone);
        }
        if self.is_cancelled() {
            self.cancel();
        }
    }

    fn check(&self) -> Result<()> {
        match self.is_cancelled() {
            true => Err(Error::Task("the wait was cancelled".into())),
            false => Ok(()),
        }
    }
}

/// Waits for `condition`; the exit code (the last one for a container already stopped).
pub fn wait(engine: &Engine, name_or_id: &str, condition: WaitCondition) -> Result<i32> {
    let record = super::lookup(engine, name_or_id)?;
    wait_cancellable(engine, record, condition, &WaitCancel::default())
}

/// [`wait`] for `record` as it was when the client asked (a daemon answers the request's
/// headers then, and its client may start the container at once), which `cancel` ends
/// early with an error.
pub fn wait_cancellable(
    engine: &Engine,
    mut record: ContainerRecord,
    condition: WaitCondition,
    cancel: &WaitCancel,
) -> Result<i32> {
    // The last exit when asked: a next exit is one recorded after it (a container started
    // and ended between two looks has no monitor left to ask).
    let exit_before = record.state.finished_at.clone();
    let asked = std::time::SystemTime::now();
    loop {
        cancel.check()?;
        if let Some(mut client) = super::monitor_of(engine, &record)? {
            cancel.watch(&client);
            let answer = client.call(&Request::Wait { condition });
            cancel.check()?;
            match answer {
                Ok(Reply::Exited { exit_code, .. }) => return Ok(exit_code),
                Ok(Reply::Removed { exit_code }) => return Ok(exit_code),
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
        // The record is read again at once (a container that ended between two looks has
        // already written its exit), and only then, with nothing to answer, is there a nap.
        record = match super::lookup(engine, record.id.as_str()) {
            Ok(r) => r,
            Err(Error::Model(e)) if matches!(*e, pelagos_model::Error::NoSuchContainer(_)) => {
                return match condition {
                    WaitCondition::Removed if record.state.status != Status::Exited => {
                        Ok(last_exit_logged(engine, &record, asked))
                    }
                    WaitCondition::Removed => Ok(record.state.exit_code),
                    _ => Err(pelagos_model::Error::NoSuchContainer(record.name.clone()).into()),
                }
            }
            Err(e) => return Err(e),
        };
        if condition == WaitCondition::NotRunning && record.state.status == Status::Exited {
            return Ok(record.state.exit_code);
        }
        if condition == WaitCondition::NextExit
            && !record.state.status.is_live()
            && record.state.finished_at != exit_before
        {
            return Ok(record.state.exit_code);
        }
        cancel.nap(RECHECK);
    }
}

/// The exit code of the container's last `die` since the wait was asked: a container as
/// short as `true` with AutoRemove can start, exit and be removed between two looks, and its
/// record (with the code) is gone then; its monitor logged `die` with the code before the
/// removal. 0 when none is logged (as a removal before any exit).
fn last_exit_logged(
    engine: &Engine,
    record: &ContainerRecord,
    asked: std::time::SystemTime,
) -> i32 {
    // A second of slack for clocks read on two sides of the exit.
    let since = asked.checked_sub(Duration::from_secs(1));
    let range = pelagos_model::events::TimeRange { since, until: None };
    let mut code = 0;
    let _ = engine.events().read(&range, &mut |event| {
        if event.action == "die" && event.actor.id == record.id.as_str() {
            if let Some(c) = event.actor.attributes.get("exitCode") {
                code = c.parse().unwrap_or(code);
            }
        }
        Ok(())
    });
    code
}

#[cfg(test)]
mod poke_tests {
    use super::*;

    #[test]
    fn a_poke_ends_the_nap_and_is_used_once() {
        let wait = std::sync::Arc::new(WaitCancel::default());
        let poker = wait.clone();
        // A poke before the nap is kept: the nap returns at once instead of after an hour.
        poker.poke();
        wait.nap(Duration::from_secs(3600));
        // A poke from another thread while napping ends the nap.
        let t = std::thread::spawn(move || {
            while poker.poked.lock().map(|p| *p).unwrap_or(true) {
                std::thread::yield_now();
            }
            poker.poke();
        });
        wait.nap(Duration::from_secs(3600));
        t.join().unwrap();
        assert!(!wait.is_cancelled());
        wait.cancel();
        assert!(wait.check().is_err());
    }
}
