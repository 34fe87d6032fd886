//! pelagos-model: the leaf of the engine, shared by the control plane (`pelagos-engine`,
//! the CLI, the daemon) and the process plane (`pelagos-monitor`).
//!
//! * [`config`]: the Docker Engine API's container configuration as types;
//! * [`record`], [`store`], [`state`]: container records on disk, their owner locks, states;
//! * [`kind`]: error kinds that cross processes; [`protocol`]: the monitor's control socket;
//! * [`names`]: ids, names, times.
//!
//! It does nothing process-global: no fork, no signals, no chdir. Safe to call from threads.

pub mod config;
pub mod error;
pub mod kind;
pub mod launch;
pub mod logs;
pub mod names;
pub mod protocol;
pub mod record;
pub mod spawn;
pub mod state;
pub mod store;

pub use error::{Error, Result};
pub use kind::{ErrorKind, WireError};
