//! pelagos-container: the OCI runtime core as a library.
//!
//! It turns a runtime-spec bundle (config.json + rootfs) into an isolated process and manages
//! its lifecycle: [`Runtime::create`], [`Runtime::start`], [`Runtime::kill`],
//! [`Runtime::delete`], [`Runtime::exec`], state, pause/resume. The model is crun's: one
//! process clones the container's init directly (clone3 into its cgroup), a one-byte sync
//! protocol over a socketpair, no re-exec of the runtime. `pelagos-runtime` (runc's CLI), the
//! `pelagos` CLI and `pelagos-dockerd` all call this crate.
//!
//! `create`, `run` and `exec` clone without a new stack (fork semantics) and run Rust code in
//! the child, and (like the foreground wait) change process-wide state for a moment: they
//! check that the calling process is single-threaded and fail with `Error::MultiThreaded`
//! otherwise. A multi-threaded caller such as a daemon runs them in a helper process (the
//! `pelagos-runtime` binary and a container's monitor are such processes).
//!
//! Every error has an [`ErrorKind`] decided by its variant; failures inside the container's
//! processes cross to the caller with their kind, errno and setup stage (`Error::Process`).
//!
//! It deliberately does not pull images, set up networks or keep a daemon: those live in
//! other crates. cgroup and seccomp mechanics are in `pelagos-cgroups` and `pelagos-seccomp`.

pub mod annotations;
pub mod capabilities;
pub mod container;
pub mod error;
pub mod exec;
pub mod features;
pub mod hooks;
pub mod id;
pub mod init;
pub mod kind;
pub mod mount_opts;
pub mod namespaces;
pub mod rootfs;
mod seccomp_agent;
pub mod signal;
pub mod spec;
pub mod state;
pub mod sync;
pub mod sys;
mod threads;
pub mod userns;
pub mod wait;

pub use container::{CgroupManager, CreateOptions, Created, Runtime};
pub use error::{Error, Result};
pub use exec::ExecOptions;
pub use id::ContainerId;
pub use kind::ErrorKind;
pub use spec::Bundle;
pub use state::{SavedState, Status};

/// The runtime-spec version pelagos implements.
pub const OCI_VERSION: &str = "1.2.0";
