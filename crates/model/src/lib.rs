//! pelagos-model: the leaf of the engine, shared by the control plane (`pelagos-engine`,
//! the CLI, the daemon) and the process plane (`pelagos-monitor`).
//!
//! * [`config`]: the Docker Engine API's container configuration as types;
//! * [`record`], [`store`], [`state`]: container records on disk, their owner locks, states;
//! * [`kind`]: error kinds that cross processes; [`protocol`]: the monitor's control socket;
//! * [`names`]: ids, names, times;
//! * [`flags`], [`run_flags`]: `docker run` flag values → the config ([`units`]: sizes,
//!   durations); [`validate`]: every check before anything exists; [`mounts`], [`security`]:
//!   Docker's mount and security-option rules;
//! * [`volumes`]: named and anonymous volumes; [`rootfs`]: paths resolved inside a root;
//! * [`events`]: Docker's events, in a bounded log under the root;
//! * [`filters`]: every `--filter` (Docker's `filters.Args`); [`timestamp`]: Docker's times.
//!
//! It does nothing process-global: no fork, no signals, no chdir. Safe to call from threads.

pub mod config;
pub mod error;
pub mod events;
pub mod filters;
pub mod flags;
pub mod kind;
pub mod launch;
pub mod logs;
pub mod mounts;
pub mod names;
pub mod protocol;
pub mod record;
pub mod rootfs;
pub mod run_flags;
pub mod security;
pub mod spawn;
pub mod state;
pub mod store;
pub mod timestamp;
pub mod units;
pub mod validate;
pub mod volumes;

pub use error::{Error, Result};
pub use kind::{ErrorKind, WireError};
